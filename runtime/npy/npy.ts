// NumPy's .npy file format (versions 1.0, 2.0 and 3.0), the array encoding of the Arena inference wire: a client
// calls np.save(..., allow_pickle=False) and base64-encodes the bytes. Only plain numeric and boolean dtypes are
// read; object arrays would need pickle, which the wire forbids, and are refused by name.
import { endianness } from 'node:os';

export type NpyDtype = 'f4' | 'f8' | 'i1' | 'i2' | 'i4' | 'i8' | 'u1' | 'u2' | 'u4' | 'u8' | 'b1';

export type NpyData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

interface DtypeInfo {
  size: number;
  make: (buffer: ArrayBuffer, length: number) => NpyData;
  matches: (data: NpyData) => boolean;
}

const DTYPES: Record<NpyDtype, DtypeInfo> = {
  f4: { size: 4, make: (b, n) => new Float32Array(b, 0, n), matches: (d) => d instanceof Float32Array },
  f8: { size: 8, make: (b, n) => new Float64Array(b, 0, n), matches: (d) => d instanceof Float64Array },
  i1: { size: 1, make: (b, n) => new Int8Array(b, 0, n), matches: (d) => d instanceof Int8Array },
  i2: { size: 2, make: (b, n) => new Int16Array(b, 0, n), matches: (d) => d instanceof Int16Array },
  i4: { size: 4, make: (b, n) => new Int32Array(b, 0, n), matches: (d) => d instanceof Int32Array },
  i8: { size: 8, make: (b, n) => new BigInt64Array(b, 0, n), matches: (d) => d instanceof BigInt64Array },
  u1: { size: 1, make: (b, n) => new Uint8Array(b, 0, n), matches: (d) => d instanceof Uint8Array },
  u2: { size: 2, make: (b, n) => new Uint16Array(b, 0, n), matches: (d) => d instanceof Uint16Array },
  u4: { size: 4, make: (b, n) => new Uint32Array(b, 0, n), matches: (d) => d instanceof Uint32Array },
  u8: { size: 8, make: (b, n) => new BigUint64Array(b, 0, n), matches: (d) => d instanceof BigUint64Array },
  // Booleans are one byte each, 0 or 1, as NumPy stores them.
  b1: { size: 1, make: (b, n) => new Uint8Array(b, 0, n), matches: (d) => d instanceof Uint8Array },
};

export const NPY_DTYPES = Object.keys(DTYPES) as NpyDtype[];

/** A malformed or unsupported .npy file; the message says what is wrong with it. */
export class NpyError extends Error {
  override name = 'NpyError';
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * An n-dimensional array in C (row-major) order whose elements are stored in a typed array in this machine's byte
 * order. A class, so that a nested payload can tell an array from a dict of arrays.
 */
export class NdArray {
  readonly dtype: NpyDtype;
  readonly shape: readonly number[];
  readonly data: NpyData;

  constructor(dtype: NpyDtype, shape: readonly number[], data: NpyData) {
    const info = DTYPES[dtype];
    if (!info) throw new NpyError(`unsupported dtype ${JSON.stringify(dtype)}`);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new NpyError(`shape ${formatShape(shape)} is not a tuple of non-negative integers`);
    if (!info.matches(data)) throw new NpyError(`dtype ${dtype} needs a ${info.make(new ArrayBuffer(0), 0).constructor.name}, got a ${data.constructor.name}`);
    if (data.length !== elementCount(shape)) throw new NpyError(`shape ${formatShape(shape)} holds ${elementCount(shape)} elements, the data has ${data.length}`);
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.data = data;
  }

  get size(): number {
    return this.data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Element i (C order) as a JavaScript number (64-bit integers beyond 2^53 lose precision). */
  number(i: number): number {
    const v = this.data[i];
    if (v === undefined) throw new RangeError(`index ${i} is outside an array of ${this.data.length} elements`);
    return Number(v);
  }
}

/** Python's repr of a shape tuple: (), (3,), (2, 3). */
export function formatShape(shape: readonly (number | string)[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
// NumPy pads the header so the data starts on a 64-byte boundary (older writers used 16; readers accept any).
const ALIGN = 64;
// NumPy refuses headers over 10000 bytes by default (max_header_size); a legitimate simple-dtype header is < 200.
const MAX_HEADER_BYTES = 10_000;
// NumPy 2's NPY_MAXDIMS.
const MAX_DIMS = 64;
const HOST_ORDER = endianness() === 'LE' ? '<' : '>';

// ---------------------------------------------------------------------------------------------------------------
// Reading

/** Parses the Python literal of a .npy header: a dict of str, bool, int, None and tuples/lists of them. */
function parseHeaderLiteral(text: string): unknown {
  let pos = 0;
  const fail = (what: string): never => {
    throw new NpyError(`header is not a Python dict literal: ${what} at offset ${pos} of ${JSON.stringify(text.slice(0, 120))}`);
  };
  const skipSpace = () => {
    for (let c = text.charCodeAt(pos); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = text.charCodeAt(++pos));
  };
  const value = (depth: number): unknown => {
    if (depth > 8) fail('nesting too deep');
    skipSpace();
    const c = text[pos];
    if (c === undefined) return fail('unexpected end');
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, pos + 1);
      if (end < 0) fail('unterminated string');
      const s = text.slice(pos + 1, end);
      if (s.includes('\\')) fail('escapes in strings are not supported');
      pos = end + 1;
      return s;
    }
    if (c === '{' || c === '(' || c === '[') {
      const close = c === '{' ? '}' : c === '(' ? ')' : ']';
      pos++;
      const items: unknown[] = [];
      const dict = new Map<string, unknown>();
      let sawComma = false;
      for (;;) {
        skipSpace();
        if (text[pos] === close) {
          pos++;
          break;
        }
        if (c === '{') {
          const key = value(depth + 1);
          if (typeof key !== 'string') fail('dict keys must be strings');
          skipSpace();
          if (text[pos] !== ':') fail("expected ':'");
          pos++;
          dict.set(key as string, value(depth + 1));
        } else {
          items.push(value(depth + 1));
        }
        skipSpace();
        if (text[pos] === ',') {
          pos++;
          sawComma = true;
        } else if (text[pos] !== close) {
          fail(`expected ',' or '${close}'`);
        }
      }
      if (c === '{') return dict;
      // (3) is the integer 3 in Python, not a tuple: a one-element tuple needs its comma.
      if (c === '(' && items.length === 1 && !sawComma) return items[0];
      return { sequence: c === '(' ? 'tuple' : 'list', items };
    }
    const word = /^[A-Za-z_][A-Za-z_0-9]*|^[-+]?\d+L?/.exec(text.slice(pos, pos + 32));
    if (!word) return fail(`unexpected character ${JSON.stringify(c)}`);
    pos += word[0].length;
    switch (word[0]) {
      case 'True':
        return true;
      case 'False':
        return false;
      case 'None':
        return null;
    }
    // Python 2 wrote shapes like (3L,); NumPy still reads them.
    const n = Number(word[0].replace(/L$/, ''));
    if (!Number.isSafeInteger(n)) return fail(`unexpected ${JSON.stringify(word[0])}`);
    return n;
  };
  const result = value(0);
  skipSpace();
  if (pos !== text.length) fail('trailing characters');
  return result;
}

interface ParsedDescr {
  dtype: NpyDtype;
  order: '<' | '>';
}

function parseDescr(descr: unknown): ParsedDescr {
  if (typeof descr !== 'string') {
    throw new NpyError('structured dtypes (a descr list of fields) are not supported: send each field as its own array');
  }
  const m = /^([<>|=]?)([a-zA-Z?])(\d*)$/.exec(descr);
  const kind = m?.[2];
  if (kind === 'O') {
    throw new NpyError(`object arrays (dtype ${JSON.stringify(descr)}) are refused: they need pickle, which is off (allow_pickle=False); send a numeric or boolean array`);
  }
  const size = m?.[3] ? Number(m[3]) : kind === '?' ? 1 : NaN;
  const key = (kind === '?' ? 'b1' : `${kind}${size}`) as NpyDtype;
  if (!m || !(key in DTYPES)) {
    throw new NpyError(`unsupported dtype ${JSON.stringify(descr)}: supported are ${NPY_DTYPES.map((d) => (d.endsWith('1') ? `|${d}` : `<${d}`)).join(' ')} (and big-endian >)`);
  }
  const orderChar = m[1];
  const order = orderChar === '<' || orderChar === '>' ? orderChar : HOST_ORDER;
  return { dtype: key, order };
}

function parseShape(shape: unknown): number[] {
  const items = typeof shape === 'object' && shape !== null && 'sequence' in shape ? (shape as { sequence: string; items: unknown[] }) : undefined;
  if (!items || items.sequence !== 'tuple') throw new NpyError(`header shape must be a tuple of integers, got ${describe(shape)}`);
  if (items.items.length > MAX_DIMS) throw new NpyError(`shape has ${items.items.length} dimensions; at most ${MAX_DIMS} are supported`);
  const dims = items.items.map((d) => {
    if (typeof d !== 'number' || d < 0) throw new NpyError(`header shape must be a tuple of non-negative integers, got ${describe(d)} in it`);
    return d;
  });
  if (!Number.isSafeInteger(elementCount(dims))) throw new NpyError(`shape ${formatShape(dims)} is too large`);
  return dims;
}

function describe(v: unknown): string {
  if (v instanceof Map) return 'a dict';
  if (typeof v === 'object' && v !== null && 'sequence' in v) return `a ${(v as { sequence: string }).sequence}`;
  return JSON.stringify(v) ?? String(v);
}

function swapBytes(bytes: Uint8Array, itemSize: number): void {
  for (let off = 0; off < bytes.length; off += itemSize) {
    for (let i = 0, j = itemSize - 1; i < j; i++, j--) {
      const t = bytes[off + i]!;
      bytes[off + i] = bytes[off + j]!;
      bytes[off + j] = t;
    }
  }
}

/** Reorders Fortran-order (column-major) elements into C order. */
function fortranToC<T extends NpyData>(src: T, shape: readonly number[], make: (n: number) => T): T {
  const n = src.length;
  const dims = shape.length;
  if (dims < 2 || n === 0) return src;
  const dst = make(n);
  const cStride = new Array<number>(dims);
  cStride[dims - 1] = 1;
  for (let k = dims - 2; k >= 0; k--) cStride[k] = cStride[k + 1]! * shape[k + 1]!;
  const idx = new Array<number>(dims).fill(0);
  let c = 0;
  // Walk the source in its own order (first axis fastest), keeping the C offset of the same element.
  for (let s = 0; s < n; s++) {
    (dst as unknown as unknown[])[c] = (src as unknown as unknown[])[s];
    let k = 0;
    idx[0]!++;
    c += cStride[0]!;
    while (k < dims - 1 && idx[k] === shape[k]) {
      c -= shape[k]! * cStride[k]!;
      idx[k] = 0;
      k++;
      idx[k]!++;
      c += cStride[k]!;
    }
  }
  return dst;
}

interface Header extends ParsedDescr {
  fortran: boolean;
  shape: readonly number[];
}

const LATIN1 = new TextDecoder('latin1', { fatal: true });
const UTF8 = new TextDecoder('utf-8', { fatal: true });
// A client sends the same few headers over and over; parsing one costs more than the rest of a small decode.
const headerCache = new Map<string, Header>();
const HEADER_CACHE_SIZE = 256;

function parseHeader(headerBytes: Uint8Array, major: number): Header {
  let text: string;
  try {
    text = (major === 3 ? UTF8 : LATIN1).decode(headerBytes).trim();
  } catch {
    throw new NpyError(`header is not valid ${major === 3 ? 'UTF-8' : 'Latin-1'} text`);
  }
  const cached = headerCache.get(text);
  if (cached) return cached;
  const dict = parseHeaderLiteral(text);
  if (!(dict instanceof Map)) throw new NpyError(`header must be a dict, got ${describe(dict)}`);
  const keys = [...dict.keys()].sort();
  if (keys.join(',') !== 'descr,fortran_order,shape') {
    throw new NpyError(`header must have exactly the keys descr, fortran_order and shape, got ${keys.join(', ') || 'none'}`);
  }
  const descr = parseDescr(dict.get('descr'));
  const fortran = dict.get('fortran_order');
  if (typeof fortran !== 'boolean') throw new NpyError(`header fortran_order must be True or False, got ${describe(fortran)}`);
  const header: Header = { ...descr, fortran, shape: Object.freeze(parseShape(dict.get('shape'))) };
  if (headerCache.size >= HEADER_CACHE_SIZE) headerCache.clear();
  headerCache.set(text, header);
  return header;
}

/** Reads a .npy file. Throws NpyError saying what is wrong with a malformed or unsupported one. */
export function decodeNpy(bytes: Uint8Array): NdArray {
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) {
    throw new NpyError('not a .npy file: it does not start with the magic string \\x93NUMPY');
  }
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (!((major === 1 || major === 2 || major === 3) && minor === 0)) {
    throw new NpyError(`unsupported .npy format version ${major}.${minor}: versions 1.0, 2.0 and 3.0 are supported`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw new NpyError('truncated .npy header');
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = 8 + lenBytes;
  if (headerLen > MAX_HEADER_BYTES) throw new NpyError(`header of ${headerLen} bytes is larger than the ${MAX_HEADER_BYTES}-byte limit`);
  if (bytes.length < headerStart + headerLen) {
    throw new NpyError(`truncated .npy header: it announces ${headerLen} bytes, the file has ${bytes.length - headerStart} after the length`);
  }
  const { dtype, order, fortran, shape } = parseHeader(bytes.subarray(headerStart, headerStart + headerLen), major);

  const info = DTYPES[dtype];
  const count = elementCount(shape);
  const dataStart = headerStart + headerLen;
  const expected = count * info.size;
  const available = bytes.length - dataStart;
  if (available !== expected) {
    throw new NpyError(
      `data size mismatch: shape ${formatShape(shape)} of ${dtype} needs ${expected} bytes, the file has ${available}` +
        (available < expected ? ' (truncated)' : ' (trailing bytes)'),
    );
  }
  // A copy: the input is usually a slice of a pooled Buffer at an arbitrary offset, and typed arrays need alignment.
  const own = new Uint8Array(expected);
  own.set(bytes.subarray(dataStart));
  if (info.size > 1 && order !== HOST_ORDER) swapBytes(own, info.size);
  let data = info.make(own.buffer, count);
  if (dtype === 'b1') {
    const b = data as Uint8Array;
    for (let i = 0; i < b.length; i++) if (b[i]! > 1) throw new NpyError(`boolean array holds byte ${b[i]} at element ${i}; booleans are 0 or 1`);
  }
  if (fortran) data = fortranToC(data, shape, (n) => info.make(new ArrayBuffer(n * info.size), n));
  return new NdArray(dtype, shape, data);
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

export interface EncodeOptions {
  /** Format version; default 1.0, or 2.0 when the header does not fit 1.0's 16-bit length. */
  version?: 1 | 2 | 3;
}

function descrOf(dtype: NpyDtype): string {
  return DTYPES[dtype].size === 1 ? `|${dtype}` : `${HOST_ORDER}${dtype}`;
}

/** Writes a C-order .npy file, as np.save would for the same array (byte-for-byte up to header padding). */
export function encodeNpy(array: NdArray, opts: EncodeOptions = {}): Uint8Array {
  const dict = `{'descr': '${descrOf(array.dtype)}', 'fortran_order': False, 'shape': ${formatShape(array.shape)}, }`;
  const body = new TextEncoder().encode(dict);
  const fits16 = (len: number) => len <= 0xffff;
  const padded = (lenBytes: number) => {
    const unpadded = MAGIC.length + 2 + lenBytes + body.length + 1;
    return body.length + 1 + ((ALIGN - (unpadded % ALIGN)) % ALIGN);
  };
  const version = opts.version ?? (fits16(padded(2)) ? 1 : 2);
  const lenBytes = version === 1 ? 2 : 4;
  const headerLen = padded(lenBytes);
  if (version === 1 && !fits16(headerLen)) throw new NpyError('header too long for format 1.0');
  const dataBytes = array.data.byteLength;
  const out = new Uint8Array(MAGIC.length + 2 + lenBytes + headerLen + dataBytes);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  const headerStart = 8 + lenBytes;
  out.set(body, headerStart);
  out.fill(0x20, headerStart + body.length, headerStart + headerLen - 1);
  out[headerStart + headerLen - 1] = 0x0a;
  out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, dataBytes), headerStart + headerLen);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Base64, as Python's base64.b64encode writes it and b64decode(validate=True) reads it.

const ALPHABET = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') ALPHABET[c.charCodeAt(0)] = 1;

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Strict base64: the standard alphabet with padding, no whitespace or URL-safe characters (Node's decoder skips those silently). */
export function decodeBase64(text: string): Uint8Array {
  // A loop rather than a regular expression: a pattern over megabytes of input can exhaust the backtracking stack.
  const n = text.length;
  const pad = n > 0 && text.charCodeAt(n - 1) === 0x3d ? (n > 1 && text.charCodeAt(n - 2) === 0x3d ? 2 : 1) : 0;
  for (let i = 0; i < n - pad; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || ALPHABET[c] !== 1) {
      const what = c === 0x3d ? 'misplaced padding' : `character ${JSON.stringify(text[i])} is outside the standard alphabet`;
      throw new NpyError(`not valid base64: ${what} at offset ${i}`);
    }
  }
  if (n % 4 !== 0) throw new NpyError(`not valid base64: length ${n} is not a multiple of 4 (missing padding?)`);
  return Buffer.from(text, 'base64');
}

export function decodeNpyBase64(text: string): NdArray {
  return decodeNpy(decodeBase64(text));
}

export function encodeNpyBase64(array: NdArray, opts?: EncodeOptions): string {
  return encodeBase64(encodeNpy(array, opts));
}

// ---------------------------------------------------------------------------------------------------------------
// Builders

/** An array of `dtype` and `shape` holding `values` (C order), or zeros. */
export function ndarray(dtype: NpyDtype, shape: readonly number[], values?: ArrayLike<number | bigint | boolean>): NdArray {
  const info = DTYPES[dtype];
  if (!info) throw new NpyError(`unsupported dtype ${JSON.stringify(dtype)}`);
  const n = elementCount(shape);
  const data = info.make(new ArrayBuffer(n * info.size), n);
  if (values) {
    if (values.length !== n) throw new NpyError(`shape ${formatShape(shape)} holds ${n} elements, got ${values.length} values`);
    const big = dtype === 'i8' || dtype === 'u8';
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      const num = typeof v === 'boolean' ? Number(v) : v;
      (data as unknown as unknown[])[i] = big ? BigInt(num) : dtype === 'b1' ? (num ? 1 : 0) : Number(num);
    }
  }
  return new NdArray(dtype, shape, data);
}
