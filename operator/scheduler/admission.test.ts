import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CapacityModel, type NodeInfo, type Resources } from './capacity.ts';
import { GangScheduler, classFit, type AdmissionResult, type GangRequest } from './admission.ts';
import { classEligibility } from './eligibility.ts';
import { anyNode, gang, node, pod, req } from './testing.ts';

const MIN = 60_000;

/** A cluster of 8-GPU nodes; `used` puts a running pod with that many GPUs on the node. */
function cluster(nodes: (NodeInfo | [NodeInfo, number])[]): CapacityModel {
  const m = new CapacityModel();
  for (const entry of nodes) {
    const [n, used] = Array.isArray(entry) ? entry : [entry, 0];
    m.upsertNode(n);
    if (used > 0) m.upsertPod(`busy/${n.name}`, pod(n.name, req(used)));
  }
  return m;
}

const admittedKeys = (r: AdmissionResult) => r.admitted.map((a) => a.key);
const waitFor = (r: AdmissionResult, key: string) => {
  const w = r.waiting.find((x) => x.key === key);
  assert.ok(w, `${key} is not waiting`);
  return w;
};

/** The pods of an admitted gang bind where planned, and the reservation is released, as the operator does. */
function bind(m: CapacityModel, g: GangRequest, nodes: readonly string[]): void {
  nodes.forEach((n, i) => m.upsertPod(`${g.key}-${i}`, pod(n, g.perWorker), g.key));
  m.release(g.key);
}

describe('GangScheduler placement', () => {
  it('admits a gang onto distinct nodes and reserves them at once', () => {
    const m = cluster([node('n1'), node('n2'), node('n3')]);
    const s = new GangScheduler(m);
    const r = s.cycle([gang('g', { workers: 2, perWorker: req(8) })], 0);
    assert.deepEqual(r.admitted, [{ key: 'g', nodes: ['n1', 'n2'] }]);
    assert.deepEqual(r.waiting, []);
    assert.equal(m.free('n1')?.gpus, 0);
    assert.equal(m.free('n2')?.gpus, 0);
    assert.equal(m.free('n3')?.gpus, 8);
  });

  const bestFit: { name: string; used: [string, number][]; workers: number; gpus: number; want: string[] }[] = [
    { name: 'the node whose free GPUs match exactly', used: [['a', 0], ['b', 6], ['c', 4]], workers: 1, gpus: 2, want: ['b'] },
    { name: 'the closest larger when none match', used: [['a', 0], ['b', 7], ['c', 5]], workers: 1, gpus: 2, want: ['c'] },
    { name: 'ties by node name', used: [['c', 4], ['a', 4], ['b', 4]], workers: 2, gpus: 4, want: ['a', 'b'] },
    { name: 'whole free nodes last', used: [['a', 0], ['b', 0], ['c', 6], ['d', 4]], workers: 3, gpus: 2, want: ['a', 'c', 'd'] },
    { name: 'CPU-only workers on the nodes with fewest free GPUs', used: [['a', 0], ['b', 8], ['c', 0]], workers: 1, gpus: 0, want: ['b'] },
  ];
  for (const c of bestFit) {
    it(`best fit picks ${c.name}`, () => {
      const m = cluster(c.used.map(([n, used]) => [node(n), used]));
      const r = new GangScheduler(m).cycle([gang('g', { workers: c.workers, perWorker: req(c.gpus) })], 0);
      assert.deepEqual(r.admitted, [{ key: 'g', nodes: c.want }]);
    });
  }

  it('counts CPU, memory and pod slots, not only GPUs', () => {
    const m = cluster([node('cpu-full', { cpu: 4 }), node('mem-full', { memoryGiB: 8 }), node('pods-full', { pods: 1 }), node('ok')]);
    m.upsertPod('x', pod('pods-full', req(0, 0, 0)));
    const r = new GangScheduler(m).cycle([gang('g', { perWorker: req(1, 8, 16) })], 0);
    assert.deepEqual(r.admitted, [{ key: 'g', nodes: ['ok'] }]);
  });

  it('only uses eligible nodes', () => {
    const m = cluster([node('a1', { labels: { pool: 'a' } }), node('b1', { labels: { pool: 'b' } }), node('b2', { labels: { pool: 'b' } })]);
    const poolB = classEligibility({ nodeSelector: { pool: 'b' }, gpus: 8 });
    const r = new GangScheduler(m).cycle([gang('g', { workers: 2, perWorker: req(8), eligible: poolB.eligible })], 0);
    assert.deepEqual(r.admitted, [{ key: 'g', nodes: ['b1', 'b2'] }]);
  });
});

describe('GangScheduler queue order', () => {
  // One node with room for one of the two 8-GPU gangs.
  const cases: { name: string; a: Partial<GangRequest>; b: Partial<GangRequest>; first: string }[] = [
    { name: 'higher priority first, though it arrived later', a: { priority: 0, arrivalMs: 0 }, b: { priority: 10, arrivalMs: 5 }, first: 'b' },
    { name: 'FIFO among equal priority', a: { arrivalMs: 10 }, b: { arrivalMs: 5 }, first: 'b' },
    { name: 'the key breaks exact ties', a: { arrivalMs: 5 }, b: { arrivalMs: 5 }, first: 'a' },
    { name: 'priority beats arrival across classes', a: { classKey: 'x', arrivalMs: 0 }, b: { classKey: 'y', priority: 1, arrivalMs: 9 }, first: 'b' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const m = cluster([node('n1')]);
      const r = new GangScheduler(m).cycle([gang('a', { perWorker: req(8), ...c.a }), gang('b', { perWorker: req(8), ...c.b })], 0);
      assert.deepEqual(admittedKeys(r), [c.first]);
      const other = c.first === 'a' ? 'b' : 'a';
      assert.equal(waitFor(r, other).reason, 'InsufficientCapacity');
    });
  }
});

describe('GangScheduler waiting reasons', () => {
  it('says how many nodes fit when every node of the class is busy', () => {
    const a = { labels: { pool: 'a' } };
    const m = cluster([[node('a1', a), 6], [node('a2', a), 6], [node('a3', a), 8], node('b1', { labels: { pool: 'b' } })]);
    const poolA = classEligibility({ nodeSelector: { pool: 'a' }, gpus: 4 });
    const r = new GangScheduler(m).cycle([gang('ns/exp', { classKey: 'a100', workers: 2, perWorker: req(4, 8, 64), eligible: poolA.eligible })], 0);
    assert.deepEqual(r.waiting, [
      {
        key: 'ns/exp',
        reason: 'InsufficientCapacity',
        position: 1,
        message:
          'Waiting for capacity on resource class "a100": needs 2 nodes each with 4 GPUs, 8 CPU, 64Gi memory free; ' +
          "0 of the 3 eligible nodes large enough have that now; 4 GPUs are free across the class's eligible nodes. " +
          'It starts when running work on these nodes finishes.',
      },
    ]);
  });

  it('counts positions per class queue, skipping admitted and NeverFits gangs', () => {
    const m = cluster([[node('n1'), 6]]); // 2 GPUs free
    const r = new GangScheduler(m).cycle(
      [
        gang('a', { perWorker: req(8), arrivalMs: 1 }),
        gang('b', { perWorker: req(16), arrivalMs: 2 }),
        gang('c', { perWorker: req(2), arrivalMs: 3 }),
        gang('d', { perWorker: req(4), arrivalMs: 4 }),
        gang('e', { perWorker: req(8), arrivalMs: 5 }),
        gang('x', { classKey: 'other', perWorker: req(8), arrivalMs: 6 }),
      ],
      0,
    );
    assert.deepEqual(admittedKeys(r), ['c']);
    const got = r.waiting.map((w) => [w.key, w.reason, w.position]);
    assert.deepEqual(got, [
      ['a', 'InsufficientCapacity', 1],
      ['b', 'NeverFits', 0],
      ['d', 'WaitingBehind', 2],
      ['e', 'WaitingBehind', 3],
      ['x', 'InsufficientCapacity', 1],
    ]);
    assert.equal(
      waitFor(r, 'e').message,
      'Waiting behind 2 experiments queued earlier or with higher priority on resource class "c" (first in line: a); ' +
        'it needs 1 node each with 8 GPUs, 1 CPU, 1Gi memory free.',
    );
    assert.match(waitFor(r, 'd').message, /^Waiting behind 1 experiment queued/);
  });

  const neverFits: { name: string; nodes: NodeInfo[]; g: Partial<GangRequest>; message: string }[] = [
    {
      name: 'fewer eligible nodes than workers',
      nodes: [node('n1'), node('n2'), node('n3')],
      g: { workers: 4, perWorker: req(8) },
      message:
        'Never fits: resource class "c" needs 4 nodes that can each hold one worker (8 GPUs, 1 CPU, 1Gi memory), one worker per node, ' +
        "and only 3 nodes can; 3 nodes are eligible. Lower the class's nodes or per-worker request, or add or relabel nodes for it.",
    },
    {
      name: 'nodes too small for one worker',
      nodes: [node('n1'), node('n2', { gpus: 4 })],
      g: { workers: 1, perWorker: req(16) },
      message:
        'Never fits: resource class "c" needs a node that can hold its worker (16 GPUs, 1 CPU, 1Gi memory) and no node can; ' +
        '2 nodes are eligible, 2 of them too small (the largest eligible allocatable is 8 GPUs, 64 CPU, 512Gi memory). ' +
        "Lower the class's nodes or per-worker request, or add or relabel nodes for it.",
    },
    {
      name: 'no eligible node, with the reasons',
      nodes: [node('n1'), node('n2'), node('n3', { ready: false })],
      g: { workers: 2, perWorker: req(16), ...fromClass({ gpus: 16 }) },
      message:
        'Never fits: resource class "c" needs 2 nodes that can each hold one worker (16 GPUs, 1 CPU, 1Gi memory), one worker per node, ' +
        'and no node can; no node is eligible for the class (2 nodes: 8 allocatable GPUs (a worker needs 16); 1 node: not Ready). ' +
        "Lower the class's nodes or per-worker request, or add or relabel nodes for it.",
    },
    {
      name: 'too few eligible nodes, with why the others are not',
      nodes: [node('a1', { labels: { pool: 'a' } }), node('b1', { labels: { pool: 'b' } }), node('b2', { labels: { pool: 'b' } })],
      g: { workers: 2, perWorker: req(8), ...fromClass({ nodeSelector: { pool: 'a' }, gpus: 8 }) },
      message:
        'Never fits: resource class "c" needs 2 nodes that can each hold one worker (8 GPUs, 1 CPU, 1Gi memory), one worker per node, ' +
        'and only 1 node can; 1 node is eligible; the other nodes are not (2 nodes: missing label pool=a (the class nodeSelector)). ' +
        "Lower the class's nodes or per-worker request, or add or relabel nodes for it.",
    },
  ];
  for (const c of neverFits) {
    it(`NeverFits: ${c.name}`, () => {
      const r = new GangScheduler(cluster(c.nodes)).cycle([gang('g', c.g)], 0);
      assert.deepEqual(r.waiting, [{ key: 'g', reason: 'NeverFits', position: 0, message: c.message }]);
    });
  }

  it('a NeverFits gang blocks nobody and holds nothing, even when it has waited long', () => {
    const m = cluster([node('n1'), node('n2')]);
    const s = new GangScheduler(m, { starvationMs: MIN });
    const r = s.cycle([gang('huge', { workers: 3, perWorker: req(8), arrivalMs: 0 }), gang('small', { perWorker: req(8), arrivalMs: 1 })], 10 * MIN);
    assert.deepEqual(admittedKeys(r), ['small']);
    assert.equal(waitFor(r, 'huge').reason, 'NeverFits');
    assert.equal(s.heldNodes('huge'), undefined);
  });

  it('refuses malformed requests with NeverFits instead of throwing', () => {
    const r = new GangScheduler(cluster([node('n1')])).cycle(
      [gang('w', { workers: 0 }), gang('f', { perWorker: { gpus: 1.5, cpuMilli: 0, memoryBytes: 0 } })],
      0,
    );
    assert.deepEqual(
      r.waiting.map((w) => [w.key, w.reason, w.message]),
      [
        ['f', 'NeverFits', 'Invalid request: per-worker gpus must be a whole number of at least 0, got 1.5.'],
        ['w', 'NeverFits', 'Invalid request: workers must be a whole number of at least 1, got 0.'],
      ],
    );
  });
});

describe('GangScheduler backfill and starvation', () => {
  it('starts small gangs while a big one cannot fit and GPUs are idle', () => {
    const m = cluster([[node('n1'), 4], node('n2')]); // 12 GPUs idle, but no two whole nodes
    const r = new GangScheduler(m).cycle(
      [gang('big', { workers: 2, perWorker: req(8), arrivalMs: 0 }), gang('s1', { perWorker: req(4), arrivalMs: 1 }), gang('s2', { perWorker: req(2), arrivalMs: 2 })],
      0,
    );
    assert.deepEqual(r.admitted, [
      { key: 's1', nodes: ['n1'] },
      { key: 's2', nodes: ['n2'] },
    ]);
    assert.equal(waitFor(r, 'big').reason, 'InsufficientCapacity');
  });

  /**
   * Two 8-GPU nodes; a 4-GPU job arrives every minute and runs 3 minutes, so about 12 GPUs are always busy and a
   * 2×8 gang that arrives at minute 1 never finds both nodes empty by itself.
   */
  function simulate(starvationMs: number, minutes = 20) {
    const m = cluster([node('n1'), node('n2')]);
    const s = new GangScheduler(m, { starvationMs });
    const big = gang('big', { workers: 2, perWorker: req(8), arrivalMs: 1 * MIN });
    const pending = new Map<string, GangRequest>();
    const ends: [string, number][] = [];
    const log: { t: number; key: string; nodes: string[] }[] = [];
    const holdsAt = new Map<number, readonly string[] | undefined>();
    for (let t = 0; t <= minutes; t++) {
      const now = t * MIN;
      for (const [key, end] of ends) if (end === t) m.removePod(`${key}-0`);
      pending.set(`small-${String(t).padStart(2, '0')}`, gang(`small-${String(t).padStart(2, '0')}`, { perWorker: req(4), arrivalMs: now }));
      if (t === 1) pending.set(big.key, big);
      const r = s.cycle([...pending.values()], now);
      for (const a of r.admitted) {
        const g = pending.get(a.key)!;
        bind(m, g, a.nodes);
        pending.delete(a.key);
        log.push({ t, key: a.key, nodes: a.nodes });
        if (a.key !== 'big') ends.push([a.key, t + 3]);
      }
      holdsAt.set(t, s.heldNodes('big'));
    }
    return { log, holdsAt };
  }

  it('the big gang is not starved: after starvationMs it holds nodes, backfill stops there, and it starts once they drain', () => {
    const { log, holdsAt } = simulate(5 * MIN);
    const bigAt = log.find((e) => e.key === 'big')?.t;
    assert.equal(bigAt, 8, `big started at minute ${bigAt}; log ${JSON.stringify(log)}`);
    assert.deepEqual(holdsAt.get(5), undefined); // waited 4 minutes: backfill still runs
    assert.deepEqual(holdsAt.get(6), ['n1', 'n2']);
    assert.deepEqual(holdsAt.get(8), undefined); // admitted: nothing held any more
    const smallsWhileHeld = log.filter((e) => e.key !== 'big' && e.t >= 6 && e.t <= 8);
    assert.deepEqual(smallsWhileHeld, []);
    assert.ok(log.some((e) => e.key !== 'big' && e.t > 1 && e.t < 6), 'small gangs backfilled before the holds');
  });

  it('without starvation protection the same big gang never starts (the holds are what makes it run)', () => {
    const { log } = simulate(Number.POSITIVE_INFINITY);
    assert.equal(
      log.find((e) => e.key === 'big'),
      undefined,
    );
  });

  it('a higher-priority gang may still start on nodes held for a starving one; later equal ones may not', () => {
    const m = cluster([[node('n1'), 4], [node('n2'), 4]]);
    const s = new GangScheduler(m, { starvationMs: MIN });
    const r = s.cycle(
      [
        gang('big', { classKey: 'big', workers: 2, perWorker: req(8), arrivalMs: 0 }),
        gang('later', { classKey: 'small', perWorker: req(2), arrivalMs: 1 }),
        gang('urgent', { classKey: 'small', priority: 5, perWorker: req(2), arrivalMs: 2 }),
      ],
      2 * MIN,
    );
    assert.deepEqual(admittedKeys(r), ['urgent']);
    assert.deepEqual(s.heldNodes('big'), ['n1', 'n2']);
    const later = waitFor(r, 'later');
    assert.equal(later.reason, 'InsufficientCapacity');
    assert.match(later.message, /0 of the 2 eligible nodes large enough have that now and 2 more are held for an experiment that has waited longer/);
    assert.match(waitFor(r, 'big').message, /It has waited longer than 1m, so no experiment queued after it may start on n1, n2 until it has started\.$/);
  });

  it('holds the nodes nearest to fitting, keeps them across cycles, and forgets them when the gang leaves', () => {
    const m = cluster([[node('a'), 6], [node('b'), 2], [node('c'), 4], [node('d'), 1]]);
    const s = new GangScheduler(m, { starvationMs: MIN });
    const big = gang('big', { workers: 2, perWorker: req(8), arrivalMs: 0 });
    s.cycle([big], 2 * MIN);
    assert.deepEqual(s.heldNodes('big'), ['b', 'd']);
    // a frees up more than the held nodes; the holds stay put rather than chase it.
    m.removePod('busy/a');
    m.upsertPod('busy/a', pod('a', req(0)));
    const r = s.cycle([big], 3 * MIN);
    assert.deepEqual(r.admitted, []);
    assert.deepEqual(s.heldNodes('big'), ['b', 'd']);
    s.cycle([], 4 * MIN);
    assert.equal(s.heldNodes('big'), undefined);
  });

  it('only the head of a class queue holds nodes', () => {
    const m = cluster([[node('n1'), 4], [node('n2'), 4], [node('n3'), 4]]);
    const s = new GangScheduler(m, { starvationMs: MIN });
    s.cycle([gang('first', { perWorker: req(8), arrivalMs: 0 }), gang('second', { perWorker: req(8), arrivalMs: 1 })], 5 * MIN);
    assert.deepEqual(s.heldNodes('first'), ['n1']);
    assert.equal(s.heldNodes('second'), undefined);
  });
});

describe('GangScheduler never double-counts GPUs', () => {
  /** A tiny deterministic PRNG, so a failure reproduces. */
  function prng(seed: number) {
    let x = seed >>> 0 || 1;
    return (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
  }

  /**
   * Recounts, from the test's own list of admitted gangs (bound or not), what each node carries: it must fit the
   * node, and the model's free capacity must say exactly the rest, so a ledger bug cannot hide an over-commit.
   */
  function assertWithinCapacity(m: CapacityModel, gangs: readonly { g: GangRequest; nodes: string[] }[], when: string) {
    const load = new Map<string, { gpus: number; cpuMilli: number; memoryBytes: number; pods: number }>();
    for (const { g, nodes } of gangs) {
      for (const n of nodes) {
        const l = load.get(n) ?? { gpus: 0, cpuMilli: 0, memoryBytes: 0, pods: 0 };
        l.gpus += g.perWorker.gpus;
        l.cpuMilli += g.perWorker.cpuMilli;
        l.memoryBytes += g.perWorker.memoryBytes;
        l.pods += 1;
        load.set(n, l);
      }
    }
    for (const st of m.states()) {
      const info = st.info;
      if (info === undefined) continue;
      const l = load.get(st.name) ?? { gpus: 0, cpuMilli: 0, memoryBytes: 0, pods: 0 };
      const a = info.allocatable;
      const left = { gpus: a.gpus - l.gpus, cpuMilli: a.cpuMilli - l.cpuMilli, memoryBytes: a.memoryBytes - l.memoryBytes, pods: a.pods - l.pods };
      for (const [what, v] of Object.entries(left)) assert.ok(v >= 0, `${when}: ${st.name} over-committed on ${what} (${v})`);
      assert.deepEqual(m.free(st.name), left, `${when}: ledger of ${st.name}`);
    }
  }

  for (const seed of [1, 2, 3, 4, 5]) {
    it(`within and across cycles, with binding, completions and holds (seed ${seed})`, () => {
      const rand = prng(seed);
      const products = ['A', 'B'];
      const m = cluster(Array.from({ length: 12 }, (_, i) => node(`n${String(i).padStart(2, '0')}`, { product: products[i % 2]!, gpus: 4 + 4 * (i % 2) })));
      const classes = [
        { key: 'a-1x2', workers: 1, r: req(2, 4, 32), e: classEligibility({ gpuProduct: 'A', gpus: 2 }) },
        { key: 'b-2x8', workers: 2, r: req(8, 16, 128), e: classEligibility({ gpuProduct: 'B', gpus: 8 }) },
        { key: 'any-3x1', workers: 3, r: req(1, 2, 8), e: classEligibility({ gpus: 1 }) },
        { key: 'b-1x3', workers: 1, r: req(3, 2, 8), e: classEligibility({ gpuProduct: 'B', gpus: 3 }) },
      ];
      const s = new GangScheduler(m, { starvationMs: 3 * MIN });
      const pending = new Map<string, GangRequest>();
      const running: { g: GangRequest; nodes: string[]; end: number }[] = [];
      const unbound: { g: GangRequest; nodes: string[] }[] = [];
      let next = 0;
      let admittedCount = 0;
      for (let t = 0; t < 60; t++) {
        const now = t * MIN;
        // Pods of last cycle's admissions bind now; the reservations held them meanwhile.
        for (const u of unbound.splice(0)) {
          bind(m, u.g, u.nodes);
          running.push({ ...u, end: t + 1 + rand(6) });
        }
        for (let i = running.length - 1; i >= 0; i--) {
          const run = running[i]!;
          if (run.end > t) continue;
          run.nodes.forEach((_, w) => m.upsertPod(`${run.g.key}-${w}`, pod(run.nodes[w]!, run.g.perWorker, true), run.g.key));
          running.splice(i, 1);
        }
        for (let i = rand(5); i > 0; i--) {
          const c = classes[rand(classes.length)]!;
          const key = `g${next++}`;
          pending.set(key, gang(key, { classKey: c.key, workers: c.workers, perWorker: c.r, eligible: c.e.eligible, priority: rand(3), arrivalMs: now }));
        }
        const r = s.cycle([...pending.values()], now);
        for (const a of r.admitted) {
          const g = pending.get(a.key)!;
          assert.equal(new Set(a.nodes).size, g.workers, `${a.key}: ${g.workers} distinct nodes`);
          for (const n of a.nodes) assert.ok(g.eligible(m.node(n)!), `${a.key} on ineligible ${n}`);
          pending.delete(a.key);
          unbound.push({ g, nodes: a.nodes });
          admittedCount++;
        }
        assertWithinCapacity(m, [...running, ...unbound], `minute ${t}`);
      }
      assert.ok(admittedCount > 20, `only ${admittedCount} admitted`);
    });
  }

  it('reports a reserved gang admitted again with the same nodes, without reserving twice', () => {
    const m = cluster([node('n1'), node('n2')]);
    const s = new GangScheduler(m);
    const g = gang('g', { perWorker: req(4) });
    const first = s.cycle([g], 0);
    const again = s.cycle([g, gang('h', { perWorker: req(8) })], 1);
    assert.deepEqual(again.admitted, [...first.admitted, { key: 'h', nodes: ['n2'] }]);
    assert.equal(m.free('n1')?.gpus, 4);
  });

  it('gives each gang its own GPUs within one cycle', () => {
    const m = cluster([node('n1'), node('n2')]);
    const r = new GangScheduler(m).cycle(
      Array.from({ length: 5 }, (_, i) => gang(`g${i}`, { perWorker: req(4), arrivalMs: i })),
      0,
    );
    assert.deepEqual(
      r.admitted.map((a) => a.nodes[0]),
      ['n1', 'n1', 'n2', 'n2'],
    );
    assert.equal(waitFor(r, 'g4').reason, 'InsufficientCapacity');
  });
});

describe('GangScheduler eligibility cache', () => {
  it('follows node changes and a new class filter', () => {
    const m = cluster([node('n1', { labels: { pool: 'a' } }), node('n2')]);
    const s = new GangScheduler(m);
    const poolA = classEligibility({ nodeSelector: { pool: 'a' }, gpus: 8 }).eligible;
    assert.deepEqual(s.cycle([gang('g1', { perWorker: req(8), eligible: poolA })], 0).admitted, [{ key: 'g1', nodes: ['n1'] }]);
    assert.equal(s.cycle([gang('g2', { perWorker: req(8), eligible: poolA })], 1).waiting[0]?.reason, 'InsufficientCapacity');
    m.upsertNode(node('n2', { labels: { pool: 'a' } }));
    assert.deepEqual(s.cycle([gang('g2', { perWorker: req(8), eligible: poolA })], 2).admitted, [{ key: 'g2', nodes: ['n2'] }]);
    m.upsertNode(node('n3'));
    const poolB = classEligibility({ nodeSelector: { pool: 'b' }, gpus: 8 }).eligible;
    assert.equal(s.cycle([gang('g3', { perWorker: req(8), eligible: poolB })], 3).waiting[0]?.reason, 'NeverFits');
    assert.deepEqual(s.cycle([gang('g3', { perWorker: req(8), eligible: anyNode })], 4).admitted, [{ key: 'g3', nodes: ['n3'] }]);
  });
});

describe('classFit', () => {
  const cases: { name: string; nodes: (NodeInfo | [NodeInfo, number])[]; workers: number; r: Resources; want: { eligibleNodes: number; fitNow: number; fitMax: number } }[] = [
    { name: 'two 4-GPU workers per 8-GPU node', nodes: [node('a'), node('b'), node('c'), node('d')], workers: 2, r: req(4), want: { eligibleNodes: 4, fitNow: 4, fitMax: 4 } },
    { name: 'wide gangs need distinct nodes', nodes: [node('a'), node('b'), node('c'), node('d')], workers: 4, r: req(4), want: { eligibleNodes: 4, fitNow: 2, fitMax: 2 } },
    { name: 'one big node cannot host a 2-node gang', nodes: [node('a')], workers: 2, r: req(1), want: { eligibleNodes: 1, fitNow: 0, fitMax: 0 } },
    { name: 'uneven nodes', nodes: [node('a'), node('b', { gpus: 1 })], workers: 2, r: req(1), want: { eligibleNodes: 2, fitNow: 1, fitMax: 1 } },
    { name: 'busy nodes fit less now', nodes: [[node('a'), 8], [node('b'), 4], node('c')], workers: 2, r: req(4), want: { eligibleNodes: 3, fitNow: 1, fitMax: 3 } },
    { name: 'CPU-bound workers', nodes: [node('a', { cpu: 16 }), node('b', { cpu: 16 })], workers: 2, r: req(0, 8), want: { eligibleNodes: 2, fitNow: 2, fitMax: 2 } },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(classFit(cluster(c.nodes), anyNode, c.workers, c.r), c.want));
  }
});

function fromClass(cls: Parameters<typeof classEligibility>[0]): Pick<GangRequest, 'eligible' | 'explainIneligible'> {
  const e = classEligibility(cls);
  return { eligible: e.eligible, explainIneligible: e.explain };
}
