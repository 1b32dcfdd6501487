// TrainingCluster and ResourceClass status end to end: the operator against a real control plane with simulated GPU
// nodes (kwok), and the platform heartbeat against a small receiver on 127.0.0.1.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { createGpuNodes, finishPod, gpuProducts, gpuTaint, setNodeReadyNow } from './cluster/gpu-nodes.ts';
import { waitFor } from './cluster/wait.ts';
import { Arena, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { GROUP, VERSION } from '../operator/api/v1alpha1/index.ts';
import type { ResourceClass } from '../operator/api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../operator/api/v1alpha1/trainingcluster.ts';
import { HEARTBEAT_PATH } from '../operator/platform-link/heartbeat.ts';
import { startOperator, type RunningOperator } from '../operator/operator.ts';
import { createLogger } from '../operator/observability/log.ts';

const quiet = createLogger({ silent: true });
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
type Cond = { type: string; status: string; reason: string; message: string };
const cond = (s: { conditions?: Cond[] } | undefined, type: string) => s?.conditions?.find((c) => c.type === type);

/** Scrapes one sample of the operator's registry, 0 when absent. */
async function sample(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const v = metric?.values.find((x) => Object.entries(labels).every(([k, l]) => (x.labels as Record<string, unknown>)[k] === l));
  return v?.value ?? 0;
}

describe('cluster status on simulated GPU nodes', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let op: RunningOperator;
  const registry = new Registry();

  const tc = async () =>
    (await arena.custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'trainingclusters', name: 'onprem' })) as TrainingCluster;
  const rc = async (name: string) =>
    (await arena.custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'resourceclasses', name })) as ResourceClass;

  /** Polls until pred holds; the error shows the last status seen. */
  async function until<T extends { status?: unknown }>(read: () => Promise<T>, pred: (o: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
    let last: T | undefined;
    try {
      await waitFor(async () => pred((last = await read())), { timeoutMs, what });
    } catch (err) {
      throw new Error(`${(err as Error).message}\nlast status: ${JSON.stringify(last?.status, null, 1)}`);
    }
    return last!;
  }

  before(async () => {
    cluster = await LocalCluster.start();
    await installCrds(cluster);
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    await createGpuNodes(kc, { prefix: 'a100', count: 3, gpus: 8, gpu: gpuProducts.A100, taints: [gpuTaint], labels: { pool: 'train' } });
    await createGpuNodes(kc, { prefix: 'l4', count: 1, gpus: 4, gpu: gpuProducts.L4, taints: [gpuTaint], labels: { pool: 'train' } });
    // Not a worker: outside the training cluster's workerNodeSelector.
    await createGpuNodes(kc, { prefix: 'infer', count: 1, gpus: 2, gpu: gpuProducts.T4, labels: { pool: 'inference' } });
    await arena.apply(trainingCluster('onprem', { workerNodeSelector: { pool: 'train' }, currentBundleVersion: '1.0.0' }));
    await arena.apply(resourceClass('a100-x2', 'onprem', { nodes: 2, worker: { cpu: '4', memory: '16Gi', gpus: 8, gpuProduct: gpuProducts.A100.product } }));
    await arena.apply(resourceClass('l4-x1', 'onprem', { nodes: 1, worker: { cpu: '2', memory: '8Gi', gpus: 4, gpuProduct: gpuProducts.L4.product } }));
    await arena.apply(resourceClass('cpu', 'onprem', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 0 } }));
    op = await startOperator({
      kc,
      logger: quiet,
      registry,
      http: { host: '127.0.0.1', port: 0 },
      leaseNamespace: 'default',
      clusterStatus: { debounceMs: 200, platformLink: { timeoutMs: 8000, initialBackoffMs: 200, maxBackoffMs: 1000 } },
    });
    await waitFor(() => op.isLeader(), { timeoutMs: 20_000, what: 'the operator to lead' });
  });
  after(async () => {
    await op?.stop();
    await cluster?.stop();
  });

  test('workers, GPUs per product with their attention backend, bundle and conditions', async () => {
    const s = (await until(tc, (t) => t.status?.workers?.ready === 4 && t.status?.gpus?.total === 28, '4 ready workers, 28 GPUs')).status!;
    assert.deepEqual(s.workers, { total: 4, ready: 4, notReady: 0, readyNodes: ['a100-0', 'a100-1', 'a100-2', 'l4-0'], notReadyNodes: [] });
    assert.deepEqual(
      s.gpus?.byProduct?.map((p) => [p.product, p.total, p.free, p.memoryMiB, p.computeCapability, p.attentionBackend]),
      [
        [gpuProducts.A100.product, 24, 24, 81920, '8.0', 'fa3'],
        [gpuProducts.L4.product, 4, 4, 23034, '8.9', 'flashinfer'],
      ],
      'the T4 node is not a worker',
    );
    assert.deepEqual(s.bundle, { installedVersion: '1.0.0', currentVersion: '1.0.0', state: 'Current' });
    for (const type of ['ProviderEnabled', 'WorkersReady', 'BundleCurrent', 'Ready']) assert.equal(cond(s, type)?.status, 'True', type);
    assert.equal(s.observedGeneration, (await tc()).metadata?.generation);
    const a100 = (await until(() => rc('a100-x2'), (r) => r.status?.fitMax === 1, 'a100-x2 fit')).status!;
    assert.deepEqual([a100.available, a100.reason, a100.eligibleNodes, a100.fitNow, a100.fitMax, a100.advancedTrainingEligible], [true, 'Available', 3, 1, 1, true]);
    // Every worker carries the GPU taint, which only GPU workers tolerate: a CPU class has nowhere to run.
    // Settled: all four workers counted (under load a node can be briefly out while its lease lags).
    const cpu = (await until(() => rc('cpu'), (r) => /\(4 nodes: taint/.test(r.status?.message ?? ''), 'cpu class status on all 4 workers', 60_000)).status!;
    assert.deepEqual([cpu.available, cpu.reason, cpu.advancedTrainingEligible], [false, 'NoEligibleNode', false]);
    assert.match(cpu.message!, /4 nodes: taint nvidia\.com\/gpu=true:NoSchedule not tolerated/);
  });

  test('a worker going NotReady and back changes counts and conditions; heartbeat-only updates write nothing', async () => {
    const kc = cluster.kubeConfig();
    await until(tc, (t) => t.status?.workers?.ready === 4, 'all workers ready');
    const writes = () => sample(registry, 'arena_status_writes_total', { kind: 'TrainingCluster', result: 'written' });
    const before = await writes();
    // Node updates that change nothing the status reads (as kubelet heartbeats do) cause no write.
    const core = kc.makeApiClient(CoreV1Api);
    for (let round = 0; round < 3; round++) {
      for (const name of ['a100-0', 'a100-1', 'a100-2', 'l4-0']) {
        await core.patchNode({ name, body: { metadata: { annotations: { 'e2e/poke': String(round) } } } }, mergePatch);
      }
    }
    // The Ready condition is written at once: kwok's own NotReady stage waits behind the node's pending heartbeat
    // stage (up to 45 s), and on a loaded machine it once took longer than 90 s.
    await setNodeReadyNow(kc, 'a100-2', false);
    const down = (await until(tc, (t) => t.status?.workers?.ready === 3, 'a100-2 not ready', 90_000)).status!;
    assert.deepEqual(down.workers, { total: 4, ready: 3, notReady: 1, readyNodes: ['a100-0', 'a100-1', 'l4-0'], notReadyNodes: ['a100-2'] });
    assert.equal(cond(down, 'WorkersReady')?.reason, 'SomeWorkersNotReady');
    assert.match(cond(down, 'WorkersReady')!.message, /a100-2/);
    assert.equal(down.gpus?.byProduct?.[0]?.total, 16);
    // Status changes settle in at most a couple of writes (the Ready flip; the not-ready taint may land in the same one).
    assert.ok((await writes()) - before <= 2, `status writes: ${(await writes()) - before}`);
    const a100 = (await until(() => rc('a100-x2'), (r) => r.status?.eligibleNodes === 2, 'a100 class sees 2 nodes')).status!;
    assert.equal(a100.fitMax, 1);

    await setNodeReadyNow(kc, 'a100-2', true);
    const up = (await until(tc, (t) => t.status?.workers?.ready === 4 && cond(t.status, 'WorkersReady')?.reason === 'WorkersReady', 'a100-2 ready again', 90_000)).status!;
    assert.deepEqual(up.workers?.notReadyNodes, []);
    assert.equal(up.gpus?.byProduct?.[0]?.total, 24);
  });

  test('no node matches the worker selector: WorkersReady and Ready turn False, classes have no eligible node', async () => {
    await arena.patchCluster('onprem', { workerNodeSelector: { pool: 'train', only: 'l4' } });
    const none = (await until(tc, (t) => t.status?.workers?.total === 0, 'no workers')).status!;
    assert.deepEqual([cond(none, 'WorkersReady')?.reason, cond(none, 'Ready')?.status], ['NoWorkerNodes', 'False']);
    const a100 = (await until(() => rc('a100-x2'), (r) => r.status?.reason === 'NoEligibleNode', 'a100 class has no node')).status!;
    assert.equal(a100.available, false);
    assert.match(a100.message!, /workerNodeSelector/);
    // A merge patch merges maps: the extra label is removed with null.
    await arena.custom.patchClusterCustomObject(
      { group: GROUP, version: VERSION, plural: 'trainingclusters', name: 'onprem', body: { spec: { workerNodeSelector: { only: null } } } },
      mergePatch,
    );
    await until(tc, (t) => t.status?.workers?.ready === 4, 'workers back');
    await until(() => rc('a100-x2'), (r) => r.status?.available === true, 'a100 class available again');
  });

  test('a bundle version bump turns every class to update recommended and back; classes stay available', async () => {
    await arena.patchCluster('onprem', { currentBundleVersion: '1.1.0' });
    for (const name of ['a100-x2', 'l4-x1', 'cpu']) {
      const r = (await until(() => rc(name), (x) => cond(x.status, 'UpdateRecommended')?.status === 'True', `${name} update recommended`)).status!;
      if (name !== 'cpu') assert.equal(r.available, true, `${name} stays available`);
      assert.match(cond(r, 'UpdateRecommended')!.message, /1\.1\.0/);
    }
    const t = (await until(tc, (x) => x.status?.bundle?.state === 'UpdateRecommended', 'bundle outdated')).status!;
    assert.deepEqual([cond(t, 'BundleCurrent')?.status, cond(t, 'BundleCurrent')?.reason, cond(t, 'Ready')?.status], ['False', 'UpdateRecommended', 'True']);

    await arena.patchCluster('onprem', { setupBundle: { version: '1.1.0', images: { runtime: 'registry.local/arena-runtime:1.1.0' } } });
    for (const name of ['a100-x2', 'l4-x1', 'cpu']) {
      await until(() => rc(name), (x) => cond(x.status, 'UpdateRecommended')?.reason === 'BundleCurrent', `${name} current again`);
    }
    await until(tc, (x) => x.status?.bundle?.state === 'Current' && cond(x.status, 'BundleCurrent')?.status === 'True', 'bundle current');
  });

  test('disabling the provider or a class, or naming a missing cluster, changes availability with the reason', async () => {
    await arena.patchClass('l4-x1', { enabled: false });
    await until(() => rc('l4-x1'), (r) => r.status?.available === false && r.status.reason === 'ClassDisabled', 'l4-x1 ClassDisabled');
    await arena.patchCluster('onprem', { enabled: false });
    for (const name of ['a100-x2', 'l4-x1', 'cpu']) {
      await until(() => rc(name), (r) => r.status?.reason === 'ProviderDisabled', `${name} ProviderDisabled`);
    }
    const off = (await until(tc, (t) => cond(t.status, 'ProviderEnabled')?.status === 'False', 'provider disabled')).status!;
    assert.equal(cond(off, 'Ready')?.reason, 'ProviderDisabled');
    await arena.patchCluster('onprem', { enabled: true });
    await until(() => rc('a100-x2'), (r) => r.status?.available === true, 'a100-x2 available again');
    await until(() => rc('cpu'), (r) => r.status?.reason === 'NoEligibleNode', 'cpu back to its own reason');
    await until(() => rc('l4-x1'), (r) => r.status?.reason === 'ClassDisabled', 'l4-x1 still disabled');
    await arena.patchClass('l4-x1', { enabled: true });
    await until(() => rc('l4-x1'), (r) => r.status?.available === true, 'l4-x1 available again');

    await arena.apply(resourceClass('orphan', 'ghost', { nodes: 1 }));
    const orphan = (await until(() => rc('orphan'), (r) => r.status?.reason !== undefined, 'orphan status')).status!;
    assert.deepEqual([orphan.available, orphan.reason, cond(orphan, 'UpdateRecommended')?.status], [false, 'TrainingClusterNotFound', 'Unknown']);
    await arena.apply(resourceClass('h100', 'onprem', { nodes: 1, worker: { gpus: 1, gpuProduct: gpuProducts.H100.product } }));
    const h100 = (await until(() => rc('h100'), (r) => r.status?.reason !== undefined, 'h100 status')).status!;
    assert.equal(h100.reason, 'NoEligibleNode');
    assert.match(h100.message!, /NVIDIA-H100/);
    await arena.apply(resourceClass('a100-x4', 'onprem', { nodes: 4, worker: { gpus: 8, gpuProduct: gpuProducts.A100.product } }));
    // Waits for the settled answer: on a loaded machine a node can briefly miss its lease and carry the
    // unreachable taint, and the class status rightly counts it out until the node lifecycle controller clears it.
    const big = (await until(() => rc('a100-x4'), (r) => r.status?.reason === 'NeverFits' && r.status.eligibleNodes === 3, 'a100-x4 never fits on 3 nodes', 90_000)).status!;
    assert.deepEqual([big.available, big.fitNow, big.fitMax], [false, 0, 0]);
    assert.match(big.message!, /4 nodes .* only 3 eligible nodes/);
  });

  test('queued and running counts and free GPUs follow the experiments', async () => {
    const ns = 'counts';
    await arena.namespace(ns);
    await arena.apply(experiment(ns, 'first', 'l4-x1'));
    const first = await arena.waitPhase(ns, 'first', 'Running');
    await arena.apply(experiment(ns, 'second', 'l4-x1'));
    await arena.waitExperiment(ns, 'second', (s) => s.phase === 'Pending' && s.reason === 'InsufficientCapacity', 'second waits for capacity');
    const r = (await until(() => rc('l4-x1'), (x) => x.status?.queued === 1 && x.status.running === 1, 'l4-x1 1 queued, 1 running')).status!;
    assert.deepEqual([r.fitNow, r.fitMax], [0, 1]);
    const t = (await until(tc, (x) => x.status?.gpus?.byProduct?.[1]?.free === 0, 'L4 GPUs all allocated')).status!;
    assert.deepEqual(t.gpus?.byProduct?.[1], { ...t.gpus!.byProduct![1]!, total: 4, allocated: 4, free: 0 });

    for (const p of await arena.workerPods(ns, first)) await finishPod(arena.kc, ns, p.metadata!.name!, 'Succeeded');
    await arena.waitPhase(ns, 'first', 'Succeeded');
    await arena.waitPhase(ns, 'second', 'Running');
    await until(() => rc('l4-x1'), (x) => x.status?.queued === 0 && x.status.running === 1, 'l4-x1 0 queued, 1 running');
    await arena.patchExperiment(ns, 'second', { action: 'Stop' });
    await until(() => rc('l4-x1'), (x) => x.status?.running === 0 && x.status.fitNow === 1, 'l4-x1 empty again', 60_000);
  });

  describe('platform heartbeat', () => {
    let receiver: Server;
    let url = '';
    let answer: number | 'hang' = 200;
    const received: { authorization?: string; path?: string; body: { trainingCluster?: string; status?: { trainingClusters?: { name: string }[]; classes?: unknown[] } } }[] = [];

    before(async () => {
      receiver = createServer((req, res) => {
        let data = '';
        req.on('data', (c: Buffer) => (data += c.toString()));
        req.on('end', () => {
          received.push({ authorization: req.headers.authorization, path: req.url, body: JSON.parse(data) as (typeof received)[number]['body'] });
          if (answer !== 'hang') res.writeHead(answer).end();
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
      await arena.core.createNamespace({ body: { metadata: { name: 'arena-system' } } });
      await arena.core.createNamespacedSecret({
        namespace: 'arena-system',
        body: { metadata: { name: 'platform-token' }, stringData: { token: 'cluster-token-1' } },
      });
    });
    after(async () => {
      receiver?.closeAllConnections();
      await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
    });

    test('heartbeats carry the summary and token; PlatformConnected follows the platform; a hung platform blocks nothing', async () => {
      await arena.patchCluster('onprem', { platform: { url, tokenSecretRef: { name: 'platform-token', namespace: 'arena-system' }, heartbeatIntervalSeconds: 5 } });
      const ok = (await until(tc, (t) => cond(t.status, 'PlatformConnected')?.status === 'True', 'PlatformConnected')).status!;
      assert.equal(cond(ok, 'PlatformConnected')?.reason, 'HeartbeatAccepted');
      const beat = received.at(-1)!;
      assert.equal(beat.path, HEARTBEAT_PATH);
      assert.equal(beat.authorization, 'Bearer cluster-token-1');
      assert.equal(beat.body.trainingCluster, 'onprem');
      assert.deepEqual(beat.body.status?.trainingClusters?.map((c) => c.name), ['onprem']);
      assert.ok((beat.body.status?.classes?.length ?? 0) >= 3);

      // The platform stops answering. While a heartbeat hangs (for up to its 8 s timeout), reconciles go on: a spec
      // change shows up in the status before the heartbeat gives up.
      const sent = received.length;
      answer = 'hang';
      await waitFor(() => received.length > sent, { timeoutMs: 15_000, what: 'a heartbeat to hang' });
      const hungAt = Date.now();
      await arena.patchCluster('onprem', { currentBundleVersion: '9.9.9' });
      await until(tc, (t) => t.status?.bundle?.state === 'UpdateRecommended', 'bundle state updated while the platform hangs', 6_000);
      assert.equal(cond((await tc()).status, 'PlatformConnected')?.status, 'True', 'the hung heartbeat has not timed out yet');
      assert.ok(Date.now() - hungAt < 8_000);
      const down = (await until(tc, (t) => cond(t.status, 'PlatformConnected')?.status === 'False', 'PlatformConnected False', 30_000)).status!;
      assert.equal(cond(down, 'PlatformConnected')?.reason, 'PlatformUnreachable');
      assert.equal(cond(down, 'Ready')?.status, 'True', 'the platform link does not decide readiness');
      assert.ok((await sample(registry, 'arena_platform_heartbeats_total', { result: 'unreachable' })) >= 1);

      // It comes back: retries with backoff reconnect without waiting a whole interval.
      answer = 200;
      await until(tc, (t) => cond(t.status, 'PlatformConnected')?.status === 'True', 'PlatformConnected again', 20_000);

      // Unset: the condition goes and heartbeats stop.
      await arena.custom.patchClusterCustomObject(
        { group: GROUP, version: VERSION, plural: 'trainingclusters', name: 'onprem', body: { spec: { platform: null, currentBundleVersion: '1.1.0' } } },
        mergePatch,
      );
      await until(tc, (t) => cond(t.status, 'PlatformConnected') === undefined, 'PlatformConnected removed');
    });
  });
});
