import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  findCondition,
  isFalse,
  isTrue,
  removeCondition,
  rfc3339,
  setCondition,
  statusEqual,
  type Condition,
  type ConditionUpdate,
} from './conditions.ts';

const t0 = new Date('2026-11-20T10:00:00.000Z');
const t1 = new Date('2026-11-20T10:05:00.250Z');

function cond(type: string, status: Condition['status'], at: Date, generation = 1, reason = 'Ready'): Condition {
  return { type, status, observedGeneration: generation, lastTransitionTime: rfc3339(at), reason, message: '' };
}

const ready = (status: Condition['status'], reason = 'AllWorkersRunning', message = ''): ConditionUpdate => ({
  type: 'Ready',
  status,
  reason,
  message,
});

const cases: Record<string, { before?: Condition[]; set: ConditionUpdate; generation: number; want: Condition[] }> = {
  'added to an empty list, transition time now': {
    set: ready('True'),
    generation: 1,
    want: [{ ...cond('Ready', 'True', t1), reason: 'AllWorkersRunning' }],
  },
  'same status: transition time kept, reason, message and generation updated': {
    before: [cond('Ready', 'True', t0)],
    set: ready('True', 'AllWorkersRunning', '4 of 4 workers'),
    generation: 2,
    want: [{ ...cond('Ready', 'True', t0, 2), reason: 'AllWorkersRunning', message: '4 of 4 workers' }],
  },
  'status flips: transition time moves': {
    before: [cond('Ready', 'True', t0)],
    set: ready('False', 'WorkerCrashed'),
    generation: 1,
    want: [{ ...cond('Ready', 'False', t1), reason: 'WorkerCrashed' }],
  },
  'Unknown to True is a transition too': {
    before: [cond('Ready', 'Unknown', t0)],
    set: ready('True'),
    generation: 1,
    want: [{ ...cond('Ready', 'True', t1), reason: 'AllWorkersRunning' }],
  },
  'other conditions keep their place and values': {
    before: [cond('Admitted', 'True', t0), cond('Ready', 'False', t0), cond('Degraded', 'False', t0)],
    set: ready('True'),
    generation: 3,
    want: [
      cond('Admitted', 'True', t0),
      { ...cond('Ready', 'True', t1, 3), reason: 'AllWorkersRunning' },
      cond('Degraded', 'False', t0),
    ],
  },
  'a new type is appended': {
    before: [cond('Admitted', 'True', t0)],
    set: ready('Unknown', 'Pending'),
    generation: 1,
    want: [cond('Admitted', 'True', t0), { ...cond('Ready', 'Unknown', t1), reason: 'Pending' }],
  },
};

for (const [name, c] of Object.entries(cases)) {
  test(`setCondition: ${name}`, () => {
    const frozen = c.before ? structuredClone(c.before) : undefined;
    const got = setCondition(c.before, c.set, c.generation, t1);
    assert.deepEqual(got, c.want);
    assert.deepEqual(c.before, frozen, 'the input list is not modified');
    if (c.before) {
      assert.notEqual(got, c.before, 'a new array');
      got.forEach((x, i) => assert.notEqual(x, c.before![i], 'no entry shared with the input'));
    }
  });
}

test('transition times are RFC 3339 in whole seconds, as metav1.Time writes them', () => {
  const [c] = setCondition(undefined, ready('True'), 1, t1);
  assert.equal(c!.lastTransitionTime, '2026-11-20T10:05:00Z');
});

test('bad conditions are refused before they reach the API server', () => {
  const bad: [Partial<ConditionUpdate>, RegExp][] = [
    [{ reason: 'not camel' }, /invalid reason/],
    [{ reason: '' }, /invalid reason/],
    [{ reason: 'workerCrashed' }, /not CamelCase/],
    [{ reason: 'Worker_Crashed' }, /not CamelCase/],
    [{ status: 'Yes' as never }, /status must be/],
    [{ type: 'has space' }, /invalid condition type/],
  ];
  for (const [change, error] of bad) {
    assert.throws(() => setCondition([], { ...ready('True'), ...change }, 1), error, JSON.stringify(change));
  }
});

test('in production only the API server rule applies to reasons', () => {
  const saved = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    assert.equal(setCondition([], ready('True', 'workerCrashed'), 1)[0]!.reason, 'workerCrashed');
    assert.throws(() => setCondition([], ready('True', 'not camel'), 1), /invalid reason/);
  } finally {
    if (saved === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = saved;
  }
});

test('find, isTrue, isFalse and remove', () => {
  const list = [cond('Admitted', 'True', t0), cond('Ready', 'False', t0)];
  assert.equal(findCondition(list, 'Ready')?.status, 'False');
  assert.equal(findCondition(undefined, 'Ready'), undefined);
  assert.deepEqual(
    [isTrue(list, 'Admitted'), isTrue(list, 'Ready'), isTrue(list, 'Missing'), isFalse(list, 'Ready')],
    [true, false, false, true],
  );
  const removed = removeCondition(list, 'Admitted');
  assert.deepEqual(
    removed.map((c) => c.type),
    ['Ready'],
  );
  assert.equal(list.length, 2);
});

test('statusEqual compares as the serialized JSON would', () => {
  const table: [unknown, unknown, boolean][] = [
    [{ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 }, true],
    [{ a: 1, gone: undefined }, { a: 1 }, true],
    [{ at: new Date('2026-11-20T10:00:00Z') }, { at: '2026-11-20T10:00:00.000Z' }, true],
    [{ a: [1, 2] }, { a: [2, 1] }, false],
    [{ a: 1 }, { a: '1' }, false],
    [{ a: null }, { a: undefined }, false],
    [{ a: {} }, { a: [] }, false],
    [{ a: 1 }, { a: 1, b: 2 }, false],
    [undefined, undefined, true],
    [undefined, {}, false],
    [[{ x: 1 }], [{ x: 1 }], true],
  ];
  for (const [a, b, equal] of table) {
    assert.equal(statusEqual(a, b), equal, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    assert.equal(statusEqual(b, a), equal, 'symmetric');
  }
  const conditions = setCondition(undefined, ready('True'), 1, t0);
  assert.ok(statusEqual({ conditions }, { conditions: setCondition(conditions, ready('True'), 1, t1) }));
});
