// Real training end to end: the operator, a local node that runs worker pods as processes, and the runtime with
// AgileRL's own manifest trainer (runtime/trainers/agilerl). Nothing here is simulated except that the GPU-less
// node is this machine; every checkpoint is checked with AgileRL itself, outside the cluster.
import { execFileSync } from 'node:child_process';
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import type { LocalNode } from './node/local-node.ts';
import { runtimeImage, startLocalOperator, startRuntimeNode } from './support/runtime-node.ts';
import { agilerlActions, readCheckpointMetadata } from './support/agilerl.ts';
import { Arena, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { quickDqn } from './support/manifests.ts';
import type { RunningOperator } from '../operator/operator.ts';
import type { Manifest } from '../operator/api/v1alpha1/manifest.ts';
import { ndarray } from '../runtime/npy/npy.ts';

const dqn = quickDqn;
const ppo = (maxSteps: number): Manifest => ({
  algorithm: { name: 'PPO', batch_size: 64, lr: 0.001, learn_step: 128, gamma: 0.99 },
  environment: { name: 'CartPole-v1', num_envs: 4 },
  training: { max_steps: maxSteps, evo_steps: 512, pop_size: 2, eval_loop: 1 },
  network: { arch: 'mlp', latent_dim: 32, encoder_config: { hidden_size: [32] }, head_config: { hidden_size: [32] } },
});
const td3 = (maxSteps: number): Manifest => ({
  algorithm: { name: 'TD3', batch_size: 64, lr_actor: 0.001, lr_critic: 0.001, learn_step: 1, gamma: 0.99, tau: 0.005 },
  environment: { name: 'Pendulum-v1', num_envs: 4 },
  training: { max_steps: maxSteps, evo_steps: 500, pop_size: 2, eval_loop: 1, learning_delay: 200 },
  network: { arch: 'mlp', latent_dim: 32, encoder_config: { hidden_size: [32] }, head_config: { hidden_size: [32] } },
  replay_buffer: { max_size: 10000 },
});
const cartpoleObs = ndarray('f4', [2, 4], [0.01, -0.02, 0.03, 0.01, -0.05, 0.4, -0.1, -0.6]);

describe('training for real on a local node', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let node: LocalNode;
  let op: RunningOperator;
  let checkpoints: string;
  const ns = 'train';
  /** The folder on this machine behind a checkpoint location the status gives (/checkpoints/...). */
  const folder = (location: string) => {
    assert.ok(location.startsWith('/checkpoints/'), location);
    return join(checkpoints, location.slice('/checkpoints/'.length));
  };
  const finished = (name: string, what: string, timeoutMs: number) =>
    arena.waitExperiment(ns, name, (s) => s.phase === 'Succeeded' || s.phase === 'Failed', what, timeoutMs);
  const stop = async (name: string) => {
    await arena.patchExperiment(ns, name, { action: 'Stop' });
    const stopped = await arena.waitExperiment(ns, name, (s) => s.phase === 'Stopped' || s.phase === 'Failed', 'stopped', 90_000);
    if (stopped.status?.phase !== 'Stopped') {
      // What the worker reported, for the failure message: the runtime's durable report buffer and the pod logs.
      const dirs = `${checkpoints} ${join(cluster.dir, 'node')}`;
      console.log(execFileSync('sh', ['-c', `find ${dirs} \\( -name '*.jsonl' -o -name '*.log' \\) | grep ${name} | while read f; do echo "== $f"; tail -c 4000 "$f"; done`], { encoding: 'utf8' }));
    }
    assert.equal(stopped.status?.phase, 'Stopped', `${stopped.status?.reason}: ${stopped.status?.message} ${JSON.stringify(stopped.status?.lastFailure)}`);
    return stopped;
  };

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
      imageMap: [
        // An image whose trainer crashes the way SGLang does when FlashAttention 3 meets an unsupported GPU.
        runtimeImage('registry.local/arena-runtime-broken', {
          ARENA_TRAINER_COMMAND: JSON.stringify([
            process.execPath,
            '-e',
            'console.error("loading model..."); console.error("RuntimeError: FlashAttention v3 Backend requires SM>=80 and SM<=90. Please use `--attention-backend flashinfer`."); process.exit(1)',
          ]),
        }),
        runtimeImage('registry.local/arena-runtime'),
      ],
    });
    op = await startLocalOperator(kc, {
      progressIntervalMs: 1000,
    });
    const storage = { mountPath: '/checkpoints', hostPath: { path: checkpoints } };
    await arena.apply(trainingCluster('local', { setupBundle: { version: '1.0.0', images: { runtime: 'registry.local/arena-runtime:1.0.0' } }, checkpointStorage: storage }));
    await arena.apply(trainingCluster('broken', { setupBundle: { version: '1.0.0', images: { runtime: 'registry.local/arena-runtime-broken:1.0.0' } }, checkpointStorage: storage }));
    await arena.apply(resourceClass('cpu', 'local', { nodes: 1, worker: { cpu: '1', memory: '2Gi', gpus: 0 }, nodeSelector: { pool: 'local' } }));
    await arena.apply(resourceClass('cpu-broken', 'broken', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 0 }, nodeSelector: { pool: 'local' } }));
    await arena.namespace(ns);
  });
  after(async () => {
    await op?.stop();
    await node?.stop();
    await cluster?.stop();
  });

  test('a DQN CartPole experiment trains with AgileRL to Succeeded, with AgileRL checkpoints whose scores rise', async () => {
    await arena.apply(experiment(ns, 'cartpole', 'cpu', { manifest: dqn(8000), stopGracePeriodSeconds: 30 }));
    const done = await finished('cartpole', 'training to finish', 300_000);
    assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.lastFailure));
    const ckpts = done.status?.checkpoints ?? [];
    assert.ok(ckpts.length >= 5, `a checkpoint per evolution step (${ckpts.length})`);
    assert.deepEqual(ckpts.map((c) => c.step), [...ckpts.map((c) => c.step)].sort((a, b) => a - b), 'steps rise');
    // The training score (the mean return of the training episodes) starts where exploration is nearly random and
    // rises as epsilon decays and the agents learn. A single evaluation round is too noisy to order checkpoints by:
    // the first one, of a network that had barely learned, once scored 236.
    // A checkpoint taken before any training episode ended since the last one carries no training score.
    const training = ckpts.map((c) => c.trainingScore).filter((t): t is number => typeof t === 'number');
    const scores = ckpts.map((c) => (typeof c.trainingScore === 'number' ? c.trainingScore.toFixed(1) : '—')).join(' → ');
    assert.ok(training.length >= 4, `most checkpoints carry a training score: ${scores}`);
    const later = Math.max(...training.slice(1));
    assert.ok(later > 2.5 * training[0]! && later > 50, `the training score rises: ${scores}`);
    // A random CartPole policy lasts about 22 steps.
    const best = done.status!.bestCheckpoint!.evaluationScore;
    assert.ok(best > 60, `the best evaluation is far above a random policy's: ${best}`);
    assert.equal(done.status?.progress?.percent, 100);
    assert.equal(done.status?.progress?.step, 8000);
    // The checkpoint is AgileRL's own: the whole population in its files, loadable by AgileRL outside the cluster.
    const latest = ckpts.at(-1)!;
    const meta = readCheckpointMetadata(folder(latest.location));
    assert.equal(meta.step, latest.step);
    assert.equal(meta.algorithm, 'DQN');
    assert.equal(meta.agents.length, 2, 'the whole population');
    assert.ok(meta.agents.every((a) => a.file.endsWith('.pt')));
    const actions = await agilerlActions(folder(latest.location), cartpoleObs);
    assert.deepEqual(actions.shape, [2]);
    const logs = await cluster.kubectlAsync(['logs', '-n', ns, (await arena.workerPods(ns, done))[0]!.metadata!.name!]);
    assert.match(logs, /arena-agilerl: step \d+\/8000/, 'the trainer output is in the pod log');
  });

  test('Stop mid-run ends Stopped with a final checkpoint that AgileRL loads; resume from the best checkpoint starts a new experiment at its step', async () => {
    await arena.apply(experiment(ns, 'long', 'cpu', { manifest: dqn(200_000), stopGracePeriodSeconds: 30 }));
    await arena.waitExperiment(ns, 'long', (s) => (s.checkpoints?.length ?? 0) >= 2, 'two checkpoints', 240_000);
    const stopAsked = Date.now();
    const stopped = await stop('long');
    console.log(`# stop-to-Stopped: ${((Date.now() - stopAsked) / 1000).toFixed(1)}s`);
    const final = stopped.status!.latestCheckpoint!;
    assert.match(final.location, /-final$/, 'the last checkpoint is the final one written on the stop');
    const meta = readCheckpointMetadata(folder(final.location));
    assert.equal(meta.step, final.step);
    assert.equal(meta.final, true);
    assert.deepEqual((await agilerlActions(folder(final.location), cartpoleObs)).shape, [2], 'AgileRL loads the final checkpoint');

    const best = stopped.status!.bestCheckpoint!;
    await arena.apply(experiment(ns, 'long-resumed', 'cpu', { manifest: dqn(best.step + 2000), resumeFrom: { experiment: 'long', checkpoint: 'best' } }));
    const resumed = await finished('long-resumed', 'the resumed run to finish', 300_000);
    assert.equal(resumed.status?.phase, 'Succeeded', JSON.stringify(resumed.status?.lastFailure));
    assert.equal(resumed.status?.resumedFrom?.step, best.step);
    const steps = (resumed.status?.checkpoints ?? []).map((c) => c.step);
    assert.ok(steps.length > 0 && steps.every((s) => s > best.step), `the new experiment continues past step ${best.step} (${steps.join(', ')})`);
    assert.equal(resumed.status?.progress?.step, best.step + 2000);
    assert.ok(final.step >= best.step);
  });

  test('PPO on CartPole trains to Succeeded; a Stop mid-run writes a final checkpoint that Train again continues from', async () => {
    await arena.apply(experiment(ns, 'ppo', 'cpu', { manifest: ppo(2048), stopGracePeriodSeconds: 30 }));
    const done = await finished('ppo', 'PPO training to finish', 300_000);
    assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.lastFailure));
    const ckpts = done.status?.checkpoints ?? [];
    assert.ok(ckpts.length >= 3, `a checkpoint per evolution step (${ckpts.length})`);
    assert.ok(ckpts.every((c) => typeof c.evaluationScore === 'number' && c.sizeBytes > 0));
    const meta = readCheckpointMetadata(folder(ckpts.at(-1)!.location));
    assert.equal(meta.step, ckpts.at(-1)!.step);
    assert.equal(meta.algorithm, 'PPO');
    assert.equal(done.status?.progress?.percent, 100);

    // Stop mid-run, then train again: the run continues from the final checkpoint's step.
    await arena.apply(experiment(ns, 'ppo-long', 'cpu', { manifest: ppo(200_000), stopGracePeriodSeconds: 30 }));
    await arena.waitExperiment(ns, 'ppo-long', (s) => (s.checkpoints?.length ?? 0) >= 2, 'two AgileRL checkpoints', 240_000);
    const stopped = await stop('ppo-long');
    const final = stopped.status!.latestCheckpoint!;
    assert.match(final.location, /-final$/, 'the last checkpoint is the final one written on the stop');
    assert.equal(readCheckpointMetadata(folder(final.location)).step, final.step);
    await arena.patchExperiment(ns, 'ppo-long', { action: 'Train' });
    const again = await arena.waitExperiment(ns, 'ppo-long', (s) => s.phase === 'Running' && (s.checkpoints ?? []).some((c) => c.step > final.step), 'a checkpoint past the final one', 240_000);
    const later = (again.status?.checkpoints ?? []).filter((c) => c.step > final.step);
    assert.ok(later.length > 0, 'the step count carries on from the final checkpoint');
    await stop('ppo-long');
  });

  test('TD3 on a continuous-action environment (Pendulum-v1) trains to Succeeded', async () => {
    await arena.apply(experiment(ns, 'pendulum', 'cpu', { manifest: td3(1500), stopGracePeriodSeconds: 30 }));
    const done = await finished('pendulum', 'TD3 training to finish', 300_000);
    assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.lastFailure));
    const ckpts = done.status?.checkpoints ?? [];
    assert.ok(ckpts.length >= 3, `a checkpoint per evolution step (${ckpts.length})`);
    // Pendulum's returns are negative; they are reported as they are.
    assert.ok(ckpts.every((c) => typeof c.evaluationScore === 'number' && c.evaluationScore < 0), JSON.stringify(ckpts.map((c) => c.evaluationScore)));
    const latest = ckpts.at(-1)!;
    assert.equal(readCheckpointMetadata(folder(latest.location)).algorithm, 'TD3');
    const actions = await agilerlActions(folder(latest.location), ndarray('f4', [2, 3], [1, 0, 0, 0, 1, -1]));
    assert.deepEqual(actions.shape, [2, 1], 'one torque per observation');
    assert.ok([...actions.data].every((a) => Math.abs(Number(a)) <= 2), 'within the action space');
  });

  test('killing the worker process leads to a retry from the last checkpoint', async () => {
    await arena.apply(experiment(ns, 'victim', 'cpu', { manifest: dqn(200_000), maxRetries: 2 }));
    const running = await arena.waitExperiment(ns, 'victim', (s) => (s.checkpoints?.length ?? 0) >= 1, 'a checkpoint', 240_000);
    const last = running.status!.latestCheckpoint!.step;
    const pod = (await arena.workerPods(ns, running))[0]!;
    node.kill(`${ns}/${pod.metadata!.name}`, 'SIGKILL');
    const retried = await arena.waitExperiment(ns, 'victim', (s) => s.attempt === 2 && s.phase === 'Running', 'attempt 2 running', 90_000);
    assert.match(retried.status!.lastFailure!.reason, /WorkerFailed|TrainerKilled/);
    const env = (await arena.workerPods(ns, retried)).find((p) => p.metadata?.labels?.['arena.agilerl.com/attempt'] === '2')!.spec!.containers[0]!.env!;
    const resumeStep = Number(env.find((e) => e.name === 'ARENA_RESUME_STEP')?.value);
    assert.ok(resumeStep >= last, `retry resumes from step ${resumeStep} (last seen ${last})`);
    const resumed = await arena.waitExperiment(ns, 'victim', (s) => (s.checkpoints ?? []).some((c) => c.step > resumeStep), 'a checkpoint past the resumed step', 240_000);
    assert.equal(resumed.status?.attempt, 2);
    // Stopped moments after the retry's first checkpoint, with the fixtures' 5 s grace: under load the trainer once
    // missed its final checkpoint here (its runtime had 1 s of the 5) and the run ended Failed. It ends Stopped.
    await stop('victim');
  });

  test('a manifest AgileRL cannot build fails with AgileRL\'s reason, naming the field to fix, without retries', async () => {
    await arena.apply(experiment(ns, 'no-such-env', 'cpu', { manifest: { ...dqn(2000), environment: { name: 'NoSuchEnv-v0', num_envs: 2 } }, maxRetries: 2 }));
    const failed = await finished('no-such-env', 'Failed', 180_000);
    assert.equal(failed.status?.phase, 'Failed');
    assert.equal(failed.status?.reason, 'EnvironmentNotFound', JSON.stringify(failed.status?.lastFailure));
    assert.match(failed.status?.message ?? '', /NoSuchEnv/);
    assert.match(failed.status?.lastFailure?.hint ?? '', /environment\.name/);
    assert.equal(failed.status?.attempt, 1, 'a manifest error is not retried');
  });

  test('a manifest the platform refuses, stored without a webhook, waits as InvalidManifest naming the field, with no pods', async () => {
    const bad = experiment(ns, 'bad', 'cpu', { manifest: dqn(1000, { evo_steps: 5000 }) });
    await arena.apply(bad);
    const pending = await arena.waitExperiment(ns, 'bad', (s) => s.reason === 'InvalidManifest', 'InvalidManifest');
    assert.equal(pending.status?.phase, 'Pending');
    assert.match(pending.status?.message ?? '', /spec\.manifest\.training: evo_steps \(5000\) must be less than or equal to max_steps \(1000\)/);
    assert.equal(pending.status?.conditions?.find((c) => c.type === 'Valid')?.status, 'False');
    const pods = await arena.core.listNamespacedPod({ namespace: ns, labelSelector: `arena.agilerl.com/experiment-uid=${pending.metadata!.uid}` });
    assert.equal(pods.items.length, 0);
  });

  test('a crash with a known signature fails with its reason and hint', async () => {
    await arena.apply(experiment(ns, 'crashes', 'cpu-broken', { manifest: dqn(1000), maxRetries: 0 }));
    const failed = await arena.waitExperiment(ns, 'crashes', (s) => s.phase === 'Failed', 'Failed', 120_000);
    assert.equal(failed.status?.reason, 'UnsupportedAttentionBackend');
    assert.match(failed.status?.lastFailure?.hint ?? '', /flashinfer/);
  });
});
