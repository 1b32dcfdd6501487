// Experiments end to end: the operator against a real control plane with simulated GPU nodes. The tests play the
// runtime's part by posting reports with the run's real token, and end simulated worker pods through kwok.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { createGpuNodes, finishPod, gpuProducts, gpuTaint, setNodeReadyNow } from './cluster/gpu-nodes.ts';
import { waitFor } from './cluster/wait.ts';
import { Arena, FakeRuntime, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { grpoGsm8k } from './support/manifests.ts';
import { startOperator, type RunningOperator } from '../operator/operator.ts';
import { createLogger } from '../operator/observability/log.ts';

const quiet = createLogger({ silent: true });
const NODE_LOST_AFTER_MS = 12_000;

describe('experiments on simulated GPU nodes', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let op: RunningOperator;

  before(async () => {
    cluster = await LocalCluster.start();
    await installCrds(cluster);
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    // 4 A100 nodes with 8 GPUs, 2 L4 nodes with 4 GPUs, all carrying the GPU taint.
    await createGpuNodes(kc, { prefix: 'a100', count: 4, gpus: 8, gpu: gpuProducts.A100, taints: [gpuTaint], labels: { pool: 'train' } });
    await createGpuNodes(kc, { prefix: 'l4', count: 2, gpus: 4, gpu: gpuProducts.L4, taints: [gpuTaint], labels: { pool: 'train' } });
    await arena.apply(trainingCluster('onprem', { workerNodeSelector: { pool: 'train' } }));
    op = await startOperator({ kc, logger: quiet, http: { host: '127.0.0.1', port: 0 }, leaseNamespace: 'default', progressIntervalMs: 500, nodeLostAfterMs: NODE_LOST_AFTER_MS });
    await waitFor(() => op.isLeader(), { timeoutMs: 20_000, what: 'the operator to lead' });
  });
  after(async () => {
    await op?.stop();
    await cluster?.stop();
  });

  test('an experiment is admitted as a whole gang, runs, reports checkpoints and succeeds', async () => {
    const ns = 'gang';
    await arena.namespace(ns);
    await arena.apply(resourceClass('a100-x2', 'onprem', { nodes: 2, worker: { cpu: '4', memory: '16Gi', gpus: 8, gpuProduct: gpuProducts.A100.product } }));
    await arena.apply(experiment(ns, 'e1', 'a100-x2'));
    const running = await arena.waitPhase(ns, 'e1', 'Running');
    const pods = await arena.workerPods(ns, running);
    assert.equal(pods.length, 2, 'one worker per node of the class');
    const nodes = new Set(pods.map((p) => p.spec?.nodeName));
    assert.equal(nodes.size, 2, 'workers are on distinct nodes');
    for (const p of pods) {
      assert.match(p.spec!.nodeName!, /^a100-/, 'placed on the class GPU product');
      const env = Object.fromEntries((p.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
      assert.equal(env.WORLD_SIZE, '2');
      assert.ok(env.MASTER_ADDR?.startsWith('w0.'));
      assert.equal(p.spec!.containers[0]!.resources!.limits!['nvidia.com/gpu'], '8');
      assert.equal(p.spec!.runtimeClassName, 'nvidia');
      assert.ok(p.spec!.tolerations!.some((t) => t.key === 'nvidia.com/gpu'));
      assert.equal(p.spec!.securityContext?.runAsNonRoot, true);
    }

    const rt = new FakeRuntime(op.http.url, running, await arena.runToken(ns, running));
    assert.equal((await rt.progress(2500, 10000)).status, 200);
    assert.equal((await rt.checkpoint(2000, 30)).status, 200);
    assert.equal((await rt.checkpoint(4000, 80)).status, 200);
    // Checkpoints are acknowledged only once stored: the status already has them.
    const after = await arena.getExperiment(ns, 'e1');
    assert.deepEqual(after.status?.checkpoints?.map((c) => c.step), [2000, 4000]);
    assert.equal(after.status?.bestCheckpoint?.step, 4000);
    await arena.waitExperiment(ns, 'e1', (s) => s.progress?.percent === 25, 'progress 25%');

    for (const p of pods) await finishPod(arena.kc, ns, p.metadata!.name!, 'Succeeded');
    const done = await arena.waitPhase(ns, 'e1', 'Succeeded');
    assert.ok(done.status?.usage && done.status.usage.nodeSeconds >= 0);
    assert.equal(done.status?.finishedAt !== undefined, true);
  });

  test('a report with another run\'s token is refused; a malformed one gets 400 naming the field', async () => {
    const ns = 'tokens';
    await arena.namespace(ns);
    await arena.apply(resourceClass('cpu-x1', 'onprem', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 1 } }));
    await arena.apply(experiment(ns, 'a', 'cpu-x1'));
    await arena.apply(experiment(ns, 'b', 'cpu-x1'));
    const a = await arena.waitPhase(ns, 'a', 'Running');
    const b = await arena.waitPhase(ns, 'b', 'Running');
    const tokenB = await arena.runToken(ns, b);
    const asA = new FakeRuntime(op.http.url, a, tokenB);
    assert.equal((await asA.checkpoint(10, 1)).status, 403);
    assert.equal((await asA.post([{ type: 'progress', step: 1 }], '')).status, 401);
    const res = await fetch(`${op.http.url}/runtime/v1/reports`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenB}`, 'content-type': 'application/json' },
      body: JSON.stringify({ experiment: { namespace: ns, name: 'b' }, run: 1, attempt: 1, worker: 0, events: [{ type: 'checkpoint', seq: 1, at: 'yesterday' }] }),
    });
    assert.equal(res.status, 400);
    assert.match(JSON.stringify(await res.json()), /events\.0\.(at|step|sizeBytes|location)/);
    await arena.patchExperiment(ns, 'a', { action: 'Stop' });
    await arena.patchExperiment(ns, 'b', { action: 'Stop' });
  });

  test('a worker\'s token speaks for its own rank of its own attempt only', async () => {
    const ns = 'ranks';
    await arena.namespace(ns);
    await arena.apply(resourceClass('a100-x2r', 'onprem', { nodes: 2, worker: { cpu: '1', memory: '1Gi', gpus: 1, gpuProduct: gpuProducts.A100.product } }));
    await arena.apply(experiment(ns, 'g', 'a100-x2r'));
    const running = await arena.waitPhase(ns, 'g', 'Running');
    const [t0, t1] = [await arena.runToken(ns, running, 0), await arena.runToken(ns, running, 1)];
    assert.notEqual(t0, t1);
    // Each pod mounts only its own token.
    for (const p of await arena.workerPods(ns, running)) {
      const rank = p.metadata!.labels!['arena.agilerl.com/rank'];
      assert.deepEqual(JSON.parse(JSON.stringify(p.spec!.volumes!.find((v) => v.name === 'run-token')!.secret!.items)), [{ key: `worker-${rank}`, path: 'token' }]);
    }
    const asRank1WithRank0Token = new FakeRuntime(op.http.url, running, t0, 1);
    const refused = await asRank1WithRank0Token.checkpoint(10, 1);
    assert.equal(refused.status, 403);
    assert.match(JSON.stringify(refused.body), /worker: the token is for worker 0/);
    assert.equal((await new FakeRuntime(op.http.url, running, t1, 1).checkpoint(10, 1)).status, 200);
    // A later attempt's claim with this attempt's token.
    const nextAttempt = new FakeRuntime(op.http.url, { ...running, status: { ...running.status, attempt: 2 } }, t0, 0);
    assert.equal((await nextAttempt.progress(1, 10)).status, 403);
    await arena.patchExperiment(ns, 'g', { action: 'Stop' });
  });

  test('a replaced signing key does not strand running work: the operator re-issues the attempt\'s tokens', async () => {
    const ns = 'rekey';
    await arena.namespace(ns);
    await arena.apply(resourceClass('cpu-rekey', 'onprem', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 1 } }));
    await arena.apply(experiment(ns, 'r', 'cpu-rekey'));
    const running = await arena.waitPhase(ns, 'r', 'Running');
    const before = running.status!.runTokenKey!;
    assert.ok(before, 'the status names the key the tokens were made with');
    const oldToken = await arena.runToken(ns, running);
    // One worker throughout (its sequence numbers go on); only the token it sends changes.
    const rt = new FakeRuntime(op.http.url, running, oldToken);
    const ckpt = (step: number) => ({ type: 'checkpoint' as const, step, sizeBytes: 1, location: `run-1/step-${step}` });
    assert.equal((await rt.post([ckpt(100)])).status, 200);

    // The key is lost (its Secret deleted); the operator makes a new one.
    await arena.core.deleteNamespacedSecret({ namespace: 'default', name: 'arena-operator-signing-key' });
    const rekeyed = await arena.waitExperiment(ns, 'r', (st) => st.runTokenKey !== undefined && st.runTokenKey !== before, 'tokens of a new key', 90_000);
    const stale = await rt.post([ckpt(200)]);
    assert.equal(stale.status, 403);
    assert.match(JSON.stringify(stale.body), /StaleToken/, 'the old token is called stale, so a worker re-reads its file');
    const newToken = await arena.runToken(ns, rekeyed);
    assert.notEqual(newToken, oldToken);
    assert.equal((await rt.post([ckpt(200)], newToken)).status, 200, 'the re-issued token works');
    const after = await arena.getExperiment(ns, 'r');
    assert.equal(after.status?.phase, 'Running');
    assert.equal(after.status?.attempt, 1, 'no retry was spent');
    assert.deepEqual(after.status?.checkpoints?.map((c) => c.step), [100, 200], 'nothing lost across the key change');
    const events = await arena.core.listNamespacedEvent({ namespace: ns });
    assert.ok(events.items.some((e) => e.reason === 'RunTokensReissued'));
    await arena.patchExperiment(ns, 'r', { action: 'Stop' });
  });

  test('an experiment deleted and created again before its objects are collected gets objects of its own', async () => {
    const ns = 'again';
    await arena.namespace(ns);
    await arena.apply(resourceClass('cpu-again', 'onprem', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 1 } }));
    await arena.apply(experiment(ns, 'x', 'cpu-again'));
    const first = await arena.waitPhase(ns, 'x', 'Running');
    const oldPods = (await arena.workerPods(ns, first)).map((p) => p.metadata!.name!);
    // Orphan deletion leaves the pods, Service and Secret behind, as a slow garbage collector would.
    await arena.custom.deleteNamespacedCustomObject({ group: 'arena.agilerl.com', version: 'v1alpha1', plural: 'experiments', namespace: ns, name: 'x', propagationPolicy: 'Orphan' });
    await waitFor(async () => (await arena.custom.listNamespacedCustomObject({ group: 'arena.agilerl.com', version: 'v1alpha1', plural: 'experiments', namespace: ns })).items.length === 0, { timeoutMs: 20_000, what: 'the experiment to go' });
    const original = experiment(ns, 'x', 'cpu-again').spec.manifest;
    const manifest = { ...original, training: { ...original.training, max_steps: 7777 } };
    await arena.apply(experiment(ns, 'x', 'cpu-again', { manifest }));
    const second = await arena.waitPhase(ns, 'x', 'Running');
    assert.notEqual(second.metadata!.uid, first.metadata!.uid);
    const newPods = await arena.workerPods(ns, second);
    assert.equal(newPods.length, 1, 'a worker of its own');
    assert.ok(!oldPods.includes(newPods[0]!.metadata!.name!), `not the old pod found by name (${oldPods.join(', ')})`);
    const secretName = newPods[0]!.spec!.volumes!.find((v) => v.name === 'manifest')!.secret!.secretName!;
    const secret = await arena.core.readNamespacedSecret({ namespace: ns, name: secretName });
    const stored = JSON.parse(Buffer.from(secret.data!['manifest.json']!, 'base64').toString('utf8')) as { training: { max_steps: number } };
    assert.equal(stored.training.max_steps, 7777, 'the new manifest, not the old one');
    assert.equal(secret.metadata!.labels!['arena.agilerl.com/experiment-uid'], second.metadata!.uid);
    assert.equal((await new FakeRuntime(op.http.url, second, await arena.runToken(ns, second)).checkpoint(5, 1)).status, 200);
    await arena.patchExperiment(ns, 'x', { action: 'Stop' });
  });

  test('a worker failure message as long as the protocol allows still lands in status, cut to fit', async () => {
    const ns = 'longfail';
    await arena.namespace(ns);
    await arena.apply(resourceClass('cpu-long', 'onprem', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 1 } }));
    await arena.apply(experiment(ns, 'l', 'cpu-long', { maxRetries: 0 }));
    const running = await arena.waitPhase(ns, 'l', 'Running');
    const rt = new FakeRuntime(op.http.url, running, await arena.runToken(ns, running));
    const message = `RuntimeError: ${'stack frame; '.repeat(400)}`.slice(0, 4096);
    assert.equal((await rt.post([{ type: 'failed', reason: 'TrainingFailed', message, hint: 'h'.repeat(1024), retryable: false }])).status, 200);
    const failed = await arena.waitPhase(ns, 'l', 'Failed', 30_000);
    assert.equal(failed.status?.reason, 'TrainingFailed');
    assert.ok((failed.status?.message?.length ?? 0) <= 4096 && (failed.status?.lastFailure?.message.length ?? 0) <= 4096);
    assert.match(failed.status?.lastFailure?.message ?? '', /^RuntimeError: stack frame/);
  });

  test('Pending says why: unknown class, disabled class, disabled provider, LLM on a CPU class, never fits', async () => {
    const ns = 'gating';
    await arena.namespace(ns);
    await arena.apply(experiment(ns, 'no-class', 'does-not-exist'));
    await arena.waitExperiment(ns, 'no-class', (s) => s.phase === 'Pending' && s.reason === 'ResourceClassNotFound', 'ResourceClassNotFound');

    await arena.apply(resourceClass('off', 'onprem', { enabled: false, nodes: 1, worker: { gpus: 1 } }));
    await arena.apply(experiment(ns, 'class-off', 'off'));
    const off = await arena.waitExperiment(ns, 'class-off', (s) => s.reason === 'ClassDisabled', 'ClassDisabled');
    assert.match(off.status!.message!, /disabled/);

    await arena.apply(resourceClass('cpu-only', 'onprem', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 0 } }));
    await arena.apply(
      experiment(ns, 'llm', 'cpu-only', {
        manifest: grpoGsm8k(),
      }),
    );
    await arena.waitExperiment(ns, 'llm', (s) => s.reason === 'ClassHasNoGpus', 'ClassHasNoGpus');

    await arena.apply(resourceClass('huge', 'onprem', { nodes: 8, worker: { gpus: 8 } }));
    await arena.apply(experiment(ns, 'huge', 'huge'));
    const huge = await arena.waitExperiment(ns, 'huge', (s) => s.reason === 'NeverFits', 'NeverFits');
    assert.match(huge.status!.message!, /\d/);

    await arena.apply(resourceClass('h100', 'onprem', { nodes: 1, worker: { gpus: 1, gpuProduct: gpuProducts.H100.product } }));
    await arena.apply(experiment(ns, 'h100', 'h100'));
    const h100 = await arena.waitExperiment(ns, 'h100', (s) => s.reason === 'NeverFits', 'NeverFits for a product no node has');
    assert.match(h100.status!.message!, /H100|product/);

    await arena.apply(resourceClass('small', 'onprem', { nodes: 1, worker: { gpus: 1 } }));
    await arena.patchCluster('onprem', { enabled: false });
    await arena.apply(experiment(ns, 'provider-off', 'small'));
    await arena.waitExperiment(ns, 'provider-off', (s) => s.reason === 'ProviderDisabled', 'ProviderDisabled');
    await arena.patchCluster('onprem', { enabled: true });
    await arena.waitPhase(ns, 'provider-off', 'Running');
    await arena.patchExperiment(ns, 'provider-off', { action: 'Stop' });
    // No runtime runs in these simulated pods, so no final checkpoint arrives: the stop ends Stopped all the same,
    // and says so, and where Train would continue from.
    const stopped = await arena.waitExperiment(ns, 'provider-off', (s) => s.phase === 'Stopped' || s.phase === 'Failed', 'Stopped', 30_000);
    assert.equal(stopped.status?.phase, 'Stopped', `${stopped.status?.reason}: ${stopped.status?.message}`);
    assert.equal(stopped.status?.reason, 'StoppedByUser');
    assert.match(stopped.status?.message ?? '', /^Stopped without a final checkpoint: none was reported within the 5s grace period\. Train starts over: no checkpoint was written\.$/);
  });

  test('Stop: Pending is cancelled at once; Running stops after a final checkpoint; Stop on a finished run changes nothing', async () => {
    const ns = 'stop';
    await arena.namespace(ns);
    await arena.apply(resourceClass('one-l4', 'onprem', { nodes: 1, worker: { gpus: 1, gpuProduct: gpuProducts.L4.product } }));
    await arena.apply(experiment(ns, 'run', 'one-l4'));
    const running = await arena.waitPhase(ns, 'run', 'Running');
    const rt = new FakeRuntime(op.http.url, running, await arena.runToken(ns, running));
    await rt.checkpoint(100, 5);
    await arena.patchExperiment(ns, 'run', { action: 'Stop' });
    await arena.waitPhase(ns, 'run', 'Stopping');
    // The runtime writes its final checkpoint during the grace period, then the pod goes away.
    assert.equal((await rt.checkpoint(150, 6, { final: true })).status, 200);
    const stopped = await arena.waitPhase(ns, 'run', 'Stopped');
    assert.deepEqual(stopped.status?.checkpoints?.map((c) => c.step), [100, 150]);
    assert.equal((await arena.workerPods(ns, stopped)).length, 0, 'workers are gone');

    // Stop again on a Stopped experiment: nothing changes, and the condition says why.
    await arena.patchExperiment(ns, 'run', { action: 'Train' });
    await arena.waitExperiment(ns, 'run', (s) => s.phase === 'Running' && s.attempt === 2, 'continued as attempt 2');
    const cont = await arena.getExperiment(ns, 'run');
    const pods = await arena.workerPods(ns, cont);
    const env = Object.fromEntries((pods[0]!.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.ARENA_RESUME_STEP, '150', 'continues from the final checkpoint');
    for (const p of pods) await finishPod(arena.kc, ns, p.metadata!.name!, 'Succeeded');
    await arena.waitPhase(ns, 'run', 'Succeeded');
    await arena.patchExperiment(ns, 'run', { action: 'Stop' });
    const ignored = await arena.waitExperiment(ns, 'run', (s) => s.conditions?.some((c) => c.reason === 'StopIgnored') ?? false, 'StopIgnored');
    assert.equal(ignored.status?.phase, 'Succeeded');
  });

  test('a final checkpoint whose report was lost, reported late by the next attempt, is filed under the attempt that wrote it and becomes the latest', async () => {
    const ns = 'late-report';
    await arena.namespace(ns);
    await arena.apply(resourceClass('late-l4', 'onprem', { nodes: 1, worker: { gpus: 1, gpuProduct: gpuProducts.L4.product } }));
    await arena.apply(experiment(ns, 'cut', 'late-l4'));
    const first = await arena.waitPhase(ns, 'cut', 'Running');
    await new FakeRuntime(op.http.url, first, await arena.runToken(ns, first)).checkpoint(100, 5);
    await arena.patchExperiment(ns, 'cut', { action: 'Stop' });
    // The worker writes its final checkpoint at step 150 but is cut off from the operator until its pod is gone.
    const stopped = await arena.waitExperiment(ns, 'cut', (s) => s.phase === 'Stopped', 'Stopped', 30_000);
    assert.match(stopped.status?.message ?? '', /^Stopped without a final checkpoint/);
    assert.deepEqual(stopped.status?.latestCheckpoint?.step, 100);

    await arena.patchExperiment(ns, 'cut', { action: 'Train' });
    const second = await arena.waitExperiment(ns, 'cut', (s) => s.phase === 'Running' && s.attempt === 2, 'attempt 2 running');
    const pods = await arena.workerPods(ns, second);
    const env = Object.fromEntries((pods[0]!.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.ARENA_RESUME_STEP, '100', 'the operator resumes from the newest checkpoint it knows of');
    const rt = new FakeRuntime(op.http.url, second, await arena.runToken(ns, second));
    // An attempt may only report what an earlier one wrote.
    const own = await rt.checkpoint(150, 6, { final: true, recovered: { run: 1, attempt: 2 } });
    assert.equal(own.status, 400);
    assert.match(JSON.stringify(own.body), /events\.0\.recovered: must name a run and attempt before this report's \(run 1 attempt 2\)/);
    // The runtime of attempt 2 found attempt 1's unacknowledged final checkpoint in its buffer, and reports it.
    assert.equal((await rt.checkpoint(150, 6, { final: true, recovered: { run: 1, attempt: 1 } })).status, 200);
    const after = await arena.getExperiment(ns, 'cut');
    assert.deepEqual(after.status?.checkpoints?.map((c) => [c.run, c.step]), [[1, 100], [1, 150]]);
    assert.deepEqual(after.status?.latestCheckpoint, { step: 150, location: 'run-1/step-150' }, 'what a later retry or Train again resumes from');
    assert.equal(after.status?.phase, 'Running', 'attempt 1\'s final checkpoint does not stop attempt 2');
    for (const p of pods) await finishPod(arena.kc, ns, p.metadata!.name!, 'Succeeded');
    await arena.waitPhase(ns, 'cut', 'Succeeded');
  });

  test('a failed worker tears the gang down and retries from the last checkpoint, then fails when retries run out', async () => {
    const ns = 'retry';
    await arena.namespace(ns);
    await arena.apply(resourceClass('pair', 'onprem', { nodes: 2, worker: { gpus: 2 } }));
    await arena.apply(experiment(ns, 'flaky', 'pair', { maxRetries: 1 }));
    const first = await arena.waitPhase(ns, 'flaky', 'Running');
    const rt = new FakeRuntime(op.http.url, first, await arena.runToken(ns, first));
    await rt.checkpoint(500, 10);
    const pods = await arena.workerPods(ns, first);
    await finishPod(arena.kc, ns, pods[1]!.metadata!.name!, 'Failed');
    const retrying = await arena.waitExperiment(ns, 'flaky', (s) => s.attempt === 2, 'attempt 2');
    assert.equal(retrying.status?.lastFailure?.reason, 'WorkerFailed');
    // The retry waits out its backoff (10 s), then starts from the checkpoint.
    const second = await arena.waitExperiment(ns, 'flaky', (s) => s.phase === 'Running' && s.attempt === 2, 'attempt 2 running', 40_000);
    const pods2 = await arena.workerPods(ns, second);
    const current = pods2.filter((p) => p.metadata?.labels?.['arena.agilerl.com/attempt'] === '2');
    assert.equal(current.length, 2);
    const env = Object.fromEntries((current[0]!.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.ARENA_RESUME_STEP, '500');
    await finishPod(arena.kc, ns, current[0]!.metadata!.name!, 'Failed');
    const failed = await arena.waitPhase(ns, 'flaky', 'Failed');
    assert.equal(failed.status?.reason, 'WorkerFailed');
    assert.match(failed.status?.message ?? '', /after 2 attempt/);
  });

  test('a gang whose workers do not all start is released whole after the partial-gang timeout and retried', async () => {
    const ns = 'partial';
    await arena.namespace(ns);
    // arena-e2e-stuck-0 is a node whose kubelet never starts containers (see kwok-stages.yaml).
    await createGpuNodes(arena.kc, { prefix: 'arena-e2e-stuck', count: 1, gpus: 8, gpu: gpuProducts.T4, labels: { pool: 'train', group: 'partial' } });
    await createGpuNodes(arena.kc, { prefix: 'partial-ok', count: 1, gpus: 8, gpu: gpuProducts.T4, labels: { pool: 'train', group: 'partial' } });
    await arena.apply(resourceClass('t4-pair', 'onprem', { nodes: 2, worker: { gpus: 8 }, nodeSelector: { group: 'partial' } }));
    await arena.apply(experiment(ns, 'half', 't4-pair', { partialGangTimeoutSeconds: 30, maxRetries: 1 }));
    const starting = await arena.waitExperiment(ns, 'half', (s) => s.reason === 'Starting' && s.admittedAt !== undefined, 'admitted');
    const pods = await arena.workerPods(ns, starting);
    assert.equal(pods.length, 2);
    const retried = await arena.waitExperiment(ns, 'half', (s) => s.lastFailure?.reason === 'PartialGang', 'PartialGang', 60_000);
    assert.equal(retried.status?.attempt, 2);
    assert.match(retried.status!.lastFailure!.message, /1 of 2 workers/);
    await arena.patchExperiment(ns, 'half', { action: 'Stop' });
  });

  test('a worker node NotReady for less than the grace period keeps the gang; NotReady for longer retries it elsewhere', async () => {
    const ns = 'flaps';
    await arena.namespace(ns);
    await createGpuNodes(arena.kc, { prefix: 'flap', count: 2, gpus: 4, gpu: gpuProducts.L4, taints: [gpuTaint], labels: { pool: 'train', group: 'flap' } });
    await arena.apply(resourceClass('flap-x1', 'onprem', { nodes: 1, worker: { gpus: 4 }, nodeSelector: { group: 'flap' } }));
    await arena.apply(experiment(ns, 'steady', 'flap-x1', { maxRetries: 2 }));
    const running = await arena.waitPhase(ns, 'steady', 'Running');
    const node = (await arena.workerPods(ns, running))[0]!.spec!.nodeName!;

    // A kubelet hiccup: NotReady for a few seconds, then Ready again, well inside the grace period.
    const hiccup = Date.now();
    await setNodeReadyNow(arena.kc, node, false);
    await new Promise((r) => setTimeout(r, 3000));
    await setNodeReadyNow(arena.kc, node, true);
    await new Promise((r) => setTimeout(r, Math.max(0, hiccup + NODE_LOST_AFTER_MS + 3000 - Date.now())));
    const kept = await arena.getExperiment(ns, 'steady');
    assert.deepEqual([kept.status?.phase, kept.status?.attempt, kept.status?.lastFailure], ['Running', 1, undefined], 'the gang survived the hiccup');

    // The same node NotReady for good: after the grace period the gang is torn down and retried on the other node.
    const down = Date.now();
    await setNodeReadyNow(arena.kc, node, false);
    const retried = await arena.waitExperiment(ns, 'steady', (s) => s.attempt === 2 && s.lastFailure !== undefined, 'a retry after the node stayed NotReady', 60_000);
    assert.equal(retried.status!.lastFailure!.reason, 'NodeLost');
    assert.ok(Date.parse(retried.status!.lastFailure!.at) - down >= NODE_LOST_AFTER_MS - 1000, 'not before the grace period ended');
    const second = await arena.waitExperiment(ns, 'steady', (s) => s.phase === 'Running' && s.attempt === 2, 'attempt 2 running', 45_000);
    const pods2 = (await arena.workerPods(ns, second)).filter((p) => p.metadata?.labels?.['arena.agilerl.com/attempt'] === '2');
    assert.deepEqual(pods2.map((p) => p.spec?.nodeName !== node), [true]);
    await arena.patchExperiment(ns, 'steady', { action: 'Stop' });
    await setNodeReadyNow(arena.kc, node, true);
  });
});
