import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Manifest } from '../../../operator/api/v1alpha1/manifest.ts';
import { platformValidator } from '../../../operator/api/platform/verdict.ts';
import { dqnConfig, unsupported } from './config.ts';
import { SMALL } from './testdata/manifests.ts';

const demo = JSON.parse(readFileSync(new URL('./demo-manifest.json', import.meta.url), 'utf8')) as Manifest;
const minimal: Manifest = { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } };

after(() => platformValidator().close());

test('reads the manifest sections the trainer uses', () => {
  const c = dqnConfig(demo);
  assert.equal(c.seed, 42);
  assert.equal(c.numEnvs, 8);
  assert.equal(c.popSize, 4);
  assert.equal(c.evoSteps, 500);
  assert.equal(c.maxSteps, 20_000);
  assert.equal(c.learningDelay, 2_000);
  assert.deepEqual([c.epsStart, c.epsEnd, c.epsDecay], [1, 0.05, 0.99]);
  assert.deepEqual(c.hp, { batch_size: 64, lr: 0.001, learn_step: 1, gamma: 0.99, tau: 0.01 });
  assert.equal(c.double, true);
  assert.deepEqual(c.hidden, [32, 32, 32], 'encoder [32], latent 32, head [32]');
  assert.equal(c.hiddenFromManifest, true);
  assert.equal(c.bufferSize, 50_000);
  assert.deepEqual(Object.keys(c.mutation.hpRanges), ['lr', 'batch_size', 'learn_step']);
  assert.deepEqual(c.mutation.hpRanges.lr, { min: 0.0001, max: 0.005, grow_factor: 1.2, shrink_factor: 0.8 });
  assert.equal(c.mutation.probabilities.arch_mut, 0);
  assert.deepEqual(c.selection, { tournamentSize: 2, elitism: true });
  assert.equal(c.checkpointSteps, 500);
});

test("the platform's defaults and aliases", () => {
  const c = dqnConfig({
    algorithm: { name: 'DQN', double: false },
    environment: { name: 'CartPole-v1' },
    training: { population_size: 3, metrics_interval: 1000 },
    selection_strategy: { elitism: false },
    replay_buffer: { memory_size: 1000 },
    network: { encoder_config: { hidden_size: [16] } },
    mutation: { rl_hp_selection: { lr: { min: 1e-4, max: 1e-2 } } },
  });
  assert.equal(c.popSize, 3);
  assert.equal(c.evoSteps, 1000);
  assert.equal(c.selection.elitism, false);
  assert.equal(c.bufferSize, 1000);
  assert.equal(c.double, false);
  assert.deepEqual(c.hidden, [16, 32], 'an inferred encoder has a latent of 32 and no head layers unless given');
  assert.deepEqual(c.mutation.hpRanges, {}, 'training.hpo is off: no hyperparameter mutation');
  assert.equal(c.mutation.probabilities.params_mut, 0.2, 'a mutation section without probabilities has the platform weights');
  assert.deepEqual(c.hp, { batch_size: 64, lr: 1e-4, learn_step: 5, gamma: 0.99, tau: 1e-3 });
  assert.equal(c.maxSteps, 1_000_000);
  assert.equal(dqnConfig({ ...minimal, network: { arch: 'mlp', encoder_config: { hidden_size: [8] }, head_config: { hidden_size: [4] } } }).hidden.join('x'), '8x128x4');

  const plain = dqnConfig(minimal);
  assert.deepEqual(plain.hidden, [64, 64]);
  assert.equal(plain.hiddenFromManifest, false);
  assert.equal(plain.evoSteps, 10_000);
  assert.equal(plain.numEnvs, 32);
  assert.deepEqual(plain.mutation.hpRanges, {});
  assert.equal(plain.mutation.probabilities.no_mut, 1, 'no mutation section: no mutation');
  assert.equal(dqnConfig({ ...minimal, training: { max_steps: 300 } }).evoSteps, 300, 'the evolution cadence is capped at max_steps');
});

// The supervisor hands the trainer the manifest as written; the platform's payload of it states every default.
// Reading either must give the same run, or the trainer would disagree with the platform about what was asked.
test('a manifest as written and the platform payload of it give the same settings', async () => {
  const cases: [string, Manifest][] = [
    ['the demo manifest', demo],
    ['the unit-test manifest', SMALL],
    ['only the required sections', minimal],
    ['an inferred encoder, aliases', { ...minimal, network: { encoder_config: { hidden_size: [16] } }, training: { population_size: 2, metrics_interval: 400, max_steps: 4000 }, replay_buffer: { memory_size: 999 } }],
    ['an empty mutation section', { ...minimal, mutation: {} }],
  ];
  for (const [name, manifest] of cases) {
    const verdict = await platformValidator().verdict(manifest);
    assert.ok(verdict.valid, `${name}: ${JSON.stringify(verdict.errors)}`);
    assert.deepEqual(dqnConfig(verdict.payload as Manifest), dqnConfig(manifest), name);
  }
});

test('runs DQN on CartPole with MLPs only, and says why not', () => {
  assert.equal(unsupported(demo), undefined);
  assert.equal(unsupported(SMALL), undefined);
  assert.equal(unsupported({ ...demo, environment: { name: 'cartpole' } }), undefined);
  assert.match(unsupported({ ...demo, algorithm: { name: 'PPO' } })!, /runs DQN, not PPO/);
  assert.match(unsupported({ ...demo, environment: { name: 'LunarLander-v3' } })!, /CartPole-v1, not LunarLander-v3/);
  assert.match(unsupported({ ...demo, environment: { name: 'CartPole-v1', env_type: 'offline' } })!, /gym environment, not env_type offline/);
  assert.match(unsupported({ ...demo, network: { arch: 'lstm', encoder_config: { hidden_state_size: 32 } } })!, /MLP encoder \(arch mlp\), not arch lstm/);
  assert.match(unsupported({ ...demo, network: { ...demo.network, head_config: { hidden_size: [32], activation: 'Tanh' } } })!, /ReLU, not network\.head_config\.activation Tanh/);
  assert.match(unsupported({ ...demo, tournament_selection: { strategy: 'multi_frequency' } })!, /by tournament, not by multi_frequency/);
  assert.match(unsupported({ ...demo, replay_buffer: { n_step_buffer: true } })!, /uniformly/);
});
