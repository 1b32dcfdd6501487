// A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
// the kwok controller (which plays the kubelet of simulated nodes), each a plain process of this harness with its
// own ports, data directory and generated PKI. Two clusters can run side by side; a stop ends only their pids.
import { mkdirSync, writeFileSync, readFileSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { createClusterPki, kubeconfigYaml, type ClusterPki } from './pki.ts';
import { freePorts, waitHealthy } from './net.ts';
import { launch, stopProcess, isRunning, logTail, type ProcessRecord } from './processes.ts';
import { reapAbandonedRealNodes, undoRealNodesUnder } from '../realnode/reap.ts';

const execFileAsync = promisify(execFile);

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const stagesFile = join(repoRoot, 'e2e', 'cluster', 'kwok-stages.yaml');

export type Component = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'kwok';
const startOrder: Component[] = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'];

export interface ClusterOptions {
  /** Also the folder name under .cluster/; random when omitted. */
  name?: string;
  /** Folder for data, PKI, logs and kubeconfig. Default: <repo>/.cluster/<name>. */
  dir?: string;
  /** Folder with the built binaries. Default: $ARENA_BIN_DIR, else what e2e/toolchain/build.sh prints. */
  binDir?: string;
  /** Keep running after this Node process exits (make cluster-up). */
  detached?: boolean;
  /** Components to leave out, e.g. a cluster without the scheduler to test what stays Pending. */
  without?: Component[];
  /** Seconds without a node heartbeat before the controller-manager marks the node NotReady. */
  nodeMonitorGracePeriodSeconds?: number;
  /**
   * A fleet of hundreds or thousands of simulated nodes (the benchmarks): kwok renews each node's Lease every
   * minute instead of every 10 s and rewrites its Ready heartbeat every few minutes instead of every 20-45 s (at
   * 1,000 nodes the defaults are ~130 writes/s of background load on the API server), and the node monitor grace
   * period grows to match. Tests that mark nodes NotReady keep the defaults.
   */
  largeFleet?: boolean;
  /** Extra flags per component, e.g. a short --etcd-compaction-interval to provoke 410 Gone. */
  extraArgs?: Partial<Record<Component, string[]>>;
}

interface State {
  name: string;
  ownerPid: number;
  detached: boolean;
  binDir: string;
  ports: Record<string, number>;
  processes: Partial<Record<Component, ProcessRecord>>;
}

/**
 * Runs a toolchain script of e2e/toolchain/ (a no-op when its cache is warm) and returns the folder it printed
 * on its last line; `env` names the variable that skips the script, `marker` a binary the folder must hold.
 */
export function toolchainDir(script: string, env: string, marker: string): string {
  const fromEnv = process.env[env];
  if (fromEnv) return fromEnv;
  const out = execFileSync('bash', [join(repoRoot, 'e2e', 'toolchain', script)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const dir = out.trim().split('\n').pop();
  if (!dir || !existsSync(join(dir, marker))) throw new Error(`e2e/toolchain/${script} printed no binary folder`);
  return dir;
}

/** Finds the control-plane binaries, building them on first use (minutes when the cache is cold). */
export function resolveBinDir(): string {
  return toolchainDir('build.sh', 'ARENA_BIN_DIR', 'kube-apiserver');
}

export class LocalCluster {
  private constructor(
    readonly dir: string,
    private state: State,
    private pki: Pick<ClusterPki, 'caPem' | 'clients'> & { files: Record<string, string> },
  ) {}

  get name(): string {
    return this.state.name;
  }
  get server(): string {
    return `https://127.0.0.1:${this.state.ports.apiserver}`;
  }
  get kubeconfigPath(): string {
    return join(this.dir, 'admin.kubeconfig');
  }
  get binDir(): string {
    return this.state.binDir;
  }
  process(component: Component): ProcessRecord | undefined {
    return this.state.processes[component];
  }

  /** A client-node KubeConfig for the admin identity. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  /** Environment for child processes (kubectl, helm, the operator) aimed at this cluster. */
  env(): NodeJS.ProcessEnv {
    return { ...process.env, KUBECONFIG: this.kubeconfigPath, PATH: `${this.binDir}:${process.env.PATH}` };
  }

  /**
   * kubectl without blocking this process: needed when something this process serves (the local node's log
   * endpoint, a webhook) is on the path of the request.
   */
  async kubectlAsync(args: string[]): Promise<string> {
    const { stdout } = await execFileAsync(join(this.binDir, 'kubectl'), args, { env: this.env(), encoding: 'utf8' });
    return stdout;
  }

  kubectl(args: string[], input?: string): string {
    return execFileSync(join(this.binDir, 'kubectl'), args, {
      env: this.env(),
      encoding: 'utf8',
      input,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }

  static async start(opts: ClusterOptions = {}): Promise<LocalCluster> {
    await reapAbandonedClusters();
    const name = opts.name ?? `arena-${randomBytes(3).toString('hex')}`;
    const dir = opts.dir ?? join(repoRoot, '.cluster', name);
    if (existsSync(join(dir, 'state.json'))) {
      const existing = LocalCluster.attach(dir);
      if (existing.running()) throw new Error(`cluster ${name} is already running (${dir})`);
      await existing.stop();
    }
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const binDir = opts.binDir ?? resolveBinDir();
    const [etcd, etcdPeer, apiserver, kcm, scheduler, kwok] = await freePorts(6);
    const pki = await createClusterPki(dir);
    const files: Record<string, string> = {};
    const state: State = {
      name,
      ownerPid: process.pid,
      detached: opts.detached ?? false,
      binDir,
      ports: { etcd: etcd!, etcdPeer: etcdPeer!, apiserver: apiserver!, kcm: kcm!, scheduler: scheduler!, kwok: kwok! },
      processes: {},
    };
    const cluster = new LocalCluster(dir, state, { caPem: pki.caPem, clients: pki.clients, files });
    for (const [file, client] of [
      ['admin.kubeconfig', 'admin'],
      ['controller-manager.kubeconfig', 'controller-manager'],
      ['scheduler.kubeconfig', 'scheduler'],
      ['kwok.kubeconfig', 'kwok'],
    ] as const) {
      writeFileSync(
        join(dir, file),
        kubeconfigYaml({ name, server: cluster.server, caPem: pki.caPem, client: pki.clients[client] }),
        { mode: 0o600 },
      );
    }
    writeFileSync(join(dir, 'stages.yaml'), kwokConfig(opts.largeFleet ?? false));
    cluster.argsFor = buildArgs(dir, state, pki, opts);
    try {
      for (const c of startOrder) {
        if (opts.without?.includes(c)) continue;
        cluster.argsFor[c] = [...(cluster.argsFor[c] ?? []), ...(opts.extraArgs?.[c] ?? [])];
        await cluster.startComponentOnce(c);
      }
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** Reattaches to a cluster started earlier (possibly by another process) from its folder. */
  static attach(dir: string): LocalCluster {
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as State;
    return new LocalCluster(dir, state, { caPem: readFileSync(join(dir, 'ca.crt'), 'utf8'), clients: {} as never, files: {} });
  }

  private argsFor: Partial<Record<Component, string[]>> = {};

  private saveState(): void {
    writeFileSync(join(this.dir, 'state.json'), JSON.stringify(this.state, null, 2));
  }

  /** Starts (or restarts) one component and waits until it is healthy. */
  /**
   * Starting, with one more try for a component that exited before it answered: on a loaded machine with several
   * clusters starting at once, a process can die early with nothing in its log (seen once with kwok in a test
   * run). A second failure is reported with both logs.
   */
  private async startComponentOnce(c: Component): Promise<void> {
    try {
      await this.startComponent(c);
    } catch (err) {
      if (!/exited before it became healthy/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 500));
      try {
        await this.startComponent(c);
      } catch (again) {
        throw new Error(`${(again as Error).message}\n--- first try ---\n${(err as Error).message}`);
      }
    }
  }

  async startComponent(c: Component): Promise<void> {
    const args = this.argsFor[c];
    if (!args) throw new Error(`no arguments recorded for ${c}; only a cluster started by this process can restart it`);
    const rec = launch(c, join(this.state.binDir, c), args, {
      logFile: join(this.dir, 'logs', `${c}.log`),
      detached: this.state.detached,
    });
    this.state.processes[c] = rec;
    this.saveState();
    try {
      await waitHealthy(this.healthUrl(c), {
        tls: c === 'kube-apiserver' ? { ca: this.pki.caPem } : { insecure: true },
        deadlineMs: c === 'kube-apiserver' ? 90_000 : 60_000,
        alive: () => isRunning(rec),
        what: c,
      });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- ${c} log ---\n${logTail(rec)}`);
    }
  }

  /** Stops one component, for tests of what the operator does while it is gone. */
  async stopComponent(c: Component): Promise<void> {
    const rec = this.state.processes[c];
    if (rec) await stopProcess(rec);
  }

  private healthUrl(c: Component): string {
    const p = this.state.ports;
    switch (c) {
      case 'etcd':
        return `http://127.0.0.1:${p.etcd}/health`;
      case 'kube-apiserver':
        return `${this.server}/readyz`;
      case 'kube-controller-manager':
        return `https://127.0.0.1:${p.kcm}/healthz`;
      case 'kube-scheduler':
        return `https://127.0.0.1:${p.scheduler}/healthz`;
      case 'kwok':
        return `http://127.0.0.1:${p.kwok}/healthz`;
    }
  }

  running(): boolean {
    return Object.values(this.state.processes).some((r) => r && isRunning(r));
  }

  /** Stops every process of this cluster, in reverse start order. */
  async stop(opts: { keepData?: boolean } = {}): Promise<void> {
    // Real nodes still running keep mounts in this folder, and would lose their API server anyway.
    await undoRealNodesUnder(this.dir);
    for (const c of [...startOrder].reverse()) {
      const rec = this.state.processes[c];
      if (rec) await stopProcess(rec);
    }
    if (!opts.keepData) rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * kwok's --config: the stages, plus its own options. Its stage and lease workers default to 4 each, which on a
 * thousand new nodes queues the Ready status patches behind each other; 16 keeps them flowing.
 */
export function kwokConfig(largeFleet: boolean): string {
  let stages = readFileSync(stagesFile, 'utf8');
  if (largeFleet) {
    const heartbeat = /(name: arena-node-heartbeat[\s\S]*?durationMilliseconds: )20000(\s+jitterDurationMilliseconds: )25000/;
    if (!heartbeat.test(stages)) throw new Error(`${stagesFile}: the arena-node-heartbeat stage's delay is not 20000+25000 ms any more; update kwokConfig`);
    stages = stages.replace(heartbeat, '$1120000$260000');
  }
  // kwok applies its defaults only when no KwokConfiguration is given, so this one states the rest of them too
  // (v0.8.0's; the flags below override cidr, node IP, server address and which nodes it manages).
  const options = [
    'apiVersion: config.kwok.x-k8s.io/v1alpha1',
    'kind: KwokConfiguration',
    'options:',
    '  nodePlayStageParallelism: 16',
    '  podPlayStageParallelism: 16',
    '  nodeLeaseParallelism: 16',
    '  podsOnNodeSyncParallelism: 1',
    '  enablePodsOnNodeSyncListPager: true',
    '  enablePodsOnNodeSyncStreamWatch: false',
    '  enableDebuggingHandlers: true',
    '  enableContentionProfiling: false',
    '  enableProfilingHandler: true',
  ].join('\n');
  return `${stages}\n---\n${options}\n`;
}

function buildArgs(
  dir: string,
  state: State,
  pki: ClusterPki,
  opts: ClusterOptions,
): Record<Component, string[]> {
  const p = state.ports;
  const etcdUrl = `http://127.0.0.1:${p.etcd}`;
  const peerUrl = `http://127.0.0.1:${p.etcdPeer}`;
  const grace = opts.nodeMonitorGracePeriodSeconds ?? (opts.largeFleet ? 240 : 40);
  return {
    etcd: [
      `--name=${state.name}`,
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=${state.name}=${peerUrl}`,
      // A test cluster is thrown away; skipping fsync keeps etcd from dominating a 2-core machine's IO.
      '--unsafe-no-fsync=true',
      '--quota-backend-bytes=4294967296',
      '--log-level=warn',
    ],
    'kube-apiserver': [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${p.apiserver}`,
      `--tls-cert-file=${pki.apiserver.certFile}`,
      `--tls-private-key-file=${pki.apiserver.keyFile}`,
      `--client-ca-file=${pki.caCertFile}`,
      `--service-account-issuer=https://kubernetes.default.svc.cluster.local`,
      `--service-account-key-file=${pki.saPublicKeyFile}`,
      `--service-account-signing-key-file=${pki.saPrivateKeyFile}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--authorization-mode=Node,RBAC',
      '--allow-privileged=true',
      // The apiserver would publish 127.0.0.1 as the endpoint of the `kubernetes` Service, which EndpointSlice
      // validation refuses; nothing here reaches the API through that Service.
      '--endpoint-reconciler-type=none',
      // `kubectl logs` reaches a node at its InternalIP (127.0.0.1 here), not at a Hostname nothing resolves.
      // No --kubelet-certificate-authority: the API server then does not check a node's serving certificate.
      '--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname',
      // A real kubelet (e2e/realnode/) authenticates the API server by this certificate; the stand-in ignores it.
      `--kubelet-client-certificate=${pki.kubeletClient.certFile}`,
      `--kubelet-client-key=${pki.kubeletClient.keyFile}`,
      '--profiling=false',
      '--v=1',
    ],
    'kube-controller-manager': [
      `--kubeconfig=${join(dir, 'controller-manager.kubeconfig')}`,
      `--authentication-kubeconfig=${join(dir, 'controller-manager.kubeconfig')}`,
      `--authorization-kubeconfig=${join(dir, 'controller-manager.kubeconfig')}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${p.kcm}`,
      `--cert-dir=${join(dir, 'kcm-certs')}`,
      '--leader-elect=false',
      // Each controller acts with its own service account, as kubeadm sets it up, so RBAC is exercised for real.
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${pki.saPrivateKeyFile}`,
      `--root-ca-file=${pki.caCertFile}`,
      `--cluster-signing-cert-file=${pki.caCertFile}`,
      `--cluster-signing-key-file=${pki.caKeyFile}`,
      `--node-monitor-grace-period=${grace}s`,
      // The default client rate (20/s per controller) is what capped a thousand new nodes: the node lifecycle
      // controller lifts the not-ready taint with one request per node, and the Job controller (Kueue's side of the
      // side-by-side benchmark) creates pods at that rate too.
      '--kube-api-qps=300',
      '--kube-api-burst=600',
      '--profiling=false',
      '--v=1',
    ],
    'kube-scheduler': [
      `--kubeconfig=${join(dir, 'scheduler.kubeconfig')}`,
      `--authentication-kubeconfig=${join(dir, 'scheduler.kubeconfig')}`,
      `--authorization-kubeconfig=${join(dir, 'scheduler.kubeconfig')}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${p.scheduler}`,
      `--cert-dir=${join(dir, 'scheduler-certs')}`,
      '--leader-elect=false',
      // Binding a pod and recording its Scheduled event are two requests; the default 50/s caps placement at
      // about 25 pods/s, which a burst of a thousand gangs would measure instead of the admission in front of it.
      '--kube-api-qps=300',
      '--kube-api-burst=600',
      '--profiling=false',
      '--v=1',
    ],
    kwok: [
      `--kubeconfig=${join(dir, 'kwok.kubeconfig')}`,
      `--config=${join(dir, 'stages.yaml')}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      `--server-address=127.0.0.1:${p.kwok}`,
      // Simulated pods get loopback-range addresses: nothing listens there, and nothing the operator might
      // dial (health checks, runtime callbacks) can leave the machine.
      '--node-ip=127.0.0.1',
      '--cidr=127.64.0.0/10',
      `--node-lease-duration-seconds=${opts.largeFleet ? 240 : 40}`,
    ],
  };
}

/**
 * Stops clusters whose owning test process died without stopping them (a crash, a killed CI step), so stray
 * control planes never pile up. Detached clusters (make cluster-up) are left alone: `make cluster-down` ends them.
 */
export async function reapAbandonedClusters(root = join(repoRoot, '.cluster')): Promise<void> {
  // A dead run's real nodes first: their mounts live in the cluster folders removed below.
  await reapAbandonedRealNodes();
  if (!existsSync(root)) return;
  for (const name of readdirSync(root)) {
    const stateFile = join(root, name, 'state.json');
    if (!existsSync(stateFile)) continue;
    let state: State;
    try {
      state = JSON.parse(readFileSync(stateFile, 'utf8')) as State;
    } catch {
      continue;
    }
    if (state.detached) continue;
    let ownerAlive = true;
    try {
      process.kill(state.ownerPid, 0);
    } catch {
      ownerAlive = false;
    }
    if (ownerAlive) continue;
    for (const rec of Object.values(state.processes)) {
      if (rec && isRunning(rec)) {
        try {
          process.kill(rec.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    rmSync(join(root, name), { recursive: true, force: true });
  }
}
