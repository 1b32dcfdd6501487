// Bad input on every surface the product listens on, on one real control plane with the real operator (in this
// process) and its admission webhooks: custom resources of all four kinds through the API server, training
// manifests through the webhook and through the operator's Valid condition, .npy bodies to a served agent's
// /get_action, report-API and status-API requests, and raw AdmissionReviews posted to the webhook itself. Each
// case must be refused with its status and a message that names the field at fault; after each surface's batch
// the operator must still reconcile a good Experiment, every server must still answer a good request, no process
// may have exited and nothing may have logged an error (a 500, a crash caught by a handler). Where case lists
// exist they are imported, not copied: operator/api/testdata/invalid-objects.ts, the conformance corpus,
// runtime/npy/bad-files.ts and runtime/serve/bad-requests.ts.
//
//   ARENA_BIN_DIR=<dir> node --import tsx --test e2e/bad-input.e2e.test.ts      prints `bad-input: <surface>: <n> refused`
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { LocalCluster, type Component } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { createGpuNodes } from './cluster/gpu-nodes.ts';
import { freePorts } from './cluster/net.ts';
import { isRunning } from './cluster/processes.ts';
import { waitFor } from './cluster/wait.ts';
import { Arena, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { cartpoleDqn } from './support/manifests.ts';
import { corpus } from '../operator/api/conformance/corpus.ts';
import { PlatformValidator } from '../operator/api/platform/verdict.ts';
import { applyMergePatch, invalidObjects, invalidUpdates } from '../operator/api/testdata/invalid-objects.ts';
import { sample } from '../operator/api/testdata/samples.ts';
import { GROUP, KIND_NAMES, VERSION, kinds, type KindName } from '../operator/api/v1alpha1/index.ts';
import type { Experiment } from '../operator/api/v1alpha1/experiment.ts';
import { toKubeError } from '../operator/kube/errors.ts';
import { createLogger } from '../operator/observability/log.ts';
import { startOperator, type RunningOperator } from '../operator/operator.ts';
import { MAX_REPORT_BYTES, REPORTS_PATH } from '../operator/runtime-api/protocol.ts';
import { SECRET_KEYS } from '../operator/webhook/serving-cert.ts';
import { badNpyFiles, base64Cases } from '../runtime/npy/bad-files.ts';
import { decodeNpyBase64, encodeBase64 } from '../runtime/npy/npy.ts';
import { ApiKeyFile } from '../runtime/serve/api-keys.ts';
import { badGetActionRequests, left, right } from '../runtime/serve/bad-requests.ts';
import { startInferenceServer, type RunningInferenceServer } from '../runtime/serve/server.ts';
import { linearCartPoleModel, rowsB64, tempDir, writeKey } from '../runtime/serve/testing.ts';

const ns = 'default';
/** A namespace the webhooks skip, so manifests stored there reach the operator and its Valid condition. */
const UNHOOKED = 'bad-input-no-webhook';
const SKIP_LABEL = 'bad-input.arena.agilerl.com/no-webhook';
const CONFIG = 'arena-bad-input';
const WEBHOOK_SECRET = 'arena-bad-input-webhook-tls';
const STATUS_TOKEN = 'bad-input-status-token';
const API_KEY = 'bad-input-api-key';
/** No answer may take longer: a request that hangs is a failure of its own. */
const ANSWER_MS = 15_000;
const COMPONENTS: Component[] = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'];

interface Answer {
  status: number;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- cases read error bodies of several shapes
  json: any;
}

/** One HTTP request with a deadline; the body is sent as given (a string) or as JSON. */
async function send(url: string, opts: { method?: string; headers?: Record<string, string>; body?: unknown; raw?: string | Uint8Array } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  let body = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(url, { method: opts.method ?? 'GET', headers, body, signal: AbortSignal.timeout(ANSWER_MS) });
  const text = await res.text();
  return { status: res.status, text, json: parseJson(text) };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A POST to the webhook's HTTPS port, trusting only its CA. */
function postReview(port: number, path: string, ca: string, body: string | Buffer, contentType = 'application/json'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, method: 'POST', ca, agent: false, timeout: ANSWER_MS, headers: { 'content-type': contentType } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, text, json: parseJson(text) });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${path} within ${ANSWER_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The text a refusal from the API server carries: its message and every cause's field and message. */
function refusalText(err: unknown): { code: number; text: string } {
  const e = toKubeError(err);
  return { code: e.code ?? 0, text: [e.message, ...(e.causes ?? []).map((c) => `${c.field ?? ''} ${c.message}`)].join(' ') };
}

/** A case's verdict: undefined when refused as it should be, else what went wrong. */
function judge(got: { status: number; text: string }, want: { status: number; field: string | RegExp }): string | undefined {
  if (got.status !== want.status) return `expected ${want.status}, got ${got.status}: ${got.text.slice(0, 300)}`;
  const named = typeof want.field === 'string' ? got.text.includes(want.field) : want.field.test(got.text);
  return named ? undefined : `the answer does not name ${String(want.field)}: ${got.text.slice(0, 300)}`;
}

const tally = new Map<string, number>();
function record(surface: string, n: number): void {
  tally.set(surface, n);
  console.log(`bad-input: ${surface}: ${n} refused`);
}

// --- Custom resources beyond invalid-objects.ts: fields that list does not reach, and unknown fields, which a
// strict client (kubectl's default, --validate=strict) has the API server refuse instead of prune.

interface BadObject {
  name: string;
  kind: KindName;
  object: unknown;
  field: string;
  /** Field validation Strict: an unknown field is refused (400) rather than pruned. */
  strict?: boolean;
  status?: number;
}

const badObject = (kind: KindName, name: string, field: string, patch: Record<string, unknown>, opts: Pick<BadObject, 'strict' | 'status'> = {}): BadObject => ({
  name,
  kind,
  object: applyMergePatch(structuredClone(sample(kind)) as unknown, { metadata: { name }, ...patch }),
  field,
  ...opts,
});
const spec = (patch: Record<string, unknown>) => ({ spec: patch });

const moreBadObjects: BadObject[] = [
  badObject('TrainingCluster', 'tc-no-setup-bundle', 'spec.setupBundle', spec({ setupBundle: null })),
  badObject('TrainingCluster', 'tc-runtime-image-number', 'spec.setupBundle.images.runtime', spec({ setupBundle: { images: { runtime: 7 } } })),
  badObject('TrainingCluster', 'tc-enabled-text', 'spec.enabled', spec({ enabled: 'yes' })),
  badObject('TrainingCluster', 'tc-selector-value-number', 'spec.workerNodeSelector', spec({ workerNodeSelector: { pool: 3 } })),
  badObject('TrainingCluster', 'tc-runtime-command-text', 'spec.setupBundle.runtimeCommand', spec({ setupBundle: { runtimeCommand: 'arena-runtime train' } })),
  badObject('TrainingCluster', 'tc-heartbeat-text', 'spec.platform.heartbeatIntervalSeconds', spec({ platform: { heartbeatIntervalSeconds: 'often' } })),
  badObject('TrainingCluster', 'tc-spec-not-object', 'spec', { spec: 'on-prem' }),
  badObject('TrainingCluster', 'tc-unknown-field', 'spec.setupBundel', spec({ setupBundel: {} }), { strict: true, status: 400 }),
  badObject('ResourceClass', 'rc-nodes-text', 'spec.nodes', spec({ nodes: 'two' })),
  badObject('ResourceClass', 'rc-nodes-fraction', 'spec.nodes', spec({ nodes: 1.5 })),
  badObject('ResourceClass', 'rc-worker-text', 'spec.worker', spec({ worker: 'big' })),
  badObject('ResourceClass', 'rc-credits-text', 'spec.creditsPerNodeHour', spec({ creditsPerNodeHour: 'cheap' })),
  badObject('ResourceClass', 'rc-enabled-text', 'spec.enabled', spec({ enabled: 'no' })),
  badObject('ResourceClass', 'rc-tolerations-object', 'spec.tolerations', spec({ tolerations: { key: 'dedicated' } })),
  badObject('ResourceClass', 'rc-toleration-unknown-effect', 'spec.tolerations[0].effect', spec({ tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'Sometimes' }] })),
  badObject('ResourceClass', 'rc-memory-negative', 'spec.worker.memory', spec({ worker: { memory: '-1Gi' } })),
  badObject('ResourceClass', 'rc-unknown-field', 'spec.nodez', spec({ nodez: 2 }), { strict: true, status: 400 }),
  badObject('ResourceClass', 'rc-unknown-worker-field', 'spec.worker.gpu', spec({ worker: { gpu: 1 } }), { strict: true, status: 400 }),
  badObject('Experiment', 'exp-negative-retries', 'spec.maxRetries', spec({ maxRetries: -1 })),
  badObject('Experiment', 'exp-run-zero', 'spec.run', spec({ run: 0 })),
  badObject('Experiment', 'exp-priority-text', 'spec.priority', spec({ priority: 'high' })),
  badObject('Experiment', 'exp-grace-negative', 'spec.stopGracePeriodSeconds', spec({ stopGracePeriodSeconds: -5 })),
  badObject('Experiment', 'exp-manifest-list', 'spec.manifest', spec({ manifest: [1, 2] })),
  badObject('Experiment', 'exp-manifest-text', 'spec.manifest', spec({ manifest: 'algorithm: DQN' })),
  badObject('Experiment', 'exp-action-lowercase', 'spec.action', spec({ action: 'train' })),
  badObject('Experiment', 'exp-resume-checkpoint-unknown', 'spec.resumeFrom.checkpoint', spec({ resumeFrom: { experiment: 'older-run', checkpoint: 'latest' } })),
  badObject('Experiment', 'exp-no-spec', 'spec', { spec: null }),
  badObject('Experiment', 'exp-unknown-field', 'spec.maxRetry', spec({ maxRetry: 1 }), { strict: true, status: 400 }),
  badObject('Deployment', 'dep-replicas-negative', 'spec.replicas', spec({ replicas: -1 })),
  badObject('Deployment', 'dep-no-source', 'spec.source', spec({ source: null })),
  badObject('Deployment', 'dep-key-rotation-text', 'spec.keyRotation', spec({ keyRotation: 'monthly' })),
  badObject('Deployment', 'dep-checkpoint-unknown', 'spec.source.checkpoint', spec({ source: { checkpoint: 'newest' } })),
  badObject('Deployment', 'dep-step-negative', 'spec.source.step', spec({ source: { step: -1 } })),
  badObject('Deployment', 'dep-unknown-field', 'spec.replica', spec({ replica: 2 }), { strict: true, status: 400 }),
];

describe('bad input on every surface, with the real operator and its webhooks', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let custom: CustomObjectsApi;
  let op: RunningOperator;
  let inference: RunningInferenceServer;
  let webhookCa = '';
  let reporter: Experiment;
  let runToken = '';
  let goodSeq = 0;
  const validator = new PlatformValidator();
  const keyDir = tempDir('bad-input-');
  // Warnings and errors of the operator and the inference server; an error line is a failure of the batch.
  const logged: { level: string; msg: string; [k: string]: unknown }[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        const entry = parseJson(line) as (typeof logged)[number] | undefined;
        if (entry) logged.push(entry);
      }
      done();
    },
  });
  const logger = createLogger({ level: 'warn', stream: sink });

  const where = (kind: KindName, namespace = ns) => ({
    group: GROUP,
    version: VERSION,
    plural: kinds[kind].plural,
    ...(kinds[kind].scope === 'Namespaced' ? { namespace } : {}),
  });
  const create = (kind: KindName, body: unknown, opts: { dryRun?: boolean; strict?: boolean; namespace?: string } = {}) => {
    const params = { body: body as object, ...(opts.dryRun ? { dryRun: 'All' } : {}), ...(opts.strict ? { fieldValidation: 'Strict' } : {}) };
    return kinds[kind].scope === 'Namespaced'
      ? custom.createNamespacedCustomObject({ ...where(kind, opts.namespace), namespace: opts.namespace ?? ns, ...params })
      : custom.createClusterCustomObject({ group: GROUP, version: VERSION, plural: kinds[kind].plural, ...params });
  };
  const report = (over: Record<string, unknown> = {}, events: unknown[] = [{ type: 'progress', seq: 1, at: new Date().toISOString(), step: 1 }]) => ({
    experiment: { namespace: ns, name: reporter.metadata!.name },
    run: reporter.status!.run,
    attempt: reporter.status!.attempt,
    worker: 0,
    events,
    ...over,
  });
  const postReport = (body: unknown) =>
    send(`${op.http.url}${REPORTS_PATH}`, { method: 'POST', headers: { authorization: `Bearer ${runToken}` }, body });
  const review = (request: unknown) => JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
  const createReview = (kind: KindName, object: unknown, extra: Record<string, unknown> = {}) => ({
    uid: `uid-${Math.random().toString(36).slice(2)}`,
    kind: { group: GROUP, version: VERSION, kind },
    resource: { group: GROUP, version: VERSION, resource: kinds[kind].plural },
    operation: 'CREATE',
    ...(kinds[kind].scope === 'Namespaced' ? { namespace: ns } : {}),
    object,
    ...extra,
  });
  const getAction = (body: unknown) => send(`${inference.url}/get_action`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` }, body });

  /**
   * Nothing stalled or crashed: a good Experiment is reconciled to Draft with Valid=True through the webhooks, each
   * server answers a good request, every control-plane process and the operator are alive, and nothing logged an
   * error since the last check.
   */
  let checks = 0;
  let errorsSeen = 0;
  async function nothingStalled(surface: string): Promise<void> {
    const started = Date.now();
    const name = `alive-${++checks}`;
    await arena.apply(experiment(ns, name, 'cpu-x1', { action: 'Draft' }));
    await arena.waitExperiment(ns, name, (s) => s.phase === 'Draft' && s.conditions?.some((c) => c.type === 'Valid' && c.status === 'True') === true, 'Draft and Valid', 30_000);
    assert.equal((await send(`${op.http.url}/healthz`)).status, 200, `${surface}: the operator is healthy`);
    const ack = await postReport(report({}, [{ type: 'progress', seq: ++goodSeq, at: new Date().toISOString(), step: goodSeq }]));
    assert.equal(ack.status, 200, `${surface}: a good report is acknowledged: ${ack.text}`);
    const status = await send(`${op.http.url}/api/v1/cluster`, { headers: { authorization: `Bearer ${STATUS_TOKEN}` } });
    assert.equal(status.status, 200, `${surface}: the status API answers: ${status.text}`);
    const allowed = await postReview(op.webhook!.server.port, '/validate', webhookCa, review(createReview('ResourceClass', sample('ResourceClass'))));
    assert.equal(allowed.json?.response?.allowed, true, `${surface}: the webhook allows a good object: ${allowed.text}`);
    const action = await getAction({ obs: rowsB64([left, right]) });
    assert.equal(action.status, 200, `${surface}: the agent answers: ${action.text}`);
    assert.deepEqual([...decodeNpyBase64(action.json.action as string).data].map(Number), [0, 1], `${surface}: the agent's actions`);
    for (const c of COMPONENTS) assert.ok(isRunning(cluster.process(c)!), `${surface}: ${c} is running`);
    // A reconcile that lost a write race is retried by design (controller-runtime logs it as an error too).
    const errors = logged.filter((l) => l.level === 'error' && !(l.msg === 'Reconciler error' && l.reason === 'Conflict')).slice(errorsSeen);
    errorsSeen += errors.length;
    assert.deepEqual(errors, [], `${surface}: nothing logged an error`);
    assert.ok(Date.now() - started < 45_000, `${surface}: the good requests took ${Date.now() - started} ms`);
  }

  before(async () => {
    cluster = await LocalCluster.start();
    await installCrds(cluster);
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    custom = kc.makeApiClient(CustomObjectsApi);
    await arena.core.createNamespace({ body: { metadata: { name: UNHOOKED, labels: { [SKIP_LABEL]: 'true' } } } });
    await arena.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'arena-status-api-tokens' }, stringData: { platform: STATUS_TOKEN } } });
    await createGpuNodes(kc, { prefix: 'gpu', count: 1, gpus: 1 });
    await arena.apply(trainingCluster('onprem'));
    await arena.apply(resourceClass('cpu-x1', 'onprem', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 1 } }));

    const [httpPort, webhookPort] = await freePorts(2);
    op = await startOperator({
      kc,
      logger,
      identity: 'bad-input',
      leaderElect: false,
      leaseNamespace: ns,
      http: { host: '127.0.0.1', port: httpPort },
      reportUrl: `http://127.0.0.1:${httpPort}`,
      manifestValidator: validator,
      // Hundreds of requests in seconds from one client: the limit is not what is under test here.
      clusterStatus: { tokenSecret: { namespace: ns, name: 'arena-status-api-tokens' }, rateLimit: { qps: 1000, burst: 1000 }, debounceMs: 200 },
      webhook: { host: '127.0.0.1', port: webhookPort!, url: `https://127.0.0.1:${webhookPort}`, namespace: ns, configName: CONFIG, secretName: WEBHOOK_SECRET },
    });
    // The operator writes both configurations; a namespace selector added to them (a field it does not compare)
    // keeps one namespace out of the webhooks' reach.
    await waitFor(
      async () => {
        cluster.kubectl(['get', 'validatingwebhookconfiguration', CONFIG]);
        cluster.kubectl(['get', 'mutatingwebhookconfiguration', CONFIG]);
        return true;
      },
      { timeoutMs: 30_000, what: 'the webhook configurations' },
    );
    const selector = JSON.stringify([{ op: 'add', path: '/webhooks/0/namespaceSelector', value: { matchExpressions: [{ key: SKIP_LABEL, operator: 'DoesNotExist' }] } }]);
    for (const k of ['validatingwebhookconfiguration', 'mutatingwebhookconfiguration']) cluster.kubectl(['patch', k, CONFIG, '--type=json', '-p', selector]);
    const secret = await arena.core.readNamespacedSecret({ namespace: ns, name: WEBHOOK_SECRET });
    webhookCa = Buffer.from(secret.data![SECRET_KEYS.bundle]!, 'base64').toString('utf8');

    // The apiserver learns of webhook configurations through a watch: wait until the hooked namespace gets the
    // webhook's refusal and the other one does not.
    const refusedManifest = (namespace: string) => experiment(namespace, 'probe', 'cpu-x1', { action: 'Draft', manifest: { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' }, training: { pop_size: 0 } } });
    await waitFor(
      async () => {
        const hooked = await create('Experiment', refusedManifest(ns), { dryRun: true }).then(
          () => '',
          (err: unknown) => refusalText(err).text,
        );
        const unhooked = await create('Experiment', refusedManifest(UNHOOKED), { dryRun: true, namespace: UNHOOKED }).then(
          () => 'stored',
          (err: unknown) => refusalText(err).text,
        );
        return hooked.includes('admission webhook') && unhooked === 'stored';
      },
      { timeoutMs: 30_000, what: 'the webhooks to judge one namespace and skip the other' },
    );

    writeKey(join(keyDir.dir, 'api-key'), API_KEY);
    const model = linearCartPoleModel();
    inference = await startInferenceServer({
      host: '127.0.0.1',
      port: 0,
      route: 'get_action',
      deploymentId: 'bad-input',
      instanceId: 'bad-input-0',
      actions: model,
      agent: model.agent,
      apiKeys: new ApiKeyFile(join(keyDir.dir, 'api-key')),
      logger,
      registry: new Registry(),
      maxBodyBytes: 64 * 1024,
    });

    // A running experiment, whose worker's real run token the report API is sent bad reports with.
    await arena.apply(experiment(ns, 'reporter', 'cpu-x1', { manifest: { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' }, training: { max_steps: 10_000 } } }));
    reporter = await arena.waitPhase(ns, 'reporter', 'Running', 60_000);
    runToken = await arena.runToken(ns, reporter);
    await nothingStalled('setup');
  });
  after(async () => {
    await inference?.close(1000);
    await op?.stop();
    validator.close();
    await cluster?.stop();
    keyDir.remove();
  });

  test('custom resources: the API server refuses invalid objects and updates of all four kinds, naming the field', async () => {
    const problems: string[] = [];
    const all: BadObject[] = [...invalidObjects.map((c) => ({ name: c.name, kind: c.kind, object: c.object, field: c.field })), ...moreBadObjects];
    // Namespaced objects go to the namespace the webhooks skip, so each refusal is the CRD's own (schema or CEL):
    // the mutating webhook would fill in what some cases leave out (the only enabled class, for a Train without
    // one). The webhook's refusals of the same objects are the webhook surface's cases below.
    for (const c of all) {
      const object = kinds[c.kind].scope === 'Namespaced' ? applyMergePatch(c.object, { metadata: { namespace: UNHOOKED } }) : c.object;
      try {
        await create(c.kind, object, { strict: c.strict, namespace: UNHOOKED });
        problems.push(`${c.name}: was accepted`);
      } catch (err) {
        const verdict = judge({ status: refusalText(err).code, text: refusalText(err).text }, { status: c.status ?? 422, field: c.field });
        if (verdict) problems.push(`${c.name}: ${verdict}`);
      }
    }
    for (const c of invalidUpdates) {
      await create(c.kind, applyMergePatch(c.old, { metadata: { namespace: UNHOOKED } }), { namespace: UNHOOKED });
      const name = c.object.metadata!.name!;
      const ref = { ...where(c.kind, UNHOOKED), namespace: UNHOOKED, name };
      // The operator writes the stored object too (finalizers, status): an update at a stale resourceVersion is a
      // conflict, not the answer under test, so it is sent again at the current one.
      for (let attempt = 1; ; attempt++) {
        const current = (await custom.getNamespacedCustomObject(ref)) as { metadata?: { resourceVersion?: string } };
        const update = structuredClone(c.object) as { metadata?: Record<string, unknown> };
        update.metadata = { ...update.metadata, namespace: UNHOOKED, resourceVersion: current.metadata?.resourceVersion };
        try {
          await custom.replaceNamespacedCustomObject({ ...ref, body: update });
          problems.push(`${c.name}: the update was accepted`);
        } catch (err) {
          const r = refusalText(err);
          if (r.code === 409 && attempt < 5) continue;
          const verdict = judge({ status: r.code, text: r.text }, { status: 422, field: c.field });
          if (verdict) problems.push(`${c.name}: ${verdict}`);
        }
        break;
      }
    }
    assert.deepEqual(problems, []);
    assert.deepEqual(new Set(all.map((c) => c.kind)), new Set(KIND_NAMES), 'every kind has bad objects');
    record('custom resources', all.length + invalidUpdates.length);
    await nothingStalled('custom resources');
  });

  test('manifests: every manifest of the corpus the platform refuses is refused by the webhook and marked Valid=False by the operator, naming the field', async () => {
    // The expected fields are the platform's own (its validator, asked here): what every layer must pass on.
    const cases: { id: string; document: unknown; fields: string[] }[] = [];
    for (const c of corpus) {
      const parsed = await validator.parseYaml(c.yaml);
      if (!('document' in parsed)) continue;
      const verdict = await validator.verdict(parsed.document);
      if (verdict.valid) continue;
      cases.push({ id: c.id, document: parsed.document, fields: verdict.errors.map((e) => (e.field ? `spec.manifest.${e.field}` : 'spec.manifest')) });
    }
    assert.ok(cases.length >= 150, `the corpus has ${cases.length} manifests the platform refuses`);
    // Deep enough to exhaust the platform validator's recursion (it used to stall every verdict until its 30 s
    // timeout): refused by the operator's own guard, operator/api/depth.ts.
    cases.push({ id: 'nested-1000-deep', document: { ...cartpoleDqn(), training: nested(1000) }, fields: ['spec.manifest.training.a.a'] });
    const body = (namespace: string, i: number, manifest: unknown): Experiment => experiment(namespace, `manifest-${i}`, 'cpu-x1', { action: 'Draft', manifest: manifest as Experiment['spec']['manifest'] });

    const problems: string[] = [];
    const stored = new Map<string, (typeof cases)[number]>();
    for (const [i, c] of cases.entries()) {
      // Through the webhook: refused at once, in the platform's words.
      try {
        await create('Experiment', body(ns, i, c.document), { dryRun: true });
        problems.push(`${c.id}: the webhook let it through`);
      } catch (err) {
        const r = refusalText(err);
        const verdict = judge({ status: r.code, text: r.text }, { status: 422, field: c.fields[0]! });
        if (verdict) problems.push(`${c.id} (webhook): ${verdict}`);
      }
      // Without the webhook: the CRD refuses what its schema can tell, the operator judges the rest.
      try {
        await create('Experiment', body(UNHOOKED, i, c.document), { namespace: UNHOOKED });
        stored.set(`manifest-${i}`, c);
      } catch (err) {
        const r = refusalText(err);
        if (r.code !== 422 || !c.fields.some((f) => r.text.includes(f))) problems.push(`${c.id} (CRD): expected 422 naming one of ${c.fields.join(', ')}, got ${r.code} ${r.text.slice(0, 300)}`);
      }
    }
    const valid = async () => {
      const list = (await custom.listNamespacedCustomObject({ ...where('Experiment', UNHOOKED), namespace: UNHOOKED })) as { items: Experiment[] };
      return new Map(list.items.map((e) => [e.metadata!.name!, e.status?.conditions?.find((x) => x.type === 'Valid')]));
    };
    let memo = new Map<string, unknown>();
    await waitFor(
      async () => {
        memo = await valid();
        return [...stored.keys()].every((name) => memo.get(name) !== undefined);
      },
      { timeoutMs: 90_000, what: 'the operator to judge every stored manifest' },
    );
    const conditions = memo as Map<string, { status: string; reason?: string; message?: string } | undefined>;
    for (const [name, c] of stored) {
      const cond = conditions.get(name)!;
      if (cond.status !== 'False' || cond.reason !== 'InvalidManifest') problems.push(`${c.id} (operator): Valid is ${cond.status} ${cond.reason ?? ''}`);
      else if (!(cond.message ?? '').includes(c.fields[0]!)) problems.push(`${c.id} (operator): the condition does not name ${c.fields[0]}: ${cond.message}`);
    }
    assert.deepEqual(problems, []);
    record('manifests', cases.length);
    console.log(`bad-input: manifests: each through the webhook and the operator (${stored.size} judged by the operator, ${cases.length - stored.size} refused by the CRD first)`);
    await nothingStalled('manifests');
  });

  test('.npy bodies: a served agent\'s /get_action refuses bad arrays with 400 naming the field', async () => {
    const cases: { name: string; body?: unknown; raw?: string; status?: number; message: string | RegExp; field: string | RegExp }[] = [
      ...badNpyFiles.map((c) => ({ name: `obs: ${c.name}`, body: { obs: encodeBase64(c.bytes) }, message: c.error, field: 'obs: ' })),
      ...badNpyFiles.map((c) => ({ name: `action_mask: ${c.name}`, body: { obs: rowsB64([left]), action_mask: encodeBase64(c.bytes) }, message: c.error, field: 'action_mask: ' })),
      ...badNpyFiles.map((c) => ({ name: `nested obs: ${c.name}`, body: { obs: [encodeBase64(c.bytes)] }, message: c.error, field: 'obs[0]: ' })),
      ...base64Cases.filter((c) => c.error).map((c) => ({ name: `base64 ${JSON.stringify(c.input)}`, body: { obs: c.input }, message: c.error!, field: 'obs: not valid base64' })),
      ...badGetActionRequests.map((c) => ({ name: c.name, body: c.body, status: c.status, message: c.message, field: /^(obs|batch_size|action_mask|body)\b/ })),
      { name: 'hidden_state not base64', body: { obs: rowsB64([left]), hidden_state: 'QU=D' }, message: /misplaced padding/, field: 'hidden_state: ' },
      { name: 'env_defined_actions a number', body: { obs: rowsB64([left]), env_defined_actions: 3 }, message: /got a number/, field: 'env_defined_actions: ' },
      { name: 'batch_size as text', body: { obs: rowsB64([left]), batch_size: '1' }, message: /expected a non-negative integer/, field: 'batch_size: ' },
      { name: 'batch_size negative', body: { obs: rowsB64([left]), batch_size: -1 }, message: /expected a non-negative integer/, field: 'batch_size: ' },
      { name: 'obs null', body: { obs: null }, message: 'obs: required', field: 'obs: ' },
      { name: 'an f8 mask of the wrong width', body: { obs: rowsB64([left]), action_mask: rowsB64([[1, 1, 1]], 'f8') }, message: /^action_mask: /, field: 'action_mask: ' },
      { name: 'JSON that does not parse', raw: '{"obs": "QQ==', message: /^body: not valid JSON/, field: 'body: ' },
      { name: 'a body over the limit', body: { obs: rowsB64(Array.from({ length: 5000 }, () => left)) }, status: 413, message: /larger than the 65536 byte limit/, field: 'body: ' },
      { name: 'obs nested past the depth limit', raw: `{"obs": ${'['.repeat(40)}${']'.repeat(40)}}`, message: /nested deeper than 32 levels/, field: 'obs' },
    ];
    const problems: string[] = [];
    for (const c of cases) {
      const r = c.raw !== undefined ? await send(`${inference.url}/get_action`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' }, raw: c.raw }) : await getAction(c.body);
      const message: string = r.json?.error?.message ?? '';
      const verdict = judge({ status: r.status, text: message }, { status: c.status ?? 400, field: c.field });
      if (verdict) problems.push(`${c.name}: ${verdict}`);
      else if (typeof c.message === 'string' ? message !== c.message : !c.message.test(message)) problems.push(`${c.name}: unexpected message ${message}`);
      else if (r.json?.success !== false) problems.push(`${c.name}: the answer does not say success: false`);
    }
    assert.deepEqual(problems, []);
    record('.npy bodies', cases.length);
    await nothingStalled('.npy bodies');
  });

  test('report API: bad tokens, bodies, types, sequence numbers and sizes are refused naming the field', async () => {
    const now = new Date().toISOString();
    const progress = (over: Record<string, unknown> = {}) => ({ type: 'progress', seq: 1, at: now, step: 1, ...over });
    const checkpoint = (over: Record<string, unknown> = {}) => ({ type: 'checkpoint', seq: 1, at: now, step: 1, sizeBytes: 1, location: 'run-1/step-1', ...over });
    const failed = (over: Record<string, unknown> = {}) => ({ type: 'failed', seq: 1, at: now, reason: 'OutOfMemory', message: 'CUDA out of memory', ...over });
    const without = (o: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== key));
    const [head, payload, sig] = runToken.split('.') as [string, string, string];
    // The claims are [namespace, name, run, attempt, worker, key id] (operator/credentials/run-token.ts).
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown[];
    const claiming = (i: number, v: unknown) => Buffer.from(JSON.stringify(claims.map((c, j) => (j === i ? v : c)))).toString('base64url');
    const forged = `${head}.${payload}.${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BB' : 'AA'}`;
    type ReportCase = { name: string; body?: unknown; raw?: string; token?: string | null; headers?: Record<string, string>; method?: string; status: number; field: string };
    const ev = (name: string, field: string, event: unknown, status = 400): ReportCase => ({ name, body: report({}, [event]), status, field });
    const cases: ReportCase[] = [
      // Who is asking.
      { name: 'no Authorization header', body: report(), token: null, status: 401, field: 'Authorization' },
      { name: 'Basic scheme', body: report(), token: null, headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, status: 401, field: 'Authorization' },
      { name: 'Bearer and nothing', body: report(), token: null, headers: { authorization: 'Bearer ' }, status: 401, field: 'Authorization' },
      { name: 'a bearer value that is no run token', body: report(), token: 'not-a-run-token', status: 401, field: 'bearer token' },
      { name: 'an old token format', body: report(), token: `art1.${payload}.${sig}`, status: 401, field: 'bearer token' },
      { name: 'a token over the length limit', body: report(), token: `art2.${'a'.repeat(2000)}.${sig}`, status: 401, field: 'bearer token' },
      { name: 'a forged signature', body: report(), token: forged, status: 403, field: 'token' },
      { name: 'claims changed to another worker', body: report({ worker: 1 }), token: `${head}.${claiming(4, 1)}.${sig}`, status: 403, field: 'token' },
      { name: 'claims changed to another attempt', body: report({ attempt: 9 }), token: `${head}.${claiming(3, 9)}.${sig}`, status: 403, field: 'token' },
      { name: 'claims of an experiment that does not exist', body: report({ experiment: { namespace: ns, name: 'ghost' } }), token: `${head}.${claiming(1, 'ghost')}.${sig}`, status: 403, field: 'token' },
      { name: 'claims of another signing key', body: report(), token: `${head}.${claiming(5, 'replaced-key')}.${sig}`, status: 403, field: 'token' },
      { name: 'claims with a negative worker', body: report(), token: `${head}.${claiming(4, -1)}.${sig}`, status: 401, field: 'bearer token' },
      { name: 'a token with its parts swapped', body: report(), token: `${head}.${sig}.${payload}`, status: 401, field: 'bearer token' },
      // What the body claims against the token.
      { name: 'another worker than the token', body: report({ worker: 1 }), status: 403, field: 'worker' },
      { name: 'another attempt than the token', body: report({ attempt: reporter.status!.attempt! + 1 }), status: 403, field: 'attempt' },
      { name: 'another run than the token', body: report({ run: reporter.status!.run! + 1 }), status: 403, field: 'run' },
      { name: 'another experiment than the token', body: report({ experiment: { namespace: ns, name: 'someone-else' } }), status: 403, field: 'experiment' },
      { name: 'another namespace than the token', body: report({ experiment: { namespace: 'kube-system', name: 'reporter' } }), status: 403, field: 'experiment' },
      // The body's shape.
      { name: 'JSON that does not parse', raw: '{"experiment": ', status: 400, field: 'body' },
      { name: 'a JSON array', body: [report()], status: 400, field: '(body)' },
      { name: 'a JSON string', raw: '"report"', status: 400, field: 'body' },
      { name: 'JSON null', raw: 'null', status: 400, field: 'body' },
      { name: 'text/plain content', raw: JSON.stringify(report()), headers: { 'content-type': 'text/plain' }, status: 400, field: '(body)' },
      { name: 'no experiment', body: without(report(), 'experiment'), status: 400, field: 'experiment' },
      { name: 'experiment without a namespace', body: report({ experiment: { name: 'reporter' } }), status: 400, field: 'experiment.namespace' },
      { name: 'experiment with an empty name', body: report({ experiment: { namespace: ns, name: '' } }), status: 400, field: 'experiment.name' },
      { name: 'experiment a string', body: report({ experiment: `${ns}/reporter` }), status: 400, field: 'experiment' },
      { name: 'an unknown envelope key', body: report({ token: runToken }), status: 400, field: 'token' },
      { name: 'run 0', body: report({ run: 0 }), status: 400, field: 'run' },
      { name: 'run as text', body: report({ run: '1' }), status: 400, field: 'run' },
      { name: 'run 1e300', body: report({ run: 1e300 }), status: 400, field: 'run' },
      { name: 'attempt fractional', body: report({ attempt: 1.5 }), status: 400, field: 'attempt' },
      { name: 'no attempt', body: without(report(), 'attempt'), status: 400, field: 'attempt' },
      { name: 'worker negative', body: report({ worker: -1 }), status: 400, field: 'worker' },
      { name: 'worker past the largest gang', body: report({ worker: 1024 }), status: 400, field: 'worker' },
      { name: 'no events', body: without(report(), 'events'), status: 400, field: 'events' },
      { name: 'an empty event list', body: report({}, []), status: 400, field: 'events' },
      { name: 'events an object', body: report({ events: progress() }), status: 400, field: 'events' },
      { name: 'more than 500 events', body: report({}, Array.from({ length: 501 }, (_, i) => progress({ seq: i + 1 }))), status: 400, field: 'events' },
      // Event types, including the names a lookup on a plain object would find.
      ev('an event without a type', 'events.0.type', without(progress(), 'type')),
      ev('type constructor with seq 1e300', 'events.0.type', { type: 'constructor', seq: 1e300 }),
      ev('type __proto__', 'events.0.type', { type: '__proto__', seq: 2 }),
      ev('type toString', 'events.0.type', progress({ type: 'toString' })),
      ev('type hasOwnProperty', 'events.0.type', progress({ type: 'hasOwnProperty' })),
      ev('type in capitals', 'events.0.type', progress({ type: 'Progress' })),
      ev('type a number', 'events.0.type', progress({ type: 1 })),
      ev('an event that is not an object', 'events.0', 'progress'),
      // Sequence numbers and times.
      ev('seq 1e300', 'events.0.seq', progress({ seq: 1e300 })),
      ev('seq past the safe integers', 'events.0.seq', progress({ seq: Number.MAX_SAFE_INTEGER + 2 })),
      ev('seq negative', 'events.0.seq', progress({ seq: -1 })),
      ev('seq fractional', 'events.0.seq', progress({ seq: 1.5 })),
      ev('seq as text', 'events.0.seq', progress({ seq: '1' })),
      ev('no seq', 'events.0.seq', without(progress(), 'seq')),
      ev('at not a time', 'events.0.at', progress({ at: 'yesterday' })),
      ev('at a number', 'events.0.at', progress({ at: Date.now() })),
      ev('no at', 'events.0.at', without(progress(), 'at')),
      { name: 'the second event bad', body: report({}, [progress(), progress({ seq: -2 })]), status: 400, field: 'events.1.seq' },
      // Fields of each type.
      ev('progress step negative', 'events.0.step', progress({ step: -1 })),
      ev('progress maxSteps 0', 'events.0.maxSteps', progress({ maxSteps: 0 })),
      ev('progress stepsPerSecond negative', 'events.0.stepsPerSecond', progress({ stepsPerSecond: -1 })),
      ev('progress score as text', 'events.0.trainingScore', progress({ trainingScore: 'high' })),
      ev('progress with an unknown key', 'extra', progress({ extra: 1 })),
      ev('checkpoint without a location', 'events.0.location', without(checkpoint(), 'location')),
      ev('checkpoint with an empty location', 'events.0.location', checkpoint({ location: '' })),
      ev('checkpoint location over 1024 characters', 'events.0.location', checkpoint({ location: 'x'.repeat(1025) })),
      ev('checkpoint without a size', 'events.0.sizeBytes', without(checkpoint(), 'sizeBytes')),
      ev('checkpoint final as text', 'events.0.final', checkpoint({ final: 'yes' })),
      ev('checkpoint evaluation score as text', 'events.0.evaluationScore', checkpoint({ evaluationScore: 'best' })),
      // A checkpoint reported late for an earlier attempt: only an earlier one, and only its run and attempt.
      ev('recovered from this very attempt', 'events.0.recovered', checkpoint({ recovered: { run: reporter.status!.run!, attempt: reporter.status!.attempt! } })),
      ev('recovered from a later run', 'events.0.recovered', checkpoint({ recovered: { run: reporter.status!.run! + 1, attempt: 1 } })),
      ev('recovered from attempt 0', 'events.0.recovered.attempt', checkpoint({ recovered: { run: 1, attempt: 0 } })),
      ev('recovered without its attempt', 'events.0.recovered.attempt', checkpoint({ recovered: { run: 1 } })),
      ev('recovered naming a worker', 'worker', checkpoint({ recovered: { run: 1, attempt: 1, worker: 0 } })),
      ev('recovered as text', 'events.0.recovered', checkpoint({ recovered: 'run 1 attempt 1' })),
      ev('failed reason not CamelCase', 'events.0.reason', failed({ reason: 'out of memory' })),
      ev('failed reason over 128 characters', 'events.0.reason', failed({ reason: `A${'a'.repeat(128)}` })),
      ev('failed message over 4096 characters', 'events.0.message', failed({ message: 'x'.repeat(4097) })),
      ev('failed hint over 1024 characters', 'events.0.hint', failed({ hint: 'x'.repeat(1025) })),
      ev('failed retryable as text', 'events.0.retryable', failed({ retryable: 'no' })),
      ev('failed without a message', 'events.0.message', without(failed(), 'message')),
      ev('completed with an unknown key', 'step', { type: 'completed', seq: 1, at: now, step: 3 }),
      // Sizes and methods.
      { name: 'a body over 1 MiB', raw: JSON.stringify(report({}, [failed({ message: 'x'.repeat(MAX_REPORT_BYTES) })])), status: 413, field: 'body' },
      { name: 'GET', method: 'GET', status: 405, field: 'POST' },
      { name: 'PUT', method: 'PUT', body: report(), status: 405, field: 'POST' },
      { name: 'DELETE', method: 'DELETE', status: 405, field: 'POST' },
    ];
    const problems: string[] = [];
    for (const c of cases) {
      const token = c.token === null ? undefined : (c.token ?? runToken);
      const headers = { 'content-type': 'application/json', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...c.headers };
      const r = await send(`${op.http.url}${REPORTS_PATH}`, { method: c.method ?? 'POST', headers, raw: c.raw ?? (c.body === undefined ? undefined : JSON.stringify(c.body)) });
      const message: string = r.json?.error?.message ?? r.text;
      const verdict = judge({ status: r.status, text: message }, { status: c.status, field: c.field });
      if (verdict) problems.push(`${c.name}: ${verdict}`);
      // The run's budget is 50 requests a second; this keeps well under it, so every answer is about the input.
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    assert.deepEqual(problems, []);
    const stored = await arena.getExperiment(ns, 'reporter');
    assert.equal(stored.status?.phase, 'Running', 'no bad report changed the run');
    assert.deepEqual(stored.status?.checkpoints ?? [], [], 'no bad report stored a checkpoint');
    record('report API', cases.length);
    await nothingStalled('report API');
  });

  test('status API: bad auth, query parameters, paths and methods are refused naming what is wrong', async () => {
    const bearer = { authorization: `Bearer ${STATUS_TOKEN}` };
    const page = await send(`${op.http.url}/api/v1/experiments?namespace=${ns}&limit=1`, { headers: bearer });
    const otherFilters: string = page.json.metadata.continue;
    assert.ok(otherFilters, 'a first page with a continue token');
    const foreign = Buffer.from(JSON.stringify({ v: 2, k: 'default/x', f: 'y' })).toString('base64url');
    type StatusCase = { name: string; path: string; method?: string; headers?: Record<string, string>; status: number; field: string };
    const q = (name: string, path: string, field: string, status = 400): StatusCase => ({ name, path, status, field });
    const cases: StatusCase[] = [
      { name: 'no Authorization header', path: '/cluster', headers: {}, status: 401, field: 'Authorization' },
      { name: 'Basic scheme', path: '/cluster', headers: { authorization: 'Basic YTpi' }, status: 401, field: 'Authorization' },
      { name: 'Bearer and nothing', path: '/cluster', headers: { authorization: 'Bearer' }, status: 401, field: 'Authorization' },
      { name: 'a token with a second word', path: '/cluster', headers: { authorization: `Bearer ${STATUS_TOKEN} extra` }, status: 401, field: 'Authorization' },
      { name: 'a wrong token', path: '/cluster', headers: { authorization: 'Bearer guess' }, status: 403, field: 'Authorization' },
      { name: 'the token in another case', path: '/cluster', headers: { authorization: `Bearer ${STATUS_TOKEN.toUpperCase()}` }, status: 403, field: 'Authorization' },
      { name: 'a wrong token on an unknown path', path: '/nothing', headers: { authorization: 'Bearer guess' }, status: 403, field: 'Authorization' },
      q('limit 0', '/experiments?limit=0', 'limit'),
      q('limit negative', '/experiments?limit=-1', 'limit'),
      q('limit not a number', '/experiments?limit=abc', 'limit'),
      q('limit over the most', '/experiments?limit=1001', 'limit'),
      q('limit fractional', '/experiments?limit=1.5', 'limit'),
      q('limit with an exponent', '/experiments?limit=1e2', 'limit'),
      q('limit empty', '/experiments?limit=', 'limit'),
      q('limit twice', '/experiments?limit=1&limit=2', 'limit'),
      q('an unknown phase', '/experiments?phase=Sleeping', 'phase'),
      q('a known and an unknown phase', '/experiments?phase=Running,Bogus', 'phase'),
      q('a phase in lower case', '/experiments?phase=running', 'phase'),
      q('namespace twice', '/experiments?namespace=a&namespace=b', 'namespace'),
      q('class twice', '/experiments?class=a&class=b', 'class'),
      q('continue garbage', '/experiments?continue=garbage', 'continue'),
      q('continue of other filters', `/experiments?namespace=other&limit=1&continue=${otherFilters}`, 'continue'),
      q('continue of another version', `/experiments?continue=${foreign}`, 'continue'),
      q('continue twice', '/experiments?continue=a&continue=b', 'continue'),
      q('deployments limit 0', '/deployments?limit=0', 'limit'),
      q('deployments: an experiment phase', '/deployments?phase=Succeeded', 'phase'),
      q('deployments continue garbage', '/deployments?continue=%7B%7D', 'continue'),
      q('usage from not a date', '/usage?from=yesterday', 'from'),
      q('usage to not a date', '/usage?to=2026-13-45', 'to'),
      q('usage from a time without a zone', '/usage?from=2026-03-01T10:00:00', 'from'),
      q('usage from after to', '/usage?from=2026-03-02&to=2026-03-01', 'from'),
      q('usage from equal to to', '/usage?from=2026-03-01T00:00:00Z&to=2026-03-01T00:00:00Z', 'from'),
      q('usage window over 400 days', '/usage?from=2024-01-01&to=2026-01-01', 'from, to'),
      q('usage format xml', '/usage?format=xml', 'format'),
      q('usage format twice', '/usage?format=json&format=csv', 'format'),
      q('usage from twice', '/usage?from=2026-03-01&from=2026-03-02', 'from'),
      { name: 'an unknown path', path: '/nothing', status: 404, field: '/api/v1/nothing' },
      { name: 'an experiment without a name', path: `/experiments/${ns}`, status: 404, field: `/api/v1/experiments/${ns}` },
      { name: 'an experiment path too deep', path: `/experiments/${ns}/reporter/status`, status: 404, field: `/api/v1/experiments/${ns}/reporter/status` },
      { name: 'an experiment that does not exist', path: `/experiments/${ns}/nobody`, status: 404, field: `${ns}/nobody` },
      { name: 'a cluster subpath', path: '/cluster/nodes', status: 404, field: '/api/v1/cluster/nodes' },
      ...['POST', 'PUT', 'PATCH', 'DELETE'].flatMap((method) =>
        ['/cluster', '/experiments', `/experiments/${ns}/reporter`, '/usage'].map((path) => ({ name: `${method} ${path}`, path, method, status: 405, field: method })),
      ),
    ];
    const problems: string[] = [];
    for (const c of cases) {
      const r = await send(`${op.http.url}/api/v1${c.path}`, { method: c.method ?? 'GET', headers: c.headers ?? bearer });
      const verdict = judge({ status: r.status, text: r.json?.error?.message ?? r.text }, { status: c.status, field: c.field });
      if (verdict) problems.push(`${c.name}: ${verdict}`);
    }
    assert.deepEqual(problems, []);
    record('status API', cases.length);
    await nothingStalled('status API');
  });

  test('webhook reviews: malformed reviews, wrong kinds, invalid and huge objects are refused naming the field', async () => {
    const port = op.webhook!.server.port;
    type ReviewCase = { name: string; path?: string; body: string | Buffer; contentType?: string; status: number; field: string; denied?: boolean };
    const good = createReview('Experiment', sample('Experiment'));
    const without = (key: string) => Object.fromEntries(Object.entries(good).filter(([k]) => k !== key));
    const malformed: Omit<ReviewCase, 'path'>[] = [
      { name: 'JSON that does not parse', body: '{"apiVersion": ', status: 400, field: 'body: not valid JSON' },
      { name: 'a JSON array', body: '[]', status: 400, field: 'body' },
      { name: 'JSON null', body: 'null', status: 400, field: 'body' },
      { name: 'text/plain content', body: review(good), contentType: 'text/plain', status: 400, field: 'body' },
      { name: 'no kind', body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', request: good }), status: 400, field: 'kind' },
      { name: 'another kind', body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionResponse', request: good }), status: 400, field: 'kind' },
      { name: 'a v1beta1 review', body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: good }), status: 400, field: 'apiVersion' },
      { name: 'no request', body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), status: 400, field: 'request' },
      { name: 'request a string', body: review('CREATE'), status: 400, field: 'request' },
      { name: 'no uid', body: review(without('uid')), status: 400, field: 'request.uid' },
      { name: 'an empty uid', body: review({ ...good, uid: '' }), status: 400, field: 'request.uid' },
      { name: 'uid a number', body: review({ ...good, uid: 7 }), status: 400, field: 'request.uid' },
      { name: 'no operation', body: review(without('operation')), status: 400, field: 'request.operation' },
      { name: 'operation PATCH', body: review({ ...good, operation: 'PATCH' }), status: 400, field: 'request.operation' },
      { name: 'operation in lower case', body: review({ ...good, operation: 'create' }), status: 400, field: 'request.operation' },
      { name: 'no request.kind', body: review(without('kind')), status: 400, field: 'request.kind' },
      { name: 'request.kind a string', body: review({ ...good, kind: 'Experiment' }), status: 400, field: 'request.kind' },
      { name: 'request.kind without a version', body: review({ ...good, kind: { group: GROUP, kind: 'Experiment' } }), status: 400, field: 'request.kind' },
      { name: 'a kind our group does not have', body: review({ ...good, kind: { group: GROUP, version: VERSION, kind: 'Experimant' } }), status: 400, field: 'request.kind.kind' },
      { name: 'a kind named __proto__', body: review({ ...good, kind: { group: GROUP, version: VERSION, kind: '__proto__' } }), status: 400, field: 'request.kind.kind' },
      { name: 'a version our group does not have', body: review({ ...good, kind: { group: GROUP, version: 'v1', kind: 'Experiment' } }), status: 400, field: 'request.kind.version' },
      { name: 'a CREATE without the object', body: review(without('object')), status: 400, field: 'request.object' },
      { name: 'a CREATE whose object is a string', body: review({ ...good, object: 'cartpole' }), status: 400, field: 'request.object' },
      { name: 'a CREATE whose object is a list', body: review({ ...good, object: [sample('Experiment')] }), status: 400, field: 'request.object' },
      { name: 'an UPDATE without the stored object', body: review({ ...good, operation: 'UPDATE' }), status: 400, field: 'request.oldObject' },
      { name: 'a body over 7 MiB', body: review({ ...good, object: { ...sample('Experiment'), spec: { ...sample('Experiment').spec, description: 'x'.repeat(7.5 * 1024 * 1024) } } }), status: 413, field: 'body' },
    ];
    // Each malformed review goes to both webhooks: they share the parser, but not the route.
    const cases: ReviewCase[] = [
      ...malformed.flatMap((c) => ['/validate', '/mutate'].map((path) => ({ ...c, name: `${path}: ${c.name}`, path }))),
      // An object of another kind than the review says.
      ...KIND_NAMES.flatMap((kind) =>
        KIND_NAMES.filter((k) => k !== kind).map((other) => ({ name: `a ${other} sent as a ${kind}`, body: review(createReview(kind, sample(other))), status: 422, field: `kind: must be ${kind}`, denied: true })),
      ),
      { name: 'an Experiment of another apiVersion', body: review(createReview('Experiment', { ...sample('Experiment'), apiVersion: `${GROUP}/v1` })), status: 422, field: 'apiVersion: must be', denied: true },
      // Every invalid object and update, as the apiserver would send them if the CRD were out of date.
      ...invalidObjects.map((c) => ({ name: c.name, body: review(createReview(c.kind, c.object)), status: 422, field: c.field, denied: true })),
      ...invalidUpdates.map((c) => ({ name: c.name, body: review(createReview(c.kind, c.object, { operation: 'UPDATE', oldObject: c.old })), status: 422, field: c.field, denied: true })),
      // Huge objects under the body limit.
      { name: 'a 3 MiB description', body: review(createReview('Experiment', { ...sample('Experiment'), spec: { ...sample('Experiment').spec, description: 'x'.repeat(3 * 1024 * 1024) } })), status: 422, field: 'spec.description', denied: true },
      { name: '10,000 tolerations', body: review(createReview('ResourceClass', { ...sample('ResourceClass'), spec: { ...sample('ResourceClass').spec, tolerations: Array.from({ length: 10_000 }, (_, i) => ({ key: `k${i}`, operator: 'Exists' })) } })), status: 422, field: 'spec.tolerations', denied: true },
      { name: 'a 1 MiB algorithm name', body: review(createReview('Experiment', { ...sample('Experiment'), spec: { ...sample('Experiment').spec, manifest: { ...sample('Experiment').spec.manifest, algorithm: { name: 'P'.repeat(1024 * 1024) } } } })), status: 422, field: 'spec.manifest.algorithm', denied: true },
      { name: 'a manifest nested 5,000 deep', body: review(createReview('Experiment', { ...sample('Experiment'), spec: { ...sample('Experiment').spec, manifest: { ...sample('Experiment').spec.manifest, training: 'DEEP' } } })).replace('"DEEP"', `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`), status: 422, field: 'spec.manifest.training.a.a', denied: true },
      // Written as text: JSON.stringify itself overflows the stack this deep.
      { name: 'a ResourceClass nested 100,000 deep', body: review(createReview('ResourceClass', { ...sample('ResourceClass'), spec: { ...sample('ResourceClass').spec, nodeSelector: 'DEEP' } })).replace('"DEEP"', `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`), status: 422, field: 'spec.nodeSelector.a.a', denied: true },
      { name: '20,000 unknown manifest keys', body: review(createReview('Experiment', { ...sample('Experiment'), spec: { ...sample('Experiment').spec, manifest: { ...sample('Experiment').spec.manifest, algorithm: { name: 'PPO', ...Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i])) } } } })), status: 422, field: 'spec.manifest.algorithm', denied: true },
    ];
    const problems: string[] = [];
    for (const c of cases) {
      const r = await postReview(port, c.path ?? '/validate', webhookCa, c.body, c.contentType);
      if (c.denied) {
        const res = r.json?.response;
        if (r.status !== 200 || res?.allowed !== false) {
          problems.push(`${c.name}: expected a denial, got ${r.status} ${r.text.slice(0, 300)}`);
          continue;
        }
        const text = [res.status?.message ?? '', ...(res.status?.details?.causes ?? []).map((x: { field: string; message: string }) => `${x.field} ${x.message}`)].join(' ');
        const verdict = judge({ status: res.status?.code, text }, { status: c.status, field: c.field });
        if (verdict) problems.push(`${c.name}: ${verdict}`);
        // A refusal is read by a person: thousands of errors are listed as the first few and a count.
        else if (text.length > 16 * 1024) problems.push(`${c.name}: a refusal of ${text.length} characters`);
      } else {
        const verdict = judge({ status: r.status, text: r.json?.error?.message ?? r.text }, { status: c.status, field: c.field });
        if (verdict) problems.push(`${c.name}: ${verdict}`);
      }
    }
    assert.deepEqual(problems, []);
    record('webhook reviews', cases.length);
    await nothingStalled('webhook reviews');
  });

  test('at least 300 bad inputs in all, each refused naming the field', () => {
    const total = [...tally.values()].reduce((a, b) => a + b, 0);
    console.log(`bad-input: total: ${total} refused (${[...tally].map(([s, n]) => `${s} ${n}`).join(', ')})`);
    assert.equal(tally.size, 6, 'every surface ran');
    assert.ok(total >= 300, `${total} bad inputs`);
  });
});

/** `{a: {a: … {a: 1}}}`, `depth` levels deep. */
function nested(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = { a: 1 };
  for (let i = 1; i < depth; i++) v = { a: v };
  return v;
}
