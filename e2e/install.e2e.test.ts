// Install and ship: the Helm chart rendered and linted with its schema, then the setup bundle installed into a real
// control plane where the operator's pods truly run (a local node maps the operator image to this checkout's
// operator), validated, tested with `helm test`, upgraded with live objects, scaled down and torn down.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { LocalCluster, resolveBinDir } from './cluster/control-plane.ts';
import { createGpuNodes, gpuProducts, gpuTaint } from './cluster/gpu-nodes.ts';
import { waitFor } from './cluster/wait.ts';
import type { LocalNode } from './node/local-node.ts';
import { Arena, experiment } from './support/fixtures.ts';
import { issueRunToken } from '../operator/credentials/run-token.ts';
import { startOperatorImageNode } from './support/operator-node.ts';
import { ok, sh, type Result } from './support/sh.ts';
import { localClusterValues, previousChart } from './support/charts.ts';
import { buildBundle } from '../bundle/build.ts';
import { chartDir } from '../bundle/chart-sync.ts';

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: unknown };

const binDir = resolveBinDir();
const helm = join(binDir, 'helm');

async function template(args: string[], chart = chartDir): Promise<{ result: Result; objects: K8sObject[] }> {
  const result = await sh(helm, ['template', 'arena-operator', chart, '--namespace', 'arena-system', ...args]);
  const objects = result.code === 0 ? parseAllDocuments(result.stdout).map((d) => d.toJS() as K8sObject).filter(Boolean) : [];
  return { result, objects };
}

const find = (objs: K8sObject[], kind: string, pred: (o: K8sObject) => boolean = () => true) => objs.filter((o) => o.kind === kind && pred(o));
const one = (objs: K8sObject[], kind: string, pred?: (o: K8sObject) => boolean) => {
  const found = find(objs, kind, pred);
  assert.equal(found.length, 1, `expected one ${kind}, found ${found.length}`);
  return found[0]!;
};
type Container = { name: string; image: string; command?: string[]; args?: string[]; env?: { name: string; value?: string; valueFrom?: unknown }[]; [k: string]: unknown };
const podSpecOf = (o: K8sObject) => ((o.kind === 'Pod' ? o.spec : (o.spec as { template: { spec: unknown } }).template.spec) as { containers: Container[]; [k: string]: unknown });

describe('the arena-operator chart', () => {
  test('helm lint passes with the schema', async () => {
    ok(await sh(helm, ['lint', '--strict', chartDir]), 'helm lint');
  });

  test('the default render: two replicas with leader election, probes, a locked-down pod, named ports', async () => {
    const { result, objects } = await template([]);
    ok(result, 'helm template');
    const dep = one(objects, 'Deployment');
    const spec = dep.spec as { replicas: number };
    assert.equal(spec.replicas, 2);
    const pod = podSpecOf(dep) as { containers: Container[]; securityContext: Record<string, unknown>; affinity: unknown; topologySpreadConstraints: unknown[] };
    const c = pod.containers[0]!;
    assert.deepEqual(c.command, ['arena-operator']);
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
    assert.deepEqual(env.POD_NAME, { fieldRef: { fieldPath: 'metadata.name' } });
    assert.deepEqual(env.POD_NAMESPACE, { fieldRef: { fieldPath: 'metadata.namespace' } });
    assert.equal(env.ARENA_REPORT_URL, 'https://arena-operator.arena-system.svc:8080');
    assert.equal((c.livenessProbe as { httpGet: { path: string } }).httpGet.path, '/healthz');
    assert.equal((c.readinessProbe as { httpGet: { path: string } }).httpGet.path, '/readyz');
    assert.ok((c.resources as { limits: Record<string, string> }).limits.memory, 'memory limit');
    assert.ok((c.resources as { requests: Record<string, string> }).requests.cpu, 'cpu request');
    assert.deepEqual(c.securityContext, {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
    assert.ok(JSON.stringify(pod.affinity).includes('kubernetes.io/hostname'), 'anti-affinity between replicas');
    assert.equal(pod.topologySpreadConstraints.length, 1);
    assert.deepEqual((c.ports as { name: string }[]).map((p) => p.name), ['https', 'metrics', 'webhook']);
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) assert.equal((c[probe] as { httpGet: { port: string } }).httpGet.port, 'metrics', `${probe} on the plain-HTTP metrics port`);
    for (const arg of ['--metrics-port=8081', '--api-tls-secret=arena-operator-api-tls', '--ca-configmap=arena-operator-ca']) assert.ok(c.args?.includes(arg), arg);
    assert.ok(!c.args?.includes('--api-tls-secret-supplied'), 'the operator makes its own certificate by default');
    assert.ok(c.args?.includes('--webhook-service-name=arena-operator-webhook'), 'the webhook is on, behind its Service');

    const pdb = one(objects, 'PodDisruptionBudget');
    assert.equal((pdb.spec as { maxUnavailable: number }).maxUnavailable, 1);
    const services = find(objects, 'Service');
    assert.deepEqual(services.map((s) => s.metadata.name).sort(), ['arena-operator', 'arena-operator-metrics', 'arena-operator-webhook']);
    for (const s of services) for (const p of (s.spec as { ports: { name?: string }[] }).ports) assert.ok(p.name, `${s.metadata.name} port has a name`);
    const np = one(objects, 'NetworkPolicy');
    const ports = (np.spec as { ingress: { ports: { port: string }[] }[] }).ingress.map((r) => r.ports[0]!.port);
    assert.deepEqual(ports, ['https', 'metrics', 'webhook']);
    const svcPorts = Object.fromEntries(services.map((s) => [s.metadata.name, (s.spec as { ports: { name: string; port: number; targetPort: string }[] }).ports.map((p) => `${p.name}:${p.port}->${p.targetPort}`)]));
    assert.deepEqual(svcPorts['arena-operator'], ['https:8080->https']);
    assert.deepEqual(svcPorts['arena-operator-metrics'], ['metrics:8081->metrics'], 'metrics have a port of their own');
    assert.equal(find(objects, 'ServiceMonitor').length, 0, 'no ServiceMonitor unless enabled');
  });

  test('the NetworkPolicy names a namespace with every outside peer: a pod label a tenant can set lets nobody in', async () => {
    type Peer = { namespaceSelector?: Record<string, unknown>; podSelector?: { matchLabels?: Record<string, string> }; ipBlock?: unknown };
    type Rule = { ports: { port: string }[]; from?: Peer[] };
    const rulesOf = (objects: K8sObject[]) => Object.fromEntries(((one(objects, 'NetworkPolicy').spec as { ingress: Rule[] }).ingress).map((r) => [r.ports[0]!.port, r.from ?? []]));
    const { result, objects } = await template([]);
    ok(result, 'helm template');
    const rules = rulesOf(objects);
    for (const [port, peers] of Object.entries(rules)) {
      if (port === 'webhook') continue;
      for (const peer of peers) {
        const inReleaseNamespace = !peer.namespaceSelector && peer.podSelector?.matchLabels?.['app.kubernetes.io/component'] === 'helm-test';
        if (inReleaseNamespace) continue;
        assert.ok(peer.namespaceSelector && Object.keys(peer.namespaceSelector).length > 0, `${port}: ${JSON.stringify(peer)} selects its namespace`);
        assert.ok(peer.podSelector, `${port}: the namespace and the pods are one peer: ${JSON.stringify(peer)}`);
      }
    }
    assert.deepEqual(rules.https![0], {
      namespaceSelector: { matchLabels: { 'arena.agilerl.com/workloads': 'true' } },
      podSelector: { matchLabels: { 'app.kubernetes.io/managed-by': 'arena-operator', 'app.kubernetes.io/component': 'worker' } },
    });
    assert.deepEqual(rules.metrics![0], { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } } });
    assert.equal(rules.metrics!.length, 2, 'Prometheus and the helm test, nobody else');

    const custom = rulesOf((await template(['--set', 'networkPolicy.prometheus.namespaceSelector.matchLabels.team=obs', '--set', 'networkPolicy.workerNamespaceSelector.matchLabels.arena=on'])).objects);
    assert.deepEqual(custom.metrics![0]!.namespaceSelector, { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring', team: 'obs' } });
    assert.deepEqual(custom.https![0]!.namespaceSelector, { matchLabels: { 'arena.agilerl.com/workloads': 'true', arena: 'on' } });
  });

  test('an empty namespace selector (every namespace) is refused at install, naming the value', async () => {
    for (const key of ['networkPolicy.workerNamespaceSelector', 'networkPolicy.prometheus.namespaceSelector']) {
      // Values merge into the defaults, so null is how a user ends up with {} (every namespace).
      const { result } = await template(['--set', `${key}.matchLabels=null`]);
      assert.notEqual(result.code, 0, `${key}={} must not render`);
      assert.match(result.stderr, new RegExp(key.split('.').join('.*')), result.stderr);
    }
  });

  test('the API certificate: made by the operator by default, or an administrator\'s Secret, read only', async () => {
    const rbacRules = (objects: K8sObject[]) => one(objects, 'Role', (o) => o.metadata.name === 'arena-operator' && !o.metadata.annotations?.['helm.sh/hook']).rules as { resources: string[]; verbs: string[]; resourceNames?: string[] }[];
    const updatable = (objects: K8sObject[]) => rbacRules(objects).filter((r) => r.resources.includes('secrets') && r.verbs.includes('update')).flatMap((r) => r.resourceNames ?? []);
    const made = await template([]);
    ok(made.result, 'helm template');
    assert.ok(updatable(made.objects).includes('arena-operator-api-tls'), 'the leader rotates the certificate it made');
    const supplied = await template(['--set', 'apiTls.existingSecret=corp-tls', '--set', 'apiTls.dnsNames[0]=status.example.com']);
    ok(supplied.result, 'helm template');
    const args = podSpecOf(one(supplied.objects, 'Deployment')).containers[0]!.args ?? [];
    for (const arg of ['--api-tls-secret=corp-tls', '--api-tls-secret-supplied', '--api-tls-dns-name=status.example.com']) assert.ok(args.includes(arg), arg);
    assert.ok(!updatable(supplied.objects).includes('corp-tls'), 'an administrator\'s Secret is never written');
    const cluster = one(supplied.objects, 'ClusterRole', (o) => o.metadata.name === 'arena-operator').rules as { resources: string[]; verbs: string[]; resourceNames?: string[] }[];
    assert.deepEqual(cluster.filter((r) => r.resourceNames?.includes('arena-operator-ca')).map((r) => r.verbs), [['list', 'watch', 'update']]);
  });

  test('RBAC has no wildcards and grants Secrets, Leases and nodes only as far as needed', async () => {
    const { result, objects } = await template([]);
    ok(result, 'helm template');
    type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
    for (const role of [...find(objects, 'ClusterRole'), ...find(objects, 'Role')]) {
      for (const rule of role.rules as Rule[]) {
        for (const field of [rule.apiGroups, rule.resources, rule.verbs, rule.resourceNames ?? []]) {
          assert.ok(!field.includes('*'), `${role.kind} ${role.metadata.name} has a wildcard: ${JSON.stringify(rule)}`);
        }
      }
    }
    const rules = (kind: string, name: string) => one(objects, kind, (o) => o.metadata.name === name && !o.metadata.annotations?.['helm.sh/hook']).rules as Rule[];
    const verbsOn = (rs: Rule[], resource: string) => rs.filter((r) => r.resources.includes(resource)).flatMap((r) => r.verbs).sort();
    const cluster = rules('ClusterRole', 'arena-operator');
    assert.deepEqual(verbsOn(cluster, 'nodes'), ['list', 'watch']);
    assert.deepEqual(verbsOn(cluster, 'pods'), ['create', 'delete', 'list', 'watch']);
    // Secrets elsewhere are only handed out: run tokens and API keys derive from the signing key, never read back.
    assert.deepEqual(verbsOn(cluster, 'secrets'), ['create', 'delete']);
    assert.deepEqual(verbsOn(cluster, 'experiments'), ['get', 'list', 'watch']);
    assert.deepEqual(verbsOn(cluster, 'experiments/status'), ['patch'], 'status is only ever merge-patched');
    assert.equal(verbsOn(cluster, 'leases').length, 0, 'Leases only through the namespaced Role');
    const ns = rules('Role', 'arena-operator');
    assert.deepEqual(verbsOn(ns, 'leases'), ['create', 'get', 'update']);
    assert.deepEqual(verbsOn(ns, 'secrets'), ['create', 'get', 'list', 'update', 'watch']);
    // Secrets in its namespace are named: the signing key, the status API tokens and the webhook certificate.
    for (const r of ns.filter((x) => x.resources.includes('secrets') && !x.verbs.includes('create'))) {
      assert.deepEqual(
        r.resourceNames?.sort(),
        r.verbs.includes('update') ? ['arena-operator-api-tls', 'arena-operator-webhook-tls'] : ['arena-operator-api-tls', 'arena-operator-signing-key', 'arena-operator-status-api', 'arena-operator-webhook-tls'],
      );
    }
    const webhookRules = cluster.filter((r) => r.resources.includes('validatingwebhookconfigurations'));
    assert.deepEqual(webhookRules.map((r) => [r.verbs.join(','), r.resourceNames ?? []]), [['create', []], ['get,list,watch,update', ['arena-operator']]]);
  });

  test('the status API token is never made by the chart: renders are identical, and tokens in values win', async () => {
    const [a, b] = [await template([]), await template([])];
    ok(a.result, 'helm template');
    assert.equal(a.result.stdout, b.result.stdout, 'two renders of the same values are the same, so a GitOps sync changes nothing');
    assert.equal(find(a.objects, 'Secret').filter((o) => o.metadata.name === 'arena-operator-status-api').length, 0);
    const env = (objects: K8sObject[]) => Object.fromEntries((podSpecOf(one(objects, 'Deployment', () => true)).containers[0]!.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env(a.objects).ARENA_STATUS_API_CREATE_TOKEN, 'true');
    const given = await template(['--set', 'statusApi.tokens.platform=a-token-from-values']);
    ok(given.result, 'helm template');
    const secret = one(given.objects, 'Secret', (o) => o.metadata.name === 'arena-operator-status-api') as K8sObject & { data: Record<string, string> };
    assert.equal(Buffer.from(secret.data.platform!, 'base64').toString(), 'a-token-from-values');
    assert.equal(env(given.objects).ARENA_STATUS_API_CREATE_TOKEN, undefined);
  });

  test('the Lease the operator elects with is the one its Role grants, and a value renames both', async () => {
    for (const [args, lease] of [
      [[], 'arena-operator'],
      [['--set', 'leaderElection.leaseName=team-b-operator'], 'team-b-operator'],
    ] as const) {
      const { result, objects } = await template([...args]);
      ok(result, 'helm template');
      const role = one(objects, 'Role', (o) => o.metadata.name === 'arena-operator').rules as { resources: string[]; verbs: string[]; resourceNames?: string[] }[];
      assert.deepEqual(role.filter((r) => r.resources.includes('leases') && r.verbs.includes('update')).map((r) => r.resourceNames), [[lease]]);
      const container = podSpecOf(one(objects, 'Deployment', () => true)).containers[0]!;
      assert.ok((container.args ?? []).includes(`--lease-name=${lease}`), JSON.stringify(container.args));
    }
  });

  test('one value moves every image to an air-gapped registry; digests pin them', async () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const { result, objects } = await template(['--set', 'global.imageRegistry=mirror.internal:5000', '--set', `image.digest=${digest}`]);
    ok(result, 'helm template');
    const images = [...find(objects, 'Deployment'), ...find(objects, 'Job'), ...find(objects, 'Pod')].flatMap((o) => podSpecOf(o).containers.map((c) => c.image));
    const tc = one(objects, 'TrainingCluster');
    const bundle = (tc.spec as { setupBundle: { version: string; images: { runtime: string; operator: string } } }).setupBundle;
    images.push(bundle.images.runtime, bundle.images.operator);
    assert.equal(images.length, 5);
    for (const image of images) assert.match(image, /^mirror\.internal:5000\/agilerl\/arena-(operator|runtime):0\.1\.0/);
    assert.equal(bundle.images.operator, `mirror.internal:5000/agilerl/arena-operator:0.1.0@${digest}`);
    assert.equal(bundle.version, '0.1.0');
  });

  test('the training cluster and resource classes come from values, with the bundle version', async () => {
    const values = {
      bundleVersion: '2.3.4',
      trainingCluster: { name: 'lab', workerNodeSelector: { pool: 'gpu' } },
      resourceClasses: [
        { name: 'a100-x2', nodes: 2, worker: { cpu: '8', memory: '64Gi', gpus: 8, gpuProduct: gpuProducts.A100.product } },
        { name: 'cpu', nodes: 1, trainingCluster: 'other' },
      ],
    };
    const dir = await mkdtemp(join(tmpdir(), 'arena-values-'));
    await writeFile(join(dir, 'v.yaml'), stringify(values));
    const { result, objects } = await template(['-f', join(dir, 'v.yaml')]);
    await rm(dir, { recursive: true });
    ok(result, 'helm template');
    const tc = one(objects, 'TrainingCluster');
    assert.equal(tc.metadata.name, 'lab');
    const spec = tc.spec as Record<string, unknown>;
    assert.deepEqual(spec.workerNodeSelector, { pool: 'gpu' });
    assert.equal((spec.setupBundle as { version: string }).version, '2.3.4');
    assert.equal(spec.create, undefined);
    const classes = find(objects, 'ResourceClass');
    assert.deepEqual(classes.map((c) => [c.metadata.name, (c.spec as { trainingCluster: string }).trainingCluster]), [['a100-x2', 'lab'], ['cpu', 'other']]);
    assert.equal((classes[0]!.spec as { name?: string }).name, undefined);
  });

  const badValues: { name: string; args: string[]; message: RegExp }[] = [
    { name: 'zero replicas', args: ['--set', 'replicaCount=0'], message: /replicaCount/ },
    { name: 'a latest tag', args: ['--set', 'image.tag=latest'], message: /tag latest is not allowed/ },
    { name: 'a misspelt key', args: ['--set', 'replicas=2'], message: /replicas/ },
    { name: 'a class without nodes', args: ['--set', 'resourceClasses[0].name=x'], message: /resourceClasses\/0.*nodes|nodes/ },
    { name: 'a GPU count that is not a number', args: ['--set', 'resourceClasses[0].name=x', '--set', 'resourceClasses[0].nodes=1', '--set-string', 'resourceClasses[0].worker.gpus=four'], message: /resourceClasses\/0\/worker\/gpus/ },
    { name: 'an unknown class field', args: ['--set', 'resourceClasses[0].name=x', '--set', 'resourceClasses[0].nodes=1', '--set', 'resourceClasses[0].worker.gpu=4'], message: /worker.*gpu/ },
    { name: 'two checkpoint stores', args: ['--set', 'trainingCluster.checkpointStorage.hostPath.path=/data'], message: /checkpointStorage/ },
    { name: 'a bundle version with a v', args: ['--set', 'bundleVersion=v1.2.0'], message: /bundleVersion/ },
    { name: 'a bad digest', args: ['--set', 'image.digest=sha256:abc'], message: /image\/digest|digest/ },
    { name: 'a ServiceMonitor without its CRD', args: ['--set', 'metrics.serviceMonitor.enabled=true'], message: /ServiceMonitor CRD/ },
    { name: 'a platform URL without a token', args: ['--set', 'platform.url=https://arena.example.com'], message: /platform\.token/ },
  ];
  for (const c of badValues) {
    test(`a wrong value fails with a message: ${c.name}`, async () => {
      const { result } = await template(c.args);
      assert.notEqual(result.code, 0, `expected helm template to fail for ${c.name}`);
      assert.match(result.stderr, c.message);
    });
  }

  test('hostPath checkpoints replace the default claim when it is nulled', async () => {
    const { result, objects } = await template(['--set', 'trainingCluster.checkpointStorage.persistentVolumeClaim=null', '--set', 'trainingCluster.checkpointStorage.hostPath.path=/data']);
    ok(result, 'helm template');
    assert.deepEqual((one(objects, 'TrainingCluster').spec as { checkpointStorage: unknown }).checkpointStorage, { hostPath: { path: '/data' } });
  });

  test('a ServiceMonitor renders when the cluster serves its CRD', async () => {
    const { result, objects } = await template(['--set', 'metrics.serviceMonitor.enabled=true', '--api-versions', 'monitoring.coreos.com/v1/ServiceMonitor']);
    ok(result, 'helm template');
    const sm = one(objects, 'ServiceMonitor');
    assert.equal((sm.spec as { endpoints: { port: string }[] }).endpoints[0]!.port, 'metrics');
  });

  test('every dashboards/*.json becomes a key of the Grafana dashboards ConfigMap', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arena-chart-'));
    const chart = join(dir, 'arena-operator');
    await cp(chartDir, chart, { recursive: true });
    await rm(join(chart, 'dashboards'), { recursive: true, force: true });
    const without = await template([], chart);
    ok(without.result, 'helm template');
    assert.equal(find(without.objects, 'ConfigMap', (o) => o.metadata.name.endsWith('-dashboards')).length, 0, 'none without dashboards');
    await mkdir(join(chart, 'dashboards'));
    await writeFile(join(chart, 'dashboards', 'operator.json'), JSON.stringify({ title: 'Arena operator', panels: [] }));
    await writeFile(join(chart, 'dashboards', 'queues.json'), JSON.stringify({ title: 'Arena queues', panels: [] }));
    const withDash = await template([], chart);
    await rm(dir, { recursive: true });
    ok(withDash.result, 'helm template');
    const cm = one(withDash.objects, 'ConfigMap', (o) => o.metadata.name === 'arena-operator-dashboards');
    assert.equal(cm.metadata.labels?.grafana_dashboard, '1');
    const data = cm.data as Record<string, string>;
    assert.deepEqual(Object.keys(data).sort(), ['operator.json', 'queues.json']);
    assert.equal((JSON.parse(data['operator.json']!) as { title: string }).title, 'Arena operator');
  });

  test('the CRD upgrade hook carries exactly the chart\'s CRDs; helm test is a test hook', async () => {
    const { result, objects } = await template([]);
    ok(result, 'helm template');
    const hook = one(objects, 'ConfigMap', (o) => o.metadata.name === 'arena-operator-crd-upgrade');
    assert.equal(hook.metadata.annotations?.['helm.sh/hook'], 'pre-install,pre-upgrade');
    const data = hook.data as Record<string, string>;
    for (const file of ['deployments', 'experiments', 'resourceclasses', 'trainingclusters']) {
      const fromChart = parse(await readFile(join(chartDir, 'crds', `arena.agilerl.com_${file}.yaml`), 'utf8')) as unknown;
      assert.deepEqual(JSON.parse(data[`arena.agilerl.com_${file}.json`]!), fromChart, `${file} CRD in the hook`);
    }
    const job = one(objects, 'Job');
    assert.equal(job.metadata.annotations?.['helm.sh/hook'], 'pre-install,pre-upgrade');
    const testPod = one(objects, 'Pod');
    assert.equal(testPod.metadata.annotations?.['helm.sh/hook'], 'test');
    assert.deepEqual(podSpecOf(testPod).containers[0]!.command, ['node', '/opt/arena/helm-test/helm-test.mjs']);
  });

  test('crds.upgrade.enabled=false leaves the hook out and NOTES say how to upgrade CRDs', async () => {
    const { result, objects } = await template(['--set', 'crds.upgrade.enabled=false']);
    ok(result, 'helm template');
    assert.equal(find(objects, 'Job').length, 0);
    const notes = await sh(helm, ['install', 'x', chartDir, '--dry-run=client', '-n', 'arena-system', '--set', 'crds.upgrade.enabled=false']);
    ok(notes, 'helm install --dry-run');
    assert.match(notes.stdout, /kubectl apply --server-side/);
  });
});

describe('the setup bundle', () => {
  test('bundle/build.ts packs the chart, CRDs, pinned images, bundle.json and executable scripts under arena-train/', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arena-bundle-test-'));
    try {
      const op = `registry.example.com/arena/arena-operator:3.1.0@sha256:${'1'.repeat(64)}`;
      const rt = `registry.example.com/arena/arena-runtime:3.1.0@sha256:${'2'.repeat(64)}`;
      const built = await buildBundle({ version: '3.1.0', outDir: dir, images: { operator: op, runtime: rt }, requireDigests: true, helm });
      assert.equal(built.path, join(dir, 'arena-train-3.1.0.tar.gz'));
      assert.deepEqual(built.warnings, []);
      const listing = await sh('tar', ['-tvzf', built.path]);
      ok(listing, 'tar -t');
      const entries = Object.fromEntries(listing.stdout.trim().split('\n').map((l) => [l.split(/\s+/).pop()!, l.split(/\s+/)[0]!]));
      for (const f of ['bundle.json', 'images.txt', 'values.yaml', 'README.md', 'chart/arena-operator-3.1.0.tgz', 'crds/arena.agilerl.com_experiments.yaml']) {
        assert.ok(entries[`arena-train/${f}`], `arena-train/${f} is in the bundle`);
      }
      for (const script of ['setup.sh', 'validate.sh', 'down.sh', 'teardown.sh']) assert.equal(entries[`arena-train/${script}`], '-rwxr-xr-x', `${script} is executable`);
      ok(await sh('tar', ['-xzf', built.path, '-C', dir]), 'tar -x');
      const root = join(dir, 'arena-train');
      const manifest = JSON.parse(await readFile(join(root, 'bundle.json'), 'utf8')) as { schemaVersion: number; bundleVersion: string; chartVersion: string; images: { name: string; reference: string; digest: string }[] };
      assert.equal(manifest.schemaVersion, 1);
      assert.equal(manifest.bundleVersion, '3.1.0');
      assert.equal(manifest.chartVersion, '3.1.0');
      assert.deepEqual(manifest.images.map((i) => [i.name, i.reference]), [['operator', op], ['runtime', rt]]);
      assert.equal(await readFile(join(root, 'images.txt'), 'utf8'), `${op}\n${rt}\n`);
      // The bundle's values install exactly those images and version.
      const { result, objects } = await template(['-f', join(root, 'values.yaml')], join(root, 'chart', 'arena-operator-3.1.0.tgz'));
      ok(result, 'helm template of the packaged chart with the bundle values');
      assert.equal(podSpecOf(one(objects, 'Deployment')).containers[0]!.image, op);
      const tc = one(objects, 'TrainingCluster').spec as { setupBundle: { version: string; images: { runtime: string } }; currentBundleVersion: string };
      assert.deepEqual([tc.setupBundle.version, tc.setupBundle.images.runtime, tc.currentBundleVersion], ['3.1.0', rt, '3.1.0']);
      await assert.rejects(buildBundle({ version: '3.1.0', outDir: dir, requireDigests: true, helm }), /image operator .* has no digest/);
      await assert.rejects(buildBundle({ version: 'v3', outDir: dir, helm }), /semantic version/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// ----------------------------------------------------------------------------------------------------------------

const NS = 'arena-system';
const RELEASE = 'arena-operator';
const CRD_NAMES = ['deployments', 'experiments', 'resourceclasses', 'trainingclusters'].map((p) => `${p}.arena.agilerl.com`);

describe('installing from the setup bundle', { timeout: 900_000 }, () => {
  let cluster: LocalCluster;
  let node: LocalNode;
  let arena: Arena;
  let work: string;
  const bundles: Record<string, string> = {};
  let env: NodeJS.ProcessEnv;
  const kubectl = async (args: string[]) => {
    const r = await sh(join(binDir, 'kubectl'), args, { env });
    ok(r, `kubectl ${args.join(' ')}`);
    return r.stdout;
  };
  const bundleScript = (version: string, script: string, args: string[] = [], extraEnv: NodeJS.ProcessEnv = {}) =>
    sh('bash', [join(bundles[version]!, script), ...args], { env: { ...env, ...extraEnv }, timeoutMs: 600_000 });

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'arena-install-'));
    cluster = await LocalCluster.start();
    env = { ...cluster.env(), NAMESPACE: NS, RELEASE_NAME: RELEASE, TIMEOUT: '120' };
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    // Two GPU nodes (simulated, tainted like a real GPU pool) for workers; the operator runs on the local node.
    await createGpuNodes(kc, { prefix: 'gpu', count: 2, gpus: 4, gpu: gpuProducts.A100, taints: [gpuTaint], labels: { pool: 'gpu' } });

    node = await startOperatorImageNode(kc, cluster.dir);

    // 0.1.0: the chart as a previous release shipped it, so the upgrade to 0.2.0 has a CRD change to carry.
    const oldChart = await previousChart(work);
    const testValues = localClusterValues;
    for (const [version, chart] of [['0.1.0', oldChart], ['0.2.0', chartDir]] as const) {
      const built = await buildBundle({ version, outDir: join(work, 'dist'), chartDir: chart, extraValues: testValues, helm });
      const dir = join(work, `bundle-${version}`);
      await mkdir(dir);
      ok(await sh('tar', ['-xzf', built.path, '-C', dir]), 'unpacking the bundle');
      bundles[version] = join(dir, 'arena-train');
    }
  });

  after(async () => {
    await node?.stop();
    await cluster?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('setup.sh checks the cluster, warns about the missing device plugin and installs the operator', async () => {
    const r = await bundleScript('0.1.0', 'setup.sh');
    ok(r, 'setup.sh');
    assert.match(r.stdout, /GPU nodes: 2 with 8 GPUs allocatable/);
    assert.match(r.stderr, /WARNING: the NVIDIA device plugin DaemonSet was not found/);
    const pods = JSON.parse(await kubectl(['get', 'pods', '-n', NS, '-l', 'app.kubernetes.io/component=operator', '-o', 'json'])) as {
      items: { spec: { nodeName: string }; status: { phase: string } }[];
    };
    assert.equal(pods.items.length, 2);
    for (const p of pods.items) {
      assert.equal(p.spec.nodeName, 'system-0');
      assert.equal(p.status.phase, 'Running');
    }
    // The operator, with the chart's RBAC, issued its webhook certificate and configurations.
    await waitFor(async () => (await sh(join(binDir, 'kubectl'), ['get', 'secret', 'arena-operator-webhook-tls', '-n', NS], { env })).code === 0, {
      timeoutMs: 60_000,
      what: 'the webhook serving certificate',
    });
    assert.match(await kubectl(['get', 'validatingwebhookconfigurations,mutatingwebhookconfigurations', 'arena-operator', '-o', 'name']), /validatingwebhookconfiguration.*\n.*mutatingwebhookconfiguration/s);
    // The hook created the CRDs' content; no hook object is left behind.
    assert.equal((await kubectl(['get', 'jobs,configmaps', '-n', NS, '-l', 'app.kubernetes.io/component=crd-upgrade', '-o', 'name'])).trim(), '');
    // Given no status API tokens, the leader made the Secret with one; the chart holds none that a sync could change.
    await waitFor(async () => (await sh(join(binDir, 'kubectl'), ['get', 'secret', 'arena-operator-status-api', '-n', NS], { env })).code === 0, {
      timeoutMs: 60_000,
      what: 'the status API token Secret',
    });
    const secret = JSON.parse(await kubectl(['get', 'secret', 'arena-operator-status-api', '-n', NS, '-o', 'json'])) as { metadata: { labels: Record<string, string> }; data: Record<string, string> };
    assert.equal(secret.metadata.labels['app.kubernetes.io/managed-by'], 'arena-operator');
    assert.ok(Buffer.from(secret.data.platform!, 'base64').length >= 32);
  });

  test('validate.sh passes: operator ready, CRDs established, training cluster Ready with the bundle Current', async () => {
    const r = await bundleScript('0.1.0', 'validate.sh');
    ok(r, 'validate.sh');
    assert.match(r.stdout, /PASS +deployment\/arena-operator: 2\/2 replicas ready/);
    assert.match(r.stdout, /PASS +4 CRDs established/);
    assert.match(r.stdout, /PASS +trainingcluster\/onprem: bundle 0\.1\.0 \(Current\), Ready=True/);
  });

  test('helm test passes: every ready replica answers /readyz and the CRDs are established', async () => {
    const r = await sh(helm, ['test', RELEASE, '-n', NS, '--logs', '--timeout', '3m'], { env });
    ok(r, 'helm test');
    assert.match(r.stdout, /Phase: +Succeeded/);
    assert.match(r.stdout, /2 ready pod\(s\) of 2/);
    assert.match(r.stdout, /PASSED/);
  });

  test('the operator\'s ServiceAccount can do what it needs and nothing it does not', async () => {
    await kubectl(['create', 'namespace', 'team-a']);
    const sa = `system:serviceaccount:${NS}:${RELEASE}`;
    const can = async (args: string[]) => (await sh(join(binDir, 'kubectl'), ['auth', 'can-i', ...args, `--as=${sa}`], { env })).stdout.trim();
    const allowed: string[][] = [
      ['create', 'pods', '-n', 'team-a'],
      ['delete', 'pods', '-n', 'team-a'],
      ['watch', 'pods', '--all-namespaces'],
      ['list', 'nodes'],
      ['create', 'secrets', '-n', 'team-a'],
      ['delete', 'secrets', '-n', 'team-a'],
      ['create', 'services', '-n', 'team-a'],
      ['create', 'configmaps', '-n', 'team-a'],
      ['patch', 'experiments.arena.agilerl.com', '--subresource=status', '-n', 'team-a'],
      ['patch', 'trainingclusters.arena.agilerl.com', '--subresource=status'],
      ['watch', 'deployments.arena.agilerl.com', '--all-namespaces'],
      ['create', 'events.events.k8s.io', '-n', 'team-a'],
      ['create', 'leases.coordination.k8s.io', '-n', NS],
      ['update', 'leases.coordination.k8s.io/arena-operator', '-n', NS],
      ['get', 'secrets/arena-operator-status-api', '-n', NS],
      ['watch', 'secrets/arena-operator-signing-key', '-n', NS],
      ['create', 'deployments.apps', '-n', 'team-a'],
      ['create', 'ingresses.networking.k8s.io', '-n', 'team-a'],
      ['update', 'secrets/arena-operator-webhook-tls', '-n', NS],
      ['update', 'validatingwebhookconfigurations.admissionregistration.k8s.io/arena-operator'],
    ];
    const denied: string[][] = [
      ['delete', 'nodes'],
      ['patch', 'nodes'],
      ['update', 'secrets', '-n', 'team-a'],
      ['get', 'secrets', '-n', 'team-a'],
      ['list', 'secrets', '--all-namespaces'],
      ['watch', 'secrets', '--all-namespaces'],
      ['get', 'secrets/someone-elses', '-n', NS],
      ['patch', 'secrets', '-n', NS],
      ['patch', 'pods', '-n', 'team-a'],
      ['create', 'pods', '--subresource=exec', '-n', 'team-a'],
      ['get', 'pods', '--subresource=log', '-n', 'team-a'],
      ['update', 'experiments.arena.agilerl.com', '-n', 'team-a'],
      ['update', 'experiments.arena.agilerl.com', '--subresource=status', '-n', 'team-a'],
      ['get', 'trainingclusters.arena.agilerl.com', '--subresource=status'],
      ['delete', 'experiments.arena.agilerl.com', '-n', 'team-a'],
      ['create', 'trainingclusters.arena.agilerl.com'],
      ['create', 'leases.coordination.k8s.io', '-n', 'kube-system'],
      ['update', 'leases.coordination.k8s.io/kube-scheduler', '-n', 'kube-system'],
      ['update', 'leases.coordination.k8s.io/someone-else', '-n', NS],
      ['update', 'configmaps', '-n', 'team-a'],
      ['list', 'configmaps', '--all-namespaces'],
      ['list', 'persistentvolumeclaims', '--all-namespaces'],
      ['patch', 'deployments.apps', '-n', 'team-a'],
      ['create', 'statefulsets.apps', '-n', 'team-a'],
      ['create', 'clusterroles'],
      ['delete', 'customresourcedefinitions'],
      ['create', 'serviceaccounts/token', '-n', NS],
      ['update', 'secrets/arena-operator-status-api', '-n', NS],
      ['update', 'validatingwebhookconfigurations.admissionregistration.k8s.io/someone-elses'],
      ['delete', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/arena-operator'],
    ];
    for (const a of allowed) assert.equal(await can(a), 'yes', `the operator should be able to ${a.join(' ')}`);
    for (const d of denied) assert.equal(await can(d), 'no', `the operator should not be able to ${d.join(' ')}`);

    // People: the built-in edit role (bound in a namespace) gains experiments and agents; reading the cluster-scoped
    // classes takes the chart's cluster-view binding (alice has it, bob does not).
    await kubectl(['create', 'rolebinding', 'ml-edit', '--clusterrole=edit', '--user=alice', '--user=bob', '-n', 'team-a']);
    const user = async (who: string, args: string[]) => (await sh(join(binDir, 'kubectl'), ['auth', 'can-i', ...args, `--as=${who}`], { env })).stdout.trim();
    await waitFor(async () => (await user('alice', ['create', 'experiments.arena.agilerl.com', '-n', 'team-a'])) === 'yes', {
      timeoutMs: 30_000,
      what: 'the edit role to aggregate the arena rules',
    });
    assert.equal(await user('bob', ['patch', 'deployments.arena.agilerl.com', '-n', 'team-a']), 'yes');
    assert.equal(await user('bob', ['create', 'experiments.arena.agilerl.com', '-n', 'team-b']), 'no');
    assert.equal(await user('alice', ['list', 'resourceclasses.arena.agilerl.com']), 'yes');
    assert.equal(await user('bob', ['list', 'resourceclasses.arena.agilerl.com']), 'no');
    assert.equal(await user('alice', ['update', 'trainingclusters.arena.agilerl.com']), 'no');
  });

  test('upgrading to the next bundle replaces the CRDs and keeps every experiment and deployment', async () => {
    const ns = 'team-b';
    await arena.namespace(ns);
    await arena.apply(experiment(ns, 'live', 'a100-x1'));
    await arena.apply(experiment(ns, 'idle', 'a100-x1', { action: 'Draft' }));
    await arena.custom.createNamespacedCustomObject({
      group: 'arena.agilerl.com',
      version: 'v1alpha1',
      plural: 'deployments',
      namespace: ns,
      body: { apiVersion: 'arena.agilerl.com/v1alpha1', kind: 'Deployment', metadata: { name: 'agent' }, spec: { source: { experiment: 'live' } } },
    });
    // The operator running in its pods admits and runs the experiment on a simulated GPU node.
    const running = await arena.waitPhase(ns, 'live', 'Running', 90_000);
    // Its run token is derived from the signing key the leader made, not read back from the Secret it handed out.
    const signing = await arena.core.readNamespacedSecret({ namespace: NS, name: 'arena-operator-signing-key' });
    const key = Buffer.from(signing.data!.key!, 'base64');
    assert.equal(
      await arena.runToken(ns, running),
      issueRunToken(key, running.metadata!.uid!, { namespace: ns, name: 'live', run: running.status!.run!, attempt: running.status!.attempt!, worker: 0 }),
    );
    // The API serves TLS for its Service name, and the workers' namespace holds the CAs to verify it with.
    const apiTls = await arena.core.readNamespacedSecret({ namespace: NS, name: 'arena-operator-api-tls' });
    const text = (k: string) => Buffer.from(apiTls.data![k]!, 'base64').toString('utf8');
    assert.ok(new X509Certificate(text('tls.crt')).checkHost('arena-operator.arena-system.svc'), 'the certificate names the Service');
    const caMap = await arena.core.readNamespacedConfigMap({ namespace: ns, name: 'arena-operator-ca' });
    assert.equal(caMap.data?.['ca.crt'], text('ca-bundle.crt'));
    const [worker] = await arena.workerPods(ns, running);
    assert.ok(worker!.spec!.volumes!.some((v) => v.configMap?.name === 'arena-operator-ca'), 'the worker mounts the CA ConfigMap');
    const before = JSON.parse(await kubectl(['get', 'experiments.arena.agilerl.com,deployments.arena.agilerl.com', '-n', ns, '-o', 'json'])) as {
      items: { kind: string; metadata: { name: string; uid: string } }[];
    };
    const colsBefore = await kubectl(['get', 'crd', 'experiments.arena.agilerl.com', '-o', 'jsonpath={.spec.versions[0].additionalPrinterColumns[*].name}']);
    assert.doesNotMatch(colsBefore, /Reason/);

    const r = await bundleScript('0.2.0', 'setup.sh');
    ok(r, 'setup.sh of 0.2.0');
    const colsAfter = await kubectl(['get', 'crd', 'experiments.arena.agilerl.com', '-o', 'jsonpath={.spec.versions[0].additionalPrinterColumns[*].name}']);
    assert.match(colsAfter, /Reason/, 'the pre-upgrade hook replaced the Experiment CRD');
    const history = await sh(helm, ['history', RELEASE, '-n', NS, '-o', 'json'], { env });
    assert.deepEqual((JSON.parse(history.stdout) as { chart: string }[]).map((h) => h.chart), ['arena-operator-0.1.0', 'arena-operator-0.2.0']);

    const after = JSON.parse(await kubectl(['get', 'experiments.arena.agilerl.com,deployments.arena.agilerl.com', '-n', ns, '-o', 'json'])) as typeof before;
    assert.deepEqual(
      after.items.map((o) => `${o.kind}/${o.metadata.name}/${o.metadata.uid}`).sort(),
      before.items.map((o) => `${o.kind}/${o.metadata.name}/${o.metadata.uid}`).sort(),
      'no experiment or deployment lost or recreated',
    );
    const stillRunning = await arena.getExperiment(ns, 'live');
    assert.equal(stillRunning.status?.phase, 'Running');
    assert.equal(stillRunning.status?.attempt, running.status?.attempt, 'the run was not restarted by the upgrade');

    const v = await bundleScript('0.2.0', 'validate.sh');
    ok(v, 'validate.sh of 0.2.0');
    assert.match(v.stdout, /trainingcluster\/onprem: bundle 0\.2\.0 \(Current\)/);
    const tcl = await kubectl(['get', 'tcl', 'onprem', '-o', 'jsonpath={.spec.setupBundle.version} {.spec.setupBundle.images.runtime}']);
    assert.equal(tcl, '0.2.0 ghcr.io/agilerl/arena-runtime:0.2.0');
    // One of the new replicas takes the lease once the old leader's pod has gone (the rolling update starts the new
    // pods first, so at first they only observe the old leader).
    const operatorLogs = () => kubectl(['logs', '-n', NS, '-l', 'app.kubernetes.io/component=operator', '--tail=-1', '--prefix']);
    await waitFor(async () => /"msg":"leading"/.test(await operatorLogs()), { timeoutMs: 60_000, what: 'one of the new replicas to lead' });
    // Whatever the operator did so far, the chart's RBAC let it: no request of its was refused.
    assert.doesNotMatch(await operatorLogs(), /forbidden/i);
  });

  test('down.sh scales the operator to 0 and keeps the release; setup.sh brings it back', async () => {
    ok(await bundleScript('0.2.0', 'down.sh'), 'down.sh');
    await waitFor(async () => (await kubectl(['get', 'pods', '-n', NS, '-l', 'app.kubernetes.io/component=operator', '-o', 'name'])).trim() === '', {
      timeoutMs: 60_000,
      what: 'the operator pods to go',
    });
    const status = await sh(helm, ['status', RELEASE, '-n', NS, '-o', 'json'], { env });
    assert.equal((JSON.parse(status.stdout) as { info: { status: string } }).info.status, 'deployed');
    ok(await bundleScript('0.2.0', 'setup.sh'), 'setup.sh after down.sh');
    assert.equal(await kubectl(['get', 'deployment', RELEASE, '-n', NS, '-o', 'jsonpath={.status.readyReplicas}']), '2');
  });

  test('teardown.sh leaves only the CRDs and their objects; --delete-crds leaves nothing', async () => {
    ok(await bundleScript('0.2.0', 'teardown.sh'), 'teardown.sh');
    const selector = `app.kubernetes.io/instance=${RELEASE}`;
    const namespaced = 'deployments.apps,replicasets,pods,services,configmaps,secrets,serviceaccounts,roles,rolebindings,jobs,poddisruptionbudgets,networkpolicies';
    await waitFor(async () => (await kubectl(['get', namespaced, '-A', '-l', selector, '-o', 'name'])).trim() === '', {
      timeoutMs: 60_000,
      what: 'every namespaced object of the release to go',
    });
    const clusterScoped = (await kubectl(['get', 'clusterroles,clusterrolebindings,trainingclusters,resourceclasses', '-l', selector, '-o', 'name'])).trim();
    assert.doesNotMatch(await kubectl(['get', 'clusterroles', '-o', 'name']), /arena-operator/, 'no ClusterRole of the release (the aggregated user roles too)');
    assert.equal(clusterScoped, '', 'no cluster-scoped object of the release is left');
    // Nor what the operator made for itself.
    const made = await kubectl(['get', 'validatingwebhookconfigurations,mutatingwebhookconfigurations', '-o', 'name']);
    assert.doesNotMatch(made, /arena-operator/);
    assert.equal((await kubectl(['get', 'secrets,leases.coordination.k8s.io', '-n', NS, '-o', 'name'])).trim(), '');
    assert.equal((await sh(helm, ['status', RELEASE, '-n', NS], { env })).code, 1, 'the release is gone');
    // What remains by design: the CRDs and the users' objects in them.
    const crds = (await kubectl(['get', 'crd', '-o', 'name'])).trim().split('\n').filter((n) => n.includes('arena.agilerl.com'));
    assert.deepEqual(crds.sort(), CRD_NAMES.map((n) => `customresourcedefinition.apiextensions.k8s.io/${n}`).sort());
    assert.match(await kubectl(['get', 'experiments.arena.agilerl.com', '-n', 'team-b', '-o', 'name']), /live/);

    ok(await bundleScript('0.2.0', 'teardown.sh', ['--delete-crds', '--delete-namespace']), 'teardown.sh --delete-crds');
    const left = (await kubectl(['get', 'crd', '-o', 'name'])).split('\n').filter((n) => n.includes('arena.agilerl.com'));
    assert.deepEqual(left, []);
    assert.equal((await sh(join(binDir, 'kubectl'), ['get', 'namespace', NS], { env })).code, 1, 'the namespace is gone');
  });
});
