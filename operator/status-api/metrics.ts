// The platform-facing Prometheus metrics: experiments and deployments per phase, GPUs per product and state, the
// admission wait, credits consumed, deployment health-check failures, and the status API's and heartbeat's own
// traffic. Gauges are computed from the caches when scraped (always current, nothing to keep in step); counters and
// the wait histogram move with informer events, on the leader only, so that summing over replicas counts each
// event once.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Deployment } from '../api/v1alpha1/deployment.ts';
import type { Experiment } from '../api/v1alpha1/experiment.ts';
import type { CapacitySummary } from '../scheduler/capacity.ts';
import { deploymentPhase, experimentPhase } from './views.ts';

export interface PlatformMetrics {
  admissionWait: Histogram<'class'>;
  creditsConsumed: Counter<'class' | 'namespace'>;
  deploymentHealthCheckFailures: Counter<'namespace' | 'deployment'>;
  statusApiRequests: Counter<'route' | 'code'>;
  statusApiDuration: Histogram<'route'>;
  heartbeats: Counter<'result'>;
}

export interface MetricSources {
  experiments: () => Iterable<Experiment>;
  deployments: () => Iterable<Deployment>;
  /** GPUs on the training clusters' worker nodes. */
  gpus: () => CapacitySummary['gpus'];
}

// From seconds (a free cluster) to a day (a big gang behind a long queue).
const waitBuckets = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400];
const apiBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

const byRegistry = new WeakMap<Registry, PlatformMetrics>();

/**
 * The event-driven metrics of a registry, created once per registry; other parts (the deployment controller's
 * health checks) take their handles from here.
 */
export function platformMetrics(registry: Registry): PlatformMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const m: PlatformMetrics = {
    admissionWait: new Histogram({
      name: 'arena_admission_wait_seconds',
      help: 'Time experiments waited in Pending before every worker ran (per attempt), by resource class',
      labelNames: ['class'],
      buckets: waitBuckets,
      registers,
    }),
    creditsConsumed: new Counter({
      name: 'arena_credits_consumed_total',
      help: 'Credits consumed by finished attempts (status.usage), by resource class and namespace',
      labelNames: ['class', 'namespace'],
      registers,
    }),
    deploymentHealthCheckFailures: new Counter({
      name: 'arena_deployment_health_check_failures_total',
      help: 'Failed health checks of deployed inference endpoints',
      labelNames: ['namespace', 'deployment'],
      registers,
    }),
    statusApiRequests: new Counter({
      name: 'arena_status_api_requests_total',
      help: 'Status API requests, by route and HTTP status code',
      labelNames: ['route', 'code'],
      registers,
    }),
    statusApiDuration: new Histogram({
      name: 'arena_status_api_request_duration_seconds',
      help: 'Status API request handling time, by route',
      labelNames: ['route'],
      buckets: apiBuckets,
      registers,
    }),
    heartbeats: new Counter({
      name: 'arena_platform_heartbeats_total',
      help: 'Heartbeats sent to the Arena platform, by result (accepted, rejected, error, unreachable, no_token)',
      labelNames: ['result'],
      registers,
    }),
  };
  byRegistry.set(registry, m);
  return m;
}

/** The gauges computed from the caches at scrape time. Call once per registry. */
export function registerCacheGauges(registry: Registry, src: MetricSources): void {
  const registers = [registry];
  new Gauge({
    name: 'arena_experiments',
    help: 'Experiments by phase and resource class',
    labelNames: ['phase', 'class'],
    registers,
    collect() {
      this.reset();
      const counts = new Map<string, { phase: string; class: string; n: number }>();
      for (const e of src.experiments()) {
        const phase = experimentPhase(e);
        const cls = e.spec.resourceClass ?? '';
        const key = `${phase}\u0000${cls}`;
        const c = counts.get(key);
        if (c) c.n++;
        else counts.set(key, { phase, class: cls, n: 1 });
      }
      for (const c of counts.values()) this.set({ phase: c.phase, class: c.class }, c.n);
    },
  });
  new Gauge({
    name: 'arena_deployments',
    help: 'Deployments (agents) by phase',
    labelNames: ['phase'],
    registers,
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const d of src.deployments()) counts.set(deploymentPhase(d), (counts.get(deploymentPhase(d)) ?? 0) + 1);
      for (const [phase, n] of counts) this.set({ phase }, n);
    },
  });
  new Gauge({
    name: 'arena_gpus',
    help: 'GPUs on Ready worker nodes by product and state (allocated includes capacity held for admitted gangs)',
    labelNames: ['product', 'state'],
    registers,
    collect() {
      this.reset();
      for (const p of src.gpus().byProduct) {
        this.set({ product: p.product, state: 'total' }, p.total);
        this.set({ product: p.product, state: 'allocated' }, p.allocated + p.reserved);
        this.set({ product: p.product, state: 'free' }, p.free);
      }
    },
  });
}

/**
 * Watches experiment updates for the event-driven metrics: the wait from entering Pending to Running, and the
 * credits each finished attempt added to status.usage.
 */
export class ExperimentMetricsRecorder {
  /** key → when the current Pending stretch began (ms) and for which run/attempt. */
  private readonly pendingSince = new Map<string, { since: number; attempt: string }>();

  constructor(
    private readonly m: PlatformMetrics,
    private readonly isLeader: () => boolean,
    private readonly now: () => number = Date.now,
  ) {}

  added(e: Experiment, key: string): void {
    if (experimentPhase(e) !== 'Pending') return;
    // Seen for the first time already Pending (a restart): the Admitted condition went False when it started
    // waiting, which is the best start this process can know.
    const admitted = e.status?.conditions?.find((c) => c.type === 'Admitted' && c.status === 'False');
    const since = admitted ? Date.parse(admitted.lastTransitionTime) : NaN;
    this.pendingSince.set(key, { since: Number.isFinite(since) ? since : this.now(), attempt: attemptOf(e) });
  }

  updated(e: Experiment, old: Experiment, key: string): void {
    const phase = experimentPhase(e);
    const was = experimentPhase(old);
    if (phase === 'Pending' && (was !== 'Pending' || attemptOf(e) !== this.pendingSince.get(key)?.attempt)) {
      this.pendingSince.set(key, { since: this.now(), attempt: attemptOf(e) });
    }
    if (phase === 'Running' && was !== 'Running') {
      const p = this.pendingSince.get(key);
      this.pendingSince.delete(key);
      if (p && this.isLeader()) {
        const started = Date.parse(e.status?.attemptStartedAt ?? '');
        const end = Number.isFinite(started) ? started : this.now();
        this.m.admissionWait.observe({ class: e.spec.resourceClass ?? '' }, Math.max(0, (end - p.since) / 1000));
      }
    } else if (phase !== 'Pending') {
      this.pendingSince.delete(key);
    }
    const delta = (e.status?.usage?.credits ?? 0) - (old.status?.usage?.credits ?? 0);
    if (delta > 0 && this.isLeader()) {
      this.m.creditsConsumed.inc({ class: e.spec.resourceClass ?? '', namespace: e.metadata?.namespace ?? '' }, delta);
    }
  }

  deleted(key: string): void {
    this.pendingSince.delete(key);
  }
}

function attemptOf(e: Experiment): string {
  return `${e.status?.run ?? 0}-${e.status?.attempt ?? 0}`;
}
