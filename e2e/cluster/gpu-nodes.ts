// Simulated GPU nodes: Node objects that the kwok controller keeps alive, with nvidia.com/gpu capacity and the
// labels NVIDIA GPU Feature Discovery would set, so the real kube-scheduler and our operator see what they would
// see on a real GPU cluster.
import {
  CoreV1Api,
  NodeV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Node,
  type V1Taint,
  type V1Pod,
} from '@kubernetes/client-node';
import { waitFor } from './wait.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export interface GpuProduct {
  /** The nvidia.com/gpu.product label value, e.g. NVIDIA-A100-SXM4-80GB. */
  product: string;
  memoryMiB: number;
  computeMajor: number;
  computeMinor: number;
}

export const gpuProducts = {
  A100: { product: 'NVIDIA-A100-SXM4-80GB', memoryMiB: 81920, computeMajor: 8, computeMinor: 0 },
  H100: { product: 'NVIDIA-H100-80GB-HBM3', memoryMiB: 81559, computeMajor: 9, computeMinor: 0 },
  L4: { product: 'NVIDIA-L4', memoryMiB: 23034, computeMajor: 8, computeMinor: 9 },
  T4: { product: 'Tesla-T4', memoryMiB: 15360, computeMajor: 7, computeMinor: 5 },
} satisfies Record<string, GpuProduct>;

export interface GpuNodeSpec {
  /** Name prefix; nodes are named <prefix>-<index>. */
  prefix: string;
  count: number;
  gpus: number;
  gpu?: GpuProduct;
  cpu?: string;
  memory?: string;
  pods?: number;
  labels?: Record<string, string>;
  /** Default: none. Pass gpuTaint for the taint the platform's GPU nodes carry. */
  taints?: V1Taint[];
}

export const gpuTaint: V1Taint = { key: 'nvidia.com/gpu', value: 'true', effect: 'NoSchedule' };

export function gpuNode(name: string, spec: Omit<GpuNodeSpec, 'prefix' | 'count'>): V1Node {
  const gpu = spec.gpu ?? gpuProducts.A100;
  const capacity: Record<string, string> = {
    cpu: spec.cpu ?? '64',
    memory: spec.memory ?? '512Gi',
    pods: String(spec.pods ?? 110),
    'ephemeral-storage': '1Ti',
  };
  const labels: Record<string, string> = {
    'kubernetes.io/hostname': name,
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': 'amd64',
    type: 'kwok',
    ...spec.labels,
  };
  if (spec.gpus > 0) {
    capacity['nvidia.com/gpu'] = String(spec.gpus);
    Object.assign(labels, {
      'nvidia.com/gpu.present': 'true',
      'nvidia.com/gpu.product': gpu.product,
      'nvidia.com/gpu.count': String(spec.gpus),
      'nvidia.com/gpu.memory': String(gpu.memoryMiB),
      'nvidia.com/gpu.compute.major': String(gpu.computeMajor),
      'nvidia.com/gpu.compute.minor': String(gpu.computeMinor),
    });
  }
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels, annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' } },
    spec: { taints: spec.taints ?? [] },
    status: { capacity, allocatable: { ...capacity } },
  };
}

/**
 * The RuntimeClass the NVIDIA GPU Operator installs on a real GPU cluster; GPU pods name it, so a cluster with
 * GPU nodes needs it. Created once, idempotently.
 */
export async function ensureNvidiaRuntimeClass(kc: KubeConfig, name = 'nvidia'): Promise<void> {
  try {
    await kc.makeApiClient(NodeV1Api).createRuntimeClass({ body: { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name }, handler: 'nvidia' } });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
}

/** Creates the nodes and waits until every one is Ready. Returns their names. */
export async function createGpuNodes(kc: KubeConfig, spec: GpuNodeSpec): Promise<string[]> {
  const core = kc.makeApiClient(CoreV1Api);
  if (spec.gpus > 0) await ensureNvidiaRuntimeClass(kc);
  const names = Array.from({ length: spec.count }, (_, i) => `${spec.prefix}-${i}`);
  // A pool of creates in flight rather than batches: a batch waits for its slowest request, a pool never idles.
  let next = 0;
  const creator = async () => {
    while (next < names.length) await core.createNode({ body: gpuNode(names[next++]!, spec) });
  };
  await Promise.all(Array.from({ length: Math.min(32, names.length) }, creator));
  // Polled from the API server's watch cache (resourceVersion 0), at most once a second for a big fleet: a list
  // of a thousand nodes is megabytes, and polling it five times a second slowed the very nodes it waited for.
  const wanted = new Set(names);
  await waitFor(
    async () => {
      const list = await core.listNode({ labelSelector: 'type=kwok', resourceVersion: '0' });
      // Schedulable means Ready and no longer carrying the not-ready taint the node lifecycle controller puts on
      // every new node; until it is lifted the scheduler places nothing there.
      let ready = 0;
      for (const n of list.items) if (wanted.has(n.metadata?.name ?? '') && isNodeSchedulable(n)) ready++;
      return ready === wanted.size;
    },
    {
      timeoutMs: 60_000 + names.length * 200,
      what: `${names.length} nodes to become Ready and schedulable`,
      intervalMs: names.length > 100 ? 1000 : 200,
    },
  );
  return names;
}

export function isNodeReady(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

function isNodeSchedulable(node: V1Node): boolean {
  return isNodeReady(node) && !(node.spec?.taints ?? []).some((t) => t.key.startsWith('node.kubernetes.io/'));
}

/** Ends a pod on a simulated node as if its container had exited (kwok applies the matching stage). */
export async function finishPod(kc: KubeConfig, namespace: string, name: string, phase: 'Succeeded' | 'Failed'): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.patchNamespacedPod(
    { namespace, name, body: { metadata: { annotations: { 'arena.e2e/finish': phase } } } },
    mergePatch,
  );
}

/** Marks a simulated node NotReady (or Ready again), as a kubelet that lost its runtime would. */
export async function setNodeReady(kc: KubeConfig, name: string, ready: boolean): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.patchNode({ name, body: { metadata: { annotations: { 'arena.e2e/node-ready': ready ? 'true' : 'false' } } } }, mergePatch);
}

/**
 * The same, at once: the annotation keeps kwok's stages from flipping the node back, and the Ready condition is
 * written directly instead of waiting for kwok's next stage (which can sit up to 45 s behind a pending heartbeat).
 */
export async function setNodeReadyNow(kc: KubeConfig, name: string, ready: boolean): Promise<void> {
  await setNodeReady(kc, name, ready);
  const now = new Date().toISOString();
  const condition = ready
    ? { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ready again (set by a test)' }
    : { type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'marked not ready by a test' };
  await kc.makeApiClient(CoreV1Api).patchNodeStatus(
    { name, body: { status: { conditions: [{ ...condition, lastHeartbeatTime: now, lastTransitionTime: now }] } } },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
}

export async function waitForPod(
  kc: KubeConfig,
  namespace: string,
  name: string,
  pred: (p: V1Pod) => boolean,
  timeoutMs = 30_000,
): Promise<V1Pod> {
  const core = kc.makeApiClient(CoreV1Api);
  let last: V1Pod | undefined;
  await waitFor(
    async () => {
      last = await core.readNamespacedPod({ namespace, name });
      return pred(last);
    },
    { timeoutMs, what: `pod ${namespace}/${name}` },
  );
  return last!;
}
