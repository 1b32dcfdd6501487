import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Experiment, ExperimentStatus } from '../../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import { validate } from '../../api/validate.ts';
import { computeLedger, creditsVerdict, metered, platformCreditsOf, type CreditsStatus, type LedgerInput, type PlatformCredits } from './credits.ts';

const t0 = new Date('2026-03-01T12:00:00Z');
const at = (s: number) => new Date(t0.getTime() + s * 1000);
const iso = (s: number) => at(s).toISOString().replace(/\.\d+Z$/, 'Z');
const PLATFORM = { url: 'https://arena.example', tokenSecretRef: { name: 't', namespace: 'arena-system' } };

function cluster(spec: Partial<TrainingCluster['spec']> = {}, status?: TrainingCluster['status']): TrainingCluster {
  return {
    apiVersion: 'arena.agilerl.com/v1alpha1',
    kind: 'TrainingCluster',
    metadata: { name: 'onprem', generation: 1 },
    spec: { setupBundle: { version: '1.0.0', images: { runtime: 'r:1' } }, checkpointStorage: { hostPath: { path: '/c' } }, ...spec },
    ...(status ? { status } : {}),
  };
}

/** 2 nodes at 3600 credits per node-hour: 2 credits a second while an attempt runs. */
const cls: ResourceClass = { metadata: { name: 'c' }, spec: { trainingCluster: 'onprem', nodes: 2, creditsPerNodeHour: 3600 } } as ResourceClass;

function exp(status: ExperimentStatus): { experiment: Experiment; cls: ResourceClass } {
  return { experiment: { metadata: { name: 'e', namespace: 'ns' }, spec: { resourceClass: 'c' }, status } as Experiment, cls };
}
const runningSince = (s: number, usage = 0) => exp({ phase: 'Running', attemptStartedAt: iso(s), workers: { desired: 2, scheduled: 2, running: 2 }, usage: { nodeSeconds: 0, gpuSeconds: 0, credits: usage } });
const finished = (usage: number) => exp({ phase: 'Succeeded', usage: { nodeSeconds: 0, gpuSeconds: 0, credits: usage } });

function ledger(c: TrainingCluster, experiments: LedgerInput['experiments'], nowS: number, more: Partial<LedgerInput> = {}) {
  return computeLedger({ cluster: c, experiments, now: at(nowS), debitIntervalMs: 10_000, ...more });
}
const prior = (c: Partial<CreditsStatus>): CreditsStatus => ({ source: 'Spec', balance: 100, granted: 100, spent: 0, metered: 0, debitedThrough: iso(0), burnRatePerHour: 0, running: 0, ...c });

describe('metered usage of one experiment', () => {
  test('recorded usage plus the running attempt, at the class rate', () => {
    assert.deepEqual(metered(runningSince(0, 5).experiment, cls, at(10).getTime()), { credits: 25, ratePerHour: 7200 });
    assert.deepEqual(metered(finished(5).experiment, cls, at(10).getTime()), { credits: 5, ratePerHour: 0 });
  });
});

describe('credit ledger', () => {
  test('no spec.credits and no platform balance: nothing is enforced and there is no ledger', () => {
    const r = ledger(cluster(), [runningSince(0)], 5);
    assert.equal(r.credits, undefined);
    assert.equal(r.condition, undefined);
  });

  test('a new ledger starts at the grant and charges nothing used before it', () => {
    const r = ledger(cluster({ credits: { granted: 100 } }), [finished(40), runningSince(-10)], 0);
    assert.equal(r.credits?.balance, 100);
    assert.equal(r.credits?.spent, 0);
    assert.equal(r.credits?.metered, 60);
    assert.equal(r.credits?.burnRatePerHour, 7200);
    assert.equal(r.credits?.secondsLeft, 50);
    assert.equal(r.condition?.status, 'True');
    assert.equal(r.requeueAfterMs, 10_000, 'the next debit is due before the balance runs out');
  });

  // [name, prior ledger, experiments, now (s), want: spent, balance, debitedThrough (s)]
  const cases: [string, Partial<CreditsStatus>, LedgerInput['experiments'], number, [number, number, number]][] = [
    ['the rise of the metered level is debited once the interval has passed', { metered: 0 }, [runningSince(0)], 10, [20, 80, 10]],
    ['within the interval the debit is held, and nothing is written', { metered: 0 }, [runningSince(0)], 5, [0, 100, 0]],
    ['the pass that would reach zero debits at once', { metered: 0, spent: 92, balance: 8 }, [runningSince(0)], 5, [102, -2, 5]],
    ['an attempt that ended between passes is debited from its recorded usage', { metered: 10 }, [finished(30)], 12, [20, 80, 12]],
    ['a deleted experiment lowers the level and refunds nothing', { metered: 50, spent: 50, balance: 50 }, [finished(10)], 3, [50, 50, 3]],
    ['a rerun from the same status debits nothing more (restart safety)', { metered: 20, spent: 20, balance: 80, debitedThrough: iso(10) }, [runningSince(0)], 10, [20, 80, 10]],
  ];
  for (const [name, before, experiments, nowS, [spent, balance, through]] of cases) {
    test(name, () => {
      const r = ledger(cluster({ credits: { granted: 100 } }, { credits: prior(before) }), experiments, nowS);
      assert.equal(r.credits?.spent, spent, 'spent');
      assert.equal(r.credits?.balance, balance, 'balance');
      assert.equal(r.credits?.debitedThrough, iso(through), 'debitedThrough');
    });
  }

  test('at zero: the condition is False with the balance and how to top up, and exhaustedAt is kept', () => {
    const c = cluster({ credits: { granted: 100 } }, { credits: prior({ spent: 102, balance: -2, metered: 102, exhaustedAt: iso(-30) }) });
    const r = ledger(c, [finished(102)], 5);
    assert.equal(r.condition?.status, 'False');
    assert.equal(r.condition?.reason, 'CreditsExhausted');
    assert.match(r.condition!.message, /balance of TrainingCluster onprem is -2 \(102 spent of 100 granted\)/);
    assert.match(r.condition!.message, /raising spec\.credits\.granted/);
    assert.equal(r.credits?.exhaustedAt, iso(-30));
    assert.equal(r.credits?.secondsLeft, undefined);
  });

  test('a top-up (granted raised) makes the balance positive again at once, in the ledger and for experiments', () => {
    const before = { credits: prior({ spent: 102, balance: -2, metered: 102, exhaustedAt: iso(-30) }) };
    assert.equal(creditsVerdict(cluster({ credits: { granted: 100 } }, before))?.exhausted, true);
    const topped = cluster({ credits: { granted: 150 } }, before);
    assert.deepEqual([creditsVerdict(topped)?.exhausted, creditsVerdict(topped)?.balance], [false, 48]);
    const r = ledger(topped, [finished(102)], 5);
    assert.equal(r.credits?.balance, 48);
    assert.equal(r.credits?.exhaustedAt, undefined);
    assert.equal(r.condition?.status, 'True');
  });

  test('the platform\'s balance wins over spec.credits.granted, less what was spent since the heartbeat reported', () => {
    const live: PlatformCredits = { balance: 30, spentAtReport: 10, receivedAt: iso(0) };
    const c = cluster({ platform: PLATFORM, credits: { granted: 1000 } }, { credits: prior({ spent: 10, metered: 10 }) });
    const r = ledger(c, [runningSince(0, 10)], 10, { platform: live });
    assert.equal(r.credits?.source, 'Platform');
    assert.equal(r.credits?.balance, 10, '30 named, 20 spent since');
    assert.deepEqual(r.platformCredits, live, 'kept in status, for restarts');
  });

  test('the stored platform balance stands in after a restart; a newer live one replaces it; none counts without spec.platform', () => {
    const stored: PlatformCredits = { balance: 5, spentAtReport: 0, receivedAt: iso(0) };
    const newer: PlatformCredits = { balance: 50, spentAtReport: 0, receivedAt: iso(60) };
    const linked = cluster({ platform: PLATFORM }, { platform: { credits: stored } });
    assert.deepEqual(platformCreditsOf(linked), stored);
    assert.deepEqual(platformCreditsOf(linked, newer), newer);
    assert.equal(platformCreditsOf(cluster({}, { platform: { credits: stored } }), newer), undefined);
  });

  test('a cluster that is spending looks again when its balance will run out, if that comes before the next debit', () => {
    const r = ledger(cluster({ credits: { granted: 100 } }, { credits: prior({ spent: 90, balance: 10, metered: 0 }) }), [runningSince(0)], 2);
    // 10 left, 4 undebited: 6 credits at 2 a second.
    assert.equal(r.requeueAfterMs, 3_000);
  });

  test('a held debit of an attempt that has ended is still due: the reconciler looks again at the interval', () => {
    const r = ledger(cluster({ credits: { granted: 100 } }, { credits: prior({ metered: 10, debitedThrough: iso(0) }) }), [finished(14)], 4);
    assert.equal(r.credits?.spent, 0, 'held');
    assert.equal(r.credits?.running, 0);
    assert.equal(r.requeueAfterMs, 6_000);
  });
});

describe('spec.credits is checked', () => {
  const tc = (credits: unknown, platform = false) => ({ ...cluster(), spec: { ...cluster().spec, credits, ...(platform ? { platform: PLATFORM } : {}) } });
  test('granted is required without a platform, and the refusal names the field and the fix', () => {
    const r = validate('TrainingCluster', tc({ exhaustedPolicy: 'Finish' }));
    assert.equal(r.ok, false);
    assert.match(JSON.stringify(r.ok ? [] : r.errors), /credits\.granted.*required without spec\.platform/);
    assert.equal(validate('TrainingCluster', tc({ exhaustedPolicy: 'Finish' }, true)).ok, true);
  });
  test('granted cannot be negative; the policy is Stop or Finish', () => {
    assert.equal(validate('TrainingCluster', tc({ granted: -1 })).ok, false);
    assert.equal(validate('TrainingCluster', tc({ granted: 10, exhaustedPolicy: 'Pause' })).ok, false);
    assert.equal(validate('TrainingCluster', tc({ granted: 10, exhaustedPolicy: 'Stop' })).ok, true);
  });
});
