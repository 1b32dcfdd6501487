import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentApiKey, runToken, sameSecret } from './derive.ts';

const key = Buffer.alloc(32, 7);
const other = Buffer.alloc(32, 8);

test('a run token depends on the key, the experiment uid and the run, and nothing else', () => {
  const t = runToken(key, 'uid-1', 1);
  assert.equal(runToken(key, 'uid-1', 1), t, 'deterministic');
  assert.match(t, /^[A-Za-z0-9_-]{43}$/, '256 bits, base64url');
  const variants = [runToken(other, 'uid-1', 1), runToken(key, 'uid-2', 1), runToken(key, 'uid-1', 2)];
  for (const v of variants) assert.notEqual(v, t);
});

test('parts are separated, so shifting characters between them gives another token', () => {
  assert.notEqual(runToken(key, 'uid-1', 12), runToken(key, 'uid-11', 2));
});

test('a run token is never the API key of an agent with the same uid and number', () => {
  assert.notEqual(runToken(key, 'uid-1', 0), agentApiKey(key, 'uid-1', 0));
  assert.equal(agentApiKey(key, 'uid-1', 3), agentApiKey(key, 'uid-1', 3));
  assert.notEqual(agentApiKey(key, 'uid-1', 3), agentApiKey(key, 'uid-1', 4));
});

test('a short key is refused rather than used', () => {
  assert.throws(() => runToken(Buffer.alloc(16), 'uid', 1), /16 bytes; at least 32/);
});

test('sameSecret compares whole strings of any length', () => {
  const cases: [string, string, boolean][] = [
    ['abc', 'abc', true],
    ['abc', 'abd', false],
    ['abc', 'abcd', false],
    ['', '', true],
    ['', 'x', false],
  ];
  for (const [a, b, want] of cases) assert.equal(sameSecret(a, b), want, `${a} vs ${b}`);
});
