// Preemption with real training: the operator, a local node that runs worker pods as processes, and the runtime
// with AgileRL's own trainer. A class whose worker takes most of the node's CPU fits once; a high-priority run
// preempts the running one, whose runtime writes its final AgileRL checkpoint in the preemption deadline (SIGTERM,
// as on Stop). The victim waits Pending/Preempted, and once the high-priority run has finished it resumes from that
// checkpoint and trains on past it; the steps it lost are at most those since the checkpoint it resumed from.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import type { LocalNode } from './node/local-node.ts';
import { runtimeImage, startLocalOperator, startRuntimeNode } from './support/runtime-node.ts';
import { readCheckpointMetadata } from './support/agilerl.ts';
import { Arena, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { quickDqn } from './support/manifests.ts';
import type { RunningOperator } from '../operator/operator.ts';

describe('preemption of a real training run on a local node', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let node: LocalNode;
  let op: RunningOperator;
  let checkpoints: string;
  const ns = 'preempt-train';

  before(async () => {
    cluster = await LocalCluster.start({ without: ['kwok'] });
    await installCrds(cluster);
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    checkpoints = join(cluster.dir, 'checkpoints');
    mkdirSync(checkpoints, { recursive: true });
    node = await startRuntimeNode(kc, {
      dataDir: join(cluster.dir, 'node'),
      labels: { pool: 'local' },
      // The trainer's Python: the caller's ARENA_PYTHON, as an image sets it, else the checkout's .venv.
      imageMap: [runtimeImage('registry.local/arena-runtime', process.env.ARENA_PYTHON ? { ARENA_PYTHON: process.env.ARENA_PYTHON } : undefined)],
    });
    op = await startLocalOperator(kc, { progressIntervalMs: 1000, preemption: { minRunTimeSeconds: 1, checkpointDeadlineSeconds: 30 } });
    const storage = { mountPath: '/checkpoints', hostPath: { path: checkpoints } };
    await arena.apply(trainingCluster('local', { setupBundle: { version: '1.0.0', images: { runtime: 'registry.local/arena-runtime:1.0.0' } }, checkpointStorage: storage }));
    // The local node has 8 CPUs: one worker of 5 fits, two do not.
    await arena.apply(resourceClass('big-cpu', 'local', { nodes: 1, worker: { cpu: '5', memory: '2Gi', gpus: 0 }, nodeSelector: { pool: 'local' } }));
    await arena.namespace(ns);
  });
  after(async () => {
    await op?.stop();
    await node?.stop();
    await cluster?.stop();
  });

  test('the victim writes a final checkpoint, waits Preempted, and resumes from it once the preemptor is done', async () => {
    await arena.apply(experiment(ns, 'low', 'big-cpu', { manifest: quickDqn(200_000), stopGracePeriodSeconds: 60, maxRetries: 0 }));
    await arena.waitExperiment(ns, 'low', (s) => s.phase === 'Running' && (s.checkpoints?.length ?? 0) >= 1, 'a checkpoint of the low-priority run', 240_000);

    await arena.apply(experiment(ns, 'high', 'big-cpu', { manifest: quickDqn(1000), priority: 100 }));
    await arena.waitExperiment(ns, 'low', (s) => s.phase === 'Stopping' && s.reason === 'Preempted', 'low Stopping/Preempted', 60_000);
    const requeued = await arena.waitExperiment(ns, 'low', (s) => s.phase === 'Pending' && s.reason === 'Preempted', 'low Pending/Preempted', 90_000);
    const li = requeued.status!.lastInterruption!;
    assert.equal(li.preemptedBy, `${ns}/high`);
    const kept = requeued.status!.latestCheckpoint!;
    assert.match(kept.location, /-final$/, 'the runtime wrote a final checkpoint in the deadline');
    assert.equal(readCheckpointMetadata(join(checkpoints, kept.location.slice('/checkpoints/'.length))).step, kept.step, 'AgileRL\'s checkpoint on disk is the one recorded');
    assert.equal(li.checkpointStep, kept.step);
    assert.ok(li.lostSteps !== undefined && li.stepAtStop !== undefined, 'what was lost is recorded');
    assert.equal(li.lostSteps, li.stepAtStop - kept.step, 'lost: the steps past the checkpoint it resumes from');
    assert.ok(li.lostSteps <= li.stepAtStop - (requeued.status!.checkpoints!.filter((c) => c.step < kept.step).at(-1)?.step ?? 0), 'at most the steps since the last checkpoint before the stop');
    assert.equal(requeued.status?.failedAttempts, 0, 'a preemption is not a failed attempt');
    console.log(`# preemption: final checkpoint at step ${kept.step}, last step reported ${li.stepAtStop}, ${li.lostSteps} step(s) lost`);

    const high = await arena.waitExperiment(ns, 'high', (s) => s.phase === 'Succeeded' || s.phase === 'Failed', 'the high-priority run to finish', 300_000);
    assert.equal(high.status?.phase, 'Succeeded', JSON.stringify(high.status?.lastFailure));

    const resumed = await arena.waitExperiment(ns, 'low', (s) => s.phase === 'Running' && s.attempt === 2, 'low Running again as attempt 2', 120_000);
    const env = (await arena.workerPods(ns, resumed))[0]!.spec!.containers[0]!.env ?? [];
    assert.equal(env.find((e) => e.name === 'ARENA_RESUME_STEP')?.value, String(kept.step), 'it resumes from the checkpoint it stopped with');
    const past = await arena.waitExperiment(ns, 'low', (s) => (s.checkpoints ?? []).some((c) => c.run === 1 && c.step > kept.step), 'a checkpoint past the resumed step', 240_000);
    assert.ok(past.status?.lastInterruption?.resumedAt, 'the resume is recorded');
    await arena.patchExperiment(ns, 'low', { action: 'Stop' });
    await arena.waitExperiment(ns, 'low', (s) => s.phase === 'Stopped' || s.phase === 'Failed', 'low to stop', 90_000);
  });
});
