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
