// A real Kubernetes node for the local cluster: kubelet, containerd with runc, the CNI bridge, kube-proxy and
// CoreDNS, all in a network namespace of the node's own, joined to the machine by a veth pair. Pods are real
// containers (cgroups, seccomp, capabilities, read-only root file systems, OOM kills), Services route through
// kube-proxy's iptables rules and cluster DNS answers for them. How it fits together: e2e/realnode/README.md.
//
//   const node = await RealNode.start({ cluster, name: 'real-0' });
//   await node.importImage(busyboxImage(...));   // images come from archives, never from a registry
//   await node.stop();                           // every process, mount, cgroup and the namespace go
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'node:net';
import { CoreV1Api, DiscoveryV1Api, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions, type V1Node } from '@kubernetes/client-node';
import { repoRoot, toolchainDir, type LocalCluster } from '../cluster/control-plane.ts';
import { kubeconfigYaml } from '../cluster/pki.ts';
import { get } from '../cluster/net.ts';
import { launch, stopProcess, logTail, type ProcessRecord } from '../cluster/processes.ts';
import { waitFor } from '../cluster/wait.ts';
import { identify } from '../node/proc.ts';
import { loadAuthority } from '../../operator/pki/certs.ts';
import { isAlreadyExists } from '../../operator/kube/errors.ts';
import { createLogger, type Logger } from '../../operator/observability/log.ts';
import { cgroupHierarchies } from './cleanup.ts';
import { reapAbandonedRealNodes, releaseAndTidy, undo } from './reap.ts';
import { bridgeName, containerdConfig, cniConflist, corefile, kubeletConfig, kubeProxyConfig, paths, ports, resolvConf, type NodeLayout } from './config.ts';
import { checkPrerequisites, createNetns, linkPeers, netnsPath } from './netns.ts';
import { buildImage, busyboxImage, pauseImage, type BuiltImage, type ImageSpec } from './oci-image.ts';
import { addressesFor, claimSlot, liveSlots, readSlot, slotsDir, type NodeAddresses, type SlotRecord } from './slots.ts';

const run = promisify(execFile);

export interface RealNodeOptions {
  cluster: LocalCluster;
  /** The Node's name (and hostname). */
  name: string;
  /** Folder with kubelet, kube-proxy, runc, coredns, pause, busybox: $ARENA_NODE_BIN_DIR, else build-node.sh. */
  binDir?: string;
  labels?: Record<string, string>;
  /** Debian's CNI plugins. */
  cniBinDir?: string;
  serviceCidr?: string;
  logger?: Logger;
  readyTimeoutMs?: number;
}

type Part = 'forwarder' | 'containerd' | 'kubelet' | 'kube-proxy' | 'coredns';

/** Finds the node's binaries, building them on first use (minutes when the cache is cold). */
export function resolveNodeBinDir(): string {
  return toolchainDir('build-node.sh', 'ARENA_NODE_BIN_DIR', 'kubelet');
}

const coreDnsRbac = 'arena:coredns';

export class RealNode {
  private readonly processes: Partial<Record<Part, ProcessRecord>> = {};
  private stopped = false;
  /** start() → Node Ready and untainted, for the figures. */
  startMs = 0;
  /** start() → the kubelet's first Ready (the taint is lifted by the controller-manager's next pass). */
  readyMs = 0;

  private constructor(
    readonly name: string,
    readonly layout: NodeLayout,
    private readonly cluster: LocalCluster,
    private readonly record: SlotRecord,
    private readonly log: Logger,
    private readonly t0: number,
  ) {}

  get addresses(): NodeAddresses {
    return this.layout.addresses;
  }
  get dir(): string {
    return this.layout.dir;
  }
  get netns(): string {
    return this.record.netns;
  }
  get sandboxImage(): string {
    return this.layout.sandboxImage;
  }

  static async start(opts: RealNodeOptions): Promise<RealNode> {
    const t0 = Date.now();
    await checkPrerequisites();
    const log = (opts.logger ?? createLogger({ component: 'real-node', level: process.env.LOG_LEVEL ?? 'warn' })).child({
      node: opts.name,
    });
    await reapAbandonedRealNodes((record) => log.warn('undoing a real node whose test process died', { stale: record.nodeName, dir: record.dir }));
    const binDir = opts.binDir ?? resolveNodeBinDir();
    const dir = join(opts.cluster.dir, 'nodes', opts.name);
    const { slot, record } = await claimSlot(
      (s) => ({
        nodeName: opts.name,
        dir,
        // The cluster's name keeps namespaces of different clusters apart in `ip netns list`; the slot makes
        // them unique on the machine, as the veth names (at most 15 bytes) must be.
        netns: `arena-${opts.cluster.name}-${opts.name}-${s}`,
        hostVeth: `arn${s}h`,
        cgroupRoot: `/arena-realnode-${s}`,
      }),
      undo,
    );
    const k8sVersion = execFileSync(join(binDir, 'kubelet'), ['--version'], { encoding: 'utf8' }).trim().split(' ').pop()!;
    const addresses = addressesFor(slot);
    const layout: NodeLayout = {
      name: opts.name,
      dir,
      binDir,
      addresses,
      apiserverUrl: `https://${addresses.hostIp}:${ports.apiserver}`,
      serviceCidr: opts.serviceCidr ?? '10.96.0.0/16',
      clusterDomain: 'cluster.local',
      sandboxImage: pauseImage(binDir, k8sVersion).name,
      cgroupRoot: record.cgroupRoot,
      cniBinDir: opts.cniBinDir ?? '/usr/lib/cni',
    };
    const node = new RealNode(opts.name, layout, opts.cluster, record, log, t0);
    try {
      await node.boot(opts, k8sVersion);
    } catch (err) {
      await node.stop().catch((e: unknown) => log.error('cleanup after a failed start failed', { err: e }));
      throw err;
    }
    node.startMs = Date.now() - t0;
    log.info('real node ready', { startMs: node.startMs, readyMs: node.readyMs, nodeIp: addresses.nodeIp, podCidr: addresses.podCidr });
    return node;
  }

  private async boot(opts: RealNodeOptions, k8sVersion: string): Promise<void> {
    const l = this.layout;
    const p = paths(l.dir);
    rmSync(l.dir, { recursive: true, force: true });
    for (const d of [p.logs, p.cniConfDir, p.cniIpamDir, p.kubeletRoot, p.podLogs, p.images, p.containerdRoot, p.containerdState]) {
      mkdirSync(d, { recursive: true });
    }
    copyFileSync(join(this.cluster.dir, 'ca.crt'), p.ca);
    await this.writeCredentials();
    await this.grantCoreDns();
    writeFileSync(p.containerdConfig, containerdConfig(l));
    writeFileSync(join(p.cniConfDir, '10-arena.conflist'), cniConflist(l));
    writeFileSync(p.kubeletConfig, kubeletConfig(l));
    writeFileSync(p.proxyConfig, kubeProxyConfig(l, p.proxyKubeconfig));
    writeFileSync(p.corefile, corefile(l, p.corednsKubeconfig));
    writeFileSync(p.resolvConf, resolvConf(l));

    await createNetns({
      netns: this.record.netns,
      hostVeth: this.record.hostVeth,
      nodeVeth: `arn${l.addresses.slot}n`,
      addresses: l.addresses,
      serviceCidr: l.serviceCidr,
      bridge: bridgeName,
    });
    await this.linkClusterPeers();
    createCgroupRoot(l.cgroupRoot);

    const apiPort = new URL(this.cluster.server).port;
    await this.startPart('forwarder', process.execPath, ['--import', 'tsx', join(repoRoot, 'e2e/realnode/forward.ts'), l.addresses.hostIp, String(ports.apiserver), apiPort], {
      inNetns: false,
      ready: () => tcpOpen(l.addresses.hostIp, ports.apiserver),
    });
    // The images are made while containerd starts: both take about a second.
    const images = this.buildImages(k8sVersion);
    await this.startPart('containerd', '/usr/bin/containerd', ['--config', p.containerdConfig], {
      ready: async () => existsSync(p.containerdSocket) && (await this.ctr(['version']).then(() => true, () => false)),
    });
    for (const image of await images) await this.importArchive(image);

    const labels = Object.entries(opts.labels ?? {}).map(([k, v]) => `${k}=${v}`);
    await this.startPart('kubelet', join(l.binDir, 'kubelet'), [
      `--config=${p.kubeletConfig}`,
      `--kubeconfig=${p.kubeletKubeconfig}`,
      `--root-dir=${p.kubeletRoot}`,
      // Its default is /var/lib/kubelet/pki whatever the root folder is.
      `--cert-dir=${p.kubeletRoot}/pki`,
      `--hostname-override=${l.name}`,
      `--node-ip=${l.addresses.nodeIp}`,
      ...(labels.length ? [`--node-labels=${labels.join(',')}`] : []),
      '--v=1',
    ], { ready: () => healthy(`http://${l.addresses.nodeIp}:${ports.kubeletHealthz}/healthz`) });
    await this.startPart('kube-proxy', join(l.binDir, 'kube-proxy'), [`--config=${p.proxyConfig}`, '--v=1'], {
      ready: () => healthy(`http://${l.addresses.nodeIp}:${ports.proxyHealthz}/healthz`),
    });
    await this.startPart('coredns', join(l.binDir, 'coredns'), ['-conf', p.corefile], {
      ready: () => healthy(`http://${l.addresses.nodeIp}:${ports.dnsHealth}/health`),
    });
    await this.publishApiserverEndpoint();
    await this.waitReady(opts.readyTimeoutMs ?? 120_000);
  }

  /** Joins this node's namespace to every other live real node of the same cluster (netns.ts, linkPeers). */
  private async linkClusterPeers(): Promise<void> {
    const clusterNodes = join(this.cluster.dir, 'nodes') + '/';
    for (const slot of liveSlots()) {
      if (slot === this.addresses.slot) continue;
      const peer = readSlot(slot);
      if (!peer?.dir.startsWith(clusterNodes) || !existsSync(netnsPath(peer.netns))) continue;
      const linked = await linkPeers({ netns: this.netns, addresses: this.addresses }, { netns: peer.netns, addresses: addressesFor(slot) });
      this.log.debug('linked to a peer node', { peer: peer.nodeName, slot, linked });
    }
  }

  /** Client certificates from the cluster's CA, one identity per component, as kubeadm would name them. */
  private async writeCredentials(): Promise<void> {
    const p = paths(this.dir);
    const ca = await loadAuthority(readFileSync(join(this.cluster.dir, 'ca.crt'), 'utf8'), readFileSync(join(this.cluster.dir, 'ca.key'), 'utf8'));
    const caPem = ca.certPem;
    const identities: [string, string, string[]][] = [
      [p.kubeletKubeconfig, `system:node:${this.name}`, ['system:nodes']],
      [p.proxyKubeconfig, 'system:kube-proxy', []],
      [p.corednsKubeconfig, coreDnsRbac, []],
    ];
    for (const [file, cn, orgs] of identities) {
      const client = await ca.issue({ commonName: cn, organizations: orgs, usage: 'client' });
      // The forwarder's address is not in the API server's certificate; its name `kubernetes` is.
      writeFileSync(
        file,
        kubeconfigYaml({ name: 'default', server: this.layout.apiserverUrl, caPem, client, tlsServerName: 'kubernetes' }),
        { mode: 0o600 },
      );
    }
  }

  /** What CoreDNS's kubernetes plugin reads (the rules of CoreDNS's own deployment manifests). */
  private async grantCoreDns(): Promise<void> {
    const rbac = this.cluster.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    const create = async (f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
    };
    await create(() =>
      rbac.createClusterRole({
        body: {
          metadata: { name: coreDnsRbac },
          rules: [
            { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
            { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
          ],
        },
      }),
    );
    await create(() =>
      rbac.createClusterRoleBinding({
        body: {
          metadata: { name: coreDnsRbac },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: coreDnsRbac },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: coreDnsRbac }],
        },
      }),
    );
  }

  /** This node's slice of the `kubernetes` Service's endpoints. */
  private get apiserverSliceName(): string {
    return `kubernetes-${this.name}`;
  }

  /**
   * The `kubernetes` Service's endpoint on this node: its own forwarder, so pods reach the API server at
   * 10.96.0.1:443 through kube-proxy (the local control plane runs without an endpoint reconciler; its own
   * address is loopback). Each node publishes a slice of its own, naming itself, and the Service keeps traffic on
   * the node it starts from (internalTrafficPolicy Local): a node's forwarder listens on that node's veth, which
   * only that node routes to.
   */
  private async publishApiserverEndpoint(): Promise<void> {
    const kc = this.cluster.kubeConfig();
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    const svc = await core.readNamespacedService({ namespace: 'default', name: 'kubernetes' });
    if (svc.spec?.internalTrafficPolicy !== 'Local') {
      await core.patchNamespacedService(
        { namespace: 'default', name: 'kubernetes', body: { spec: { internalTrafficPolicy: 'Local' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    }
    const body = {
      metadata: {
        name: this.apiserverSliceName,
        namespace: 'default',
        labels: { 'kubernetes.io/service-name': 'kubernetes', 'endpointslice.kubernetes.io/managed-by': 'real-node.arena.agilerl.com' },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: [this.addresses.hostIp], conditions: { ready: true }, nodeName: this.name }],
      ports: [{ name: 'https', port: ports.apiserver, protocol: 'TCP' }],
    };
    try {
      await discovery.createNamespacedEndpointSlice({ namespace: 'default', body });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      await discovery.replaceNamespacedEndpointSlice({ namespace: 'default', name: this.apiserverSliceName, body });
    }
  }

  /** A stopped node's forwarder is gone: its endpoint goes too (best effort: the cluster may be stopping). */
  private async withdrawApiserverEndpoint(): Promise<void> {
    try {
      const discovery = this.cluster.kubeConfig().makeApiClient(DiscoveryV1Api);
      await discovery.deleteNamespacedEndpointSlice({ namespace: 'default', name: this.apiserverSliceName });
    } catch {
      // A stopped cluster (its folder, kubeconfig included, is gone) took the slice along.
    }
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const core = this.cluster.kubeConfig().makeApiClient(CoreV1Api);
    let last: V1Node | undefined;
    try {
      await waitFor(
        async () => {
          last = await core.readNode({ name: this.name });
          const ready = last.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
          if (ready && this.readyMs === 0) this.readyMs = Date.now() - this.t0;
          // The controller-manager lifts the not-ready taint a moment after Ready; until then the scheduler
          // places nothing here, so the node is not usable yet.
          return ready && !(last.spec?.taints ?? []).some((t) => t.key.startsWith('node.kubernetes.io/'));
        },
        { timeoutMs, what: `node ${this.name} Ready and untainted`, intervalMs: 250 },
      );
    } catch (err) {
      const ready = last?.status?.conditions?.find((c) => c.type === 'Ready');
      throw new Error(
        `${(err as Error).message} (Ready: ${ready ? `${ready.status} ${ready.reason}: ${ready.message}` : 'no node object'})\n--- kubelet log ---\n${this.logTail('kubelet')}`,
      );
    }
  }

  private async startPart(
    part: Part,
    binary: string,
    args: string[],
    opts: { inNetns?: boolean; ready: () => Promise<boolean> | boolean; timeoutMs?: number },
  ): Promise<void> {
    const p = paths(this.dir);
    const inNetns = opts.inNetns ?? true;
    // nsenter switches only the network namespace: the process keeps the machine's mounts, so what containerd
    // and the kubelet mount under the node's folder is visible to (and unmounted by) this harness.
    const rec = launch(part, inNetns ? '/usr/bin/nsenter' : binary, inNetns ? [`--net=${netnsPath(this.netns)}`, '--', binary, ...args] : args, {
      logFile: join(p.logs, `${part}.log`),
      cwd: inNetns ? this.dir : repoRoot,
      env: { ...process.env, PATH: `${this.layout.binDir}:/usr/sbin:/usr/bin:/sbin:/bin` },
    });
    // Once nsenter has exec'd, the process is the binary itself: record that, so pid checks are exact.
    this.processes[part] = { ...rec, binary };
    this.saveRecord();
    const started = Date.now();
    await waitFor(
      async () => {
        if (!alive(rec.pid)) throw new Error(`${part} exited`);
        return opts.ready();
      },
      { timeoutMs: opts.timeoutMs ?? 60_000, what: `${part} to start`, intervalMs: 100 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n--- ${part} log ---\n${this.logTail(part)}`);
    });
    this.log.debug('started', { part, pid: rec.pid, ms: Date.now() - started });
  }

  /** The slot file also lists the processes, so a later start can end them if this process dies first. */
  private saveRecord(): void {
    const pids = Object.values(this.processes).flatMap((r) => {
      const id = r && identify(r.pid);
      return id ? [id] : [];
    });
    writeFileSync(join(slotsDir(), String(this.addresses.slot)), JSON.stringify({ ...this.record, pids }));
  }

  logTail(part: Part, lines = 30): string {
    const rec = this.processes[part];
    return rec ? logTail(rec, lines) : '(not started)';
  }

  /** `ctr` against this node's containerd, in the namespace the CRI uses. */
  async ctr(args: string[]): Promise<string> {
    const { stdout } = await run('ctr', ['--address', paths(this.dir).containerdSocket, '--namespace', 'k8s.io', ...args], {
      encoding: 'utf8',
    });
    return stdout;
  }

  private async buildImages(k8sVersion: string): Promise<BuiltImage[]> {
    const p = paths(this.dir);
    return [await buildImage(pauseImage(this.layout.binDir, k8sVersion), join(p.images, 'pause.tar'))];
  }

  private async importArchive(image: BuiltImage): Promise<void> {
    const t0 = Date.now();
    await this.ctr(['images', 'import', image.archive]);
    this.log.debug('image imported', { image: image.name, digest: image.digest, ms: Date.now() - t0 });
  }

  /** Builds an image from a spec and loads it into the node's containerd; pods then use `spec.name`. */
  async importImage(spec: ImageSpec): Promise<BuiltImage> {
    const archive = join(paths(this.dir).images, `${spec.name.replace(/[^A-Za-z0-9.-]+/g, '_')}.tar`);
    const image = await buildImage(spec, archive);
    await this.importArchive(image);
    return image;
  }

  /**
   * Loads an OCI archive that `make images` wrote (its index names the image by its full reference) and, for a
   * reference pinned by digest (`repo:tag@sha256:…`, as the bundle's values pin them), also names the image
   * `repo@sha256:…`: the CRI looks a digest reference up by that name alone, which a registry pull creates and an
   * import does not. Returns how long the import took.
   */
  async importOciArchive(archive: string, reference: string): Promise<number> {
    const t0 = Date.now();
    await this.ctr(['images', 'import', archive]);
    const ms = Date.now() - t0;
    const at = reference.indexOf('@');
    if (at > 0) {
      const named = reference.slice(0, at);
      const repo = named.replace(/:[^/:]+$/, '');
      await this.ctr(['images', 'tag', '--force', named, `${repo}${reference.slice(at)}`]);
    }
    this.log.debug('image imported', { archive, reference, ms });
    return ms;
  }

  /**
   * Sends `signal` to a container's init process, as a crash or the kernel would: `containerId` as the pod's
   * status gives it (`containerd://<id>`) or bare. The kubelet then sees the container exit on its own.
   */
  async killContainer(containerId: string, signal = 'SIGKILL'): Promise<void> {
    await this.ctr(['tasks', 'kill', '--signal', signal, containerId.replace(/^containerd:\/\//, '')]);
  }

  /** The busybox test image (Debian's busybox-static), loaded into this node. */
  async importBusybox(tag = 'test'): Promise<BuiltImage> {
    const { stdout } = await run(join(this.layout.binDir, 'busybox'), ['--list'], { encoding: 'utf8' });
    return this.importImage(busyboxImage(this.layout.binDir, stdout.trim().split('\n'), tag));
  }

  /**
   * Stops the node: the kubelet first (so nothing is restarted), then the rest; then whatever the pods left
   * running, every mount under the node's folder, its cgroups and its namespace. The Node object stays (it goes
   * NotReady), as when a machine is switched off.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const t0 = Date.now();
    if (this.processes.kubelet) await this.withdrawApiserverEndpoint();
    try {
      for (const part of ['kubelet', 'kube-proxy', 'coredns', 'containerd'] as const) {
        const rec = this.processes[part];
        if (rec) await stopProcess(rec, 5_000);
      }
      await undo(this.record);
    } finally {
      const fwd = this.processes.forwarder;
      if (fwd) await stopProcess(fwd, 2_000);
      releaseAndTidy(this.addresses.slot, this.dir);
    }
    this.log.info('real node stopped', { ms: Date.now() - t0 });
  }
}

/** The kubelet refuses a cgroup root that does not exist; cpuset needs its CPUs and memory nodes set first. */
function createCgroupRoot(cgroupRoot: string): void {
  for (const h of cgroupHierarchies()) {
    const d = join(h, cgroupRoot);
    mkdirSync(d, { recursive: true });
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if (existsSync(join(h, f))) writeFileSync(join(d, f), readFileSync(join(h, f), 'utf8').trim() || '0');
    }
  }
}

function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function healthy(url: string): Promise<boolean> {
  try {
    return (await get(url)).status === 200;
  } catch {
    return false;
  }
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
