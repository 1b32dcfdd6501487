// The Node object and the heartbeats that keep it Ready: the kubelet registers its Node, renews a
// coordination.k8s.io Lease in kube-node-lease every few seconds (what the node lifecycle controller watches) and
// posts its status now and then. Stopping marks the node NotReady or deletes it.
import { arch, cpus, hostname, release, totalmem } from 'node:os';
import { statfsSync } from 'node:fs';
import {
  CoordinationV1Api,
  CoreV1Api,
  PatchStrategy,
  V1MicroTime,
  VersionApi,
  setHeaderOptions,
  type KubeConfig,
  type V1Node,
  type V1NodeCondition,
  type V1Taint,
} from '@kubernetes/client-node';
import { isAlreadyExists, isNotFound, toKubeError } from '../../operator/kube/errors.ts';
import type { Logger } from '../../operator/observability/log.ts';
import { kubeTime } from './kube-types.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const leaseNamespace = 'kube-node-lease';

export interface NodeIdentity {
  name: string;
  labels: Record<string, string>;
  taints: V1Taint[];
  capacity: Record<string, string>;
  kubeletPort: number;
}

/** The kernel's architecture names as Kubernetes labels them. */
export function kubeArch(nodeArch: string = arch()): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[nodeArch] ?? nodeArch;
}

/** cpu, memory, pods and ephemeral-storage of this machine, for what the caller leaves unset. */
export function machineCapacity(dataDir: string): Record<string, string> {
  let storage = '100Gi';
  try {
    const fs = statfsSync(dataDir);
    storage = String(fs.blocks * fs.bsize);
  } catch {
    // keep the default
  }
  return { cpu: String(cpus().length), memory: `${Math.floor(totalmem() / 1024)}Ki`, pods: '110', 'ephemeral-storage': storage };
}

function conditions(ready: boolean, message: string, previous: V1NodeCondition[] | undefined, now: string): V1NodeCondition[] {
  const want: [string, boolean, string, string][] = [
    ['MemoryPressure', false, 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'],
    ['DiskPressure', false, 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'],
    ['PIDPressure', false, 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'],
    ['Ready', ready, ready ? 'KubeletReady' : 'KubeletNotReady', message],
  ];
  return want.map(([type, value, reason, msg]) => {
    const status = value ? 'True' : 'False';
    const old = previous?.find((c) => c.type === type);
    const since = old && old.status === status && old.lastTransitionTime ? String(old.lastTransitionTime) : now;
    return { type, status, reason, message: msg, lastHeartbeatTime: now as unknown as Date, lastTransitionTime: since as unknown as Date };
  });
}

export interface HeartbeatOptions {
  kc: KubeConfig;
  node: NodeIdentity;
  log: Logger;
  leaseDurationSeconds?: number;
  /** Default: a quarter of the lease duration, as the kubelet does. */
  leaseRenewIntervalMs?: number;
  statusIntervalMs?: number;
}

export class NodeHeartbeat {
  private readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;
  private timers: NodeJS.Timeout[] = [];
  private uid = '';
  private kubeletVersion = 'v0.0.0';
  private lastConditions: V1NodeCondition[] | undefined;
  /** Renewals of the lease so far (tests watch it move). */
  renewals = 0;

  constructor(private readonly opts: HeartbeatOptions) {
    this.core = opts.kc.makeApiClient(CoreV1Api);
    this.coordination = opts.kc.makeApiClient(CoordinationV1Api);
  }

  private get leaseSeconds(): number {
    return this.opts.leaseDurationSeconds ?? 40;
  }

  /** Creates (or takes over) the Node, posts a Ready status and the lease, then keeps both fresh. */
  async start(): Promise<void> {
    const { node } = this.opts;
    try {
      const version = await this.opts.kc.makeApiClient(VersionApi).getCode();
      this.kubeletVersion = version.gitVersion;
    } catch {
      // a version string is only informative
    }
    const body: V1Node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: node.name, labels: node.labels },
      spec: { taints: node.taints },
    };
    try {
      const created = await this.core.createNode({ body });
      this.uid = created.metadata?.uid ?? '';
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      // A node of this name exists (an earlier run): take it over, keeping the taints the control plane manages.
      const existing = await this.core.readNode({ name: node.name });
      const managed = (existing.spec?.taints ?? []).filter((t) => t.key.startsWith('node.kubernetes.io/'));
      const patched = await this.core.patchNode(
        { name: node.name, body: { metadata: { labels: node.labels }, spec: { taints: [...node.taints, ...managed] } } },
        mergePatch,
      );
      this.uid = patched.metadata?.uid ?? '';
      this.lastConditions = existing.status?.conditions;
    }
    await this.postStatus(true, 'kubelet is posting ready status');
    await this.renewLease();
    const renewMs = this.opts.leaseRenewIntervalMs ?? (this.leaseSeconds * 1000) / 4;
    this.every(renewMs, () => this.renewLease());
    this.every(this.opts.statusIntervalMs ?? 60_000, () => this.postStatus(true, 'kubelet is posting ready status'));
  }

  private every(ms: number, fn: () => Promise<void>): void {
    const t = setInterval(() => {
      fn().catch((err: unknown) => this.opts.log.warn('node heartbeat failed', { error: toKubeError(err).message }));
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  async postStatus(ready: boolean, message: string): Promise<void> {
    const { node } = this.opts;
    const now = kubeTime(new Date());
    const conds = conditions(ready, message, this.lastConditions, now);
    this.lastConditions = conds;
    const status = {
      capacity: node.capacity,
      allocatable: node.capacity,
      conditions: conds,
      addresses: [
        { type: 'InternalIP', address: '127.0.0.1' },
        { type: 'Hostname', address: node.name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: node.kubeletPort } },
      nodeInfo: {
        machineID: node.name,
        systemUUID: node.name,
        bootID: `${hostname()}-${process.pid}`,
        kernelVersion: release(),
        osImage: 'arena local node',
        containerRuntimeVersion: 'arena-local://1',
        kubeletVersion: this.kubeletVersion,
        kubeProxyVersion: '',
        operatingSystem: 'linux',
        architecture: kubeArch(),
      },
    };
    await this.core.patchNodeStatus({ name: node.name, body: { status } }, mergePatch);
  }

  private async renewLease(): Promise<void> {
    const name = this.opts.node.name;
    const spec = { holderIdentity: name, leaseDurationSeconds: this.leaseSeconds, renewTime: new V1MicroTime() };
    try {
      await this.coordination.patchNamespacedLease(
        { name, namespace: leaseNamespace, body: { spec: { ...spec, renewTime: spec.renewTime.toISOString() } } },
        mergePatch,
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.coordination.createNamespacedLease({
        namespace: leaseNamespace,
        body: {
          metadata: {
            name,
            namespace: leaseNamespace,
            // Like the kubelet's: the lease goes away with its Node.
            ownerReferences: this.uid ? [{ apiVersion: 'v1', kind: 'Node', name, uid: this.uid }] : undefined,
          },
          spec,
        },
      });
    }
    this.renewals++;
  }

  /** Stops the heartbeats, then marks the node NotReady (the controller-manager then taints it) or deletes it. */
  async stop(mode: 'notReady' | 'delete'): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    const name = this.opts.node.name;
    try {
      if (mode === 'delete') {
        await this.core.deleteNode({ name }).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
        await this.coordination.deleteNamespacedLease({ name, namespace: leaseNamespace }).catch(() => undefined);
      } else {
        await this.postStatus(false, 'the local node was stopped');
      }
    } catch (err) {
      this.opts.log.warn('could not update the Node on stop', { error: toKubeError(err).message });
    }
  }
}
