// Client-side rate limiting of the operator's API calls, as client-go does it (QPS and burst on the rest client),
// plus the rest_client_* metrics. The hook is the generated clients' transport (`Configuration.httpApi`): every
// generated API class and KubernetesObjectApi sends through it, per-call options keep it (they may replace the
// middleware list, but the transport only when they bring one), and unlike middleware it also sees the requests
// that fail without a response.
import { createHash } from 'node:crypto';
import {
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  bufferFromFileOrString,
  KubernetesObjectApi,
  ResponseContext,
  wrapHttpLibrary,
  type ApiConstructor,
  type ApiType,
  type Configuration,
  type HttpLibrary,
  type RequestContext,
} from '@kubernetes/client-node';
import { realClock, sleep, type Clock } from './clock.ts';
import type { Metrics } from '../observability/metrics.ts';

export interface TokenBucketOptions {
  /** Sustained rate, tokens per second. */
  qps: number;
  /** Tokens available at once; also the bucket's starting fill. */
  burst: number;
  clock?: Clock;
}

/**
 * A token bucket in the style of golang.org/x/time/rate: each caller reserves the next token, going into debt
 * when the bucket is empty, and waits until that token has been earned. Reservations are handed out in call
 * order and become due in that order, so waiting is first come, first served.
 */
export class TokenBucket {
  readonly qps: number;
  readonly burst: number;
  private readonly clock: Clock;
  private tokens: number;
  private last: number;

  constructor(opts: TokenBucketOptions) {
    if (!(opts.qps > 0)) throw new Error(`qps must be positive, got ${opts.qps}`);
    if (!(opts.burst >= 1)) throw new Error(`burst must be at least 1, got ${opts.burst}`);
    this.qps = opts.qps;
    this.burst = opts.burst;
    this.clock = opts.clock ?? realClock;
    this.tokens = opts.burst;
    this.last = this.clock.now();
  }

  /** Takes a token and says how many milliseconds to wait before using it (0 when one was at hand). */
  reserve(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.qps) / 1000);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.qps;
  }

  /** Takes a token only if one is at hand now: for work worth skipping rather than queueing. */
  tryTake(): boolean {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.qps) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Resolves when the caller may go ahead. */
  wait(): Promise<void> {
    return sleep(this.clock, this.reserve());
  }
}

export interface TransportOptions {
  limiter?: TokenBucket;
  /**
   * Asked before every request that changes something (POST, PUT, PATCH, DELETE); when it answers false the request
   * is refused here and never sent. The leader's fence: a replica that paused past its renew deadline (a long GC,
   * a stopped process) may no longer hold the lease, and must not act on what it decided before.
   */
  mayWrite?: () => boolean;
  metrics?: Metrics;
  clock?: Clock;
  /** The transport that really sends; client-node's undici fetch by default. */
  inner?: HttpLibrary;
  /**
   * Each request's deadline, headers and body together; default 30 s, 0 for none. A connection cut silently (a
   * NAT entry dropped, a middlebox gone) answers nothing and reports no error: undici would wait 300 s for the
   * headers and as long again for the body, holding a reconcile worker all that time.
   */
  requestTimeoutMs?: number;
  /**
   * Called when a request ran out of time (this deadline, or a timeout of the caller's own signal), with the moment
   * (performance.now()) it was sent: the connection it went out on is presumed dead, and so are its kept-alive
   * siblings, which a silent cut stranded the same way.
   */
  onHung?: (sentAt: number) => void;
}

/** A request that got no complete answer within its deadline. Named TimeoutError, so it reads as a network failure. */
export class RequestTimeoutError extends Error {
  override readonly name = 'TimeoutError';
  constructor(verb: string, url: string, ms: number) {
    super(`no answer to ${verb} ${new URL(url).pathname} within ${ms} ms: the connection to the API server is presumed dead`);
  }
}

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

function isTimeout(reason: unknown): boolean {
  return reason instanceof Error ? reason.name === 'TimeoutError' : reason instanceof DOMException && reason.name === 'TimeoutError';
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** A write refused because this replica does not hold the leader lease now (TransportOptions.mayWrite). */
export class FencedError extends Error {
  override readonly name = 'FencedError';
  constructor(verb: string, url: string) {
    super(`not sent: ${verb} ${new URL(url).pathname}: this replica does not hold the leader lease now (its last renewal is older than the renew deadline)`);
  }
}

/**
 * Wraps a transport so each request first waits for the limiter, is then counted and timed, and gets an answer
 * within its deadline or fails (TransportOptions.requestTimeoutMs).
 */
export function rateLimitedTransport(opts: TransportOptions): HttpLibrary {
  const inner = opts.inner ?? new IsomorphicFetchHttpLibrary();
  const clock = opts.clock ?? realClock;
  const { limiter, metrics, mayWrite, onHung } = opts;
  const timeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return wrapHttpLibrary({
    async send(request: RequestContext): Promise<ResponseContext> {
      const verb = request.getHttpMethod();
      const host = new URL(request.getUrl()).host;
      const fenced = mayWrite !== undefined && MUTATING.has(String(verb).toUpperCase());
      if (fenced && !mayWrite()) throw new FencedError(String(verb), request.getUrl());
      if (limiter) {
        const queued = clock.now();
        await limiter.wait();
        metrics?.restClientRateLimiterDuration.observe({ verb, host }, (clock.now() - queued) / 1000);
        // Asked again: the lease can be lost while a write waits its turn behind a backlog.
        if (fenced && !mayWrite()) throw new FencedError(String(verb), request.getUrl());
      }
      const start = clock.now();
      let code = '<error>'; // client-go's label for a request that got no response
      const sentAt = performance.now();
      const deadline = new AbortController();
      const timer = timeoutMs > 0 ? setTimeout(() => deadline.abort(new RequestTimeoutError(String(verb), request.getUrl(), timeoutMs)), timeoutMs) : undefined;
      timer?.unref();
      const caller = request.getSignal();
      request.setSignal(caller ? AbortSignal.any([caller, deadline.signal]) : deadline.signal);
      const outOfTime = () => deadline.signal.aborted || (caller?.aborted === true && isTimeout(caller.reason));
      const settle = (err?: unknown) => {
        clearTimeout(timer);
        if (err !== undefined && outOfTime()) onHung?.(sentAt);
      };
      try {
        const response = await inner.send(request).toPromise();
        code = String(response.httpStatusCode);
        // The deadline covers the body too: a cut can strand a response after its headers.
        const body = response.body;
        const guard = <B>(read: Promise<B>): Promise<B> =>
          read.then(
            (v) => (settle(), v),
            (err: unknown) => {
              settle(err);
              throw err;
            },
          );
        return new ResponseContext(response.httpStatusCode, response.headers, { ...body, text: () => guard(body.text()), binary: () => guard(body.binary()) });
      } catch (err) {
        settle(err);
        throw err;
      } finally {
        metrics?.restClientRequests.inc({ code, method: verb, host });
        metrics?.apiRequests.inc({ ...apiVerbAndResource(verb, request.getUrl()), code });
        metrics?.restClientRequestDuration.observe({ verb, host }, (clock.now() - start) / 1000);
      }
    },
  });
}

/**
 * The API server's verb and resource for a request URL, e.g. PATCH …/namespaces/ns/experiments/x/status →
 * patch experiments/status; GET of a collection is list. Unknown paths give resource 'other'.
 */
export function apiVerbAndResource(method: string, url: string): { verb: string; resource: string } {
  const path = new URL(url, 'http://localhost').pathname.split('/').filter(Boolean);
  // /api/v1/… or /apis/<group>/<version>/…
  const rest = path[0] === 'api' ? path.slice(2) : path[0] === 'apis' ? path.slice(3) : undefined;
  const m = method.toUpperCase();
  if (!rest || rest.length === 0) return { verb: m.toLowerCase(), resource: 'other' };
  const scoped = rest[0] === 'namespaces' && rest.length >= 3 ? rest.slice(2) : rest;
  const [resource, name, sub] = scoped;
  const verbs: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: name ? 'delete' : 'deletecollection' };
  const verb = m === 'GET' ? (name ? 'get' : 'list') : (verbs[m] ?? m.toLowerCase());
  return { verb, resource: sub ? `${resource}/${sub}` : resource! };
}

// client-node builds the Configuration (server, TLS and auth, user agent) inside makeApiClient; a subclass of
// the API class receives it and swaps only the transport.
function withTransport<T extends ApiType>(ApiClass: ApiConstructor<T>, httpApi: HttpLibrary): ApiConstructor<T> {
  const Base = ApiClass as ApiConstructor<ApiType>;
  return class extends Base {
    constructor(config: Configuration) {
      super({ ...config, httpApi });
    }
  } as ApiConstructor<T>;
}

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;
type Dispatch = Dispatcher['dispatch'];
type DispatchOptions = Parameters<Dispatch>[0];
type DispatchHandler = Parameters<Dispatch>[1];

/**
 * The fence once more, at the last moment: when the HTTP client puts a write on a connection. A write that passed
 * the transport's checks can still wait inside the client (every kept-alive connection busy) and, if this process
 * is frozen meanwhile, go out after it thaws, when another replica may lead. undici calls onRequestStart just
 * before it writes the request; aborting there sends nothing.
 */
export function fenceInterceptor(mayWrite: () => boolean): (dispatch: Dispatch) => Dispatch {
  return (dispatch) => (opts: DispatchOptions, handler: DispatchHandler) => {
    if (!MUTATING.has(String(opts.method).toUpperCase())) return dispatch(opts, handler);
    const fenced = new Proxy(handler, {
      get(target, prop) {
        if (prop === 'onRequestStart') {
          return (controller: { abort(reason: Error): void }, context: unknown) => {
            if (!mayWrite()) {
              controller.abort(new FencedError(String(opts.method), new URL(opts.path, String(opts.origin ?? 'http://api')).toString()));
              return;
            }
            (target.onRequestStart as ((c: unknown, x: unknown) => void) | undefined)?.call(target, controller, context);
          };
        }
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    return dispatch(opts, fenced);
  };
}

/**
 * A KubeConfig (sharing the given one's clusters, users and contexts) whose API clients all send through one
 * limiter and record rest_client_* metrics. Hand this to everything that makes clients, informers' list calls
 * included. Watches are long-lived streams outside the generated clients and are not limited.
 *
 * It also keeps connections: client-node gives every request a new undici Agent, so each request opened its own
 * TLS connection (a full handshake for the operator and the API server, per request). Requests with the same
 * endpoint and TLS material share one Agent and its kept-alive connections; new material (a rotated client
 * certificate) gets a new Agent and the old one is closed once its requests finish.
 *
 * A request or watch that ran out of time drops the shared Agent (dropConnections): a silent cut leaves every
 * kept-alive connection hanging alike, and the next request must dial a fresh one rather than wait out another
 * deadline on a sibling.
 */
export class RateLimitedKubeConfig extends KubeConfig {
  readonly transport: HttpLibrary;
  private shared?: { key: string; dispatcher: Dispatcher; createdAt: number };
  private readonly mayWrite?: () => boolean;
  /** How many times the shared connections were dropped because a request or watch hung on them. */
  connectionsDropped = 0;

  constructor(base: KubeConfig, opts: TransportOptions) {
    super();
    this.mayWrite = opts.mayWrite;
    this.loadFromOptions({
      clusters: base.clusters,
      users: base.users,
      contexts: base.contexts,
      currentContext: base.currentContext,
    });
    this.transport = rateLimitedTransport({
      ...opts,
      onHung: (sentAt) => {
        this.dropConnections(sentAt);
        opts.onHung?.(sentAt);
      },
    });
  }

  /**
   * Closes the shared connections if they are the ones in use at `sentAt` (performance.now() when the hung
   * request went out), so that many requests hung by the same cut drop them once, not each other's fresh ones.
   * In-flight requests on them fail at once and are retried by their callers.
   */
  dropConnections(sentAt: number = performance.now()): boolean {
    const shared = this.shared;
    if (!shared || shared.createdAt > sentAt) return false;
    this.shared = undefined;
    this.connectionsDropped++;
    void shared.dispatcher.destroy(new Error('dropped: a request on these connections got no answer in time')).catch(() => undefined);
    return true;
  }

  override makeApiClient<T extends ApiType>(ApiClass: ApiConstructor<T>): T {
    return super.makeApiClient(withTransport(ApiClass, this.transport));
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const fresh = context.getDispatcher();
    if (!fresh) return;
    const key = this.connectionKey();
    if (this.shared?.key !== key) {
      const old = this.shared?.dispatcher;
      this.shared = { key, dispatcher: this.mayWrite ? (fresh.compose(fenceInterceptor(this.mayWrite)) as Dispatcher) : fresh, createdAt: performance.now() };
      void old?.close().catch(() => undefined);
    }
    context.setDispatcher(this.shared.dispatcher);
  }

  /** What a connection depends on: endpoint, proxy and TLS material (files read as client-node reads them). */
  private connectionKey(): string {
    const cluster = this.getCurrentCluster();
    const user = this.getCurrentUser();
    const hash = createHash('sha256');
    for (const part of [
      cluster?.server,
      cluster?.proxyUrl,
      String(cluster?.skipTLSVerify ?? ''),
      cluster?.tlsServerName,
      bufferFromFileOrString(cluster?.caFile, cluster?.caData),
      bufferFromFileOrString(user?.certFile, user?.certData),
      bufferFromFileOrString(user?.keyFile, user?.keyData),
    ]) {
      hash.update(part ?? '').update('\0');
    }
    return hash.digest('hex');
  }
}

/** One rate-limited client; prefer RateLimitedKubeConfig so that every client shares the same limiter. */
export function makeRateLimitedClient<T extends ApiType>(
  kc: KubeConfig,
  ApiClass: ApiConstructor<T>,
  limiter: TokenBucket,
  metrics?: Metrics,
): T {
  const limited = new RateLimitedKubeConfig(kc, { limiter, metrics });
  const ObjectApi = KubernetesObjectApi as unknown as ApiConstructor<T>;
  // KubernetesObjectApi also needs the context's default namespace, which only its own factory sets.
  if (ApiClass === ObjectApi) return KubernetesObjectApi.makeApiClient(limited) as unknown as T;
  return limited.makeApiClient(ApiClass);
}
