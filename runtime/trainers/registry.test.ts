import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Manifest } from '../../operator/api/v1alpha1/manifest.ts';
import { resolveTrainer } from './registry.ts';
import { sftAlpaca } from '../../e2e/support/manifests.ts';

const cartpole: Manifest = { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } };

test('picks the reference trainer, a configured command, or says what is missing', () => {
  const builtIn = resolveTrainer(cartpole, {});
  assert.ok(builtIn.ok);
  assert.equal(builtIn.trainer.name, 'dqn-cartpole');
  assert.equal(builtIn.trainer.command, process.execPath);
  assert.match(builtIn.trainer.args.at(-1)!, /dqn-cartpole\/main\.ts$/);

  const custom = resolveTrainer({ ...cartpole, algorithm: { name: 'GRPO' } }, { ARENA_TRAINER_COMMAND: '["python","-m","arena_trainer"]' });
  assert.deepEqual(custom, { ok: true, trainer: { name: 'python', command: 'python', args: ['-m', 'arena_trainer'] } });

  const none = resolveTrainer({ algorithm: { name: 'PPO' }, environment: { name: 'LunarLander-v3' } }, {});
  assert.equal(none.ok, false);
  if (!none.ok) assert.match(none.message, /no trainer for PPO on LunarLander-v3: the reference trainer runs DQN, not PPO\.$/);

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
});
