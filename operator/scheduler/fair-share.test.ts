import { test } from 'node:test';
import assert from 'node:assert/strict';
import { borrowed, dominantShare, fairShareOrder, withinQuota, type TeamGang } from './fair-share.ts';
import type { Resources } from './capacity.ts';

const GiB = 1024 ** 3;
/** 64 GPUs, 512 CPUs, 4 TiB. */
const total: Resources = { gpus: 64, cpuMilli: 512_000, memoryBytes: 4096 * GiB };
const r = (gpus: number, cpus = 0, memGiB = 0): Resources => ({ gpus, cpuMilli: cpus * 1000, memoryBytes: memGiB * GiB });
const g = (key: string, team: string, arrivalMs: number, request: Resources, priority = 0): TeamGang => ({ key, team, priority, arrivalMs, request });

test('dominant share: the largest fraction of any resource, over the weight', () => {
  const rows: { used: Resources; weight?: number; want: number }[] = [
    { used: r(16), want: 0.25 },
    { used: r(8, 256), want: 0.5 }, // CPU dominates
    { used: r(8, 0, 3072), want: 0.75 }, // memory dominates
    { used: r(32), weight: 2, want: 0.25 },
    { used: r(0), want: 0 },
  ];
  for (const row of rows) assert.equal(dominantShare(row.used, total, row.weight), row.want, JSON.stringify(row));
  assert.equal(dominantShare(r(4), { gpus: 0, cpuMilli: 0, memoryBytes: 0 }), 0, 'an empty pool gives no share');
});

interface Row {
  name: string;
  gangs: TeamGang[];
  usage: Record<string, Resources>;
  weights?: Record<string, number>;
  want: string[];
}

const rows: Row[] = [
  {
    name: 'the team using less goes first, even when it arrived later',
    gangs: [g('a1', 'a', 1, r(8)), g('b1', 'b', 2, r(8))],
    usage: { a: r(32), b: r(0) },
    want: ['b1', 'a1'],
  },
  {
    name: 'progressive filling alternates between equal teams',
    gangs: [g('a1', 'a', 1, r(8)), g('a2', 'a', 2, r(8)), g('b1', 'b', 3, r(8)), g('b2', 'b', 4, r(8))],
    usage: {},
    want: ['a1', 'b1', 'a2', 'b2'],
  },
  {
    name: 'dominant resource: a CPU-heavy team counts by its CPU share',
    gangs: [g('cpu1', 'cpu', 1, r(1, 64)), g('cpu2', 'cpu', 2, r(1, 64)), g('gpu1', 'gpu', 3, r(8)), g('gpu2', 'gpu', 4, r(8))],
    usage: { cpu: r(0, 128), gpu: r(16) },
    // cpu: 128/512 = 0.25; gpu: 16/64 = 0.25. Tie → earlier (cpu1); cpu 0.375 → gpu1 (0.375 after) → tie → cpu2 (earlier) → gpu2.
    want: ['cpu1', 'gpu1', 'cpu2', 'gpu2'],
  },
  {
    name: 'weights: a team of weight 2 gets twice the share before it yields',
    gangs: [g('h1', 'heavy', 1, r(16)), g('h2', 'heavy', 2, r(16)), g('l1', 'light', 3, r(16))],
    usage: {},
    weights: { heavy: 2 },
    // heavy 0 → h1 (0.125 weighted); light 0 → l1 (0.25); heavy 0.125 → h2.
    want: ['h1', 'l1', 'h2'],
  },
  {
    name: 'higher priority first, whatever the shares',
    gangs: [g('a-low', 'a', 1, r(8)), g('b-high', 'b', 2, r(8), 10)],
    usage: { a: r(0), b: r(60) },
    want: ['b-high', 'a-low'],
  },
  {
    name: 'within a team, arrival order',
    gangs: [g('late', 'a', 9, r(1)), g('early', 'a', 1, r(1))],
    usage: {},
    want: ['early', 'late'],
  },
];

for (const row of rows) {
  test(`fair-share order: ${row.name}`, () => {
    const got = fairShareOrder({ gangs: row.gangs, usage: new Map(Object.entries(row.usage)), total, weights: row.weights ? new Map(Object.entries(row.weights)) : undefined });
    assert.deepEqual(got, row.want);
  });
}

test('borrowing: what is used beyond the nominal quota, and whether a request stays within it', () => {
  assert.deepEqual(borrowed(r(24, 10), r(16, 32)), r(8, 0));
  assert.deepEqual(borrowed(r(8), r(16)), r(0));
  assert.equal(withinQuota(r(8), r(8), r(16)), true);
  assert.equal(withinQuota(r(8), r(16), r(16)), false);
});
