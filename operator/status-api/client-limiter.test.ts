import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientLimiter } from './client-limiter.ts';

test('each client has its own bucket: burst, then qps, with the wait until the next token', () => {
  let now = 0;
  const l = new ClientLimiter({ qps: 2, burst: 3, now: () => now });
  for (let i = 0; i < 3; i++) assert.deepEqual(l.take('a'), { ok: true });
  assert.deepEqual(l.take('a'), { ok: false, retryAfterMs: 500 });
  assert.deepEqual(l.take('b'), { ok: true }, 'another client is not held up');
  now = 500;
  assert.deepEqual(l.take('a'), { ok: true });
  assert.equal(l.take('a').ok, false);
  now = 60_000;
  for (let i = 0; i < 3; i++) assert.equal(l.take('a').ok, true, 'refills to the burst, not beyond');
  assert.equal(l.take('a').ok, false);
});

test('clients beyond the cap are forgotten, least recently seen first', () => {
  const l = new ClientLimiter({ qps: 1, burst: 1, maxClients: 2, now: () => 0 });
  l.take('a');
  l.take('b');
  l.take('a');
  l.take('c');
  assert.equal(l.clients, 2);
  assert.equal(l.take('a').ok, false, 'a was kept (recently seen), its bucket is empty');
  assert.equal(l.take('b').ok, true, 'b was forgotten and starts full');
});
