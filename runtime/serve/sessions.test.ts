import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionStore } from './sessions.ts';

test('the transcript a session continues, newest sessions first', () => {
  let t = 0;
  const store = new SessionStore({ now: () => new Date(Date.UTC(2025, 0, 1, 0, 0, t++)) });
  assert.equal(store.prompt('a', 'Hi'), 'Hi', 'an unknown session starts empty');
  store.append('a', 'Hi', ' there.');
  store.append('b', 'Yo', '!');
  assert.equal(store.prompt('a', ' Again?'), 'Hi there. Again?');
  assert.equal(store.prompt(undefined, 'x'), 'x');
  store.append('a', ' Again?', ' Yes.');
  assert.deepEqual(
    store.list().map((s) => [s.session_id, s.created_at, s.last_updated]),
    [
      ['a', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:02.000Z'],
      ['b', '2025-01-01T00:00:01.000Z', '2025-01-01T00:00:01.000Z'],
    ],
  );
  assert.equal(store.get('a')!.messages.length, 4);
  assert.equal(store.delete('a'), true);
  assert.equal(store.delete('a'), false);
  assert.equal(store.get('a'), undefined);
});

test('bounded: the stalest session and the oldest messages go first', () => {
  const store = new SessionStore({ maxSessions: 2, maxMessages: 4 });
  store.append('old', 'p', 'c');
  store.append('mid', 'p', 'c');
  store.append('old', 'p2', 'c2');
  store.append('new', 'p', 'c');
  assert.deepEqual(store.list().map((s) => s.session_id), ['new', 'old']);
  store.append('old', 'p3', 'c3');
  assert.deepEqual(store.get('old')!.messages.map((m) => m.content), ['p2', 'c2', 'p3', 'c3']);
});

test('bounded in bytes: a session drops its oldest messages past its budget, the stalest sessions go past the total', () => {
  const store = new SessionStore({ maxSessionBytes: 100, maxTotalBytes: 250 });
  for (let i = 0; i < 5; i++) store.append('a', 'p'.repeat(20), 'c'.repeat(20));
  assert.ok(store.size.bytes <= 100, `${store.size.bytes} bytes`);
  assert.deepEqual(store.get('a')!.messages.length, 4, 'two exchanges of 40 bytes fit in 100');
  // Multi-byte text counts in UTF-8 bytes, not characters.
  store.append('b', 'é'.repeat(30), 'ok');
  assert.equal(store.size.bytes, 80 + 62);
  store.append('c', 'x'.repeat(80), 'y'.repeat(30));
  assert.deepEqual(store.list().map((s) => s.session_id), ['c', 'b'], 'the stalest session went to keep 250 bytes');
  assert.ok(store.size.bytes <= 250);
  // One exchange over the budget is still kept whole: the next call continues it.
  store.append('huge', 'z'.repeat(500), '!');
  assert.equal(store.get('huge')!.messages.length, 2);
  assert.deepEqual(store.list().map((s) => s.session_id), ['huge']);
  store.delete('huge');
  assert.deepEqual(store.size, { sessions: 0, bytes: 0 });
});
