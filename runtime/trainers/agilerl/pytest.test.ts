// The AgileRL trainer's pytest files that no shard of pytest-suite.ts names, and the shards' own checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { casesOf, pytestSuite, SHARDS } from './pytest-suite.ts';

pytestSuite('rest');

test('every file a shard names is there, and in one shard only', () => {
  const named = Object.values(SHARDS).flat();
  assert.equal(new Set(named).size, named.length);
  for (const f of named) assert.ok(existsSync(join(fileURLToPath(new URL('.', import.meta.url)), f)), `${f} is not there`);
});

test('the JUnit reader', () => {
  const xml = `<testsuite><testcase classname="tests.a" name="ok" time="1"/><testcase classname="tests.a" name="bad"><failure message="x">assert 1 == 2 &amp; more</failure></testcase><testcase classname="b" name="s"><skipped/></testcase></testsuite>`;
  assert.deepEqual(casesOf(xml), [
    { name: 'tests.a::ok', outcome: 'passed', detail: '' },
    { name: 'tests.a::bad', outcome: 'failed', detail: 'assert 1 == 2 & more' },
    { name: 'b::s', outcome: 'skipped', detail: '' },
  ]);
});
