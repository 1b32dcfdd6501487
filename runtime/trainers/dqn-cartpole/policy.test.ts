import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CartPole } from './cartpole.ts';
import { checkpointFile, encodeWeights, writeCheckpoint } from './checkpoint.ts';
import { dqnConfig } from './config.ts';
import { loadPolicy } from './policy.ts';
import { Rng } from './rng.ts';
import { trainDqn } from './trainer.ts';
import { SMALL } from './testdata/manifests.ts';

const dir = mkdtempSync(join(tmpdir(), 'dqn-policy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('act is the argmax of the Q-values; batches and bad shapes', () => {
  // One linear layer: Q = W x + b with W = [[1, 0, 0, 0], [0, 0, 1, 0]], so action 1 wins when theta > x.
  const weights = Float32Array.from([1, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
  const path = writeCheckpoint(checkpointFile(dir, 'linear', 1), {
    format: 'arena.dqn-cartpole/v1',
    step: 1,
    createdAt: new Date().toISOString(),
    environment: 'CartPole-v1',
    seed: 1,
    hyperparameters: { batch_size: 1, lr: 1, learn_step: 1, gamma: 1, tau: 1 },
    network: { sizes: [4, 2], activation: 'relu', weights: encodeWeights(weights) },
  }).path;
  const policy = loadPolicy(path);
  assert.equal(policy.observationSize, 4);
  assert.equal(policy.actions, 2);
  assert.equal(policy.act([0.5, 0, 0.1, 0]), 0);
  assert.equal(policy.act([0.1, 0, 0.5, 0]), 1);
  assert.deepEqual([...policy.qValues([0.1, 0, 0.5, 0])].map((q) => Math.round(q * 10) / 10), [0.1, 0.5]);
  assert.deepEqual([...policy.actBatch([0.5, 0, 0.1, 0, 0.1, 0, 0.5, 0], 2)], [0, 1]);
  assert.throws(() => policy.act([1, 2, 3]), /expected 1 observation\(s\) of 4 values, got 3/);
  assert.equal('weights' in policy.checkpoint.network, false);
});

test('the greedy policy of a trained checkpoint balances the pole', async () => {
  const result = await trainDqn(dqnConfig(SMALL), { checkpointDir: dir, run: 'trained', emit: () => undefined, stopRequested: () => false });
  const best = result.checkpoints.reduce((a, b) => (b.evaluationScore > a.evaluationScore ? b : a));
  const policy = loadPolicy(best.path);
  const rng = new Rng(99);
  let total = 0;
  const episodes = 10;
  for (let e = 0; e < episodes; e++) {
    const env = new CartPole(rng);
    const obs = new Float32Array(4);
    let done = false;
    while (!done) {
      env.observe(obs);
      const r = env.step(policy.act(obs));
      total += r.reward;
      done = r.terminated || r.truncated;
    }
  }
  assert.ok(best.evaluationScore > 150, `best evaluation ${best.evaluationScore}`);
  assert.ok(total / episodes > 100, `mean return of the loaded policy ${total / episodes}`);
});
