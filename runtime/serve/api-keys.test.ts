import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../operator/observability/log.ts';
import { ApiKeyFile } from './api-keys.ts';
import { tempDir, writeKey } from './testing.ts';

const tmp = tempDir('api-keys-');
after(tmp.remove);

const headerCases: { name: string; header: string | undefined; status?: number; message?: RegExp }[] = [
  { name: 'the key', header: 'Bearer key-one' },
  { name: 'the scheme in any case, extra spaces', header: 'bearer   key-one ' },
  { name: 'the second key of the file', header: 'Bearer key-two' },
  { name: 'no header', header: undefined, status: 401, message: /missing Authorization/ },
  { name: 'an empty header', header: '', status: 401, message: /missing Authorization/ },
  { name: 'another scheme', header: 'Basic a2V5LW9uZQ==', status: 401, message: /must be "Bearer <API key>"/ },
  { name: 'Bearer without a key', header: 'Bearer ', status: 401, message: /must be "Bearer/ },
  { name: 'a wrong key', header: 'Bearer key-three', status: 403, message: /not valid for this deployment/ },
  { name: 'a prefix of the key', header: 'Bearer key-on', status: 403 },
  { name: 'the key with a suffix', header: 'Bearer key-one1', status: 403 },
];

test('Authorization headers', () => {
  const path = join(tmp.dir, 'two-keys');
  writeFileSync(path, 'key-one\r\n\nkey-two\n');
  const keys = new ApiKeyFile(path);
  for (const c of headerCases) {
    const r = keys.check(c.header);
    if (c.status === undefined) assert.deepEqual(r, { ok: true }, c.name);
    else {
      assert.equal(r.ok, false, c.name);
      if (!r.ok) {
        assert.equal(r.status, c.status, c.name);
        if (c.message) assert.match(r.message, c.message, c.name);
      }
    }
  }
});

test('a key rewritten in place is seen at once, even twice within one clock tick with the same length', () => {
  const path = join(tmp.dir, 'in-place');
  writeKey(path, 'aaaa-1');
  const keys = new ApiKeyFile(path);
  assert.equal(keys.check('Bearer aaaa-1').ok, true);
  writeKey(path, 'aaaa-2');
  assert.equal(keys.check('Bearer aaaa-1').ok, false);
  assert.equal(keys.check('Bearer aaaa-2').ok, true);
  writeKey(path, 'aaaa-3');
  assert.equal(keys.check('Bearer aaaa-2').ok, false);
  assert.equal(keys.check('Bearer aaaa-3').ok, true);
});

test('a Secret volume update (the ..data symlink swapped to a new folder) is seen at once', () => {
  const vol = join(tmp.dir, 'secret-volume');
  mkdirSync(join(vol, '..2024_1'), { recursive: true });
  writeKey(join(vol, '..2024_1', 'api-key'), 'old-key');
  symlinkSync('..2024_1', join(vol, '..data'));
  symlinkSync('..data/api-key', join(vol, 'api-key'));
  const keys = new ApiKeyFile(join(vol, 'api-key'));
  assert.equal(keys.check('Bearer old-key').ok, true);
  // What the kubelet does: write the new folder, point a temporary link at it, rename it over ..data.
  mkdirSync(join(vol, '..2024_2'));
  writeKey(join(vol, '..2024_2', 'api-key'), 'new-key');
  symlinkSync('..2024_2', join(vol, '..data_tmp'));
  renameSync(join(vol, '..data_tmp'), join(vol, '..data'));
  rmSync(join(vol, '..2024_1'), { recursive: true });
  const old = keys.check('Bearer old-key');
  assert.equal(old.ok === false && old.status, 403);
  assert.equal(keys.check('Bearer new-key').ok, true);
});

test('fails closed: a missing or empty key file refuses every key, says why, and recovers', () => {
  const lines: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (d: Buffer) => lines.push(d.toString()));
  const path = join(tmp.dir, 'comes-and-goes');
  const keys = new ApiKeyFile(path, createLogger({ stream }));
  const r = keys.check('Bearer anything');
  assert.equal(r.ok === false && r.status, 503);
  assert.match((keys.state() as { reason: string }).reason, /cannot be read: ENOENT/);
  writeKey(path, 'the-key');
  assert.equal(keys.check('Bearer the-key').ok, true);
  assert.deepEqual(keys.state(), { ready: true });
  writeFileSync(path, '\n');
  assert.equal(keys.check('Bearer the-key').ok, false);
  assert.match((keys.state() as { reason: string }).reason, /is empty/);
  unlinkSync(path);
  assert.equal(keys.check('Bearer the-key').ok, false);
  assert.ok(lines.length >= 3, 'each change of state is logged');
  assert.ok(!lines.join('').includes('the-key'), 'keys never appear in logs');
});
