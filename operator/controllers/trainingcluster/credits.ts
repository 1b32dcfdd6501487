// The credit ledger of a TrainingCluster, as pure functions: what its status.credits should say next, and whether
// experiments on the cluster may train. Kept in status so that no credit is spent twice, or forgotten, across
// operator restarts and leader changes.
//
// The balance comes from one of two places, freshest first:
//   1. the platform (spec.platform set, and a heartbeat reply named a balance): the balance it named, less what
//      was spent here since the heartbeat that got that reply reported status.credits.spent;
//   2. the admin: spec.credits.granted, the credits granted in total over the cluster's life, less status.credits.spent.
// Neither: credits are not enforced, and there is no ledger.
//
// Debits are level-based. The metered level is the sum, over the experiments of the cluster's classes, of what
// each has used (status.usage.credits, folded in by the experiment controller when an attempt ends, plus the
// running attempt from attemptStartedAt until now). A pass debits the rise of that level since the last debit
// (status.credits.metered) and stores the new level in the same status write; the write carries the object's
// resourceVersion, so a pass computed from a stale read fails with Conflict instead of debiting twice. A level
// that falls (an experiment was deleted; a class became cheaper while an attempt ran) is taken as the new level
// and refunds nothing.
//
// Writes: a debit is held up to debitIntervalMs while the balance stays above zero, so a busy cluster writes its
// status a few times a minute, not on every event; the pass that would take the balance to zero debits at once,
// and the reconciler looks again when the balance will run out at the current burn rate.
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import {
  TrainingClusterConditions,
  type CreditSource,
  type CreditsExhaustedPolicy,
  type TrainingCluster,
  type TrainingClusterStatus,
} from '../../api/v1alpha1/trainingcluster.ts';
import { rfc3339, type ConditionUpdate } from '../../kube/conditions.ts';
import { round6 } from '../../usage/usage.ts';

export type CreditsStatus = NonNullable<TrainingClusterStatus['credits']>;
export type PlatformCredits = NonNullable<NonNullable<TrainingClusterStatus['platform']>['credits']>;

/** How often a cluster that is spending writes its ledger at most (unless the balance reaches zero first). */
export const DEFAULT_DEBIT_INTERVAL_MS = 30_000;

export interface Metered {
  /** Credits used so far, including the running attempt. */
  credits: number;
  /** Credits per hour it spends now (0 unless an attempt runs). */
  ratePerHour: number;
}

function parseMs(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  const ms = v instanceof Date ? v.getTime() : Date.parse(String(v));
  return Number.isFinite(ms) ? ms : undefined;
}

/** What one experiment has used and spends now, at the class's rate (the same sum usage reports make). */
export function metered(e: Experiment, cls: ResourceClass | undefined, nowMs: number): Metered {
  const s = e.status ?? {};
  const recorded = s.usage?.credits ?? 0;
  const started = parseMs(s.attemptStartedAt);
  if (started === undefined) return { credits: recorded, ratePerHour: 0 };
  const workers = s.workers?.desired ?? cls?.spec.nodes ?? 0;
  const ratePerHour = workers * (cls?.spec.creditsPerNodeHour ?? 0);
  const hours = Math.max(0, nowMs - started) / 3_600_000;
  return { credits: recorded + hours * ratePerHour, ratePerHour };
}

export interface LedgerInput {
  cluster: TrainingCluster;
  /** The experiments of the classes on this cluster, each with its class. */
  experiments: Iterable<{ experiment: Experiment; cls: ResourceClass | undefined }>;
  /** The balance the platform link learnt in this process; consulted only while spec.platform is set. */
  platform?: PlatformCredits;
  now: Date;
  debitIntervalMs?: number;
}

export interface LedgerResult {
  /** status.credits; undefined when credits are not enforced. */
  credits?: CreditsStatus;
  /** status.platform.credits to keep; undefined when there is none. */
  platformCredits?: PlatformCredits;
  /** The CreditsAvailable condition; undefined removes it. */
  condition?: ConditionUpdate;
  /** When the reconciler should look again: the next debit, or the moment the balance runs out. */
  requeueAfterMs?: number;
}

/** The platform's balance to use: the newer of what this process heard and what status recorded. */
export function platformCreditsOf(tc: TrainingCluster, live?: PlatformCredits): PlatformCredits | undefined {
  if (!tc.spec.platform) return undefined;
  const stored = validPlatformCredits(tc.status?.platform?.credits);
  const fresh = validPlatformCredits(live);
  if (!fresh) return stored;
  if (!stored) return fresh;
  return (parseMs(fresh.receivedAt) ?? 0) >= (parseMs(stored.receivedAt) ?? 0) ? fresh : stored;
}

// The status is a cache anyone with status rights can edit: a stored value is used only if it is still sane.
function validPlatformCredits(p: PlatformCredits | undefined): PlatformCredits | undefined {
  if (!p || !Number.isFinite(p.balance) || !Number.isFinite(p.spentAtReport) || p.spentAtReport < 0 || parseMs(p.receivedAt) === undefined) return undefined;
  return p;
}

/** The balance after `spent` credits, from the source in force; undefined when credits are not enforced. */
export function balanceSource(tc: TrainingCluster, platform: PlatformCredits | undefined): { source: CreditSource; balance: (spent: number) => number; granted?: number } | undefined {
  if (platform) return { source: 'Platform', balance: (spent) => platform.balance - Math.max(0, spent - platform.spentAtReport) };
  const granted = tc.spec.credits?.granted;
  if (granted !== undefined) return { source: 'Spec', granted, balance: (spent) => granted - spent };
  return undefined;
}

export function computeLedger(i: LedgerInput): LedgerResult {
  const { cluster: tc, now } = i;
  const nowMs = now.getTime();
  const interval = i.debitIntervalMs ?? DEFAULT_DEBIT_INTERVAL_MS;
  const platformCredits = platformCreditsOf(tc, i.platform);
  const basis = balanceSource(tc, platformCredits);
  if (!basis) return platformCredits ? { platformCredits } : {};

  let level = 0;
  let rate = 0;
  let running = 0;
  for (const { experiment, cls } of i.experiments) {
    const m = metered(experiment, cls, nowMs);
    level += m.credits;
    rate += m.ratePerHour;
    if (m.ratePerHour > 0) running++;
  }
  level = round6(level);

  const prev = validLedger(tc.status?.credits);
  let spent: number;
  let meteredLevel: number;
  let debitedThrough: string;
  if (!prev) {
    // A new ledger: what was used before credits were enforced is not charged.
    [spent, meteredLevel, debitedThrough] = [0, level, rfc3339(now)];
  } else {
    const rise = Math.max(0, round6(level - prev.metered));
    const sinceMs = nowMs - (parseMs(prev.debitedThrough) ?? nowMs);
    const reachesZero = basis.balance(prev.spent + rise) <= 0 && basis.balance(prev.spent) > 0;
    const due = rise > 0 && (sinceMs >= interval || reachesZero || prev.source !== basis.source);
    if (due || level < prev.metered) {
      [spent, meteredLevel, debitedThrough] = [round6(prev.spent + rise), level, rfc3339(now)];
    } else {
      [spent, meteredLevel, debitedThrough] = [prev.spent, prev.metered, prev.debitedThrough];
    }
  }
  const balance = round6(basis.balance(spent));
  const exhausted = balance <= 0;
  const credits: CreditsStatus = {
    source: basis.source,
    balance,
    ...(basis.granted !== undefined ? { granted: basis.granted } : {}),
    spent,
    metered: meteredLevel,
    debitedThrough,
    burnRatePerHour: round6(rate),
    running,
  };
  if (!exhausted && rate > 0) credits.secondsLeft = Math.floor((balance / rate) * 3600);
  if (exhausted) credits.exhaustedAt = prev?.exhaustedAt && prev.balance <= 0 ? prev.exhaustedAt : rfc3339(now);

  // Undebited use since debitedThrough counts against the time left, and is debited at the next pass even when
  // nothing runs any more (the attempt that used it has ended).
  const pending = Math.max(0, level - meteredLevel);
  let requeueAfterMs: number | undefined;
  if (rate > 0 || pending > 0) {
    const leftMs = exhausted || rate === 0 ? Infinity : Math.max(0, (basis.balance(spent + pending) / rate) * 3_600_000);
    const nextDebitMs = Math.max(0, (parseMs(debitedThrough) ?? nowMs) + interval - nowMs);
    requeueAfterMs = Math.max(100, Math.ceil(Math.min(leftMs, nextDebitMs || interval)));
  }
  return { credits, ...(platformCredits ? { platformCredits } : {}), condition: creditsCondition(tc, credits), requeueAfterMs };
}

function validLedger(c: CreditsStatus | undefined): CreditsStatus | undefined {
  if (!c || !Number.isFinite(c.spent) || !Number.isFinite(c.metered) || c.spent < 0 || c.metered < 0 || parseMs(c.debitedThrough) === undefined) return undefined;
  return c;
}

export function creditsCondition(tc: TrainingCluster, c: CreditsStatus): ConditionUpdate {
  if (c.balance > 0) {
    return {
      type: TrainingClusterConditions.CreditsAvailable,
      status: 'True',
      reason: 'CreditsAvailable',
      message: `Credits are left (${c.source === 'Platform' ? 'balance from the platform' : 'spec.credits.granted'}); status.credits has the balance, burn rate and time left.`,
    };
  }
  return { type: TrainingClusterConditions.CreditsAvailable, status: 'False', reason: 'CreditsExhausted', message: exhaustedMessage(tc, c) };
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}

/** Why training cannot go on, naming the balance and how to top up. */
export function exhaustedMessage(tc: TrainingCluster, c: Pick<CreditsStatus, 'source' | 'balance' | 'spent' | 'granted'>): string {
  const name = tc.metadata?.name ?? '?';
  const policy = tc.spec.credits?.exhaustedPolicy ?? 'Stop';
  const effect =
    policy === 'Finish'
      ? 'new experiments wait; runs that have started finish (spec.credits.exhaustedPolicy: Finish)'
      : 'new experiments wait and running ones stop after a final checkpoint';
  if (c.source === 'Platform') {
    return `The credit balance of TrainingCluster ${name} is ${fmt(c.balance)} (from the Arena platform): ${effect}. A Manager tops up on the platform's Billing page; training resumes from the checkpoint by itself with the next heartbeat reply.`;
  }
  const granted = c.granted ?? tc.spec.credits?.granted ?? 0;
  return `The credit balance of TrainingCluster ${name} is ${fmt(c.balance)} (${fmt(c.spent)} spent of ${fmt(granted)} granted): ${effect}. An admin tops up by raising spec.credits.granted, e.g. kubectl patch tcl ${name} --type merge -p '{"spec":{"credits":{"granted":${Math.ceil(Math.max(granted, c.spent)) + 100}}}}'; stopped and waiting runs then go on from their checkpoint by themselves.`;
}

/** What the experiment controller needs to know about the credits of an experiment's cluster. */
export interface CreditsVerdict {
  exhausted: boolean;
  policy: CreditsExhaustedPolicy;
  balance: number;
  message: string;
  /** The status reason of what it holds: CreditsExhausted (the cluster's balance; the default) or BudgetExhausted. */
  reason?: string;
}

/**
 * Whether credits stop training on this cluster now, from its spec and ledger. A raised spec.credits.granted
 * counts at once (the balance is granted − spent), so a top-up does not wait for the ledger's next pass.
 */
export function creditsVerdict(tc: TrainingCluster | undefined): CreditsVerdict | undefined {
  const c = tc ? validLedger(tc.status?.credits) : undefined;
  if (!tc || !c) return undefined;
  const basis = balanceSource(tc, platformCreditsOf(tc));
  // spec.credits was removed (and no platform balance): the ledger's next pass drops it; nothing is enforced.
  if (!basis) return undefined;
  const balance = round6(basis.balance(c.spent));
  const exhausted = balance <= 0;
  const policy = tc.spec.credits?.exhaustedPolicy ?? 'Stop';
  return { exhausted, policy, balance, message: exhausted ? exhaustedMessage(tc, { source: basis.source, balance, spent: c.spent, granted: basis.granted }) : '' };
}
