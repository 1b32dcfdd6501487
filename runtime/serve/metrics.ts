// The inference server's Prometheus metrics, in a registry of its own. Paths are the routes (a session id is
// folded into /sessions/{id}, anything unknown into "other") so a scanner cannot create label values at will.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const ROUTES = ['/status', '/healthz', '/readyz', '/metrics', '/get_action', '/predict', '/generate', '/generate_stream', '/sessions', '/sessions/{id}'] as const;

export function routeLabel(path: string): string {
  if ((ROUTES as readonly string[]).includes(path)) return path;
  if (path.startsWith('/sessions/')) return '/sessions/{id}';
  return 'other';
}

export interface ServeMetrics {
  registry: Registry;
  requests: Counter<'path' | 'method' | 'code'>;
  errors: Counter<'path' | 'reason'>;
  refusedConnections: Counter<'cap'>;
  duration: Histogram<'path'>;
  batchSize: Histogram<'path'>;
}

// Loopback get_action takes well under a millisecond; generate can take minutes.
const durationBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export function createServeMetrics(ready: () => boolean, registry: Registry = new Registry()): ServeMetrics {
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'arena_inference_ready',
    help: 'Whether the server can answer inference requests (model loaded or engine ready, API key loaded)',
    registers,
    collect() {
      this.set(ready() ? 1 : 0);
    },
  });
  return {
    registry,
    requests: new Counter({ name: 'arena_inference_requests_total', help: 'HTTP requests by route, method and status code', labelNames: ['path', 'method', 'code'], registers }),
    errors: new Counter({ name: 'arena_inference_errors_total', help: 'Requests answered with an error, by route and reason', labelNames: ['path', 'reason'], registers }),
    refusedConnections: new Counter({ name: 'arena_inference_refused_connections_total', help: 'Connections closed unread because a connection cap was reached, by cap (total or per_client)', labelNames: ['cap'], registers }),
    duration: new Histogram({
      name: 'arena_inference_request_duration_seconds',
      help: 'Time from receiving a request to the end of its response, by route',
      labelNames: ['path'],
      buckets: durationBuckets,
      registers,
    }),
    batchSize: new Histogram({
      name: 'arena_inference_batch_size',
      help: 'Rows (or prompts) per inference request',
      labelNames: ['path'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers,
    }),
  };
}
