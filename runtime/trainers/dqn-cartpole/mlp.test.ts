import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Adam, Mlp, layout } from './mlp.ts';
import { Rng } from './rng.ts';

test('layout: weights then biases per layer', () => {
  const { layers, count } = layout([4, 8, 2]);
  assert.deepEqual(layers, [
    { inputs: 4, outputs: 8, offset: 0 },
    { inputs: 8, outputs: 2, offset: 40 },
  ]);
  assert.equal(count, 4 * 8 + 8 + 8 * 2 + 2);
});

test('forward computes ReLU hidden layers and a linear output', () => {
  const net = new Mlp([2, 2, 1], Float32Array.from([1, -1, -1, 1, 0, 0, 2, 3, 0.5]));
  // hidden = relu([x0 - x1, x1 - x0]); out = 2 h0 + 3 h1 + 0.5
  assert.deepEqual([...net.forward(Float32Array.from([3, 1, 1, 3]), 2)], [4.5, 6.5]);
});

test('backwardQ matches finite differences of the loss', () => {
  const rng = new Rng(11);
  const net = Mlp.random([4, 6, 5, 3], rng);
  const batch = 7;
  const x = Float32Array.from({ length: batch * 4 }, () => rng.uniform(-1, 1));
  const actions = Uint8Array.from({ length: batch }, () => rng.int(3));
  const targets = Float32Array.from({ length: batch }, () => rng.uniform(-2, 2));
  const loss = () => {
    const q = net.forward(x, batch);
    let l = 0;
    for (let b = 0; b < batch; b++) l += (q[b * 3 + actions[b]!]! - targets[b]!) ** 2;
    return l / batch;
  };
  net.forward(x, batch);
  const l0 = net.backwardQ(actions, targets, batch);
  assert.ok(Math.abs(l0 - loss()) < 1e-5);
  const grads = Float32Array.from(net.gradients);
  const h = 1e-3;
  let checked = 0;
  for (let i = 0; i < net.params.length; i++) {
    const keep = net.params[i]!;
    net.params[i] = keep + h;
    const up = loss();
    net.params[i] = keep - h;
    const down = loss();
    net.params[i] = keep;
    // Where the step crosses a ReLU kink the two one-sided slopes disagree; the gradient is not defined there.
    if (Math.abs((up - l0) / h - (l0 - down) / h) > 1e-2) continue;
    const numeric = (up - down) / (2 * h);
    assert.ok(Math.abs(numeric - grads[i]!) < 2e-3 + 2e-2 * Math.abs(numeric), `param ${i}: numeric ${numeric} vs ${grads[i]}`);
    checked++;
  }
  assert.ok(checked > net.params.length * 0.8, `checked ${checked} of ${net.params.length}`);
});

test('Adam drives a regression loss down', () => {
  const rng = new Rng(5);
  const net = Mlp.random([1, 16, 1], rng);
  const adam = new Adam(net.params.length);
  const batch = 32;
  const x = Float32Array.from({ length: batch }, (_, i) => i / batch - 0.5);
  const y = Float32Array.from(x, (v) => Math.sin(3 * v));
  const actions = new Uint8Array(batch);
  net.forward(x, batch);
  const first = net.backwardQ(actions, y, batch);
  let last = first;
  for (let i = 0; i < 500; i++) {
    net.forward(x, batch);
    last = net.backwardQ(actions, y, batch);
    adam.step(net.params, net.gradients, 1e-2);
  }
  assert.ok(last < first / 20, `loss ${first} -> ${last}`);
  const copy = adam.clone();
  assert.deepEqual([...copy.m], [...adam.m]);
});

test('wrong parameter counts are refused', () => {
  assert.throws(() => new Mlp([4, 2], new Float32Array(3)), /expected 10 parameters for layers 4x2, got 3/);
});
