// `kubectl arena why`: one screen on why an experiment is where it is, above all why a Pending one waits. Everything
// comes from status the operator already wrote (experiment, its class, its training cluster); nothing is recomputed.
import type { Experiment } from '../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../api/v1alpha1/trainingcluster.ts';
import type { Condition } from '../kube/conditions.ts';
import { age, table } from './format.ts';
import { phaseOf } from './actions.ts';
import { creditsVerdict } from '../controllers/trainingcluster/credits.ts';

export interface WhyReport {
  experiment: { namespace: string; name: string; phase: string; reason?: string; message?: string; run?: number; attempt?: number };
  waiting: boolean;
  queue?: { position: number; class: string; queued?: number };
  class?: {
    name: string;
    found: boolean;
    enabled?: boolean;
    available?: boolean;
    reason?: string;
    message?: string;
    gangSize?: number;
    gpusPerWorker?: number;
    gpuProduct?: string;
    eligibleNodes?: number;
    fitNow?: number;
    fitMax?: number;
    running?: number;
  };
  gpus?: { product: string; free: number; total: number; neededPerGang: number };
  cluster?: { name: string; found: boolean; enabled?: boolean; ready?: string; readyMessage?: string; bundle?: string; workersReady?: number; workersTotal?: number };
  lastFailure?: { reason: string; message: string; hint?: string; at: string; attempt: number };
  /** The cluster's credits, while they are enforced. */
  credits?: CreditsView;
  /** The last time the operator stopped the run (credits or a preemption), and its resume. */
  lastInterruption?: NonNullable<Experiment['status']>['lastInterruption'];
  /** What admission orders and preempts by. */
  priority?: { value?: number; className?: string };
  /** While Pending: when it is estimated to start, and how the operator got there (the Admitted condition). */
  estimate?: { at: string; reasoning?: string };
  conditions: Condition[];
}

export interface CreditsView {
  source: string;
  balance: number;
  spent: number;
  granted?: number;
  burnRatePerHour: number;
  secondsLeft?: number;
  exhausted: boolean;
  exhaustedPolicy: string;
}

/** The credits of a training cluster as `why` and `status` show them; undefined while they are not enforced. */
export function creditsView(tc: TrainingCluster | undefined): CreditsView | undefined {
  const c = tc?.status?.credits;
  const v = creditsVerdict(tc);
  if (!tc || !c || !v) return undefined;
  return {
    source: c.source,
    // A top-up counts before the ledger's next pass, as the operator counts it.
    balance: v.balance,
    spent: c.spent,
    ...(c.source === 'Spec' && tc.spec.credits?.granted !== undefined ? { granted: tc.spec.credits.granted } : {}),
    burnRatePerHour: c.burnRatePerHour,
    ...(c.secondsLeft !== undefined && !v.exhausted ? { secondsLeft: c.secondsLeft } : {}),
    exhausted: v.exhausted,
    exhaustedPolicy: v.policy,
  };
}

/** Seconds as people read a time left: 45s, 12m, 3h20m, 2d4h. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`;
}

const amount = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));

/** One line on a cluster's credits: balance, burn rate and time left. */
export function creditsLine(c: CreditsView): string {
  const of = c.granted !== undefined ? ` of ${amount(c.granted)} granted` : ' (from the platform)';
  const burn = c.burnRatePerHour > 0 ? `; burning ${amount(c.burnRatePerHour)}/h${c.secondsLeft !== undefined ? `, about ${duration(c.secondsLeft)} left` : ''}` : '; nothing is spending';
  return `${amount(c.balance)} left${of}, ${amount(c.spent)} spent${burn}${c.exhausted ? `; exhausted (running experiments: ${c.exhaustedPolicy})` : ''}`;
}

export function explain(exp: Experiment, cls: ResourceClass | undefined, cluster: TrainingCluster | undefined, className = exp.spec.resourceClass): WhyReport {
  const s = exp.status ?? {};
  const phase = phaseOf(exp);
  const report: WhyReport = {
    experiment: {
      namespace: exp.metadata?.namespace ?? '',
      name: exp.metadata?.name ?? '',
      phase,
      ...(s.reason ? { reason: s.reason } : {}),
      ...(s.message ? { message: s.message } : {}),
      ...(s.run !== undefined ? { run: s.run } : {}),
      ...(s.attempt !== undefined ? { attempt: s.attempt } : {}),
    },
    // Stopped for credits with action Train, it waits for a top-up as a Pending one waits for capacity.
    waiting: phase === 'Pending' || (phase === 'Stopped' && (s.reason === 'CreditsExhausted' || s.reason === 'BudgetExhausted') && exp.spec.action === 'Train'),
    conditions: (s.conditions ?? []) as Condition[],
  };
  if (s.queuePosition !== undefined && className) report.queue = { position: s.queuePosition, class: className, ...(cls?.status?.queued !== undefined ? { queued: cls.status.queued } : {}) };
  if (className) {
    const w = cls?.spec.worker;
    report.class = cls
      ? {
          name: className,
          found: true,
          enabled: cls.spec.enabled ?? true,
          available: cls.status?.available,
          reason: cls.status?.reason,
          message: cls.status?.message,
          gangSize: cls.spec.nodes,
          gpusPerWorker: w?.gpus ?? 0,
          gpuProduct: w?.gpuProduct,
          eligibleNodes: cls.status?.eligibleNodes,
          fitNow: cls.status?.fitNow,
          fitMax: cls.status?.fitMax,
          running: cls.status?.running,
        }
      : { name: className, found: false };
    if (cls && (w?.gpus ?? 0) > 0 && cluster?.status?.gpus) {
      const g = cluster.status.gpus;
      const byProduct = w?.gpuProduct ? g.byProduct?.find((p) => p.product === w.gpuProduct) : undefined;
      report.gpus = {
        product: w?.gpuProduct ?? 'any',
        free: w?.gpuProduct ? (byProduct?.free ?? 0) : g.free,
        total: w?.gpuProduct ? (byProduct?.total ?? 0) : g.total,
        neededPerGang: (w?.gpus ?? 0) * cls.spec.nodes,
      };
    }
  }
  const clusterName = cls?.spec.trainingCluster;
  if (clusterName) {
    const ready = cluster?.status?.conditions?.find((c) => c.type === 'Ready');
    report.cluster = cluster
      ? {
          name: clusterName,
          found: true,
          enabled: cluster.spec.enabled ?? true,
          ready: ready?.status,
          readyMessage: ready?.message,
          bundle: cluster.status?.bundle ? `${cluster.status.bundle.installedVersion ?? '?'} (${cluster.status.bundle.state})` : undefined,
          workersReady: cluster.status?.workers?.ready,
          workersTotal: cluster.status?.workers?.total,
        }
      : { name: clusterName, found: false };
  }
  if (s.lastFailure) report.lastFailure = s.lastFailure;
  const credits = creditsView(cluster);
  if (credits) report.credits = credits;
  if (s.lastInterruption) report.lastInterruption = s.lastInterruption;
  if (exp.spec.priority !== undefined || exp.spec.priorityClassName !== undefined) {
    report.priority = { ...(exp.spec.priority !== undefined ? { value: exp.spec.priority } : {}), ...(exp.spec.priorityClassName ? { className: exp.spec.priorityClassName } : {}) };
  }
  if (s.estimatedStartTime && phase === 'Pending') {
    const admitted = s.conditions?.find((c) => c.type === 'Admitted')?.message;
    const reasoning = admitted?.match(/Estimated start [^,]*, (.*)$/)?.[1];
    report.estimate = { at: s.estimatedStartTime, ...(reasoning ? { reasoning } : {}) };
  }
  return report;
}

const yesNo = (b: boolean | undefined) => (b === undefined ? 'unknown' : b ? 'yes' : 'no');

export function renderWhy(r: WhyReport, now = new Date()): string {
  const e = r.experiment;
  const out: string[] = [];
  out.push(`Experiment ${e.namespace}/${e.name}: ${e.phase}${e.reason ? ` (${e.reason})` : ''}${e.run !== undefined ? `, run ${e.run}` : ''}${e.attempt !== undefined ? ` attempt ${e.attempt}` : ''}`);
  if (e.message) out.push(`  ${e.message}`);
  if (!r.waiting) out.push(`  It is not waiting for anything: only a Pending experiment waits.`);
  else if (e.phase === 'Stopped') {
    out.push(
      e.reason === 'BudgetExhausted'
        ? '  It resumes from its final checkpoint by itself once its budget is raised or its next period begins.'
        : '  It resumes from its final checkpoint by itself once the cluster has credits again.',
    );
  }
  // The class's queue count is written a moment after the experiment's position; a stale one is left out.
  const of = r.queue && r.queue.queued !== undefined && r.queue.queued >= r.queue.position ? ` of ${r.queue.queued}` : '';
  if (r.queue) out.push(`Queue:     position ${r.queue.position}${of} on ${r.queue.class}${r.queue.position > 1 ? ` (${r.queue.position - 1} ahead)` : ' (next to run)'}`);
  const c = r.class;
  if (c && !c.found) out.push(`Class:     ${c.name} does not exist (kubectl get resourceclasses lists the classes)`);
  else if (c) {
    const shape = `${c.gangSize} worker(s) × ${c.gpusPerWorker} GPU(s)${c.gpuProduct ? ` ${c.gpuProduct}` : ''}`;
    out.push(`Class:     ${c.name}: ${shape}; enabled ${yesNo(c.enabled)}, available ${yesNo(c.available)}${c.reason ? ` (${c.reason})` : ''}`);
    if (c.message) out.push(`           ${c.message}`);
    const fit = [
      c.eligibleNodes !== undefined ? `${c.eligibleNodes} eligible node(s)` : undefined,
      c.fitNow !== undefined ? `${c.fitNow} gang(s) fit now` : undefined,
      c.fitMax !== undefined ? `${c.fitMax} on an empty cluster` : undefined,
      c.running !== undefined ? `${c.running} running` : undefined,
    ].filter(Boolean);
    if (fit.length) out.push(`           ${fit.join(', ')}`);
  }
  if (r.gpus) out.push(`GPUs:      ${r.gpus.free} free of ${r.gpus.total} (${r.gpus.product}); one run needs ${r.gpus.neededPerGang}`);
  const t = r.cluster;
  if (t && !t.found) out.push(`Cluster:   ${t.name} does not exist`);
  else if (t) {
    out.push(
      `Cluster:   ${t.name}: enabled ${yesNo(t.enabled)}, Ready ${t.ready ?? 'Unknown'}${t.bundle ? `, bundle ${t.bundle}` : ''}${t.workersTotal !== undefined ? `, workers ${t.workersReady ?? 0}/${t.workersTotal} ready` : ''}`,
    );
    if (t.ready !== 'True' && t.readyMessage) out.push(`           ${t.readyMessage}`);
  }
  if (r.priority) out.push(`Priority:  ${r.priority.className ? `PriorityClass ${r.priority.className}` : r.priority.value}; higher-priority runs go first and may preempt lower ones`);
  if (r.estimate) {
    const inMs = Date.parse(r.estimate.at) - now.getTime();
    const when = inMs > 0 ? `in about ${duration(inMs / 1000)}` : 'any moment (the estimate has passed)';
    out.push(`Estimate:  starts ${when}, at ${r.estimate.at}${r.estimate.reasoning ? `: ${r.estimate.reasoning}` : ''}`);
  }
  if (r.credits) out.push(`Credits:   ${creditsLine(r.credits)}`);
  if (r.lastInterruption) {
    const i = r.lastInterruption;
    const at = i.checkpointStep !== undefined ? ` with the checkpoint at step ${i.checkpointStep}` : '';
    const lost = i.lostSteps !== undefined ? ` (${i.lostSteps} step(s) past it lost)` : '';
    const resumed = i.resumedAt ? `; resumed ${age(i.resumedAt, now)} ago` : '';
    const who = i.reason === 'Preempted' && i.preemptedBy ? `Preempted by ${i.preemptedBy}` : `Stopped by the operator (${i.reason}`;
    out.push(`${who}${i.reason === 'Preempted' && i.preemptedBy ? ' (' : ', '}run ${i.run}) ${age(i.at, now)} ago${at}${lost}${resumed}`);
  }
  if (r.lastFailure) {
    const f = r.lastFailure;
    out.push(`Last failure (attempt ${f.attempt}, ${age(f.at, now)} ago): ${f.reason}: ${f.message}`);
    if (f.hint) out.push(`  hint: ${f.hint}`);
  }
  if (r.conditions.length) {
    out.push('Conditions:');
    out.push(
      table(
        ['type', 'status', 'reason', 'age', 'message'],
        r.conditions.map((x) => [x.type, x.status, x.reason, age(x.lastTransitionTime, now), x.message]),
      )
        .trimEnd()
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
  }
  return `${out.join('\n')}\n`;
}
