// Runs a level-based Reconciler over a WorkQueue with N workers, the controller-runtime way: the reconciler sees
// only a key, a thrown error means "retry with backoff", a TerminalError means "do not retry", and a result can
// ask to look again later.
import { WorkQueue, type ItemRateLimiter } from './workqueue.ts';
import { realClock, type Clock } from './clock.ts';
import { toKubeError } from './errors.ts';
import { createLogger, forObject, type Logger } from '../observability/log.ts';
import type { Metrics, ReconcileResultLabel } from '../observability/metrics.ts';

export interface ReconcileResult {
  /** Look at the object again after this long even if nothing changes (polling, timeouts). */
  requeueAfterMs?: number;
}

export interface Reconciler {
  /** Moves the object named by `key` one step toward its spec; must be idempotent. */
  reconcile(key: string): Promise<ReconcileResult | void>;
}

/** An error that retrying cannot fix (the object itself is wrong); counted and logged, never requeued. */
export class TerminalError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

/** 'namespace/name', or 'name' for cluster-scoped objects: the key format of client-go's MetaNamespaceKeyFunc. */
export function objectKey(obj: { metadata?: { namespace?: string; name?: string } }): string {
  const { namespace, name } = obj.metadata ?? {};
  if (!name) throw new Error('object has no metadata.name');
  return namespace ? `${namespace}/${name}` : name;
}

function parseKey(key: string): { namespace?: string; name: string } | undefined {
  const [first, second, ...rest] = key.split('/');
  if (!first || rest.length > 0) return undefined;
  if (second === undefined) return { name: first };
  return second ? { namespace: first, name: second } : undefined;
}

export function splitKey(key: string): { namespace?: string; name: string } {
  const ref = parseKey(key);
  if (!ref) throw new Error(`invalid object key ${JSON.stringify(key)}: want 'name' or 'namespace/name'`);
  return ref;
}

export interface ControllerOptions {
  /** Names the controller in logs and metrics, e.g. 'experiment'. */
  name: string;
  reconciler: Reconciler;
  /** Concurrent reconciles (different keys only; one key is never reconciled twice at once). Default 1. */
  workers?: number;
  rateLimiter?: ItemRateLimiter;
  metrics?: Metrics;
  logger?: Logger;
  clock?: Clock;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly reconciler: Reconciler;
  private readonly workers: number;
  private readonly metrics?: Metrics;
  private readonly log: Logger;
  private readonly clock: Clock;
  private running: Promise<void>[] = [];

  constructor(opts: ControllerOptions) {
    this.name = opts.name;
    this.reconciler = opts.reconciler;
    this.workers = opts.workers ?? 1;
    if (!Number.isInteger(this.workers) || this.workers < 1) {
      throw new Error(`workers must be a whole number ≥ 1, got ${opts.workers}`);
    }
    this.metrics = opts.metrics;
    this.clock = opts.clock ?? realClock;
    this.log = (opts.logger ?? createLogger({ component: 'controller' })).child({ controller: opts.name });
    this.queue = new WorkQueue({
      name: opts.name,
      rateLimiter: opts.rateLimiter,
      clock: this.clock,
      metrics: opts.metrics,
    });

    // Like controller-runtime, publish zeros up front so rate() works from the first scrape.
    const controller = opts.name;
    for (const result of ['success', 'error', 'requeue', 'requeue_after'] as const) {
      this.metrics?.reconcileTotal.inc({ controller, result }, 0);
    }
    this.metrics?.reconcileErrors.inc({ controller }, 0);
    this.metrics?.terminalReconcileErrors.inc({ controller }, 0);
    this.metrics?.activeWorkers.set({ controller }, 0);
    this.metrics?.maxConcurrentReconciles.set({ controller }, this.workers);
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  enqueueAfter(key: string, ms: number): void {
    this.queue.addAfter(key, ms);
  }

  /** Starts the workers; keys enqueued before start() wait for them. */
  start(): void {
    if (this.queue.isShuttingDown()) throw new Error(`controller ${this.name} was stopped`);
    if (this.running.length > 0) throw new Error(`controller ${this.name} already started`);
    this.log.info('Starting workers', { workers: this.workers });
    this.running = Array.from({ length: this.workers }, () => this.work());
  }

  /** Takes no more work and resolves once every reconcile in flight has returned. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.running);
    this.log.info('All workers finished');
  }

  private async work(): Promise<void> {
    for (let key = await this.queue.get(); key !== undefined; key = await this.queue.get()) {
      await this.process(key);
    }
  }

  private async process(key: string): Promise<void> {
    const controller = this.name;
    const start = this.clock.now();
    this.metrics?.activeWorkers.inc({ controller });
    let result: ReconcileResultLabel = 'success';
    try {
      const res = await this.reconciler.reconcile(key);
      this.queue.forget(key);
      if (res?.requeueAfterMs !== undefined && res.requeueAfterMs > 0) {
        result = 'requeue_after';
        this.queue.addAfter(key, res.requeueAfterMs);
      }
    } catch (err) {
      result = 'error';
      this.metrics?.reconcileErrors.inc({ controller });
      this.fail(key, err);
    } finally {
      this.queue.done(key);
      this.metrics?.reconcileTotal.inc({ controller, result });
      this.metrics?.reconcileTime.observe({ controller }, (this.clock.now() - start) / 1000);
      this.metrics?.activeWorkers.dec({ controller });
    }
  }

  private fail(key: string, err: unknown): void {
    const log = forObject(this.log, parseKey(key) ?? { name: key });
    const { reason, message } = toKubeError(err);
    if (err instanceof TerminalError) {
      this.metrics?.terminalReconcileErrors.inc({ controller: this.name });
      this.queue.forget(key);
      log.error('Reconciler error, not retrying', { key, error: message });
      return;
    }
    this.queue.addRateLimited(key);
    log.error('Reconciler error', { key, reason, error: message, retries: this.queue.numRequeues(key) });
  }
}
