// A keyed work queue with client-go's semantics (k8s.io/client-go/util/workqueue): a key is queued at most once,
// is held by at most one worker at a time, and a key added while a worker holds it is processed again after
// done(). Delayed adds (earliest wins) and per-key exponential backoff sit on top, as in client-go's
// TypedRateLimitingInterface.
import { realClock, type Clock } from './clock.ts';
import { TokenBucket } from './ratelimit.ts';
import type { Metrics } from '../observability/metrics.ts';

/** Decides how long a key waits before its next retry. */
export interface ItemRateLimiter {
  /** The delay for the key's next retry, in ms; counts one more failure. */
  when(key: string): number;
  /** Clears the key's failure history (it succeeded, or was given up on). */
  forget(key: string): void;
  numRequeues(key: string): number;
}

/** base * 2^failures, capped: client-go's ItemExponentialFailureRateLimiter. */
export class ExponentialFailureRateLimiter implements ItemRateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    readonly baseMs = 5,
    readonly maxMs = 1000 * 1000,
  ) {}

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return Math.min(this.maxMs, this.baseMs * 2 ** n);
  }
  forget(key: string): void {
    this.failures.delete(key);
  }
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** An overall retry rate across all keys, so that many failing keys cannot hammer the API server together. */
export class BucketRateLimiter implements ItemRateLimiter {
  constructor(private readonly bucket: TokenBucket) {}
  when(_key: string): number {
    return this.bucket.reserve();
  }
  forget(_key: string): void {}
  numRequeues(_key: string): number {
    return 0;
  }
}

/** The longest delay any of the limiters asks for. */
export class MaxOfRateLimiter implements ItemRateLimiter {
  private readonly limiters: ItemRateLimiter[];
  constructor(...limiters: ItemRateLimiter[]) {
    this.limiters = limiters;
  }
  when(key: string): number {
    return Math.max(0, ...this.limiters.map((l) => l.when(key)));
  }
  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }
  numRequeues(key: string): number {
    return Math.max(0, ...this.limiters.map((l) => l.numRequeues(key)));
  }
}

export interface DefaultRateLimiterOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  qps?: number;
  burst?: number;
  clock?: Clock;
}

/** client-go's DefaultControllerRateLimiter: per key 5 ms doubling to 1000 s, overall 10 qps with a burst of 100. */
export function defaultControllerRateLimiter(opts: DefaultRateLimiterOptions = {}): ItemRateLimiter {
  return new MaxOfRateLimiter(
    new ExponentialFailureRateLimiter(opts.baseDelayMs ?? 5, opts.maxDelayMs ?? 1000 * 1000),
    new BucketRateLimiter(new TokenBucket({ qps: opts.qps ?? 10, burst: opts.burst ?? 100, clock: opts.clock })),
  );
}

interface Delayed {
  at: number;
  key: string;
}

/** Binary min-heap on `at`; stale entries are skipped by the reader rather than removed. */
class DelayHeap {
  private items: Delayed[] = [];

  get size(): number {
    return this.items.length;
  }
  peek(): Delayed | undefined {
    return this.items[0];
  }
  push(item: Delayed): void {
    const a = this.items;
    a.push(item);
    for (let i = a.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (a[parent]!.at <= a[i]!.at) break;
      [a[parent], a[i]] = [a[i]!, a[parent]!];
      i = parent;
    }
  }
  pop(): Delayed | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let min = i;
        if (l < a.length && a[l]!.at < a[min]!.at) min = l;
        if (r < a.length && a[r]!.at < a[min]!.at) min = r;
        if (min === i) break;
        [a[min], a[i]] = [a[i]!, a[min]!];
        i = min;
      }
    }
    return top;
  }
  clear(): void {
    this.items = [];
  }
}

export interface WorkQueueOptions {
  /** Names the queue in the workqueue_* metrics (the controller's name). */
  name: string;
  rateLimiter?: ItemRateLimiter;
  clock?: Clock;
  metrics?: Metrics;
}

export class WorkQueue {
  readonly name: string;
  private readonly clock: Clock;
  private readonly rateLimiter: ItemRateLimiter;
  private readonly metrics?: Metrics;
  private readonly labels: { name: string };

  /** Ready keys in arrival order (a Set iterates in insertion order). */
  private readonly queue = new Set<string>();
  /** Keys that need processing: the queued ones, and held ones that were added again. */
  private readonly dirty = new Set<string>();
  /** Held keys and when their processing started. */
  private readonly processing = new Map<string, number>();
  private readonly queuedAt = new Map<string, number>();
  /** Delayed keys and when each becomes ready; the heap orders them. */
  private readonly waiting = new Map<string, number>();
  private readonly heap = new DelayHeap();
  private timer?: { at: number; cancel: () => void };
  private readonly getters: ((key: string | undefined) => void)[] = [];

  private shuttingDown = false;
  private draining = false;
  private drainWaiters: (() => void)[] = [];
  private readonly stopObserving?: () => void;

  constructor(opts: WorkQueueOptions) {
    this.name = opts.name;
    this.clock = opts.clock ?? realClock;
    this.rateLimiter = opts.rateLimiter ?? defaultControllerRateLimiter({ clock: this.clock });
    this.metrics = opts.metrics;
    this.labels = { name: opts.name };
    this.metrics?.workqueueDepth.set(this.labels, 0);
    this.stopObserving = this.metrics?.observeInFlight(opts.name, {
      inFlightSeconds: () => {
        const now = this.clock.now();
        return [...this.processing.values()].map((start) => (now - start) / 1000);
      },
    });
  }

  /** Queues the key unless it is already queued; a held key is queued again once done. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.metrics?.workqueueAdds.inc(this.labels);
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /** Adds the key after `ms`; when it is already waiting, the earlier time wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = this.clock.now() + ms;
    const current = this.waiting.get(key);
    if (current !== undefined && current <= at) return;
    this.waiting.set(key, at);
    this.heap.push({ at, key });
    this.arm();
  }

  /** Adds the key after its rate limiter's delay: the retry path. */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.metrics?.workqueueRetries.inc(this.labels);
    this.addAfter(key, this.rateLimiter.when(key));
  }

  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /** Keys ready to be handed out (not the held or delayed ones). */
  len(): number {
    return this.queue.size;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * The next key, held by the caller until done(key); waits while none is ready. Undefined once the queue is
   * shut down (after a drain: once everything queued before it has been processed).
   */
  get(): Promise<string | undefined> {
    if (this.shuttingDown && !this.draining) return Promise.resolve(undefined);
    if (this.queue.size > 0) return Promise.resolve(this.take());
    if (this.finished()) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Releases a key taken with get(); if it was added meanwhile, it is queued again. */
  done(key: string): void {
    const start = this.processing.get(key);
    if (start === undefined) return;
    this.processing.delete(key);
    this.metrics?.workqueueWorkDuration.observe(this.labels, (this.clock.now() - start) / 1000);
    if (this.dirty.has(key)) this.push(key);
    this.settleShutdown();
  }

  /** Stops at once: adds are ignored, waiting and future get() calls return undefined, delayed keys dropped. */
  shutDown(): void {
    this.beginShutdown();
    this.draining = false;
    this.settleShutdown();
  }

  /** Ignores new adds, hands out what is queued until it is all done, then behaves like shutDown(). */
  shutDownWithDrain(): Promise<void> {
    this.beginShutdown();
    this.draining = true;
    const drained = new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    this.settleShutdown();
    return drained;
  }

  private beginShutdown(): void {
    this.shuttingDown = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.waiting.clear();
    this.heap.clear();
    this.stopObserving?.();
  }

  private finished(): boolean {
    return this.shuttingDown && (!this.draining || (this.queue.size === 0 && this.processing.size === 0));
  }

  private settleShutdown(): void {
    if (!this.finished()) return;
    for (const resolve of this.getters.splice(0)) resolve(undefined);
    if (this.processing.size === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  private push(key: string): void {
    this.queue.add(key);
    this.queuedAt.set(key, this.clock.now());
    while (this.getters.length > 0 && this.queue.size > 0) this.getters.shift()!(this.take());
    this.metrics?.workqueueDepth.set(this.labels, this.queue.size);
  }

  private take(): string {
    const key = this.queue.values().next().value as string;
    this.queue.delete(key);
    this.dirty.delete(key);
    const now = this.clock.now();
    this.processing.set(key, now);
    this.metrics?.workqueueQueueDuration.observe(this.labels, (now - (this.queuedAt.get(key) ?? now)) / 1000);
    this.queuedAt.delete(key);
    this.metrics?.workqueueDepth.set(this.labels, this.queue.size);
    return key;
  }

  // One timer, set for the earliest delayed key.
  private arm(): void {
    let next = this.heap.peek();
    while (next && this.waiting.get(next.key) !== next.at) {
      this.heap.pop();
      next = this.heap.peek();
    }
    if (!next) return;
    if (this.timer && this.timer.at <= next.at) return;
    this.timer?.cancel();
    const at = next.at;
    this.timer = { at, cancel: this.clock.setTimer(at - this.clock.now(), () => this.fire()) };
  }

  private fire(): void {
    this.timer = undefined;
    const now = this.clock.now();
    for (let next = this.heap.peek(); next && next.at <= now; next = this.heap.peek()) {
      this.heap.pop();
      if (this.waiting.get(next.key) !== next.at) continue;
      this.waiting.delete(next.key);
      this.add(next.key);
    }
    this.arm();
  }
}
