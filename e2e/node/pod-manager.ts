// The kubelet's pod sync for the local node, level-based: reconcile(key) looks at the pod as the informer has it
// and at what runs for it here, starts what should run (init containers in order, then the others, restarts with
// backoff by restartPolicy), stops what should not, writes the status when it changed, and removes the API object
// once a deleted pod's processes are gone. Process exits and probe changes only enqueue the pod's key.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { isNotFound, toKubeError } from '../../operator/kube/errors.ts';
import type { ReconcileResult, Reconciler } from '../../operator/kube/controller.ts';
import { forObject, type Logger } from '../../operator/observability/log.ts';
import { ContainerProcess, StartError, type ExitInfo, type Tools } from './container-process.ts';
import { logTail } from './log-file.ts';
import { resolveCommand, type ImageMapping } from './image-map.ts';
import { ContainerConfigError, containerEnv, expandVars, type Allocatable } from './pod-env.ts';
import { podStatus, shouldRestart, statusUpToDate, type ContainerView, type PodView } from './pod-status.ts';
import { ProbeWorker, type ProbeKind } from './probes.ts';
import { VolumeError, containerMounts, prepareVolumes, type PreparedVolume, type VolumeReader } from './volumes.ts';
import { kubeTime, type Container, type ContainerState, type Pod, type TerminatedState } from './kube-types.ts';
import type { GpuAllocator } from './gpu.ts';
import type { LoopbackIpPool } from './ip-pool.ts';
import type { NodeStateFile } from './state-file.ts';
import type { PodEvents } from './pod-events.ts';
import type { LogLookup } from './kubelet-server.ts';
import type { MountSpec } from './mount-helper.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
export const hostIP = '127.0.0.1';
const gpuResource = 'nvidia.com/gpu';
// The kubelet never gives a container less than this to stop (minimumGracePeriodInSeconds).
const minGraceMs = 2000;
// A run that lasted this long resets the crash-loop backoff.
const stableRunMs = 10 * 60_000;
const resyncMs = 30_000;

type Role = 'init' | 'sidecar' | 'main';

interface Run {
  name: string;
  role: Role;
  spec: Container;
  restartCount: number;
  /** Index of the last run that got a log file (the restart count it started with). */
  logIndex?: number;
  proc?: ContainerProcess;
  starting: boolean;
  containerID?: string;
  /** Why the next start cannot happen yet (unmapped image, missing ConfigMap, volume setup). */
  waiting?: { reason: string; message: string };
  retryAt: number;
  last?: TerminatedState;
  previous?: TerminatedState;
  backoffMs: number;
  notBefore: number;
  probes: Partial<Record<ProbeKind, ProbeWorker>>;
  killTimer?: NodeJS.Timeout;
  stopping: boolean;
  env?: Record<string, string>;
}

interface PodRuntime {
  key: string;
  uid: string;
  dir: string;
  ip: string;
  hostname: string;
  startTime: string;
  runs: Run[];
  initDone: boolean;
  rejected?: { reason: string; message: string };
  deleting: boolean;
  deleteIssued: boolean;
  /** Terminal in the API or its sidecars were stopped: nothing is started again. */
  halted: boolean;
}

export interface PodManagerOptions {
  kc: KubeConfig;
  dataDir: string;
  imageMap: readonly ImageMapping[];
  log: Logger;
  events: PodEvents;
  state: NodeStateFile;
  tools: Tools & { nsenter?: string };
  allocatable: Allocatable;
  gpus?: GpuAllocator;
  ips: LoopbackIpPool;
  /** PATH every process starts with. */
  path: string;
  /** The API server as KUBERNETES_SERVICE_HOST/PORT, so in-cluster clients in a pod find it. */
  apiServer?: { host: string; port: string };
  backoff: { initialMs: number; maxMs: number };
  getPod: (key: string) => Pod | undefined;
  enqueue: (key: string) => void;
}

function hostnameOf(pod: Pod): string {
  const name = pod.spec?.hostname || pod.metadata?.name || 'pod';
  return name.slice(0, 63).replace(/[-.]+$/, '');
}

function requestedGpus(c: Container): number {
  const v = c.resources?.limits?.[gpuResource] ?? c.resources?.requests?.[gpuResource];
  return v === undefined ? 0 : Number(v) || 0;
}

export class PodManager implements Reconciler {
  private readonly pods = new Map<string, PodRuntime>();
  private readonly core: CoreV1Api;
  private readonly reader: VolumeReader;

  constructor(private readonly o: PodManagerOptions) {
    this.core = o.kc.makeApiClient(CoreV1Api);
    const orUndefined = async <T>(p: Promise<T>): Promise<T | undefined> => {
      try {
        return await p;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    };
    const core = this.core;
    this.reader = {
      configMap: (namespace, name) => orUndefined(core.readNamespacedConfigMap({ namespace, name })) as never,
      secret: (namespace, name) => orUndefined(core.readNamespacedSecret({ namespace, name })) as never,
      pvc: (namespace, name) => orUndefined(core.readNamespacedPersistentVolumeClaim({ namespace, name })) as never,
      pv: (name) => orUndefined(core.readPersistentVolume({ name })) as never,
      serviceAccountToken: async (namespace, sa, pod, audience, expirationSeconds) => {
        const res = await core.createNamespacedServiceAccountToken({
          namespace,
          name: sa,
          body: {
            spec: {
              audiences: audience ? [audience] : [],
              expirationSeconds: expirationSeconds ?? 3607,
              boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid },
            },
          },
        });
        return res.status?.token ?? '';
      },
    };
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const pod = this.o.getPod(key);
    let rt = this.pods.get(key);
    if (rt && (!pod || pod.metadata?.uid !== rt.uid)) {
      await this.teardown(rt, minGraceMs, true);
      rt = undefined;
    }
    if (!pod) return;
    const phase = pod.status?.phase;
    const terminalInApi = phase === 'Succeeded' || phase === 'Failed';
    if (!rt) {
      // Finished before this node (or this incarnation of it) took over: never run again.
      if (terminalInApi) {
        if (pod.metadata?.deletionTimestamp) await this.deletePod(pod);
        return;
      }
      rt = this.admit(pod);
    }
    if (pod.metadata?.deletionTimestamp) return this.syncDeleting(pod, rt);
    if (terminalInApi && !rt.halted) {
      // Someone else declared the pod over (an eviction): nothing of it may keep running.
      rt.halted = true;
      for (const run of rt.runs) this.stopRun(run, this.graceMs(pod));
    }
    if (!rt.rejected && !rt.halted) await this.syncContainers(pod, rt);
    await this.writeStatus(pod, rt);
    return { requeueAfterMs: this.nextWake(rt) };
  }

  /** Takes a new pod on: its IP, its directory, its GPUs, and what an earlier incarnation of the node reported. */
  private admit(pod: Pod): PodRuntime {
    const key = `${pod.metadata!.namespace}/${pod.metadata!.name}`;
    const uid = pod.metadata!.uid!;
    // A hostNetwork pod has the node's address, as on any node; the others get one of their own.
    const hostNetwork = pod.spec?.hostNetwork === true;
    const earlier = pod.status?.podIP;
    if (earlier && !hostNetwork) this.o.ips.restore(uid, earlier);
    const ip = hostNetwork ? hostIP : this.o.ips.allocate(uid);
    const dir = join(this.o.dataDir, 'pods', `${pod.metadata!.namespace}_${pod.metadata!.name}_${uid}`);
    mkdirSync(dir, { recursive: true });
    const spec = pod.spec!;
    const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
    const now = kubeTime(new Date());
    const runs: Run[] = [
      ...(spec.initContainers ?? []).map((c) => ({ c, role: (c.restartPolicy === 'Always' ? 'sidecar' : 'init') as Role })),
      ...spec.containers.map((c) => ({ c, role: 'main' as Role })),
    ].map(({ c, role }) => {
      const run: Run = { name: c.name, role, spec: c, restartCount: 0, starting: false, retryAt: 0, backoffMs: 0, notBefore: 0, probes: {}, stopping: false };
      const s = statuses.find((x) => x.name === c.name);
      if (s) {
        // Reported by an earlier incarnation of this node: whatever ran then is gone now.
        run.restartCount = s.restartCount ?? 0;
        if (s.state?.terminated) run.last = s.state.terminated;
        else if (s.state?.running) {
          run.last = {
            exitCode: 137,
            reason: 'ContainerStatusUnknown',
            message: 'The container could not be located when the node restarted',
            startedAt: s.state.running.startedAt,
            finishedAt: now,
          };
        } else if (s.lastState?.terminated) run.last = s.lastState.terminated;
      }
      return run;
    });
    const rt: PodRuntime = {
      key,
      uid,
      dir,
      ip,
      hostname: hostNetwork ? hostname() : hostnameOf(pod),
      startTime: pod.status?.startTime ?? now,
      runs,
      initDone: runs.every((r) => r.role === 'main') || pod.status?.conditions?.some((c) => c.type === 'Initialized' && c.status === 'True') === true,
      deleting: false,
      deleteIssued: false,
      halted: false,
    };
    const gpus = Math.max(
      spec.containers.reduce((n, c) => n + requestedGpus(c), 0),
      ...(spec.initContainers ?? []).map(requestedGpus),
    );
    if (gpus > 0) {
      const free = this.o.gpus?.free() ?? 0;
      const got = this.o.gpus?.allocate(uid, gpus);
      if (!got) {
        rt.rejected = {
          reason: `OutOf${gpuResource}`,
          message: `Node didn't have enough resource: ${gpuResource}, requested: ${gpus}, used: ${(this.o.gpus?.count ?? 0) - free}, capacity: ${this.o.gpus?.count ?? 0}`,
        };
        this.o.events.record(pod, 'Warning', rt.rejected.reason, rt.rejected.message);
      }
    }
    this.pods.set(key, rt);
    return rt;
  }

  private graceMs(pod: Pod): number {
    const s = pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
    return Math.max(minGraceMs, s * 1000);
  }

  private policyOf(pod: Pod, run: Run): string {
    if (run.role === 'sidecar') return 'Always';
    const policy = pod.spec?.restartPolicy ?? 'Always';
    if (run.role === 'init') return policy === 'Never' ? 'Never' : 'OnFailure';
    return policy;
  }

  /** Whether the run should be started now (first start, or a restart whose backoff has passed). */
  private due(pod: Pod, rt: PodRuntime, run: Run, now: number): boolean {
    if (run.proc || run.starting || run.stopping || rt.halted || now < run.retryAt) return false;
    if (!run.last) return true;
    return shouldRestart(this.policyOf(pod, run), run.last.exitCode) && now >= run.notBefore;
  }

  private finished(pod: Pod, run: Run): boolean {
    return !run.proc && !run.starting && run.last !== undefined && !shouldRestart(this.policyOf(pod, run), run.last.exitCode);
  }

  private async syncContainers(pod: Pod, rt: PodRuntime): Promise<void> {
    const now = Date.now();
    if (!rt.initDone) {
      for (const run of rt.runs.filter((r) => r.role !== 'main')) {
        if (run.role === 'sidecar') {
          if (this.due(pod, rt, run, now)) await this.startRun(pod, rt, run);
          if (!run.proc || !this.isStarted(run)) return;
          continue;
        }
        if (run.last?.exitCode === 0 && !run.proc) continue;
        if (this.finished(pod, run)) {
          // Failed for good (restartPolicy Never): so is the pod.
          rt.halted = true;
          this.o.gpus?.releasePrefix(rt.uid);
          return;
        }
        if (this.due(pod, rt, run, now)) await this.startRun(pod, rt, run);
        return;
      }
      rt.initDone = true;
    }
    const mains = rt.runs.filter((r) => r.role === 'main');
    if (mains.every((r) => this.finished(pod, r))) {
      // Every regular container is done for good: sidecars stop, then the pod's GPUs are free again.
      for (const run of rt.runs) this.stopRun(run, this.graceMs(pod));
      if (rt.runs.every((r) => !r.proc && !r.starting)) {
        rt.halted = true;
        this.o.gpus?.releasePrefix(rt.uid);
      }
      return;
    }
    for (const run of rt.runs) {
      if (run.role !== 'init' && this.due(pod, rt, run, now)) await this.startRun(pod, rt, run);
    }
  }

  private isStarted(run: Run): boolean {
    return Boolean(run.proc) && (run.probes.startup ? run.probes.startup.result === true : true);
  }

  private isReady(run: Run): boolean {
    return this.isStarted(run) && (run.probes.readiness ? run.probes.readiness.result === true : true);
  }

  private baseEnv(pod: Pod, rt: PodRuntime, mapping: ImageMapping): Record<string, string> {
    const env: Record<string, string> = { PATH: this.o.path, HOME: '/root', HOSTNAME: rt.hostname, POD_IP: rt.ip };
    const api = this.o.apiServer;
    if (api && pod.spec?.enableServiceLinks !== false) {
      Object.assign(env, {
        KUBERNETES_SERVICE_HOST: api.host,
        KUBERNETES_SERVICE_PORT: api.port,
        KUBERNETES_SERVICE_PORT_HTTPS: api.port,
        KUBERNETES_PORT: `tcp://${api.host}:${api.port}`,
      });
    } else if (api) {
      Object.assign(env, { KUBERNETES_SERVICE_HOST: api.host, KUBERNETES_SERVICE_PORT: api.port });
    }
    return { ...env, ...mapping.env };
  }

  private hostsFiles(pod: Pod, rt: PodRuntime): MountSpec[] {
    const hosts = join(rt.dir, 'etc-hosts');
    const hostnameFile = join(rt.dir, 'etc-hostname');
    let base = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n';
    try {
      base = readFileSync('/etc/hosts', 'utf8');
    } catch {
      // keep the minimal file
    }
    const sub = pod.spec?.subdomain;
    const fqdn = sub ? ` ${rt.hostname}.${sub}.${pod.metadata?.namespace}.svc.cluster.local` : '';
    const aliases = (pod.spec?.hostAliases ?? []).map((a) => `${a.ip}\t${(a.hostnames ?? []).join('\t')}\n`).join('');
    // Written with the same helper as volumes, so a running container sees an atomic replacement.
    writeSmall(hosts, `${base.trimEnd()}\n\n# Kubernetes-managed: the pod's own name.\n${rt.ip}\t${rt.hostname}${fqdn}\n${aliases}`);
    writeSmall(hostnameFile, `${rt.hostname}\n`);
    return [
      { source: hosts, target: '/etc/hosts', readOnly: false, kind: 'file' },
      { source: hostnameFile, target: '/etc/hostname', readOnly: false, kind: 'file' },
    ];
  }

  private gpuEnv(rt: PodRuntime, c: Container): Record<string, string> {
    if (!this.o.gpus || this.o.gpus.count === 0) return {};
    const n = requestedGpus(c);
    const mine = this.o.gpus.of(rt.uid);
    // Containers of one pod split the pod's GPUs in spec order, as the device plugin gives each its own.
    const mains = rt.runs.filter((r) => r.role === 'main').map((r) => r.spec);
    const before = mains.slice(0, Math.max(0, mains.findIndex((x) => x.name === c.name))).reduce((sum, x) => sum + requestedGpus(x), 0);
    const ids = n > 0 ? mine.slice(before, before + n).join(',') : '';
    return { CUDA_VISIBLE_DEVICES: ids, NVIDIA_VISIBLE_DEVICES: ids || 'void' };
  }

  private async startRun(pod: Pod, rt: PodRuntime, run: Run): Promise<void> {
    run.starting = true;
    const log = forObject(this.o.log, { namespace: pod.metadata?.namespace, name: pod.metadata?.name ?? '' });
    try {
      const c = run.spec;
      const resolved = resolveCommand(c, this.o.imageMap);
      if (!resolved.ok) {
        this.setWaiting(pod, run, resolved.reason, resolved.message, 10_000);
        return;
      }
      let env: Record<string, string>;
      let volumes: Map<string, PreparedVolume>;
      let mounts: MountSpec[];
      try {
        env = await containerEnv({
          pod,
          container: c,
          base: this.baseEnv(pod, rt, resolved.mapping),
          facts: { podIP: rt.ip, hostIP },
          allocatable: this.o.allocatable,
          reader: this.reader,
        });
        Object.assign(env, this.gpuEnv(rt, c));
      } catch (err) {
        if (!(err instanceof ContainerConfigError)) throw err;
        this.setWaiting(pod, run, 'CreateContainerConfigError', err.message, 5000);
        return;
      }
      try {
        volumes = await prepareVolumes({
          pod,
          podDir: rt.dir,
          dataDir: this.o.dataDir,
          facts: { podIP: rt.ip, hostIP },
          allocatable: this.o.allocatable,
          reader: this.reader,
        });
        mounts = containerMounts(c, volumes, env);
      } catch (err) {
        if (err instanceof VolumeError) {
          this.o.events.record(pod, 'Warning', 'FailedMount', `MountVolume.SetUp failed for ${err.message}`);
          this.setWaiting(pod, run, 'ContainerCreating', err.message, 2000, false);
          return;
        }
        if (err instanceof ContainerConfigError) {
          this.setWaiting(pod, run, 'CreateContainerConfigError', err.message, 5000);
          return;
        }
        throw err;
      }
      const taken = new Set(mounts.map((m) => m.target));
      mounts.push(...this.hostsFiles(pod, rt).filter((m) => !taken.has(m.target)));
      const argv = resolved.argv.map((a) => expandVars(a, env));

      if (run.last) run.restartCount++;
      const n = run.restartCount;
      const logDir = join(rt.dir, 'logs', run.name);
      const staging = join(rt.dir, 'run', `${run.name}-${n}`);
      mkdirSync(logDir, { recursive: true });
      rmSync(staging, { recursive: true, force: true });
      mkdirSync(staging, { recursive: true });
      const procId = `${rt.uid}/${run.name}/${n}`;
      run.waiting = undefined;
      run.logIndex = n;
      run.containerID = `arena-local://${rt.uid}-${run.name}-${n}`;
      run.env = env;
      let proc: ContainerProcess;
      try {
        proc = await ContainerProcess.start({
          plan: { argv, env, workingDir: c.workingDir || resolved.mapping.workingDir || '/', hostname: rt.hostname, mounts, stagingDir: staging },
          planPath: join(rt.dir, 'run', `${run.name}-${n}.json`),
          logPath: join(logDir, `${n}.log`),
          tools: this.o.tools,
          onSpawn: (id) => this.o.state.add(procId, { ...id, pod: rt.key, container: run.name }),
        });
      } catch (err) {
        if (!(err instanceof StartError)) throw err;
        this.o.state.remove(procId);
        const at = new Date();
        this.exited(pod, rt, run, { exitCode: 128, finishedAt: at }, at, { reason: 'StartError', message: err.message });
        this.o.events.record(pod, 'Warning', 'Failed', `Error: ${err.message}`, run.name);
        log.warn('container could not start', { container: run.name, error: err.message });
        return;
      }
      run.proc = proc;
      this.o.events.record(pod, 'Normal', 'Started', `Started container ${run.name}`, run.name);
      log.info('container started', { container: run.name, pid: proc.pid, restartCount: n });
      this.startProbes(pod, rt, run);
      void proc.exited.then((info) => {
        this.o.state.remove(procId);
        rmSync(staging, { recursive: true, force: true });
        this.exited(pod, rt, run, info, proc.startedAt);
        log.info('container exited', { container: run.name, exitCode: info.exitCode, restartCount: n });
      });
    } finally {
      run.starting = false;
    }
  }

  private setWaiting(pod: Pod, run: Run, reason: string, message: string, retryMs: number, event = true): void {
    run.waiting = { reason, message };
    run.retryAt = Date.now() + retryMs;
    if (event) this.o.events.record(pod, 'Warning', reason === 'ErrImageNeverPull' ? reason : 'Failed', message, run.name);
  }

  private exited(pod: Pod, rt: PodRuntime, run: Run, info: ExitInfo, startedAt: Date, why?: { reason: string; message: string }): void {
    clearTimeout(run.killTimer);
    for (const p of Object.values(run.probes)) p?.stop();
    run.probes = {};
    run.proc = undefined;
    run.stopping = false;
    const term: TerminatedState = {
      exitCode: info.exitCode,
      reason: why?.reason ?? (info.exitCode === 0 ? 'Completed' : 'Error'),
      startedAt: kubeTime(startedAt),
      finishedAt: kubeTime(info.finishedAt),
    };
    if (why?.message) term.message = why.message;
    else if (info.exitCode !== 0 && run.spec.terminationMessagePolicy === 'FallbackToLogsOnError' && run.logIndex !== undefined) {
      const tail = logTail(join(rt.dir, 'logs', run.name, `${run.logIndex}.log`));
      if (tail) term.message = tail;
    }
    if (info.signal !== undefined) term.signal = info.signal;
    if (run.containerID) term.containerID = run.containerID;
    run.previous = run.last;
    run.last = term;
    // The kubelet's crash-loop backoff: the first restart is immediate, then initial, doubling up to max; a run
    // that stayed up long enough starts the count again.
    if (info.finishedAt.getTime() - startedAt.getTime() > stableRunMs) run.backoffMs = 0;
    run.notBefore = info.finishedAt.getTime() + run.backoffMs;
    run.backoffMs = run.backoffMs ? Math.min(run.backoffMs * 2, this.o.backoff.maxMs) : this.o.backoff.initialMs;
    if (run.notBefore > Date.now() && !rt.deleting && shouldRestart(this.policyOf(pod, run), info.exitCode)) {
      this.o.events.record(pod, 'Warning', 'BackOff', `Back-off restarting failed container ${run.name} in pod ${pod.metadata?.name}_${pod.metadata?.namespace}(${rt.uid})`, run.name);
    }
    this.o.enqueue(rt.key);
  }

  private startProbes(pod: Pod, rt: PodRuntime, run: Run): void {
    const c = run.spec;
    const target = () => ({ podIP: rt.ip, container: c, pid: run.proc?.pid ?? 0, env: run.env ?? {}, nsenter: this.o.tools.nsenter });
    const changed = (w: ProbeWorker) => {
      if (w.result === false && (w.kind === 'liveness' || w.kind === 'startup')) {
        const what = w.kind === 'liveness' ? 'liveness' : 'startup';
        this.o.events.record(pod, 'Warning', 'Unhealthy', `${what[0]!.toUpperCase()}${what.slice(1)} probe failed: ${w.lastMessage}`, run.name);
        this.o.events.record(pod, 'Normal', 'Killing', `Container ${run.name} failed ${what} probe, will be restarted`, run.name);
        const probeGrace = (w.kind === 'liveness' ? c.livenessProbe : c.startupProbe)?.terminationGracePeriodSeconds;
        this.stopRun(run, probeGrace !== undefined ? Math.max(minGraceMs, probeGrace * 1000) : this.graceMs(pod));
      } else if (w.result === false) {
        this.o.events.record(pod, 'Warning', 'Unhealthy', `Readiness probe failed: ${w.lastMessage}`, run.name);
      }
      this.o.enqueue(rt.key);
    };
    const startedYet = () => (run.probes.startup ? run.probes.startup.result === true : true);
    if (c.startupProbe) run.probes.startup = new ProbeWorker('startup', c.startupProbe, target, changed, () => run.probes.startup?.result !== true);
    if (c.readinessProbe) run.probes.readiness = new ProbeWorker('readiness', c.readinessProbe, target, changed, startedYet);
    if (c.livenessProbe) run.probes.liveness = new ProbeWorker('liveness', c.livenessProbe, target, changed, startedYet);
    for (const p of Object.values(run.probes)) p?.start();
  }

  /** SIGTERM to the container's process group now, SIGKILL after the grace period. */
  private stopRun(run: Run, graceMs: number): void {
    const proc = run.proc;
    if (!proc || run.stopping) return;
    run.stopping = true;
    proc.signal('SIGTERM');
    run.killTimer = setTimeout(() => proc.signal('SIGKILL'), graceMs);
    run.killTimer.unref();
  }

  private async syncDeleting(pod: Pod, rt: PodRuntime): Promise<ReconcileResult | void> {
    const grace = this.graceMs(pod);
    if (!rt.deleting) {
      rt.deleting = true;
      for (const run of rt.runs) {
        if (run.proc) this.o.events.record(pod, 'Normal', 'Killing', `Stopping container ${run.name}`, run.name);
      }
    }
    for (const run of rt.runs) this.stopRun(run, grace);
    if (rt.runs.some((r) => r.proc || r.starting)) return { requeueAfterMs: 1000 };
    if (rt.deleteIssued) return;
    // As the kubelet does: the final status first, then the object goes (grace 0: nothing runs any more).
    await this.writeStatus(pod, rt).catch((err: unknown) =>
      this.o.log.debug('final status not written', { key: rt.key, error: toKubeError(err).message }),
    );
    await this.deletePod(pod);
    rt.deleteIssued = true;
  }

  private async deletePod(pod: Pod): Promise<void> {
    try {
      await this.core.deleteNamespacedPod({
        namespace: pod.metadata!.namespace!,
        name: pod.metadata!.name!,
        // With a body the API server reads the options from it alone: the grace period has to be in there too.
        body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata!.uid } },
      });
    } catch (err) {
      const e = toKubeError(err);
      // Gone already, or a new pod with the same name (the uid precondition failed).
      if (e.reason !== 'NotFound' && e.reason !== 'Conflict') throw err;
    }
  }

  private view(pod: Pod, rt: PodRuntime): PodView {
    const now = Date.now();
    const viewOf = (run: Run): ContainerView => {
      let state: ContainerState;
      let lastState: ContainerState | undefined;
      const willRestart = run.last !== undefined && !rt.deleting && !rt.halted && shouldRestart(this.policyOf(pod, run), run.last.exitCode);
      if (run.proc) {
        state = { running: { startedAt: kubeTime(run.proc.startedAt) } };
        lastState = run.last && { terminated: run.last };
      } else if (run.waiting) {
        state = { waiting: run.waiting };
        lastState = run.last && { terminated: run.last };
      } else if (run.last && willRestart && run.notBefore > now) {
        state = {
          waiting: {
            reason: 'CrashLoopBackOff',
            message: `back-off ${Math.round(run.backoffMs / 2000)}s restarting failed container=${run.name} pod=${pod.metadata?.name}_${pod.metadata?.namespace}(${rt.uid})`,
          },
        };
        lastState = { terminated: run.last };
      } else if (run.last && !run.starting && !willRestart) {
        state = { terminated: run.last };
        lastState = run.previous && { terminated: run.previous };
      } else {
        state = { waiting: { reason: run.role === 'main' && !rt.initDone ? 'PodInitializing' : 'ContainerCreating' } };
        lastState = run.last && { terminated: run.last };
      }
      const v: ContainerView = {
        name: run.name,
        image: run.spec.image ?? '',
        imageID: `arena-local://${run.spec.image ?? ''}`,
        restartCount: run.restartCount,
        state,
        ready: this.isReady(run) && !run.stopping,
        started: this.isStarted(run),
      };
      if (lastState) v.lastState = lastState;
      if (run.containerID) v.containerID = run.containerID;
      if (run.role === 'sidecar') v.sidecar = true;
      return v;
    };
    return {
      hostIP,
      podIP: rt.ip,
      startTime: rt.startTime,
      sandboxReady: !rt.rejected,
      init: rt.runs.filter((r) => r.role !== 'main').map(viewOf),
      containers: rt.runs.filter((r) => r.role === 'main').map(viewOf),
      initDone: rt.initDone,
      rejected: rt.rejected,
      deleting: rt.deleting,
    };
  }

  private async writeStatus(pod: Pod, rt: PodRuntime): Promise<void> {
    const desired = podStatus(pod, this.view(pod, rt), kubeTime(new Date()));
    if (statusUpToDate(pod.status, desired)) return;
    try {
      await this.core.patchNamespacedPodStatus(
        { namespace: pod.metadata!.namespace!, name: pod.metadata!.name!, body: { status: desired } },
        mergePatch,
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private nextWake(rt: PodRuntime): number {
    const now = Date.now();
    let wake = resyncMs;
    for (const run of rt.runs) {
      if (run.last && !run.proc && run.notBefore > now) wake = Math.min(wake, run.notBefore - now);
      if (run.waiting && run.retryAt > now) wake = Math.min(wake, run.retryAt - now);
    }
    return Math.max(50, wake);
  }

  /** Ends every process of the pod (SIGTERM, SIGKILL after `graceMs`) and frees what it held. */
  private async teardown(rt: PodRuntime, graceMs: number, removeFiles: boolean): Promise<void> {
    rt.halted = true;
    const procs = rt.runs.map((r) => r.proc).filter((p): p is ContainerProcess => p !== undefined);
    for (const run of rt.runs) this.stopRun(run, graceMs);
    await Promise.all(procs.map((p) => p.exited));
    for (const run of rt.runs) for (const p of Object.values(run.probes)) p?.stop();
    this.o.ips.release(rt.uid);
    this.o.gpus?.releasePrefix(rt.uid);
    if (removeFiles) rmSync(rt.dir, { recursive: true, force: true });
    if (this.pods.get(rt.key) === rt) this.pods.delete(rt.key);
  }

  /** Stops every pod's processes (the node is going away); their files stay for inspection. */
  async stopAll(graceMs: number): Promise<void> {
    await Promise.all([...this.pods.values()].map((rt) => this.teardown(rt, graceMs, false)));
  }

  processes(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const rt of this.pods.values()) {
      for (const run of rt.runs) if (run.proc) (out[rt.key] ??= {})[run.name] = run.proc.pid;
    }
    return out;
  }

  /** Signals a pod's containers as a crash would; returns how many processes got it. */
  kill(key: string, signal: NodeJS.Signals, container?: string): number {
    const rt = this.pods.get(key);
    let n = 0;
    for (const run of rt?.runs ?? []) {
      if (run.proc && (!container || run.name === container)) {
        run.proc.signal(signal);
        n++;
      }
    }
    return n;
  }

  podIP(key: string): string | undefined {
    return this.pods.get(key)?.ip;
  }

  logLookup(namespace: string, name: string, container: string, previous: boolean): LogLookup {
    const rt = this.pods.get(`${namespace}/${name}`);
    if (!rt) return { status: 404, message: `pod "${name}" in namespace "${namespace}" is not on this node` };
    const run = rt.runs.find((r) => r.name === container);
    if (!run) return { status: 400, message: `container "${container}" in pod "${name}" is not valid` };
    if (run.logIndex === undefined) {
      const reason = run.waiting?.reason ?? 'ContainerCreating';
      return { status: 400, message: `container "${container}" in pod "${name}" is waiting to start: ${reason}` };
    }
    const dir = join(rt.dir, 'logs', run.name);
    if (previous) {
      // While a container waits to restart, its last run is still the current one (as with the kubelet).
      const index = run.logIndex - 1;
      if (index < 0) return { status: 400, message: `previous terminated container "${container}" in pod "${name}" not found` };
      return { path: join(dir, `${index}.log`), running: () => false };
    }
    const index = run.logIndex;
    const proc = run.proc;
    return { path: join(dir, `${index}.log`), running: () => proc !== undefined && run.logIndex === index && proc.running() };
  }
}

/** Replaces a small file atomically, so a reader sees the old or the new content. */
function writeSmall(path: string, content: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}
