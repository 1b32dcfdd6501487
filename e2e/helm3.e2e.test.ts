// Helm 3: the chart supports it as well as Helm 4, which the setup-bundle suite installs with. Here helm3 lints and
// renders the chart (the same objects Helm 4 renders), then installs it into a real control plane where the
// operator's pods truly run, tests it with `helm test`, upgrades it over a live experiment (the CRD upgrade hook
// carrying a CRD change) and uninstalls it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { LocalCluster, resolveBinDir } from './cluster/control-plane.ts';
import { createGpuNodes, gpuProducts, gpuTaint } from './cluster/gpu-nodes.ts';
import { waitFor } from './cluster/wait.ts';
import type { LocalNode } from './node/local-node.ts';
import { localClusterValues, previousChart } from './support/charts.ts';
import { Arena, experiment } from './support/fixtures.ts';
import { startOperatorImageNode } from './support/operator-node.ts';
import { ok, sh } from './support/sh.ts';
import { chartDir } from '../bundle/chart-sync.ts';

const binDir = resolveBinDir();
const helm3 = join(binDir, 'helm3');
const helm4 = join(binDir, 'helm');
assert.ok(existsSync(helm3), `${helm3} is missing: ARENA_BIN_DIR names a folder e2e/toolchain/build.sh has not completed (run it)`);

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; annotations?: Record<string, string> }; [k: string]: unknown };
const parseObjects = (yaml: string) => parseAllDocuments(yaml).map((d) => d.toJS() as K8sObject).filter(Boolean);
const keyOf = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

const NS = 'arena-system';
const RELEASE = 'arena-operator';
const CRD_NAMES = ['deployments', 'experiments', 'resourceclasses', 'trainingclusters'].map((p) => `${p}.arena.agilerl.com`);

describe('the chart under Helm 3', () => {
  let work: string;
  let valuesFile: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'arena-helm3-render-'));
    valuesFile = join(work, 'values.yaml');
    // Every optional part on, and a fixed status API token: the chart would otherwise generate one per render.
    const values = {
      ...localClusterValues,
      global: { imageRegistry: 'registry.internal:5000', imagePullSecrets: [{ name: 'regcred' }] },
      metrics: { serviceMonitor: { enabled: true } },
      statusApi: { tokens: { platform: 'a-fixed-token-for-a-stable-render' } },
      platform: { url: 'https://arena.example.com', token: 'cluster-token' },
    };
    await writeFile(valuesFile, stringify(values));
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('helm3 is Helm 3 and lints the chart strictly, with and without values; a value the schema refuses fails', async () => {
    const version = await sh(helm3, ['version', '--template', '{{.Version}}']);
    ok(version, 'helm3 version');
    assert.match(version.stdout, /^v3\.\d+\.\d+$/);
    ok(await sh(helm3, ['lint', '--strict', chartDir]), 'helm3 lint');
    ok(await sh(helm3, ['lint', '--strict', chartDir, '-f', valuesFile]), 'helm3 lint with values');
    const bad = await sh(helm3, ['lint', '--strict', chartDir, '--set', 'replicaCount=two']);
    assert.notEqual(bad.code, 0, 'a string replica count passes lint');
    assert.match(bad.stdout + bad.stderr, /replicaCount/);
  });

  test('helm3 template renders the same objects as Helm 4, hooks and tests included', async () => {
    const args = ['template', RELEASE, chartDir, '--namespace', NS, '-f', valuesFile, '--api-versions', 'monitoring.coreos.com/v1/ServiceMonitor'];
    const [r3, r4] = await Promise.all([sh(helm3, args), sh(helm4, args)]);
    ok(r3, 'helm3 template');
    ok(r4, 'helm template');
    const objs3 = parseObjects(r3.stdout);
    const objs4 = parseObjects(r4.stdout);
    const byKey = (objs: K8sObject[]) => Object.fromEntries(objs.map((o) => [keyOf(o), o]));
    assert.deepEqual(Object.keys(byKey(objs3)).sort(), Object.keys(byKey(objs4)).sort());
    assert.deepEqual(byKey(objs3), byKey(objs4));

    // The values took effect under Helm 3: a null value removes a default, the registry moves every image.
    const one = (kind: string, pred: (o: K8sObject) => boolean = () => true) => {
      const found = objs3.filter((o) => o.kind === kind && pred(o));
      assert.equal(found.length, 1, `expected one ${kind}, found ${found.length}`);
      return found[0]!;
    };
    const tc = one('TrainingCluster').spec as { checkpointStorage: Record<string, unknown>; setupBundle: { images: { runtime: string } }; workerNodeSelector: unknown };
    assert.deepEqual(tc.checkpointStorage, { hostPath: { path: '/var/lib/arena/checkpoints' } });
    assert.deepEqual(tc.workerNodeSelector, { pool: 'gpu' });
    assert.match(tc.setupBundle.images.runtime, /^registry\.internal:5000\/agilerl\/arena-runtime:/);
    assert.equal(one('ResourceClass').metadata.name, 'a100-x1');
    one('ServiceMonitor');
    const images = objs3.flatMap((o) => JSON.stringify(o).match(/"image":"[^"]+"/g) ?? []);
    assert.ok(images.length >= 3, `operator, CRD hook and test images: ${images.join(' ')}`);
    for (const image of images) assert.match(image, /"image":"registry\.internal:5000\//);
    const hook = (o: K8sObject) => o.metadata.annotations?.['helm.sh/hook'];
    assert.equal(hook(one('Job')), 'pre-install,pre-upgrade');
    assert.equal(hook(one('Pod')), 'test');
  });
});

describe('installing with Helm 3', { timeout: 900_000 }, () => {
  let cluster: LocalCluster;
  let node: LocalNode;
  let arena: Arena;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let valuesFile: string;
  const charts: Record<string, string> = {};
  const helm = (args: string[]) => sh(helm3, args, { env, timeoutMs: 600_000 });
  const kubectl = async (args: string[]) => {
    const r = await sh(join(binDir, 'kubectl'), args, { env });
    ok(r, `kubectl ${args.join(' ')}`);
    return r.stdout;
  };
  const operatorPods = async () =>
    (JSON.parse(await kubectl(['get', 'pods', '-n', NS, '-l', 'app.kubernetes.io/component=operator', '-o', 'json'])) as {
      items: { metadata: { deletionTimestamp?: string }; spec: { nodeName: string; containers: { image: string }[] }; status: { phase: string } }[];
    }).items;
  const printerColumns = () => kubectl(['get', 'crd', 'experiments.arena.agilerl.com', '-o', 'jsonpath={.spec.versions[0].additionalPrinterColumns[*].name}']);
  const hookLeftovers = async () => (await kubectl(['get', 'jobs,configmaps,serviceaccounts', '-n', NS, '-l', 'app.kubernetes.io/component=crd-upgrade', '-o', 'name'])).trim();

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'arena-helm3-'));
    cluster = await LocalCluster.start();
    env = cluster.env();
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    // One simulated GPU node for the experiment's worker; the operator's pods run on the local node.
    await createGpuNodes(kc, { prefix: 'gpu', count: 1, gpus: 4, gpu: gpuProducts.A100, taints: [gpuTaint], labels: { pool: 'gpu' } });
    node = await startOperatorImageNode(kc, cluster.dir);

    // Packaged by Helm 3 itself: the previous release (its Experiment CRD one column short) and the current chart.
    const out = join(work, 'charts');
    await mkdir(out);
    for (const [version, dir] of [['0.1.0', await previousChart(work)], ['0.2.0', chartDir]] as const) {
      const r = await sh(helm3, ['package', dir, '--version', version, '--app-version', version, '--destination', out]);
      ok(r, `helm3 package ${version}`);
      charts[version] = join(out, `arena-operator-${version}.tgz`);
      assert.ok(existsSync(charts[version]), r.stdout);
    }
    valuesFile = join(work, 'values.yaml');
    await writeFile(valuesFile, stringify(localClusterValues));
  });

  after(async () => {
    await node?.stop();
    await cluster?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('helm3 install creates the CRDs, runs the CRD hook and waits for both operator replicas', async () => {
    const r = await helm(['install', RELEASE, charts['0.1.0']!, '-n', NS, '--create-namespace', '-f', valuesFile, '--wait', '--timeout', '5m']);
    ok(r, 'helm3 install');
    // Helm 3's `status -o json` leaves the chart out; `list` names it.
    const releases = JSON.parse((await helm(['list', '-n', NS, '-o', 'json'])).stdout) as { name: string; chart: string; status: string; app_version: string }[];
    assert.deepEqual(releases.map((x) => [x.name, x.chart, x.status, x.app_version]), [[RELEASE, 'arena-operator-0.1.0', 'deployed', '0.1.0']]);

    const pods = await operatorPods();
    assert.equal(pods.length, 2);
    for (const p of pods) {
      assert.equal(p.spec.nodeName, 'system-0');
      assert.equal(p.status.phase, 'Running');
      assert.equal(p.spec.containers[0]!.image, 'ghcr.io/agilerl/arena-operator:0.1.0');
    }
    assert.equal(await kubectl(['get', 'deployment', RELEASE, '-n', NS, '-o', 'jsonpath={.status.readyReplicas}']), '2');
    await kubectl(['wait', '--for=condition=Established', '--timeout=30s', ...CRD_NAMES.map((n) => `crd/${n}`)]);
    assert.doesNotMatch(await printerColumns(), /Reason/, 'the previous chart\'s CRD');
    assert.equal(await hookLeftovers(), '', 'the successful hook deleted itself');
    assert.equal(await kubectl(['get', 'tcl', 'onprem', '-o', 'jsonpath={.spec.setupBundle.version}']), '0.1.0');
    assert.match(await kubectl(['get', 'rclass', '-o', 'name']), /a100-x1/);
    await waitFor(async () => /"msg":"leading"/.test(await kubectl(['logs', '-n', NS, '-l', 'app.kubernetes.io/component=operator', '--tail=-1'])), {
      timeoutMs: 60_000,
      what: 'a replica to lead',
    });
  });

  test('helm3 test passes: every ready replica answers /readyz and the CRDs are established', async () => {
    const r = await helm(['test', RELEASE, '-n', NS, '--logs', '--timeout', '3m']);
    ok(r, 'helm3 test');
    assert.match(r.stdout, /Phase: +Succeeded/);
    assert.match(r.stdout, /2 ready pod\(s\) of 2/);
    assert.match(r.stdout, /PASSED/);
  });

  test('helm3 upgrade replaces the CRDs through the hook and keeps the running experiment; helm3 test passes again', async () => {
    const ns = 'team-a';
    await arena.namespace(ns);
    await arena.apply(experiment(ns, 'live', 'a100-x1'));
    const running = await arena.waitPhase(ns, 'live', 'Running', 90_000);

    const r = await helm(['upgrade', RELEASE, charts['0.2.0']!, '-n', NS, '-f', valuesFile, '--wait', '--timeout', '5m']);
    ok(r, 'helm3 upgrade');
    assert.match(await printerColumns(), /Reason/, 'the pre-upgrade hook replaced the Experiment CRD');
    assert.equal(await hookLeftovers(), '');
    const history = JSON.parse((await helm(['history', RELEASE, '-n', NS, '-o', 'json'])).stdout) as { chart: string; status: string }[];
    assert.deepEqual(history.map((h) => [h.chart, h.status]), [['arena-operator-0.1.0', 'superseded'], ['arena-operator-0.2.0', 'deployed']]);
    // --wait saw the rollout through: the old pods may still be terminating, the ready ones run the new image.
    await waitFor(async () => (await operatorPods()).filter((p) => !p.metadata.deletionTimestamp).every((p) => p.spec.containers[0]!.image.endsWith(':0.2.0')), {
      timeoutMs: 60_000,
      what: 'only 0.2.0 operator pods',
    });
    assert.equal(await kubectl(['get', 'deployment', RELEASE, '-n', NS, '-o', 'jsonpath={.status.readyReplicas}']), '2');
    assert.equal(await kubectl(['get', 'tcl', 'onprem', '-o', 'jsonpath={.spec.setupBundle.version}']), '0.2.0');

    const after = await arena.getExperiment(ns, 'live');
    assert.equal(after.metadata?.uid, running.metadata?.uid, 'the experiment was not recreated');
    assert.equal(after.status?.phase, 'Running');
    assert.equal(after.status?.attempt, running.status?.attempt, 'the run was not restarted by the upgrade');

    // The first run's test Pod is still there (kept for --logs); the second run replaces it.
    const again = await helm(['test', RELEASE, '-n', NS, '--logs', '--timeout', '3m']);
    ok(again, 'helm3 test after the upgrade');
    assert.match(again.stdout, /PASSED/);
    const logs = await kubectl(['logs', '-n', NS, '-l', 'app.kubernetes.io/component=operator', '--tail=-1', '--prefix']);
    assert.doesNotMatch(logs, /forbidden/i, 'the chart\'s RBAC refused the operator nothing');
  });

  test('helm3 uninstall removes the release\'s objects and keeps the CRDs and the experiments in them', async () => {
    ok(await helm(['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '3m']), 'helm3 uninstall');
    assert.equal((await helm(['status', RELEASE, '-n', NS])).code, 1, 'the release is gone');
    const selector = `app.kubernetes.io/instance=${RELEASE}`;
    // The test Pod is a hook Helm does not uninstall (it is kept for `helm test --logs`; teardown.sh removes it).
    const namespaced = 'deployments.apps,replicasets,services,configmaps,secrets,serviceaccounts,roles,rolebindings,jobs,poddisruptionbudgets,networkpolicies';
    await waitFor(async () => (await kubectl(['get', namespaced, '-n', NS, '-l', selector, '-o', 'name'])).trim() === '', {
      timeoutMs: 60_000,
      what: 'every namespaced object of the release to go',
    });
    await waitFor(async () => (await kubectl(['get', 'pods', '-n', NS, '-l', selector, '-o', 'name'])).trim() === `pod/${RELEASE}-test`, {
      timeoutMs: 60_000,
      what: 'the operator pods to go, leaving only the test Pod',
    });
    assert.equal((await kubectl(['get', 'clusterroles,clusterrolebindings,trainingclusters,resourceclasses', '-l', selector, '-o', 'name'])).trim(), '');
    const crds = (await kubectl(['get', 'crd', '-o', 'name'])).trim().split('\n').filter((n) => n.includes('arena.agilerl.com'));
    assert.deepEqual(crds.sort(), CRD_NAMES.map((n) => `customresourcedefinition.apiextensions.k8s.io/${n}`).sort());
    assert.match(await kubectl(['get', 'experiments.arena.agilerl.com', '-n', 'team-a', '-o', 'name']), /live/);
  });
});
