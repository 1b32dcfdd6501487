import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CartPole, MAX_EPISODE_STEPS } from './cartpole.ts';
import { Rng } from './rng.ts';

// Gymnasium's CartPoleEnv.step equations (Euler), evaluated in double precision by an independent Python
// transcription from the state [0.01, -0.02, 0.03, 0.04] and the actions below.
const ACTIONS = [1, 0, 1, 1, 0, 0, 1];
const EXPECTED = [
  [0.009600000000000001, 0.17467919574755525, 0.030799999999999998, -0.2430687179600081],
  [0.013093583914951107, -0.020868848948191993, 0.025938625640799837, 0.0591679999394166],
  [0.012676206935987267, 0.1738717748734813, 0.02712198563958817, -0.22521957255967326],
  [0.016153642433456895, 0.36859581150093934, 0.022617594188394704, -0.509225318312219],
  [0.023525558663475683, 0.17316263692575581, 0.012433087822150324, -0.20950152868114708],
  [0.0269888114019908, -0.02213486334940068, 0.008243057248527383, 0.0870773136085351],
  [0.026546114135002786, 0.17286796720471084, 0.009984603520698085, -0.20299356335440677],
];

test('dynamics match Gymnasium CartPole-v1 step for step', () => {
  const env = new CartPole(new Rng(1));
  env.state.set([0.01, -0.02, 0.03, 0.04]);
  ACTIONS.forEach((a, i) => {
    const r = env.step(a);
    assert.deepEqual(r, { reward: 1, terminated: false, truncated: false });
    EXPECTED[i]!.forEach((v, k) => assert.ok(Math.abs(env.state[k]! - v) < 1e-12, `step ${i} state[${k}] ${env.state[k]} vs ${v}`));
  });
});

test('terminates past 12 degrees or 2.4 units, truncates at 500 steps', () => {
  const env = new CartPole(new Rng(2));
  env.state.set([0, 0, (12 * 2 * Math.PI) / 360 - 1e-6, 1]);
  assert.deepEqual(env.step(1), { reward: 1, terminated: true, truncated: false }, 'the falling step still earns its reward');
  env.reset();
  env.state.set([2.39, 1, 0, 0]);
  assert.equal(env.step(1).terminated, true);
  env.reset();
  let r = env.step(0);
  for (let i = 1; i < MAX_EPISODE_STEPS && !r.terminated; i++) {
    env.state.set([0, 0, 0, 0]); // hold the pole up to reach the time limit
    r = env.step(i % 2);
  }
  assert.equal(env.steps, MAX_EPISODE_STEPS);
  assert.deepEqual(r, { reward: 1, terminated: false, truncated: true });
});

test('reset draws each state variable from U(-0.05, 0.05), reproducibly', () => {
  const a = new CartPole(new Rng(3));
  const b = new CartPole(new Rng(3));
  assert.deepEqual([...a.state], [...b.state]);
  for (let i = 0; i < 100; i++) {
    a.reset();
    for (const v of a.state) assert.ok(v >= -0.05 && v < 0.05);
  }
  const obs = new Float32Array(8);
  a.observe(obs, 4);
  assert.deepEqual([...obs.subarray(4)], [...Float32Array.from(a.state)]);
});
