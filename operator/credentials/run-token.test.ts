import { test } from 'node:test';
import assert from 'node:assert/strict';
import { issueRunToken, keyId, MAX_RUN_TOKEN_LENGTH, readRunTokenClaims, verifyRunToken, type RunTokenClaims } from './run-token.ts';

const key = Buffer.alloc(32, 7);
const other = Buffer.alloc(32, 8);
const claims = { namespace: 'ml', name: 'cartpole', run: 2, attempt: 3, worker: 1 };
const token = issueRunToken(key, 'uid-1', claims);

test('a token carries its claims and the id of the key that made it, and is deterministic', () => {
  assert.deepEqual(readRunTokenClaims(token), { ...claims, key: keyId(key) });
  assert.equal(issueRunToken(key, 'uid-1', claims), token);
  assert.notEqual(keyId(key), keyId(other));
  assert.ok(token.length < 300, `${token.length} characters`);
});

test('only the exact claims, uid and key verify', () => {
  const read = readRunTokenClaims(token)!;
  assert.equal(verifyRunToken(key, 'uid-1', token, read), 'valid');
  assert.equal(verifyRunToken(key, 'uid-2', token, read), 'invalid', 'a recreated experiment (another uid)');
  assert.equal(verifyRunToken(other, 'uid-1', token, read), 'stale-key', 'a token of a replaced key');
  // Claims edited by the holder: the MAC no longer matches.
  const edits: Partial<RunTokenClaims>[] = [{ worker: 0 }, { attempt: 4 }, { run: 1 }, { name: 'other' }, { namespace: 'x' }];
  for (const edit of edits) {
    const forged = { ...read, ...edit };
    const body = Buffer.from(JSON.stringify([forged.namespace, forged.name, forged.run, forged.attempt, forged.worker, forged.key])).toString('base64url');
    const [, , mac] = token.split('.');
    const t = `art2.${body}.${mac}`;
    assert.equal(verifyRunToken(key, 'uid-1', t, readRunTokenClaims(t)!), 'invalid', JSON.stringify(edit));
  }
});

test('anything but a well-formed token has no claims', () => {
  const enc = (v: unknown) => `art2.${Buffer.from(JSON.stringify(v)).toString('base64url')}.mac`;
  const bad: [string, string][] = [
    ['empty', ''],
    ['an old run token', 'q1w2e3r4t5y6u7i8o9p0q1w2e3r4t5y6u7i8o9p0abc'],
    ['another prefix', token.replace(/^art2/, 'art1')],
    ['too many parts', `${token}.x`],
    ['not JSON', 'art2.bm90IGpzb24.mac'],
    ['an object, not a list', enc({ namespace: 'ml' })],
    ['a fractional run', enc(['ml', 'c', 1.5, 1, 0, 'k'])],
    ['a negative worker', enc(['ml', 'c', 1, 1, -1, 'k'])],
    ['a huge attempt', enc(['ml', 'c', 1, 1e300, 0, 'k'])],
    ['an empty name', enc(['ml', '', 1, 1, 0, 'k'])],
    ['a __proto__ key', enc(['ml', 'c', 1, 1, 0, { __proto__: 1 }])],
    ['too long', `art2.${'a'.repeat(MAX_RUN_TOKEN_LENGTH)}.mac`],
  ];
  for (const [what, t] of bad) assert.equal(readRunTokenClaims(t), undefined, what);
});
