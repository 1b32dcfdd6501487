import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock, settle } from './clock.ts';
import {
  BucketRateLimiter,
  ExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  WorkQueue,
  defaultControllerRateLimiter,
  type WorkQueueOptions,
} from './workqueue.ts';
import { TokenBucket } from './ratelimit.ts';
import { createMetrics } from '../observability/metrics.ts';

function queue(opts: Partial<WorkQueueOptions> = {}) {
  const clock = new FakeClock();
  const q = new WorkQueue({ name: 'test', clock, ...opts });
  return { q, clock };
}

/** Takes everything that is ready right now, without holding on to it. */
async function drainReady(q: WorkQueue): Promise<string[]> {
  const keys: string[] = [];
  while (q.len() > 0) {
    const key = (await q.get())!;
    keys.push(key);
    q.done(key);
  }
  return keys;
}

test('a key is queued once however often it is added, in first-added order', async () => {
  const { q } = queue();
  for (const k of ['b', 'a', 'b', 'c', 'a']) q.add(k);
  assert.equal(q.len(), 3);
  assert.deepEqual(await drainReady(q), ['b', 'a', 'c']);
});

test('a key added while held is not handed out again until done, then exactly once more', async () => {
  const { q } = queue();
  q.add('ns/a');
  const held = await q.get();
  assert.equal(held, 'ns/a');
  q.add('ns/a');
  q.add('ns/a');
  q.add('ns/b');
  assert.equal(q.len(), 1, 'only ns/b is ready');
  assert.equal(await q.get(), 'ns/b');
  let second: string | undefined;
  void q.get().then((k) => (second = k));
  await settle();
  assert.equal(second, undefined, 'ns/a waits for done()');
  q.done('ns/a');
  await settle();
  assert.equal(second, 'ns/a');
  q.done('ns/a');
  assert.equal(q.len(), 0);
});

test('waiting getters are served in order as keys arrive', async () => {
  const { q } = queue();
  const got: [number, string | undefined][] = [];
  for (const i of [1, 2, 3]) void q.get().then((k) => got.push([i, k]));
  q.add('x');
  q.add('y');
  await settle();
  assert.deepEqual(got, [
    [1, 'x'],
    [2, 'y'],
  ]);
});

test('addAfter: ready only after the delay; of two delays for one key the earlier wins', async () => {
  const { q, clock } = queue();
  q.addAfter('slow', 1000);
  q.addAfter('k', 500);
  q.addAfter('k', 200);
  q.addAfter('k', 900);
  q.addAfter('now', 0);
  assert.deepEqual(await drainReady(q), ['now']);
  await clock.advance(199);
  assert.equal(q.len(), 0);
  await clock.advance(1);
  assert.deepEqual(await drainReady(q), ['k']);
  await clock.advance(700);
  assert.deepEqual(await drainReady(q), [], 'the later delays for k were dropped');
  await clock.advance(100);
  assert.deepEqual(await drainReady(q), ['slow']);
  assert.equal(clock.pending, 0);
});

test('addRateLimited backs off per key exponentially; forget resets it', async () => {
  const { q, clock } = queue({ rateLimiter: new ExponentialFailureRateLimiter(5, 1000 * 1000) });
  const readyAfter = async (key: string): Promise<number> => {
    const start = clock.now();
    q.addRateLimited(key);
    while (q.len() === 0) await clock.advance(1);
    await drainReady(q);
    return clock.now() - start;
  };
  assert.deepEqual([await readyAfter('a'), await readyAfter('a'), await readyAfter('a')], [5, 10, 20]);
  assert.equal(q.numRequeues('a'), 3);
  assert.equal(await readyAfter('b'), 5, 'keys back off independently');
  q.forget('a');
  assert.equal(q.numRequeues('a'), 0);
  assert.equal(await readyAfter('a'), 5);
});

test('rate limiters: exponential caps at its maximum, the bucket limits all keys together, max-of combines', () => {
  const exp = new ExponentialFailureRateLimiter(5, 1000 * 1000);
  const delays = Array.from({ length: 30 }, () => exp.when('k'));
  assert.deepEqual(delays.slice(0, 4), [5, 10, 20, 40]);
  assert.equal(delays.at(-1), 1000 * 1000);
  assert.equal(exp.numRequeues('k'), 30);

  const clock = new FakeClock();
  const bucket = new BucketRateLimiter(new TokenBucket({ qps: 10, burst: 2, clock }));
  assert.deepEqual(['a', 'b', 'c', 'd'].map((k) => bucket.when(k)), [0, 0, 100, 200]);

  const both = new MaxOfRateLimiter(
    new ExponentialFailureRateLimiter(5, 1000),
    new BucketRateLimiter(new TokenBucket({ qps: 10, burst: 1, clock })),
  );
  assert.deepEqual([both.when('a'), both.when('a'), both.when('b')], [5, 100, 200]);
  assert.equal(both.numRequeues('a'), 2);
  both.forget('a');
  assert.equal(both.numRequeues('a'), 0);

  const dflt = defaultControllerRateLimiter({ clock: new FakeClock() });
  const first = Array.from({ length: 100 }, (_, i) => dflt.when(`k${i}`));
  assert.ok(first.every((d) => d === 5), 'a burst of 100 distinct keys only pays the per-key base delay');
  assert.equal(dflt.when('k100'), 100, 'the 101st waits for the 10 qps bucket');
});

test('shutDown: waiting and later get() return undefined, adds are ignored, delayed keys dropped', async () => {
  const { q, clock } = queue();
  q.add('held');
  await q.get();
  const waiting = q.get();
  q.addAfter('later', 1000);
  q.shutDown();
  assert.equal(await waiting, undefined);
  assert.equal(await q.get(), undefined);
  q.add('x');
  q.addAfter('y', 1);
  q.addRateLimited('z');
  assert.equal(q.len(), 0);
  assert.equal(clock.pending, 0, 'no timer left behind');
  q.done('held');
  assert.equal(await q.get(), undefined);
});

test('shutDownWithDrain hands out what is queued, requeues keys re-added while held, then ends', async () => {
  const { q } = queue();
  for (const k of ['a', 'b']) q.add(k);
  const a = (await q.get())!;
  q.add('a'); // dirty while held: must still be processed once more
  let drained = false;
  const drain = q.shutDownWithDrain().then(() => (drained = true));
  q.add('c'); // ignored: added after the drain began
  assert.equal(await q.get(), 'b');
  q.done('b');
  const next = q.get(); // nothing ready, but 'a' is held and may come back
  await settle();
  q.done(a);
  assert.equal(await next, 'a');
  assert.equal(drained, false);
  q.done('a');
  await drain;
  assert.equal(await q.get(), undefined);
});

test('metrics: depth, adds, retries, time queued and time worked', async () => {
  const metrics = createMetrics();
  const { q, clock } = queue({ metrics, rateLimiter: new ExponentialFailureRateLimiter(5, 1000) });
  q.add('a');
  q.add('a');
  q.add('b');
  const value = async (name: string) =>
    (await metrics.registry.getSingleMetric(name)!.get()).values.find((v) => v.labels.name === 'test');
  assert.equal((await value('workqueue_depth'))?.value, 2);
  assert.equal((await value('workqueue_adds_total'))?.value, 2);
  await clock.advance(3000);
  const key = (await q.get())!;
  await clock.advance(2000);
  const text = await metrics.registry.metrics();
  assert.match(text, /workqueue_unfinished_work_seconds\{name="test"\} 2/);
  assert.match(text, /workqueue_longest_running_processor_seconds\{name="test"\} 2/);
  q.done(key);
  q.addRateLimited(key);
  assert.equal((await value('workqueue_retries_total'))?.value, 1);
  assert.equal((await value('workqueue_depth'))?.value, 1);
  const after = await metrics.registry.metrics();
  assert.match(after, /workqueue_queue_duration_seconds_sum\{name="test"\} 3/);
  assert.match(after, /workqueue_work_duration_seconds_sum\{name="test"\} 2/);
  assert.match(after, /workqueue_unfinished_work_seconds\{name="test"\} 0/);
  q.shutDown();
});
