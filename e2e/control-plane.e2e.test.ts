// The local control plane itself: real components, simulated GPU nodes, real scheduling.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, VersionApi, type V1Pod } from '@kubernetes/client-node';
import { LocalCluster } from './cluster/control-plane.ts';
import { createGpuNodes, finishPod, gpuProducts, gpuTaint, waitForPod } from './cluster/gpu-nodes.ts';
import { isRunning } from './cluster/processes.ts';
import { waitFor } from './cluster/wait.ts';

function gpuPod(name: string, gpus: number, extra: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    metadata: { name },
    spec: {
      containers: [
        {
          name: 'main',
          image: 'trainer:test',
          resources: { requests: { 'nvidia.com/gpu': String(gpus) }, limits: { 'nvidia.com/gpu': String(gpus) } },
        },
      ],
      tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      ...extra,
    },
  };
}

describe('local control plane', () => {
  let cluster: LocalCluster;
  let core: CoreV1Api;
  const ns = 'default';

  before(async () => {
    cluster = await LocalCluster.start();
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  });
  after(async () => {
    await cluster?.stop();
  });

  test('the API server reports the version it was built from', async () => {
    const info = await cluster.kubeConfig().makeApiClient(VersionApi).getCode();
    assert.match(info.gitVersion, /^v1\.37\.\d+$/);
    assert.equal(info.major, '1');
    assert.equal(info.minor, '37');
    assert.match(cluster.kubectl(['version', '--client', '-o', 'json']), /"gitVersion": "v1\.37\./);
  });

  test('GPU nodes come up Ready with allocatable GPUs and the GPU Feature Discovery labels', async () => {
    const names = await createGpuNodes(cluster.kubeConfig(), {
      prefix: 'a100',
      count: 2,
      gpus: 4,
      gpu: gpuProducts.A100,
      taints: [gpuTaint],
    });
    await createGpuNodes(cluster.kubeConfig(), { prefix: 'cpu', count: 1, gpus: 0 });
    const node = await core.readNode({ name: names[0]! });
    assert.equal(node.status?.allocatable?.['nvidia.com/gpu'], '4');
    const labels = node.metadata?.labels ?? {};
    assert.equal(labels['nvidia.com/gpu.product'], 'NVIDIA-A100-SXM4-80GB');
    assert.equal(labels['nvidia.com/gpu.count'], '4');
    assert.equal(labels['nvidia.com/gpu.memory'], '81920');
    assert.equal(labels['nvidia.com/gpu.compute.major'], '8');
    assert.equal(labels['nvidia.com/gpu.compute.minor'], '0');
    assert.deepEqual(node.spec?.taints?.map((t) => `${t.key}=${t.value}:${t.effect}`), ['nvidia.com/gpu=true:NoSchedule']);
  });

  test('a pod asking for GPUs is bound to a GPU node and runs; one asking for too many stays Pending', async () => {
    await waitFor(async () => (await core.readNamespacedServiceAccount({ namespace: ns, name: 'default' })) != null, {
      timeoutMs: 30_000,
      what: 'the default service account',
    });
    await core.createNamespacedPod({ namespace: ns, body: gpuPod('fits', 3) });
    await core.createNamespacedPod({ namespace: ns, body: gpuPod('too-big', 5) });
    const running = await waitForPod(cluster.kubeConfig(), ns, 'fits', (p) => p.status?.phase === 'Running');
    assert.match(running.spec?.nodeName ?? '', /^a100-/);
    assert.ok(running.status?.podIP, 'a running pod has an IP');

    const pending = await waitForPod(cluster.kubeConfig(), ns, 'too-big', (p) =>
      (p.status?.conditions ?? []).some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable'),
    );
    assert.equal(pending.status?.phase, 'Pending');
    assert.equal(pending.spec?.nodeName, undefined);
    const msg = pending.status?.conditions?.find((c) => c.type === 'PodScheduled')?.message ?? '';
    assert.match(msg, /Insufficient nvidia\.com\/gpu/);
  });

  test('a GPU pod without the toleration is never placed on a tainted GPU node', async () => {
    await core.createNamespacedPod({ namespace: ns, body: gpuPod('no-toleration', 1, { tolerations: [] }) });
    const pod = await waitForPod(cluster.kubeConfig(), ns, 'no-toleration', (p) =>
      (p.status?.conditions ?? []).some((c) => c.type === 'PodScheduled' && c.status === 'False'),
    );
    assert.equal(pod.spec?.nodeName, undefined);
  });

  test('a test can end a simulated pod as Succeeded or Failed, and deletion completes', async () => {
    await core.createNamespacedPod({ namespace: ns, body: gpuPod('ok', 1) });
    await core.createNamespacedPod({ namespace: ns, body: gpuPod('boom', 1) });
    const kc = cluster.kubeConfig();
    await waitForPod(kc, ns, 'ok', (p) => p.status?.phase === 'Running');
    await waitForPod(kc, ns, 'boom', (p) => p.status?.phase === 'Running');
    await finishPod(kc, ns, 'ok', 'Succeeded');
    await finishPod(kc, ns, 'boom', 'Failed');
    const ok = await waitForPod(kc, ns, 'ok', (p) => p.status?.phase === 'Succeeded');
    assert.equal(ok.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0);
    const boom = await waitForPod(kc, ns, 'boom', (p) => p.status?.phase === 'Failed');
    assert.equal(boom.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 1);

    await core.deleteNamespacedPod({ namespace: ns, name: 'ok' });
    await waitFor(
      async () => {
        try {
          await core.readNamespacedPod({ namespace: ns, name: 'ok' });
          return false;
        } catch (err) {
          return (err as { code?: number }).code === 404;
        }
      },
      { timeoutMs: 20_000, what: 'pod ok to be deleted' },
    );
  });

  test('the controller-manager runs: a Job creates its pod', async () => {
    const { BatchV1Api } = await import('@kubernetes/client-node');
    const batch = cluster.kubeConfig().makeApiClient(BatchV1Api);
    await batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name: 'job' },
        spec: { template: { spec: { ...gpuPod('x', 1).spec!, restartPolicy: 'Never' } } },
      },
    });
    await waitFor(async () => (await core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=job' })).items.length === 1, {
      timeoutMs: 30_000,
      what: 'the Job controller to create a pod',
    });
  });

  test('a second cluster runs side by side, and stopping it ends only its own processes', async () => {
    const other = await LocalCluster.start();
    try {
      assert.notEqual(other.server, cluster.server);
      const otherCore = other.kubeConfig().makeApiClient(CoreV1Api);
      const nodes = await otherCore.listNode();
      assert.equal(nodes.items.length, 0, 'the second cluster has its own etcd');
    } finally {
      await other.stop();
    }
    for (const c of ['etcd', 'kube-apiserver', 'kube-scheduler', 'kube-controller-manager', 'kwok'] as const) {
      assert.equal(isRunning(other.process(c)!), false, `${c} of the second cluster stopped`);
      assert.equal(isRunning(cluster.process(c)!), true, `${c} of the first cluster still runs`);
    }
    await core.listNamespace();
  });
});
