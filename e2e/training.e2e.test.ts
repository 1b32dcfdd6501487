// Real training end to end: the operator, a local node that runs worker pods as processes, and the runtime with
// its reference DQN CartPole trainer. Nothing here is simulated except that the "GPU-less" node is this machine.
import { execFileSync } from 'node:child_process';
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import type { LocalNode } from './node/local-node.ts';
import { REFERENCE_TRAINER_ENV, runtimeImage, startLocalOperator, startRuntimeNode } from './support/runtime-node.ts';
import { Arena, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { demoRun } from './support/manifests.ts';
import type { RunningOperator } from '../operator/operator.ts';
import type { Manifest } from '../operator/api/v1alpha1/manifest.ts';

const manifest = (maxSteps: number, more: Record<string, unknown> = {}): Manifest => demoRun(maxSteps, more);

describe('training for real on a local node', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let node: LocalNode;
  let op: RunningOperator;
  const ns = 'train';

  before(async () => {
    cluster = await LocalCluster.start({ without: ['kwok'] });
    await installCrds(cluster);
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    const checkpoints = join(cluster.dir, 'checkpoints');
    mkdirSync(checkpoints, { recursive: true });
    node = await startRuntimeNode(kc, {
      dataDir: join(cluster.dir, 'node'),
      labels: { pool: 'local' },
      imageMap: [
        runtimeImage('registry.local/arena-runtime', REFERENCE_TRAINER_ENV),
        runtimeImage('registry.local/arena-runtime-agilerl'),
        // An image whose trainer crashes the way SGLang does when FlashAttention 3 meets an unsupported GPU.
        runtimeImage('registry.local/arena-runtime-broken', {
          ARENA_TRAINER_COMMAND: JSON.stringify([
            process.execPath,
            '-e',
            'console.error("loading model..."); console.error("RuntimeError: FlashAttention v3 Backend requires SM>=80 and SM<=90. Please use `--attention-backend flashinfer`."); process.exit(1)',
          ]),
        }),
      ],
    });
    op = await startLocalOperator(kc, {
      progressIntervalMs: 1000,
    });
    const storage = { mountPath: '/checkpoints', hostPath: { path: checkpoints } };
    await arena.apply(trainingCluster('local', { setupBundle: { version: '1.0.0', images: { runtime: 'registry.local/arena-runtime:1.0.0' } }, checkpointStorage: storage }));
    await arena.apply(trainingCluster('agilerl', { setupBundle: { version: '1.0.0', images: { runtime: 'registry.local/arena-runtime-agilerl:1.0.0' } }, checkpointStorage: storage }));
    await arena.apply(resourceClass('cpu-agilerl', 'agilerl', { nodes: 1, worker: { cpu: '1', memory: '2Gi', gpus: 0 }, nodeSelector: { pool: 'local' } }));
    await arena.apply(trainingCluster('broken', { setupBundle: { version: '1.0.0', images: { runtime: 'registry.local/arena-runtime-broken:1.0.0' } }, checkpointStorage: storage }));
    await arena.apply(resourceClass('cpu', 'local', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 0 }, nodeSelector: { pool: 'local' } }));
    await arena.apply(resourceClass('cpu-broken', 'broken', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 0 }, nodeSelector: { pool: 'local' } }));
    await arena.namespace(ns);
  });
  after(async () => {
    await op?.stop();
    await node?.stop();
    await cluster?.stop();
  });

  test('a DQN CartPole experiment trains to Succeeded with checkpoints whose evaluation score rises', async () => {
    await arena.apply(experiment(ns, 'cartpole', 'cpu', { manifest: manifest(6000), stopGracePeriodSeconds: 30 }));
    const done = await arena.waitExperiment(ns, 'cartpole', (s) => s.phase === 'Succeeded' || s.phase === 'Failed', 'training to finish', 240_000);
    assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.lastFailure));
    const ckpts = done.status?.checkpoints ?? [];
    assert.ok(ckpts.length >= 5, `several checkpoints (${ckpts.length})`);
    const first = ckpts[0]!.evaluationScore!;
    const best = done.status!.bestCheckpoint!.evaluationScore;
    assert.ok(best > first * 3 && best > 100, `evaluation score rises: first ${first}, best ${best}`);
    assert.equal(done.status?.progress?.percent, 100);
    // The checkpoint files are real and hold weights.
    const latest = ckpts.at(-1)!;
    assert.ok(latest.location.startsWith('/checkpoints/'), latest.location);
    const file = JSON.parse(readFileSync(join(cluster.dir, 'checkpoints', latest.location.slice('/checkpoints/'.length)), 'utf8')) as { step: number };
    assert.equal(file.step, latest.step);
    const logs = await cluster.kubectlAsync(['logs', '-n', ns, (await arena.workerPods(ns, done))[0]!.metadata!.name!]);
    assert.match(logs, /checkpoint|step/i, 'the trainer output is in the pod log');
  });

  test('Stop mid-run ends Stopped with a final checkpoint; resume from the best checkpoint starts a new experiment at its step', async () => {
    await arena.apply(experiment(ns, 'long', 'cpu', { manifest: manifest(200_000), stopGracePeriodSeconds: 30 }));
    await arena.waitExperiment(ns, 'long', (s) => (s.checkpoints?.length ?? 0) >= 2, 'two checkpoints', 180_000);
    const stopAsked = Date.now();
    await arena.patchExperiment(ns, 'long', { action: 'Stop' });
    const stopped = await arena.waitExperiment(ns, 'long', (s) => s.phase === 'Stopped' || s.phase === 'Failed', 'stopped', 60_000);
    console.log(`# stop-to-Stopped: ${((Date.now() - stopAsked) / 1000).toFixed(1)}s`);
    assert.equal(stopped.status?.phase, 'Stopped', `${stopped.status?.reason}: ${stopped.status?.message}`);
    const finalStep = stopped.status!.latestCheckpoint!.step;

    const best = stopped.status!.bestCheckpoint!;
    await arena.apply(experiment(ns, 'long-resumed', 'cpu', { manifest: manifest(best.step + 1500), resumeFrom: { experiment: 'long', checkpoint: 'best' } }));
    const resumed = await arena.waitExperiment(ns, 'long-resumed', (s) => s.phase === 'Succeeded' || s.phase === 'Failed', 'the resumed run to finish', 240_000);
    assert.equal(resumed.status?.phase, 'Succeeded', JSON.stringify(resumed.status?.lastFailure));
    assert.equal(resumed.status?.resumedFrom?.step, best.step);
    assert.ok((resumed.status?.checkpoints?.[0]?.step ?? 0) > best.step, 'the new experiment continues past the chosen step');
    assert.ok(finalStep >= best.step);
  });

  test('PPO on CartPole trains with AgileRL to Succeeded; a Stop mid-run writes a final AgileRL checkpoint that Train again continues from', async () => {
    // The platform's dialect, trained by AgileRL's own manifest trainer in the worker pod (runtime/trainers/agilerl).
    const ppo = (maxSteps: number): Manifest => ({
      algorithm: { name: 'PPO', batch_size: 64, lr: 0.001, learn_step: 128, gamma: 0.99 },
      environment: { name: 'CartPole-v1', num_envs: 4 },
      training: { max_steps: maxSteps, evo_steps: 512, pop_size: 2, eval_loop: 1 },
      network: { arch: 'mlp', latent_dim: 32, encoder_config: { hidden_size: [32] }, head_config: { hidden_size: [32] } },
    });
    const readMeta = (location: string) =>
      JSON.parse(readFileSync(join(cluster.dir, 'checkpoints', location.slice('/checkpoints/'.length), 'arena-checkpoint.json'), 'utf8')) as { step: number; agents: { file: string }[] };

    await arena.apply(experiment(ns, 'ppo', 'cpu-agilerl', { manifest: ppo(2048), stopGracePeriodSeconds: 30 }));
    const done = await arena.waitExperiment(ns, 'ppo', (s) => s.phase === 'Succeeded' || s.phase === 'Failed', 'AgileRL training to finish', 300_000);
    assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.lastFailure));
    const ckpts = done.status?.checkpoints ?? [];
    assert.ok(ckpts.length >= 3, `a checkpoint per evolution step (${ckpts.length})`);
    assert.deepEqual(ckpts.map((c) => c.step), [...ckpts.map((c) => c.step)].sort((a, b) => a - b), 'steps rise');
    assert.ok(ckpts.every((c) => typeof c.evaluationScore === 'number' && c.sizeBytes > 0));
    const meta = readMeta(ckpts.at(-1)!.location);
    assert.equal(meta.step, ckpts.at(-1)!.step);
    assert.equal(meta.agents.length, 2, 'the whole population, in AgileRL\'s own files');
    assert.ok(meta.agents.every((a) => a.file.endsWith('.pt')));
    assert.equal(done.status?.progress?.percent, 100);

    // Stop mid-run, then train again: the run continues from the final checkpoint's step.
    await arena.apply(experiment(ns, 'ppo-long', 'cpu-agilerl', { manifest: ppo(200_000), stopGracePeriodSeconds: 30 }));
    await arena.waitExperiment(ns, 'ppo-long', (s) => (s.checkpoints?.length ?? 0) >= 2, 'two AgileRL checkpoints', 240_000);
    await arena.patchExperiment(ns, 'ppo-long', { action: 'Stop' });
    const stopped = await arena.waitExperiment(ns, 'ppo-long', (s) => s.phase === 'Stopped' || s.phase === 'Failed', 'stopped', 90_000);
    if (stopped.status?.phase !== 'Stopped') {
      // What the worker reported, for the failure message: the runtime's durable report buffer on the checkpoint volume.
      const dirs = `${join(cluster.dir, 'checkpoints')} ${join(cluster.dir, 'node')}`;
      console.log(execFileSync('sh', ['-c', `find ${dirs} \\( -name '*.jsonl' -o -name '*.log' \\) -newer ${join(cluster.dir, 'checkpoints')} | grep ppo-long | while read f; do echo "== $f"; tail -c 4000 "$f"; done`], { encoding: 'utf8' }));
    }
    assert.equal(stopped.status?.phase, 'Stopped', `${stopped.status?.reason}: ${stopped.status?.message} ${JSON.stringify(stopped.status?.lastFailure)}`);
    const final = stopped.status!.latestCheckpoint!;
    assert.match(final.location, /-final$/, 'the last checkpoint is the final one written on the stop');
    assert.equal(readMeta(final.location).step, final.step);
    await arena.patchExperiment(ns, 'ppo-long', { action: 'Train' });
    const again = await arena.waitExperiment(ns, 'ppo-long', (s) => s.phase === 'Running' && (s.checkpoints ?? []).some((c) => c.step > final.step), 'a checkpoint past the final one', 240_000);
    const later = (again.status?.checkpoints ?? []).filter((c) => c.step > final.step);
    assert.ok(later.length > 0 && later.every((c) => c.step > final.step), 'the step count carries on from the final checkpoint');
    await arena.patchExperiment(ns, 'ppo-long', { action: 'Stop' });
    await arena.waitExperiment(ns, 'ppo-long', (s) => s.phase === 'Stopped' || s.phase === 'Failed', 'stopped again', 90_000);
  });

  test('killing the worker process leads to a retry from the last checkpoint', async () => {
    await arena.apply(experiment(ns, 'victim', 'cpu', { manifest: manifest(200_000), maxRetries: 2 }));
    const running = await arena.waitExperiment(ns, 'victim', (s) => (s.checkpoints?.length ?? 0) >= 1, 'a checkpoint', 180_000);
    const last = running.status!.latestCheckpoint!.step;
    const pod = (await arena.workerPods(ns, running))[0]!;
    node.kill(`${ns}/${pod.metadata!.name}`, 'SIGKILL');
    const retried = await arena.waitExperiment(ns, 'victim', (s) => s.attempt === 2 && s.phase === 'Running', 'attempt 2 running', 90_000);
    assert.match(retried.status!.lastFailure!.reason, /WorkerFailed|TrainerKilled/);
    const env = (await arena.workerPods(ns, retried)).find((p) => p.metadata?.labels?.['arena.agilerl.com/attempt'] === '2')!.spec!.containers[0]!.env!;
    const resumeStep = Number(env.find((e) => e.name === 'ARENA_RESUME_STEP')?.value);
    assert.ok(resumeStep >= last, `retry resumes from step ${resumeStep} (last seen ${last})`);
    await arena.patchExperiment(ns, 'victim', { action: 'Stop' });
    await arena.waitExperiment(ns, 'victim', (s) => s.phase === 'Stopped' || s.phase === 'Failed', 'stopped', 60_000);
  });

  test('a manifest the platform refuses, stored without a webhook, waits as InvalidManifest naming the field, with no pods', async () => {
    const bad = experiment(ns, 'bad', 'cpu', { manifest: manifest(1000, { evo_steps: 5000 }) });
    await arena.apply(bad);
    const pending = await arena.waitExperiment(ns, 'bad', (s) => s.reason === 'InvalidManifest', 'InvalidManifest');
    assert.equal(pending.status?.phase, 'Pending');
    assert.match(pending.status?.message ?? '', /spec\.manifest\.training: evo_steps \(5000\) must be less than or equal to max_steps \(1000\)/);
    assert.equal(pending.status?.conditions?.find((c) => c.type === 'Valid')?.status, 'False');
    const pods = await arena.core.listNamespacedPod({ namespace: ns, labelSelector: `arena.agilerl.com/experiment-uid=${pending.metadata!.uid}` });
    assert.equal(pods.items.length, 0);
  });

  test('a crash with a known signature fails with its reason and hint', async () => {
    await arena.apply(experiment(ns, 'crashes', 'cpu-broken', { manifest: manifest(1000), maxRetries: 0 }));
    const failed = await arena.waitExperiment(ns, 'crashes', (s) => s.phase === 'Failed', 'Failed', 120_000);
    assert.equal(failed.status?.reason, 'UnsupportedAttentionBackend');
    assert.match(failed.status?.lastFailure?.hint ?? '', /flashinfer/);
  });
});
