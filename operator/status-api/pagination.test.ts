import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeContinue, encodeContinue, InvalidContinueToken, paginate, prefixRange } from './pagination.ts';

const keys = ['a/1', 'a/2', 'a/3', 'a-b/1', 'b/1', 'b/2'].sort();

describe('keyset pagination', () => {
  test('pages cover every item once, in order, with an exact total', () => {
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = paginate(keys, (k) => k, () => true, 4, after);
      assert.equal(page.total, keys.length);
      seen.push(...page.items);
      if (page.nextAfter === undefined) break;
      after = page.nextAfter;
    }
    assert.deepEqual(seen, keys);
  });

  test('items added or removed between pages neither repeat nor hide the ones that stayed', () => {
    const first = paginate(keys, (k) => k, () => true, 3);
    const changed = [...keys.filter((k) => k !== first.items[0]), '0/new', 'zz/new'].sort();
    const second = paginate(changed, (k) => k, () => true, 100, first.nextAfter);
    assert.deepEqual([...first.items, ...second.items].filter((k) => keys.includes(k)), keys);
    assert.ok(!second.items.includes('0/new'), 'an item added before the cursor is not served late');
  });

  test('filters and a namespace range', () => {
    const range = prefixRange(keys, 'a/');
    assert.deepEqual(keys.slice(...range), ['a/1', 'a/2', 'a/3']);
    const page = paginate(keys, (k) => k, (k) => !k.endsWith('2'), 10, undefined, range);
    assert.deepEqual(page, { items: ['a/1', 'a/3'], total: 2 });
    assert.deepEqual(keys.slice(...prefixRange(keys, 'c/')), []);
  });

  test('a continue token works only with the filters it was issued for', () => {
    const token = encodeContinue('a/2', { namespace: 'a', phase: 'Running' });
    assert.equal(decodeContinue(token, { phase: 'Running', namespace: 'a' }), 'a/2');
    assert.throws(() => decodeContinue(token, { namespace: 'a' }), InvalidContinueToken);
    assert.throws(() => decodeContinue('not-a-token', {}), InvalidContinueToken);
    assert.throws(() => decodeContinue(Buffer.from('{"v":2}').toString('base64url'), {}), InvalidContinueToken);
  });
});
