import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyResult, passed, percentile, resultLine, seeded } from './scenario.ts';

test('the result line lists the figures in order, then the three counts', () => {
  const r = { ...emptyResult(), figures: { experiments: 500, kills: 10, recoverMs: 1234.5678, rate: 3.14159 } };
  assert.equal(resultLine('operator-kills', r), 'chaos: operator-kills: experiments=500 kills=10 recoverMs=1235 rate=3.14 lost=0 duplicates=0 leaked=0');
});

test('a scenario passes only with nothing lost, doubled, leaked or failed', () => {
  const cases: [Partial<ReturnType<typeof emptyResult>>, boolean][] = [
    [{}, true],
    [{ lost: 1 }, false],
    [{ duplicates: 2 }, false],
    [{ leaked: 1 }, false],
    [{ failures: ['exp-3 ended Failed, not Succeeded'] }, false],
  ];
  for (const [change, want] of cases) assert.equal(passed({ ...emptyResult(), ...change }), want, JSON.stringify(change));
});

test('percentiles are nearest-rank', () => {
  const v = [5, 1, 4, 2, 3];
  assert.deepEqual([percentile(v, 0), percentile(v, 50), percentile(v, 99), percentile(v, 100)], [1, 3, 5, 5]);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test('the seeded generator repeats for a seed and differs between seeds', () => {
  const a = seeded(7);
  const b = seeded(7);
  const c = seeded(8);
  const xs = [a(), a(), a()];
  assert.deepEqual([b(), b(), b()], xs);
  assert.notDeepEqual([c(), c(), c()], xs);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
});
