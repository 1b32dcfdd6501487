import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Expectations } from './expectations.ts';

function setup() {
  let now = 0;
  const expired: { key: string; unmet: { status: boolean; pods: string[] } }[] = [];
  const e = new Expectations({ ttlMs: 1000, now: () => now, onExpired: (key, unmet) => expired.push({ key, unmet }) });
  return { e, expired, advance: (ms: number) => (now += ms) };
}

const cache = (resourceVersion: string, pods: string[] = []) => ({ resourceVersion, hasPod: (n: string) => pods.includes(n) });

test('nothing written: no wait', () => {
  assert.equal(setup().e.waitMs('ns/a', cache('1')), 0);
});

test('a status write is waited for until the cache moves past the version it replaced', () => {
  const { e, advance } = setup();
  e.wroteStatus('ns/a', '5');
  advance(100);
  assert.equal(e.waitMs('ns/a', cache('5')), 900);
  assert.equal(e.waitMs('ns/a', cache('6')), 0);
  assert.equal(e.size(), 0, 'met expectations are let go');
  assert.equal(e.waitMs('ns/a', cache('5')), 0, 'and not waited for again');
});

test('created pods are waited for until every one is in the cache, or seen deleted', () => {
  const { e } = setup();
  e.createdPods('ns/a', ['p0', 'p1', 'p2']);
  assert.ok(e.waitMs('ns/a', cache('1', ['p0'])) > 0);
  e.podGone('ns/a', 'p2');
  assert.ok(e.waitMs('ns/a', cache('1', [])) > 0, 'p1 is still missing (p0 was seen before)');
  assert.equal(e.waitMs('ns/a', cache('1', ['p1'])), 0);
});

test('the wait is bounded and says what was never seen', () => {
  const { e, expired, advance } = setup();
  e.wroteStatus('ns/a', '5');
  e.createdPods('ns/a', ['p0']);
  advance(1000);
  assert.equal(e.waitMs('ns/a', cache('5')), 0);
  assert.deepEqual(expired, [{ key: 'ns/a', unmet: { status: true, pods: ['p0'] } }]);
});

test('keys are independent and forget drops one', () => {
  const { e } = setup();
  e.wroteStatus('ns/a', '5');
  e.wroteStatus('ns/b', '7');
  e.forget('ns/a');
  assert.equal(e.waitMs('ns/a', cache('5')), 0);
  assert.ok(e.waitMs('ns/b', cache('7')) > 0);
});
