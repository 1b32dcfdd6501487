import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentApiKey, derive, sameSecret } from './derive.ts';

const key = Buffer.alloc(32, 7);

test('parts are separated, so shifting characters between them gives another value', () => {
  assert.notEqual(derive(key, 'p', ['uid-1', 12]), derive(key, 'p', ['uid-11', 2]));
  assert.match(derive(key, 'p', ['x']), /^[A-Za-z0-9_-]{43}$/, '256 bits, base64url');
});

test('the purpose is part of the message: the same parts give another value for another purpose', () => {
  assert.notEqual(derive(key, 'arena/run-token/v2', ['uid-1', 0]), agentApiKey(key, 'uid-1', 0));
  assert.equal(agentApiKey(key, 'uid-1', 3), agentApiKey(key, 'uid-1', 3));
  assert.notEqual(agentApiKey(key, 'uid-1', 3), agentApiKey(key, 'uid-1', 4));
});

test('a short key is refused rather than used', () => {
  assert.throws(() => agentApiKey(Buffer.alloc(16), 'uid', 1), /16 bytes; at least 32/);
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
