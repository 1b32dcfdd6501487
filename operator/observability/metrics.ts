// The operator's Prometheus metrics. Names, labels and buckets follow controller-runtime and client-go wherever
// the meaning is the same, so their Grafana dashboards and alerts work unchanged; the operator's own metrics
// carry the arena_ prefix.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type ReconcileResultLabel = 'success' | 'error' | 'requeue' | 'requeue_after';

/** What a work queue reports about the items its workers hold right now, read at scrape time. */
export interface InFlightProbe {
  /** Seconds each in-flight item has been processed so far. */
  inFlightSeconds(): number[];
}

export interface Metrics {
  registry: Registry;
  reconcileTotal: Counter<'controller' | 'result'>;
  reconcileErrors: Counter<'controller'>;
  terminalReconcileErrors: Counter<'controller'>;
  reconcileTime: Histogram<'controller'>;
  activeWorkers: Gauge<'controller'>;
  maxConcurrentReconciles: Gauge<'controller'>;
  workqueueDepth: Gauge<'name'>;
  workqueueAdds: Counter<'name'>;
  workqueueRetries: Counter<'name'>;
  workqueueQueueDuration: Histogram<'name'>;
  workqueueWorkDuration: Histogram<'name'>;
  restClientRequests: Counter<'code' | 'method' | 'host'>;
  /** The same requests by API verb and resource (subresource after a slash), to see what each one costs. */
  apiRequests: Counter<'verb' | 'resource' | 'code'>;
  restClientRequestDuration: Histogram<'verb' | 'host'>;
  restClientRateLimiterDuration: Histogram<'verb' | 'host'>;
  leaderElectionMasterStatus: Gauge<'name'>;
  statusWrites: Counter<'kind' | 'result'>;
  eventWrites: Counter<'result'>;
  /**
   * Makes a queue's in-flight items visible as workqueue_unfinished_work_seconds and
   * workqueue_longest_running_processor_seconds; returns the function that removes it again.
   */
  observeInFlight(queueName: string, probe: InFlightProbe): () => void;
}

// controller-runtime's reconcile_time_seconds buckets.
const reconcileBuckets = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75,
  2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
// client-go's workqueue buckets: 10ns to 1000s, by powers of ten.
const workqueueBuckets = Array.from({ length: 12 }, (_, i) => Number((1e-8 * 10 ** i).toPrecision(1)));
// client-go's rest_client latency buckets.
const restBuckets = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];

// One set of handles per registry: prom-client refuses a second metric of the same name in a registry, and
// every part of the operator asks for the handles of the registry it was given.
const byRegistry = new WeakMap<Registry, Metrics>();

export function createMetrics(registry: Registry = new Registry()): Metrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;

  const registers = [registry];
  const probes = new Map<string, Set<InFlightProbe>>();
  const inFlight = (name: string): number[] => [...(probes.get(name) ?? [])].flatMap((p) => p.inFlightSeconds());

  const metrics: Metrics = {
    registry,
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    }),
    terminalReconcileErrors: new Counter({
      name: 'controller_runtime_terminal_reconcile_errors_total',
      help: 'Total number of terminal reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: reconcileBuckets,
      registers,
    }),
    activeWorkers: new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'],
      registers,
    }),
    maxConcurrentReconciles: new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'],
      registers,
    }),
    workqueueDepth: new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue',
      labelNames: ['name'],
      registers,
    }),
    workqueueAdds: new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      labelNames: ['name'],
      registers,
    }),
    workqueueRetries: new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      labelNames: ['name'],
      registers,
    }),
    workqueueQueueDuration: new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: ['name'],
      buckets: workqueueBuckets,
      registers,
    }),
    workqueueWorkDuration: new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes',
      labelNames: ['name'],
      buckets: workqueueBuckets,
      registers,
    }),
    restClientRequests: new Counter({
      name: 'rest_client_requests_total',
      help: 'Number of HTTP requests, partitioned by status code, method, and host',
      labelNames: ['code', 'method', 'host'],
      registers,
    }),
    apiRequests: new Counter({
      name: 'arena_api_requests_total',
      help: 'API requests the operator sent, by verb (get, list, create, update, patch, delete), resource and status code',
      labelNames: ['verb', 'resource', 'code'],
      registers,
    }),
    restClientRequestDuration: new Histogram({
      name: 'rest_client_request_duration_seconds',
      help: 'Request latency in seconds, broken down by verb and host',
      labelNames: ['verb', 'host'],
      buckets: restBuckets,
      registers,
    }),
    restClientRateLimiterDuration: new Histogram({
      name: 'rest_client_rate_limiter_duration_seconds',
      help: 'Client side rate limiter latency in seconds, broken down by verb and host',
      labelNames: ['verb', 'host'],
      buckets: restBuckets,
      registers,
    }),
    leaderElectionMasterStatus: new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
      labelNames: ['name'],
      registers,
    }),
    statusWrites: new Counter({
      name: 'arena_status_writes_total',
      help: 'Status subresource writes, and the writes skipped because the status had not changed',
      labelNames: ['kind', 'result'],
      registers,
    }),
    eventWrites: new Counter({
      name: 'arena_event_writes_total',
      help: 'Kubernetes Event writes: created, series (a repeat folded into an existing event) or failed',
      labelNames: ['result'],
      registers,
    }),
    observeInFlight(queueName, probe) {
      let set = probes.get(queueName);
      if (!set) probes.set(queueName, (set = new Set()));
      set.add(probe);
      return () => {
        set.delete(probe);
        if (set.size === 0) probes.delete(queueName);
      };
    },
  };

  // Computed when scraped rather than on a timer: always current, and no timer to stop.
  new Gauge({
    name: 'workqueue_unfinished_work_seconds',
    help:
      'How many seconds of work has been done that is in progress and has not been observed by work_duration. ' +
      'Large values indicate stuck threads.',
    labelNames: ['name'],
    registers,
    collect() {
      this.reset();
      for (const name of probes.keys()) this.set({ name }, inFlight(name).reduce((a, b) => a + b, 0));
    },
  });
  new Gauge({
    name: 'workqueue_longest_running_processor_seconds',
    help: 'How many seconds has the longest running processor for workqueue been running.',
    labelNames: ['name'],
    registers,
    collect() {
      this.reset();
      for (const name of probes.keys()) this.set({ name }, Math.max(0, ...inFlight(name)));
    },
  });

  collectDefaultMetrics({ register: registry });
  byRegistry.set(registry, metrics);
  return metrics;
}
