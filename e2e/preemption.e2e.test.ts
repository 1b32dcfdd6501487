// Checkpoint-aware preemption and start estimates end to end: the operator against a real control plane with
// simulated GPU nodes, the workers' reports sent as the runtime sends them. A high-priority gang that does not fit
// preempts the one lower-priority run that loses least (its checkpoint is the most recent among those old enough):
// that run stops through the Stop path, its final checkpoint lands in the deadline, it waits Pending/Preempted
// naming the preemptor, and once capacity returns it resumes from that checkpoint as a new attempt that spent no
// retry. Team quotas: a team borrows the idle GPUs of another team's quota, waits QuotaExceeded past its borrowing
// limit, and gives a borrowed GPU back (the run stops with its checkpoint and resumes later) when the owner asks.
// Then a waiting experiment gets status.estimatedStartTime, which moves earlier as the running one advances.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { createGpuNodes, finishPod, gpuProducts } from './cluster/gpu-nodes.ts';
import { waitFor } from './cluster/wait.ts';
import { SchedulingV1Api } from '@kubernetes/client-node';
import { Arena, FakeRuntime, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { startOperator, type RunningOperator } from '../operator/operator.ts';
import { createLogger } from '../operator/observability/log.ts';
import type { Experiment } from '../operator/api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../operator/api/v1alpha1/resourceclass.ts';
import { GROUP, VERSION } from '../operator/api/v1alpha1/common.ts';
import { runPlugin } from '../operator/plugin/cli.ts';

const MIN_RUN_SECONDS = 6;

describe('preemption and start estimates on simulated GPU nodes', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let op: RunningOperator;

  before(async () => {
    cluster = await LocalCluster.start();
    await installCrds(cluster);
    arena = new Arena(cluster.kubeConfig());
    await createGpuNodes(cluster.kubeConfig(), { prefix: 'pre', count: 3, gpus: 8, gpu: gpuProducts.H100, labels: { pool: 'preempt' } });
    await createGpuNodes(cluster.kubeConfig(), { prefix: 'est', count: 1, gpus: 8, gpu: gpuProducts.H100, labels: { pool: 'estimate' } });
    await createGpuNodes(cluster.kubeConfig(), { prefix: 'team', count: 2, gpus: 8, gpu: gpuProducts.H100, labels: { pool: 'teams' } });
    await arena.apply(trainingCluster('onprem'));
    await arena.apply(resourceClass('whole', 'onprem', { nodes: 1, worker: { gpus: 8 }, nodeSelector: { pool: 'preempt' } }));
    await arena.apply(resourceClass('est-one', 'onprem', { nodes: 1, worker: { gpus: 8 }, nodeSelector: { pool: 'estimate' } }));
    await arena.apply(
      resourceClass('teamed', 'onprem', {
        nodes: 1,
        worker: { gpus: 8 },
        nodeSelector: { pool: 'teams' },
        teams: [
          { name: 'vision', namespaces: ['team-vision'], gpus: 8 },
          { name: 'nlp', namespaces: ['team-nlp'], gpus: 8, borrowingLimit: 8 },
        ],
      }),
    );
    op = await startOperator({
      kc: cluster.kubeConfig(),
      logger: createLogger({ silent: true }),
      http: { host: '127.0.0.1', port: 0 },
      leaderElect: false,
      progressIntervalMs: 300,
      preemption: { minRunTimeSeconds: MIN_RUN_SECONDS, checkpointDeadlineSeconds: 20 },
    });
  });
  after(async () => {
    await op?.stop();
    await cluster?.stop();
  });

  const runtime = async (ns: string, e: Experiment) => new FakeRuntime(op.http.url, e, await arena.runToken(ns, e));
  const metric = async (name: string) => {
    const text = await (await fetch(`${op.ops.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  };

  test('a high-priority gang preempts the run that loses least; it resumes from its checkpoint and spends no retry', async () => {
    const ns = 'preempt';
    await arena.namespace(ns);
    // Two runs old enough to be preempted: stale's checkpoint is older than fresh's.
    await arena.apply(experiment(ns, 'stale', 'whole', { stopGracePeriodSeconds: 60, maxRetries: 0 }));
    await arena.apply(experiment(ns, 'fresh', 'whole', { stopGracePeriodSeconds: 60, maxRetries: 0 }));
    const stale = await arena.waitPhase(ns, 'stale', 'Running');
    const fresh = await arena.waitPhase(ns, 'fresh', 'Running');
    const staleRt = await runtime(ns, stale);
    const freshRt = await runtime(ns, fresh);
    assert.equal((await staleRt.checkpoint(300, 1)).status, 200);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal((await freshRt.checkpoint(100, 1)).status, 200);
    assert.equal((await freshRt.progress(140, 10_000)).status, 200);
    await waitFor(async () => Date.now() - Date.parse((await arena.getExperiment(ns, 'fresh')).status!.attemptStartedAt!) > MIN_RUN_SECONDS * 1000 + 500, {
      timeoutMs: 30_000,
      what: 'both runs to pass the minimum run time',
    });
    // A third that has just started: its work since a checkpoint is the least, but it is too young to preempt.
    await arena.apply(experiment(ns, 'young', 'whole'));
    const young = await arena.waitPhase(ns, 'young', 'Running');
    assert.equal((await (await runtime(ns, young)).checkpoint(10, 1)).status, 200);

    await arena.apply(experiment(ns, 'urgent', 'whole', { priority: 100 }));
    const preempting = await arena.waitExperiment(ns, 'urgent', (s) => s.reason === 'Preempting', 'urgent Pending/Preempting');
    assert.match(preempting.status!.message!, /Preempting preempt\/fresh \(lower priority than its 100\)/);

    const stopping = await arena.waitExperiment(ns, 'fresh', (s) => s.phase === 'Stopping' && s.reason === 'Preempted', 'fresh Stopping/Preempted');
    assert.match(stopping.status!.message!, /^Preempted by preempt\/urgent \(priority 100\)/);
    const pods = await arena.workerPods(ns, stopping);
    assert.ok(pods.length > 0 && pods.every((p) => p.metadata?.deletionTimestamp), 'the victim\'s workers got their grace period');
    assert.equal(pods[0]!.metadata?.deletionGracePeriodSeconds, 20, 'the preemption deadline is the grace period');
    for (const name of ['stale', 'young']) assert.equal((await arena.getExperiment(ns, name)).status?.phase, 'Running', `${name} is not a victim`);

    // The runtime writes its final checkpoint in the deadline, then exits.
    assert.equal((await freshRt.progress(150, 10_000)).status, 200);
    assert.equal((await freshRt.checkpoint(150, 2, { final: true })).status, 200);
    const requeued = await arena.waitExperiment(ns, 'fresh', (s) => s.phase === 'Pending' && s.reason === 'Preempted', 'fresh Pending/Preempted', 60_000);
    assert.match(requeued.status!.message!, /Preempted by preempt\/urgent.*resumes from its checkpoint at step 150/);
    assert.equal(requeued.status?.attempt, 2);
    assert.equal(requeued.status?.failedAttempts, 0, 'a preemption is not a failed attempt');
    assert.equal(requeued.status?.lastInterruption?.preemptedBy, 'preempt/urgent');
    assert.equal(requeued.status?.lastInterruption?.checkpointStep, 150);
    assert.equal(requeued.status?.lastInterruption?.lostSteps, 0, 'the final checkpoint kept every step');

    const urgent = await arena.waitPhase(ns, 'urgent', 'Running');
    assert.equal((await arena.workerPods(ns, urgent))[0]!.spec?.nodeName, pods[0]!.spec?.nodeName, 'urgent runs where fresh ran');
    assert.equal(await metric('arena_preemptions_total'), 1);
    assert.equal(await metric('arena_preemption_lost_steps_count'), 1);
    assert.equal(await metric('arena_preemption_lost_steps_sum'), 0);

    // Capacity returns: fresh resumes from step 150 by itself, with its retries intact.
    for (const p of await arena.workerPods(ns, urgent)) await finishPod(arena.kc, ns, p.metadata!.name!, 'Succeeded');
    const resumed = await arena.waitExperiment(ns, 'fresh', (s) => s.phase === 'Running' && s.attempt === 2, 'fresh Running as attempt 2', 60_000);
    const env = Object.fromEntries(((await arena.workerPods(ns, resumed))[0]!.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.ARENA_RESUME_STEP, '150', 'it continues from the checkpoint it stopped with');
    assert.ok(resumed.status?.lastInterruption?.resumedAt, 'the resume is recorded');
    const reasons = (await arena.core.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.involvedObject.name === 'fresh').map((e) => e.reason);
    for (const r of ['Preempted', 'Requeued', 'ResumedAfterPreemption']) assert.ok(reasons.includes(r), `a ${r} event: ${reasons.join(', ')}`);
  });

  test('spec.priorityClassName takes its PriorityClass\'s value; a missing one keeps the run Pending, naming it', async () => {
    const ns = 'prioclass';
    await arena.namespace(ns);
    await arena.apply(experiment(ns, 'orphan', 'est-one', { priorityClassName: 'no-such-class' }));
    const orphan = await arena.waitExperiment(ns, 'orphan', (s) => s.reason === 'PriorityClassNotFound', 'Pending/PriorityClassNotFound');
    assert.equal(orphan.status?.phase, 'Pending');
    assert.match(orphan.status!.message!, /PriorityClass no-such-class does not exist: create it .* or set spec\.priority/);
    // Created afterwards: the experiment is looked at again and queued.
    const scheduling = cluster.kubeConfig().makeApiClient(SchedulingV1Api);
    await scheduling.createPriorityClass({ body: { metadata: { name: 'no-such-class' }, value: 50 } });
    await arena.waitPhase(ns, 'orphan', 'Running');
    // Its node goes back to the next test (with no runtime to write a final checkpoint, the stop ends it Failed).
    await arena.patchExperiment(ns, 'orphan', { action: 'Stop' });
    await arena.waitExperiment(ns, 'orphan', (s) => s.phase === 'Stopped' || s.phase === 'Failed', 'orphan stopped');
  });

  test('a team borrows idle GPUs up to its limit and gives them back, with a checkpoint, when the owning team asks', async () => {
    const [nlp, vision] = ['team-nlp', 'team-vision'];
    await arena.namespace(nlp);
    await arena.namespace(vision);
    const teams = async () =>
      ((await arena.custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'resourceclasses', name: 'teamed' })) as ResourceClass).status?.teams;

    // Vision runs nothing: nlp borrows its 8 GPUs, and a third run is past nlp's quota plus borrowing limit.
    await arena.apply(experiment(nlp, 'n1', 'teamed', { stopGracePeriodSeconds: 60, maxRetries: 0 }));
    await arena.apply(experiment(nlp, 'n2', 'teamed', { stopGracePeriodSeconds: 60, maxRetries: 0 }));
    const n1 = await arena.waitPhase(nlp, 'n1', 'Running');
    const n2 = await arena.waitPhase(nlp, 'n2', 'Running');
    await arena.apply(experiment(nlp, 'n3', 'teamed'));
    const over = await arena.waitExperiment(nlp, 'n3', (s) => s.reason === 'QuotaExceeded', 'n3 Pending/QuotaExceeded');
    assert.match(over.status!.message!, /^Team nlp uses 16 GPU\(s\) of class teamed against a quota of 8 and a borrowing limit of 8; this run needs 8 more\./);
    await waitFor(async () => (await teams())?.find((t) => t.name === 'nlp')?.borrowedGpus === 8, { timeoutMs: 20_000, what: 'status.teams to show nlp borrowing 8 GPUs' });
    assert.deepEqual((await teams())?.find((t) => t.name === 'nlp'), { name: 'nlp', quotaGpus: 8, usedGpus: 16, borrowedGpus: 8, queued: 1, running: 2 });
    let out = '';
    assert.equal(await runPlugin(['status', '-n', nlp, '--kubeconfig', cluster.kubeconfigPath], { io: { out: (t) => void (out += t), err: (t) => void (out += t) } }), 0, out);
    assert.match(out, /teamed\s+nlp\s+8\s+16\s+8\s+1\s+2/, 'kubectl arena status lists the team\'s quota, use and borrowing');

    // n2 checkpointed last, so it loses least; both have run past the minimum run time.
    const n1Rt = await runtime(nlp, n1);
    const n2Rt = await runtime(nlp, n2);
    assert.equal((await n1Rt.checkpoint(100, 1)).status, 200);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await n2Rt.checkpoint(200, 1)).status, 200);
    await waitFor(async () => Date.now() - Date.parse((await arena.getExperiment(nlp, 'n2')).status!.attemptStartedAt!) > MIN_RUN_SECONDS * 1000 + 500, {
      timeoutMs: 30_000,
      what: 'the borrowing runs to pass the minimum run time',
    });

    // Vision asks for its quota, at a lower priority than nlp's runs: reclaim does not look at priority.
    await arena.apply(experiment(vision, 'v1', 'teamed', { priority: -10 }));
    const reclaiming = await arena.waitExperiment(vision, 'v1', (s) => s.reason === 'Preempting', 'v1 Pending/Preempting');
    assert.match(reclaiming.status!.message!, /Team vision uses 0 of its 8-GPU quota on class teamed\. Preempting team-nlp\/n2 \(team nlp, borrowing beyond its quota\) \(to reclaim team vision's quota\)/);
    const stopping = await arena.waitExperiment(nlp, 'n2', (s) => s.phase === 'Stopping' && s.reason === 'Preempted', 'n2 Stopping/Preempted');
    const n2Node = (await arena.workerPods(nlp, stopping))[0]!.spec!.nodeName;
    assert.match(stopping.status!.message!, /^Preempted by team-vision\/v1 \(team vision\), which reclaims its quota: this run's team nlp borrows GPUs beyond its own\./);
    assert.equal((await arena.getExperiment(nlp, 'n1')).status?.phase, 'Running', 'n1 runs within nlp\'s own quota');

    assert.equal((await n2Rt.checkpoint(220, 2, { final: true })).status, 200);
    const requeued = await arena.waitExperiment(nlp, 'n2', (s) => s.phase === 'Pending' && s.reason === 'Preempted', 'n2 Pending/Preempted', 60_000);
    assert.equal(requeued.status?.lastInterruption?.checkpointStep, 220);
    assert.equal(requeued.status?.failedAttempts, 0, 'giving back a loan is not a failed attempt');
    const v1 = await arena.waitPhase(vision, 'v1', 'Running');
    assert.equal((await arena.workerPods(vision, v1))[0]!.spec?.nodeName, n2Node, 'vision runs on the GPUs nlp gave back');
    await waitFor(async () => (await teams())?.find((t) => t.name === 'vision')?.usedGpus === 8, { timeoutMs: 20_000, what: 'status.teams to show vision using its quota' });
    assert.equal((await teams())?.find((t) => t.name === 'nlp')?.borrowedGpus, 0);

    // Vision's run ends: nlp borrows again, and n2 resumes from the checkpoint it gave the GPUs back with.
    for (const p of await arena.workerPods(vision, v1)) await finishPod(arena.kc, vision, p.metadata!.name!, 'Succeeded');
    const resumed = await arena.waitExperiment(nlp, 'n2', (s) => s.phase === 'Running' && s.attempt === 2, 'n2 Running as attempt 2', 60_000);
    const env = Object.fromEntries(((await arena.workerPods(nlp, resumed))[0]!.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.ARENA_RESUME_STEP, '220');
    await arena.waitExperiment(nlp, 'n3', (s) => s.reason === 'QuotaExceeded', 'n3 to wait for its own team again');
  });

  test('a waiting experiment gets an estimated start that moves as the running one advances', async () => {
    const ns = 'estimate';
    await arena.namespace(ns);
    await arena.apply(experiment(ns, 'busy', 'est-one'));
    const busy = await arena.waitPhase(ns, 'busy', 'Running');
    const rt = await runtime(ns, busy);
    // 100 steps/s (the fake runtime's speed) with 60,000 steps left: about 10 minutes.
    assert.equal((await rt.progress(40_000, 100_000)).status, 200);
    await arena.apply(experiment(ns, 'next', 'est-one'));
    const first = await arena.waitExperiment(ns, 'next', (s) => s.phase === 'Pending' && s.estimatedStartTime !== undefined, 'an estimate', 30_000);
    const firstAt = Date.parse(first.status!.estimatedStartTime!);
    const inS = (firstAt - Date.now()) / 1000;
    assert.ok(inS > 400 && inS < 700, `about 10 minutes away: ${inS}s`);
    const admitted = first.status?.conditions?.find((c) => c.type === 'Admitted');
    assert.match(admitted!.message!, /Estimated start .*Z, when estimate\/busy finishes \(at 100 steps\/s toward 100000 steps\)/);
    assert.match(first.status!.message!, /Estimated start/);

    // The running experiment advances: 10,000 steps left, about 100 s.
    assert.equal((await rt.progress(90_000, 100_000)).status, 200);
    const moved = await arena.waitExperiment(ns, 'next', (s) => s.estimatedStartTime !== undefined && Date.parse(s.estimatedStartTime) < firstAt - 300_000, 'the estimate to move earlier', 30_000);
    const movedIn = (Date.parse(moved.status!.estimatedStartTime!) - Date.now()) / 1000;
    assert.ok(movedIn < 200, `about 100 s away: ${movedIn}s`);

    // It finishes: the waiting one starts and the estimate is gone.
    for (const p of await arena.workerPods(ns, busy)) await finishPod(arena.kc, ns, p.metadata!.name!, 'Succeeded');
    const started = await arena.waitPhase(ns, 'next', 'Running');
    assert.equal(started.status?.estimatedStartTime, undefined);
  });
});
