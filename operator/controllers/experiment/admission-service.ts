// The gang scheduler run as a service for the experiment reconciler: reconciles file their Pending gangs here,
// admission cycles run debounced (and periodically, so starvation holds age even without events), and every
// experiment whose verdict changed is woken. The verdicts are in-memory state the reconciler reads like a cache;
// after an operator restart they are rebuilt from the gangs reconciles file again.
import type { Logger } from 'winston';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import type { CapacityModel } from '../../scheduler/capacity.ts';
import { GangScheduler, type AdmissionGate, type GangRequest as SchedulerGang } from '../../scheduler/admission.ts';
import { classEligibility, DEFAULT_GPU_TAINT_KEY, type NodeEligibility } from '../../scheduler/eligibility.ts';
import { parseCpuMilli, parseMemoryBytes } from '../../scheduler/quantity.ts';
import type { Admission, GangRequest } from './reconcile.ts';
import type { AdmissionView, PreemptionView, StartEstimate } from './lifecycle.ts';
import type { Resources } from '../../scheduler/capacity.ts';
import { chooseVictims, type Candidate } from '../../scheduler/preemption.ts';
import { estimateStarts, type QueuedGang, type RunningWork } from '../../scheduler/estimate.ts';
import { borrowedGpus, ClassTeams, namespaceOf, quotaRefusal, teamOrder, teamSentence, teamUsage } from '../../scheduler/teams.ts';

/** An experiment whose worker pods hold capacity now (Running, or Stopping while they exit). */
export interface RunningGang {
  key: string;
  /** Its ResourceClass, for team quotas. */
  className?: string;
  priority: number;
  /** `<run>-<attempt>` of the attempt whose pods these are. */
  attemptId: string;
  /** Only a Running attempt may be preempted; one that is already stopping is not. */
  preemptible: boolean;
  startedAtMs: number;
  lastCheckpointAtMs?: number;
  /** Its pods' requests, per node. */
  frees: { node: string; resources: Resources }[];
  /** ms until max_steps at its reported speed; undefined without one. */
  remainingMs?: number;
  /** For the estimate's reasoning, e.g. "at 20 steps/s toward 5000 steps". */
  speed?: string;
}

export interface PreemptionOptions {
  /** A victim must have run its current attempt at least this long. */
  minRunTimeMs: number;
  /** The grace period a victim's workers get to write their checkpoint and exit (capped by its stopGracePeriodSeconds). */
  deadlineSeconds: number;
}

/** At most this many waiting gangs (in queue order) get a start estimate: the replay is per event and per gang. */
export const ESTIMATED_GANGS = 32;
/** Waiting gangs per cycle that may look for victims (the first in queue order); the rest try in later cycles. */
export const PREEMPTION_TRIES_PER_CYCLE = 4;
/** After a search found no victims for a gang, it looks again only this much later (a search can take 0.1 s at scale). */
const PREEMPTION_RETRY_MS = 10_000;
/** How often the start estimates are recomputed at most. */
const ESTIMATE_EVERY_MS = 5_000;

export interface AdmissionServiceOptions {
  capacity: CapacityModel;
  /** Wakes the reconcilers of experiments whose verdict changed. */
  wake: (keys: string[]) => void;
  logger: Logger;
  starvationMs?: number;
  debounceMs?: number;
  /** Cycles also run this often, so waits age and held nodes are re-evaluated without events. */
  periodMs?: number;
  now?: () => number;
  onCycle?: (stats: { durationMs: number; admitted: number; waiting: number }) => void;
  /** The gangs running now, for preemption and start estimates; without it neither is done. */
  running?: () => RunningGang[];
  /** Checkpoint-aware preemption; off when absent. */
  preemption?: PreemptionOptions;
  /** A victim was chosen. */
  onPreempt?: (victim: string, preemptor: string) => void;
  /** The ResourceClass of an experiment by gang key, for team quotas: what each team holds is counted per class. */
  classOf?: (gangKey: string) => string | undefined;
}

interface Plan {
  priority: number;
  victims: { key: string; attemptId: string; reclaimFrom?: string }[];
  /** The preemptor's team, when it reclaims its quota. */
  team?: string;
}

/** Per class with team quotas, this cycle: its teams and what each team holds. */
type TeamCycle = Map<string, { teams: ClassTeams; used: Map<string, Resources> }>;

export class AdmissionService implements Admission {
  private readonly scheduler: GangScheduler;
  private readonly gangs = new Map<string, SchedulerGang>();
  private readonly verdicts = new Map<string, AdmissionView>();
  /** Eligibility filters per class, rebuilt when the class or its cluster changes (by resourceVersion). */
  private readonly filters = new Map<string, { version: string; filter: NodeEligibility }>();
  private timer?: NodeJS.Timeout;
  private ticker?: NodeJS.Timeout;
  private running = false;
  /** Callers of settled(), resolved by the next cycle. */
  private waiters: (() => void)[] = [];
  /** Preemptor → the victims chosen for it, until it is admitted or leaves the queue. */
  private readonly plans = new Map<string, Plan>();
  /** Gang → when it may look for victims again after a search that found none, and what that search said. */
  private readonly noVictims = new Map<string, { untilMs: number; message?: string }>();
  /** Victim → what its reconcile is told. */
  private readonly victims = new Map<string, PreemptionView>();
  /** Start estimates, kept while they move less than the hysteresis so status is not rewritten every cycle. */
  private readonly estimates = new Map<string, StartEstimate & { atMs: number }>();
  private estimatedAtMs = -Infinity;
  /** Expected run time of queued gangs that trained before, by key. */
  private readonly durations = new Map<string, number>();
  /** Team quotas of the classes queued gangs wait for, by class name (from the ResourceClass they were queued with). */
  private readonly classTeams = new Map<string, { version: string | undefined; teams: ClassTeams }>();

  constructor(private readonly opts: AdmissionServiceOptions) {
    this.scheduler = new GangScheduler(opts.capacity, { starvationMs: opts.starvationMs });
  }

  start(): void {
    this.running = true;
    this.ticker = setInterval(() => this.trigger(), this.opts.periodMs ?? 5_000);
    this.trigger();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    clearInterval(this.ticker);
    this.timer = undefined;
    this.resolveWaiters();
  }

  /**
   * Resolves once a cycle has run after this call (at once when the service is stopped), so that a reconcile
   * which just queued a gang can act on its verdict in the same pass instead of writing "Queued" first.
   */
  settled(): Promise<void> {
    if (!this.running) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.waiters.push(resolve));
    this.trigger();
    return done;
  }

  queue(req: GangRequest): void {
    this.noteTeams(req.className, req.cls);
    const prev = this.gangs.get(req.key);
    if (req.expectedDurationMs !== undefined) this.durations.set(req.key, req.expectedDurationMs);
    else this.durations.delete(req.key);
    const next = this.toGang(req, prev?.arrivalMs);
    if (prev && prev.priority === next.priority && prev.workers === next.workers && prev.eligible === next.eligible && sameShape(prev, next)) return;
    this.gangs.set(req.key, next);
    this.trigger();
  }

  dequeue(key: string): void {
    if (this.gangs.delete(key)) this.trigger();
    this.verdicts.delete(key);
    this.durations.delete(key);
    this.estimates.delete(key);
  }

  view(key: string): AdmissionView {
    return this.verdicts.get(key) ?? { state: 'unknown' };
  }

  preemption(key: string): PreemptionView | undefined {
    return this.victims.get(key);
  }

  placed(key: string): void {
    // The pods exist; they are counted on their pinned nodes from now on, so the gang leaves the queue. The
    // reservation stays until release(), once the pod cache shows them.
    this.gangs.delete(key);
    this.verdicts.delete(key);
    this.durations.delete(key);
    this.estimates.delete(key);
  }

  release(key: string): void {
    if (this.opts.capacity.reservedNodes(key) === undefined) return;
    this.opts.capacity.release(key);
    this.trigger();
  }

  isQueued(key: string): boolean {
    return this.gangs.has(key);
  }

  /** Capacity changed (a node or pod event): look again soon. */
  trigger(): void {
    if (!this.running || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.cycle();
    }, this.opts.debounceMs ?? 50);
  }

  /** One admission cycle over every queued gang. Public for tests and benchmarks. */
  cycle(): void {
    const started = performance.now();
    const nowMs = this.opts.now?.() ?? Date.now();
    const gangs = [...this.gangs.values()];
    const teams = this.teamCycle(gangs);
    const result = this.scheduler.cycle(gangs, nowMs, teams.size > 0 ? quotaGate(teams) : undefined);
    const changed: string[] = [];
    const set = (key: string, v: AdmissionView) => {
      if (JSON.stringify(this.verdicts.get(key)) !== JSON.stringify(v)) changed.push(key);
      this.verdicts.set(key, v);
    };
    for (const a of result.admitted) set(a.key, { state: 'admitted', nodes: a.nodes });
    const queued = result.waiting.filter((w) => w.reason !== 'NeverFits');
    const running = queued.length > 0 || this.plans.size > 0 || this.victims.size > 0 ? (this.opts.running?.() ?? []) : [];
    const notes = this.preempt(queued, running, nowMs, changed, teams);
    const estimates = this.estimate(queued, running, nowMs);
    for (const w of result.waiting) {
      const note = notes.get(w.key);
      const estimate = estimates.get(w.key);
      const t = teams.get(this.gangs.get(w.key)?.classKey ?? '');
      const team = t && w.reason !== 'QuotaExceeded' && w.reason !== 'NeverFits' ? ` ${teamSentence(t.teams, t.teams.teamOf(namespaceOf(w.key)), t.used)}` : '';
      set(w.key, {
        state: 'waiting',
        reason: note?.reason ?? w.reason,
        message: `${w.message}${team}${note ? ` ${note.message}` : ''}`,
        ...(w.position > 0 ? { position: w.position } : {}),
        ...(estimate ? { estimate: { at: estimate.at, reasoning: estimate.reasoning } } : {}),
      });
    }
    this.opts.onCycle?.({ durationMs: performance.now() - started, admitted: result.admitted.length, waiting: result.waiting.length });
    if (changed.length) this.opts.wake(changed);
    this.resolveWaiters();
  }

  /**
   * Checkpoint-aware preemption (scheduler/preemption.ts chooses): for each waiting gang in queue order that a lower-
   * priority running gang keeps out, the victims that make room are told to stop (their reconcile reads
   * preemption()). A plan lasts until its preemptor is admitted or leaves the queue; once all its victims have
   * exited and it still does not fit (something else took the room), a new choice is made. Returns what each
   * waiting gang's verdict adds: the Preempting reason, or why nothing was preempted for it.
   */
  private preempt(
    queued: readonly { key: string }[],
    running: readonly RunningGang[],
    nowMs: number,
    changed: string[],
    teams: TeamCycle,
  ): Map<string, { reason?: string; message: string }> {
    const notes = new Map<string, { reason?: string; message: string }>();
    const opts = this.opts.preemption;
    const byKey = new Map(running.map((r) => [r.key, r]));
    const waiting = new Set(queued.map((w) => w.key));
    for (const key of this.noVictims.keys()) if (!waiting.has(key)) this.noVictims.delete(key);
    for (const [preemptor, plan] of this.plans) {
      const live = plan.victims.some((v) => byKey.get(v.key)?.attemptId === v.attemptId);
      if (!waiting.has(preemptor) || !live) this.plans.delete(preemptor);
    }
    const inPlans = new Set([...this.plans.values()].flatMap((p) => p.victims.map((v) => v.key)));
    // Teams as they will stand once the plans made so far are carried out: their preemptors in, their victims out.
    // Without it, two waiting gangs of one team could each reclaim up to the same quota, or take the same loan twice.
    const planned = new Map<string, Map<string, number>>();
    const plan = (classKey: string | undefined, key: string, gpus: number) => {
      const t = classKey === undefined ? undefined : teams.get(classKey);
      if (!t) return;
      const team = t.teams.teamOf(namespaceOf(key));
      const m = planned.get(classKey!) ?? planned.set(classKey!, new Map()).get(classKey!)!;
      m.set(team, (m.get(team) ?? 0) + gpus);
    };
    const gpusOf = (r: RunningGang) => r.frees.reduce((n, f) => n + f.resources.gpus, 0);
    const planFor = (preemptor: string, victims: readonly { key: string }[]) => {
      const g = this.gangs.get(preemptor);
      if (g) plan(g.classKey, preemptor, g.workers * g.perWorker.gpus);
      for (const v of victims) {
        const r = byKey.get(v.key);
        if (r) plan(r.className, r.key, -gpusOf(r));
      }
    };
    for (const [preemptor, p] of this.plans) planFor(preemptor, p.victims);
    for (const [victim, view] of this.victims) {
      if (!inPlans.has(victim) || byKey.get(victim)?.attemptId !== view.attemptId) {
        this.victims.delete(victim);
        changed.push(victim);
      }
    }
    if (!opts) return notes;
    const lowest = Math.min(...running.filter((r) => r.preemptible).map((r) => r.priority));
    let tries = 0;
    for (const w of queued) {
      const g = this.gangs.get(w.key);
      if (!g) continue;
      const plan = this.plans.get(w.key);
      if (plan) {
        notes.set(w.key, preemptingNote(plan, opts.deadlineSeconds));
        continue;
      }
      const reclaim = reclaimView(teams.get(g.classKey), g, planned.get(g.classKey));
      if (!(g.priority > lowest) && !reclaim?.possible) continue;
      const last = this.noVictims.get(w.key);
      if (last && last.untilMs > nowMs) {
        if (last.message) notes.set(w.key, { message: last.message });
        continue;
      }
      if (tries++ >= PREEMPTION_TRIES_PER_CYCLE) continue;
      const nodes = [];
      for (const st of this.opts.capacity.states()) {
        if (st.info === undefined || !g.eligible(st.info)) continue;
        nodes.push({ name: st.name, free: { gpus: st.freeGpus(), cpuMilli: st.freeCpuMilli(), memoryBytes: st.freeMemoryBytes(), pods: st.freePods() } });
      }
      const candidates: Candidate[] = [];
      for (const r of running) {
        if (!r.preemptible || r.key === w.key || inPlans.has(r.key)) continue;
        const c: Candidate = { key: r.key, priority: r.priority, startedAtMs: r.startedAtMs, lastCheckpointAtMs: r.lastCheckpointAtMs, frees: r.frees };
        // On a class with teams, another team's run is only ever taken back from what that team borrows.
        if (reclaim && r.className === g.classKey) {
          const its = reclaim.teams.teamOf(namespaceOf(r.key));
          if (its !== reclaim.team) {
            if (!reclaim.within || (reclaim.borrowed.get(its) ?? 0) <= 0) continue;
            c.reclaimFrom = its;
          }
        }
        candidates.push(c);
      }
      const choice = chooseVictims({
        gang: { key: w.key, priority: g.priority, workers: g.workers, perWorker: g.perWorker },
        nodes,
        candidates,
        nowMs,
        minRunTimeMs: opts.minRunTimeMs,
        ...(reclaim ? { borrowedGpus: reclaim.borrowed } : {}),
      });
      if (!choice.ok) {
        const message = choice.why === 'FitsAlready' ? undefined : `Preemption: ${choice.message}`;
        if (message) notes.set(w.key, { message });
        this.noVictims.set(w.key, { untilMs: nowMs + PREEMPTION_RETRY_MS, ...(message ? { message } : {}) });
        continue;
      }
      this.noVictims.delete(w.key);
      const victims = choice.victims.map((v) => ({ key: v.key, attemptId: byKey.get(v.key)!.attemptId, ...(v.reclaimFrom ? { reclaimFrom: v.reclaimFrom } : {}) }));
      const chosen: Plan = { priority: g.priority, victims, ...(reclaim ? { team: reclaim.team } : {}) };
      this.plans.set(w.key, chosen);
      planFor(w.key, victims);
      for (const v of victims) {
        inPlans.add(v.key);
        this.victims.set(v.key, {
          by: w.key,
          byPriority: g.priority,
          attemptId: v.attemptId,
          deadlineSeconds: opts.deadlineSeconds,
          ...(v.reclaimFrom && reclaim ? { reclaim: { from: v.reclaimFrom, for: reclaim.team } } : {}),
        });
        changed.push(v.key);
        this.opts.onPreempt?.(v.key, w.key);
      }
      this.opts.logger.info('preempting to make room', {
        preemptor: w.key,
        priority: g.priority,
        victims: victims.map((v) => v.key),
        reclaimedFrom: victims.flatMap((v) => (v.reclaimFrom ? [v.reclaimFrom] : [])),
        lostSeconds: Math.round(choice.lostMs / 1000),
      });
      notes.set(w.key, preemptingNote(chosen, opts.deadlineSeconds));
    }
    return notes;
  }

  /**
   * Start estimates for the first ESTIMATED_GANGS waiting gangs, from a replay of the queue (scheduler/estimate.ts),
   * at most every ESTIMATE_EVERY_MS. An estimate is replaced only when it moves by more than 30 s or a tenth of the
   * time left, so a steady queue does not rewrite every pending experiment's status each cycle.
   */
  private estimate(queued: readonly { key: string }[], running: readonly RunningGang[], nowMs: number): Map<string, StartEstimate & { atMs: number }> {
    if (this.opts.running === undefined) return this.estimates;
    const waiting = new Set(queued.map((w) => w.key));
    for (const key of this.estimates.keys()) if (!waiting.has(key)) this.estimates.delete(key);
    if (nowMs - this.estimatedAtMs < ESTIMATE_EVERY_MS) return this.estimates;
    this.estimatedAtMs = nowMs;
    const nodes = [];
    for (const st of this.opts.capacity.states()) {
      if (st.info === undefined) continue;
      nodes.push({ name: st.name, info: st.info, free: { gpus: st.freeGpus(), cpuMilli: st.freeCpuMilli(), memoryBytes: st.freeMemoryBytes(), pods: st.freePods() } });
    }
    const eligibleByClass = new Map<string, Set<string>>();
    const queue: QueuedGang[] = [];
    for (const w of queued.slice(0, ESTIMATED_GANGS)) {
      const g = this.gangs.get(w.key);
      if (!g) continue;
      let eligible = eligibleByClass.get(g.classKey);
      if (!eligible) eligibleByClass.set(g.classKey, (eligible = new Set(nodes.filter((n) => g.eligible(n.info)).map((n) => n.name))));
      queue.push({ key: g.key, workers: g.workers, perWorker: g.perWorker, eligible, durationMs: this.durations.get(g.key) });
    }
    const victimDeadlineMs = (this.opts.preemption?.deadlineSeconds ?? 0) * 1000;
    const work: RunningWork[] = running.map((r) => {
      const victim = this.victims.get(r.key);
      if (victim) return { key: r.key, frees: r.frees, remainingMs: victimDeadlineMs, why: `preempted for ${victim.by}` };
      return { key: r.key, frees: r.frees, remainingMs: r.remainingMs, why: r.speed };
    });
    for (const e of estimateStarts({ nowMs, nodes, running: work, queue })) {
      const prev = this.estimates.get(e.key);
      if (e.atMs === undefined) {
        this.estimates.delete(e.key);
        continue;
      }
      const atMs = Math.ceil(e.atMs / 10_000) * 10_000;
      const slack = Math.max(30_000, (Math.max(0, (prev?.atMs ?? atMs) - nowMs)) / 10);
      if (prev && Math.abs(prev.atMs - atMs) <= slack) continue;
      const at = new Date(atMs).toISOString();
      this.estimates.set(e.key, { atMs, at, reasoning: `Estimated start ${at}, ${e.reasoning} (a replay of the queue at the running experiments' current speed).` });
    }
    return this.estimates;
  }

  /** Keeps the class's team quotas as the ResourceClass the gang was queued with says. */
  private noteTeams(className: string, cls: ResourceClass): void {
    const spec = cls.spec.teams;
    if (spec === undefined || spec.length === 0) {
      this.classTeams.delete(className);
      return;
    }
    const version = cls.metadata?.resourceVersion;
    const cached = this.classTeams.get(className);
    if (cached && cached.version === version && version !== undefined) return;
    this.classTeams.set(className, { version, teams: new ClassTeams(className, spec) });
  }

  /**
   * For each class with teams that has queued gangs: what each team holds now (what its gangs' pods and
   * reservations hold, from the capacity model), and each gang's place in the class's queue (teams.ts teamOrder).
   */
  private teamCycle(gangs: SchedulerGang[]): TeamCycle {
    const out: TeamCycle = new Map();
    const byClass = new Map<string, SchedulerGang[]>();
    for (const g of gangs) {
      if (!this.classTeams.has(g.classKey)) {
        delete g.orderMs;
        delete g.tier;
        continue;
      }
      const list = byClass.get(g.classKey) ?? [];
      list.push(g);
      byClass.set(g.classKey, list);
    }
    for (const name of this.classTeams.keys()) if (!byClass.has(name)) this.classTeams.delete(name);
    if (byClass.size === 0) return out;
    const usage = this.opts.capacity.gangUsage();
    const classOf = this.opts.classOf ?? ((key: string) => this.gangs.get(key)?.classKey);
    for (const [name, list] of byClass) {
      const teams = this.classTeams.get(name)!.teams;
      const used = teamUsage(teams, usage, classOf);
      out.set(name, { teams, used });
      const total: Resources = { gpus: 0, cpuMilli: 0, memoryBytes: 0 };
      const eligible = list[0]!.eligible;
      for (const st of this.opts.capacity.states()) {
        if (st.info === undefined || !eligible(st.info)) continue;
        total.gpus += st.info.allocatable.gpus;
        total.cpuMilli += st.info.allocatable.cpuMilli;
        total.memoryBytes += st.info.allocatable.memoryBytes;
      }
      const places = teamOrder(
        teams,
        used,
        total,
        list.map((g) => ({ key: g.key, priority: g.priority, arrivalMs: g.arrivalMs, request: gangRequest(g) })),
      );
      for (const g of list) Object.assign(g, places.get(g.key));
    }
    return out;
  }

  private resolveWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  private toGang(req: GangRequest, arrivalMs?: number): SchedulerGang {
    const filter = this.filterFor(req.cls, req.cluster);
    const w = req.cls.spec.worker ?? {};
    return {
      key: req.key,
      classKey: req.className,
      priority: req.priority,
      arrivalMs: arrivalMs ?? req.arrivalMs,
      workers: req.workers,
      perWorker: {
        cpuMilli: w.cpu === undefined ? 0 : parseCpuMilli(w.cpu, 'spec.worker.cpu'),
        memoryBytes: w.memory === undefined ? 0 : parseMemoryBytes(w.memory, 'spec.worker.memory'),
        gpus: w.gpus ?? 0,
      },
      eligible: filter.eligible,
      explainIneligible: filter.explain,
    };
  }

  private filterFor(cls: ResourceClass, cluster: TrainingCluster): NodeEligibility {
    const name = cls.metadata!.name!;
    const version = `${cls.metadata?.resourceVersion}/${cluster.metadata?.resourceVersion}`;
    const cached = this.filters.get(name);
    if (cached?.version === version) return cached.filter;
    const filter = classEligibility(
      {
        workerNodeSelector: cluster.spec.workerNodeSelector,
        nodeSelector: cls.spec.nodeSelector,
        gpuProduct: cls.spec.worker?.gpuProduct,
        gpus: cls.spec.worker?.gpus ?? 0,
        tolerations: cls.spec.tolerations,
      },
      cluster.spec.gpu?.taint?.key ?? DEFAULT_GPU_TAINT_KEY,
    );
    this.filters.set(name, { version, filter });
    return filter;
  }
}

/** What a preemptor's verdict adds while its victims write their checkpoints and exit. */
function preemptingNote(plan: Plan, deadlineSeconds: number): { reason: string; message: string } {
  const names = plan.victims.map((v) => (v.reclaimFrom ? `${v.key} (team ${v.reclaimFrom}, borrowing beyond its quota)` : v.key)).join(', ');
  const they = plan.victims.length === 1 ? 'it is' : 'they are';
  const why = plan.victims.every((v) => v.reclaimFrom)
    ? `to reclaim team ${plan.team}'s quota`
    : plan.victims.some((v) => v.reclaimFrom)
      ? `lower priority than its ${plan.priority}, or borrowed from team ${plan.team}'s quota`
      : `lower priority than its ${plan.priority}`;
  return {
    reason: 'Preempting',
    message: `Preempting ${names} (${why}): ${they} writing a checkpoint and exiting (within ${deadlineSeconds}s); it starts on the room they leave.`,
  };
}

/**
 * The admission gate of team quotas: a gang waits with QuotaExceeded when its team would pass quota plus borrowing
 * limit, and each admission counts toward its team at once so the next gang of the cycle sees it.
 */
function quotaGate(teams: TeamCycle): AdmissionGate {
  return {
    refuse(g) {
      const t = teams.get(g.classKey);
      if (!t) return undefined;
      const team = t.teams.teamOf(namespaceOf(g.key));
      return quotaRefusal(t.teams, team, t.used.get(team)?.gpus ?? 0, g.workers * g.perWorker.gpus);
    },
    admitted(g) {
      const t = teams.get(g.classKey);
      if (!t) return;
      const team = t.teams.teamOf(namespaceOf(g.key));
      const u = t.used.get(team) ?? { gpus: 0, cpuMilli: 0, memoryBytes: 0 };
      const r = gangRequest(g);
      t.used.set(team, { gpus: u.gpus + r.gpus, cpuMilli: u.cpuMilli + r.cpuMilli, memoryBytes: u.memoryBytes + r.memoryBytes });
    },
  };
}

/** The whole gang's request: workers × per-worker. */
function gangRequest(g: SchedulerGang): Resources {
  return { gpus: g.workers * g.perWorker.gpus, cpuMilli: g.workers * g.perWorker.cpuMilli, memoryBytes: g.workers * g.perWorker.memoryBytes };
}

/** For a waiting gang on a class with teams: its team, whether it stays within its quota, and what others borrow. */
function reclaimView(t: { teams: ClassTeams; used: Map<string, Resources> } | undefined, g: SchedulerGang, planned: ReadonlyMap<string, number> | undefined) {
  if (!t) return undefined;
  const team = t.teams.teamOf(namespaceOf(g.key));
  const used = new Map<string, Resources>();
  for (const [name, r] of t.used) used.set(name, { ...r, gpus: r.gpus + (planned?.get(name) ?? 0) });
  for (const [name, gpus] of planned ?? []) if (!used.has(name)) used.set(name, { gpus, cpuMilli: 0, memoryBytes: 0 });
  const within = (used.get(team)?.gpus ?? 0) + g.workers * g.perWorker.gpus <= t.teams.quota(team).gpus;
  const borrowed = new Map<string, number>();
  for (const other of used.keys()) if (other !== team) borrowed.set(other, borrowedGpus(t.teams, other, used));
  const possible = within && [...borrowed.values()].some((b) => b > 0);
  return { teams: t.teams, team, within, borrowed, possible };
}

function sameShape(a: SchedulerGang, b: SchedulerGang): boolean {
  return a.perWorker.cpuMilli === b.perWorker.cpuMilli && a.perWorker.memoryBytes === b.perWorker.memoryBytes && a.perWorker.gpus === b.perWorker.gpus;
}
