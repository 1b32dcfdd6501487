import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenSet, bearerToken, decodeSecretData } from './auth.ts';

test('bearer header parsing', () => {
  const cases: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ['', undefined],
    ['Bearer abc', 'abc'],
    ['bearer   abc ', 'abc'],
    ['Basic abc', undefined],
    ['Bearer', undefined],
    ['Bearer a b', undefined],
  ];
  for (const [header, want] of cases) assert.equal(bearerToken(header), want, String(header));
});

test('several tokens are accepted at once (rotation); empty values are ignored', () => {
  const t = new TokenSet();
  t.update({ current: 'tok-new', previous: ' tok-old\n', empty: '  ' });
  assert.equal(t.size, 2);
  assert.deepEqual(t.check('tok-new'), { ok: true, client: 'current' });
  assert.deepEqual(t.check('tok-old'), { ok: true, client: 'previous' });
  assert.deepEqual(t.check('tok-ne'), { ok: false, reason: 'Invalid' });
  assert.deepEqual(t.check(''), { ok: false, reason: 'Invalid' });
  assert.deepEqual(t.check(undefined), { ok: false, reason: 'Missing' });
  t.update({ current: 'tok-new' });
  assert.deepEqual(t.check('tok-old'), { ok: false, reason: 'Invalid' });
  t.update({});
  assert.deepEqual(t.check('tok-new'), { ok: false, reason: 'Invalid' });
});

test('secret data is base64-decoded', () => {
  assert.deepEqual(decodeSecretData({ token: Buffer.from('s3cret').toString('base64') }), { token: 's3cret' });
  assert.deepEqual(decodeSecretData(undefined), {});
});
