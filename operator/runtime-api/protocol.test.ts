import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReport } from './protocol.ts';

const at = '2026-11-23T07:00:00Z';
const report = (events: unknown[], over: Record<string, unknown> = {}) => ({ experiment: { namespace: 'ns', name: 'exp' }, run: 1, attempt: 1, worker: 0, events, ...over });
const progress = { type: 'progress', seq: 1, at, step: 5 };
const recovered = (from: Record<string, number>) => ({ type: 'checkpoint', seq: 1, at, step: 10, sizeBytes: 5, location: '/c/1', recovered: from });

test('a well-formed report of every event type parses', () => {
  const r = parseReport(
    report([
      progress,
      { type: 'checkpoint', seq: 2, at, step: 10, sizeBytes: 5, location: '/c/1', final: true },
      // Written by run 1's second attempt, reported by this one.
      { type: 'checkpoint', seq: 3, at, step: 8, sizeBytes: 5, location: '/c/0', recovered: { run: 1, attempt: 2 } },
      { type: 'completed', seq: 4, at },
      { type: 'failed', seq: 5, at, reason: 'WorkerFailed', message: 'm', retryable: false },
    ], { run: 2 }),
  );
  assert.ok(r.ok, r.ok ? '' : r.error);
});

const bad: { name: string; body: unknown; field: RegExp }[] = [
  { name: 'an event type that is a property of every object', body: report([{ type: 'constructor', seq: 1e300 }]), field: /^events\.0\.type: must be one of progress, checkpoint, completed, failed$/ },
  { name: '__proto__ as an event type', body: report([{ type: '__proto__', seq: 1 }]), field: /^events\.0\.type/ },
  { name: 'toString as an event type', body: report([{ type: 'toString', seq: 1 }]), field: /^events\.0\.type/ },
  { name: 'hasOwnProperty as an event type', body: report([{ type: 'hasOwnProperty', seq: 1 }]), field: /^events\.0\.type/ },
  { name: 'a sequence number beyond 2^53', body: report([{ ...progress, seq: 1e300 }]), field: /^events\.0\.seq: must be <= 9007199254740991/ },
  { name: 'a step beyond 2^53', body: report([{ ...progress, step: 2 ** 60 }]), field: /^events\.0\.step: must be <=/ },
  { name: 'a negative checkpoint size', body: report([{ type: 'checkpoint', seq: 2, at, step: 1, sizeBytes: -1, location: '/c' }]), field: /^events\.0\.sizeBytes: must be >= 0/ },
  { name: 'a worker index beyond any gang', body: report([progress], { worker: 5000 }), field: /^worker: must be <= 1023/ },
  { name: 'run 0', body: report([progress], { run: 0 }), field: /^run: must be >= 1/ },
  { name: 'a fractional attempt', body: report([progress], { attempt: 1.5 }), field: /^attempt: must be integer/ },
  { name: 'no events', body: report([]), field: /^events: must NOT have fewer than 1 items/ },
  { name: 'an extra envelope field', body: report([progress], { token: 'x' }), field: /^token: must NOT have additional properties/ },
  { name: 'an extra event field', body: report([{ ...progress, extra: 1 }]), field: /^events\.0: must NOT have additional properties \(extra\)/ },
  { name: 'not an object', body: [1, 2], field: /^\(body\): must be object/ },
  { name: 'a recovered checkpoint of this very attempt', body: report([recovered({ run: 2, attempt: 3 })], { run: 2, attempt: 3 }), field: /^events\.0\.recovered: must name a run and attempt before this report's \(run 2 attempt 3\)$/ },
  { name: 'a recovered checkpoint of a later attempt', body: report([recovered({ run: 2, attempt: 4 })], { run: 2, attempt: 3 }), field: /^events\.0\.recovered: must name a run and attempt before/ },
  { name: 'a recovered checkpoint of a later run', body: report([recovered({ run: 3, attempt: 1 })], { run: 2, attempt: 3 }), field: /^events\.0\.recovered: must name a run and attempt before/ },
  { name: 'a recovered checkpoint naming attempt 0', body: report([recovered({ run: 1, attempt: 0 })], { run: 2, attempt: 1 }), field: /^events\.0\.recovered\.attempt: must be >= 1/ },
  { name: 'a recovered checkpoint with an extra field', body: report([recovered({ run: 1, attempt: 1, worker: 3 })], { run: 2, attempt: 1 }), field: /^events\.0\.recovered: must NOT have additional properties \(worker\)/ },
];

for (const c of bad) {
  test(`refused, naming the field: ${c.name}`, () => {
    const r = parseReport(c.body);
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error, c.field);
  });
}
