import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayBuffer } from './replay.ts';
import { Rng } from './rng.ts';

test('a ring of transitions: the oldest are overwritten, samples come from what is stored', () => {
  const buffer = new ReplayBuffer(3, 2);
  for (let i = 0; i < 5; i++) buffer.add(Float32Array.from([i, i]), 0, i % 2, i, Float32Array.from([i + 1, i + 1]), 0, i === 4);
  assert.equal(buffer.size, 3);
  assert.equal(buffer.counter, 5);
  const seen = new Set<number>();
  const rng = new Rng(1);
  for (let k = 0; k < 20; k++) {
    const b = buffer.sample(4, rng);
    assert.equal(b.size, 4);
    for (let j = 0; j < 4; j++) {
      const r = b.rewards[j]!;
      seen.add(r);
      assert.deepEqual([b.states[j * 2], b.nextStates[j * 2]], [r, r + 1], 'state, reward and next state stay together');
      assert.equal(b.actions[j], r % 2);
      assert.equal(b.dones[j], r === 4 ? 1 : 0);
    }
  }
  assert.deepEqual([...seen].sort(), [2, 3, 4], 'transitions 0 and 1 were overwritten');
});
