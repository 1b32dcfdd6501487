// Budgets per project (a set of namespaces) and period, as pure functions: the ledger each spec.budgets entry keeps
// in status.budgets, and whether an experiment's namespace may train. They sit on top of the cluster's credits
// (credits.ts) and follow its rules: debits are level-based (the rise of the namespaces' metered usage since the
// last debit, stored with the new level in the same version-checked status write), so no usage is counted twice
// across restarts; a Month budget starts afresh at 00:00 UTC on the first of each month, when what it held resumes.
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { Budget, TrainingCluster, TrainingClusterStatus } from '../../api/v1alpha1/trainingcluster.ts';
import { rfc3339 } from '../../kube/conditions.ts';
import { round6 } from '../../usage/usage.ts';
import { DEFAULT_DEBIT_INTERVAL_MS, metered, type CreditsVerdict } from './credits.ts';

export type BudgetStatus = NonNullable<TrainingClusterStatus['budgets']>[number];

export const BUDGET_EXHAUSTED = 'BudgetExhausted';

/** The period a budget counts now: the UTC month (YYYY-MM), or "total". */
export function periodOf(b: Pick<Budget, 'period'>, now: Date): string {
  return (b.period ?? 'Month') === 'Total' ? 'total' : now.toISOString().slice(0, 7);
}

/** When the current period ends (the next month's first instant, UTC); undefined for Total. */
export function periodEndMs(b: Pick<Budget, 'period'>, now: Date): number | undefined {
  if ((b.period ?? 'Month') === 'Total') return undefined;
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
}

/** GPU-hours one experiment has used, including its running attempt, and what it burns now. */
function meteredGpuHours(e: Experiment, cls: ResourceClass | undefined, nowMs: number): { gpuHours: number; perHour: number } {
  const s = e.status ?? {};
  const recorded = (s.usage?.gpuSeconds ?? 0) / 3600;
  const started = s.attemptStartedAt === undefined ? undefined : Date.parse(s.attemptStartedAt);
  if (started === undefined || !Number.isFinite(started)) return { gpuHours: recorded, perHour: 0 };
  const gpus = (s.workers?.desired ?? cls?.spec.nodes ?? 0) * (cls?.spec.worker?.gpus ?? 0);
  return { gpuHours: recorded + (Math.max(0, nowMs - started) / 3_600_000) * gpus, perHour: gpus };
}

export interface BudgetsInput {
  cluster: TrainingCluster;
  experiments: Iterable<{ experiment: Experiment; cls: ResourceClass | undefined }>;
  now: Date;
  debitIntervalMs?: number;
}

export interface BudgetsResult {
  /** status.budgets; undefined without spec.budgets. */
  budgets?: BudgetStatus[];
  /** The next debit, the moment a budget runs out at the current rate, or the end of its period. */
  requeueAfterMs?: number;
}

const spentOut = (b: Budget, credits: number, gpuHours: number) => (b.credits !== undefined && credits >= b.credits) || (b.gpuHours !== undefined && gpuHours >= b.gpuHours);

export function computeBudgets(i: BudgetsInput): BudgetsResult {
  const specs = i.cluster.spec.budgets;
  if (!specs || specs.length === 0) return {};
  const nowMs = i.now.getTime();
  const interval = i.debitIntervalMs ?? DEFAULT_DEBIT_INTERVAL_MS;
  const experiments = [...i.experiments];
  const out: BudgetStatus[] = [];
  let requeue = Infinity;
  for (const b of specs) {
    const covered = new Set(b.namespaces);
    let credits = 0;
    let gpuHours = 0;
    let rate = 0;
    let gpuRate = 0;
    let running = 0;
    for (const { experiment, cls } of experiments) {
      if (!covered.has(experiment.metadata?.namespace ?? '')) continue;
      const m = metered(experiment, cls, nowMs);
      const g = meteredGpuHours(experiment, cls, nowMs);
      credits += m.credits;
      gpuHours += g.gpuHours;
      rate += m.ratePerHour;
      gpuRate += g.perHour;
      if (m.ratePerHour > 0 || g.perHour > 0) running++;
    }
    [credits, gpuHours] = [round6(credits), round6(gpuHours)];
    const period = periodOf(b, i.now);
    const prev = validBudget(i.cluster.status?.budgets?.find((x) => x.name === b.name));
    let next: Pick<BudgetStatus, 'spentCredits' | 'spentGpuHours' | 'meteredCredits' | 'meteredGpuHours' | 'debitedThrough'>;
    const fresh = { spentCredits: 0, spentGpuHours: 0, meteredCredits: credits, meteredGpuHours: gpuHours, debitedThrough: rfc3339(i.now) };
    if (!prev || prev.period !== period) {
      // A new budget counts from now; a new period, from its start (what rose since the last debit, at most one
      // debit interval, stays with the period it was used in).
      next = fresh;
    } else {
      const riseC = Math.max(0, round6(credits - prev.meteredCredits));
      const riseG = Math.max(0, round6(gpuHours - prev.meteredGpuHours));
      const since = nowMs - (Date.parse(prev.debitedThrough) || nowMs);
      const reaches = !spentOut(b, prev.spentCredits, prev.spentGpuHours) && spentOut(b, prev.spentCredits + riseC, prev.spentGpuHours + riseG);
      const due = (riseC > 0 || riseG > 0) && (since >= interval || reaches);
      const fell = credits < prev.meteredCredits || gpuHours < prev.meteredGpuHours;
      next = due || fell
        ? { spentCredits: round6(prev.spentCredits + riseC), spentGpuHours: round6(prev.spentGpuHours + riseG), meteredCredits: credits, meteredGpuHours: gpuHours, debitedThrough: rfc3339(i.now) }
        : { spentCredits: prev.spentCredits, spentGpuHours: prev.spentGpuHours, meteredCredits: prev.meteredCredits, meteredGpuHours: prev.meteredGpuHours, debitedThrough: prev.debitedThrough };
    }
    const exhausted = spentOut(b, next.spentCredits, next.spentGpuHours);
    const status: BudgetStatus = { name: b.name, period, ...next, running, burnRatePerHour: round6(rate) };
    // Until a limit is reached at the current rates, counting what is used but not yet debited.
    const pendingC = credits - next.meteredCredits;
    const pendingG = gpuHours - next.meteredGpuHours;
    let leftMs = Infinity;
    if (!exhausted) {
      if (b.credits !== undefined && rate > 0) leftMs = Math.min(leftMs, (Math.max(0, b.credits - next.spentCredits - pendingC) / rate) * 3_600_000);
      if (b.gpuHours !== undefined && gpuRate > 0) leftMs = Math.min(leftMs, (Math.max(0, b.gpuHours - next.spentGpuHours - pendingG) / gpuRate) * 3_600_000);
    }
    if (Number.isFinite(leftMs)) status.secondsLeft = Math.floor(leftMs / 1000);
    if (exhausted) status.exhaustedAt = prev?.exhaustedAt && prev.period === period ? prev.exhaustedAt : rfc3339(i.now);
    out.push(status);

    // Look again at the next debit while anything is spent or pending, when the limit would be reached, and at the
    // period's end (what the budget held resumes then).
    if (rate > 0 || gpuRate > 0 || pendingC > 0 || pendingG > 0) {
      requeue = Math.min(requeue, Math.max(0, (Date.parse(next.debitedThrough) || nowMs) + interval - nowMs) || interval, leftMs);
    }
    const end = periodEndMs(b, i.now);
    if (end !== undefined && (exhausted || running > 0)) requeue = Math.min(requeue, end - nowMs + 1_000);
  }
  return { budgets: out, ...(Number.isFinite(requeue) ? { requeueAfterMs: Math.max(100, Math.ceil(requeue)) } : {}) };
}

// Status is a cache anyone with status rights can edit: a stored entry is used only while it is sane.
function validBudget(b: BudgetStatus | undefined): BudgetStatus | undefined {
  if (!b) return undefined;
  const nums = [b.spentCredits, b.spentGpuHours, b.meteredCredits, b.meteredGpuHours];
  if (nums.some((n) => !Number.isFinite(n) || n < 0) || !Number.isFinite(Date.parse(b.debitedThrough))) return undefined;
  return b;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}

/**
 * Whether a spent budget holds the namespace's experiments now: the first spent budget that covers it, or
 * undefined. A raised limit counts at once, and a new period at its first instant, before the ledger's next pass.
 */
export function budgetVerdict(tc: TrainingCluster | undefined, namespace: string, now: Date): CreditsVerdict | undefined {
  for (const b of tc?.spec.budgets ?? []) {
    if (!b.namespaces.includes(namespace)) continue;
    const period = periodOf(b, now);
    const entry = validBudget(tc!.status?.budgets?.find((x) => x.name === b.name));
    const [credits, gpuHours] = entry && entry.period === period ? [entry.spentCredits, entry.spentGpuHours] : [0, 0];
    if (!spentOut(b, credits, gpuHours)) continue;
    const used = [
      ...(b.credits !== undefined ? [`${fmt(credits)} of ${fmt(b.credits)} credits`] : []),
      ...(b.gpuHours !== undefined ? [`${fmt(gpuHours)} of ${fmt(b.gpuHours)} GPU-hours`] : []),
    ].join(', ');
    const policy = b.exhaustedPolicy ?? 'Stop';
    const effect = policy === 'Finish' ? 'new experiments wait; runs that have started finish' : 'new experiments wait and running ones stop after a final checkpoint';
    const end = periodEndMs(b, now);
    const when = end !== undefined ? `It starts afresh on ${new Date(end).toISOString().slice(0, 10)} (UTC), and held runs resume by themselves then; an admin` : 'An admin';
    return {
      exhausted: true,
      policy,
      balance: 0,
      reason: BUDGET_EXHAUSTED,
      message: `Budget ${b.name} of TrainingCluster ${tc!.metadata?.name} is spent for ${period === 'total' ? 'its life' : period} (${used}), so in namespace ${namespace} ${effect}. ${when} can raise spec.budgets[${b.name}] to let them go on now.`,
    };
  }
  return undefined;
}

/**
 * The budgets the ledger last marked spent (status.budgets[].exhaustedAt): it changes when one is spent and when a
 * new period starts one afresh, which is when experiments held by it must look again (a raised limit is a spec
 * change, seen by its generation).
 */
export function spentBudgets(tc: TrainingCluster): string {
  return (tc.status?.budgets ?? [])
    .filter((b) => b.exhaustedAt !== undefined)
    .map((b) => `${b.name}@${b.period}`)
    .join(',');
}
