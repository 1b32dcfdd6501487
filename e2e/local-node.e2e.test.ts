// The local node against a real control plane: pods bound to it run as processes of this machine, with their
// environment, volumes, pod IP, restarts, graceful deletion and logs as a kubelet would give them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { get } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CoordinationV1Api, CoreV1Api, type KubeConfig, type V1Container, type V1Pod, type V1PodSpec } from '@kubernetes/client-node';
import { LocalCluster } from './cluster/control-plane.ts';
import { waitFor } from './cluster/wait.ts';
import { LocalNode } from './node/local-node.ts';
import { isNotFound } from '../operator/kube/errors.ts';
import { createLogger } from '../operator/observability/log.ts';

const ns = 'default';
const nodeName = 'local-a';

function nodePod(name: string, script: string, spec: Partial<V1PodSpec> = {}, container: Partial<V1Container> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: {
      nodeName,
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 10,
      ...spec,
      containers: [{ name: 'main', image: 'node:24', command: ['node', '-e', script], ...container }],
    },
  };
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

describe('local node', { timeout: 240_000 }, () => {
  let c: LocalCluster;
  let kc: KubeConfig;
  let core: CoreV1Api;
  let node: LocalNode;
  let hostDir: string;

  const read = (name: string) => core.readNamespacedPod({ namespace: ns, name });
  async function waitPod(name: string, what: string, pred: (p: V1Pod) => boolean, timeoutMs = 60_000): Promise<V1Pod> {
    let last: V1Pod | undefined;
    await waitFor(
      async () => {
        last = await read(name);
        return pred(last);
      },
      { timeoutMs, what: `${name}: ${what}` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nlast status: ${JSON.stringify(last?.status, null, 1)}`);
    });
    return last!;
  }
  // Not c.kubectl: that one blocks this process until kubectl exits, and the node serving the logs runs here.
  const kubectl = async (args: string[]) =>
    (await promisify(execFile)(join(c.binDir, 'kubectl'), args, { env: c.env(), encoding: 'utf8' })).stdout;
  const main = (p: V1Pod) => p.status?.containerStatuses?.find((s) => s.name === 'main');

  before(async () => {
    c = await LocalCluster.start();
    kc = c.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    hostDir = join(c.dir, 'host');
    mkdirSync(hostDir, { recursive: true });
    node = await LocalNode.start({
      kc,
      name: nodeName,
      dataDir: join(c.dir, 'node-a'),
      capacity: { cpu: '4', memory: '8Gi', pods: 20 },
      gpus: { count: 2, product: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, computeCapability: '9.0' },
      labels: { 'arena.test/pool': 'local' },
      imageMap: [{ match: /^node(:|@|$)/, command: [process.execPath] }],
      restartBackoff: { initialMs: 300, maxMs: 1000 },
      leaseRenewIntervalMs: 1000,
      // The API server restart below makes the node warn on every retry; errors are what a failing run needs.
      logger: createLogger({ component: 'local-node', level: 'error' }),
    });
    // The ServiceAccount admission plugin refuses pods until the namespace's default account exists.
    await waitFor(() => core.readNamespacedServiceAccount({ namespace: ns, name: 'default' }).then(() => true), {
      timeoutMs: 60_000,
      what: 'the default service account',
    });
  });

  after(async () => {
    await node?.stop();
    await c?.stop();
  });

  test('registers a Ready node with its capacity, GFD labels and kubelet endpoint', async () => {
    const n = await core.readNode({ name: nodeName });
    assert.equal(n.status?.capacity?.['nvidia.com/gpu'], '2');
    assert.equal(n.status?.allocatable?.cpu, '4');
    assert.equal(n.status?.capacity?.memory, '8Gi');
    assert.deepEqual(
      Object.fromEntries(Object.entries(n.metadata?.labels ?? {}).filter(([k]) => k.startsWith('nvidia.com/') || k.startsWith('arena.'))),
      {
        'arena.test/pool': 'local',
        'nvidia.com/gpu.present': 'true',
        'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3',
        'nvidia.com/gpu.memory': '81559',
        'nvidia.com/gpu.count': '2',
        'nvidia.com/gpu.compute.major': '9',
        'nvidia.com/gpu.compute.minor': '0',
      },
    );
    assert.equal(n.status?.conditions?.find((x) => x.type === 'Ready')?.status, 'True');
    assert.equal(n.status?.daemonEndpoints?.kubeletEndpoint?.Port, node.kubeletPort);
    assert.ok(n.status?.addresses?.some((a) => a.type === 'InternalIP' && a.address === '127.0.0.1'));
  });

  test('keeps its Lease in kube-node-lease fresh', async () => {
    const leases = kc.makeApiClient(CoordinationV1Api);
    const first = await leases.readNamespacedLease({ namespace: 'kube-node-lease', name: nodeName });
    assert.equal(first.spec?.holderIdentity, nodeName);
    const t0 = new Date(first.spec!.renewTime!).getTime();
    await waitFor(
      async () => {
        const l = await leases.readNamespacedLease({ namespace: 'kube-node-lease', name: nodeName });
        return new Date(l.spec!.renewTime!).getTime() > t0;
      },
      { timeoutMs: 10_000, what: 'the lease renewTime to advance' },
    );
  });

  test('a pod sees its env, downward API, Secret and ConfigMap, and Succeeds', async () => {
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'probe-cfg' }, data: { greeting: 'hello', 'app.yaml': 'steps: 3\n' } },
    });
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'probe-secret' }, stringData: { token: 's3cret' } },
    });
    await core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: { metadata: { name: 'env-data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
    });
    const out = join(hostDir, 'env-out');
    const script = `
      const fs = require('node:fs'), os = require('node:os');
      const pick = ['PLAIN','EXPANDED','MY_POD','MY_NS','MY_UID','MY_NODE','MY_IP','POD_IP','MY_LABEL','CPU_LIMIT','MEM_MI',
        'TOKEN','GREETING','CM_greeting','HOME','HOSTNAME','CUDA_VISIBLE_DEVICES'];
      const env = Object.fromEntries(pick.map((k) => [k, process.env[k]]));
      const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
      const files = {
        config: fs.readFileSync('/etc/arena-test/config/app.yaml', 'utf8'),
        secret: fs.readFileSync('/etc/arena-test/secret/token', 'utf8'),
        secretMode: (fs.statSync('/etc/arena-test/secret/token').mode & 0o777).toString(8),
        labels: fs.readFileSync('/etc/arena-test/info/labels', 'utf8'),
        saNamespace: fs.readFileSync(sa + '/namespace', 'utf8'),
        saToken: fs.readFileSync(sa + '/token', 'utf8').length > 0,
        hosts: fs.readFileSync('/etc/hosts', 'utf8'),
        subPath: fs.readFileSync('/etc/arena-test-app.yaml', 'utf8'),
      };
      fs.writeFileSync('/data/claim/written-by-pod', 'kept');
      fs.writeFileSync('/scratch/note', 'x');
      fs.writeFileSync('/out/result.json', JSON.stringify({ env, files, cwd: process.cwd(), hostname: os.hostname(),
        scratch: fs.readdirSync('.') }));
      console.log('env check done');`;
    await core.createNamespacedPod({
      namespace: ns,
      body: nodePod(
        'env-check',
        script,
        {
          volumes: [
            { name: 'cfg', configMap: { name: 'probe-cfg' } },
            { name: 'sec', secret: { secretName: 'probe-secret' } },
            { name: 'info', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
            { name: 'out', hostPath: { path: out, type: 'DirectoryOrCreate' } },
            { name: 'scratch', emptyDir: {} },
            { name: 'claim', persistentVolumeClaim: { claimName: 'env-data' } },
          ],
        },
        {
          workingDir: '/scratch',
          resources: { limits: { cpu: '2', memory: '256Mi', 'nvidia.com/gpu': '1' } },
          env: [
            { name: 'PLAIN', value: 'plain' },
            { name: 'EXPANDED', value: '$(PLAIN)-expanded' },
            { name: 'MY_POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'MY_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
            { name: 'MY_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
            { name: 'MY_NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
            { name: 'MY_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'MY_LABEL', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
            { name: 'CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
            { name: 'MEM_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
            { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'probe-secret', key: 'token' } } },
            { name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'probe-cfg', key: 'greeting' } } },
          ],
          envFrom: [{ prefix: 'CM_', configMapRef: { name: 'probe-cfg' } }],
          volumeMounts: [
            { name: 'cfg', mountPath: '/etc/arena-test/config' },
            { name: 'sec', mountPath: '/etc/arena-test/secret' },
            { name: 'info', mountPath: '/etc/arena-test/info' },
            { name: 'out', mountPath: '/out' },
            { name: 'scratch', mountPath: '/scratch' },
            { name: 'cfg', mountPath: '/etc/arena-test-app.yaml', subPath: 'app.yaml' },
            { name: 'claim', mountPath: '/data/claim' },
          ],
        },
      ),
    });
    const pod = await waitPod('env-check', 'Succeeded', (p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed');
    assert.equal(pod.status?.phase, 'Succeeded', JSON.stringify(pod.status));
    const term = main(pod)?.state?.terminated;
    assert.equal(term?.exitCode, 0);
    assert.equal(term?.reason, 'Completed');
    assert.equal(pod.status?.conditions?.find((x) => x.type === 'Ready')?.reason, 'PodCompleted');

    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as {
      env: Record<string, string>;
      files: Record<string, string | boolean>;
      cwd: string;
      hostname: string;
      scratch: string[];
    };
    const podIP = pod.status?.podIP ?? '';
    assert.match(podIP, /^127\.200\.\d+\.\d+$/);
    assert.deepEqual(result.env, {
      PLAIN: 'plain',
      EXPANDED: 'plain-expanded',
      MY_POD: 'env-check',
      MY_NS: ns,
      MY_UID: pod.metadata?.uid,
      MY_NODE: nodeName,
      MY_IP: podIP,
      POD_IP: podIP,
      MY_LABEL: 'env-check',
      CPU_LIMIT: '2',
      MEM_MI: '256',
      TOKEN: 's3cret',
      GREETING: 'hello',
      CM_greeting: 'hello',
      HOME: '/root',
      HOSTNAME: 'env-check',
      CUDA_VISIBLE_DEVICES: '0',
    });
    assert.equal(result.files.config, 'steps: 3\n');
    assert.equal(result.files.secret, 's3cret');
    assert.equal(result.files.secretMode, '400');
    assert.equal(result.files.labels, 'app="env-check"');
    assert.equal(result.files.saNamespace, ns);
    assert.equal(result.files.saToken, true);
    assert.equal(result.files.subPath, 'steps: 3\n');
    // An unbound claim is a directory of the node's own, which outlives the pod.
    assert.equal(readFileSync(join(c.dir, 'node-a', 'claims', ns, 'env-data', 'written-by-pod'), 'utf8'), 'kept');
    assert.match(String(result.files.hosts), new RegExp(`${podIP.replaceAll('.', '\\.')}\\tenv-check`));
    assert.equal(result.cwd, '/scratch');
    assert.equal(result.hostname, 'env-check');
    assert.deepEqual(result.scratch, ['note']);
    // The mountPaths existed only inside the container's mount namespace.
    for (const p of ['/etc/arena-test', '/etc/arena-test-app.yaml', '/out', '/scratch', '/data/claim']) assert.equal(existsSync(p), false, `${p} leaked onto the host`);

    assert.equal(await kubectl(['logs', '-n', ns, 'env-check']), 'env check done\n');
  });

  test('an exit code of 3 fails the pod with exitCode 3', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: nodePod('exit-three', 'console.error("bye"); process.exit(3)', {}, { terminationMessagePolicy: 'FallbackToLogsOnError' }),
    });
    const pod = await waitPod('exit-three', 'Failed', (p) => p.status?.phase === 'Failed');
    const term = main(pod)?.state?.terminated;
    assert.equal(term?.exitCode, 3);
    assert.equal(term?.reason, 'Error');
    assert.equal(term?.message, 'bye\n', 'the log tail is the termination message');
    assert.equal(main(pod)?.restartCount, 0);
    assert.equal(await kubectl(['logs', '-n', ns, 'exit-three']), 'bye\n');
  });

  test('restartPolicy OnFailure restarts a failing container until it succeeds', async () => {
    // Fails twice, then succeeds: the emptyDir outlives the container's restarts.
    const script = `
      const fs = require('node:fs');
      const n = fs.existsSync('/state/n') ? Number(fs.readFileSync('/state/n', 'utf8')) : 0;
      fs.writeFileSync('/state/n', String(n + 1));
      console.log('attempt ' + n + ' after ' + fs.readFileSync('/state/init', 'utf8'));
      process.exit(n < 2 ? 1 : 0);`;
    const body = nodePod(
      'on-failure',
      script,
      { restartPolicy: 'OnFailure', volumes: [{ name: 'state', emptyDir: {} }] },
      { volumeMounts: [{ name: 'state', mountPath: '/state' }] },
    );
    body.spec!.initContainers = [
      {
        name: 'prepare',
        image: 'node:24',
        command: ['node', '-e', 'require("node:fs").writeFileSync("/state/init", "init")'],
        volumeMounts: [{ name: 'state', mountPath: '/state' }],
      },
    ];
    await core.createNamespacedPod({ namespace: ns, body });
    const pod = await waitPod('on-failure', 'Succeeded', (p) => p.status?.phase === 'Succeeded');
    const s = main(pod);
    assert.equal(s?.restartCount, 2);
    assert.equal(s?.state?.terminated?.exitCode, 0);
    assert.equal(s?.lastState?.terminated?.exitCode, 1);
    assert.equal(pod.status?.initContainerStatuses?.[0]?.state?.terminated?.exitCode, 0);
    assert.equal(pod.status?.conditions?.find((x) => x.type === 'Initialized')?.status, 'True');
    assert.equal(await kubectl(['logs', '-n', ns, 'on-failure']), 'attempt 2 after init\n');
    assert.equal(await kubectl(['logs', '-n', ns, 'on-failure', '--previous']), 'attempt 1 after init\n');
  });

  test('deleting a pod sends SIGTERM to its process and removes the object', async () => {
    const markerDir = join(hostDir, 'term');
    const script = `
      const fs = require('node:fs');
      process.on('SIGTERM', () => { fs.writeFileSync('/out/marker', 'got SIGTERM'); console.log('stopping'); process.exit(0); });
      setInterval(() => {}, 1000);
      console.log('waiting for SIGTERM');`;
    await core.createNamespacedPod({
      namespace: ns,
      body: nodePod(
        'graceful',
        script,
        { restartPolicy: 'Always', volumes: [{ name: 'out', hostPath: { path: markerDir, type: 'DirectoryOrCreate' } }] },
        { volumeMounts: [{ name: 'out', mountPath: '/out' }] },
      ),
    });
    await waitPod('graceful', 'Running and Ready', (p) => p.status?.phase === 'Running' && main(p)?.ready === true);
    await waitFor(async () => (await kubectl(['logs', '-n', ns, 'graceful'])).includes('waiting for SIGTERM'), {
      timeoutMs: 20_000,
      what: 'the SIGTERM handler to be installed',
    });
    const pid = node.podProcesses()[`${ns}/graceful`]?.main;
    assert.ok(pid, 'the node reports the pid');
    // Follows the log until the container exits.
    const followed = kubectl(['logs', '-f', '-n', ns, 'graceful']);
    await new Promise((r) => setTimeout(r, 500));
    await core.deleteNamespacedPod({ namespace: ns, name: 'graceful' });
    assert.equal(await followed, 'waiting for SIGTERM\nstopping\n');
    await waitFor(
      () =>
        read('graceful').then(
          () => false,
          (err: unknown) => isNotFound(err),
        ),
      { timeoutMs: 30_000, what: 'the pod object to disappear' },
    );
    assert.equal(readFileSync(join(markerDir, 'marker'), 'utf8'), 'got SIGTERM');
    assert.equal(existsSync(`/proc/${pid}`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('SIGTERM'), false);
    assert.equal(node.podProcesses()[`${ns}/graceful`], undefined);
  });

  test('an image without a mapping leaves the pod Pending with a clear reason', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: nodePod('unmapped', '', {}, { image: 'registry.example.com/team/trainer:1.0', command: ['train'] }),
    });
    const pod = await waitPod('unmapped', 'ErrImageNeverPull', (p) => main(p)?.state?.waiting?.reason === 'ErrImageNeverPull');
    assert.equal(pod.status?.phase, 'Pending');
    assert.match(main(pod)?.state?.waiting?.message ?? '', /image "registry\.example\.com\/team\/trainer:1\.0" is not mapped to a local command/);
  });

  test('pods get distinct loopback IPs, listen on them, pass readiness probes and restart after a crash', async () => {
    const server = `
      const http = require('node:http');
      http.createServer((req, res) => res.end(process.env.HOSTNAME)).listen(8080, process.env.POD_IP, () => console.log('listening'));`;
    const serving = (name: string) =>
      nodePod(name, server, { restartPolicy: 'Always' }, {
        ports: [{ name: 'http', containerPort: 8080 }],
        readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
      });
    await core.createNamespacedPod({ namespace: ns, body: serving('web-a') });
    await core.createNamespacedPod({ namespace: ns, body: serving('web-b') });
    const ready = (p: V1Pod) => p.status?.conditions?.find((x) => x.type === 'Ready')?.status === 'True';
    const a = await waitPod('web-a', 'Ready', ready);
    const b = await waitPod('web-b', 'Ready', ready);
    assert.notEqual(a.status?.podIP, b.status?.podIP);
    for (const p of [a, b]) {
      assert.match(p.status?.podIP ?? '', /^127\.200\./);
      assert.deepEqual(p.status?.podIPs?.map((x) => x.ip), [p.status?.podIP]);
      assert.equal(p.status?.hostIP, '127.0.0.1');
      assert.equal(await httpGet(`http://${p.status?.podIP}:8080/`), p.metadata?.name);
    }

    assert.equal(node.kill(`${ns}/web-a`, 'SIGKILL'), 1);
    const restarted = await waitPod('web-a', 'restarted and Ready', (p) => (main(p)?.restartCount ?? 0) >= 1 && ready(p));
    assert.equal(main(restarted)?.lastState?.terminated?.exitCode, 137);
    assert.equal(restarted.status?.podIP, a.status?.podIP, 'the pod keeps its IP across restarts');
  });

  test('a failing liveness probe (exec, inside the container) restarts the container', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: nodePod('unhealthy', 'setInterval(() => {}, 1000)', { restartPolicy: 'Always', terminationGracePeriodSeconds: 1 }, {
        livenessProbe: { exec: { command: ['sh', '-c', 'test "$(hostname)" = nobody'] }, periodSeconds: 1, failureThreshold: 1 },
      }),
    });
    const pod = await waitPod('unhealthy', 'restarted by its liveness probe', (p) => (main(p)?.restartCount ?? 0) >= 1);
    assert.equal(main(pod)?.lastState?.terminated?.exitCode, 143);
    const events = await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=unhealthy' });
    assert.ok(
      events.items.some((e) => e.reason === 'Unhealthy' && /Liveness probe failed: command exited 1/.test(e.message ?? '')),
      JSON.stringify(events.items.map((e) => [e.reason, e.message])),
    );
    await core.deleteNamespacedPod({ namespace: ns, name: 'unhealthy', gracePeriodSeconds: 0 });
  });

  test('a node with probed GPUs and a taint runs a pod the scheduler placed, and is deleted on stop', async () => {
    const gpuNode = await LocalNode.start({
      kc,
      name: 'local-b',
      dataDir: join(c.dir, 'node-b'),
      capacity: { cpu: '2', memory: '4Gi' },
      gpus: { probe: async () => ({ gpus: [{ name: 'NVIDIA L4', memoryMiB: 23034, computeCapability: '8.9' }] }) },
      taints: [{ key: 'nvidia.com/gpu', value: 'true', effect: 'NoSchedule' }],
      imageMap: [{ match: /^node(:|@|$)/, command: [process.execPath] }],
      onStop: 'delete',
    });
    try {
      const n = await core.readNode({ name: 'local-b' });
      assert.equal(n.metadata?.labels?.['nvidia.com/gpu.product'], 'NVIDIA-L4');
      assert.equal(n.metadata?.labels?.['nvidia.com/gpu.compute.minor'], '9');
      assert.equal(n.status?.capacity?.['nvidia.com/gpu'], '1');
      assert.ok(n.spec?.taints?.some((t) => t.key === 'nvidia.com/gpu'));

      const body = nodePod('scheduled-gpu', 'console.log("gpus=" + process.env.CUDA_VISIBLE_DEVICES)', {
        nodeName: undefined,
        nodeSelector: { 'kubernetes.io/hostname': 'local-b' },
        tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      }, { resources: { limits: { 'nvidia.com/gpu': '1' } } });
      await core.createNamespacedPod({ namespace: ns, body });
      const pod = await waitPod('scheduled-gpu', 'Succeeded', (p) => p.status?.phase === 'Succeeded');
      assert.equal(pod.spec?.nodeName, 'local-b');
      assert.equal(await kubectl(['logs', '-n', ns, 'scheduled-gpu']), 'gpus=0\n');
    } finally {
      await gpuNode.stop();
    }
    await assert.rejects(core.readNode({ name: 'local-b' }), (err: unknown) => isNotFound(err));
  });

  test('keeps working across an API server restart', async () => {
    await c.stopComponent('kube-apiserver');
    await c.startComponent('kube-apiserver');
    await core.createNamespacedPod({ namespace: ns, body: nodePod('after-restart', 'console.log("still here")') });
    await waitPod('after-restart', 'Succeeded', (p) => p.status?.phase === 'Succeeded', 90_000);
    const leases = kc.makeApiClient(CoordinationV1Api);
    const renewed = new Date((await leases.readNamespacedLease({ namespace: 'kube-node-lease', name: nodeName })).spec!.renewTime!);
    assert.ok(Date.now() - renewed.getTime() < 10_000, `lease last renewed at ${renewed.toISOString()}`);
  });

  test('stopping the node ends every process it started and marks the Node NotReady', async () => {
    const pids = Object.values(node.podProcesses()).flatMap((byContainer) => Object.values(byContainer));
    assert.ok(pids.length >= 2, `running processes: ${pids.join(', ')}`);
    const leases = node.leaseRenewals();
    assert.ok(leases >= 2, `lease renewals so far: ${leases}`);
    const n = await core.readNode({ name: nodeName });
    assert.equal(n.status?.conditions?.find((x) => x.type === 'Ready')?.status, 'True', 'still Ready after the whole suite');
    await node.stop();
    for (const pid of pids) assert.equal(existsSync(`/proc/${pid}`), false, `pid ${pid} outlived the node`);
    const after = await core.readNode({ name: nodeName });
    assert.equal(after.status?.conditions?.find((x) => x.type === 'Ready')?.status, 'False');
  });
});
