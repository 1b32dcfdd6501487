import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { REPLY_LIMIT_BYTES, parseHeartbeatReply } from './reply.ts';

describe('heartbeat reply', () => {
  test('the current bundle version is read; other fields are ignored', () => {
    assert.deepEqual(parseHeartbeatReply('{"currentBundleVersion":"1.2.0","motd":"hi","extra":{"a":1}}'), { ok: true, currentBundleVersion: '1.2.0' });
    assert.deepEqual(parseHeartbeatReply(' {"currentBundleVersion": "2.0.0-rc.1+b7"}\n'), { ok: true, currentBundleVersion: '2.0.0-rc.1+b7' });
  });

  const bad: [string, string | undefined, string, RegExp][] = [
    ['unreadable body', undefined, 'Unreadable', /could not be read/],
    ['empty body', '', 'MissingField', /empty/],
    ['not JSON', '<html>ok</html>', 'NotJson', /not JSON/],
    ['a JSON array', '["1.2.0"]', 'NotObject', /not a JSON object/],
    ['JSON null', 'null', 'NotObject', /not a JSON object/],
    ['field missing', '{"accepted":true}', 'MissingField', /no currentBundleVersion/],
    ['a leading v', '{"currentBundleVersion":"v1.2.0"}', 'NotSemver', /"v1\.2\.0", which is not a semantic version/],
    ['two parts', '{"currentBundleVersion":"1.2"}', 'NotSemver', /not a semantic version/],
    ['a number', '{"currentBundleVersion":1.2}', 'NotSemver', /1\.2, which/],
    ['null value', '{"currentBundleVersion":null}', 'NotSemver', /null, which/],
    ['too large', JSON.stringify({ currentBundleVersion: '1.0.0', pad: 'x'.repeat(REPLY_LIMIT_BYTES) }), 'TooLarge', /larger than/],
  ];
  for (const [name, text, kind, message] of bad) {
    test(`unusable: ${name}`, () => {
      const r = parseHeartbeatReply(text);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.kind, kind);
      assert.match(r.problem, message);
    });
  }

  test('a long bad value is cut short in the problem text', () => {
    const r = parseHeartbeatReply(JSON.stringify({ currentBundleVersion: 'x'.repeat(500) }));
    assert.ok(!r.ok && r.problem.length < 120, JSON.stringify(r));
  });
});
