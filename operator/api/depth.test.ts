import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_DEPTH, tooDeep } from './depth.ts';
import { validate, validateExperiment } from './validate.ts';
import { sample } from './testdata/samples.ts';
import { PlatformValidator } from './platform/verdict.ts';

function nested(depth: number, key = 'a'): Record<string, unknown> {
  let v: Record<string, unknown> = { [key]: 1 };
  for (let i = 1; i < depth; i++) v = { [key]: v };
  return v;
}

test('tooDeep names the path where a value passes the limit, through objects and lists', () => {
  assert.equal(tooDeep(nested(MAX_DEPTH)), undefined, 'exactly the limit is fine');
  assert.equal(tooDeep(nested(MAX_DEPTH + 1), 'm'), `m${'.a'.repeat(MAX_DEPTH)}`);
  let list: unknown = [1];
  for (let i = 0; i < 10; i++) list = [list];
  assert.equal(tooDeep(list, 'x', 5), 'x[0][0][0][0][0]');
  assert.equal(tooDeep({ a: 1, b: 'x', c: null }), undefined);
});

test('a value a million levels deep is judged without recursion', () => {
  assert.ok(tooDeep(nested(1_000_000))?.startsWith('a.a.a'));
});

test('validate refuses an object nested too deep with a field error instead of overflowing the stack', () => {
  const rc = sample('ResourceClass');
  const r = validate('ResourceClass', { ...rc, spec: { ...rc.spec, nodeSelector: nested(10_000) } });
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.errors[0]!.field : '', /^spec\.nodeSelector\.a\.a/);
  assert.match(!r.ok ? r.errors[0]!.message : '', /nested deeper than 64 levels/);
});

test('the platform validator is not asked about a manifest nested too deep (its recursion limit would stall it)', async () => {
  const validator = new PlatformValidator({ timeoutMs: 5000 });
  try {
    const exp = sample('Experiment');
    const started = Date.now();
    const r = await validateExperiment({ ...exp, spec: { ...exp.spec, manifest: { ...exp.spec.manifest, training: nested(1000) } } }, { validator });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.errors[0]!.field : '', /^spec\.manifest\.training\.a\.a/);
    const v = await validator.verdict({ algorithm: { name: 'DQN' }, environment: nested(500) });
    assert.equal(v.valid, false);
    assert.match(!v.valid ? v.errors[0]!.field : '', /^environment\.a\.a/);
    assert.ok(Date.now() - started < 4000, 'answered without waiting on the validator');
  } finally {
    validator.close();
  }
});
