// The platform status API end to end: the operator against a real control plane with simulated GPU nodes, its
// answers read over HTTP with tokens from a real Secret and checked against the operator's own OpenAPI document.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { LocalCluster, repoRoot } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { createGpuNodes, finishPod, gpuProducts, gpuTaint } from './cluster/gpu-nodes.ts';
import { waitFor } from './cluster/wait.ts';
import { Arena, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { API_VERSION, GROUP, VERSION } from '../operator/api/v1alpha1/index.ts';
import { startOperator, type RunningOperator } from '../operator/operator.ts';
import { createLogger } from '../operator/observability/log.ts';
import { openApiValidator } from '../operator/status-api/testing.ts';

const quiet = createLogger({ silent: true });
const SECRET = { namespace: 'default', name: 'arena-status-api-tokens' };

interface Answer {
  status: number;
  etag: string | null;
  text: string;
  body: Record<string, unknown> | undefined;
}

describe('platform status API', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let op: RunningOperator;
  const registry = new Registry();
  const conforms = openApiValidator();
  let token = 'poll-token-1';

  const get = async (path: string, headers: Record<string, string> = { authorization: `Bearer ${token}` }): Promise<Answer> => {
    const res = await fetch(`${op.http.url}${path}`, { headers });
    const text = await res.text();
    const json = (res.headers.get('content-type') ?? '').startsWith('application/json') && text !== '';
    return { status: res.status, etag: res.headers.get('etag'), text, body: json ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  };
  /** The ops port: /metrics lives there, never on the API port. */
  const metricsText = async () => (await fetch(`${op.ops.url}/metrics`)).text();
  /** GET under /api/v1, checked against the document's schema for the path template and status code. */
  const checked = async (template: string, path: string, headers?: Record<string, string>): Promise<Answer> => {
    const a = await get(`/api/v1${path}`, headers);
    assert.deepEqual(conforms(template, a.status, a.body), [], `${path} → ${a.status} matches the OpenAPI document`);
    return a;
  };
  const secretBody = (data: Record<string, string>) => ({ metadata: { name: SECRET.name }, stringData: data });

  before(async () => {
    cluster = await LocalCluster.start();
    await installCrds(cluster);
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    await createGpuNodes(kc, { prefix: 'a100', count: 2, gpus: 8, gpu: gpuProducts.A100, taints: [gpuTaint], labels: { pool: 'train' } });
    await arena.apply(trainingCluster('onprem', { workerNodeSelector: { pool: 'train' }, currentBundleVersion: '1.0.0' }));
    await arena.apply(resourceClass('a100-x1', 'onprem', { nodes: 1, worker: { cpu: '4', memory: '16Gi', gpus: 8 }, creditsPerNodeHour: 3.6 }));
    // Started before its token Secret exists: tokens arrive through the informer.
    op = await startOperator({
      kc,
      logger: quiet,
      registry,
      http: { host: '127.0.0.1', port: 0 },
      leaseNamespace: 'default',
      clusterStatus: { tokenSecret: SECRET, debounceMs: 200, rateLimit: { qps: 500, burst: 500 } },
    });
    await waitFor(() => op.isLeader(), { timeoutMs: 20_000, what: 'the operator to lead' });
  });
  after(async () => {
    await op?.stop();
    await cluster?.stop();
  });

  test('health, readiness and metrics are open; the API refuses missing and wrong tokens; tokens reload and rotate', async () => {
    for (const path of ['/healthz', '/readyz']) assert.equal((await get(path, {})).status, 200, path);
    for (const path of ['/healthz', '/readyz', '/metrics']) assert.equal((await fetch(`${op.ops.url}${path}`)).status, 200, `ops ${path}`);
    assert.equal((await get('/metrics', {})).status, 404, 'metrics (namespace and agent names, credits) are not served on the API port');
    assert.equal((await checked('/cluster', '/cluster', {})).status, 401);
    assert.equal((await checked('/cluster', '/cluster')).status, 403, 'no Secret yet: no token is accepted');

    await arena.core.createNamespacedSecret({ namespace: SECRET.namespace, body: secretBody({ token: 'poll-token-1' }) });
    await waitFor(async () => (await get('/api/v1/cluster')).status === 200, { timeoutMs: 20_000, what: 'the token Secret to load' });
    assert.equal((await checked('/cluster', '/cluster', { authorization: 'Bearer poll-token-2' })).status, 403);

    // Rotation: the new token is added next to the old, the pollers move, then the old one goes.
    await arena.core.replaceNamespacedSecret({ ...SECRET, body: secretBody({ token: 'poll-token-1', next: 'poll-token-2' }) });
    await waitFor(async () => (await get('/api/v1/cluster', { authorization: 'Bearer poll-token-2' })).status === 200, { timeoutMs: 20_000, what: 'the second token' });
    assert.equal((await get('/api/v1/cluster')).status, 200, 'the old token still works during the rotation');
    await arena.core.replaceNamespacedSecret({ ...SECRET, body: secretBody({ next: 'poll-token-2' }) });
    await waitFor(async () => (await get('/api/v1/cluster')).status === 403, { timeoutMs: 20_000, what: 'the old token to be dropped' });
    token = 'poll-token-2';
    assert.equal((await checked('/cluster', '/cluster')).status, 200);
  });

  test('an unchanged poll gets 304; a change gives a new ETag', async () => {
    await waitFor(async () => ((await get('/api/v1/cluster')).body?.trainingClusters as { workersRunning: boolean }[] | undefined)?.[0]?.workersRunning === true, {
      timeoutMs: 30_000,
      what: 'workers running in the summary',
    });
    // Let the statuses settle: the same answer twice in a row.
    let first!: Answer;
    await waitFor(
      async () => {
        first = await checked('/cluster', '/cluster');
        const again = await get('/api/v1/cluster', { authorization: `Bearer ${token}`, 'if-none-match': first.etag! });
        return again.status === 304;
      },
      { timeoutMs: 30_000, what: 'an unchanged poll to get 304' },
    );
    const notModified = await checked('/cluster', '/cluster', { authorization: `Bearer ${token}`, 'if-none-match': first.etag! });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.text, '');
    assert.equal(notModified.etag, first.etag);

    await arena.namespace('etag');
    await arena.apply(experiment('etag', 'draft', 'a100-x1', { action: 'Draft' }));
    await waitFor(async () => (await get('/api/v1/cluster', { authorization: `Bearer ${token}`, 'if-none-match': first.etag! })).status === 200, {
      timeoutMs: 20_000,
      what: 'a new answer after an experiment was created',
    });
    const changed = await checked('/cluster', '/cluster');
    assert.notEqual(changed.etag, first.etag);
    assert.ok(((changed.body!.experiments as { total: number }).total) >= 1);
  });

  test('experiments page through with limit and continue: every match once, in order, even as experiments are added', async () => {
    for (const ns of ['page-a', 'page-b']) await arena.namespace(ns);
    const created: string[] = [];
    for (let i = 0; i < 23; i++) {
      const [ns, name] = [i % 3 === 0 ? 'page-b' : 'page-a', `e-${String(i).padStart(2, '0')}`];
      await arena.apply(experiment(ns, name, 'a100-x1', { action: 'Draft' }));
      created.push(`${ns}/${name}`);
    }
    // Phase filters read status, so wait until the operator has looked at every one.
    await waitFor(async () => ((await get('/api/v1/experiments?phase=Draft&limit=1')).body?.metadata as { total: number }).total >= 24, {
      timeoutMs: 30_000,
      what: 'the drafts to have a phase',
    });
    const seen: string[] = [];
    let cont: string | undefined;
    let pages = 0;
    do {
      const a = await checked('/experiments', `/experiments?phase=Draft&limit=4${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
      const b = a.body as { metadata: { total: number; continue?: string }; items: { namespace: string; name: string; phase: string }[] };
      assert.ok(b.items.length <= 4);
      seen.push(...b.items.map((i) => `${i.namespace}/${i.name}`));
      cont = b.metadata.continue;
      if (pages++ === 1) await arena.apply(experiment('page-a', 'aa-late', 'a100-x1', { action: 'Draft' }));
    } while (cont);
    assert.deepEqual(seen, [...seen].sort(), 'ordered by namespace/name');
    assert.equal(new Set(seen).size, seen.length, 'no item twice');
    for (const key of [...created, 'etag/draft']) assert.ok(seen.includes(key), `${key} listed`);

    const b = await checked('/experiments', '/experiments?namespace=page-b&limit=100');
    const items = (b.body as { items: { namespace: string }[]; metadata: { total: number } }).items;
    assert.equal(items.length, 8);
    assert.ok(items.every((i) => i.namespace === 'page-b'));
    const wrong = await checked('/experiments', `/experiments?namespace=page-a&limit=2&continue=${encodeURIComponent(((await get('/api/v1/experiments?namespace=page-b&limit=2')).body!.metadata as { continue: string }).continue)}`);
    assert.equal(wrong.status, 400);
  });

  test('every answer matches the OpenAPI document: classes, one experiment, deployments, errors', async () => {
    const classes = await checked('/resourceclasses', '/resourceclasses');
    const a100 = (classes.body!.items as { name: string; available?: boolean; advancedTrainingEligible: boolean }[]).find((c) => c.name === 'a100-x1')!;
    assert.equal(a100.advancedTrainingEligible, true);
    const one = await checked('/experiments/{namespace}/{name}', '/experiments/page-a/e-01');
    assert.equal((one.body!.experiment as { phase: string }).phase, 'Draft');
    assert.equal((await checked('/experiments/{namespace}/{name}', '/experiments/page-a/nope')).status, 404);
    assert.equal((await checked('/experiments', '/experiments?phase=Asleep')).status, 400);

    await arena.custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'deployments',
      namespace: 'page-a',
      body: { apiVersion: API_VERSION, kind: 'Deployment', metadata: { name: 'agent' }, spec: { source: { experiment: 'e-01' } } },
    });
    await waitFor(async () => ((await get('/api/v1/deployments')).body?.metadata as { total: number }).total === 1, { timeoutMs: 20_000, what: 'the deployment to be listed' });
    const d = await checked('/deployments', '/deployments?namespace=page-a');
    assert.deepEqual((d.body!.items as { name: string; experiment: string }[]).map((i) => [i.name, i.experiment]), [['agent', 'e-01']]);
    const doc = await get('/api/v1/openapi.json');
    assert.equal((doc.body as { openapi: string }).openapi, '3.1.0');
  });

  test('usage matches the run that happened: live while running, status.usage once finished; metrics agree', async () => {
    const ns = 'usage';
    await arena.namespace(ns);
    await arena.apply(experiment(ns, 'run', 'a100-x1'));
    const running = await arena.waitPhase(ns, 'run', 'Running');
    type UsageBody = { totals: { nodeHours: number; gpuHours: number; credits: number }; experiments: { name: string; nodeHours: number; gpuHours: number; credits: number; liveNodeHours: number }[]; daily: { nodeHours: number; credits: number }[] };
    // While Running, the attempt counts live: wait until it has run for two seconds.
    let live!: UsageBody;
    await waitFor(
      async () => {
        live = (await checked('/usage', `/usage?namespace=${ns}`)).body as unknown as UsageBody;
        return (live.experiments[0]?.liveNodeHours ?? 0) >= 2 / 3600;
      },
      { timeoutMs: 30_000, what: 'two seconds of live usage' },
    );
    assert.equal(live.experiments[0]!.name, 'run');
    assert.ok(Math.abs(live.experiments[0]!.gpuHours - 8 * live.experiments[0]!.nodeHours) < 1e-5, '8 GPUs per worker');

    for (const p of await arena.workerPods(ns, running)) await finishPod(arena.kc, ns, p.metadata!.name!, 'Succeeded');
    const done = await arena.waitPhase(ns, 'run', 'Succeeded');
    const usage = done.status!.usage!;
    // One worker ran from startedAt to finishedAt: that is exactly what was metered.
    const ranSeconds = (Date.parse(done.status!.finishedAt!) - Date.parse(done.status!.startedAt!)) / 1000;
    assert.ok(Math.abs(usage.nodeSeconds - ranSeconds) <= 1, `metered ${usage.nodeSeconds}s for a ${ranSeconds}s run`);
    assert.ok(usage.nodeSeconds >= 2);

    const today = new Date().toISOString().slice(0, 10);
    const after = (await checked('/usage', `/usage?namespace=${ns}&from=${today}&to=${today}`)).body as unknown as UsageBody;
    const row = after.experiments.find((e) => e.name === 'run')!;
    const h = (s: number) => Math.round((s / 3600) * 1e6) / 1e6;
    assert.deepEqual([row.nodeHours, row.gpuHours, row.credits, row.liveNodeHours], [h(usage.nodeSeconds), h(usage.gpuSeconds), usage.credits, 0]);
    assert.ok(Math.abs(row.credits - (usage.nodeSeconds / 3600) * 3.6) < 1e-5, 'credits = node-hours × creditsPerNodeHour');
    assert.deepEqual(after.totals, { nodeHours: row.nodeHours, gpuHours: row.gpuHours, credits: row.credits });
    assert.ok(Math.abs(after.daily.reduce((s, d) => s + d.nodeHours, 0) - row.nodeHours) < 1e-5);

    const csv = await get(`/api/v1/usage?namespace=${ns}&format=csv`);
    assert.equal(csv.status, 200);
    const lines = csv.text.trim().split('\r\n');
    assert.equal(lines[0], 'date,namespace,class,experiment,node_hours,gpu_hours,credits,includes_running_attempt');
    const rows = lines.slice(1).map((l) => l.split(','));
    assert.ok(rows.every((r) => r[1] === ns && r[2] === 'a100-x1' && r[3] === 'run' && r[7] === 'false'));
    assert.ok(Math.abs(rows.reduce((s, r) => s + Number(r[4]), 0) - row.nodeHours) < 1e-5, csv.text);

    const metrics = await metricsText();
    const value = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? NaN);
    assert.equal(value(/^arena_experiments\{phase="Succeeded",class="a100-x1"\} (\S+)$/m), 1);
    assert.equal(value(/^arena_gpus\{product="NVIDIA-A100-SXM4-80GB",state="total"\} (\S+)$/m), 16);
    assert.ok(value(/^arena_admission_wait_seconds_count\{class="a100-x1"\} (\S+)$/m) >= 1);
    assert.ok(Math.abs(value(/^arena_credits_consumed_total\{class="a100-x1",namespace="usage"\} (\S+)$/m) - usage.credits) < 1e-9);
    assert.ok(value(/^arena_status_api_requests_total\{route="usage",code="200"\} (\S+)$/m) >= 2);
    assert.match(metrics, /^# TYPE arena_deployment_health_check_failures_total counter$/m);
  });

  test('the Grafana dashboard queries only metrics the operator exports', async () => {
    const dashboard = JSON.parse(readFileSync(join(repoRoot, 'charts/arena-operator/dashboards/arena-operator.json'), 'utf8')) as {
      panels: { targets?: { expr: string }[] }[];
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/([a-z_:][a-z0-9_:]*)\{/g)].map((m) => m[1]!.replace(/_(bucket|count|sum)$/, ''))));
    assert.ok(used.size >= 15, `metrics found in the dashboard: ${[...used].join(', ')}`);
    const exported = new Set([...(await metricsText()).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    assert.deepEqual([...used].filter((m) => !exported.has(m)), []);
  });
});
