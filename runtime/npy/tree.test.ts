import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeNpyBase64, ndarray, NdArray } from './npy.ts';
import { MAX_DEPTH, WireError, decodeTree, encodeTree, leaves } from './tree.ts';

const f4 = (...values: number[]) => ndarray('f4', [1, values.length], values);

test('nested payloads round-trip: dict of tuple of arrays, null leaves, odd keys', () => {
  const tree = { image: [f4(1, 2), f4(3)], mask: null, 'agent 0': f4(4), __proto__x: f4(5) };
  const wire = JSON.parse(JSON.stringify(encodeTree(tree))) as Record<string, unknown>;
  assert.equal(typeof wire.mask, 'object');
  assert.ok(Array.isArray(wire.image));
  const back = decodeTree(wire, 'obs') as Record<string, unknown>;
  assert.deepEqual(Object.keys(back), ['image', 'mask', 'agent 0', '__proto__x']);
  assert.deepEqual(
    leaves(back as never, 'obs').map((l) => [l.path, [...l.array.data]]),
    [
      ['obs.image[0]', [1, 2]],
      ['obs.image[1]', [3]],
      ['obs["agent 0"]', [4]],
      ['obs.__proto__x', [5]],
    ],
  );
});

test('a key named __proto__ stays a key', () => {
  const back = decodeTree(JSON.parse(`{"__proto__": "${encodeNpyBase64(f4(1))}"}`), 'obs') as Record<string, unknown>;
  assert.ok(Object.keys(back).includes('__proto__'));
  assert.ok(back['__proto__'] instanceof NdArray);
});

const bad: { name: string; value: unknown; error: RegExp }[] = [
  { name: 'a number leaf', value: { a: 3 }, error: /^obs\.a: expected a base64 \.npy string, an object, an array or null, got a number$/ },
  { name: 'a boolean leaf', value: [true], error: /^obs\[0\]: .*got boolean$/ },
  { name: 'bad base64', value: { a: [null, 'QU=D'] }, error: /^obs\.a\[1\]: not valid base64/ },
  { name: 'not a .npy', value: 'QUJD', error: /^obs: not a \.npy file/ },
  { name: 'too deep', value: JSON.parse('['.repeat(MAX_DEPTH + 2) + ']'.repeat(MAX_DEPTH + 2)), error: /nested deeper than 32 levels/ },
];

for (const c of bad) {
  test(`decodeTree refuses ${c.name} and names the field`, () => {
    assert.throws(() => decodeTree(c.value, 'obs'), (err: unknown) => err instanceof WireError && c.error.test(err.message));
  });
}
