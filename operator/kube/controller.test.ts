import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { Controller, TerminalError, objectKey, splitKey, type ReconcileResult, type Reconciler } from './controller.ts';
import { FakeClock, settle } from './clock.ts';
import { ExponentialFailureRateLimiter } from './workqueue.ts';
import { ApiException } from '@kubernetes/client-node';
import { createLogger } from '../observability/log.ts';
import { createMetrics, type Metrics } from '../observability/metrics.ts';

type Step = (key: string) => Promise<ReconcileResult | void> | ReconcileResult | void;

/** A controller around a scripted reconciler, with a fake clock, its own metrics and captured log lines. */
function harness(step: Step, workers = 1) {
  const clock = new FakeClock();
  const metrics = createMetrics();
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  stream.on('data', (c: Buffer) => c.toString().split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l))));
  const calls: { key: string; at: number }[] = [];
  const reconciler: Reconciler = {
    async reconcile(key) {
      calls.push({ key, at: clock.now() });
      return step(key);
    },
  };
  const controller = new Controller({
    name: 'widget',
    reconciler,
    workers,
    clock,
    metrics,
    logger: createLogger({ stream, level: 'debug' }),
    rateLimiter: new ExponentialFailureRateLimiter(5, 1000),
  });
  return { controller, clock, metrics, lines, calls };
}

async function count(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const { values } = await metrics.registry.getSingleMetric(name)!.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  return hit?.value ?? 0;
}

test('a successful reconcile happens once per enqueue and counts as success', async () => {
  const h = harness(() => undefined);
  h.controller.enqueue('ns/a');
  h.controller.enqueue('ns/a');
  h.controller.start();
  await h.clock.advance(0);
  h.controller.enqueue('b');
  await h.clock.advance(0);
  await h.controller.stop();
  assert.deepEqual(
    h.calls.map((c) => c.key),
    ['ns/a', 'b'],
  );
  assert.equal(await count(h.metrics, 'controller_runtime_reconcile_total', { result: 'success' }), 2);
  assert.equal(await count(h.metrics, 'controller_runtime_reconcile_total', { result: 'error' }), 0);
  assert.equal(await count(h.metrics, 'controller_runtime_max_concurrent_reconciles', { controller: 'widget' }), 1);
});

test('a thrown error is retried with backoff and logged with the key and a short message', async () => {
  let failures = 3;
  const h = harness(() => {
    if (failures-- > 0) {
      const body = JSON.stringify({ kind: 'Status', code: 409, reason: 'Conflict', message: 'the object has been modified' });
      throw new ApiException(409, 'Unknown API Status Code!', body, {});
    }
  });
  h.controller.enqueue('ns/a');
  h.controller.start();
  await h.clock.advance(1000);
  await h.controller.stop();
  assert.deepEqual(
    h.calls.map((c) => c.at),
    [0, 5, 15, 35],
    'retries after 5, 10 and 20 ms',
  );
  assert.equal(h.controller.queue.numRequeues('ns/a'), 0, 'success forgets the failures');
  assert.equal(await count(h.metrics, 'controller_runtime_reconcile_errors_total', { controller: 'widget' }), 3);
  assert.equal(await count(h.metrics, 'controller_runtime_reconcile_total', { result: 'error' }), 3);
  assert.equal(await count(h.metrics, 'controller_runtime_reconcile_total', { result: 'success' }), 1);
  const errors = h.lines.filter((l) => l.msg === 'Reconciler error');
  assert.equal(errors.length, 3);
  assert.deepEqual(
    { ...errors[0], timestamp: undefined },
    {
      timestamp: undefined,
      level: 'error',
      msg: 'Reconciler error',
      controller: 'widget',
      namespace: 'ns',
      name: 'a',
      key: 'ns/a',
      reason: 'Conflict',
      error: 'the object has been modified',
      retries: 1,
    },
  );
});

test('a TerminalError is not retried, counted as terminal and logged once', async () => {
  const h = harness(() => {
    throw new TerminalError('spec.manifest is not a training manifest');
  });
  h.controller.enqueue('ns/bad');
  h.controller.start();
  await h.clock.advance(10_000);
  await h.controller.stop();
  assert.equal(h.calls.length, 1);
  assert.equal(await count(h.metrics, 'controller_runtime_terminal_reconcile_errors_total', { controller: 'widget' }), 1);
  assert.equal(await count(h.metrics, 'controller_runtime_reconcile_errors_total', { controller: 'widget' }), 1);
  const logged = h.lines.filter((l) => l.level === 'error');
  assert.equal(logged.length, 1);
  assert.equal(logged[0]!.error, 'spec.manifest is not a training manifest');
  assert.equal(logged[0]!.key, 'ns/bad');
});

test('requeueAfterMs looks again after that long', async () => {
  const h = harness(() => ({ requeueAfterMs: 30_000 }));
  h.controller.enqueue('ns/poll');
  h.controller.start();
  await h.clock.advance(65_000);
  await h.controller.stop();
  assert.deepEqual(
    h.calls.map((c) => c.at),
    [0, 30_000, 60_000],
  );
  assert.equal(await count(h.metrics, 'controller_runtime_reconcile_total', { result: 'requeue_after' }), 3);
});

test('workers reconcile different keys in parallel but never one key twice at once', async () => {
  const inFlight = new Set<string>();
  let most = 0;
  const releases: (() => void)[] = [];
  const h = harness(async (key) => {
    assert.ok(!inFlight.has(key), `${key} reconciled twice at once`);
    inFlight.add(key);
    most = Math.max(most, inFlight.size);
    await new Promise<void>((resolve) => releases.push(resolve));
    inFlight.delete(key);
  }, 3);
  h.controller.start();
  for (const k of ['a', 'b', 'c', 'd']) h.controller.enqueue(k);
  await settle();
  assert.equal(inFlight.size, 3, 'three workers busy');
  h.controller.enqueue('a'); // 'a' is held: it must wait, then run once more
  assert.equal(await count(h.metrics, 'controller_runtime_active_workers', { controller: 'widget' }), 3);
  while (h.calls.length < 5 || inFlight.size > 0) {
    releases.splice(0).forEach((r) => r());
    await settle();
  }
  await h.controller.stop();
  assert.equal(most, 3);
  assert.deepEqual(h.calls.map((c) => c.key).sort(), ['a', 'a', 'b', 'c', 'd']);
});

test('stop() takes no new work and waits for reconciles in flight', async () => {
  let release!: () => void;
  let finished = false;
  const h = harness(async () => {
    await new Promise<void>((resolve) => (release = resolve));
    finished = true;
  });
  h.controller.start();
  h.controller.enqueue('ns/slow');
  h.controller.enqueue('ns/next');
  await settle();
  let stopped = false;
  const stopping = h.controller.stop().then(() => (stopped = true));
  await settle();
  assert.equal(stopped, false, 'stop waits for the reconcile in flight');
  release();
  await stopping;
  assert.equal(finished, true);
  assert.deepEqual(
    h.calls.map((c) => c.key),
    ['ns/slow'],
    'the queued key was not started',
  );
  h.controller.enqueue('ns/late');
  await settle();
  assert.equal(h.calls.length, 1);
  assert.throws(() => h.controller.start(), /stopped/);
});

test('object keys', () => {
  const cases: [{ metadata?: { namespace?: string; name?: string } }, string][] = [
    [{ metadata: { namespace: 'team-a', name: 'run-1' } }, 'team-a/run-1'],
    [{ metadata: { name: 'a100-pool' } }, 'a100-pool'],
  ];
  for (const [obj, key] of cases) {
    assert.equal(objectKey(obj), key);
    assert.deepEqual(splitKey(key), obj.metadata);
  }
  assert.throws(() => objectKey({ metadata: { namespace: 'x' } }), /no metadata.name/);
  for (const bad of ['', '/a', 'a/', 'a/b/c']) assert.throws(() => splitKey(bad), /invalid object key/);
});
