// The gang scheduler run as a service for the experiment reconciler: reconciles file their Pending gangs here,
// admission cycles run debounced (and periodically, so starvation holds age even without events), and every
// experiment whose verdict changed is woken. The verdicts are in-memory state the reconciler reads like a cache;
// after an operator restart they are rebuilt from the gangs reconciles file again.
import type { Logger } from 'winston';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import type { CapacityModel } from '../../scheduler/capacity.ts';
import { GangScheduler, type GangRequest as SchedulerGang } from '../../scheduler/admission.ts';
import { classEligibility, DEFAULT_GPU_TAINT_KEY, type NodeEligibility } from '../../scheduler/eligibility.ts';
import { parseCpuMilli, parseMemoryBytes } from '../../scheduler/quantity.ts';
import type { Admission, GangRequest } from './reconcile.ts';
import type { AdmissionView } from './lifecycle.ts';

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
}

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
    const prev = this.gangs.get(req.key);
    const next = this.toGang(req, prev?.arrivalMs);
    if (prev && prev.priority === next.priority && prev.workers === next.workers && prev.eligible === next.eligible && sameShape(prev, next)) return;
    this.gangs.set(req.key, next);
    this.trigger();
  }

  dequeue(key: string): void {
    if (this.gangs.delete(key)) this.trigger();
    this.verdicts.delete(key);
  }

  view(key: string): AdmissionView {
    return this.verdicts.get(key) ?? { state: 'unknown' };
  }

  placed(key: string): void {
    // The pods exist; they are counted on their pinned nodes from now on, so the gang leaves the queue. The
    // reservation stays until release(), once the pod cache shows them.
    this.gangs.delete(key);
    this.verdicts.delete(key);
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
    const result = this.scheduler.cycle([...this.gangs.values()], this.opts.now?.() ?? Date.now());
    const changed: string[] = [];
    const set = (key: string, v: AdmissionView) => {
      if (JSON.stringify(this.verdicts.get(key)) !== JSON.stringify(v)) changed.push(key);
      this.verdicts.set(key, v);
    };
    for (const a of result.admitted) set(a.key, { state: 'admitted', nodes: a.nodes });
    for (const w of result.waiting) {
      set(w.key, { state: 'waiting', reason: w.reason, message: w.message, ...(w.position > 0 ? { position: w.position } : {}) });
    }
    this.opts.onCycle?.({ durationMs: performance.now() - started, admitted: result.admitted.length, waiting: result.waiting.length });
    if (changed.length) this.opts.wake(changed);
    this.resolveWaiters();
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

function sameShape(a: SchedulerGang, b: SchedulerGang): boolean {
  return a.perWorker.cpuMilli === b.perWorker.cpuMilli && a.perWorker.memoryBytes === b.perWorker.memoryBytes && a.perWorker.gpus === b.perWorker.gpus;
}
