// A node of the local cluster on which pods really run, as processes of this machine, with no container runtime:
// a small kubelet stand-in. It registers a Node (with GPU capacity and GFD labels, declared or probed), keeps it
// Ready through its Lease, runs the pods bound to it (images mapped to local commands, volumes bind-mounted in a
// private mount namespace, an IP of its own on loopback, probes, restarts, graceful deletion) and serves their
// logs to `kubectl logs`. See README.md in this folder for the choices and their limits.
import { accessSync, constants, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import type { KubeConfig, V1Taint } from '@kubernetes/client-node';
import { Controller } from '../../operator/kube/controller.ts';
import { Informer, type Wire } from '../../operator/kube/informer.ts';
import { createLogger, type Logger } from '../../operator/observability/log.ts';
import type { V1Pod } from '@kubernetes/client-node';
import { GpuAllocator, gpuInventory, gpuLabels, type GpuConfig } from './gpu.ts';
import type { ImageMapping } from './image-map.ts';
import { LoopbackIpPool, defaultPodCidr } from './ip-pool.ts';
import { KubeletServer } from './kubelet-server.ts';
import { NodeHeartbeat, kubeArch, machineCapacity } from './node-registration.ts';
import { PodEvents } from './pod-events.ts';
import { PodManager } from './pod-manager.ts';
import { NodeStateFile, reapAbandonedNodes } from './state-file.ts';
import type { Tools } from './container-process.ts';

export type { ImageMapping } from './image-map.ts';
export type { GpuConfig, GpuProbe, ProbedGpu, DeclaredGpus } from './gpu.ts';

export interface LocalNodeOptions {
  kc: KubeConfig;
  /** The Node's name (a DNS label). */
  name: string;
  /** Pod directories, logs, claim directories and the state file. */
  dataDir: string;
  /**
   * cpu, memory, pods, ephemeral-storage or any extended resource; what is left out is this machine's own.
   * nvidia.com/gpu comes from `gpus`.
   */
  capacity?: Record<string, string | number>;
  /** Declared GPUs, or `{ probe }` to report the machine's real ones. */
  gpus?: GpuConfig;
  labels?: Record<string, string>;
  taints?: V1Taint[];
  /** Which local command stands in for which image; an image without an entry fails its pod with ErrImageNeverPull. */
  imageMap: ImageMapping[];
  logger?: Logger;
  /** Pod IPs; default 127.200.0.0/16. */
  podCidr?: string;
  /** Port of the log endpoint; default a free one. */
  kubeletPort?: number;
  /** Crash-loop backoff; default 10 s doubling to 5 min, as the kubelet's. */
  restartBackoff?: { initialMs?: number; maxMs?: number };
  leaseDurationSeconds?: number;
  leaseRenewIntervalMs?: number;
  statusIntervalMs?: number;
  /** What becomes of the Node on stop(): marked NotReady (default) or deleted. */
  onStop?: 'notReady' | 'delete';
  /** Longest grace any pod gets when the node stops; default 10 s. */
  stopGraceMs?: number;
  /** PATH processes start with; default this Node.js binary's directory, then the usual system directories. */
  path?: string;
  /** Pods synced at once; default 4. */
  workers?: number;
}

const systemPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const activeDirs = new Set<string>();

function findTool(name: string, required: boolean): string | undefined {
  for (const dir of systemPath.split(':')) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  if (required) {
    throw new Error(`the local node needs ${name} (util-linux) to give each container its own mounts; install util-linux`);
  }
  return undefined;
}

export class LocalNode {
  private constructor(
    readonly name: string,
    readonly dataDir: string,
    /** Port of the HTTPS log endpoint on 127.0.0.1 (the node's daemonEndpoints.kubeletEndpoint). */
    readonly kubeletPort: number,
    private readonly parts: {
      log: Logger;
      state: NodeStateFile;
      server: KubeletServer;
      heartbeat: NodeHeartbeat;
      informer: Informer<Wire<V1Pod>>;
      ips: LoopbackIpPool;
      controller: Controller;
      pods: PodManager;
      onStop: 'notReady' | 'delete';
      stopGraceMs: number;
    },
  ) {}

  static async start(opts: LocalNodeOptions): Promise<LocalNode> {
    if (process.platform !== 'linux') throw new Error('the local node runs on Linux only');
    if (process.getuid?.() !== 0) {
      throw new Error('the local node must run as root: it mounts volumes in a private mount namespace per container');
    }
    const tools: Tools & { nsenter?: string } = {
      unshare: findTool('unshare', true)!,
      setpriv: findTool('setpriv', false),
      nsenter: findTool('nsenter', false),
    };
    findTool('mount', true);
    const dataDir = resolve(opts.dataDir);
    if (activeDirs.has(dataDir)) throw new Error(`a local node already runs on ${dataDir}`);
    const log = (opts.logger ?? createLogger({ component: 'local-node', level: process.env.LOG_LEVEL ?? 'warn' })).child({
      node: opts.name,
    });

    reapAbandonedNodes();
    mkdirSync(dataDir, { recursive: true });
    const state = new NodeStateFile(dataDir, opts.name);
    activeDirs.add(dataDir);
    const cleanups: (() => Promise<void> | void)[] = [() => void activeDirs.delete(dataDir), () => state.release()];
    const fail = async (err: unknown): Promise<never> => {
      for (const c of cleanups.reverse()) await c();
      throw err;
    };

    try {
      const inventory = await gpuInventory(opts.gpus);
      const capacity: Record<string, string> = machineCapacity(dataDir);
      for (const [k, v] of Object.entries(opts.capacity ?? {})) capacity[k] = String(v);
      if (inventory) capacity['nvidia.com/gpu'] = String(inventory.count);
      const gpuCount = Number(capacity['nvidia.com/gpu'] ?? 0);

      const informer = new Informer<Wire<V1Pod>>({
        kc: opts.kc,
        group: '',
        version: 'v1',
        plural: 'pods',
        fieldSelector: `spec.nodeName=${opts.name}`,
        logger: log,
        resyncIntervalMs: 5 * 60_000,
      });
      const reconciler = { reconcile: (key: string) => pods.reconcile(key) };
      const controller = new Controller({ name: `local-node-${opts.name}`, reconciler, workers: opts.workers ?? 4, logger: log });
      const apiUrl = opts.kc.getCurrentCluster()?.server;
      const api = apiUrl ? new URL(apiUrl) : undefined;
      const ips = new LoopbackIpPool(opts.podCidr ?? defaultPodCidr, { claimDir: join(tmpdir(), 'arena-local-nodes', 'pod-ips') });
      cleanups.push(() => ips.releaseAll());
      const pods = new PodManager({
        kc: opts.kc,
        dataDir,
        imageMap: opts.imageMap,
        log,
        events: new PodEvents(opts.kc, opts.name, log),
        state,
        tools,
        allocatable: capacity,
        gpus: gpuCount > 0 ? new GpuAllocator(gpuCount) : undefined,
        ips,
        path: opts.path ?? `${dirname(process.execPath)}:${systemPath}`,
        apiServer: api ? { host: api.hostname, port: api.port || '443' } : undefined,
        backoff: { initialMs: opts.restartBackoff?.initialMs ?? 10_000, maxMs: opts.restartBackoff?.maxMs ?? 300_000 },
        getPod: (key) => informer.get(key),
        enqueue: (key) => controller.enqueue(key),
      });

      const server = await KubeletServer.start({
        nodeName: opts.name,
        port: opts.kubeletPort,
        lookup: (ns, pod, container, previous) => pods.logLookup(ns, pod, container, previous),
      });
      cleanups.push(() => server.stop());

      const heartbeat = new NodeHeartbeat({
        kc: opts.kc,
        log,
        node: {
          name: opts.name,
          labels: {
            'kubernetes.io/hostname': opts.name,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': kubeArch(),
            ...gpuLabels(inventory),
            ...opts.labels,
          },
          taints: opts.taints ?? [],
          capacity,
          kubeletPort: server.port,
        },
        leaseDurationSeconds: opts.leaseDurationSeconds,
        leaseRenewIntervalMs: opts.leaseRenewIntervalMs,
        statusIntervalMs: opts.statusIntervalMs,
      });
      await heartbeat.start();
      cleanups.push(() => heartbeat.stop(opts.onStop ?? 'notReady'));

      const enqueue = (pod: Wire<V1Pod>) => controller.enqueue(`${pod.metadata?.namespace}/${pod.metadata?.name}`);
      informer.on('add', enqueue).on('update', enqueue).on('delete', enqueue);
      cleanups.push(() => pods.stopAll(Math.min(opts.stopGraceMs ?? 10_000, 10_000)));
      cleanups.push(() => informer.stop());
      cleanups.push(() => controller.stop());
      await informer.start();
      controller.start();
      log.info('local node started', { kubeletPort: server.port, capacity });
      return new LocalNode(opts.name, dataDir, server.port, {
        log,
        state,
        server,
        heartbeat,
        informer,
        controller,
        pods,
        ips,
        onStop: opts.onStop ?? 'notReady',
        stopGraceMs: opts.stopGraceMs ?? 10_000,
      });
    } catch (err) {
      return fail(err);
    }
  }

  /** Stops syncing, ends every pod process (SIGTERM, then SIGKILL after the grace), marks the Node NotReady or deletes it. */
  stop(): Promise<void> {
    this.stopping ??= this.shutDown();
    return this.stopping;
  }

  private stopping: Promise<void> | undefined;

  private async shutDown(): Promise<void> {
    const p = this.parts;
    await p.controller.stop();
    p.informer.stop();
    await p.pods.stopAll(p.stopGraceMs);
    p.ips.releaseAll();
    await p.server.stop();
    await p.heartbeat.stop(p.onStop);
    p.state.release();
    activeDirs.delete(this.dataDir);
    p.log.info('local node stopped');
  }

  /** pid of each running container, by pod key ('namespace/name') and container name. */
  podProcesses(): Record<string, Record<string, number>> {
    return this.parts.pods.processes();
  }

  /** Sends `signal` to a pod's containers (all, or one) as a crash would; returns how many got it. */
  kill(podKey: string, signal: NodeJS.Signals = 'SIGKILL', container?: string): number {
    return this.parts.pods.kill(podKey, signal, container);
  }

  /** The loopback IP the node gave the pod. */
  podIP(podKey: string): string | undefined {
    return this.parts.pods.podIP(podKey);
  }

  /** How often the node's Lease was renewed since start. */
  leaseRenewals(): number {
    return this.parts.heartbeat.renewals;
  }
}
