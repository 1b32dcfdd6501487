import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Manifest } from '../../../operator/api/v1alpha1/manifest.ts';
import { dqnConfig, unsupported } from './config.ts';

const demo = JSON.parse(readFileSync(new URL('./demo-manifest.json', import.meta.url), 'utf8')) as Manifest;

test('reads the manifest sections the trainer uses', () => {
  const c = dqnConfig(demo);
  assert.equal(c.seed, 42);
  assert.equal(c.numEnvs, 8);
  assert.equal(c.popSize, 4);
  assert.equal(c.evoSteps, 500);
  assert.equal(c.maxSteps, 20_000);
  assert.equal(c.learningDelay, 2_000);
  assert.deepEqual(c.hp, { batch_size: 64, lr: 0.001, learn_step: 1, gamma: 0.99, tau: 0.01 });
  assert.deepEqual(c.hidden, [32, 32]);
  assert.equal(c.hiddenFromManifest, true);
  assert.equal(c.bufferSize, 50_000);
  assert.deepEqual(Object.keys(c.mutation.hpRanges), ['lr', 'batch_size', 'learn_step']);
  assert.deepEqual(c.mutation.hpRanges.lr, { min: 0.0001, max: 0.005, grow_factor: 1.2, shrink_factor: 0.8 });
  assert.equal(c.mutation.probabilities.arch_mut, 0);
  assert.deepEqual(c.selection, { tournamentSize: 2, elitism: true });
  assert.equal(c.checkpointSteps, 500);
});

test("AgileRL's defaults and the alias keys", () => {
  const c = dqnConfig({
    algorithm: { name: 'DQN' },
    environment: { name: 'CartPole-v1' },
    training: { population_size: 3, metrics_interval: 1000 },
    tournament_selection: { elitism: false },
    replay_buffer: { memory_size: 1000 },
    network: { encoder_config: { hidden_size: [16] } },
  } as Manifest);
  assert.equal(c.popSize, 3);
  assert.equal(c.evoSteps, 1000);
  assert.equal(c.selection.elitism, false);
  assert.equal(c.bufferSize, 1000);
  assert.deepEqual(c.hidden, [16]);
  assert.deepEqual(c.hp, { batch_size: 128, lr: 1e-3, learn_step: 5, gamma: 0.99, tau: 1e-3 });
  assert.equal(c.maxSteps, 1_000_000);
  const plain = dqnConfig({ algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } });
  assert.deepEqual(plain.hidden, [64, 64]);
  assert.equal(plain.hiddenFromManifest, false);
  assert.deepEqual(Object.keys(plain.mutation.hpRanges), ['lr', 'batch_size', 'learn_step']);
});

test('runs DQN on CartPole only', () => {
  assert.equal(unsupported(demo), undefined);
  assert.equal(unsupported({ ...demo, environment: { name: 'cartpole' } }), undefined);
  assert.match(unsupported({ ...demo, algorithm: { name: 'PPO' } })!, /runs DQN, not PPO/);
  assert.match(unsupported({ ...demo, environment: { name: 'LunarLander-v3' } })!, /CartPole-v1, not LunarLander-v3/);
});
