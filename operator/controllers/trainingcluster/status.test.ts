import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import { CapacityModel, type NodeInfo } from '../../scheduler/capacity.ts';
import { node, pod, req } from '../../scheduler/testing.ts';
import { validate } from '../../api/validate.ts';
import { NODE_NAMES_LIMIT, attentionBackend, desiredTrainingClusterStatus, productDetails, selects, type PlatformHealth } from './status.ts';
import { bundleOf, isSemver, resolveBundle, type PlatformBundleReport } from './bundle.ts';

const A100 = { 'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB', 'nvidia.com/gpu.memory': '81920', 'nvidia.com/gpu.compute.major': '8', 'nvidia.com/gpu.compute.minor': '0' };
const L4 = { 'nvidia.com/gpu.product': 'NVIDIA-L4', 'nvidia.com/gpu.memory': '23034', 'nvidia.com/gpu.compute.major': '8', 'nvidia.com/gpu.compute.minor': '9' };

function cluster(spec: Partial<TrainingCluster['spec']> = {}, status?: TrainingCluster['status']): TrainingCluster {
  return {
    apiVersion: 'arena.agilerl.com/v1alpha1',
    kind: 'TrainingCluster',
    metadata: { name: 'onprem', generation: 3 },
    spec: { setupBundle: { version: '1.0.0', images: { runtime: 'r:1' } }, checkpointStorage: { hostPath: { path: '/c' } }, ...spec },
    ...(status ? { status } : {}),
  };
}

function observe(tc: TrainingCluster, nodes: NodeInfo[], opts: { pods?: [string, number][]; platform?: PlatformHealth; platformBundle?: PlatformBundleReport; now?: Date } = {}) {
  const capacity = new CapacityModel();
  for (const n of nodes) capacity.upsertNode(n);
  (opts.pods ?? []).forEach(([n, gpus], i) => capacity.upsertPod(`p${i}`, pod(n, req(gpus))));
  return desiredTrainingClusterStatus({
    cluster: tc,
    nodes,
    capacity: capacity.summary((n) => selects(tc.spec.workerNodeSelector, n.labels)),
    platform: opts.platform,
    platformBundle: opts.platformBundle,
    now: opts.now ?? new Date('2026-01-01T00:00:00Z'),
  });
}

const cond = (s: { conditions?: { type: string; status: string; reason: string }[] }, type: string) => s.conditions?.find((c) => c.type === type);

const PLATFORM = { url: 'https://arena.example', tokenSecretRef: { name: 't', namespace: 'arena-system' } };

describe('bundle state', () => {
  const cases: [string, string | undefined, string][] = [
    ['no current version known', undefined, 'Unknown'],
    ['same version', '1.0.0', 'Current'],
    ['platform moved on', '1.1.0', 'UpdateRecommended'],
  ];
  for (const [name, current, state] of cases) {
    test(name, () => {
      assert.equal(bundleOf(cluster({ currentBundleVersion: current })).state, state);
    });
  }

  // The platform's answer is fresher than the admin's field; the stored one stands in for it after a restart.
  const precedence: { name: string; tc: TrainingCluster; live?: PlatformBundleReport; want: [string | undefined, string | undefined] }[] = [
    { name: 'spec only, no link', tc: cluster({ currentBundleVersion: '1.0.0' }), want: ['1.0.0', 'Spec'] },
    { name: 'a live platform answer beats the spec', tc: cluster({ platform: PLATFORM, currentBundleVersion: '1.0.0' }), live: { version: '1.2.0' }, want: ['1.2.0', 'Platform'] },
    {
      name: 'the live answer beats the stored one',
      tc: cluster({ platform: PLATFORM }, { platform: { currentBundleVersion: '1.1.0' } }),
      live: { version: '1.2.0' },
      want: ['1.2.0', 'Platform'],
    },
    {
      name: 'the stored answer stands in before the first reply (operator restarted)',
      tc: cluster({ platform: PLATFORM, currentBundleVersion: '1.0.0' }, { platform: { currentBundleVersion: '1.1.0' } }),
      want: ['1.1.0', 'Platform'],
    },
    {
      name: 'a reply without a version keeps the stored one',
      tc: cluster({ platform: PLATFORM, currentBundleVersion: '1.0.0' }, { platform: { currentBundleVersion: '1.1.0' } }),
      live: { problem: 'is not JSON' },
      want: ['1.1.0', 'Platform'],
    },
    { name: 'link set, platform never named one: the spec is the fallback', tc: cluster({ platform: PLATFORM, currentBundleVersion: '1.0.0' }), live: { problem: 'has no currentBundleVersion' }, want: ['1.0.0', 'Spec'] },
    {
      name: 'link removed: platform answers no longer count',
      tc: cluster({ currentBundleVersion: '1.0.0' }, { platform: { currentBundleVersion: '1.1.0' } }),
      live: { version: '1.1.0' },
      want: ['1.0.0', 'Spec'],
    },
    {
      name: 'a hand-edited, invalid stored value is ignored',
      tc: cluster({ platform: PLATFORM }, { platform: { currentBundleVersion: 'latest' } }),
      want: [undefined, undefined],
    },
  ];
  for (const c of precedence) {
    test(`current version: ${c.name}`, () => {
      const b = resolveBundle(c.tc, c.live);
      assert.deepEqual([b.currentVersion, b.source], c.want);
    });
  }

  test('semantic versions as the CRD pattern reads them', () => {
    for (const v of ['1.0.0', '10.20.30', '1.2.3-rc.1', '1.2.3+build.5']) assert.ok(isSemver(v), v);
    for (const v of ['v1.0.0', '1.0', '01.0.0', '', 'latest', 7, null, undefined, `1.0.0-${'x'.repeat(80)}`]) assert.ok(!isSemver(v), String(v));
  });
});

describe('bundle from the platform link', () => {
  const healthy: PlatformHealth = { status: 'True', reason: 'HeartbeatAccepted', message: 'ok' };
  const bundleCond = (s: ReturnType<typeof observe>) => s.conditions!.find((c) => c.type === 'BundleCurrent')!;

  test('Current, then UpdateRecommended when the platform moves on, then Current after the upgrade', () => {
    const t0 = new Date('2026-01-01T00:00:00Z');
    const t1 = new Date('2026-01-01T01:00:00Z');
    const t2 = new Date('2026-01-01T02:00:00Z');
    const current = observe(cluster({ platform: PLATFORM }), [node('a')], { platform: healthy, platformBundle: { version: '1.0.0' }, now: t0 });
    assert.deepEqual(current.bundle, { installedVersion: '1.0.0', currentVersion: '1.0.0', state: 'Current' });
    assert.deepEqual(current.platform, { currentBundleVersion: '1.0.0' });
    assert.equal(bundleCond(current).status, 'True');
    assert.match(bundleCond(current).message, /platform reported 1\.0\.0/);

    const outdated = observe(cluster({ platform: PLATFORM }, current), [node('a')], { platform: healthy, platformBundle: { version: '1.1.0' }, now: t1 });
    assert.deepEqual(outdated.bundle, { installedVersion: '1.0.0', currentVersion: '1.1.0', state: 'UpdateRecommended' });
    assert.deepEqual(outdated.platform, { currentBundleVersion: '1.1.0' });
    assert.deepEqual([bundleCond(outdated).status, bundleCond(outdated).reason, bundleCond(outdated).lastTransitionTime], ['False', 'UpdateRecommended', '2026-01-01T01:00:00Z']);
    assert.equal(cond(outdated, 'Ready')?.status, 'True', 'an update is advice, not a stop');

    const upgraded: TrainingCluster = cluster({ platform: PLATFORM, setupBundle: { version: '1.1.0', images: { runtime: 'r:1.1' } } }, outdated);
    const again = observe(upgraded, [node('a')], { platform: healthy, platformBundle: { version: '1.1.0' }, now: t2 });
    assert.deepEqual(again.bundle, { installedVersion: '1.1.0', currentVersion: '1.1.0', state: 'Current' });
    assert.deepEqual([bundleCond(again).status, bundleCond(again).lastTransitionTime], ['True', '2026-01-01T02:00:00Z']);
  });

  test('an unusable reply keeps the last known version and says so in BundleCurrent', () => {
    const stored = observe(cluster({ platform: PLATFORM }), [node('a')], { platform: healthy, platformBundle: { version: '1.1.0' } });
    const s = observe(cluster({ platform: PLATFORM }, stored), [node('a')], { platform: healthy, platformBundle: { version: '1.1.0', problem: 'is not JSON' } });
    assert.deepEqual(s.bundle, stored.bundle);
    assert.deepEqual(s.platform, { currentBundleVersion: '1.1.0' });
    assert.match(bundleCond(s).message, /last heartbeat reply is not JSON: the last version it reported, 1\.1\.0, is kept/);
    assert.equal(bundleCond(s).lastTransitionTime, bundleCond(stored).lastTransitionTime, 'a message change is no transition');

    // After an operator restart the link knows nothing yet; the status it wrote still does.
    const restarted = observe(cluster({ platform: PLATFORM }, s), [node('a')], { platform: healthy, platformBundle: { problem: 'has no currentBundleVersion' } });
    assert.deepEqual([restarted.bundle?.currentVersion, restarted.platform?.currentBundleVersion], ['1.1.0', '1.1.0']);
  });

  test('no version anywhere: Unknown, with what the reply lacked; the spec field is the fallback', () => {
    const none = observe(cluster({ platform: PLATFORM }), [node('a')], { platform: healthy, platformBundle: { problem: 'has no currentBundleVersion' } });
    assert.deepEqual([bundleCond(none).status, bundleCond(none).reason], ['Unknown', 'CurrentVersionUnknown']);
    assert.match(bundleCond(none).message, /has no currentBundleVersion: no current version is known/);
    assert.equal(none.platform, undefined);
    const fallback = observe(cluster({ platform: PLATFORM, currentBundleVersion: '1.0.0' }), [node('a')], { platform: healthy, platformBundle: { problem: 'has no currentBundleVersion' } });
    assert.equal(fallback.bundle?.state, 'Current');
    assert.match(bundleCond(fallback).message, /spec\.currentBundleVersion \(1\.0\.0\) is used/);
  });

  test('removing spec.platform drops the platform\'s version from the status', () => {
    const linked = observe(cluster({ platform: PLATFORM, currentBundleVersion: '1.0.0' }), [node('a')], { platformBundle: { version: '2.0.0' } });
    assert.equal(linked.bundle?.state, 'UpdateRecommended');
    const unlinked = observe(cluster({ currentBundleVersion: '1.0.0' }, linked), [node('a')], { platformBundle: { version: '2.0.0' } });
    assert.deepEqual([unlinked.bundle?.state, unlinked.platform], ['Current', undefined]);
  });
});

describe('attention backend by compute capability', () => {
  const cases: [string, number, number, string][] = [
    ['A100 (SM 8.0)', 8, 0, 'fa3'],
    ['H100 (SM 9.0)', 9, 0, 'fa3'],
    ['L4 (SM 8.9)', 8, 9, 'flashinfer'],
    ['RTX 3090 (SM 8.6)', 8, 6, 'flashinfer'],
    ['T4 (SM 7.5)', 7, 5, 'flashinfer'],
    ['Blackwell (SM 10.0)', 10, 0, 'flashinfer'],
  ];
  for (const [name, major, minor, want] of cases) test(name, () => assert.equal(attentionBackend(major, minor), want));

  test('details need both compute labels; malformed numbers are left out', () => {
    assert.deepEqual(productDetails(A100), { memoryMiB: 81920, computeCapability: '8.0', attentionBackend: 'fa3' });
    assert.deepEqual(productDetails({ 'nvidia.com/gpu.compute.major': '8' }), {});
    assert.deepEqual(productDetails({ 'nvidia.com/gpu.memory': '80GB' }), {});
  });
});

describe('TrainingCluster status', () => {
  test('workers: counts and names of the nodes the selector picks; cordoned counts as not ready', () => {
    const tc = cluster({ workerNodeSelector: { pool: 'train' } });
    const s = observe(tc, [
      node('a', { labels: { pool: 'train', ...A100 } }),
      node('b', { labels: { pool: 'train', ...A100 }, ready: false }),
      node('c', { labels: { pool: 'train', ...A100 }, unschedulable: true }),
      node('other', { labels: { pool: 'infer' } }),
    ]);
    assert.deepEqual(s.workers, { total: 3, ready: 1, notReady: 2, readyNodes: ['a'], notReadyNodes: ['b', 'c'] });
    assert.equal(cond(s, 'WorkersReady')?.reason, 'SomeWorkersNotReady');
    assert.equal(cond(s, 'Ready')?.status, 'True');
  });

  test('name lists are capped, counts stay exact', () => {
    const nodes = Array.from({ length: NODE_NAMES_LIMIT + 50 }, (_, i) => node(`n-${String(i).padStart(4, '0')}`));
    const s = observe(cluster(), nodes);
    assert.equal(s.workers?.total, NODE_NAMES_LIMIT + 50);
    assert.equal(s.workers?.readyNodes?.length, NODE_NAMES_LIMIT);
    assert.equal(s.workers?.readyNodes?.[0], 'n-0000');
  });

  test('GPUs per product with GPU Feature Discovery details; allocated + free = total', () => {
    const s = observe(
      cluster(),
      [node('a1', { gpus: 8, labels: A100 }), node('a2', { gpus: 8, labels: A100 }), node('l1', { gpus: 4, product: 'NVIDIA-L4', labels: L4 })],
      { pods: [['a1', 3], ['l1', 4]] },
    );
    assert.deepEqual(s.gpus, {
      total: 20,
      allocated: 7,
      free: 13,
      byProduct: [
        { product: 'NVIDIA-A100-SXM4-80GB', total: 16, allocated: 3, free: 13, memoryMiB: 81920, computeCapability: '8.0', attentionBackend: 'fa3' },
        { product: 'NVIDIA-L4', total: 4, allocated: 4, free: 0, memoryMiB: 23034, computeCapability: '8.9', attentionBackend: 'flashinfer' },
      ],
    });
  });

  test('GPUs on not-ready nodes are not counted', () => {
    const s = observe(cluster(), [node('a1', { gpus: 8, labels: A100, ready: false })]);
    assert.deepEqual(s.gpus, { total: 0, allocated: 0, free: 0 });
  });

  const conditionCases: { name: string; tc: TrainingCluster; nodes: NodeInfo[]; want: Record<string, [string, string]> }[] = [
    {
      name: 'all good, bundle current',
      tc: cluster({ currentBundleVersion: '1.0.0' }),
      nodes: [node('a')],
      want: { ProviderEnabled: ['True', 'ProviderEnabled'], WorkersReady: ['True', 'WorkersReady'], BundleCurrent: ['True', 'BundleCurrent'], Ready: ['True', 'Ready'] },
    },
    {
      name: 'an outdated bundle is a recommendation, not a stop',
      tc: cluster({ currentBundleVersion: '2.0.0' }),
      nodes: [node('a')],
      want: { BundleCurrent: ['False', 'UpdateRecommended'], Ready: ['True', 'Ready'] },
    },
    {
      name: 'provider disabled',
      tc: cluster({ enabled: false }),
      nodes: [node('a')],
      want: { ProviderEnabled: ['False', 'ProviderDisabled'], Ready: ['False', 'ProviderDisabled'], BundleCurrent: ['Unknown', 'CurrentVersionUnknown'] },
    },
    {
      name: 'no node matches the selector',
      tc: cluster({ workerNodeSelector: { pool: 'x' } }),
      nodes: [node('a')],
      want: { WorkersReady: ['False', 'NoWorkerNodes'], Ready: ['False', 'NoWorkerNodes'] },
    },
    {
      name: 'every worker down',
      tc: cluster(),
      nodes: [node('a', { ready: false })],
      want: { WorkersReady: ['False', 'NoReadyWorkers'], Ready: ['False', 'NoReadyWorkers'] },
    },
  ];
  for (const c of conditionCases) {
    test(`conditions: ${c.name}`, () => {
      const s = observe(c.tc, c.nodes);
      for (const [type, [status, reason]] of Object.entries(c.want)) {
        assert.deepEqual([cond(s, type)?.status, cond(s, type)?.reason], [status, reason], type);
      }
      assert.equal(s.observedGeneration, 3);
      assert.equal(cond(s, 'PlatformConnected'), undefined);
    });
  }

  test('PlatformConnected appears with spec.platform (Unknown before a heartbeat) and goes with it', () => {
    const platform = { url: 'https://arena.example', tokenSecretRef: { name: 't', namespace: 'arena-system' } };
    const pending = observe(cluster({ platform }), [node('a')]);
    assert.deepEqual([cond(pending, 'PlatformConnected')?.status, cond(pending, 'PlatformConnected')?.reason], ['Unknown', 'HeartbeatPending']);
    const ok = observe(cluster({ platform }, pending), [node('a')], { platform: { status: 'True', reason: 'HeartbeatAccepted', message: 'ok' } });
    assert.equal(cond(ok, 'PlatformConnected')?.status, 'True');
    const gone = observe(cluster({}, ok), [node('a')]);
    assert.equal(cond(gone, 'PlatformConnected'), undefined);
  });

  test('a recomputed status equals the stored one: transition times are kept while nothing flips', () => {
    const tc = cluster({ currentBundleVersion: '1.0.0' });
    const first = observe(tc, [node('a')], { now: new Date('2026-01-01T00:00:00Z') });
    const again = observe(cluster({ currentBundleVersion: '1.0.0' }, first), [node('a')], { now: new Date('2026-01-02T00:00:00Z') });
    assert.deepEqual(again, first);
    const flipped = observe(cluster({ currentBundleVersion: '1.1.0' }, first), [node('a')], { now: new Date('2026-01-02T00:00:00Z') });
    assert.equal(cond(flipped, 'BundleCurrent')?.status, 'False');
    assert.equal(flipped.conditions?.find((c) => c.type === 'BundleCurrent')?.lastTransitionTime, '2026-01-02T00:00:00Z');
    assert.equal(flipped.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime, '2026-01-01T00:00:00Z');
  });

  test('the status passes the CRD schema', () => {
    const s = observe(cluster({ currentBundleVersion: '1.1.0', platform: { url: 'https://a.b', tokenSecretRef: { name: 't', namespace: 'ns' } } }), [
      node('a1', { gpus: 8, labels: A100 }),
      node('b', { ready: false }),
    ], { platformBundle: { version: '1.2.0-rc.1', problem: 'is not JSON' } });
    assert.deepEqual(s.platform, { currentBundleVersion: '1.2.0-rc.1' });
    const result = validate('TrainingCluster', cluster({}, s));
    assert.deepEqual(result, { ok: true });
  });
});
