import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import { CapacityModel, type NodeInfo } from '../../scheduler/capacity.ts';
import { node, pod, req } from '../../scheduler/testing.ts';
import { validate } from '../../api/validate.ts';
import { NODE_NAMES_LIMIT, attentionBackend, bundleOf, desiredTrainingClusterStatus, productDetails, selects, type PlatformHealth } from './status.ts';

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

function observe(tc: TrainingCluster, nodes: NodeInfo[], opts: { pods?: [string, number][]; platform?: PlatformHealth; now?: Date } = {}) {
  const capacity = new CapacityModel();
  for (const n of nodes) capacity.upsertNode(n);
  (opts.pods ?? []).forEach(([n, gpus], i) => capacity.upsertPod(`p${i}`, pod(n, req(gpus))));
  return desiredTrainingClusterStatus({
    cluster: tc,
    nodes,
    capacity: capacity.summary((n) => selects(tc.spec.workerNodeSelector, n.labels)),
    platform: opts.platform,
    now: opts.now ?? new Date('2026-01-01T00:00:00Z'),
  });
}

const cond = (s: { conditions?: { type: string; status: string; reason: string }[] }, type: string) => s.conditions?.find((c) => c.type === type);

describe('bundle state', () => {
  const cases: [string, string | undefined, string][] = [
    ['no current version known', undefined, 'Unknown'],
    ['same version', '1.0.0', 'Current'],
    ['platform moved on', '1.1.0', 'UpdateRecommended'],
  ];
  for (const [name, current, state] of cases) {
    test(name, () => {
      assert.equal(bundleOf(cluster({ currentBundleVersion: current }).spec).state, state);
    });
  }
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
    ]);
    const result = validate('TrainingCluster', cluster({}, s));
    assert.deepEqual(result, { ok: true });
  });
});
