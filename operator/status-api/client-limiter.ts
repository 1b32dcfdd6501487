// A token bucket per client, refusing rather than queueing: a poller over its budget is told when to come back
// (429 with Retry-After) instead of holding a connection open. Idle clients are forgotten, oldest first.
export interface ClientLimiterOptions {
  /** Sustained requests per second per client. */
  qps: number;
  /** Requests a client may make at once; also each bucket's starting fill. */
  burst: number;
  /** Buckets kept at most; the least recently used go first. Default 10,000. */
  maxClients?: number;
  now?: () => number;
}

export type TakeResult = { ok: true } | { ok: false; retryAfterMs: number };

interface Bucket {
  tokens: number;
  last: number;
}

export class ClientLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly maxClients: number;

  constructor(private readonly opts: ClientLimiterOptions) {
    if (!(opts.qps > 0)) throw new Error(`qps must be positive, got ${opts.qps}`);
    if (!(opts.burst >= 1)) throw new Error(`burst must be at least 1, got ${opts.burst}`);
    this.now = opts.now ?? Date.now;
    this.maxClients = opts.maxClients ?? 10_000;
  }

  take(client: string): TakeResult {
    const now = this.now();
    let b = this.buckets.get(client);
    if (b) {
      this.buckets.delete(client);
      b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.last) * this.opts.qps) / 1000);
      b.last = now;
    } else {
      b = { tokens: this.opts.burst, last: now };
    }
    // Map order is insertion order: re-inserting keeps the most recently seen client last.
    this.buckets.set(client, b);
    if (this.buckets.size > this.maxClients) this.buckets.delete(this.buckets.keys().next().value!);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - b.tokens) * 1000) / this.opts.qps) };
  }

  get clients(): number {
    return this.buckets.size;
  }
}
