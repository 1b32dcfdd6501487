import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Experiment, ExperimentStatus } from '../../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { Budget, TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import { validate } from '../../api/validate.ts';
import { BUDGET_EXHAUSTED, budgetVerdict, computeBudgets, periodEndMs, periodOf, spentBudgets, type BudgetStatus } from './budgets.ts';

const t0 = new Date('2026-03-31T23:59:00Z');
const at = (s: number) => new Date(t0.getTime() + s * 1000);
const iso = (s: number) => at(s).toISOString().replace(/\.\d+Z$/, 'Z');

const budget = (b: Partial<Budget> = {}): Budget => ({ name: 'vision', namespaces: ['cv'], credits: 100, ...b });
function cluster(budgets: Budget[], status?: BudgetStatus[]): TrainingCluster {
  return {
    apiVersion: 'arena.agilerl.com/v1alpha1',
    kind: 'TrainingCluster',
    metadata: { name: 'onprem', generation: 1 },
    spec: { setupBundle: { version: '1.0.0', images: { runtime: 'r:1' } }, checkpointStorage: { hostPath: { path: '/c' } }, budgets },
    ...(status ? { status: { budgets: status } } : {}),
  };
}

/** 2 nodes of 4 GPUs at 3600 credits per node-hour: 2 credits and 8 GPU-seconds a second while an attempt runs. */
const cls = { metadata: { name: 'c' }, spec: { trainingCluster: 'onprem', nodes: 2, worker: { gpus: 4 }, creditsPerNodeHour: 3600 } } as ResourceClass;
const exp = (ns: string, status: ExperimentStatus) => ({ experiment: { metadata: { name: 'e', namespace: ns }, spec: { resourceClass: 'c' }, status } as Experiment, cls });
const runningSince = (ns: string, s: number, credits = 0, gpuSeconds = 0) =>
  exp(ns, { phase: 'Running', attemptStartedAt: iso(s), workers: { desired: 2, scheduled: 2, running: 2 }, usage: { nodeSeconds: 0, gpuSeconds, credits } });
const entry = (b: Partial<BudgetStatus>): BudgetStatus => ({
  name: 'vision',
  period: '2026-03',
  spentCredits: 0,
  spentGpuHours: 0,
  meteredCredits: 0,
  meteredGpuHours: 0,
  debitedThrough: iso(0),
  running: 0,
  burnRatePerHour: 0,
  ...b,
});
const run = (c: TrainingCluster, experiments: ReturnType<typeof exp>[], s: number) => computeBudgets({ cluster: c, experiments, now: at(s), debitIntervalMs: 10_000 });

describe('budget periods', () => {
  test('a Month budget counts the UTC month and ends at the next one; a Total one never ends', () => {
    assert.equal(periodOf({}, t0), '2026-03');
    assert.equal(periodOf({ period: 'Month' }, at(60)), '2026-04');
    assert.equal(periodOf({ period: 'Total' }, t0), 'total');
    assert.equal(periodEndMs({}, t0), Date.parse('2026-04-01T00:00:00Z'));
    assert.equal(periodEndMs({ period: 'Total' }, t0), undefined);
  });
});

describe('budget ledger', () => {
  test('without spec.budgets there is no ledger', () => assert.deepEqual(computeBudgets({ cluster: cluster([]), experiments: [], now: t0 }), {}));

  test('a new budget counts from now: what its namespaces used before is not charged, other namespaces never', () => {
    const r = run(cluster([budget()]), [runningSince('cv', -10, 5), runningSince('other', -10)], 0);
    assert.deepEqual(r.budgets, [entry({ meteredCredits: 25, meteredGpuHours: round(80 / 3600), running: 1, burnRatePerHour: 7200, secondsLeft: 50 })]);
    assert.equal(r.requeueAfterMs, 10_000, 'the next debit');
  });

  test('debits wait for the interval, then take the rise; credits and GPU-hours each', () => {
    const c = cluster([budget({ gpuHours: 10 })], [entry({ meteredCredits: 0, meteredGpuHours: 0 })]);
    const early = run(c, [runningSince('cv', 0)], 5);
    assert.equal(early.budgets![0]!.spentCredits, 0, 'held: less than the interval and far from the limit');
    const due = run(c, [runningSince('cv', 0)], 12);
    assert.equal(due.budgets![0]!.spentCredits, 24);
    assert.equal(due.budgets![0]!.spentGpuHours, round(96 / 3600));
    assert.equal(due.budgets![0]!.debitedThrough, iso(12));
    assert.equal(due.budgets![0]!.secondsLeft, 38, '76 credits left at 2 a second (GPU-hours last longer)');
  });

  test('the debit that reaches the limit is made at once and marks the budget spent', () => {
    const c = cluster([budget({ credits: 10 })], [entry({})]);
    const r = run(c, [runningSince('cv', 0)], 6);
    assert.equal(r.budgets![0]!.spentCredits, 12);
    assert.equal(r.budgets![0]!.exhaustedAt, iso(6));
    assert.equal(spentBudgets(cluster([budget({ credits: 10 })], r.budgets)), 'vision@2026-03');
  });

  test('a new month starts the budget afresh: nothing spent, exhaustedAt gone, and held runs are looked at again', () => {
    const spent = entry({ spentCredits: 100, exhaustedAt: iso(-100), meteredCredits: 100 });
    const c = cluster([budget()], [spent]);
    const before = run(c, [runningSince('cv', -50, 0)], 30);
    assert.ok(before.budgets![0]!.exhaustedAt, 'still March');
    assert.ok(before.requeueAfterMs! <= 61_000, 'it looks again when April begins');
    const after = run(c, [runningSince('cv', -50, 0)], 61);
    assert.equal(after.budgets![0]!.period, '2026-04');
    assert.equal(after.budgets![0]!.spentCredits, 0);
    assert.equal(after.budgets![0]!.exhaustedAt, undefined);
    assert.notEqual(spentBudgets(cluster([budget()], after.budgets)), spentBudgets(c));
  });

  test('a Total budget keeps counting across months', () => {
    const c = cluster([budget({ period: 'Total' })], [entry({ period: 'total', spentCredits: 50, meteredCredits: 0 })]);
    const r = run(c, [runningSince('cv', 0)], 120);
    assert.equal(r.budgets![0]!.period, 'total');
    assert.equal(r.budgets![0]!.spentCredits, 290);
  });

  test('the status it writes fits the schema', () => {
    const c = cluster([budget({ credits: 10 })], [entry({})]);
    const r = run(c, [runningSince('cv', 0)], 6);
    assert.equal(validate('TrainingCluster', { ...c, status: { budgets: r.budgets } }).ok, true);
  });
});

describe('budget verdict for a namespace', () => {
  const spent = [entry({ spentCredits: 100, exhaustedAt: iso(0) })];
  test('a spent budget holds its namespaces, naming itself, what was spent, and when it starts afresh', () => {
    const v = budgetVerdict(cluster([budget()], spent), 'cv', at(1));
    assert.equal(v?.exhausted, true);
    assert.equal(v?.reason, BUDGET_EXHAUSTED);
    assert.equal(v?.policy, 'Stop');
    assert.match(v!.message, /^Budget vision of TrainingCluster onprem is spent for 2026-03 \(100 of 100 credits\), so in namespace cv new experiments wait and running ones stop after a final checkpoint\. It starts afresh on 2026-04-01 \(UTC\)/);
    assert.equal(budgetVerdict(cluster([budget()], spent), 'other', at(1)), undefined, 'other namespaces are not held');
  });

  test('a raised limit and a new period let runs go at once, before the ledger\'s next pass', () => {
    assert.equal(budgetVerdict(cluster([budget({ credits: 150 })], spent), 'cv', at(1)), undefined);
    assert.equal(budgetVerdict(cluster([budget()], spent), 'cv', at(61)), undefined);
  });

  test('any spent budget over the namespace holds it; GPU-hours limit it too; Finish lets started runs go on', () => {
    const two = cluster(
      [budget({ credits: 1000 }), { name: 'gpu-cap', namespaces: ['cv', 'nlp'], gpuHours: 2, exhaustedPolicy: 'Finish' }],
      [entry({ spentCredits: 5 }), entry({ name: 'gpu-cap', spentGpuHours: 2 })],
    );
    const v = budgetVerdict(two, 'cv', at(1));
    assert.match(v!.message, /^Budget gpu-cap .*\(2 of 2 GPU-hours\).*runs that have started finish/);
    assert.equal(v?.policy, 'Finish');
    assert.equal(budgetVerdict(cluster([budget({ credits: 0 })]), 'cv', at(1))?.exhausted, true, 'a zero budget holds from the start');
  });
});

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}
