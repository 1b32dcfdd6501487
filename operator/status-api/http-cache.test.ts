import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerCache, etagOf, ifNoneMatch } from './http-cache.ts';

test('the ETag depends on the body only', () => {
  assert.equal(etagOf('{"a":1}'), etagOf('{"a":1}'));
  assert.notEqual(etagOf('{"a":1}'), etagOf('{"a":2}'));
  assert.match(etagOf('x'), /^"[A-Za-z0-9_-]{32}"$/);
});

test('If-None-Match: lists, weak tags and *', () => {
  const tag = etagOf('body');
  const cases: [string | undefined, boolean][] = [
    [undefined, false],
    [tag, true],
    [`W/${tag}`, true],
    [`"other", ${tag}`, true],
    ['"other"', false],
    ['*', true],
  ];
  for (const [header, want] of cases) assert.equal(ifNoneMatch(header, tag), want, String(header));
});

test('answers are kept per version and evicted least recently used', () => {
  const c = new AnswerCache(2);
  const a = { body: 'a', etag: '"a"', contentType: 'application/json' };
  c.set('x', '1', a);
  assert.equal(c.get('x', '1'), a);
  assert.equal(c.get('x', '2'), undefined, 'another version misses');
  c.set('y', '1', a);
  c.get('x', '1');
  c.set('z', '1', a);
  assert.equal(c.get('y', '1'), undefined, 'y was least recently used');
  assert.equal(c.get('x', '1'), a);
});

test('the cache holds at most maxChars of answers, keeping the newest', () => {
  const c = new AnswerCache(100, 10);
  const a = (body: string) => ({ body, etag: '"x"', contentType: 'text/csv' });
  c.set('a', '1', a('12345'));
  c.set('b', '1', a('12345'));
  assert.equal(c.size, 2);
  c.set('c', '1', a('123'));
  assert.equal(c.get('a', '1'), undefined, 'the oldest went to make room');
  assert.ok(c.get('b', '1') && c.get('c', '1'));
  c.set('big', '1', a('x'.repeat(50)));
  assert.equal(c.size, 1, 'an answer over the budget is still kept alone');
});
