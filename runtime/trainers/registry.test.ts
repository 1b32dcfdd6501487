import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LLM_ALGORITHMS, type Manifest } from '../../operator/api/v1alpha1/manifest.ts';
import { resolvePython } from '../../operator/api/platform/verdict.ts';
import { readFileSync } from 'node:fs';
import { AGILERL_VERSION, resolveTrainer, torchrunArgs } from './registry.ts';
import { sftAlpaca } from '../../e2e/support/manifests.ts';

const cartpole: Manifest = { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } };

test('classic RL on Gymnasium trains with AgileRL, run by the project\'s Python', () => {
  const cases: [Manifest['algorithm']['name'], string][] = [
    ['DQN', 'CartPole-v1'],
    ['DQN', 'LunarLander-v3'],
    ['Rainbow DQN', 'LunarLander-v3'],
    ['PPO', 'LunarLander-v3'],
    ['Recurrent PPO', 'CartPole-v1'],
    ['DDPG', 'LunarLanderContinuous-v3'],
    ['TD3', 'Pendulum-v1'],
  ];
  for (const [name, env] of cases) {
    const r = resolveTrainer({ algorithm: { name }, environment: { name: env } }, {});
    assert.ok(r.ok, `${name} on ${env}`);
    assert.equal(r.trainer.name, 'agilerl');
    assert.equal(r.trainer.command, resolvePython());
    assert.deepEqual(r.trainer.args, ['-m', 'arena_agilerl']);
    assert.match(r.trainer.env!.PYTHONPATH!, /runtime\/trainers\/agilerl\/$/);
  }
  const python = resolveTrainer(cartpole, { ARENA_PYTHON: resolvePython(), PYTHONPATH: '/opt/extra' });
  assert.ok(python.ok);
  assert.match(python.trainer.env!.PYTHONPATH!, /agilerl\/:\/opt\/extra$/, 'the image\'s own PYTHONPATH is kept after ours');
});

test('multi-agent, bandit and offline manifests train with the same AgileRL trainer', () => {
  const cases: Manifest[] = [
    { algorithm: { name: 'MADDPG' }, environment: { name: 'mpe2.simple_spread_v3' } },
    { algorithm: { name: 'MATD3' }, environment: { name: 'mpe2.simple_adversary_v3' } },
    { algorithm: { name: 'IPPO' }, environment: { name: 'mpe2.simple_speaker_listener_v4' } },
    { algorithm: { name: 'NeuralUCB' }, environment: { env_type: 'bandit', name: 'iris', features: 'f.csv', targets: 't.csv' } },
    // The platform reads a bandit section without env_type as a bandit one.
    { algorithm: { name: 'NeuralTS' }, environment: { name: 'iris', features: 'f.csv', targets: 't.csv' } },
    { algorithm: { name: 'CQN' }, environment: { env_type: 'offline', name: 'CartPole-v1', dataset_path: '/d/c.h5' } },
  ];
  for (const m of cases) {
    const r = resolveTrainer(m, {});
    assert.ok(r.ok, `${m.algorithm.name}: ${r.ok ? '' : r.message}`);
    assert.deepEqual(r.trainer.args, ['-m', 'arena_agilerl']);
  }
});

test('a configured command wins; what no trainer covers is refused with the reason', () => {
  const custom = resolveTrainer({ ...cartpole, algorithm: { name: 'GRPO' } }, { ARENA_TRAINER_COMMAND: '["python","-m","arena_trainer"]' });
  assert.deepEqual(custom, { ok: true, trainer: { name: 'python', command: 'python', args: ['-m', 'arena_trainer'] } });

  const unknown = resolveTrainer({ algorithm: { name: 'NoSuchAlgorithm' as 'DQN' }, environment: { name: 'CartPole-v1' } }, {}); // a name the platform would refuse first
  assert.equal(unknown.ok, false);
  if (!unknown.ok) assert.match(unknown.message, /no trainer for NoSuchAlgorithm on CartPole-v1: the AgileRL trainer here runs DQN, .*MADDPG, .*CQN and the LLM algorithms of the platform's registry; NoSuchAlgorithm is none of them\.$/);
  const offlineOnGym = resolveTrainer({ algorithm: { name: 'CQN' }, environment: { name: 'CartPole-v1' } }, {});
  assert.equal(offlineOnGym.ok, false);
  if (!offlineOnGym.ok) assert.match(offlineOnGym.message, /runs CQN on env_type offline, not gym/);
  const bandit = resolveTrainer({ algorithm: { name: 'DQN' }, environment: { name: 'iris', env_type: 'bandit' } }, {});
  if (!bandit.ok) assert.match(bandit.message, /runs Gymnasium environments, not env_type bandit/);
  assert.equal(bandit.ok, false);

  // The platform's LLM algorithms go to AgileRL's LLM trainers: one process, or torchrun for several GPUs or workers.
  for (const name of LLM_ALGORITHMS) {
    const one = resolveTrainer({ ...sftAlpaca(), algorithm: { name } }, {});
    assert.ok(one.ok && one.trainer.name === 'agilerl-llm', name);
    assert.deepEqual(one.trainer.args, ['-m', 'arena_agilerl.llm']);
  }
  const gang = resolveTrainer(sftAlpaca(), { NNODES: '2', NODE_RANK: '1', NPROC_PER_NODE: '4', MASTER_ADDR: 'w0.exp-r1.ml.svc', MASTER_PORT: '29400' });
  assert.ok(gang.ok);
  assert.deepEqual(gang.trainer.args, [
    '-m',
    'torch.distributed.run',
    '--nnodes=2',
    '--node-rank=1',
    '--nproc-per-node=4',
    '--master-addr=w0.exp-r1.ml.svc',
    '--master-port=29400',
    '-m',
    'arena_agilerl.llm',
  ]);
  assert.equal(torchrunArgs({ NNODES: '1', NPROC_PER_NODE: '1' }), undefined);
  assert.ok(torchrunArgs({ NNODES: '1', NPROC_PER_NODE: '2' }));

  for (const bad of ['python -m x', '[]', '[1]', '{"cmd":"x"}']) {
    const r = resolveTrainer(cartpole, { ARENA_TRAINER_COMMAND: bad });
    assert.equal(r.ok, false, bad);
  }

  const noPython = resolveTrainer(cartpole, { ARENA_PYTHON: '/nonexistent/python' });
  assert.equal(noPython.ok, false);
  if (!noPython.ok) assert.match(noPython.message, /agilerl-arena/);
});

test('a gang of several workers is refused for AgileRL classic RL with the reason and a hint; one worker trains', () => {
  const gang = resolveTrainer(cartpole, { WORLD_SIZE: '2' });
  assert.equal(gang.ok, false);
  if (!gang.ok) {
    assert.match(gang.message, /AgileRL 2\.58\.0 trains DQN in one process: .*accelerate_repro\.py.*this gang has 2 workers\.$/);
    assert.match(gang.hint ?? '', /nodes: 1/);
  }
  assert.equal(resolveTrainer(cartpole, { WORLD_SIZE: '1' }).ok, true);
  // An image's own trainer decides for itself.
  assert.equal(resolveTrainer(cartpole, { WORLD_SIZE: '4', ARENA_TRAINER_COMMAND: '["python","-m","mine"]' }).ok, true);
});

test('the AgileRL version the messages name is the pinned one', () => {
  const lock = readFileSync(new URL('../../python/requirements.lock', import.meta.url), 'utf8');
  assert.equal(/^agilerl==(\S+)/m.exec(lock)?.[1], AGILERL_VERSION);
});
