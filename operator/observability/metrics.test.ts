import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createMetrics } from './metrics.ts';

const names = [
  'controller_runtime_reconcile_total',
  'controller_runtime_reconcile_errors_total',
  'controller_runtime_terminal_reconcile_errors_total',
  'controller_runtime_reconcile_time_seconds',
  'controller_runtime_active_workers',
  'controller_runtime_max_concurrent_reconciles',
  'workqueue_depth',
  'workqueue_adds_total',
  'workqueue_retries_total',
  'workqueue_queue_duration_seconds',
  'workqueue_work_duration_seconds',
  'workqueue_longest_running_processor_seconds',
  'workqueue_unfinished_work_seconds',
  'rest_client_requests_total',
  'rest_client_request_duration_seconds',
  'rest_client_rate_limiter_duration_seconds',
  'leader_election_master_status',
  'arena_status_writes_total',
  'arena_event_writes_total',
  'process_cpu_seconds_total',
  'nodejs_eventloop_lag_seconds',
];

test('every core metric and the process metrics are registered', async () => {
  const { registry } = createMetrics();
  const registered = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
  for (const name of names) assert.ok(registered.has(name), `${name} is registered`);
});

test('one set of handles per registry: asking twice is safe, registries are independent', async () => {
  const registry = new Registry();
  const a = createMetrics(registry);
  const b = createMetrics(registry);
  assert.equal(a, b);
  const other = createMetrics();
  assert.notEqual(other.registry, registry);
  a.reconcileTotal.inc({ controller: 'experiment', result: 'success' });
  assert.match(await registry.metrics(), /controller_runtime_reconcile_total\{controller="experiment",result="success"\} 1/);
  assert.doesNotMatch(await other.registry.metrics(), /controller="experiment"/);
});

test('in-flight work is read at scrape time from the queues that report it', async () => {
  const m = createMetrics();
  let seconds = [2, 5];
  const stop = m.observeInFlight('experiment', { inFlightSeconds: () => seconds });
  let text = await m.registry.metrics();
  assert.match(text, /workqueue_unfinished_work_seconds\{name="experiment"\} 7/);
  assert.match(text, /workqueue_longest_running_processor_seconds\{name="experiment"\} 5/);
  seconds = [];
  text = await m.registry.metrics();
  assert.match(text, /workqueue_unfinished_work_seconds\{name="experiment"\} 0/);
  stop();
  assert.doesNotMatch(await m.registry.metrics(), /unfinished_work_seconds\{name="experiment"\}/);
});
