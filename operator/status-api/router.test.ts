// The router over in-memory collections (the caches it reads in the operator): auth, rate limit, ETags, pagination,
// filters and errors, with every answer checked against the OpenAPI document.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Deployment } from '../api/v1alpha1/deployment.ts';
import type { Experiment } from '../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../api/v1alpha1/trainingcluster.ts';
import { createLogger } from '../observability/log.ts';
import { TokenSet } from './auth.ts';
import { STATUS_API_PATH, statusApiRouter } from './router.ts';
import { MemoryCollection, generatedClass, generatedCluster, generatedDeployment, generatedExperiment, openApiValidator } from './testing.ts';

const TOKEN = 'poller-token';

describe('status API router', () => {
  const experiments = new MemoryCollection<Experiment>(Array.from({ length: 250 }, (_, i) => generatedExperiment(i, { namespaces: 3, classes: ['a100-x2', 'l4-x1'] })));
  const deployments = new MemoryCollection<Deployment>(Array.from({ length: 30 }, (_, i) => generatedDeployment(i)));
  const clusters = new MemoryCollection<TrainingCluster>([generatedCluster()]);
  const classes = new MemoryCollection<ResourceClass>([generatedClass('a100-x2'), generatedClass('l4-x1')]);
  const tokens = new TokenSet();
  tokens.update({ token: TOKEN, next: 'rotated-token' });
  const conforms = openApiValidator();
  let server: Server;
  let base = '';

  before(async () => {
    const app = express();
    app.set('etag', false);
    app.use(STATUS_API_PATH, statusApiRouter({ sources: { experiments, deployments, clusters, classes }, tokens, rateLimit: { qps: 1000, burst: 1000 }, logger: createLogger({ silent: true }), now: () => Date.parse('2026-03-01T13:00:00Z') }));
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${STATUS_API_PATH}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const get = async (path: string, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) => {
    const res = await fetch(base + path, { headers });
    const text = await res.text();
    const ct = res.headers.get('content-type') ?? '';
    return { status: res.status, headers: res.headers, text, body: ct.startsWith('application/json') && text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  };
  const checked = async (template: string, path: string, headers?: Record<string, string>) => {
    const r = await get(path, headers);
    assert.deepEqual(conforms(template, r.status, r.body), [], `${path} ${r.status} matches the document`);
    return r;
  };

  test('no token 401, wrong token 403, every rotated token works', async () => {
    const none = await checked('/cluster', '/cluster', {});
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="arena-status"');
    assert.equal((none.body as { error: { reason: string } }).error.reason, 'Unauthorized');
    const wrong = await checked('/cluster', '/cluster', { authorization: 'Bearer nope' });
    assert.equal(wrong.status, 403);
    assert.equal((await get('/cluster', { authorization: 'Bearer rotated-token' })).status, 200);
    assert.equal((await get('/nothing-here')).status, 404);
    assert.equal((await get('/nothing-here', {})).status, 401, 'unknown paths need a token too');
  });

  test('cluster summary: counts per phase, classes and providers; 304 while unchanged, 200 after a change', async () => {
    const first = await checked('/cluster', '/cluster');
    const body = first.body as { experiments: { total: number; byPhase: Record<string, number> }; classes: unknown[]; trainingClusters: unknown[] };
    assert.equal(body.experiments.total, 250);
    assert.equal(Object.values(body.experiments.byPhase).reduce((a, b) => a + b, 0), 250);
    assert.equal(body.classes.length, 2);
    const etag = first.headers.get('etag')!;
    const again = await checked('/cluster', '/cluster', { authorization: `Bearer ${TOKEN}`, 'if-none-match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.text, '');
    experiments.touch();
    assert.equal((await get('/cluster', { authorization: `Bearer ${TOKEN}`, 'if-none-match': etag })).status, 304, 'a resync that changed nothing keeps the tag');
    experiments.set(generatedExperiment(250));
    const changed = await get('/cluster', { authorization: `Bearer ${TOKEN}`, 'if-none-match': etag });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.headers.get('etag'), etag);
    experiments.delete('ns-1/exp-00250');
  });

  test('experiments: pages of the chosen size cover every match once, in order', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await checked('/experiments', `/experiments?namespace=ns-1&phase=Running,Pending&limit=7${token ? `&continue=${token}` : ''}`);
      const b = r.body as { metadata: { total: number; continue?: string }; items: { namespace: string; name: string; phase: string }[] };
      for (const i of b.items) {
        assert.equal(i.namespace, 'ns-1');
        assert.ok(['Running', 'Pending'].includes(i.phase));
        seen.push(`${i.namespace}/${i.name}`);
      }
      token = b.metadata.continue;
      pages++;
    } while (token);
    const want = experiments
      .list()
      .filter((e) => e.metadata?.namespace === 'ns-1' && ['Running', 'Pending'].includes(e.status!.phase!))
      .map((e) => `${e.metadata!.namespace}/${e.metadata!.name}`)
      .sort();
    assert.deepEqual(seen, want);
    assert.equal(pages, Math.ceil(want.length / 7));
  });

  test('experiments filtered by class; one experiment with its checkpoints', async () => {
    const r = await checked('/experiments', '/experiments?class=l4-x1&limit=1000');
    const b = r.body as { metadata: { total: number }; items: { class: string }[] };
    assert.equal(b.metadata.total, 125);
    assert.ok(b.items.every((i) => i.class === 'l4-x1'));
    const one = await checked('/experiments/{namespace}/{name}', '/experiments/ns-1/exp-00004');
    const e = (one.body as { experiment: { checkpoints: unknown[]; phase: string } }).experiment;
    assert.equal(e.phase, 'Stopped');
    assert.equal(e.checkpoints.length, 3);
    const missing = await checked('/experiments/{namespace}/{name}', '/experiments/ns-1/nope');
    assert.equal(missing.status, 404);
  });

  test('bad queries are 400 with a reason', async () => {
    const cases: [string, string][] = [
      ['/experiments?limit=0', 'InvalidParameter'],
      ['/experiments?limit=abc', 'InvalidParameter'],
      ['/experiments?phase=Sleeping', 'InvalidParameter'],
      ['/experiments?namespace=a&namespace=b', 'InvalidParameter'],
      ['/experiments?continue=garbage', 'InvalidContinueToken'],
      ['/usage?from=yesterday', 'InvalidParameter'],
      ['/usage?from=2026-03-02&to=2026-03-01', 'InvalidParameter'],
      ['/usage?format=xml', 'InvalidParameter'],
    ];
    for (const [path, reason] of cases) {
      const r = await checked(path.startsWith('/usage') ? '/usage' : '/experiments', path);
      assert.equal(r.status, 400, path);
      assert.equal((r.body as { error: { reason: string } }).error.reason, reason, path);
    }
    const token = ((await get('/experiments?namespace=ns-0&limit=1')).body as { metadata: { continue: string } }).metadata.continue;
    const other = await get(`/experiments?namespace=ns-2&limit=1&continue=${token}`);
    assert.equal((other.body as { error: { reason: string } }).error.reason, 'InvalidContinueToken', 'a token only works with its own filters');
  });

  test('deployments, resource classes, usage JSON and CSV, and the document itself', async () => {
    const d = await checked('/deployments', '/deployments?phase=Deployed');
    assert.ok((d.body as { items: { phase: string }[] }).items.every((i) => i.phase === 'Deployed'));
    await checked('/resourceclasses', '/resourceclasses');
    const u = await checked('/usage', '/usage?from=2026-03-01&to=2026-03-01');
    const usage = u.body as { totals: { nodeHours: number }; experiments: { liveNodeHours: number }[] };
    assert.ok(usage.totals.nodeHours > 0);
    assert.ok(usage.experiments.some((e) => e.liveNodeHours > 0), 'running attempts count up to now');
    const csv = await get('/usage?from=2026-03-01&to=2026-03-01&format=csv&namespace=ns-0');
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-type')!, /^text\/csv/);
    assert.match(csv.headers.get('content-disposition')!, /arena-usage-2026-03-01-2026-03-01\.csv/);
    assert.match(csv.text, /^date,namespace,class,experiment,node_hours,gpu_hours,credits,includes_running_attempt\r\n2026-03-01,ns-0,/);
    const doc = await get('/openapi.json');
    assert.equal((doc.body as { openapi: string }).openapi, '3.1.0');
  });

  test('writes are refused', async () => {
    const res = await fetch(`${base}/cluster`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 405);
  });
});

describe('status API rate limit', () => {
  test('a client over its budget gets 429 with Retry-After; others are not affected', async () => {
    const tokens = new TokenSet();
    tokens.update({ a: 'token-a', b: 'token-b' });
    const empty = new MemoryCollection<never>();
    const app = express();
    app.use(STATUS_API_PATH, statusApiRouter({ sources: { experiments: empty, deployments: empty, clusters: empty, classes: empty }, tokens, rateLimit: { qps: 0.5, burst: 2 }, logger: createLogger({ silent: true }) }));
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${STATUS_API_PATH}/cluster`;
      const as = (t?: string) => fetch(url, { headers: t ? { authorization: `Bearer ${t}` } : {} });
      assert.equal((await as('token-a')).status, 200);
      assert.equal((await as('token-a')).status, 200);
      const limited = await as('token-a');
      assert.equal(limited.status, 429);
      assert.equal(limited.headers.get('retry-after'), '2');
      assert.equal((await as('token-b')).status, 200, 'another token has its own bucket');
      // Without a valid token the client is its address: guessing is limited like polling.
      assert.equal((await as('guess-1')).status, 403);
      assert.equal((await as('guess-2')).status, 403);
      assert.equal((await as('guess-3')).status, 429);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
