import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPatch, diff, pointerSegment } from './json-patch.ts';

const cases: { name: string; before: unknown; after: unknown; ops: unknown[] }[] = [
  { name: 'equal documents', before: { a: { b: [1, 2] } }, after: { a: { b: [1, 2] } }, ops: [] },
  { name: 'an added key', before: { spec: {} }, after: { spec: { run: 1 } }, ops: [{ op: 'add', path: '/spec/run', value: 1 }] },
  { name: 'an added object', before: {}, after: { spec: { worker: { gpus: 0 } } }, ops: [{ op: 'add', path: '/spec', value: { worker: { gpus: 0 } } }] },
  { name: 'a changed value', before: { a: 1 }, after: { a: 2 }, ops: [{ op: 'replace', path: '/a', value: 2 }] },
  { name: 'a removed key', before: { a: 1, b: 2 }, after: { b: 2 }, ops: [{ op: 'remove', path: '/a' }] },
  { name: 'arrays are replaced whole', before: { l: [1, 2] }, after: { l: [1, 3] }, ops: [{ op: 'replace', path: '/l', value: [1, 3] }] },
  { name: 'a type change', before: { a: { x: 1 } }, after: { a: 'x' }, ops: [{ op: 'replace', path: '/a', value: 'x' }] },
  {
    name: 'keys with / and ~ are escaped',
    before: { labels: {} },
    after: { labels: { 'arena.agilerl.com/pool': 'a', 'x~y': 'b' } },
    ops: [
      { op: 'add', path: '/labels/arena.agilerl.com~1pool', value: 'a' },
      { op: 'add', path: '/labels/x~0y', value: 'b' },
    ],
  },
];

for (const c of cases) {
  test(`diff: ${c.name}`, () => {
    const ops = diff(c.before, c.after);
    assert.deepEqual(ops, c.ops);
    assert.deepEqual(applyPatch(c.before, ops), c.after, 'applying the patch gives the target');
  });
}

test('pointer segments escape ~ before /', () => {
  assert.equal(pointerSegment('~/'), '~0~1');
});

test('applyPatch refuses paths that do not exist', () => {
  assert.throws(() => applyPatch({}, [{ op: 'replace', path: '/a/b', value: 1 }]), /does not exist/);
  assert.throws(() => applyPatch({}, [{ op: 'remove', path: '/a' }]), /does not exist/);
});
