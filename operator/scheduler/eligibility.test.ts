import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Taint } from './capacity.ts';
import {
  classEligibility,
  ineligibilityBreakdown,
  nodeMatchesClass,
  tolerates,
  untoleratedTaint,
  workerTolerations,
  type ClassEligibility,
  type Toleration,
} from './eligibility.ts';
import { node } from './testing.ts';

describe('tolerates (core/v1 semantics)', () => {
  const taint: Taint = { key: 'dedicated', value: 'ml', effect: 'NoSchedule' };
  const cases: { name: string; t: Toleration; on?: Taint; want: boolean }[] = [
    { name: 'Equal with key, value and effect', t: { key: 'dedicated', operator: 'Equal', value: 'ml', effect: 'NoSchedule' }, want: true },
    { name: 'operator defaults to Equal', t: { key: 'dedicated', value: 'ml' }, want: true },
    { name: 'Equal with another value', t: { key: 'dedicated', operator: 'Equal', value: 'web' }, want: false },
    { name: 'Equal without value vs a valued taint', t: { key: 'dedicated', operator: 'Equal' }, want: false },
    { name: 'Equal without value vs a value-less taint', t: { key: 'gpu' }, on: { key: 'gpu', effect: 'NoSchedule' }, want: true },
    { name: 'Exists on the key', t: { key: 'dedicated', operator: 'Exists' }, want: true },
    { name: 'Exists on another key', t: { key: 'other', operator: 'Exists' }, want: false },
    { name: 'empty key with Exists tolerates everything', t: { operator: 'Exists' }, want: true },
    { name: 'empty effect matches every effect', t: { key: 'dedicated', operator: 'Exists' }, on: { ...taint, effect: 'NoExecute' }, want: true },
    { name: 'another effect does not match', t: { key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }, want: false },
    { name: 'an unknown operator tolerates nothing', t: { key: 'dedicated', operator: 'Gt', value: 'ml' }, want: false },
  ];
  for (const c of cases) it(c.name, () => assert.equal(tolerates(c.t, c.on ?? taint), c.want));
});

describe('untoleratedTaint', () => {
  it('ignores PreferNoSchedule and reports the first hard taint left', () => {
    const taints: Taint[] = [
      { key: 'soft', effect: 'PreferNoSchedule' },
      { key: 'a', effect: 'NoSchedule' },
      { key: 'b', value: 'x', effect: 'NoExecute' },
    ];
    assert.deepEqual(untoleratedTaint(taints, []), taints[1]);
    assert.deepEqual(untoleratedTaint(taints, [{ key: 'a', operator: 'Exists' }]), taints[2]);
    assert.equal(untoleratedTaint(taints, [{ key: 'a', operator: 'Exists' }, { key: 'b', value: 'x' }]), undefined);
  });
});

describe('workerTolerations', () => {
  it('adds the GPU taint toleration for GPU workers only', () => {
    const own: Toleration = { key: 'team', operator: 'Equal', value: 'ml', effect: 'NoSchedule' };
    assert.deepEqual(workerTolerations({ gpus: 2, tolerations: [own] }), [own, { key: 'nvidia.com/gpu', operator: 'Exists' }]);
    assert.deepEqual(workerTolerations({ gpus: 1 }, 'example.com/gpu'), [{ key: 'example.com/gpu', operator: 'Exists' }]);
    assert.deepEqual(workerTolerations({ gpus: 0, tolerations: [own] }), [own]);
  });
});

describe('nodeMatchesClass', () => {
  const gpuTaint: Taint = { key: 'nvidia.com/gpu', value: 'true', effect: 'NoSchedule' };
  const cls: ClassEligibility = {
    workerNodeSelector: { 'arena/worker': 'true' },
    nodeSelector: { pool: 'a100' },
    gpuProduct: 'A100',
    gpus: 4,
  };
  const good = { labels: { 'arena/worker': 'true', pool: 'a100' }, product: 'A100', taints: [gpuTaint] };
  const cases: { name: string; n: ReturnType<typeof node>; c?: ClassEligibility; why?: string }[] = [
    { name: 'a node that meets everything', n: node('n', good) },
    { name: 'not Ready', n: node('n', { ...good, ready: false }), why: 'not Ready' },
    { name: 'cordoned', n: node('n', { ...good, unschedulable: true }), why: 'cordoned (spec.unschedulable)' },
    {
      name: 'not a worker',
      n: node('n', { ...good, labels: { pool: 'a100' } }),
      why: "missing label arena/worker=true (the training cluster's workerNodeSelector)",
    },
    {
      name: 'another pool',
      n: node('n', { ...good, labels: { 'arena/worker': 'true', pool: 'h100' } }),
      why: 'missing label pool=a100 (the class nodeSelector)',
    },
    { name: 'another GPU product', n: node('n', { ...good, product: 'H100' }), why: 'GPU product H100 (class needs A100)' },
    { name: 'no GPU product label', n: node('n', { ...good, gpus: 0 }), why: 'no nvidia.com/gpu.product label (class needs A100)' },
    { name: 'too few GPUs', n: node('n', { ...good, gpus: 2 }), why: '2 allocatable GPUs (a worker needs 4)' },
    {
      name: 'an untolerated taint',
      n: node('n', { ...good, taints: [gpuTaint, { key: 'team', value: 'web', effect: 'NoExecute' }] }),
      why: 'taint team=web:NoExecute not tolerated (add it to the class tolerations)',
    },
    {
      name: 'a taint the class tolerates',
      n: node('n', { ...good, taints: [gpuTaint, { key: 'team', value: 'web', effect: 'NoExecute' }] }),
      c: { ...cls, tolerations: [{ key: 'team', operator: 'Exists' }] },
    },
    { name: 'a soft taint only', n: node('n', { ...good, taints: [gpuTaint, { key: 'team', effect: 'PreferNoSchedule' }] }) },
    {
      name: 'the GPU taint on a CPU-only class',
      n: node('n', { taints: [gpuTaint] }),
      c: { gpus: 0 },
      why: 'taint nvidia.com/gpu=true:NoSchedule not tolerated (add it to the class tolerations)',
    },
    { name: 'empty selectors match any node', n: node('n', { gpus: 0 }), c: { gpus: 0 } },
  ];
  for (const c of cases) {
    it(`${c.why === undefined ? 'accepts' : 'rejects'} ${c.name}`, () => {
      const e = classEligibility(c.c ?? cls);
      assert.equal(e.explain(c.n), c.why);
      assert.equal(e.eligible(c.n), c.why === undefined);
      assert.equal(nodeMatchesClass(c.n, c.c ?? cls), c.why === undefined);
    });
  }
  it('uses the GPU taint key it is given', () => {
    const n = node('n', { taints: [{ key: 'example.com/gpu', effect: 'NoSchedule' }] });
    assert.equal(nodeMatchesClass(n, { gpus: 1 }), false);
    assert.equal(nodeMatchesClass(n, { gpus: 1 }, 'example.com/gpu'), true);
  });
});

describe('ineligibilityBreakdown', () => {
  it('counts reasons, most common first, and folds the tail', () => {
    const e = classEligibility({ nodeSelector: { pool: 'a' }, gpus: 1 });
    const nodes = [
      node('ok', { labels: { pool: 'a' } }),
      node('b1', { labels: { pool: 'b' } }),
      node('b2', { labels: { pool: 'b' } }),
      node('b3', { labels: { pool: 'b' }, ready: false }),
      node('c1', { labels: { pool: 'a' }, unschedulable: true }),
      node('d1', { labels: { pool: 'a' }, gpus: 0 }),
    ];
    assert.equal(
      ineligibilityBreakdown(nodes, e.explain, 2),
      '2 nodes: missing label pool=a (the class nodeSelector); 1 node: 0 allocatable GPUs (a worker needs 1); 2 nodes: other reasons',
    );
    assert.equal(ineligibilityBreakdown([nodes[0]!], e.explain), '');
  });
});
