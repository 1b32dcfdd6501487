import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock, realClock, sleep } from './clock.ts';

test('the fake clock fires due timers in time order, including ones set while advancing', async () => {
  const clock = new FakeClock();
  const fired: string[] = [];
  clock.setTimer(30, () => fired.push(`c@${clock.now()}`));
  clock.setTimer(10, () => fired.push(`a@${clock.now()}`));
  const cancel = clock.setTimer(20, () => fired.push('cancelled'));
  cancel();
  void sleep(clock, 15).then(() => sleep(clock, 10).then(() => fired.push(`chained@${clock.now()}`)));
  await clock.advance(29);
  assert.deepEqual(fired, ['a@10', 'chained@25']);
  assert.equal(clock.now(), 29);
  await clock.advance(1);
  assert.deepEqual(fired, ['a@10', 'chained@25', 'c@30']);
  assert.equal(clock.pending, 0);
});

test('the real clock is monotonic and its timers fire', async () => {
  const start = realClock.now();
  await sleep(realClock, 5);
  assert.ok(realClock.now() - start >= 4);
  let fired = false;
  realClock.setTimer(1, () => (fired = true))();
  await sleep(realClock, 5);
  assert.equal(fired, false, 'a cancelled timer does not fire');
});
