import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseVictims, lostWorkMs, type Candidate, type FreeNode } from './preemption.ts';

const GiB = 1024 ** 3;
const NOW = 1_000_000_000;
const MIN = 60_000;

/** A node with `gpus` free GPUs and plenty of CPU, memory and pod slots. */
const node = (name: string, gpus: number): FreeNode => ({ name, free: { gpus, cpuMilli: 64_000, memoryBytes: 512 * GiB, pods: 100 } });
/** A running gang holding `gpus` GPUs on each of `nodes`, started `ranMin` minutes ago, last checkpoint `ckptMin` minutes ago. */
const running = (key: string, priority: number, nodes: string[], gpus: number, ranMin: number, ckptMin?: number): Candidate => ({
  key,
  priority,
  startedAtMs: NOW - ranMin * MIN,
  ...(ckptMin !== undefined ? { lastCheckpointAtMs: NOW - ckptMin * MIN } : {}),
  frees: nodes.map((n) => ({ node: n, resources: { gpus, cpuMilli: 1000, memoryBytes: GiB } })),
});

interface Row {
  name: string;
  workers: number;
  gpus: number;
  priority?: number;
  nodes: FreeNode[];
  candidates: Candidate[];
  minRunTimeMs?: number;
  /** GPUs each lending team borrows beyond its quota (team quotas' reclaim). */
  borrowed?: Record<string, number>;
  /** Victim keys, sorted; or the reason nothing is preempted. */
  want: string[] | 'FitsAlready' | 'NoCandidates' | 'StillWouldNotFit';
}

const rows: Row[] = [
  {
    name: 'fits already: nothing is preempted',
    workers: 1,
    gpus: 4,
    nodes: [node('a', 4)],
    candidates: [running('low', 0, ['a'], 4, 30, 1)],
    want: 'FitsAlready',
  },
  {
    name: 'one victim frees the node',
    workers: 1,
    gpus: 8,
    nodes: [node('a', 0)],
    candidates: [running('low', 0, ['a'], 8, 30, 5)],
    want: ['low'],
  },
  {
    name: 'of two that each make room, the one that loses less work (more recent checkpoint)',
    workers: 1,
    gpus: 8,
    nodes: [node('a', 0), node('b', 0)],
    candidates: [running('stale', 0, ['a'], 8, 30, 20), running('fresh', 0, ['b'], 8, 30, 1)],
    want: ['fresh'],
  },
  {
    name: 'no checkpoint counts from the attempt start',
    workers: 1,
    gpus: 8,
    nodes: [node('a', 0), node('b', 0)],
    candidates: [running('never', 0, ['a'], 8, 10), running('ckpt', 0, ['b'], 8, 30, 9)],
    want: ['ckpt'],
  },
  {
    name: 'fewest victims beats least lost work: one big gang rather than two small ones',
    workers: 1,
    gpus: 8,
    nodes: [node('a', 0), node('b', 0)],
    candidates: [running('small1', 0, ['a'], 4, 30, 1), running('small2', 0, ['a'], 4, 30, 1), running('big', 0, ['b'], 8, 30, 25)],
    want: ['big'],
  },
  {
    name: 'a two-node gang needs two victims on distinct nodes',
    workers: 2,
    gpus: 8,
    nodes: [node('a', 0), node('b', 0), node('c', 0)],
    candidates: [running('x', 0, ['a'], 8, 30, 3), running('y', 0, ['b'], 8, 30, 10), running('z', 0, ['c'], 8, 30, 2)],
    want: ['x', 'z'],
  },
  {
    name: 'partly free nodes: a victim is only needed where free capacity falls short',
    workers: 2,
    gpus: 4,
    nodes: [node('a', 4), node('b', 2)],
    candidates: [running('on-a', 0, ['a'], 4, 30, 1), running('on-b', 0, ['b'], 2, 30, 15)],
    want: ['on-b'],
  },
  {
    name: 'equal or higher priority is never a victim',
    workers: 1,
    gpus: 8,
    priority: 10,
    nodes: [node('a', 0), node('b', 0)],
    candidates: [running('peer', 10, ['a'], 8, 30, 1), running('boss', 20, ['b'], 8, 30, 1)],
    want: 'NoCandidates',
  },
  {
    name: 'younger than the minimum run time is never a victim',
    workers: 1,
    gpus: 8,
    nodes: [node('a', 0), node('b', 0)],
    candidates: [running('young', 0, ['a'], 8, 2, 1), running('old', 0, ['b'], 8, 30, 29)],
    minRunTimeMs: 5 * MIN,
    want: ['old'],
  },
  {
    name: 'nothing is preempted for a gang that would still not fit',
    workers: 3,
    gpus: 8,
    nodes: [node('a', 0), node('b', 0), node('c', 0)],
    candidates: [running('x', 0, ['a'], 8, 30, 1), running('y', 0, ['b'], 8, 30, 1), running('peer', 100, ['c'], 8, 30, 1)],
    want: 'StillWouldNotFit',
  },
  {
    name: 'a victim on nodes outside the class does not help and is not chosen',
    workers: 1,
    gpus: 8,
    nodes: [node('a', 0)],
    candidates: [running('elsewhere', 0, ['z'], 8, 30, 1), running('here', 0, ['a'], 8, 30, 20)],
    want: ['here'],
  },
  {
    name: 'a multi-node victim frees all its nodes at once',
    workers: 2,
    gpus: 8,
    nodes: [node('a', 0), node('b', 0), node('c', 0)],
    candidates: [running('wide', 0, ['a', 'b'], 8, 30, 10), running('c1', 0, ['c'], 8, 30, 1)],
    want: ['wide'],
  },
  {
    name: 'among equal lost work, the lower priority',
    workers: 1,
    gpus: 8,
    priority: 50,
    nodes: [node('a', 0), node('b', 0)],
    candidates: [running('p10', 10, ['a'], 8, 30, 5), running('p0', 0, ['b'], 8, 30, 5)],
    want: ['p0'],
  },
  {
    name: 'reclaim takes a borrowing team\'s run whatever its priority',
    workers: 1,
    gpus: 8,
    priority: 0,
    nodes: [node('a', 0)],
    candidates: [{ ...running('loan', 500, ['a'], 8, 30, 5), reclaimFrom: 'b' }],
    borrowed: { b: 8 },
    want: ['loan'],
  },
  {
    name: 'reclaim takes one run of a team that borrows less than a run holds (its team was over quota before it)',
    workers: 1,
    gpus: 8,
    priority: 0,
    nodes: [node('a', 0)],
    candidates: [{ ...running('loan', 0, ['a'], 8, 30, 5), reclaimFrom: 'b' }],
    borrowed: { b: 2 },
    want: ['loan'],
  },
  {
    name: 'reclaim never takes two runs where the team borrows one: the second would cut into its own quota',
    workers: 2,
    gpus: 8,
    priority: 0,
    nodes: [node('a', 0), node('b', 0)],
    candidates: [{ ...running('b1', 0, ['a'], 8, 30, 5), reclaimFrom: 'b' }, { ...running('b2', 0, ['b'], 8, 30, 5), reclaimFrom: 'b' }],
    borrowed: { b: 8 },
    want: 'StillWouldNotFit',
  },
  {
    name: 'reclaim takes from two lending teams, one run each',
    workers: 2,
    gpus: 8,
    priority: 0,
    nodes: [node('a', 0), node('b', 0)],
    candidates: [{ ...running('b1', 0, ['a'], 8, 30, 5), reclaimFrom: 'b' }, { ...running('c1', 0, ['b'], 8, 30, 5), reclaimFrom: 'c' }],
    borrowed: { b: 8, c: 8 },
    want: ['b1', 'c1'],
  },
  {
    name: 'a reclaim and a lower-priority run of its own team together',
    workers: 2,
    gpus: 8,
    priority: 10,
    nodes: [node('a', 0), node('b', 0)],
    candidates: [{ ...running('b1', 50, ['a'], 8, 30, 5), reclaimFrom: 'b' }, { ...running('b2', 50, ['c'], 8, 30, 1), reclaimFrom: 'b' }, running('own-low', 0, ['b'], 8, 30, 9)],
    borrowed: { b: 8 },
    want: ['b1', 'own-low'],
  },
];

for (const row of rows) {
  test(`victim choice: ${row.name}`, () => {
    const got = chooseVictims({
      gang: { key: 'ns/high', priority: row.priority ?? 100, workers: row.workers, perWorker: { gpus: row.gpus, cpuMilli: 1000, memoryBytes: GiB } },
      nodes: row.nodes,
      candidates: row.candidates,
      nowMs: NOW,
      minRunTimeMs: row.minRunTimeMs ?? 0,
      ...(row.borrowed ? { borrowedGpus: new Map(Object.entries(row.borrowed)) } : {}),
    });
    if (typeof row.want === 'string') {
      assert.equal(got.ok, false, JSON.stringify(got));
      if (!got.ok) assert.equal(got.why, row.want);
    } else {
      assert.ok(got.ok, JSON.stringify(got));
      assert.deepEqual(got.victims.map((v) => v.key).sort(), row.want);
    }
  });
}

test('victim choice: the greedy fallback past the search budget still makes room with few victims', () => {
  const nodes = Array.from({ length: 30 }, (_, i) => node(`n${String(i).padStart(2, '0')}`, 0));
  const candidates = nodes.map((n, i) => running(`v${i}`, 0, [n.name], 8, 60, i + 1));
  const got = chooseVictims({
    gang: { key: 'ns/high', priority: 100, workers: 4, perWorker: { gpus: 8, cpuMilli: 1000, memoryBytes: GiB } },
    nodes,
    candidates,
    nowMs: NOW,
    minRunTimeMs: 0,
    searchBudget: 10,
  });
  assert.ok(got.ok);
  assert.deepEqual(got.victims.map((v) => v.key), ['v0', 'v1', 'v2', 'v3']);
  assert.equal(got.lostMs, (1 + 2 + 3 + 4) * MIN);
});

test('victim choice: the greedy fallback keeps to the reclaim limit', () => {
  const nodes = Array.from({ length: 20 }, (_, i) => node(`n${String(i).padStart(2, '0')}`, 0));
  // Team b borrows one run's worth; every other run is the preemptor's own team's, at lower priority.
  const candidates = nodes.map((n, i) => ({ ...running(`v${i}`, 0, [n.name], 8, 60, i + 1), ...(i < 10 ? { reclaimFrom: 'b' } : {}) }));
  const got = chooseVictims({
    gang: { key: 'ns/high', priority: 100, workers: 3, perWorker: { gpus: 8, cpuMilli: 1000, memoryBytes: GiB } },
    nodes,
    candidates,
    nowMs: NOW,
    minRunTimeMs: 0,
    borrowedGpus: new Map([['b', 8]]),
    searchBudget: 10,
  });
  assert.ok(got.ok);
  assert.deepEqual(got.victims.map((v) => v.key), ['v0', 'v10', 'v11']);
});

test('lost work is time since the last checkpoint, never negative', () => {
  assert.equal(lostWorkMs(running('a', 0, ['x'], 1, 10, 3), NOW), 3 * MIN);
  assert.equal(lostWorkMs(running('a', 0, ['x'], 1, 10), NOW), 10 * MIN);
  assert.equal(lostWorkMs({ ...running('a', 0, ['x'], 1, 10), lastCheckpointAtMs: NOW + 5 }, NOW), 0);
});
