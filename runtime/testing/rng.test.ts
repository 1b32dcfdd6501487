import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from './rng.ts';

const draws = (rng: Rng, n: number) => Array.from({ length: n }, () => rng.next());

test('the same seed gives the same sequence; another seed another one', () => {
  assert.deepEqual(draws(new Rng(7), 50), draws(new Rng(7), 50));
  assert.notDeepEqual(draws(new Rng(7), 50), draws(new Rng(8), 50));
  assert.notDeepEqual(draws(new Rng(0), 50), draws(new Rng(1), 50), 'seed 0 is a seed like any other');
});

test('values stay in range and spread evenly', () => {
  const rng = new Rng(2024);
  for (const x of draws(rng, 10_000)) assert.ok(x >= 0 && x < 1, String(x));
  for (let i = 0; i < 1000; i++) {
    const u = rng.uniform(-0.1, 0.1);
    assert.ok(u >= -0.1 && u < 0.1, String(u));
  }
  const counts = new Array<number>(6).fill(0);
  for (let i = 0; i < 6000; i++) counts[rng.int(6)]!++;
  // Expected 1000 each; a standard deviation is about 29, so 150 off would be a broken generator, not chance.
  for (const c of counts) assert.ok(Math.abs(c - 1000) < 150, `counts ${counts.join(', ')}`);
});
