// A fleet of experiments driven to their ends through the operator, as their workers would: each worker's
// reports go to whichever operator is up (checkpoints, then a final checkpoint when stopped), its pods finish on
// the simulated nodes, and the scenario's users stop and resume some of them. Every report that the operator
// acknowledged is recorded, so the end state can be checked for lost checkpoints; every worker pod ever created is
// recorded, so duplicates (two pods of one rank and attempt) and leftovers show.
import { CoreV1Api, Watch, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { Arena, FakeRuntime, experiment, resourceClass, trainingCluster } from '../support/fixtures.ts';
import { createGpuNodes, finishPod, gpuProducts } from '../cluster/gpu-nodes.ts';
import { installCrds } from '../cluster/crds.ts';
import type { LocalCluster } from '../cluster/control-plane.ts';
import { cartpoleDqn } from '../support/manifests.ts';
import type { Experiment, ExperimentPhase } from '../../operator/api/v1alpha1/experiment.ts';
import { labels } from '../../operator/controllers/experiment/workers.ts';
import { seeded, type ChaosResult } from './scenario.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OperatorProcess } from '../support/operator-process.ts';

/** What a user does with an experiment, and the phase it must end in. */
export type Plan = 'finish' | 'stop' | 'stop-resume-finish';
const endPhase: Record<Plan, ExperimentPhase> = { finish: 'Succeeded', stop: 'Stopped', 'stop-resume-finish': 'Succeeded' };

interface Tracked {
  name: string;
  plan: Plan;
  /** Steps of checkpoints the operator acknowledged (200), by `<run>-<attempt>`. */
  acked: number[];
  /** `<run>-<attempt>` → what was sent on it. */
  sent: Map<string, { checkpoint?: boolean; final?: boolean; finished?: boolean }>;
  stopAsked: boolean;
  resumed: boolean;
  nextStep: number;
  /** How a user's stop of it ended when it was not after a final checkpoint (its Stopped message). */
  stoppedWithoutFinal?: string;
  /** What the final checkpoint's reports were answered, in order (0: no answer), and when (ms after the stop). */
  finalAnswers: string[];
  stoppingSince?: number;
}

// A stop that loses the final checkpoint ends Stopped like one that keeps it (lifecycle.ts), so the message tells
// them apart: the scenarios' workers always write one within the grace period.
const stoppedAfterFinal = (exp: Experiment) => exp.status?.phase === 'Stopped' && (exp.status.message ?? '').startsWith('Stopped after a final checkpoint');

export interface WorkloadOptions {
  kc: KubeConfig;
  namespace: string;
  resourceClass: string;
  count: number;
  seed: number;
  /** The operator's report URL now (it changes when the operator is restarted). */
  operatorUrl: () => string;
}

export class Workload {
  readonly arena: Arena;
  private readonly core: CoreV1Api;
  private readonly tracked = new Map<string, Tracked>();
  private readonly tokens = new Map<string, string>();
  /** Every worker pod uid seen, by `<experiment uid>/<run>-<attempt>/<rank>`. */
  readonly podsByRank = new Map<string, Set<string>>();
  reportsSent = 0;
  reportsRefused = 0;
  /** Refused reports by answer (0: no answer, the operator was down). */
  readonly refusedBy = new Map<number, number>();
  private stopWatch?: () => void;

  constructor(private readonly o: WorkloadOptions) {
    this.arena = new Arena(o.kc);
    this.core = o.kc.makeApiClient(CoreV1Api);
  }

  /** Creates the experiments, a third of each plan in a seeded order. */
  async create(): Promise<void> {
    await this.arena.namespace(this.o.namespace);
    await this.watchPods();
    const rand = seeded(this.o.seed);
    const plans: Plan[] = ['finish', 'stop', 'stop-resume-finish'];
    const names = Array.from({ length: this.o.count }, (_, i) => `exp-${i}`);
    for (let i = 0; i < names.length; i += 25) {
      await Promise.all(
        names.slice(i, i + 25).map(async (name) => {
          const plan = plans[Math.floor(rand() * plans.length)]!;
          this.tracked.set(name, { name, plan, acked: [], sent: new Map(), stopAsked: false, resumed: false, nextStep: 100, finalAnswers: [] });
          await this.arena.apply(experiment(this.o.namespace, name, this.o.resourceClass, { manifest: cartpoleDqn(), maxRetries: 5, stopGracePeriodSeconds: 30 }));
        }),
      );
    }
  }

  private async watchPods(): Promise<void> {
    const w = new Watch(this.o.kc);
    const seen = (pod: V1Pod) => {
      const l = pod.metadata?.labels ?? {};
      const uid = l[labels.experimentUid];
      if (!uid) return;
      const key = `${uid}/${l[labels.run]}-${l[labels.attempt]}/${l[labels.rank]}`;
      let set = this.podsByRank.get(key);
      if (!set) this.podsByRank.set(key, (set = new Set()));
      set.add(pod.metadata!.uid!);
    };
    const start = async (): Promise<void> => {
      const req = await w.watch(
        `/api/v1/namespaces/${this.o.namespace}/pods`,
        {},
        (type, pod: V1Pod) => {
          if (type === 'ADDED' || type === 'MODIFIED') seen(pod);
        },
        () => {
          // Watches end (the API server restarts, or times them out): list what was missed, watch again.
          if (this.stopWatch) void this.resync().then(start, () => setTimeout(() => void start(), 1000));
        },
      );
      this.stopWatch = () => req.abort();
    };
    this.stopWatch = () => undefined;
    await start();
  }

  private async resync(): Promise<void> {
    const list = await this.core.listNamespacedPod({ namespace: this.o.namespace });
    for (const p of list.items) {
      const l = p.metadata?.labels ?? {};
      const uid = l[labels.experimentUid];
      if (!uid) continue;
      const key = `${uid}/${l[labels.run]}-${l[labels.attempt]}/${l[labels.rank]}`;
      let set = this.podsByRank.get(key);
      if (!set) this.podsByRank.set(key, (set = new Set()));
      set.add(p.metadata!.uid!);
    }
  }

  /** One pass over every experiment: each moves one step of its plan, as far as the operator lets it now. */
  async step(): Promise<{ done: number; phases: Record<string, number> }> {
    const [exps, pods] = await Promise.all([this.arena.listExperiments(this.o.namespace), this.core.listNamespacedPod({ namespace: this.o.namespace })]);
    const byUid = new Map<string, V1Pod[]>();
    for (const p of pods.items) {
      const uid = p.metadata?.labels?.[labels.experimentUid];
      if (uid) byUid.set(uid, [...(byUid.get(uid) ?? []), p]);
    }
    const phases: Record<string, number> = {};
    let done = 0;
    const work: Promise<void>[] = [];
    for (const exp of exps) {
      const t = this.tracked.get(exp.metadata!.name!);
      if (!t) continue;
      const phase = exp.status?.phase ?? 'Pending';
      phases[phase] = (phases[phase] ?? 0) + 1;
      if (this.settled(t, exp)) {
        done++;
        continue;
      }
      work.push(this.advance(t, exp, byUid.get(exp.metadata!.uid!) ?? []).catch(() => undefined));
      if (work.length >= 40) await Promise.all(work.splice(0));
    }
    await Promise.all(work);
    return { done, phases };
  }

  private settled(t: Tracked, exp: Experiment): boolean {
    const phase = exp.status?.phase;
    if (phase !== endPhase[t.plan]) return false;
    if (t.plan === 'stop') return stoppedAfterFinal(exp);
    return t.plan !== 'stop-resume-finish' || t.resumed;
  }

  private async advance(t: Tracked, exp: Experiment, pods: V1Pod[]): Promise<void> {
    const s = exp.status ?? {};
    const attempt = `${s.run ?? 0}-${s.attempt ?? 0}`;
    const sent = t.sent.get(attempt) ?? {};
    t.sent.set(attempt, sent);
    const ofAttempt = pods.filter((p) => `${p.metadata?.labels?.[labels.run]}-${p.metadata?.labels?.[labels.attempt]}` === attempt);
    const live = ofAttempt.filter((p) => !p.metadata?.deletionTimestamp);
    switch (s.phase) {
      case 'Running': {
        if (live.length === 0 || !live.every((p) => p.status?.phase === 'Running')) return;
        if (!sent.checkpoint) {
          if (await this.report(t, exp, (rt, step) => rt.checkpoint(step, step / 100))) sent.checkpoint = true;
          return;
        }
        const finishNow = t.plan === 'finish' || (t.plan === 'stop-resume-finish' && t.resumed);
        if (finishNow && !sent.finished) {
          await Promise.all(live.map((p) => finishPod(this.o.kc, this.o.namespace, p.metadata!.name!, 'Succeeded')));
          sent.finished = true;
        } else if (!finishNow && !t.stopAsked) {
          await this.arena.patchExperiment(this.o.namespace, t.name, { action: 'Stop' });
          t.stopAsked = true;
        }
        return;
      }
      case 'Stopping':
        // The workers were told to stop (their pods are being deleted, within their grace period): they write a
        // final checkpoint, as the runtime does on SIGTERM.
        t.stoppingSince ??= Date.now();
        if (!sent.final && ofAttempt.some((p) => p.status?.phase === 'Running')) {
          const answered = await this.report(t, exp, (rt, step) => rt.checkpoint(step, step / 100, { final: true }), (status) => t.finalAnswers.push(`${status}@${Date.now() - t.stoppingSince!}ms`));
          if (answered) sent.final = true;
        }
        return;
      case 'Stopped':
        if (!stoppedAfterFinal(exp)) t.stoppedWithoutFinal ??= exp.status?.message ?? '';
        if (t.plan === 'stop-resume-finish' && !t.resumed) {
          await this.arena.patchExperiment(this.o.namespace, t.name, { action: 'Train' });
          t.resumed = true;
          t.stopAsked = true;
        }
        return;
      default:
        return;
    }
  }

  /** Sends one report as worker 0 of the experiment's current attempt; true when the operator acknowledged it. */
  private async report(t: Tracked, exp: Experiment, send: (rt: FakeRuntime, step: number) => Promise<{ status: number }>, answered?: (status: number) => void): Promise<boolean> {
    const key = `${exp.metadata!.uid}/${exp.status!.run}-${exp.status!.attempt}`;
    let token = this.tokens.get(key);
    if (!token) {
      token = await this.arena.runToken(this.o.namespace, exp);
      this.tokens.set(key, token);
    }
    const step = t.nextStep;
    this.reportsSent++;
    // A fresh sequence per report: a FakeRuntime numbers from 1, and each report here is the worker's only one
    // per attempt and kind, so the operator sees increasing numbers only within one object. Reuse one per attempt.
    const rt = this.runtimeFor(key, exp, token);
    const r = await send(rt, step).catch(() => ({ status: 0 }));
    answered?.(r.status);
    if (r.status === 200) {
      t.acked.push(step);
      t.nextStep += 100;
      return true;
    }
    this.reportsRefused++;
    this.refusedBy.set(r.status, (this.refusedBy.get(r.status) ?? 0) + 1);
    return false;
  }

  private readonly runtimes = new Map<string, { url: string; rt: FakeRuntime }>();
  private runtimeFor(key: string, exp: Experiment, token: string): FakeRuntime {
    const url = this.o.operatorUrl();
    const known = this.runtimes.get(key);
    if (known && known.url === url) return known.rt;
    // The sequence must keep rising across operator restarts, as the runtime's journal keeps it.
    const rt = known ? known.rt.retarget(url) : new FakeRuntime(url, exp, token);
    this.runtimes.set(key, { url, rt });
    return rt;
  }

  /** Lost, duplicated and leaked work, and phases that are not what each plan asks for. */
  async audit(): Promise<{ lost: number; duplicates: number; leaked: number; failures: string[] }> {
    const exps = await this.arena.listExperiments(this.o.namespace);
    const pods = (await this.core.listNamespacedPod({ namespace: this.o.namespace })).items;
    let lost = 0;
    let leaked = 0;
    const failures: string[] = [];
    for (const exp of exps) {
      const t = this.tracked.get(exp.metadata!.name!);
      if (!t) continue;
      if (!this.settled(t, exp)) failures.push(`${t.name} (${t.plan}) is ${exp.status?.phase} (${exp.status?.reason}: ${exp.status?.message}), not ${endPhase[t.plan]}`);
      if (t.stoppedWithoutFinal !== undefined) {
        const answers = t.finalAnswers.length ? `its final report was answered ${t.finalAnswers.join(', ')}` : 'its final report was never sent: no pass of the workload saw a worker still running while it was Stopping';
        failures.push(`${t.name}: its stop lost the final checkpoint (${t.stoppedWithoutFinal}); ${answers}`);
      }
      const kept = new Set((exp.status?.checkpoints ?? []).map((c) => c.step));
      const missing = t.acked.filter((step) => !kept.has(step));
      lost += missing.length;
      if (missing.length) failures.push(`${t.name}: acknowledged checkpoints ${missing.join(', ')} are not in its status`);
      const phase = exp.status?.phase;
      if (phase === 'Succeeded' || phase === 'Stopped' || phase === 'Failed') {
        // Completed pods stay for their logs, as a Job's do; a pod still pending or running holds a GPU.
        const left = pods.filter(
          (p) => p.metadata?.labels?.[labels.experimentUid] === exp.metadata!.uid && (p.status?.phase === 'Pending' || p.status?.phase === 'Running'),
        );
        leaked += left.length;
        if (left.length) failures.push(`${t.name} is ${phase} and still has ${left.map((p) => `${p.metadata!.name} (${p.status?.phase})`).join(', ')}`);
      }
    }
    let duplicates = 0;
    for (const [key, uids] of this.podsByRank) {
      if (uids.size > 1) {
        duplicates += uids.size - 1;
        failures.push(`${uids.size} pods for one rank of one attempt: ${key}`);
      }
    }
    return { lost, duplicates, leaked, failures };
  }

  stop(): void {
    const s = this.stopWatch;
    this.stopWatch = undefined;
    s?.();
  }
}

/**
 * The operator as its Deployment runs it: a process that exits (it steps down when it cannot renew its lease, as
 * controller-runtime's managers do) is started again, as the kubelet restarts the container.
 */
export class SupervisedOperator {
  current!: OperatorProcess;
  restarts = 0;
  private stopped = false;
  private loop?: Promise<void>;

  private constructor(
    private readonly start: () => Promise<OperatorProcess>,
    private readonly log: (line: string) => void,
  ) {}

  static async start(start: () => Promise<OperatorProcess>, log: (line: string) => void): Promise<SupervisedOperator> {
    const s = new SupervisedOperator(start, log);
    s.current = await start();
    s.loop = s.watch();
    return s;
  }

  get url(): string {
    return this.current.url;
  }

  private async watch(): Promise<void> {
    while (!this.stopped) {
      const p = this.current;
      if (p.child.exitCode === null && p.child.signalCode === null) await new Promise((r) => p.child.once('exit', r));
      if (this.stopped) return;
      this.log(`operator ${p.identity} exited (${p.child.exitCode ?? p.child.signalCode}); starting it again`);
      await sleep(1000);
      for (;;) {
        try {
          this.current = await this.start();
          this.restarts++;
          break;
        } catch (err) {
          // The API may still be down; the kubelet would back off and try again.
          this.log(`restart failed: ${(err as Error).message.split('\n')[0]}`);
          if (this.stopped) return;
          await sleep(2000);
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.current.kill('SIGKILL').catch(() => undefined);
    await this.loop;
  }
}

/**
 * What every fleet scenario starts with on a fresh control plane: the CRDs, `nodes` simulated 8-GPU nodes, the
 * TrainingCluster `onprem` and the one-GPU, one-worker ResourceClass `solo` the fleet runs on.
 */
export async function prepareFleet(cluster: LocalCluster, opts: { nodes: number }): Promise<{ kc: KubeConfig; arena: Arena }> {
  await installCrds(cluster);
  const kc = cluster.kubeConfig();
  const arena = new Arena(kc);
  await createGpuNodes(kc, { prefix: 'gpu', count: opts.nodes, gpus: 8, gpu: gpuProducts.H100 });
  await arena.apply(trainingCluster('onprem'));
  await arena.apply(resourceClass('solo', 'onprem', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 1 } }));
  return { kc, arena };
}

/** Steps a workload every half second in the background until stopped; `done` is how many are at their end. */
export function drive(work: Workload): { done: () => number; stop: () => Promise<void> } {
  let driving = true;
  let done = 0;
  const loop = (async () => {
    while (driving) {
      const s = await work.step().catch(() => undefined);
      if (s) done = s.done;
      await sleep(500);
    }
  })();
  return {
    done: () => done,
    stop: async () => {
      driving = false;
      await loop;
    },
  };
}

/**
 * Waits (up to the scenario's deadline) for every experiment to reach its end, stops driving, lets the operator
 * remove finished pods, and puts the audit's counts and first failures into `result`; returns how many ended.
 */
export async function settleFleet(work: Workload, driver: ReturnType<typeof drive>, count: number, scale: number, result: ChaosResult): Promise<number> {
  const deadline = Date.now() + 900_000 * Math.max(0.3, scale);
  while (driver.done() < count && Date.now() < deadline) await sleep(500);
  await driver.stop();
  await auditInto(work, result);
  return driver.done();
}

/** Gives the operator a moment to remove finished pods, then audits the fleet into `result` (first 20 failures). */
export async function auditInto(work: Workload, result: ChaosResult): Promise<void> {
  await sleep(5000);
  const audit = await work.audit();
  work.stop();
  Object.assign(result, { lost: audit.lost, duplicates: audit.duplicates, leaked: audit.leaked });
  result.failures.push(...audit.failures.slice(0, 20));
  if (audit.failures.length > 20) result.failures.push(`… and ${audit.failures.length - 20} more`);
}
