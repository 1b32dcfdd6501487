// Hand-built .npy files and base64 texts that the codec must refuse, each with the error it must give. Shared by the
// codec's unit tests (npy.test.ts) and the cluster test of bad input (e2e/bad-input.e2e.test.ts), which sends each
// to a served agent's /get_action. Byte vectors follow the NPY format description (magic, version, little-endian
// header length, a Python dict literal padded with spaces and a newline, then the raw elements), independent of
// the codec's writer.

/** A .npy file: `header` is the dict text; it is padded to `align` bytes as writers do. */
export function npy(header: string, data: number[], opts: { version?: 1 | 2 | 3; align?: number; raw?: boolean } = {}): Uint8Array {
  const version = opts.version ?? 1;
  const lenBytes = version === 1 ? 2 : 4;
  const headerText = new TextEncoder().encode(header);
  let padded = headerText.length;
  if (!opts.raw) {
    const align = opts.align ?? 64;
    padded += 1;
    padded += (align - ((6 + 2 + lenBytes + padded) % align)) % align;
  }
  const out: number[] = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0];
  for (let i = 0; i < lenBytes; i++) out.push((padded >> (8 * i)) & 0xff);
  out.push(...headerText);
  if (!opts.raw) {
    for (let i = headerText.length; i < padded - 1; i++) out.push(0x20);
    out.push(0x0a);
  }
  out.push(...data);
  return Uint8Array.from(out);
}

export const h = (descr: string, shape: string, fortran = false) => `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shape}, }`;

export interface BadNpyFile {
  name: string;
  bytes: Uint8Array;
  error: RegExp;
}

export const badNpyFiles: BadNpyFile[] = [
  { name: 'no magic', bytes: Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0, 0, 0, 0]), error: /magic string/ },
  { name: 'too short', bytes: Uint8Array.from([0x93, 0x4e]), error: /magic string/ },
  { name: 'version 4.0', bytes: (() => { const b = npy(h('<f4', '(1,)'), [0, 0, 0, 0]); b[6] = 4; return b; })(), error: /version 4\.0/ },
  { name: 'version 1.1', bytes: (() => { const b = npy(h('<f4', '(1,)'), [0, 0, 0, 0]); b[7] = 1; return b; })(), error: /version 1\.1/ },
  { name: 'object dtype', bytes: npy(h('|O', '(1,)'), [0x80, 4, 0x4b, 0x2e]), error: /object arrays .*allow_pickle=False/ },
  { name: 'object dtype with size', bytes: npy(h('<O8', '(1,)'), []), error: /object arrays/ },
  { name: 'unicode dtype', bytes: npy(h('<U5', '(1,)'), []), error: /unsupported dtype "<U5"/ },
  { name: 'float16', bytes: npy(h('<f2', '(1,)'), [0, 0x3c]), error: /unsupported dtype "<f2".*<f4/ },
  { name: 'complex', bytes: npy(h('<c8', '(1,)'), []), error: /unsupported dtype/ },
  { name: 'structured dtype', bytes: npy(`{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (1,), }`, [0, 0, 0, 0]), error: /structured dtypes/ },
  { name: 'missing key', bytes: npy(`{'descr': '<f4', 'shape': (1,), }`, [0, 0, 0, 0]), error: /exactly the keys/ },
  { name: 'extra key', bytes: npy(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}`, [0, 0, 0, 0]), error: /exactly the keys/ },
  { name: 'not a dict', bytes: npy(`('<f4', False, (1,))`, [0, 0, 0, 0]), error: /must be a dict/ },
  { name: 'garbage header', bytes: npy(`{'descr': <f4}`, []), error: /not a Python dict literal/ },
  { name: 'unterminated string', bytes: npy(`{'descr: '<f4'}`, []), error: /not a Python dict literal/ },
  { name: 'shape is a list', bytes: npy(h('<f4', '[1]'), [0, 0, 0, 0]), error: /shape must be a tuple/ },
  { name: 'shape is an int', bytes: npy(h('<f4', '(1)'), [0, 0, 0, 0]), error: /shape must be a tuple/ },
  { name: 'negative dimension', bytes: npy(h('<f4', '(-1,)'), []), error: /non-negative/ },
  { name: 'fortran_order not a bool', bytes: npy(`{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }`, [0, 0, 0, 0]), error: /True or False/ },
  { name: 'truncated data', bytes: npy(h('<f4', '(2,)'), [0, 0, 0x80, 0x3f]), error: /needs 8 bytes, the file has 4 \(truncated\)/ },
  { name: 'trailing bytes', bytes: npy(h('|u1', '(1,)'), [1, 2]), error: /trailing bytes/ },
  { name: 'huge shape, little data (no allocation)', bytes: npy(h('<f8', '(1000000000,)'), [0]), error: /needs 8000000000 bytes/ },
  { name: 'shape overflows', bytes: npy(h('<f8', '(100000000, 100000000, 100000000)'), []), error: /too large/ },
  { name: 'header length beyond the file', bytes: (() => { const b = npy(h('<f4', '(1,)'), []); b[9] = 0x20; return b.subarray(0, 100); })(), error: /truncated \.npy header/ },
  { name: 'header over the limit', bytes: npy(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }${' '.repeat(20000)}`, [0, 0, 0, 0], { version: 2 }), error: /limit/ },
  { name: 'boolean byte other than 0 or 1', bytes: npy(h('|b1', '(2,)'), [1, 2]), error: /booleans are 0 or 1/ },
  { name: 'invalid UTF-8 in a 3.0 header', bytes: npy(`{'descr': '<f4\xff'}`, [], { version: 3 }).map((b, i, all) => (i === all.indexOf(0xc3) ? 0xff : b)), error: /not valid UTF-8/ },
];

export interface Base64Case {
  input: string;
  bytes?: number[];
  error?: RegExp;
}

export const base64Cases: Base64Case[] = [
  { input: '', bytes: [] },
  { input: 'QUJD', bytes: [0x41, 0x42, 0x43] },
  { input: 'QUI=', bytes: [0x41, 0x42] },
  { input: 'QQ==', bytes: [0x41] },
  { input: '+/+/', bytes: [0xfb, 0xff, 0xbf] },
  { input: 'QUJ', error: /length 3 is not a multiple of 4/ },
  { input: 'QQ', error: /missing padding/ },
  { input: 'QU=D', error: /misplaced padding at offset 2/ },
  { input: 'Q===', error: /misplaced padding at offset 1/ },
  { input: 'QUJD\n', error: /"\\n" is outside the standard alphabet/ },
  { input: 'QU JD', error: /" " is outside/ },
  { input: '-_-_', error: /"-" is outside/ },
  { input: 'QUJDé===', error: /"é" is outside/ },
];
