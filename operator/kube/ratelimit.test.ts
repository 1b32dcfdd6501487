import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  HttpMethod,
  RequestContext,
  ResponseContext,
  wrapHttpLibrary,
  type HttpLibrary,
} from '@kubernetes/client-node';
import { FakeClock } from './clock.ts';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { FencedError, RateLimitedKubeConfig, RequestTimeoutError, TokenBucket, apiVerbAndResource, fenceInterceptor, makeRateLimitedClient, rateLimitedTransport } from './ratelimit.ts';
import { createMetrics } from '../observability/metrics.ts';
import { toKubeError } from './errors.ts';

/** Resolves each wait() in a list as it completes, stamped with the fake time. */
function track(clock: FakeClock, bucket: TokenBucket, n: number) {
  const done: { i: number; at: number }[] = [];
  for (let i = 0; i < n; i++) void bucket.wait().then(() => done.push({ i, at: clock.now() }));
  return done;
}

test('a full bucket lets a burst through at once, then one token per 1/qps', async () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 10, burst: 3, clock });
  const done = track(clock, bucket, 6);
  await clock.advance(0);
  assert.deepEqual(
    done.map((d) => d.at),
    [0, 0, 0],
  );
  await clock.advance(1000);
  assert.deepEqual(
    done.map((d) => d.at),
    [0, 0, 0, 100, 200, 300],
  );
});

test('waiters are served first come, first served', async () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 5, burst: 1, clock });
  const done = track(clock, bucket, 5);
  await clock.advance(50);
  const late = track(clock, bucket, 2); // arrive while the first five still wait
  await clock.advance(2000);
  assert.deepEqual(
    done.map((d) => [d.i, d.at]),
    [
      [0, 0],
      [1, 200],
      [2, 400],
      [3, 600],
      [4, 800],
    ],
  );
  assert.equal(late.length, 2);
  assert.deepEqual(
    late.map((d) => d.at),
    [1000, 1200],
  );
});

test('tokens refill while idle, up to the burst only', async () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 10, burst: 2, clock });
  assert.equal(bucket.reserve(), 0);
  assert.equal(bucket.reserve(), 0);
  assert.equal(bucket.reserve(), 100);
  await clock.advance(10_000);
  assert.deepEqual([bucket.reserve(), bucket.reserve(), bucket.reserve()], [0, 0, 100]);
  assert.throws(() => new TokenBucket({ qps: 0, burst: 1 }), /qps/);
  assert.throws(() => new TokenBucket({ qps: 1, burst: 0 }), /burst/);
});

function response(code: number): ResponseContext {
  const body = { text: async () => '{}', binary: async () => Buffer.from('{}'), stream: () => null };
  return new ResponseContext(code, { 'content-type': 'application/json' }, body as never);
}

test('the transport waits for the limiter, then counts and times each request by code and method', async () => {
  const clock = new FakeClock();
  const metrics = createMetrics();
  const codes = [200, 404];
  const inner: HttpLibrary = wrapHttpLibrary({
    async send() {
      const code = codes.shift();
      if (code === undefined) throw new TypeError('fetch failed');
      return response(code);
    },
  });
  const limiter = new TokenBucket({ qps: 1, burst: 1, clock });
  const transport = rateLimitedTransport({ limiter, metrics, clock, inner });
  const request = () => new RequestContext('https://127.0.0.1:6443/api/v1/namespaces/a/configmaps/b', 'GET');

  const sent: number[] = [];
  const first = transport.send(request()).toPromise().then((r) => sent.push(r.httpStatusCode));
  const second = transport.send(request()).toPromise().then((r) => sent.push(r.httpStatusCode));
  const third = assert.rejects(transport.send(request()).toPromise(), /fetch failed/);
  await clock.advance(999);
  assert.deepEqual(sent, [200], 'the second request waits for its token');
  await clock.advance(1);
  await Promise.all([first, second]);
  assert.deepEqual(sent, [200, 404]);
  await clock.advance(1000);
  await third;

  const text = await metrics.registry.metrics();
  const host = 'host="127.0.0.1:6443"';
  assert.match(text, new RegExp(`rest_client_requests_total\\{code="200",method="GET",${host}\\} 1`));
  assert.match(text, new RegExp(`rest_client_requests_total\\{code="404",method="GET",${host}\\} 1`));
  assert.match(text, new RegExp(`rest_client_requests_total\\{code="<error>",method="GET",${host}\\} 1`));
  assert.match(text, new RegExp(`rest_client_request_duration_seconds_count\\{verb="GET",${host}\\} 3`));
  assert.match(text, new RegExp(`rest_client_rate_limiter_duration_seconds_sum\\{verb="GET",${host}\\} 3`));
  assert.match(text, /arena_api_requests_total\{verb="get",resource="configmaps",code="404"\} 1/);
});

test('requests are named by the API verb and resource the API server sees', () => {
  const at = (method: string, path: string) => apiVerbAndResource(method, `https://127.0.0.1:6443${path}?limit=500`);
  assert.deepEqual(at('GET', '/api/v1/pods'), { verb: 'list', resource: 'pods' });
  assert.deepEqual(at('GET', '/api/v1/namespaces/a/pods'), { verb: 'list', resource: 'pods' });
  assert.deepEqual(at('GET', '/api/v1/namespaces/a/pods/p'), { verb: 'get', resource: 'pods' });
  assert.deepEqual(at('POST', '/api/v1/namespaces/a/secrets'), { verb: 'create', resource: 'secrets' });
  assert.deepEqual(at('DELETE', '/api/v1/namespaces/a/pods/p'), { verb: 'delete', resource: 'pods' });
  assert.deepEqual(at('GET', '/api/v1/namespaces/a'), { verb: 'get', resource: 'namespaces' });
  assert.deepEqual(at('PATCH', '/apis/arena.agilerl.com/v1alpha1/namespaces/a/experiments/x/status'), { verb: 'patch', resource: 'experiments/status' });
  assert.deepEqual(at('PUT', '/apis/coordination.k8s.io/v1/namespaces/a/leases/l'), { verb: 'update', resource: 'leases' });
  assert.deepEqual(at('GET', '/apis/arena.agilerl.com/v1alpha1/trainingclusters'), { verb: 'list', resource: 'trainingclusters' });
  assert.deepEqual(at('POST', '/apis/events.k8s.io/v1/namespaces/a/events'), { verb: 'create', resource: 'events' });
  assert.deepEqual(at('GET', '/version'), { verb: 'get', resource: 'other' });
});

test('clients from a RateLimitedKubeConfig send through its transport', () => {
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'c', server: 'https://127.0.0.1:6443', skipTLSVerify: false }, { name: 'u' });
  kc.setCurrentContext('loaded-context');
  const limited = new RateLimitedKubeConfig(kc, { limiter: new TokenBucket({ qps: 1, burst: 1 }) });
  const transportOf = (api: object) =>
    (api as { api: { configuration: { httpApi: HttpLibrary } } }).api.configuration.httpApi;
  const core = limited.makeApiClient(CoreV1Api);
  assert.ok(core instanceof CoreV1Api);
  assert.equal(transportOf(core), limited.transport);
  assert.equal(limited.getCurrentCluster()?.server, 'https://127.0.0.1:6443');

  const objects = makeRateLimitedClient(kc, KubernetesObjectApi, new TokenBucket({ qps: 1, burst: 1 }));
  assert.ok(objects instanceof KubernetesObjectApi);
  const httpApi = (objects as unknown as { configuration: { httpApi: HttpLibrary } }).configuration.httpApi;
  assert.notEqual(httpApi.constructor.name, 'IsomorphicFetchHttpLibrary');
});

test('tryTake takes a token only when one is at hand, and never goes into debt', async () => {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps: 2, burst: 2, clock });
  assert.deepEqual([bucket.tryTake(), bucket.tryTake(), bucket.tryTake()], [true, true, false]);
  await clock.advance(499);
  assert.equal(bucket.tryTake(), false, 'not a whole token yet');
  await clock.advance(1);
  assert.equal(bucket.tryTake(), true);
  assert.equal(bucket.reserve(), 500, 'a refused tryTake left no debt: the next reservation waits one token');
});

test('a fenced transport refuses writes without sending them, and still reads', async () => {
  const sent: string[] = [];
  const inner = wrapHttpLibrary({ send: async (req) => (sent.push(req.getHttpMethod()), response(200)) });
  let open = false;
  const transport = rateLimitedTransport({ inner, mayWrite: () => open });
  const call = (method: HttpMethod) => transport.send(new RequestContext('https://api.test/api/v1/namespaces/ns/pods/p', method)).toPromise();
  assert.equal((await call(HttpMethod.GET)).httpStatusCode, 200);
  for (const m of [HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE]) await assert.rejects(call(m), (e: Error) => e instanceof FencedError && /does not hold the leader lease/.test(e.message));
  assert.deepEqual(sent, ['GET'], 'no refused write reached the API server');
  open = true;
  assert.equal((await call(HttpMethod.PATCH)).httpStatusCode, 200);
  assert.deepEqual(sent, ['GET', 'PATCH']);
});

test('a write that passed the fence and then waited in the limiter is refused if the lease was lost meanwhile', async () => {
  const clock = new FakeClock();
  const sent: string[] = [];
  const inner = wrapHttpLibrary({ send: async (req) => (sent.push(req.getHttpMethod()), response(200)) });
  let open = true;
  const limiter = new TokenBucket({ qps: 1, burst: 1, clock });
  const transport = rateLimitedTransport({ inner, limiter, clock, mayWrite: () => open });
  const call = (method: HttpMethod) => transport.send(new RequestContext('https://api.test/api/v1/namespaces/ns/pods/p', method)).toPromise();
  assert.equal((await call(HttpMethod.PATCH)).httpStatusCode, 200);
  // The next write waits a whole second for its token; the lease goes while it waits.
  const queued = assert.rejects(call(HttpMethod.DELETE), (e: Error) => e instanceof FencedError);
  open = false;
  await clock.advance(1000);
  await queued;
  assert.deepEqual(sent, ['PATCH'], 'the queued write never reached the API server');
});

test('the HTTP client asks the fence again as it puts a write on a connection, and a refused write is never written', () => {
  let open = true;
  const started: string[] = [];
  const aborted: Error[] = [];
  // Plays undici's part: onRequestStart comes just before the request is written to the socket.
  const dispatch = ((opts: { method: string }, handler: { onRequestStart?: (c: unknown, x: unknown) => void; marker?: string }) => {
    const controller = { abort: (reason: Error) => aborted.push(reason) };
    handler.onRequestStart?.(controller, null);
    started.push(`${opts.method} ${handler.marker ?? ''}`);
    return true;
  }) as never;
  const fenced = fenceInterceptor(() => open)(dispatch) as unknown as (o: object, h: object) => boolean;
  const handler = (name: string, seen: string[]) => ({ marker: name, onRequestStart: () => seen.push(name) });
  const reached: string[] = [];
  fenced({ method: 'GET', path: '/api/v1/pods', origin: 'https://api.test' }, handler('read', reached));
  fenced({ method: 'PATCH', path: '/api/v1/pods/p', origin: 'https://api.test' }, handler('write-open', reached));
  open = false;
  fenced({ method: 'DELETE', path: '/api/v1/pods/p', origin: 'https://api.test' }, handler('write-fenced', reached));
  fenced({ method: 'GET', path: '/api/v1/pods', origin: 'https://api.test' }, handler('read-fenced', reached));
  assert.deepEqual(reached, ['read', 'write-open', 'read-fenced'], 'the fenced write never reached its own onRequestStart');
  assert.equal(aborted.length, 1);
  assert.ok(aborted[0] instanceof FencedError && /DELETE \/api\/v1\/pods\/p/.test(aborted[0].message), aborted[0]?.message);
  assert.equal(started.length, 4, 'the handler forwards every other callback (the marker field read through the wrapper)');
  assert.ok(started.includes('DELETE write-fenced'));
});

/**
 * An API server stand-in whose connections can be cut silently: after cut(), requests on connections that were
 * open before it are read and never answered, as when a NAT entry or a middlebox vanished; new connections work.
 */
async function cuttableServer(opts: { answer?: boolean } = {}) {
  const sockets = new Set<Socket>();
  const dead = new Set<Socket>();
  let connections = 0;
  const served: number[] = [];
  const server = createServer((req, res) => {
    if (opts.answer === false || dead.has(req.socket)) return; // no answer, no error, the connection stays open
    served.push((req.socket as Socket & { n?: number }).n ?? 0);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: {}, items: [] }));
  });
  server.on('connection', (s: Socket & { n?: number }) => {
    s.n = ++connections;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    served,
    connections: () => connections,
    cut: () => sockets.forEach((s) => dead.add(s)),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test('a request that gets no answer fails at its deadline instead of hanging, and says so', { timeout: 20_000 }, async () => {
  const api = await cuttableServer({ answer: false });
  try {
    const hung: number[] = [];
    const transport = rateLimitedTransport({ requestTimeoutMs: 300, onHung: (at) => hung.push(at) });
    const err = await transport
      .send(new RequestContext(`${api.url}/api/v1/pods`, HttpMethod.GET))
      .toPromise()
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    assert.ok(err instanceof RequestTimeoutError, `want a RequestTimeoutError, got ${String(err)}`);
    assert.match(err.message, /no answer to GET \/api\/v1\/pods within 300 ms/);
    assert.equal(toKubeError(err).reason, 'NetworkError', 'retried like any network failure');
    assert.equal(hung.length, 1, 'the connection it used is reported as hung');
  } finally {
    await api.close();
  }
});

test('after a silent cut, the request that hung drops the shared connections and the next one dials a fresh connection', { timeout: 20_000 }, async () => {
  const api = await cuttableServer();
  try {
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'c', server: api.url, skipTLSVerify: true }, { name: 'u' });
    const limited = new RateLimitedKubeConfig(kc, { requestTimeoutMs: 300 });
    const core = limited.makeApiClient(CoreV1Api);
    await core.listNamespacedPod({ namespace: 'ns' });
    await core.listNamespacedPod({ namespace: 'ns' });
    const before = api.connections();
    api.cut();
    await assert.rejects(core.listNamespacedPod({ namespace: 'ns' }), (e: Error) => toKubeError(e).reason === 'NetworkError');
    assert.equal(limited.connectionsDropped, 1);
    await core.listNamespacedPod({ namespace: 'ns' });
    assert.equal(api.served.length, 3);
    assert.ok(api.served.at(-1)! > before, 'served on a new connection, not a stranded kept-alive one');
    assert.equal(limited.dropConnections(0), false, 'a request sent before the fresh connections were made does not drop them');
  } finally {
    await api.close();
  }
});
