import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalScalars } from './canonical.ts';

const cases: { name: string; doc: unknown; payload: unknown; want: unknown; changed: string[] }[] = [
  { name: 'a string integer', doc: { t: { pop_size: '4' } }, payload: { t: { pop_size: 4 } }, want: { t: { pop_size: 4 } }, changed: ['t.pop_size'] },
  { name: 'a YAML-1.1 word for a boolean', doc: { hpo: 'on' }, payload: { hpo: true }, want: { hpo: true }, changed: ['hpo'] },
  { name: 'a number for a boolean', doc: { hpo: 1 }, payload: { hpo: true }, want: { hpo: true }, changed: ['hpo'] },
  { name: 'inside a list', doc: { h: ['64', 64] }, payload: { h: [64, 64] }, want: { h: [64, 64] }, changed: ['h[0]'] },
  { name: 'same type, other value (a float for an int) stays', doc: { n: 64.0 }, payload: { n: 64 }, want: { n: 64 }, changed: [] },
  { name: 'a key the payload renames stays as written', doc: { selection_strategy: { tournament_size: '3' } }, payload: { tournament_selection: { tournament_size: 3 } }, want: { selection_strategy: { tournament_size: '3' } }, changed: [] },
  { name: 'defaults the payload adds are not written', doc: { a: {} }, payload: { a: { lr: 0.001 } }, want: { a: {} }, changed: [] },
  { name: 'lists of other lengths are left alone', doc: { h: ['1'] }, payload: { h: [1, 2] }, want: { h: ['1'] }, changed: [] },
  { name: 'a scalar the payload turns into an object stays', doc: { q: '4bit' }, payload: { q: { bits: 4 } }, want: { q: '4bit' }, changed: [] },
];

for (const c of cases) {
  test(c.name, () => {
    const { value, changes } = canonicalScalars(c.doc, c.payload);
    assert.deepEqual(value, c.want);
    assert.deepEqual(changes.map((x) => x.field), c.changed);
  });
}

test('the document passed in is not changed', () => {
  const doc = { t: { pop_size: '4' } };
  canonicalScalars(doc, { t: { pop_size: 4 } });
  assert.deepEqual(doc, { t: { pop_size: '4' } });
});
