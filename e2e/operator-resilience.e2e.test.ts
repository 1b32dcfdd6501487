// The operator as real processes: killed mid-run and restarted, two replicas with one leader, a node lost
// mid-run, and a flood of runtime reports that must not become a flood of status writes.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CoordinationV1Api, CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { createGpuNodes, finishPod, gpuProducts } from './cluster/gpu-nodes.ts';
import { waitFor } from './cluster/wait.ts';
import { Arena, FakeRuntime, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { startOperatorProcess, type OperatorProcess } from './support/operator-process.ts';

describe('operator resilience', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  const running: OperatorProcess[] = [];

  before(async () => {
    cluster = await LocalCluster.start();
    await installCrds(cluster);
    arena = new Arena(cluster.kubeConfig());
    await createGpuNodes(cluster.kubeConfig(), { prefix: 'gpu', count: 4, gpus: 4, gpu: gpuProducts.H100 });
    await arena.apply(trainingCluster('onprem'));
    await arena.apply(resourceClass('duo', 'onprem', { nodes: 2, worker: { cpu: '2', memory: '4Gi', gpus: 2 } }));
  });
  after(async () => {
    for (const p of running) await p.kill();
    await cluster?.stop();
  });

  const holder = async () =>
    (await cluster.kubeConfig().makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: 'default', name: 'arena-operator' })).spec?.holderIdentity;

  test('killed mid-run and restarted: no duplicate pods, no lost checkpoint, the run finishes', async () => {
    const ns = 'restart';
    await arena.namespace(ns);
    const first = await startOperatorProcess(cluster, { identity: 'first' });
    running.push(first);
    await arena.apply(experiment(ns, 'survivor', 'duo'));
    const exp = await arena.waitPhase(ns, 'survivor', 'Running');
    const podsBefore = (await arena.workerPods(ns, exp)).map((p) => p.metadata!.name).sort();
    const rt = new FakeRuntime(first.url, exp, await arena.runToken(ns, exp));
    assert.equal((await rt.checkpoint(700, 12)).status, 200);
    await first.kill('SIGKILL');

    const second = await startOperatorProcess(cluster, { identity: 'second' });
    running.push(second);
    await waitFor(async () => (await holder()) === 'second', { timeoutMs: 20_000, what: 'the restarted operator to take the lease' });
    // Let it reconcile everything once.
    await new Promise((r) => setTimeout(r, 2000));
    const after = await arena.getExperiment(ns, 'survivor');
    assert.equal(after.status?.phase, 'Running');
    assert.deepEqual(after.status?.checkpoints?.map((c) => c.step), [700], 'the acknowledged checkpoint is kept');
    const podsAfter = (await arena.workerPods(ns, after)).map((p) => p.metadata!.name).sort();
    assert.deepEqual(podsAfter, podsBefore, 'the same pods, no duplicates');

    const rt2 = new FakeRuntime(second.url, after, await arena.runToken(ns, after));
    assert.equal((await rt2.checkpoint(900, 20)).status, 200);
    for (const p of await arena.workerPods(ns, after)) await finishPod(arena.kc, ns, p.metadata!.name!, 'Succeeded');
    const done = await arena.waitPhase(ns, 'survivor', 'Succeeded');
    assert.deepEqual(done.status?.checkpoints?.map((c) => c.step), [700, 900]);
  });

  test('two replicas: one leads, the standby refuses reports, and takes over when the leader dies', async () => {
    for (const p of running) await p.kill();
    running.length = 0;
    const a = await startOperatorProcess(cluster, { identity: 'replica-a' });
    running.push(a);
    await waitFor(async () => (await holder()) === 'replica-a', { timeoutMs: 20_000, what: 'replica-a to lead' });
    const b = await startOperatorProcess(cluster, { identity: 'replica-b' });
    running.push(b);
    const standby = await fetch(`${b.url}/runtime/v1/reports`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(standby.status, 503, 'the standby sends workers elsewhere');
    assert.equal(await b.metric('leader_election_master_status'), 0);
    assert.equal(await a.metric('leader_election_master_status'), 1);

    await a.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor(async () => (await holder()) === 'replica-b', { timeoutMs: 20_000, what: 'replica-b to take over' });
    const ns = 'failover';
    await arena.namespace(ns);
    await arena.apply(experiment(ns, 'after-failover', 'duo'));
    await arena.waitPhase(ns, 'after-failover', 'Running');
    console.log(`# failover: replica-b led ${((Date.now() - killedAt) / 1000).toFixed(1)}s after replica-a was killed (lease 3s)`);
    await arena.patchExperiment(ns, 'after-failover', { action: 'Stop' });
    await arena.waitExperiment(ns, 'after-failover', (s) => s.phase === 'Stopped' || s.phase === 'Failed', 'stopped');
  });

  test('a gang an operator was killed in the middle of creating is completed by the next leader, with no retry spent', async () => {
    const ns = 'halfgang';
    await arena.namespace(ns);
    await arena.apply(experiment(ns, 'half', 'duo', { maxRetries: 0 }));
    const exp = await arena.waitPhase(ns, 'half', 'Running');
    const pods = await arena.workerPods(ns, exp);
    assert.equal(pods.length, 2);
    for (const p of running) await p.kill('SIGKILL');
    running.length = 0;
    // What a SIGKILL between the two pod creations leaves: one worker, and a status the leader never got to write.
    const rank1 = pods.find((p) => p.metadata?.labels?.['arena.agilerl.com/rank'] === '1')!;
    await arena.core.deleteNamespacedPod({ namespace: ns, name: rank1.metadata!.name!, gracePeriodSeconds: 0 });
    await arena.custom.patchNamespacedCustomObjectStatus(
      { group: 'arena.agilerl.com', version: 'v1alpha1', plural: 'experiments', namespace: ns, name: 'half', body: { status: { phase: 'Pending', reason: 'Queued', message: 'Waiting for the scheduler.', admittedAt: null, attemptStartedAt: null, startedAt: null } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await waitFor(async () => (await arena.workerPods(ns, exp)).length === 1, { timeoutMs: 20_000, what: 'rank 1 to be gone' });

    const next = await startOperatorProcess(cluster, { identity: 'after-half' });
    running.push(next);
    const started = Date.now();
    const done = await arena.waitExperiment(ns, 'half', (st) => st.phase === 'Running', 'the gang completed and Running', 60_000);
    console.log(`# half-created gang: Running again ${((Date.now() - started) / 1000).toFixed(1)}s after the next leader started (partial-gang timeout 300 s)`);
    assert.equal(done.status?.attempt, 1, 'no retry was spent');
    assert.equal(done.status?.lastFailure, undefined);
    const again = await arena.workerPods(ns, done);
    assert.deepEqual(again.map((p) => p.metadata!.labels!['arena.agilerl.com/rank']).sort(), ['0', '1']);
    assert.equal(again.find((p) => p.metadata!.labels!['arena.agilerl.com/rank'] === '1')!.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms[0]!.matchFields![0]!.values![0], rank1.spec!.nodeName, 'on its planned node');
    const events = await arena.core.listNamespacedEvent({ namespace: ns });
    assert.ok(events.items.some((e) => e.reason === 'GangCompleted'));
    await arena.patchExperiment(ns, 'half', { action: 'Stop' });
    await arena.waitExperiment(ns, 'half', (st) => st.phase === 'Stopped' || st.phase === 'Failed', 'stopped');
  });

  test('a node deleted mid-run leads to a retry from the last checkpoint on other nodes', async () => {
    const leader = running.at(-1)!;
    const ns = 'nodeloss';
    await arena.namespace(ns);
    await arena.apply(experiment(ns, 'orphan', 'duo', { maxRetries: 2 }));
    const exp = await arena.waitPhase(ns, 'orphan', 'Running');
    const rt = new FakeRuntime(leader.url, exp, await arena.runToken(ns, exp));
    await rt.checkpoint(1234, 3);
    const pods = await arena.workerPods(ns, exp);
    const lost = pods[0]!.spec!.nodeName!;
    await cluster.kubeConfig().makeApiClient(CoreV1Api).deleteNode({ name: lost });
    const retried = await arena.waitExperiment(ns, 'orphan', (s) => s.attempt === 2 && s.lastFailure !== undefined, 'a retry after the node loss');
    assert.match(retried.status!.lastFailure!.reason, /NodeLost|WorkerLost/);
    const second = await arena.waitExperiment(ns, 'orphan', (s) => s.phase === 'Running' && s.attempt === 2, 'attempt 2 running', 45_000);
    const pods2 = (await arena.workerPods(ns, second)).filter((p) => p.metadata?.labels?.['arena.agilerl.com/attempt'] === '2');
    assert.equal(pods2.length, 2);
    for (const p of pods2) {
      assert.notEqual(p.spec?.nodeName, lost);
      const env = Object.fromEntries((p.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
      assert.equal(env.ARENA_RESUME_STEP, '1234');
    }
    await arena.patchExperiment(ns, 'orphan', { action: 'Stop' });
  });

  test('a flood of progress reports makes a bounded number of status writes', async () => {
    const leader = running.at(-1)!;
    const ns = 'flood';
    await arena.namespace(ns);
    await arena.apply(experiment(ns, 'chatty', 'duo'));
    const exp = await arena.waitPhase(ns, 'chatty', 'Running');
    const rt = new FakeRuntime(leader.url, exp, await arena.runToken(ns, exp));
    const before = await leader.metric('arena_status_writes_total', { kind: 'Experiment', result: 'written' });
    const started = Date.now();
    // The report API's per-run budget answers part of the flood 429 with Retry-After; the worker sends again then.
    let limited = 0;
    for (let step = 1; step <= 300; step++) {
      for (;;) {
        const r = await rt.progress(step, 300);
        if (r.status === 200) break;
        assert.equal(r.status, 429, JSON.stringify(r.body));
        limited++;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
    const seconds = (Date.now() - started) / 1000;
    console.log(`# report flood: ${limited} answers were 429 (the run's request budget)`);
    await arena.waitExperiment(ns, 'chatty', (s) => s.progress?.step === 300, 'the last progress to land', 20_000);
    const writes = (await leader.metric('arena_status_writes_total', { kind: 'Experiment', result: 'written' })) - before;
    console.log(`# report flood: 300 progress reports in ${seconds.toFixed(1)}s -> ${writes} status writes`);
    // Progress is written at most every 5 s (the default), plus the writes other experiments cause meanwhile.
    assert.ok(writes <= Math.ceil(seconds / 5) + 6, `${writes} writes for 300 reports`);
  });
});
