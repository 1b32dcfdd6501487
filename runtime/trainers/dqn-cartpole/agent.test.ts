import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DqnAgent } from './agent.ts';
import { Adam, Mlp } from './mlp.ts';
import { ReplayBuffer } from './replay.ts';
import { Rng } from './rng.ts';

// One linear layer from a 1-wide observation to 2 actions, with zero weights: Q-values are the biases.
const constantQ = (q: [number, number]) => new Mlp([1, 2], Float32Array.from([0, 0, ...q]));

function lossOfOneStep(double: boolean): number {
  const online = constantQ([3, 1]);
  const agent = new DqnAgent(0, { batch_size: 1, lr: 1e-3, learn_step: 1, gamma: 0.5, tau: 0 }, online, constantQ([1, 5]), new Adam(online.params.length));
  agent.double = double;
  const buffer = new ReplayBuffer(1, 1);
  buffer.add(Float32Array.of(0), 0, 0, 0, Float32Array.of(0), 0, false);
  return agent.learn(buffer, new Rng(1));
}

test("double DQN values the online network's greedy next action with the target network", () => {
  // Online picks action 0 next, which the target values at 1: target 0.5 * 1, against Q(s, 0) = 3.
  assert.ok(Math.abs(lossOfOneStep(true) - (3 - 0.5) ** 2) < 1e-6, String(lossOfOneStep(true)));
  // Plain DQN takes the target network's own maximum, 5: target 2.5.
  assert.ok(Math.abs(lossOfOneStep(false) - (3 - 2.5) ** 2) < 1e-6, String(lossOfOneStep(false)));
});
