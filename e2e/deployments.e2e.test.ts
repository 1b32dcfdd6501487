// Agents end to end: a real control plane, the operator in process, a local node that runs pods as processes, and
// the real runtime: a DQN CartPole experiment trains, its checkpoints become agents, and the agents serve
// get_action from their pods. Pod IPs are loopback addresses of this machine; nothing else is dialled.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiextensionsV1Api, AppsV1Api, CustomObjectsApi, NetworkingV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { waitFor } from './cluster/wait.ts';
import type { LocalNode } from './node/local-node.ts';
import { startLocalOperator, startRuntimeNode } from './support/runtime-node.ts';
import { Agents, Arena, deployment, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { quickDqn } from './support/manifests.ts';
import { agilerlActions } from './support/agilerl.ts';
import type { RunningOperator } from '../operator/operator.ts';
import { createLogger } from '../operator/observability/log.ts';
import { Informer } from '../operator/kube/informer.ts';
import type { Deployment } from '../operator/api/v1alpha1/deployment.ts';
import type { Experiment } from '../operator/api/v1alpha1/experiment.ts';
import type { Manifest } from '../operator/api/v1alpha1/manifest.ts';
import { decodeNpyBase64, encodeNpyBase64, ndarray, type NdArray } from '../runtime/npy/npy.ts';

const manifest = (maxSteps: number): Manifest => quickDqn(maxSteps);
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const ns = 'agents';

interface Call {
  status: number;
  body: Record<string, unknown>;
}

/** POST /get_action to a pod of the agent with CartPole observations (one, unless given). */
async function getAction(ip: string, key?: string, obs: NdArray = ndarray('f4', [1, 4], [0.01, -0.02, 0.03, 0.01])): Promise<Call> {
  const res = await fetch(`http://${ip}:8000/get_action`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ obs: encodeNpyBase64(obs), batch_size: obs.shape[0] }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** `count` CartPole observations spread wider than training saw, so that both actions come up. */
function observations(count: number): NdArray {
  const scale = [2.4, 3, 0.21, 3];
  const values: number[] = [];
  for (let i = 0; i < count; i++) for (let j = 0; j < 4; j++) values.push(Math.sin(i * 12.9898 + j * 78.233) * scale[j]!);
  return ndarray('f4', [count, 4], values);
}

describe('agents: checkpoints served by the real runtime on a local node', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let agents: Agents;
  let node: LocalNode;
  let op: RunningOperator;
  let checkpoints: string;
  let trained: Experiment;
  /** Every phase:reason each agent went through, as the watch delivered its statuses. */
  const history = new Map<string, string[]>();
  let watcher: Informer<Deployment>;

  const servingPod = async (d: Deployment): Promise<V1Pod & { status: { podIP: string } }> => {
    const pods = (await agents.pods(ns, d)).filter((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    assert.equal(pods.length, 1, `one ready inference pod (${pods.map((p) => p.metadata?.name).join(', ')})`);
    const ip = pods[0]!.status!.podIP!;
    assert.match(ip, /^127\./, 'pod IPs of the local node are loopback addresses');
    return pods[0] as V1Pod & { status: { podIP: string } };
  };
  const phasesOf = (name: string) => history.get(name) ?? [];

  before(async () => {
    cluster = await LocalCluster.start({ without: ['kwok'] });
    await installCrds(cluster);
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    agents = new Agents(arena);
    checkpoints = join(cluster.dir, 'checkpoints');
    mkdirSync(checkpoints, { recursive: true });
    node = await startRuntimeNode(kc, { dataDir: join(cluster.dir, 'node') });
    op = await startLocalOperator(kc, {
      progressIntervalMs: 1000,
      deployments: {
        // Fast enough for a test; the network rule of this machine: only loopback addresses are ever dialled.
        health: { intervalMs: 300, timeoutMs: 500, failureThreshold: 3, allowedCidrs: ['127.0.0.0/8'] },
        // Longer than a model process's restart (Python, torch and the checkpoint) on a loaded 2-core machine.
        unhealthyTimeoutMs: 45_000,
        // The local node has no pod network namespaces: each server listens on its own pod IP.
        bindHost: '$(POD_IP)',
        discoveryTtlMs: 1000,
      },
    });
    await arena.apply(trainingCluster('local', { setupBundle: { version: '1.0.0', images: { runtime: 'registry.local/arena-runtime:1.0.0' } }, checkpointStorage: { mountPath: '/checkpoints', hostPath: { path: checkpoints } } }));
    await arena.apply(resourceClass('cpu', 'local', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 0 } }));
    await arena.namespace(ns);
    watcher = new Informer<Deployment>({ kc, group: 'arena.agilerl.com', version: 'v1alpha1', plural: 'deployments', namespace: ns, logger: createLogger({ silent: true }) });
    const record = (d: Deployment) => {
      const list = history.get(d.metadata!.name!) ?? [];
      const entry = `${d.status?.phase}:${d.status?.reason}`;
      if (d.status?.phase && list.at(-1) !== entry) list.push(entry);
      history.set(d.metadata!.name!, list);
    };
    watcher.on('add', record).on('update', record);
    await watcher.start();

    await arena.apply(experiment(ns, 'cartpole', 'cpu', { manifest: manifest(3000), stopGracePeriodSeconds: 30 }));
    trained = await arena.waitExperiment(ns, 'cartpole', (s) => s.phase === 'Succeeded' || s.phase === 'Failed', 'training to finish', 240_000);
    assert.equal(trained.status?.phase, 'Succeeded', JSON.stringify(trained.status?.lastFailure));
    assert.ok((trained.status?.checkpoints?.length ?? 0) >= 3, 'a few checkpoints to choose from');
  });
  after(async () => {
    watcher?.stop();
    await op?.stop();
    await node?.stop();
    await cluster?.stop();
  });

  test('an agent from the best checkpoint is Deployed, serves get_action with its key, and refuses others', async () => {
    await agents.create(deployment(ns, 'best', 'cartpole', { connected: true, source: { experiment: 'cartpole', checkpoint: 'best' } }));
    const d = await agents.waitPhase(ns, 'best', 'Deployed', 120_000);
    const s = d.status!;
    const best = trained.status!.bestCheckpoint!;
    assert.equal(s.checkpoint?.step, best.step);
    assert.equal(s.checkpoint?.evaluationScore, best.evaluationScore);
    assert.equal(s.checkpoint?.location, trained.status!.checkpoints!.find((c) => c.step === best.step)!.location);
    assert.equal(s.endpoint?.inferencePath, 'get_action');
    assert.deepEqual(s.endpoint?.paths, ['/status', '/get_action']);
    assert.equal(s.endpoint?.serviceURL, `http://best-inference.${ns}.svc`);
    assert.equal(s.endpoint?.url, undefined, 'no external URL without an exposure domain');
    assert.equal(s.health?.consecutiveFailures, 0);
    assert.ok(phasesOf('best').some((p) => p.startsWith('Pending:')), `it was Pending first (${phasesOf('best').join(' → ')})`);

    const pod = await servingPod(d);
    const key = await agents.apiKey(ns, d);
    const call = await getAction(pod.status.podIP, key);
    assert.equal(call.status, 200, JSON.stringify(call.body));
    const action = decodeNpyBase64(call.body.action as string);
    assert.deepEqual(action.shape, [1]);
    assert.ok([0, 1].includes(Number(action.data[0])), `a CartPole action (${action.data[0]})`);
    const status = (await (await fetch(`http://${pod.status.podIP}:8000/status`)).json()) as { deployment_id: string; agent: { algo: string } };
    assert.equal(status.deployment_id, s.deploymentId);
    assert.equal(status.agent.algo, 'DQN');

    assert.equal((await getAction(pod.status.podIP)).status, 401, 'no key');
    assert.equal((await getAction(pod.status.podIP, `${key}x`)).status, 403, 'a wrong key');

    // What the agent keeps besides its pods.
    const svc = await arena.core.readNamespacedService({ namespace: ns, name: 'best-inference' });
    assert.equal(svc.spec?.selector?.['arena.agilerl.com/agent-uid'], d.metadata!.uid);
    const cm = await arena.core.readNamespacedConfigMap({ namespace: ns, name: 'best-agent-manifest' });
    assert.equal(cm.immutable, true);
    assert.equal((JSON.parse(cm.data!['manifest.json']!) as Manifest).algorithm.name, 'DQN');
    // The key is in its Secret and nowhere else.
    assert.ok(!JSON.stringify(d).includes(key), 'the key is not in the agent');
    const events = await arena.core.listNamespacedEvent({ namespace: ns });
    assert.ok(events.items.length > 0);
    assert.ok(!JSON.stringify(events.items).includes(key), 'the key is in no event');
    assert.ok(events.items.some((e) => e.reason === 'Deployed' && e.involvedObject.name === 'best'), 'a Deployed event');
  });

  test('the agent answers exactly what AgileRL\'s own get_action returns for the checkpoint it serves', async () => {
    const d = await agents.waitPhase(ns, 'best', 'Deployed', 120_000);
    const obs = observations(256);
    const call = await getAction((await servingPod(d)).status.podIP, await agents.apiKey(ns, d), obs);
    assert.equal(call.status, 200, JSON.stringify(call.body));
    const served = decodeNpyBase64(call.body.action as string);
    const expected = await agilerlActions(join(checkpoints, d.status!.checkpoint!.location.slice('/checkpoints/'.length)), obs);
    assert.deepEqual(served.shape, [256]);
    assert.deepEqual([...served.data].map(Number), [...expected.data].map(Number));
    const counts = [0, 1].map((a) => [...served.data].filter((x) => Number(x) === a).length);
    assert.ok(counts.every((n) => n > 0), `both actions come up (${counts.join('/')}), so the comparison can tell policies apart`);
  });

  test('final and specific choose their steps; sources that cannot be resolved wait with their reason', async () => {
    const list = trained.status!.checkpoints!;
    const finalStep = Math.max(...list.map((c) => c.step));
    const first = list[0]!.step;
    await arena.apply(experiment(ns, 'draft', 'cpu', { action: 'Draft', manifest: manifest(3000) }));
    await agents.create(deployment(ns, 'final', 'cartpole', { source: { experiment: 'cartpole', checkpoint: 'final' } }));
    await agents.create(deployment(ns, 'specific', 'cartpole', { source: { experiment: 'cartpole', checkpoint: 'specific', step: first } }));
    await agents.create(deployment(ns, 'no-source', 'ghost', { connected: true }));
    await agents.create(deployment(ns, 'no-step', 'cartpole', { connected: true, source: { experiment: 'cartpole', checkpoint: 'specific', step: 123_457 } }));
    await agents.create(deployment(ns, 'no-checkpoints', 'draft', { connected: true }));

    const f = await agents.wait(ns, 'final', (s) => s.checkpoint !== undefined, 'a checkpoint');
    assert.equal(f.status!.checkpoint!.step, finalStep);
    assert.equal(f.status!.phase, 'Undeployed', 'not connected: Undeployed with its checkpoint frozen');
    const sp = await agents.wait(ns, 'specific', (s) => s.checkpoint !== undefined, 'a checkpoint');
    assert.equal(sp.status!.checkpoint!.step, first);
    for (const [name, reason] of [
      ['no-source', 'SourceNotFound'],
      ['no-step', 'CheckpointNotFound'],
      ['no-checkpoints', 'NoCheckpoints'],
    ] as const) {
      const d = await agents.wait(ns, name, (s) => s.reason === reason, reason);
      assert.equal(d.status!.phase, 'Pending');
      assert.equal(d.status!.checkpoint, undefined);
      assert.ok(d.status!.message!.length > 10, d.status!.message);
    }
    assert.match((await agents.get(ns, 'no-step')).status!.message!, /step 123457/);
    for (const name of ['no-source', 'no-step', 'no-checkpoints']) await agents.delete(ns, name);
  });

  test('disconnect keeps the record, key and checkpoint and removes the pods; connect serves again with the same key', async () => {
    const before = await agents.get(ns, 'best');
    const key = await agents.apiKey(ns, before);
    await agents.patch(ns, 'best', { connected: false });
    const off = await agents.waitPhase(ns, 'best', 'Undeployed');
    assert.deepEqual(off.status!.checkpoint, before.status!.checkpoint);
    assert.equal(off.status!.apiKeySecretName, before.status!.apiKeySecretName);
    assert.equal(off.status!.endpoint, undefined);
    await waitFor(async () => (await agents.pods(ns, off)).length === 0, { timeoutMs: 60_000, what: 'the inference pods to go' });
    const apps = cluster.kubeConfig().makeApiClient(AppsV1Api);
    await waitFor(async () => (await apps.listNamespacedDeployment({ namespace: ns })).items.length === 0, { timeoutMs: 30_000, what: 'the workload to go' });
    await arena.core.readNamespacedSecret({ namespace: ns, name: off.status!.apiKeySecretName! });
    await arena.core.readNamespacedService({ namespace: ns, name: 'best-inference' });
    // Someone deletes the key Secret while the agent is off: the new pods' operator recreates it with the same
    // key (derived, never stored elsewhere), so clients keep working.
    await arena.core.deleteNamespacedSecret({ namespace: ns, name: off.status!.apiKeySecretName! });

    await agents.patch(ns, 'best', { connected: true });
    const on = await agents.waitPhase(ns, 'best', 'Deployed', 120_000);
    assert.deepEqual(on.status!.checkpoint, before.status!.checkpoint);
    assert.equal(await agents.apiKey(ns, on), key, 'the recreated Secret holds the same key');
    assert.equal((await getAction((await servingPod(on)).status.podIP, key)).status, 200, 'the same key works');
  });

  test('a killed inference process makes the agent Pending until its restart serves again', async (t) => {
    const d = await agents.get(ns, 'best');
    const pod = await servingPod(d);
    const mark = phasesOf('best').length;
    assert.equal(node.kill(`${ns}/${pod.metadata!.name}`, 'SIGKILL'), 1);
    await agents.wait(ns, 'best', () => phasesOf('best').slice(mark).some((p) => p.startsWith('Pending:')), 'Pending after the kill', 30_000);
    const back = await agents.wait(ns, 'best', (s) => s.phase === 'Deployed' && phasesOf('best').at(-1) === 'Deployed:Serving', 'Deployed again', 60_000);
    const seen = phasesOf('best').slice(mark);
    t.diagnostic(seen.join(' → '));
    // Whichever notices first, the node (the pod turns NotReady) or the operator's own prober (its checks fail),
    // the agent is Pending with that reason; on a loaded machine either can win.
    assert.ok(['Pending:PodsNotReady', 'Pending:HealthCheckFailing'].includes(seen[0]!), seen.join(' → '));
    assert.ok(seen.slice(0, -1).every((p) => p.startsWith('Pending:')), `only Pending on the way back: ${seen.join(' → ')}`);
    const key = await agents.apiKey(ns, back);
    assert.equal((await getAction((await servingPod(back)).status.podIP, key)).status, 200);
  });

  test('an endpoint that stops answering goes Pending by the operator\'s checks, recovers, and is Failed when it does not', async (t) => {
    const d = await agents.get(ns, 'best');
    const podKey = `${ns}/${(await servingPod(d)).metadata!.name}`;
    const mark = phasesOf('best').length;
    // A frozen process: its port accepts connections and never answers.
    node.kill(podKey, 'SIGSTOP');
    const pending = await agents.wait(ns, 'best', (s) => s.reason === 'HealthCheckFailing', 'HealthCheckFailing', 30_000);
    assert.equal(pending.status!.phase, 'Pending');
    assert.ok(pending.status!.health!.consecutiveFailures >= 3);
    assert.equal(pending.status!.endpoint?.inferencePath, 'get_action', 'the endpoint is kept while it retries');
    const metrics = await (await fetch(`${op.ops.url}/metrics`)).text();
    const failures = Number(/^arena_deployment_health_check_failures_total\{namespace="agents",deployment="best"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
    assert.ok(failures >= 3, `failed checks are counted (${failures})`);
    node.kill(podKey, 'SIGCONT');
    await agents.wait(ns, 'best', () => phasesOf('best').at(-1) === 'Deployed:Serving', 'recovered', 30_000);
    const seen = phasesOf('best').slice(mark);
    t.diagnostic(seen.join(' → '));
    assert.equal(seen[0], 'Pending:HealthCheckFailing', seen.join(' → '));
    assert.ok(seen.slice(0, -1).every((p) => p.startsWith('Pending:')), `only Pending on the way back: ${seen.join(' → ')}`);

    node.kill(podKey, 'SIGSTOP');
    const failed = await agents.wait(ns, 'best', (s) => s.phase === 'Failed', 'Failed', 90_000);
    node.kill(podKey, 'SIGCONT');
    assert.equal(failed.status!.reason, 'Unhealthy', failed.status!.message);
    assert.equal(failed.status!.endpoint, undefined);
    await waitFor(async () => (await agents.pods(ns, failed)).length === 0, { timeoutMs: 60_000, what: 'the failed pods to go' });
    // The user's fix: disconnect, connect.
    await agents.patch(ns, 'best', { connected: false });
    await agents.waitPhase(ns, 'best', 'Undeployed');
    await agents.patch(ns, 'best', { connected: true });
    await agents.waitPhase(ns, 'best', 'Deployed', 120_000);
  });

  test('rotating the key refuses the old one and serves the new one', async () => {
    const before = await agents.get(ns, 'best');
    const oldKey = await agents.apiKey(ns, before);
    await agents.patch(ns, 'best', { keyRotation: 1 });
    const after = await agents.wait(ns, 'best', (s) => s.observedKeyRotation === 1 && s.phase === 'Deployed', 'the new key served', 120_000);
    assert.notEqual(after.status!.apiKeySecretName, before.status!.apiKeySecretName);
    await assert.rejects(arena.core.readNamespacedSecret({ namespace: ns, name: before.status!.apiKeySecretName! }), /404|not found/i, 'the old key Secret is gone');
    const newKey = await agents.apiKey(ns, after);
    assert.notEqual(newKey, oldKey);
    const ip = (await servingPod(after)).status.podIP;
    assert.equal((await getAction(ip, oldKey)).status, 403, 'the old key is refused');
    assert.equal((await getAction(ip, newKey)).status, 200);
  });

  test('a checkpoint that cannot be loaded fails the agent with the server\'s reason; a frozen choice ignores later checkpoints', async () => {
    // An experiment whose only checkpoint is an AgileRL checkpoint folder with a corrupt agent file on the shared storage.
    const dir = join(checkpoints, ns, 'broken', 'step-100');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'agent_0_100.pt'), 'not a torch file');
    writeFileSync(
      join(dir, 'arena-checkpoint.json'),
      JSON.stringify({ format: 'arena.agilerl/v1', step: 100, algorithm: 'DQN', environment: 'CartPole-v1', elite: 'agent_0_100.pt', agents: [{ file: 'agent_0_100.pt', index: 0, steps: 100, fitness: 10 }] }),
    );
    await arena.apply(experiment(ns, 'broken', 'cpu', { action: 'Draft', manifest: manifest(3000) }));
    const ck = (step: number, evaluationScore: number) => ({ run: 1, step, sizeBytes: 48, evaluationScore, trainingScore: evaluationScore, location: `/checkpoints/${ns}/broken/step-${step}`, createdAt: new Date().toISOString() });
    const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
    const setCheckpoints = (list: ReturnType<typeof ck>[]) =>
      custom.patchNamespacedCustomObjectStatus({ group: 'arena.agilerl.com', version: 'v1alpha1', plural: 'experiments', namespace: ns, name: 'broken', body: { status: { checkpoints: list } } }, mergePatch);
    await arena.waitPhase(ns, 'broken', 'Draft');
    await setCheckpoints([ck(100, 10)]);

    await agents.create(deployment(ns, 'corrupt', 'broken', { connected: true }));
    // The server imports torch and AgileRL before it finds the file corrupt: a minute and more on a loaded machine.
    const failed = await agents.waitPhase(ns, 'corrupt', 'Failed', 240_000);
    assert.equal(failed.status!.reason, 'CheckpointLoadFailed', failed.status!.message);
    assert.match(failed.status!.message!, /step-100 cannot be loaded/);
    assert.equal(failed.status!.checkpoint!.step, 100);
    await waitFor(async () => (await agents.pods(ns, failed)).length === 0, { timeoutMs: 60_000, what: 'the failing pods to go' });

    // Frozen: a better checkpoint written later does not move an agent that already chose.
    await setCheckpoints([ck(100, 10), ck(200, 99)]);
    const agentNow = await agents.patch(ns, 'corrupt', { description: 'look again' });
    const again = await agents.wait(ns, 'corrupt', (s) => s.observedGeneration === agentNow.metadata!.generation, 'the edit seen');
    assert.equal(again.status!.checkpoint!.step, 100, 'the frozen step stays');
    // The edit is also a retry of the Failed agent, which fails again for the same reason.
    await agents.wait(ns, 'corrupt', (s) => s.phase === 'Failed' && s.observedGeneration === agentNow.metadata!.generation, 'Failed again', 240_000);
    const fresh = await agents.create(deployment(ns, 'fresh', 'broken'));
    const chosen = await agents.wait(ns, fresh.metadata!.name!, (s) => s.checkpoint !== undefined, 'a checkpoint');
    assert.equal(chosen.status!.checkpoint!.step, 200, 'a new agent chooses among the checkpoints of now');
  });

  test('exposure: an Ingress on inference-<id>.<domain>; an HTTPRoute once the Gateway API is installed', async () => {
    const networking = cluster.kubeConfig().makeApiClient(NetworkingV1Api);
    const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
    const d = await agents.get(ns, 'best');
    const host = `inference-${d.status!.deploymentId}.ai.example.test`;
    await arena.patchCluster('local', { exposure: { domain: 'ai.example.test', ingressClassName: 'nginx' } });
    const exposed = await agents.wait(ns, 'best', (s) => s.endpoint?.url !== undefined, 'an external URL');
    assert.equal(exposed.status!.endpoint!.url, `https://${host}`);
    const ing = await networking.readNamespacedIngress({ namespace: ns, name: 'best-inference' });
    assert.equal(ing.spec?.ingressClassName, 'nginx');
    assert.equal(ing.spec?.rules?.[0]?.host, host);
    assert.equal(ing.spec?.rules?.[0]?.http?.paths[0]?.backend.service?.name, 'best-inference');

    // A gateway, on a cluster without the Gateway API: said in a condition, the agent keeps serving.
    await arena.patchCluster('local', { exposure: { domain: 'ai.example.test', ingressClassName: null, gateway: { parentRefs: [{ name: 'public', namespace: 'gateways' }] } } as never });
    const noApi = await agents.wait(ns, 'best', (s) => s.conditions?.some((c) => c.type === 'Exposed' && c.reason === 'GatewayAPINotInstalled') ?? false, 'GatewayAPINotInstalled');
    assert.equal(noApi.status!.phase, 'Deployed');
    assert.equal(noApi.status!.endpoint!.url, undefined);
    await waitFor(async () => (await networking.listNamespacedIngress({ namespace: ns })).items.length === 0, { timeoutMs: 30_000, what: 'the Ingress to go' });

    // A minimal HTTPRoute kind: the route appears without touching the agent.
    const ext = cluster.kubeConfig().makeApiClient(ApiextensionsV1Api);
    await ext.createCustomResourceDefinition({
      body: {
        // The Gateway API's group is protected; its own CRDs carry this approval too.
        metadata: { name: 'httproutes.gateway.networking.k8s.io', annotations: { 'api-approved.kubernetes.io': 'https://github.com/kubernetes-sigs/gateway-api/pull/1538' } },
        spec: {
          group: 'gateway.networking.k8s.io',
          scope: 'Namespaced',
          names: { plural: 'httproutes', singular: 'httproute', kind: 'HTTPRoute', listKind: 'HTTPRouteList' },
          versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } } }],
        },
      },
    });
    const routed = await agents.wait(ns, 'best', (s) => s.conditions?.some((c) => c.type === 'Exposed' && c.status === 'True') ?? false, 'Exposed', 60_000);
    assert.equal(routed.status!.endpoint!.url, `https://${host}`);
    const route = (await custom.getNamespacedCustomObject({ group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes', namespace: ns, name: 'best-inference' })) as {
      spec: { hostnames: string[]; parentRefs: unknown[]; rules: { backendRefs: { name: string; port: number }[] }[] };
    };
    assert.deepEqual(route.spec.hostnames, [host]);
    assert.deepEqual(route.spec.parentRefs, [{ name: 'public', namespace: 'gateways' }]);
    assert.deepEqual(route.spec.rules[0]!.backendRefs, [{ name: 'best-inference', port: 80 }]);
  });

  test('deleting an agent removes everything it made', async () => {
    const d = await agents.get(ns, 'best');
    const uid = d.metadata!.uid!;
    const selector = `arena.agilerl.com/agent-uid=${uid}`;
    const apps = cluster.kubeConfig().makeApiClient(AppsV1Api);
    const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
    await agents.delete(ns, 'best');
    await waitFor(
      async () => {
        const counts = await Promise.all([
          apps.listNamespacedDeployment({ namespace: ns, labelSelector: selector }).then((l) => l.items.length),
          arena.core.listNamespacedPod({ namespace: ns, labelSelector: selector }).then((l) => l.items.length),
          arena.core.listNamespacedService({ namespace: ns, labelSelector: selector }).then((l) => l.items.length),
          arena.core.listNamespacedSecret({ namespace: ns, labelSelector: selector }).then((l) => l.items.length),
          arena.core.listNamespacedConfigMap({ namespace: ns, labelSelector: selector }).then((l) => l.items.length),
          custom
            .listNamespacedCustomObject({ group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes', namespace: ns, labelSelector: selector })
            .then((l) => (l as { items: unknown[] }).items.length),
        ]);
        return counts.every((n) => n === 0);
      },
      { timeoutMs: 90_000, what: 'the agent\'s workload, pods, Service, Secret, ConfigMap and route to go' },
    );
    assert.equal(op.deployments.prober.tracked().includes(`${ns}/best`), false, 'no health checks of a deleted agent');
  });
});
