import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CapacityModel, type NodeInfo } from './capacity.ts';
import { GiB, node, pod, req } from './testing.ts';

function model(...nodes: NodeInfo[]): CapacityModel {
  const m = new CapacityModel();
  for (const n of nodes) m.upsertNode(n);
  return m;
}

describe('CapacityModel pods', () => {
  it('counts a bound pod against its node', () => {
    const m = model(node('n1'));
    m.upsertPod('ns/p', pod('n1', req(2, 4, 16)));
    assert.deepEqual(m.free('n1'), { gpus: 6, cpuMilli: 60_000, memoryBytes: 496 * GiB, pods: 109 });
  });

  const countsNowhere = [
    { name: 'unbound pod', usage: { ...pod('', req(8)) } },
    { name: 'terminal pod', usage: pod('n1', req(8), true) },
  ];
  for (const c of countsNowhere) {
    it(`does not count a ${c.name}`, () => {
      const m = model(node('n1'));
      m.upsertPod('ns/p', c.usage);
      assert.equal(m.free('n1')?.gpus, 8);
      assert.equal(m.podCount, 0);
    });
  }

  it('moves a pod from unbound to bound to terminal', () => {
    const m = model(node('n1'));
    m.upsertPod('ns/p', pod('', req(4)));
    m.upsertPod('ns/p', pod('n1', req(4)));
    assert.equal(m.free('n1')?.gpus, 4);
    m.upsertPod('ns/p', pod('n1', req(4), true));
    assert.equal(m.free('n1')?.gpus, 8);
    assert.equal(m.podCount, 0);
  });

  it('replaces, not adds, on repeated updates and forgets on delete', () => {
    const m = model(node('n1'));
    m.upsertPod('ns/p', pod('n1', req(2)));
    m.upsertPod('ns/p', pod('n1', req(3)));
    assert.equal(m.free('n1')?.gpus, 5);
    m.removePod('ns/p');
    m.removePod('ns/p');
    assert.equal(m.free('n1')?.gpus, 8);
  });

  it('keeps counting pods on a node it learns about later, and forgets a deleted node once its pods go', () => {
    const m = new CapacityModel();
    m.upsertPod('ns/p', pod('late', req(8)));
    assert.equal(m.free('late'), undefined);
    m.upsertNode(node('late'));
    assert.equal(m.free('late')?.gpus, 0);
    m.removeNode('late');
    assert.equal(m.free('late'), undefined);
    assert.equal(m.nodeCount, 0);
    m.removePod('ns/p');
    assert.equal([...m.states()].length, 0);
  });

  it('reports 0, not a negative number, on an over-committed node', () => {
    const m = model(node('n1', { gpus: 2 }));
    m.upsertPod('a', pod('n1', req(2)));
    m.upsertPod('b', pod('n1', req(2)));
    assert.equal(m.free('n1')?.gpus, 0);
  });
});

describe('CapacityModel reservations', () => {
  it('holds capacity until released', () => {
    const m = model(node('n1'), node('n2'));
    m.reserve('g', [
      { node: 'n1', ...req(8) },
      { node: 'n2', ...req(8) },
    ]);
    assert.equal(m.free('n1')?.gpus, 0);
    assert.equal(m.free('n2')?.pods, 109);
    assert.deepEqual(m.reservedNodes('g'), ['n1', 'n2']);
    m.release('g');
    assert.equal(m.free('n1')?.gpus, 8);
    assert.equal(m.free('n2')?.pods, 110);
    assert.equal(m.reservedNodes('g'), undefined);
    assert.equal(m.reservationCount, 0);
  });

  it("drops a node's reservation when the gang's pod is counted there, so the worker counts once", () => {
    const m = model(node('n1'), node('n2'));
    m.reserve('g', [
      { node: 'n1', ...req(4) },
      { node: 'n2', ...req(4) },
    ]);
    m.upsertPod('ns/g-0', pod('n1', req(4)), 'g');
    assert.equal(m.free('n1')?.gpus, 4);
    assert.equal(m.free('n2')?.gpus, 4);
    m.upsertPod('ns/g-0', pod('n1', req(4)), 'g'); // a status update of the same pod
    assert.equal(m.free('n1')?.gpus, 4);
    m.upsertPod('ns/g-1', pod('n2', req(4)), 'g');
    m.release('g');
    assert.equal(m.free('n1')?.gpus, 4);
    assert.equal(m.free('n2')?.gpus, 4);
  });

  it('an unbound gang pod leaves the reservation in place', () => {
    const m = model(node('n1'));
    m.reserve('g', [{ node: 'n1', ...req(4) }]);
    m.upsertPod('ns/g-0', pod('', req(4)), 'g');
    assert.equal(m.free('n1')?.gpus, 4);
  });

  it("a pod of another gang does not drop this gang's reservation", () => {
    const m = model(node('n1'));
    m.reserve('g', [{ node: 'n1', ...req(4) }]);
    m.upsertPod('ns/other', pod('n1', req(4)), 'other');
    assert.equal(m.free('n1')?.gpus, 0);
  });

  it('re-reserving skips nodes where the gang already has a counted pod (e.g. rebuilt after a restart)', () => {
    const m = model(node('n1'), node('n2'));
    m.upsertPod('ns/g-0', pod('n1', req(4)), 'g');
    m.reserve('g', [
      { node: 'n1', ...req(4) },
      { node: 'n2', ...req(4) },
    ]);
    assert.equal(m.free('n1')?.gpus, 4);
    assert.equal(m.free('n2')?.gpus, 4);
    assert.deepEqual(m.reservedNodes('g'), ['n1', 'n2']);
  });

  it('a second reserve replaces the first', () => {
    const m = model(node('n1'), node('n2'));
    m.reserve('g', [{ node: 'n1', ...req(8) }]);
    m.reserve('g', [{ node: 'n2', ...req(2) }]);
    assert.equal(m.free('n1')?.gpus, 8);
    assert.equal(m.free('n2')?.gpus, 6);
  });
});

describe('CapacityModel.nodesVersion', () => {
  const base = node('n1', { labels: { pool: 'a' } });
  const cases: { change: string; next: NodeInfo; bumps: boolean }[] = [
    { change: 'nothing (a heartbeat)', next: { ...base, labels: { ...base.labels } }, bumps: false },
    { change: 'a label', next: { ...base, labels: { ...base.labels, pool: 'b' } }, bumps: true },
    { change: 'a taint', next: { ...base, taints: [{ key: 'k', effect: 'NoSchedule' }] }, bumps: true },
    { change: 'readiness', next: { ...base, ready: false }, bumps: true },
    { change: 'cordon', next: { ...base, unschedulable: true }, bumps: true },
    { change: 'allocatable GPUs', next: { ...base, allocatable: { ...base.allocatable, gpus: 4 } }, bumps: true },
  ];
  for (const c of cases) {
    it(`${c.bumps ? 'changes' : 'stays'} when ${c.change} changes`, () => {
      const m = model(base);
      const v = m.nodesVersion;
      m.upsertNode(c.next);
      assert.equal(m.nodesVersion !== v, c.bumps);
    });
  }
  it('changes when nodes come and go, not on pods or reservations', () => {
    const m = new CapacityModel();
    const v0 = m.nodesVersion;
    m.upsertNode(node('n1'));
    const v1 = m.nodesVersion;
    assert.notEqual(v1, v0);
    m.upsertPod('p', pod('n1', req(1)));
    m.reserve('g', [{ node: 'n1', ...req(1) }]);
    assert.equal(m.nodesVersion, v1);
    m.removeNode('n1');
    assert.notEqual(m.nodesVersion, v1);
  });
});

describe('CapacityModel.summary', () => {
  it('totals GPUs per product on Ready, schedulable nodes', () => {
    const m = model(
      node('a1', { product: 'A100' }),
      node('a2', { product: 'A100' }),
      node('h1', { product: 'H100', gpus: 4 }),
      node('down', { product: 'H100', ready: false }),
      node('cordoned', { product: 'H100', unschedulable: true }),
      node('cpu', { gpus: 0 }),
    );
    m.upsertPod('p', pod('a1', req(3)));
    m.reserve('g', [{ node: 'h1', ...req(4) }]);
    assert.deepEqual(m.summary(), {
      nodes: { total: 6, ready: 4, notReady: 2 },
      gpus: {
        total: 20,
        allocated: 3,
        reserved: 4,
        free: 13,
        byProduct: [
          { product: 'A100', total: 16, allocated: 3, reserved: 0, free: 13 },
          { product: 'H100', total: 4, allocated: 0, reserved: 4, free: 0 },
        ],
      },
    });
  });

  it('narrows to worker nodes', () => {
    const m = model(node('w', { labels: { worker: 'true' } }), node('other'));
    const s = m.summary((n) => n.labels.worker === 'true');
    assert.equal(s.nodes.total, 1);
    assert.equal(s.gpus.total, 8);
  });
});

it('what each gang holds: its reservation until its pods count, then its pods, and nothing once they end', () => {
  const m = new CapacityModel();
  m.upsertNode(node('n1'));
  m.upsertNode(node('n2'));
  m.reserve('ns/g', [
    { node: 'n1', ...req(4) },
    { node: 'n2', ...req(4) },
  ]);
  assert.deepEqual(m.gangUsage().get('ns/g'), req(8, 2, 2));
  // One pod lands: its reservation entry goes, the pod counts instead; the total stays.
  m.upsertPod('ns/p0', pod('n1', req(4)), 'ns/g');
  assert.deepEqual(m.gangUsage().get('ns/g'), req(8, 2, 2));
  m.release('ns/g');
  assert.deepEqual(m.gangUsage().get('ns/g'), req(4));
  m.upsertPod('ns/p0', pod('n1', req(4), true), 'ns/g');
  assert.equal(m.gangUsage().has('ns/g'), false, 'a gang that holds nothing is forgotten');
  m.upsertPod('ns/other', pod('n2', req(2)));
  assert.equal(m.gangUsage().size, 0, 'pods of no gang count for none');
});
