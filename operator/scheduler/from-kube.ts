// Node and Pod objects from the informers, cut down to what the CapacityModel counts. Requests are computed the way
// kube-scheduler computes them (sidecars, init containers, pod-level resources, overhead), or admission and
// kube-scheduler would disagree about what fits.
import type { V1Container, V1Node, V1Pod } from '@kubernetes/client-node';
import type { NodeInfo, PodUsage, Resources } from './capacity.ts';
import { parseCount, parseCpuMilli, parseMemoryBytes } from './quantity.ts';

/** The extended resource NVIDIA's device plugin advertises. */
export const DEFAULT_GPU_RESOURCE = 'nvidia.com/gpu';

export interface ConvertOptions {
  gpuResource?: string;
}

/** Throws QuantityError when the node reports a malformed quantity (the API server would not store one). */
export function nodeInfoFromNode(node: V1Node, options: ConvertOptions = {}): NodeInfo {
  const name = node.metadata?.name ?? '';
  const allocatable = node.status?.allocatable ?? {};
  const gpu = allocatable[options.gpuResource ?? DEFAULT_GPU_RESOURCE];
  const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  return {
    name,
    labels: node.metadata?.labels ?? {},
    taints: (node.spec?.taints ?? []).map((t) => (t.value === undefined ? { key: t.key, effect: t.effect } : { key: t.key, value: t.value, effect: t.effect })),
    unschedulable: node.spec?.unschedulable === true,
    ready,
    allocatable: {
      cpuMilli: allocatable.cpu === undefined ? 0 : parseCpuMilli(allocatable.cpu, `node ${name} allocatable cpu`),
      memoryBytes: allocatable.memory === undefined ? 0 : parseMemoryBytes(allocatable.memory, `node ${name} allocatable memory`),
      gpus: gpu === undefined ? 0 : parseCount(gpu, `node ${name} allocatable GPUs`),
      pods: allocatable.pods === undefined ? 0 : parseCount(allocatable.pods, `node ${name} allocatable pods`),
    },
  };
}

/** Where the pod runs (node '' until bound), what it requests, and whether it finished. */
export function podUsageFromPod(pod: V1Pod, options: ConvertOptions = {}): PodUsage {
  const phase = pod.status?.phase;
  return {
    node: pod.spec?.nodeName ?? '',
    terminal: phase === 'Succeeded' || phase === 'Failed',
    ...podRequests(pod, options),
  };
}

/**
 * A pod's effective requests: the larger of (regular containers + sidecars) and the peak of any init container
 * (plus the sidecars started before it); pod-level requests replace the container sums for CPU and memory; RuntimeClass
 * overhead is added on top.
 */
export function podRequests(pod: V1Pod, options: ConvertOptions = {}): Resources {
  const gpuResource = options.gpuResource ?? DEFAULT_GPU_RESOURCE;
  const spec = pod.spec;
  const where = `pod ${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
  const read = (c: V1Container): Resources => containerRequests(c, gpuResource, `${where} container ${c.name}`);

  const total: Resources = { cpuMilli: 0, memoryBytes: 0, gpus: 0 };
  for (const c of spec?.containers ?? []) add(total, read(c));
  const sidecars: Resources = { cpuMilli: 0, memoryBytes: 0, gpus: 0 };
  const initPeak: Resources = { cpuMilli: 0, memoryBytes: 0, gpus: 0 };
  for (const c of spec?.initContainers ?? []) {
    const r = read(c);
    if (c.restartPolicy === 'Always') {
      add(total, r);
      add(sidecars, r);
      max(initPeak, sidecars);
    } else {
      max(initPeak, { cpuMilli: r.cpuMilli + sidecars.cpuMilli, memoryBytes: r.memoryBytes + sidecars.memoryBytes, gpus: r.gpus + sidecars.gpus });
    }
  }
  max(total, initPeak);

  const podLevel = spec?.resources?.requests;
  if (podLevel?.cpu !== undefined) total.cpuMilli = parseCpuMilli(podLevel.cpu, `${where} spec.resources cpu`);
  if (podLevel?.memory !== undefined) total.memoryBytes = parseMemoryBytes(podLevel.memory, `${where} spec.resources memory`);

  const overhead = spec?.overhead ?? {};
  if (overhead.cpu !== undefined) total.cpuMilli += parseCpuMilli(overhead.cpu, `${where} overhead cpu`);
  if (overhead.memory !== undefined) total.memoryBytes += parseMemoryBytes(overhead.memory, `${where} overhead memory`);
  return total;
}

function containerRequests(c: V1Container, gpuResource: string, where: string): Resources {
  // Requests default to limits when only limits are set; informer objects are defaulted already, raw specs may not be.
  const requests = c.resources?.requests ?? {};
  const limits = c.resources?.limits ?? {};
  const cpu = requests.cpu ?? limits.cpu;
  const memory = requests.memory ?? limits.memory;
  const gpus = requests[gpuResource] ?? limits[gpuResource];
  return {
    cpuMilli: cpu === undefined ? 0 : parseCpuMilli(cpu, `${where} cpu`),
    memoryBytes: memory === undefined ? 0 : parseMemoryBytes(memory, `${where} memory`),
    gpus: gpus === undefined ? 0 : parseCount(gpus, `${where} ${gpuResource}`),
  };
}

function add(into: Resources, r: Resources): void {
  into.cpuMilli += r.cpuMilli;
  into.memoryBytes += r.memoryBytes;
  into.gpus += r.gpus;
}

function max(into: Resources, r: Resources): void {
  into.cpuMilli = Math.max(into.cpuMilli, r.cpuMilli);
  into.memoryBytes = Math.max(into.memoryBytes, r.memoryBytes);
  into.gpus = Math.max(into.gpus, r.gpus);
}
