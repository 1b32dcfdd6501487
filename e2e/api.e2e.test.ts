// The arena.agilerl.com API on a real kube-apiserver: the generated CRDs install, teach themselves through
// kubectl explain, keep what users write, and refuse bad objects with the offending field named.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { waitFor } from './cluster/wait.ts';
import { kinds, GROUP, VERSION, KIND_NAMES, type KindName } from '../operator/api/v1alpha1/index.ts';
import { samples, experimentWithUnknownManifestKeys } from '../operator/api/testdata/samples.ts';
import { invalidObjects, invalidUpdates } from '../operator/api/testdata/invalid-objects.ts';
import { toKubeError } from '../operator/kube/errors.ts';

type Obj = { metadata?: { name?: string; namespace?: string; resourceVersion?: string }; spec?: unknown; status?: unknown };

function client(kc: KubeConfig) {
  const api = kc.makeApiClient(CustomObjectsApi);
  const where = (kind: KindName, o: Obj) => ({
    group: GROUP,
    version: VERSION,
    plural: kinds[kind].plural,
    ...(kinds[kind].scope === 'Namespaced' ? { namespace: o.metadata?.namespace ?? 'default' } : {}),
  });
  return {
    create: (kind: KindName, o: Obj) =>
      (kinds[kind].scope === 'Namespaced'
        ? api.createNamespacedCustomObject({ ...where(kind, o), namespace: o.metadata?.namespace ?? 'default', body: o })
        : api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: kinds[kind].plural, body: o })) as Promise<Obj>,
    get: (kind: KindName, o: Obj) =>
      (kinds[kind].scope === 'Namespaced'
        ? api.getNamespacedCustomObject({ ...where(kind, o), namespace: o.metadata?.namespace ?? 'default', name: o.metadata!.name! })
        : api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: kinds[kind].plural, name: o.metadata!.name! })) as Promise<Obj>,
    replace: (kind: KindName, o: Obj) =>
      (kinds[kind].scope === 'Namespaced'
        ? api.replaceNamespacedCustomObject({ ...where(kind, o), namespace: o.metadata?.namespace ?? 'default', name: o.metadata!.name!, body: o })
        : api.replaceClusterCustomObject({ group: GROUP, version: VERSION, plural: kinds[kind].plural, name: o.metadata!.name!, body: o })) as Promise<Obj>,
  };
}

describe('the arena API on a real API server', () => {
  let cluster: LocalCluster;
  let api: ReturnType<typeof client>;

  before(async () => {
    cluster = await LocalCluster.start({ without: ['kwok', 'kube-scheduler'] });
    await installCrds(cluster);
    api = client(cluster.kubeConfig());
  });
  after(async () => {
    await cluster?.stop();
  });

  test('kubectl get arena lists the four kinds, with their short names', () => {
    const out = cluster.kubectl(['api-resources', '--categories=arena', '-o', 'wide', '--no-headers']);
    for (const k of KIND_NAMES) assert.match(out, new RegExp(`\\b${k}\\b`), `${k} is in the arena category`);
    assert.match(out, /\bexp\b/);
    assert.match(out, /\brclass\b/);
  });

  test('kubectl explain teaches the API', async () => {
    // A new CRD reaches the apiserver's published OpenAPI a moment after it is Established; on a loaded machine
    // kubectl explain can ask before that.
    let spec = '';
    await waitFor(
      () => {
        try {
          spec = cluster.kubectl(['explain', 'experiment.spec']);
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 30_000, what: 'kubectl explain to find experiments' },
    );
    assert.match(spec, /manifest/);
    assert.match(spec, /resourceClass/);
    assert.match(spec, /Arena training manifest|training manifest/i);
    const action = cluster.kubectl(['explain', 'experiments.spec.action']);
    assert.match(action, /Train/);
    const cls = cluster.kubectl(['explain', 'resourceclass.spec.worker.gpus']);
    assert.match(cls, /GPU/);
  });

  test('a valid sample of each kind round-trips unchanged, unknown manifest keys included', async () => {
    for (const kind of KIND_NAMES) {
      const sample = structuredClone(samples[kind]) as Obj;
      await api.create(kind, sample);
      const back = await api.get(kind, sample);
      assert.deepEqual(back.spec, sample.spec, `${kind} spec came back as sent`);
    }
    const unknown = structuredClone(experimentWithUnknownManifestKeys) as Obj;
    await api.create('Experiment', unknown);
    const back = await api.get('Experiment', unknown);
    assert.deepEqual(back.spec, unknown.spec, 'unknown manifest keys are kept');
    const listed = cluster.kubectl(['get', 'arena', '-A', '-o', 'name']);
    for (const kind of ['trainingcluster', 'resourceclass', 'experiment', 'deployment']) {
      assert.match(listed, new RegExp(`^${kind}\\.arena\\.agilerl\\.com/`, 'm'), `kubectl get arena lists ${kind}`);
    }
  });

  test('printer columns answer the first questions', () => {
    const header = cluster.kubectl(['get', 'experiments', '-A']).split('\n')[0] ?? '';
    for (const col of ['PHASE', 'CLASS', 'PROGRESS', 'AGE']) assert.match(header, new RegExp(col));
  });

  test(`the API server refuses ${invalidObjects.length} invalid objects, naming the field`, async () => {
    assert.ok(invalidObjects.length >= 30, 'at least 30 invalid objects');
    const problems: string[] = [];
    for (const c of invalidObjects) {
      try {
        await api.create(c.kind, c.object as Obj);
        problems.push(`${c.name}: was accepted`);
      } catch (err) {
        const e = toKubeError(err);
        const text = [e.message, ...(e.causes ?? []).map((x) => `${x.field ?? ''} ${x.message}`)].join(' ');
        if (e.code !== 422) problems.push(`${c.name}: expected 422, got ${e.code} ${e.message}`);
        else if (!text.includes(c.field)) problems.push(`${c.name}: message does not name ${c.field}: ${text}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test(`the API server refuses ${invalidUpdates.length} invalid updates of stored objects`, async () => {
    const problems: string[] = [];
    for (const c of invalidUpdates) {
      const stored = await api.create(c.kind, c.old as Obj);
      const update = structuredClone(c.object) as Obj;
      update.metadata = { ...update.metadata, resourceVersion: stored.metadata?.resourceVersion };
      try {
        await api.replace(c.kind, update);
        problems.push(`${c.name}: was accepted`);
      } catch (err) {
        const e = toKubeError(err);
        const text = [e.message, ...(e.causes ?? []).map((x) => `${x.field ?? ''} ${x.message}`)].join(' ');
        if (!text.includes(c.field)) problems.push(`${c.name}: message does not name ${c.field}: ${text}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
