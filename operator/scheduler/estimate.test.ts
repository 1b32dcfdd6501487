import { test } from 'node:test';
import assert from 'node:assert/strict';
import { estimateStarts, type EstimateNode, type QueuedGang, type RunningWork } from './estimate.ts';

const GiB = 1024 ** 3;
const NOW = Date.parse('2026-11-23T10:00:00Z');
const S = 1000;
const node = (name: string, gpus: number): EstimateNode => ({ name, free: { gpus, cpuMilli: 64_000, memoryBytes: 512 * GiB, pods: 100 } });
const req = (gpus: number) => ({ gpus, cpuMilli: 1000, memoryBytes: GiB });
const run = (key: string, nodes: string[], gpus: number, remainingS?: number): RunningWork => ({
  key,
  frees: nodes.map((n) => ({ node: n, resources: req(gpus) })),
  ...(remainingS !== undefined ? { remainingMs: remainingS * S, why: `${remainingS * 10} steps left at 10 steps/s` } : {}),
});
const gang = (key: string, workers: number, gpus: number, eligible: string[], durationS?: number): QueuedGang => ({
  key,
  workers,
  perWorker: req(gpus),
  eligible: new Set(eligible),
  ...(durationS !== undefined ? { durationMs: durationS * S } : {}),
});

interface Row {
  name: string;
  nodes: EstimateNode[];
  running: RunningWork[];
  queue: QueuedGang[];
  /** Seconds from now per queued key; null: no estimate. */
  want: Record<string, number | null>;
  reasoning?: Record<string, RegExp>;
}

const rows: Row[] = [
  {
    name: 'it starts when the running work on its node finishes',
    nodes: [node('a', 0)],
    running: [run('ns/r', ['a'], 8, 120)],
    queue: [gang('ns/w', 1, 8, ['a'])],
    want: { 'ns/w': 120 },
    reasoning: { 'ns/w': /^when ns\/r finishes \(1200 steps left at 10 steps\/s\)$/ },
  },
  {
    name: 'the earliest of several ends that frees enough',
    nodes: [node('a', 0), node('b', 0)],
    running: [run('ns/slow', ['a'], 8, 600), run('ns/fast', ['b'], 8, 60)],
    queue: [gang('ns/w', 1, 8, ['a', 'b'])],
    want: { 'ns/w': 60 },
  },
  {
    name: 'a two-node gang waits for two ends',
    nodes: [node('a', 0), node('b', 0)],
    running: [run('ns/x', ['a'], 8, 60), run('ns/y', ['b'], 8, 300)],
    queue: [gang('ns/w', 2, 8, ['a', 'b'])],
    want: { 'ns/w': 300 },
  },
  {
    name: 'the queue ahead goes first: the second waits for the first\'s own run',
    nodes: [node('a', 0)],
    running: [run('ns/r', ['a'], 8, 100)],
    queue: [gang('ns/first', 1, 8, ['a'], 200), gang('ns/second', 1, 8, ['a'])],
    want: { 'ns/first': 100, 'ns/second': 300 },
    reasoning: { 'ns/second': /^when ns\/first finishes, after 1 experiment queued ahead of it$/ },
  },
  {
    name: 'backfill: a small gang behind a big one starts on what frees first',
    nodes: [node('a', 0), node('b', 0)],
    running: [run('ns/x', ['a'], 4, 50), run('ns/y', ['b'], 8, 500)],
    queue: [gang('ns/big', 2, 8, ['a', 'b']), gang('ns/small', 1, 4, ['a', 'b'])],
    want: { 'ns/big': null, 'ns/small': 50 },
  },
  {
    name: 'a running gang with no speed yet leaves what depends on it without an estimate, naming it',
    nodes: [node('a', 0)],
    running: [run('ns/mute', ['a'], 8)],
    queue: [gang('ns/w', 1, 8, ['a'])],
    want: { 'ns/w': null },
    reasoning: { 'ns/w': /until ns\/mute reports its training speed/ },
  },
  {
    name: 'free now: it starts now',
    nodes: [node('a', 8)],
    running: [],
    queue: [gang('ns/w', 1, 8, ['a'])],
    want: { 'ns/w': 0 },
    reasoning: { 'ns/w': /^on capacity free now$/ },
  },
  {
    name: 'nodes outside its class do not help',
    nodes: [node('a', 0), node('b', 8)],
    running: [run('ns/r', ['a'], 8, 90)],
    queue: [gang('ns/w', 1, 8, ['a'])],
    want: { 'ns/w': 90 },
  },
];

for (const row of rows) {
  test(`estimate: ${row.name}`, () => {
    const got = estimateStarts({ nowMs: NOW, nodes: row.nodes, running: row.running, queue: row.queue });
    for (const [key, want] of Object.entries(row.want)) {
      const e = got.find((g) => g.key === key);
      assert.ok(e, key);
      assert.equal(e.atMs === undefined ? null : (e.atMs - NOW) / S, want, `${key}: ${e.reasoning}`);
      const re = row.reasoning?.[key];
      if (re) assert.match(e.reasoning, re);
    }
  });
}
