import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Manifest } from '../../operator/api/v1alpha1/manifest.ts';
import { resolvePython } from '../../operator/api/platform/verdict.ts';
import { resolveTrainer } from './registry.ts';
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

test('a configured command wins; what no trainer covers is refused with the reason', () => {
  const custom = resolveTrainer({ ...cartpole, algorithm: { name: 'GRPO' } }, { ARENA_TRAINER_COMMAND: '["python","-m","arena_trainer"]' });
  assert.deepEqual(custom, { ok: true, trainer: { name: 'python', command: 'python', args: ['-m', 'arena_trainer'] } });

  const multi = resolveTrainer({ algorithm: { name: 'MADDPG' }, environment: { name: 'simple_spread_v3' } }, {});
  assert.equal(multi.ok, false);
  if (!multi.ok) assert.match(multi.message, /no trainer for MADDPG on simple_spread_v3: the AgileRL trainer here runs DQN, .*multi-agent, bandit, offline and LLM training are not in this image yet\.$/);
  const bandit = resolveTrainer({ algorithm: { name: 'DQN' }, environment: { name: 'iris', env_type: 'bandit' } }, {});
  if (!bandit.ok) assert.match(bandit.message, /runs Gymnasium environments, not env_type bandit/);
  assert.equal(bandit.ok, false);

  // An LLM dataset environment has no name; the refusal names the dataset.
  const sft = resolveTrainer(sftAlpaca(), {});
  assert.equal(sft.ok, false);
  if (!sft.ok) assert.match(sft.message, /no trainer for SFT on alpaca/);
  const unnamed = resolveTrainer({ algorithm: { name: 'SFT', pretrained_model_name_or_path: 'm' }, environment: { dataset: 'tatsu-lab/alpaca' } }, {});
  if (!unnamed.ok) assert.match(unnamed.message, /no trainer for SFT on tatsu-lab\/alpaca/);
  assert.equal(unnamed.ok, false);

  for (const bad of ['python -m x', '[]', '[1]', '{"cmd":"x"}']) {
    const r = resolveTrainer(cartpole, { ARENA_TRAINER_COMMAND: bad });
    assert.equal(r.ok, false, bad);
  }

  const noPython = resolveTrainer(cartpole, { ARENA_PYTHON: '/nonexistent/python' });
  assert.equal(noPython.ok, false);
  if (!noPython.ok) assert.match(noPython.message, /agilerl-arena/);
});
