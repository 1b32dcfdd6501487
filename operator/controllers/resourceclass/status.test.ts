import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import { validate } from '../../api/validate.ts';
import { desiredResourceClassStatus, teamStatuses, type ResourceClassObservation } from './status.ts';
import { perWorker, queueCounts } from './reconcile.ts';

function cls(spec: Partial<ResourceClass['spec']> = {}): ResourceClass {
  return { metadata: { name: 'a100', generation: 2 }, spec: { trainingCluster: 'onprem', nodes: 2, worker: { cpu: '4', memory: '16Gi', gpus: 8 }, ...spec } };
}

function cluster(spec: Partial<TrainingCluster['spec']> = {}, status?: TrainingCluster['status']): TrainingCluster {
  return {
    metadata: { name: 'onprem' },
    spec: { setupBundle: { version: '1.0.0', images: { runtime: 'r:1' } }, checkpointStorage: { hostPath: { path: '/c' } }, ...spec },
    ...(status ? { status } : {}),
  };
}

const PLATFORM = { url: 'https://arena.example', tokenSecretRef: { name: 't', namespace: 'arena-system' } };

const fits = { eligibleNodes: 4, fitNow: 1, fitMax: 2 };
const now = new Date('2026-01-01T00:00:00Z');
const observe = (o: Partial<ResourceClassObservation>) =>
  desiredResourceClassStatus({ cls: cls(), cluster: cluster(), fit: fits, queued: 0, running: 0, now, ...o });
const cond = (s: { conditions?: { type: string; status: string; reason: string; message: string }[] }, type: string) => s.conditions?.find((c) => c.type === type);

describe('ResourceClass availability', () => {
  // The first reason that applies wins, in the order the platform's own checklist reads.
  const cases: { name: string; o: Partial<ResourceClassObservation>; available: boolean; reason: string }[] = [
    { name: 'available', o: {}, available: true, reason: 'Available' },
    { name: 'no such training cluster', o: { cluster: undefined, fit: undefined }, available: false, reason: 'TrainingClusterNotFound' },
    { name: 'malformed worker request', o: { specError: 'bad cpu', fit: undefined }, available: false, reason: 'InvalidSpec' },
    { name: 'provider disabled (even when the class is disabled too)', o: { cluster: cluster({ enabled: false }), cls: cls({ enabled: false }) }, available: false, reason: 'ProviderDisabled' },
    { name: 'class disabled', o: { cls: cls({ enabled: false }) }, available: false, reason: 'ClassDisabled' },
    { name: 'no eligible node', o: { fit: { eligibleNodes: 0, fitNow: 0, fitMax: 0 }, ineligible: '3 nodes: not Ready' }, available: false, reason: 'NoEligibleNode' },
    { name: 'gang bigger than the eligible nodes', o: { fit: { eligibleNodes: 1, fitNow: 0, fitMax: 0 } }, available: false, reason: 'NeverFits' },
    { name: 'full now but fits when work ends', o: { fit: { eligibleNodes: 4, fitNow: 0, fitMax: 2 } }, available: true, reason: 'Available' },
    { name: 'outdated bundle stays available', o: { cluster: cluster({ currentBundleVersion: '2.0.0' }) }, available: true, reason: 'Available' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const s = observe(c.o);
      assert.equal(s.available, c.available);
      assert.equal(s.reason, c.reason);
      assert.deepEqual([cond(s, 'Available')?.status, cond(s, 'Available')?.reason], [c.available ? 'True' : 'False', c.reason]);
    });
  }

  test('the breakdown of ineligible nodes is in the message', () => {
    assert.match(observe({ fit: { eligibleNodes: 0, fitNow: 0, fitMax: 0 }, ineligible: '3 nodes: not Ready' }).message!, /3 nodes: not Ready/);
  });
});

describe('ResourceClass update recommended', () => {
  const cases: [string, TrainingCluster | undefined, string, string][] = [
    ['bundle current', cluster({ currentBundleVersion: '1.0.0' }), 'False', 'BundleCurrent'],
    ['platform image changed', cluster({ currentBundleVersion: '1.2.0' }), 'True', 'UpdateRecommended'],
    ['current version unknown', cluster(), 'Unknown', 'CurrentVersionUnknown'],
    ['no cluster', undefined, 'Unknown', 'TrainingClusterNotFound'],
  ];
  for (const [name, tc, status, reason] of cases) {
    test(name, () => {
      const s = observe({ cluster: tc });
      assert.deepEqual([cond(s, 'UpdateRecommended')?.status, cond(s, 'UpdateRecommended')?.reason], [status, reason]);
    });
  }

  // The class reads the version its TrainingCluster recorded from the platform, so the two never disagree for long.
  test('the platform\'s version, as the cluster\'s status recorded it, wins over the spec field; the bundle is on the status', () => {
    const outdated = observe({ cluster: cluster({ platform: PLATFORM, currentBundleVersion: '1.0.0' }, { platform: { currentBundleVersion: '1.1.0' } }) });
    assert.deepEqual(outdated.bundle, { installedVersion: '1.0.0', currentVersion: '1.1.0', state: 'UpdateRecommended' });
    assert.equal(cond(outdated, 'UpdateRecommended')?.status, 'True');
    assert.match(cond(outdated, 'UpdateRecommended')!.message, /platform reported 1\.1\.0/);
    assert.equal(outdated.available, true);

    const upgraded = observe({
      cls: { ...cls(), status: outdated },
      cluster: cluster({ platform: PLATFORM, setupBundle: { version: '1.1.0', images: { runtime: 'r:1.1' } } }, { platform: { currentBundleVersion: '1.1.0' } }),
    });
    assert.deepEqual(upgraded.bundle, { installedVersion: '1.1.0', currentVersion: '1.1.0', state: 'Current' });
    assert.deepEqual([cond(upgraded, 'UpdateRecommended')?.status, cond(upgraded, 'UpdateRecommended')?.reason], ['False', 'BundleCurrent']);

    const spec = observe({ cluster: cluster({ currentBundleVersion: '1.0.0' }, { platform: { currentBundleVersion: '1.1.0' } }) });
    assert.equal(spec.bundle?.state, 'Current', 'without spec.platform a stored platform answer does not count');
    assert.match(cond(spec, 'UpdateRecommended')!.message, /spec\.currentBundleVersion/);
    assert.equal(observe({ cluster: undefined, fit: undefined }).bundle, undefined);
  });
});

describe('ResourceClass numbers', () => {
  test('advanced training needs at least 1 GPU per worker', () => {
    assert.equal(observe({ cls: cls({ worker: { gpus: 1 } }) }).advancedTrainingEligible, true);
    assert.equal(observe({ cls: cls({ worker: { cpu: '8' } }) }).advancedTrainingEligible, false);
  });

  test('queue counts: Pending waits, Running and Stopping hold capacity, the rest is not counted', () => {
    const e = (phase?: string) => ({ status: phase ? { phase } : {} }) as Experiment;
    assert.deepEqual(queueCounts([e('Pending'), e('Pending'), e('Running'), e('Stopping'), e('Succeeded'), e('Draft'), e()]), { queued: 2, running: 2 });
  });

  test('per-worker request in the scheduler\'s units', () => {
    assert.deepEqual(perWorker(cls({ worker: { cpu: '1500m', memory: '1Gi', gpus: 2 } })), { cpuMilli: 1500, memoryBytes: 1024 ** 3, gpus: 2 });
    assert.throws(() => perWorker(cls({ worker: { cpu: 'lots' } })));
  });

  test('fit numbers are reported, and the status passes the CRD schema', () => {
    const s = observe({ queued: 3, running: 1, cluster: cluster({ currentBundleVersion: '1.1.0' }) });
    assert.deepEqual(s.bundle, { installedVersion: '1.0.0', currentVersion: '1.1.0', state: 'UpdateRecommended' });
    assert.deepEqual([s.eligibleNodes, s.fitNow, s.fitMax, s.queued, s.running, s.observedGeneration], [4, 1, 2, 3, 1, 2]);
    assert.deepEqual(validate('ResourceClass', { apiVersion: 'arena.agilerl.com/v1alpha1', kind: 'ResourceClass', ...cls(), status: s }), { ok: true });
  });
});

describe('ResourceClass team usage', () => {
  const exp = (ns: string, phase: string, admitted = false): Experiment =>
    ({ metadata: { name: `${ns}-${phase}`, namespace: ns }, spec: {}, status: { phase, ...(admitted ? { admittedAt: '2026-01-01T00:00:00Z' } : {}) } }) as unknown as Experiment;
  const teams = cls({ teams: [{ name: 'a', namespaces: ['ns-a'], gpus: 16 }, { name: 'b', namespaces: ['ns-b', 'ns-b2'], gpus: 32 }] });

  test('without teams there is no team status', () => assert.equal(teamStatuses(cls(), [exp('x', 'Running')]), undefined));

  test('each team\'s quota, what its admitted and running runs hold (nodes × GPUs), what it borrows and what waits', () => {
    const rows = teamStatuses(teams, [
      exp('ns-a', 'Running'),
      exp('ns-a', 'Stopping'),
      exp('ns-a', 'Pending', true),
      exp('ns-a', 'Pending'),
      exp('ns-b2', 'Running'),
      exp('ns-b', 'Succeeded'),
      exp('elsewhere', 'Running'),
      exp('elsewhere2', 'Pending'),
    ]);
    // A gang of this class is 2 nodes × 8 GPUs = 16 GPUs.
    assert.deepEqual(rows, [
      { name: 'a', quotaGpus: 16, usedGpus: 48, borrowedGpus: 32, queued: 1, running: 3 },
      { name: 'b', quotaGpus: 32, usedGpus: 16, borrowedGpus: 0, queued: 0, running: 1 },
      { name: 'unassigned', quotaGpus: 0, usedGpus: 16, borrowedGpus: 16, queued: 1, running: 1 },
    ]);
    const status = observe({ cls: teams, teams: rows });
    assert.deepEqual(validate('ResourceClass', { apiVersion: 'arena.agilerl.com/v1alpha1', kind: 'ResourceClass', ...teams, status }).ok, true, 'the status fits the schema');
  });
});
