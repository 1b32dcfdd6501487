import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from './rng.ts';

test('the same seed gives the same stream; the state restores it', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 100 }, () => a.next());
  assert.deepEqual(xs, Array.from({ length: 100 }, () => b.next()));
  assert.notDeepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => new Rng(43).next()));
  const saved = a.state();
  const next = a.uint32();
  assert.equal(new Rng(saved).uint32(), next);
});

test('uniform, integer and normal draws have the right ranges and moments', () => {
  const r = new Rng(7);
  const n = 20_000;
  let sum = 0;
  let sq = 0;
  const counts = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const u = r.next();
    assert.ok(u >= 0 && u < 1);
    const k = r.int(3);
    counts[k]!++;
    const z = r.normal();
    sum += z;
    sq += z * z;
  }
  assert.ok(Math.abs(sum / n) < 0.05, `normal mean ${sum / n}`);
  assert.ok(Math.abs(sq / n - 1) < 0.05, `normal variance ${sq / n}`);
  for (const c of counts) assert.ok(Math.abs(c / n - 1 / 3) < 0.02, `int(3) frequency ${c / n}`);
  const f1 = r.fork();
  const f2 = r.fork();
  assert.notEqual(f1.next(), f2.next(), 'forks are independent streams');
});
