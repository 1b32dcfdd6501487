// Byte vectors built by hand from the NPY format description (bad-files.ts holds the builder and the files the codec
// must refuse), independent of the codec's writer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { badNpyFiles, base64Cases, h, npy } from './bad-files.ts';
import { NdArray, NpyError, decodeBase64, decodeNpy, decodeNpyBase64, encodeBase64, encodeNpy, encodeNpyBase64, ndarray, type NpyDtype } from './npy.ts';

interface ReadCase {
  name: string;
  bytes: Uint8Array;
  dtype: NpyDtype;
  shape: number[];
  values: (number | bigint)[];
}

const readCases: ReadCase[] = [
  { name: '<f4 vector', bytes: npy(h('<f4', '(2,)'), [0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0]), dtype: 'f4', shape: [2], values: [1, -2.5] },
  { name: '>f4 vector (byte-swapped)', bytes: npy(h('>f4', '(2,)'), [0x3f, 0x80, 0, 0, 0xc0, 0x20, 0, 0]), dtype: 'f4', shape: [2], values: [1, -2.5] },
  { name: '<f8 0-d scalar', bytes: npy(h('<f8', '()'), [0, 0, 0, 0, 0, 0, 0xe0, 0x3f]), dtype: 'f8', shape: [], values: [0.5] },
  { name: '>f8 (1,)', bytes: npy(h('>f8', '(1,)'), [0xc0, 0x59, 0, 0, 0, 0, 0, 0]), dtype: 'f8', shape: [1], values: [-100] },
  { name: '|i1', bytes: npy(h('|i1', '(3,)'), [0xff, 0x00, 0x7f]), dtype: 'i1', shape: [3], values: [-1, 0, 127] },
  { name: '<i2', bytes: npy(h('<i2', '(2,)'), [0xfe, 0xff, 0x02, 0x01]), dtype: 'i2', shape: [2], values: [-2, 258] },
  { name: '>i2', bytes: npy(h('>i2', '(2,)'), [0xff, 0xfe, 0x01, 0x02]), dtype: 'i2', shape: [2], values: [-2, 258] },
  { name: '<i4', bytes: npy(h('<i4', '(1,)'), [0x60, 0x79, 0xfe, 0xff]), dtype: 'i4', shape: [1], values: [-100000] },
  { name: '>i4', bytes: npy(h('>i4', '(1,)'), [0xff, 0xfe, 0x79, 0x60]), dtype: 'i4', shape: [1], values: [-100000] },
  { name: '<i8', bytes: npy(h('<i8', '(2,)'), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0x20, 0]), dtype: 'i8', shape: [2], values: [-1n, 2n ** 53n + 1n] },
  { name: '>i8', bytes: npy(h('>i8', '(1,)'), [0, 0, 0, 0, 0, 0, 1, 2]), dtype: 'i8', shape: [1], values: [258n] },
  { name: '|u1 matrix', bytes: npy(h('|u1', '(2, 2)'), [0, 1, 254, 255]), dtype: 'u1', shape: [2, 2], values: [0, 1, 254, 255] },
  { name: '<u2', bytes: npy(h('<u2', '(1,)'), [0xff, 0xff]), dtype: 'u2', shape: [1], values: [65535] },
  { name: '>u2', bytes: npy(h('>u2', '(1,)'), [0x00, 0x01]), dtype: 'u2', shape: [1], values: [1] },
  { name: '<u4', bytes: npy(h('<u4', '(1,)'), [0xff, 0xff, 0xff, 0xff]), dtype: 'u4', shape: [1], values: [4294967295] },
  { name: '>u4', bytes: npy(h('>u4', '(1,)'), [0x01, 0x02, 0x03, 0x04]), dtype: 'u4', shape: [1], values: [0x01020304] },
  { name: '<u8', bytes: npy(h('<u8', '(1,)'), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), dtype: 'u8', shape: [1], values: [2n ** 64n - 1n] },
  { name: '>u8', bytes: npy(h('>u8', '(1,)'), [0, 0, 0, 0, 0, 0, 0x01, 0x00]), dtype: 'u8', shape: [1], values: [256n] },
  { name: '|b1', bytes: npy(h('|b1', '(3,)'), [1, 0, 1]), dtype: 'b1', shape: [3], values: [1, 0, 1] },
  { name: '<f4 empty batch (0, 4)', bytes: npy(h('<f4', '(0, 4)'), []), dtype: 'f4', shape: [0, 4], values: [] },
  // [[1, 2, 3], [4, 5, 6]] stored column by column.
  { name: 'Fortran order 2-d', bytes: npy(h('<i4', '(2, 3)', true), [1, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0, 0, 6, 0, 0, 0]), dtype: 'i4', shape: [2, 3], values: [1, 2, 3, 4, 5, 6] },
  // Element (i, j, k) = 4i + 2j + k, first axis fastest in the file.
  { name: 'Fortran order 3-d', bytes: npy(h('|u1', '(2, 2, 2)', true), [0, 4, 2, 6, 1, 5, 3, 7]), dtype: 'u1', shape: [2, 2, 2], values: [0, 1, 2, 3, 4, 5, 6, 7] },
  { name: 'Fortran order big-endian', bytes: npy(h('>i2', '(2, 2)', true), [0, 1, 0, 3, 0, 2, 0, 4]), dtype: 'i2', shape: [2, 2], values: [1, 2, 3, 4] },
  { name: 'format 2.0', bytes: npy(h('<f4', '(1,)'), [0, 0, 0x80, 0x3f], { version: 2 }), dtype: 'f4', shape: [1], values: [1] },
  { name: 'format 3.0', bytes: npy(h('<f4', '(1,)'), [0, 0, 0x80, 0x3f], { version: 3 }), dtype: 'f4', shape: [1], values: [1] },
  {
    name: 'old writer: double quotes, keys in another order, no trailing comma, 16-byte alignment',
    bytes: npy(`{"shape": (1,), "fortran_order": False, "descr": "<f4"}`, [0, 0, 0x80, 0x3f], { align: 16 }),
    dtype: 'f4',
    shape: [1],
    values: [1],
  },
  { name: 'Python 2 long in shape', bytes: npy(h('|u1', '(2L,)'), [7, 8]), dtype: 'u1', shape: [2], values: [7, 8] },
  { name: 'unpadded header', bytes: npy(h('|u1', '(1,)'), [9], { raw: true }), dtype: 'u1', shape: [1], values: [9] },
];

for (const c of readCases) {
  test(`decode ${c.name}`, () => {
    const a = decodeNpy(c.bytes);
    assert.equal(a.dtype, c.dtype);
    assert.deepEqual(a.shape, c.shape);
    assert.deepEqual([...a.data], c.values);
  });
}

test('decode reads from a Buffer slice at an odd offset', () => {
  const bytes = readCases[0]!.bytes;
  const pool = Buffer.alloc(bytes.length + 3);
  pool.set(bytes, 3);
  assert.deepEqual([...decodeNpy(pool.subarray(3)).data], [1, -2.5]);
});

for (const c of badNpyFiles) {
  test(`decode refuses ${c.name}`, () => {
    assert.throws(() => decodeNpy(c.bytes), (err: unknown) => err instanceof NpyError && c.error.test(err.message));
  });
}

const writeCases: { name: string; array: NdArray; header: string }[] = [
  { name: 'f4 matrix', array: ndarray('f4', [2, 3], [1, 2, 3, 4, 5, 6]), header: h('<f4', '(2, 3)') },
  { name: 'f8 scalar', array: ndarray('f8', [], [0.25]), header: h('<f8', '()') },
  { name: 'i1', array: ndarray('i1', [2], [-128, 127]), header: h('|i1', '(2,)') },
  { name: 'i2', array: ndarray('i2', [1], [-3]), header: h('<i2', '(1,)') },
  { name: 'i4', array: ndarray('i4', [1, 1], [7]), header: h('<i4', '(1, 1)') },
  { name: 'i8', array: ndarray('i8', [2], [-5n, 2n ** 62n]), header: h('<i8', '(2,)') },
  { name: 'u1', array: ndarray('u1', [3], [0, 128, 255]), header: h('|u1', '(3,)') },
  { name: 'u2', array: ndarray('u2', [1], [65535]), header: h('<u2', '(1,)') },
  { name: 'u4', array: ndarray('u4', [1], [4000000000]), header: h('<u4', '(1,)') },
  { name: 'u8', array: ndarray('u8', [1], [2n ** 63n]), header: h('<u8', '(1,)') },
  { name: 'b1', array: ndarray('b1', [2], [true, false]), header: h('|b1', '(2,)') },
  { name: 'empty', array: ndarray('f4', [0, 4]), header: h('<f4', '(0, 4)') },
];

for (const c of writeCases) {
  test(`encode ${c.name}: the hand-built bytes, and back`, () => {
    const bytes = encodeNpy(c.array);
    const data = [...new Uint8Array(c.array.data.buffer, c.array.data.byteOffset, c.array.data.byteLength)];
    assert.deepEqual([...bytes], [...npy(c.header, data)]);
    assert.equal((bytes.length - data.length) % 64, 0);
    const back = decodeNpy(bytes);
    assert.equal(back.dtype, c.array.dtype);
    assert.deepEqual(back.shape, c.array.shape);
    assert.deepEqual([...back.data], [...c.array.data]);
  });
}

for (const version of [1, 2, 3] as const) {
  test(`encode as format ${version}.0 and back`, () => {
    const a = ndarray('f8', [2, 2], [1.5, -2, 3, Number.MAX_VALUE]);
    const bytes = encodeNpy(a, { version });
    assert.equal(bytes[6], version);
    assert.deepEqual(bytes.subarray(0, bytes.length - 32), npy(h('<f8', '(2, 2)'), [], { version }));
    assert.deepEqual([...decodeNpy(bytes).data], [1.5, -2, 3, Number.MAX_VALUE]);
  });
}

test('NdArray refuses data that does not fit its dtype or shape', () => {
  assert.throws(() => new NdArray('f4', [3], new Float32Array(2)), /holds 3 elements, the data has 2/);
  assert.throws(() => new NdArray('f4', [1], new Float64Array(1)), /needs a Float32Array, got a Float64Array/);
  assert.throws(() => new NdArray('i8', [1.5], new BigInt64Array(1)), /not a tuple of non-negative integers/);
});

for (const c of base64Cases) {
  test(`base64 ${JSON.stringify(c.input)}`, () => {
    if (c.error) {
      assert.throws(() => decodeBase64(c.input), (err: unknown) => err instanceof NpyError && c.error!.test(err.message));
    } else {
      assert.deepEqual([...decodeBase64(c.input)], c.bytes);
      assert.equal(encodeBase64(Uint8Array.from(c.bytes!)), c.input);
    }
  });
}

test('base64 .npy round trip of every dtype', () => {
  for (const c of writeCases) {
    const back = decodeNpyBase64(encodeNpyBase64(c.array));
    assert.deepEqual([...back.data], [...c.array.data], c.name);
  }
});

test('a .npy of several megabytes in base64 decodes (no regular-expression stack limits)', () => {
  const a = ndarray('f4', [500_000, 4]);
  (a.data as Float32Array).fill(0.5);
  const back = decodeNpyBase64(encodeNpyBase64(a));
  assert.deepEqual(back.shape, [500_000, 4]);
  assert.equal(back.data[1_999_999], 0.5);
});
