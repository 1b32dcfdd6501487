import { describe, test } from 'node:test';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import {
  Backoff,
  Informer,
  Store,
  diffRelist,
  leanNode,
  leanPod,
  stripManagedFields,
  watchTimeoutSeconds,
  type Cacheable,
  type LeanNode,
  type LeanPod,
} from './informer.ts';
import { createLogger } from '../observability/log.ts';
import { podUsageFromPod } from '../scheduler/from-kube.ts';

interface Obj extends Cacheable {
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
}

function obj(key: string, rv = '1', labels: Record<string, string> = {}): Obj {
  const [a, b] = key.split('/');
  return b === undefined
    ? { metadata: { name: a!, resourceVersion: rv, labels } }
    : { metadata: { namespace: a!, name: b, resourceVersion: rv, labels } };
}

const names = (objs: Obj[]) => objs.map((o) => o.metadata.name).sort();

describe('Backoff', () => {
  test('doubles from the initial delay up to the cap, and starts over after reset', () => {
    const b = new Backoff({ initialMs: 200, maxMs: 30_000, jitter: 0 });
    const delays = Array.from({ length: 10 }, () => b.next());
    assert.deepEqual(delays, [200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000]);
    b.reset();
    assert.equal(b.next(), 200);
  });

  const jitterCases: Record<string, { random: number; want: number }> = {
    'lowest draw': { random: 0, want: 800 },
    'middle draw': { random: 0.5, want: 1000 },
    'highest draw': { random: 1, want: 1200 },
  };
  for (const [name, c] of Object.entries(jitterCases)) {
    test(`jitter spreads a delay by ±20 %: ${name}`, () => {
      const b = new Backoff({ initialMs: 1000, maxMs: 30_000, random: () => c.random });
      assert.equal(b.next(), c.want);
    });
  }

  test('jitter never pushes a delay past the cap', () => {
    const b = new Backoff({ initialMs: 30_000, maxMs: 30_000, random: () => 1 });
    assert.equal(b.next(), 30_000);
  });
});

describe('watchTimeoutSeconds', () => {
  const cases: Record<string, { watchdogMs: number; random: number; want: number }> = {
    'default watchdog, capped by the client inactivity limit, low draw': { watchdogMs: 300_000, random: 0, want: 15 },
    'default watchdog, high draw': { watchdogMs: 300_000, random: 1, want: 24 },
    'short watchdog': { watchdogMs: 10_000, random: 0.5, want: 6 },
    'tiny watchdog still asks for a whole second': { watchdogMs: 1_000, random: 0, want: 1 },
  };
  for (const [name, c] of Object.entries(cases)) {
    test(name, () => assert.equal(watchTimeoutSeconds(c.watchdogMs, () => c.random), c.want));
  }
});

describe('diffRelist', () => {
  const cases: Record<string, { cached: Obj[]; listed: Obj[]; added: string[]; updated: string[]; deleted: string[] }> = {
    'first list adds everything': {
      cached: [],
      listed: [obj('ns/a'), obj('ns/b')],
      added: ['a', 'b'],
      updated: [],
      deleted: [],
    },
    'unchanged objects are re-emitted as updates': {
      cached: [obj('ns/a', '5')],
      listed: [obj('ns/a', '5')],
      added: [],
      updated: ['a'],
      deleted: [],
    },
    'objects gone from the list were deleted while we were not watching': {
      cached: [obj('ns/a'), obj('ns/b'), obj('other/c')],
      listed: [obj('ns/a', '2')],
      added: [],
      updated: ['a'],
      deleted: ['b', 'c'],
    },
    'same name in two namespaces is two objects': {
      cached: [obj('x/a')],
      listed: [obj('y/a')],
      added: ['a'],
      updated: [],
      deleted: ['a'],
    },
    'cluster-scoped objects are keyed by name': {
      cached: [obj('node-1'), obj('node-2')],
      listed: [obj('node-2', '9'), obj('node-3')],
      added: ['node-3'],
      updated: ['node-2'],
      deleted: ['node-1'],
    },
  };
  for (const [name, c] of Object.entries(cases)) {
    test(name, () => {
      const cached = new Map(c.cached.map((o) => [o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name, o]));
      const diff = diffRelist(cached, c.listed);
      assert.deepEqual(names(diff.added), c.added);
      assert.deepEqual(names(diff.updated.map(([o]) => o)), c.updated);
      assert.deepEqual(names(diff.deleted), c.deleted);
    });
  }

  test('an update pairs the listed object with the one it replaces', () => {
    const old = obj('ns/a', '1');
    const fresh = obj('ns/a', '2');
    const [[got, was]] = diffRelist(new Map([['ns/a', old]]), [fresh]).updated as [[Obj, Obj]];
    assert.equal(got, fresh);
    assert.equal(was, old);
  });
});

describe('Store', () => {
  const byTeam = (o: Obj) => (o.metadata.labels?.team ? [o.metadata.labels.team] : []);

  test('get, list and size by key and namespace', () => {
    const s = new Store<Obj>();
    s.set(obj('a/x'));
    s.set(obj('b/y'));
    s.set(obj('node-1'));
    assert.equal(s.size, 3);
    assert.equal(s.get('a/x')?.metadata.name, 'x');
    assert.equal(s.get('node-1')?.metadata.name, 'node-1');
    assert.equal(s.get('x'), undefined);
    assert.deepEqual(names(s.list('a')), ['x']);
    assert.deepEqual(names(s.list()), ['node-1', 'x', 'y']);
  });

  test('an index follows updates and deletes', () => {
    const s = new Store<Obj>();
    s.addIndex('team', byTeam);
    s.set(obj('ns/a', '1', { team: 'red' }));
    s.set(obj('ns/b', '1', { team: 'red' }));
    assert.deepEqual(names(s.byIndex('team', 'red')), ['a', 'b']);

    s.set(obj('ns/a', '2', { team: 'blue' }));
    assert.deepEqual(names(s.byIndex('team', 'red')), ['b']);
    assert.deepEqual(names(s.byIndex('team', 'blue')), ['a']);

    s.delete('ns/b');
    assert.deepEqual(s.byIndex('team', 'red'), []);
    assert.deepEqual(s.byIndex('team', 'green'), []);
  });

  test('an index added later covers what is already cached; an object may be under many values', () => {
    const s = new Store<Obj>();
    s.set(obj('ns/pod-1', '1', { gpu: 'yes' }));
    s.set(obj('ns/pod-2'));
    s.addIndex('labels', (o) => Object.keys(o.metadata.labels ?? {}).concat('any'));
    assert.deepEqual(names(s.byIndex('labels', 'gpu')), ['pod-1']);
    assert.deepEqual(names(s.byIndex('labels', 'any')), ['pod-1', 'pod-2']);
  });

  test('unknown and duplicate index names are programming errors', () => {
    const s = new Store<Obj>();
    s.addIndex('team', byTeam);
    assert.throws(() => s.addIndex('team', byTeam), /already exists/);
    assert.throws(() => s.byIndex('node', 'n1'), /no index named node/);
  });

  test('delete returns the last cached state, or undefined when nothing was cached', () => {
    const s = new Store<Obj>();
    s.set(obj('ns/a', '7'));
    assert.equal(s.delete('ns/a')?.metadata.resourceVersion, '7');
    assert.equal(s.delete('ns/a'), undefined);
  });
});

// A pod as the API server sends it (trimmed of nothing the transforms must keep).
function wirePod(): KubernetesObject & Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'exp-1-worker-0',
      namespace: 'team-a',
      uid: 'u-1',
      resourceVersion: '42',
      labels: { 'arena.agilerl.com/experiment': 'exp-1' },
      annotations: { big: 'x'.repeat(1000) },
      ownerReferences: [{ apiVersion: 'arena.agilerl.com/v1alpha1', kind: 'Experiment', name: 'exp-1', uid: 'e-1', controller: true }],
      deletionTimestamp: '2026-11-23T04:00:00Z',
      managedFields: [{ manager: 'arena-operator', operation: 'Apply' }],
      creationTimestamp: '2026-11-23T03:00:00Z',
    } as never,
    spec: {
      nodeName: 'gpu-0',
      volumes: [{ name: 'ckpt' }],
      containers: [
        {
          name: 'trainer',
          image: 'arena/runtime:1',
          env: [{ name: 'A', value: 'b' }],
          resources: { requests: { 'nvidia.com/gpu': '8', cpu: '32' }, limits: { 'nvidia.com/gpu': '8' } },
        },
        { name: 'sidecar', image: 'x' },
      ],
    },
    status: {
      phase: 'Running',
      podIP: '10.0.0.1',
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-11-23T03:01:00Z' }],
      containerStatuses: [
        {
          name: 'trainer',
          image: 'arena/runtime:1',
          imageID: 'sha256:abc',
          ready: true,
          restartCount: 1,
          started: true,
          state: { running: { startedAt: '2026-11-23T03:01:00Z' } },
          lastState: { terminated: { exitCode: 137, reason: 'OOMKilled', finishedAt: '2026-11-23T03:00:59Z' } },
        },
      ],
    },
  };
}

describe('lean transforms', () => {
  test('leanPod keeps what the operator reads, at the same field paths', () => {
    assert.deepEqual(leanPod(wirePod()), {
      metadata: {
        name: 'exp-1-worker-0',
        namespace: 'team-a',
        uid: 'u-1',
        labels: { 'arena.agilerl.com/experiment': 'exp-1' },
        ownerReferences: [{ apiVersion: 'arena.agilerl.com/v1alpha1', kind: 'Experiment', name: 'exp-1', uid: 'e-1', controller: true }],
        resourceVersion: '42',
        deletionTimestamp: '2026-11-23T04:00:00Z',
      },
      spec: {
        nodeName: 'gpu-0',
        containers: [
          { name: 'trainer', resources: { requests: { 'nvidia.com/gpu': '8', cpu: '32' } } },
          { name: 'sidecar', resources: {} },
        ],
      },
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-11-23T03:01:00Z' }],
        containerStatuses: [
          {
            name: 'trainer',
            ready: true,
            restartCount: 1,
            started: true,
            state: { running: { startedAt: '2026-11-23T03:01:00Z' } },
            lastState: { terminated: { exitCode: 137, reason: 'OOMKilled', finishedAt: '2026-11-23T03:00:59Z' } },
          },
        ],
      },
    });
  });

  test('leanPod keeps every part of the effective request: init containers, sidecars, pod-level requests, overhead', () => {
    const full = {
      metadata: { name: 'p', namespace: 'n', resourceVersion: '1' },
      spec: {
        nodeName: 'gpu-0',
        overhead: { cpu: '250m', memory: '128Mi' },
        resources: { requests: { memory: '40Gi' } },
        initContainers: [
          { name: 'fetch', image: 'x', resources: { requests: { cpu: '16', 'nvidia.com/gpu': '8' } } },
          { name: 'proxy', image: 'x', restartPolicy: 'Always', resources: { requests: { cpu: '1', memory: '1Gi' } } },
        ],
        containers: [{ name: 'main', image: 'x', env: [{ name: 'A', value: 'b' }], resources: { requests: { cpu: '2', memory: '4Gi', 'nvidia.com/gpu': '1' } } }],
      },
      status: { phase: 'Running' },
    };
    const lean = leanPod(full as never);
    assert.deepEqual(podUsageFromPod(lean as never), podUsageFromPod(full as never));
    // The init container's 16 CPUs and 8 GPUs outweigh the main container; overhead comes on top.
    assert.deepEqual(podUsageFromPod(lean as never), { node: 'gpu-0', terminal: false, cpuMilli: 16_250, memoryBytes: 40 * 2 ** 30 + 128 * 2 ** 20, gpus: 8 });
  });

  test('leanPod of a pending pod has no node and no statuses', () => {
    const lean = leanPod({ metadata: { name: 'p', namespace: 'n', resourceVersion: '1' }, spec: { containers: [] } } as never);
    assert.deepEqual(lean, { metadata: { name: 'p', namespace: 'n', resourceVersion: '1' }, spec: { containers: [] }, status: {} });
  });

  test('leanNode keeps labels, taints, schedulability, allocatable and only the Ready condition', () => {
    const node = {
      metadata: { name: 'gpu-0', uid: 'n-1', resourceVersion: '9', labels: { 'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3' }, managedFields: [{}] },
      spec: { taints: [{ key: 'nvidia.com/gpu', value: 'true', effect: 'NoSchedule' }], unschedulable: true, podCIDR: '10.0.0.0/24' },
      status: {
        capacity: { 'nvidia.com/gpu': '8' },
        allocatable: { 'nvidia.com/gpu': '8', cpu: '96' },
        conditions: [
          { type: 'MemoryPressure', status: 'False' },
          { type: 'Ready', status: 'True', lastHeartbeatTime: '2026-11-23T03:00:00Z' },
        ],
        images: [{ names: ['big'], sizeBytes: 1 }],
      },
    };
    assert.deepEqual(leanNode(node as never), {
      metadata: { name: 'gpu-0', uid: 'n-1', labels: { 'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3' }, resourceVersion: '9' },
      spec: { taints: [{ key: 'nvidia.com/gpu', value: 'true', effect: 'NoSchedule' }], unschedulable: true },
      status: {
        allocatable: { 'nvidia.com/gpu': '8', cpu: '96' },
        conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: '2026-11-23T03:00:00Z' }],
      },
    });
  });

  test('leanNode of a node that has not reported yet', () => {
    assert.deepEqual(leanNode({ metadata: { name: 'new' } } as never), { metadata: { name: 'new' }, spec: {}, status: {} });
  });

  test('stripManagedFields drops managed fields and nothing else', () => {
    const pod = wirePod();
    const stripped = stripManagedFields(pod);
    assert.equal(stripped.metadata?.managedFields, undefined);
    assert.equal(stripped.metadata?.annotations?.big?.length, 1000);
    assert.deepEqual((stripped as ReturnType<typeof wirePod>).spec, wirePod().spec);
  });
});

describe('Informer', () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const logger = createLogger({ silent: true });

  test('names its resource like kubectl, and takes the lean transforms as they are', () => {
    const pods = new Informer<LeanPod>({ kc, logger, group: '', version: 'v1', plural: 'pods', transform: leanPod });
    const nodes = new Informer<LeanNode>({ kc, logger, group: '', version: 'v1', plural: 'nodes', transform: leanNode });
    const experiments = new Informer({ kc, logger, group: 'arena.agilerl.com', version: 'v1alpha1', plural: 'experiments' });
    assert.deepEqual([pods.resource, nodes.resource, experiments.resource], ['pods', 'nodes', 'experiments.arena.agilerl.com']);
    assert.equal(pods.hasSynced(), false);
    assert.equal(pods.size(), 0);
  });

  test('stop() before the first list rejects the pending start()', async () => {
    const inf = new Informer({ kc, logger, group: '', version: 'v1', plural: 'configmaps' });
    const started = inf.start();
    inf.stop();
    await assert.rejects(started, /stopped before it synced/);
  });
});

test('a watch that goes silent (no event, no error) is given up and reported as hung, with when it was opened', { timeout: 30_000 }, async () => {
  // The list answers; the watch is taken and never answered, as on a connection cut without a FIN or RST.
  const watches: number[] = [];
  const server = createServer((req, res) => {
    if (new URL(req.url!, 'http://x').searchParams.get('watch') === 'true') {
      watches.push(Date.now());
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ kind: 'ConfigMapList', apiVersion: 'v1', metadata: { resourceVersion: '7' }, items: [] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }, { name: 'u' });
  const hung: number[] = [];
  const inf = new Informer({ kc, logger: createLogger({ silent: true }), group: '', version: 'v1', plural: 'configmaps', watchdogMs: 500, onWatchHung: (sentAt) => hung.push(sentAt) });
  try {
    const openedBefore = performance.now();
    await inf.start();
    while (hung.length === 0) await new Promise((r) => setTimeout(r, 50));
    assert.ok(hung[0]! >= openedBefore && hung[0]! <= performance.now(), 'the moment the hung watch was opened');
    while (watches.length < 2) await new Promise((r) => setTimeout(r, 50));
    assert.ok(watches.length >= 2, 'and it watches again');
  } finally {
    inf.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
