// Gang admission through the real operator: all-or-nothing with capacity released on completion, priority and
// arrival order, and small jobs backfilling past a big one that cannot fit until it has waited long enough.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { createGpuNodes, finishPod, gpuProducts } from './cluster/gpu-nodes.ts';
import { waitFor } from './cluster/wait.ts';
import { Arena, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { startOperator, type RunningOperator } from '../operator/operator.ts';
import { createLogger } from '../operator/observability/log.ts';
import type { Experiment } from '../operator/api/v1alpha1/experiment.ts';

const STARVATION_MS = 4_000;

describe('gang admission', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let op: RunningOperator;

  before(async () => {
    cluster = await LocalCluster.start();
    await installCrds(cluster);
    arena = new Arena(cluster.kubeConfig());
    for (const pool of ['aon', 'order', 'backfill']) {
      await createGpuNodes(cluster.kubeConfig(), { prefix: pool, count: 2, gpus: 8, gpu: gpuProducts.H100, labels: { pool } });
    }
    await arena.apply(trainingCluster('onprem'));
    op = await startOperator({
      kc: cluster.kubeConfig(),
      logger: createLogger({ silent: true }),
      http: { host: '127.0.0.1', port: 0 },
      leaderElect: false,
      starvationMs: STARVATION_MS,
    });
  });
  after(async () => {
    await op?.stop();
    await cluster?.stop();
  });

  const finishAll = async (ns: string, exp: Experiment) => {
    for (const p of await arena.workerPods(ns, exp)) await finishPod(arena.kc, ns, p.metadata!.name!, 'Succeeded');
  };

  test('all or nothing: a gang that needs both nodes waits whole, and runs when the first releases them', async () => {
    const ns = 'aon';
    await arena.namespace(ns);
    await arena.apply(resourceClass('aon-pair', 'onprem', { nodes: 2, worker: { gpus: 8 }, nodeSelector: { pool: 'aon' } }));
    await arena.apply(experiment(ns, 'first', 'aon-pair'));
    const first = await arena.waitPhase(ns, 'first', 'Running');
    await arena.apply(experiment(ns, 'second', 'aon-pair'));
    const waiting = await arena.waitExperiment(ns, 'second', (s) => s.reason === 'InsufficientCapacity', 'InsufficientCapacity');
    assert.match(waiting.status!.message!, /0 of 2|node/);
    assert.equal((await arena.workerPods(ns, waiting)).length, 0, 'no partial gang is started');
    await finishAll(ns, first);
    await arena.waitPhase(ns, 'first', 'Succeeded');
    const second = await arena.waitPhase(ns, 'second', 'Running');
    assert.equal((await arena.workerPods(ns, second)).length, 2);
  });

  test('priority first, then arrival order; queue positions say where each one stands', async () => {
    const ns = 'order';
    await arena.namespace(ns);
    await arena.apply(resourceClass('order-one', 'onprem', { nodes: 1, worker: { gpus: 8 }, nodeSelector: { pool: 'order' } }));
    await arena.apply(experiment(ns, 'busy-a', 'order-one'));
    await arena.apply(experiment(ns, 'busy-b', 'order-one'));
    const busyA = await arena.waitPhase(ns, 'busy-a', 'Running');
    const busyB = await arena.waitPhase(ns, 'busy-b', 'Running');
    await arena.apply(experiment(ns, 'early', 'order-one'));
    await new Promise((r) => setTimeout(r, 1100)); // creation timestamps have one-second resolution
    await arena.apply(experiment(ns, 'late', 'order-one'));
    await arena.apply(experiment(ns, 'urgent', 'order-one', { priority: 5 }));
    const pos = async (name: string) => (await arena.getExperiment(ns, name)).status?.queuePosition;
    await waitFor(async () => (await pos('urgent')) === 1 && (await pos('early')) === 2 && (await pos('late')) === 3, {
      timeoutMs: 20_000,
      what: 'queue positions urgent 1, early 2, late 3',
    });
    const late = await arena.getExperiment(ns, 'late');
    assert.equal(late.status?.reason, 'WaitingBehind');
    assert.match(late.status?.message ?? '', /2/);

    await finishAll(ns, busyA);
    await arena.waitPhase(ns, 'urgent', 'Running');
    assert.equal((await arena.getExperiment(ns, 'early')).status?.phase, 'Pending');
    await finishAll(ns, busyB);
    await arena.waitPhase(ns, 'early', 'Running');
    assert.equal((await arena.getExperiment(ns, 'late')).status?.phase, 'Pending', 'late still waits: FIFO among equals');
  });

  test('small jobs backfill while a big one cannot fit, until the big one has waited long enough to hold nodes', async () => {
    const ns = 'backfill';
    await arena.namespace(ns);
    await arena.apply(resourceClass('bf-big', 'onprem', { nodes: 2, worker: { gpus: 8 }, nodeSelector: { pool: 'backfill' } }));
    await arena.apply(resourceClass('bf-small', 'onprem', { nodes: 1, worker: { gpus: 2 }, nodeSelector: { pool: 'backfill' } }));
    await arena.apply(experiment(ns, 'blocker', 'bf-small'));
    const blocker = await arena.waitPhase(ns, 'blocker', 'Running');
    // The big gang needs both nodes whole; one of them has a small job on it.
    await arena.apply(experiment(ns, 'big', 'bf-big'));
    await arena.waitExperiment(ns, 'big', (s) => s.reason === 'InsufficientCapacity', 'big waits');
    // GPUs are idle on the other node: a small job arriving later starts there rather than waiting behind big.
    await arena.apply(experiment(ns, 'backfilled', 'bf-small'));
    const backfilled = await arena.waitPhase(ns, 'backfilled', 'Running');
    // Once big has waited past the starvation limit it holds both nodes: later small jobs may not take them.
    await new Promise((r) => setTimeout(r, STARVATION_MS + 1500));
    await arena.apply(experiment(ns, 'held-off', 'bf-small'));
    await new Promise((r) => setTimeout(r, 3000));
    const heldOff = await arena.getExperiment(ns, 'held-off');
    assert.equal(heldOff.status?.phase, 'Pending', `held-off waits while big holds the nodes (${heldOff.status?.message})`);
    // When the running small jobs end, big starts on the nodes it held, ahead of held-off.
    await finishAll(ns, blocker);
    await finishAll(ns, backfilled);
    await arena.waitPhase(ns, 'big', 'Running');
    assert.equal((await arena.getExperiment(ns, 'held-off')).status?.phase, 'Pending');
  });
});
