// "Update recommended" and the credit balance driven by the platform: the operator against a real control plane, its heartbeat answered by
// a stand-in platform on 127.0.0.1 whose reply names the current setup-bundle version. The version moves on, a reply
// goes bad, the operator restarts, the admin upgrades, the link is removed: TrainingCluster status, every
// ResourceClass status and the status API follow each step.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { createGpuNodes, gpuProducts, gpuTaint } from './cluster/gpu-nodes.ts';
import { waitFor } from './cluster/wait.ts';
import { Arena, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { GROUP, VERSION } from '../operator/api/v1alpha1/index.ts';
import type { ResourceClass } from '../operator/api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../operator/api/v1alpha1/trainingcluster.ts';
import { HEARTBEAT_PATH } from '../operator/platform-link/heartbeat.ts';
import { startOperator, type RunningOperator } from '../operator/operator.ts';
import { createLogger } from '../operator/observability/log.ts';
import { openApiValidator } from '../operator/status-api/testing.ts';

const quiet = createLogger({ silent: true });
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const TOKENS = { namespace: 'default', name: 'arena-status-api-tokens' };
const CLASSES = ['a100-x1', 'cpu'];
type Cond = { type: string; status: string; reason: string; message: string };
const cond = (s: { conditions?: Cond[] } | undefined, type: string) => s?.conditions?.find((c) => c.type === type);

interface Beat {
  path?: string;
  body: { trainingCluster?: string; credits?: { spent?: number }; status?: { trainingClusters?: { name: string; bundle?: Record<string, unknown> }[] } };
}

/** The platform: records heartbeats and answers each with the reply the test sets. */
class Platform {
  readonly received: Beat[] = [];
  reply = '';
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        this.received.push({ path: req.url, body: JSON.parse(data) as Beat['body'] });
        res.writeHead(200, { 'content-type': 'application/json' }).end(this.reply);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Sets the reply and waits until a heartbeat has been answered with it. */
  async answer(reply: string): Promise<void> {
    this.reply = reply;
    const seen = this.received.length;
    // One interval (5 s, ±10 %) plus slack for a loaded machine.
    await waitFor(() => this.received.length > seen, { timeoutMs: 30_000, what: 'a heartbeat answered with the new reply' });
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}

const version = (v: unknown) => JSON.stringify({ apiVersion: 'v1', kind: 'HeartbeatReply', currentBundleVersion: v });

describe('setup-bundle updates from the platform heartbeat', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let op: RunningOperator | undefined;
  const platform = new Platform();
  const conforms = openApiValidator();

  const tc = async () => (await arena.custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'trainingclusters', name: 'onprem' })) as TrainingCluster;
  const rc = async (name: string) => (await arena.custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'resourceclasses', name })) as ResourceClass;

  async function until<T extends { status?: unknown }>(read: () => Promise<T>, pred: (o: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
    let last: T | undefined;
    try {
      await waitFor(async () => pred((last = await read())), { timeoutMs, what });
    } catch (err) {
      throw new Error(`${(err as Error).message}\nlast status: ${JSON.stringify(last?.status, null, 1)}`);
    }
    return last!;
  }

  /** Every class shows this bundle state on its status and in its UpdateRecommended condition. */
  async function classesShow(state: 'Current' | 'UpdateRecommended' | 'Unknown', currentVersion: string | undefined) {
    const want = { Current: ['False', 'BundleCurrent'], UpdateRecommended: ['True', 'UpdateRecommended'], Unknown: ['Unknown', 'CurrentVersionUnknown'] }[state];
    const out: ResourceClass['status'][] = [];
    for (const name of CLASSES) {
      const r = await until(
        () => rc(name),
        (x) => x.status?.bundle?.state === state && x.status.bundle.currentVersion === currentVersion && cond(x.status, 'UpdateRecommended')?.reason === want[1],
        `${name} bundle ${state} (${currentVersion})`,
      );
      assert.equal(cond(r.status, 'UpdateRecommended')?.status, want[0], name);
      out.push(r.status);
    }
    return out;
  }

  async function statusApiBundle(): Promise<Record<string, unknown>> {
    const res = await fetch(`${op!.http.url}/api/v1/cluster`, { headers: { authorization: 'Bearer poll-token' } });
    const body = (await res.json()) as { trainingClusters: { name: string; bundle: Record<string, unknown> }[]; classes: { name: string; updateRecommended?: boolean }[] };
    assert.deepEqual(conforms('/cluster', res.status, body), [], 'GET /cluster matches the OpenAPI document');
    return body.trainingClusters.find((c) => c.name === 'onprem')!.bundle;
  }

  const start = async () => {
    op = await startOperator({
      kc: cluster.kubeConfig(),
      logger: quiet,
      http: { host: '127.0.0.1', port: 0 },
      leaseNamespace: 'default',
      clusterStatus: { tokenSecret: TOKENS, debounceMs: 200, platformLink: { timeoutMs: 4000, initialBackoffMs: 200, maxBackoffMs: 1000 } },
    });
    await waitFor(() => op!.isLeader(), { timeoutMs: 20_000, what: 'the operator to lead' });
  };

  before(async () => {
    await platform.start();
    platform.reply = version('1.0.0');
    cluster = await LocalCluster.start();
    await installCrds(cluster);
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    await createGpuNodes(kc, { prefix: 'a100', count: 1, gpus: 8, gpu: gpuProducts.A100, taints: [gpuTaint] });
    await arena.core.createNamespace({ body: { metadata: { name: 'arena-system' } } });
    await arena.core.createNamespacedSecret({ namespace: 'arena-system', body: { metadata: { name: 'platform-token' }, stringData: { token: 'cluster-token' } } });
    await arena.core.createNamespacedSecret({ namespace: TOKENS.namespace, body: { metadata: { name: TOKENS.name }, stringData: { platform: 'poll-token' } } });
    // The admin's hand-set version agrees with the install; the platform's answer is what moves it below.
    await arena.apply(
      trainingCluster('onprem', {
        currentBundleVersion: '1.0.0',
        platform: { url: platform.url, tokenSecretRef: { name: 'platform-token', namespace: 'arena-system' }, heartbeatIntervalSeconds: 5 },
      }),
    );
    await arena.apply(resourceClass('a100-x1', 'onprem', { nodes: 1, worker: { cpu: '2', memory: '4Gi', gpus: 8, gpuProduct: gpuProducts.A100.product } }));
    await arena.apply(resourceClass('cpu', 'onprem', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 0 } }));
    await start();
  });
  after(async () => {
    await op?.stop();
    await cluster?.stop();
    await platform.stop();
  });

  test('Current while the platform names the installed version', async () => {
    const s = (await until(tc, (t) => t.status?.platform?.currentBundleVersion === '1.0.0' && cond(t.status, 'PlatformConnected')?.status === 'True', 'the platform\'s version recorded')).status!;
    assert.deepEqual(s.bundle, { installedVersion: '1.0.0', currentVersion: '1.0.0', state: 'Current' });
    assert.equal(cond(s, 'BundleCurrent')?.status, 'True');
    assert.match(cond(s, 'BundleCurrent')!.message, /platform reported 1\.0\.0/);
    await classesShow('Current', '1.0.0');
    assert.deepEqual(await statusApiBundle(), { installedVersion: '1.0.0', currentVersion: '1.0.0', currentVersionSource: 'Platform', state: 'Current' });
    assert.equal(platform.received.at(-1)?.path, HEARTBEAT_PATH);
  });

  test('the platform moves on: UpdateRecommended everywhere, over the admin\'s field; classes stay available', async () => {
    await platform.answer(version('1.1.0'));
    const s = (await until(tc, (t) => t.status?.bundle?.state === 'UpdateRecommended', 'bundle outdated')).status!;
    assert.deepEqual(s.bundle, { installedVersion: '1.0.0', currentVersion: '1.1.0', state: 'UpdateRecommended' });
    assert.deepEqual(s.platform, { currentBundleVersion: '1.1.0' });
    assert.deepEqual([cond(s, 'BundleCurrent')?.status, cond(s, 'BundleCurrent')?.reason, cond(s, 'Ready')?.status], ['False', 'UpdateRecommended', 'True']);
    assert.equal((await tc()).spec.currentBundleVersion, '1.0.0', 'the hand-set field is left alone and loses');
    const classes = await classesShow('UpdateRecommended', '1.1.0');
    assert.equal(classes[0]?.available, true, 'an update is advice, the class is still offered');
    assert.match(cond(classes[0], 'UpdateRecommended')!.message, /1\.1\.0 replaces the installed 1\.0\.0/);
    assert.deepEqual(await statusApiBundle(), { installedVersion: '1.0.0', currentVersion: '1.1.0', currentVersionSource: 'Platform', state: 'UpdateRecommended' });
    // The next heartbeat tells the platform what the operator concluded.
    await platform.answer(version('1.1.0'));
    await waitFor(() => platform.received.at(-1)?.body.status?.trainingClusters?.[0]?.bundle?.state === 'UpdateRecommended', { timeoutMs: 30_000, what: 'a heartbeat carrying UpdateRecommended' });
  });

  test('bad replies keep the last known version and say so; so does an operator restart', async () => {
    await platform.answer('<html>maintenance</html>');
    const bad = (await until(tc, (t) => /is not JSON/.test(cond(t.status, 'BundleCurrent')?.message ?? ''), 'BundleCurrent tells of the bad reply')).status!;
    assert.match(cond(bad, 'BundleCurrent')!.message, /the last version it reported, 1\.1\.0, is kept/);
    assert.deepEqual([bad.bundle?.state, bad.bundle?.currentVersion, bad.platform?.currentBundleVersion], ['UpdateRecommended', '1.1.0', '1.1.0']);
    assert.equal(cond(bad, 'PlatformConnected')?.status, 'True', 'the platform did accept the heartbeat');

    await platform.answer(version('latest'));
    await until(tc, (t) => /"latest", which is not a semantic version/.test(cond(t.status, 'BundleCurrent')?.message ?? ''), 'BundleCurrent tells of the non-semver value');
    await classesShow('UpdateRecommended', '1.1.0');

    // A new operator process knows nothing from the link yet, and the platform still names no version: the status
    // the last one wrote carries the answer over.
    await op!.stop();
    op = undefined;
    platform.reply = JSON.stringify({ kind: 'HeartbeatReply' });
    await start();
    await until(tc, (t) => /has no currentBundleVersion/.test(cond(t.status, 'BundleCurrent')?.message ?? ''), 'the new operator saw a reply without the field', 40_000);
    const after = (await tc()).status!;
    assert.deepEqual([after.bundle?.state, after.bundle?.currentVersion, after.platform?.currentBundleVersion], ['UpdateRecommended', '1.1.0', '1.1.0']);
    await classesShow('UpdateRecommended', '1.1.0');
  });

  test('the admin upgrades to the platform\'s version: Current again', async () => {
    await platform.answer(version('1.1.0'));
    await until(tc, (t) => !/heartbeat reply/.test(cond(t.status, 'BundleCurrent')?.message ?? ''), 'a good reply clears the note');
    await arena.patchCluster('onprem', { setupBundle: { version: '1.1.0', images: { runtime: 'registry.local/arena-runtime:1.1.0' } } });
    const s = (await until(tc, (t) => t.status?.bundle?.state === 'Current', 'bundle current after the upgrade')).status!;
    assert.deepEqual(s.bundle, { installedVersion: '1.1.0', currentVersion: '1.1.0', state: 'Current' });
    assert.deepEqual([cond(s, 'BundleCurrent')?.status, cond(s, 'BundleCurrent')?.reason], ['True', 'BundleCurrent']);
    await classesShow('Current', '1.1.0');
    assert.deepEqual(await statusApiBundle(), { installedVersion: '1.1.0', currentVersion: '1.1.0', currentVersionSource: 'Platform', state: 'Current' });
  });

  test('the platform\'s reply names the credit balance: at zero a new run waits, naming the platform; a balance lets it start', async () => {
    const ns = 'billing';
    await arena.namespace(ns);
    const reply = (balance: number) => JSON.stringify({ apiVersion: 'v1', kind: 'HeartbeatReply', currentBundleVersion: '1.1.0', credits: { balance } });
    await platform.answer(reply(0));
    await until(tc, (t) => t.status?.credits?.source === 'Platform' && t.status.credits.balance <= 0, 'the ledger at zero, from the platform');
    await arena.apply(experiment(ns, 'paid', 'a100-x1'));
    const waiting = await arena.waitExperiment(ns, 'paid', (s) => s.phase === 'Pending' && s.reason === 'CreditsExhausted', 'Pending/CreditsExhausted');
    assert.match(waiting.status!.message!, /credit balance of TrainingCluster onprem is 0 \(from the Arena platform\).*Billing page/);

    // A Manager tops up on the platform: the next reply names a balance, and the run starts by itself.
    await platform.answer(reply(500));
    await arena.waitPhase(ns, 'paid', 'Running', 30_000);
    const s = (await until(tc, (t) => (t.status?.credits?.balance ?? 0) > 490 && t.status?.credits?.running === 1, 'the ledger with the platform\'s balance')).status!;
    assert.equal(s.platform?.credits?.balance, 500);
    // Each heartbeat tells the platform what was spent here, so its next balance can count it.
    await platform.answer(reply(500));
    assert.equal(typeof platform.received.at(-1)?.body.credits?.spent, 'number');
    await arena.patchExperiment(ns, 'paid', { action: 'Stop' });
    await arena.waitExperiment(ns, 'paid', (st) => st.phase === 'Stopped' || st.phase === 'Failed', 'paid stopped');
  });

  test('without the link the admin\'s field decides again', async () => {
    await arena.custom.patchClusterCustomObject(
      { group: GROUP, version: VERSION, plural: 'trainingclusters', name: 'onprem', body: { spec: { platform: null } } },
      mergePatch,
    );
    const s = (await until(tc, (t) => t.status?.bundle?.currentVersion === '1.0.0' && t.status.platform === undefined, 'the spec field back in charge')).status!;
    assert.equal(s.bundle?.state, 'UpdateRecommended', 'installed 1.1.0, hand-set 1.0.0');
    assert.match(cond(s, 'BundleCurrent')!.message, /spec\.currentBundleVersion/);
    assert.equal(cond(s, 'PlatformConnected'), undefined);
    await classesShow('UpdateRecommended', '1.0.0');
    assert.deepEqual(await statusApiBundle(), { installedVersion: '1.1.0', currentVersion: '1.0.0', currentVersionSource: 'Spec', state: 'UpdateRecommended' });
    await arena.patchCluster('onprem', { currentBundleVersion: '1.1.0' });
    await classesShow('Current', '1.1.0');
  });
});
