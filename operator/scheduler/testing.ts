// Small builders for the scheduler's tests and benchmark: only the fields a case is about need spelling out.
import { GPU_PRODUCT_LABEL, type NodeInfo, type PodUsage, type Resources, type Taint } from './capacity.ts';
import type { GangRequest } from './admission.ts';

export const GiB = 1024 ** 3;

export interface NodeOptions {
  gpus?: number;
  product?: string;
  cpu?: number;
  memoryGiB?: number;
  pods?: number;
  labels?: Record<string, string>;
  taints?: Taint[];
  ready?: boolean;
  unschedulable?: boolean;
}

/** A Ready GPU node: 8 A100s, 64 CPUs, 512Gi, 110 pods unless told otherwise. */
export function node(name: string, o: NodeOptions = {}): NodeInfo {
  const gpus = o.gpus ?? 8;
  const labels: Record<string, string> = { 'kubernetes.io/hostname': name, ...o.labels };
  if (gpus > 0) labels[GPU_PRODUCT_LABEL] = o.product ?? 'NVIDIA-A100-SXM4-80GB';
  return {
    name,
    labels,
    taints: o.taints ?? [],
    unschedulable: o.unschedulable ?? false,
    ready: o.ready ?? true,
    allocatable: { cpuMilli: (o.cpu ?? 64) * 1000, memoryBytes: (o.memoryGiB ?? 512) * GiB, gpus, pods: o.pods ?? 110 },
  };
}

/** Per-worker requests: GPUs, then CPUs and GiB (default 1 CPU, 1Gi). */
export function req(gpus: number, cpu = 1, memoryGiB = 1): Resources {
  return { gpus, cpuMilli: cpu * 1000, memoryBytes: memoryGiB * GiB };
}

/** A bound, running pod on `nodeName` with these requests. */
export function pod(nodeName: string, r: Resources, terminal = false): PodUsage {
  return { node: nodeName, terminal, ...r };
}

export const anyNode = (): boolean => true;

/** A gang of class "c" with priority 0 that arrived at 0 and runs anywhere, unless told otherwise. */
export function gang(key: string, o: Partial<GangRequest> = {}): GangRequest {
  return { key, classKey: 'c', priority: 0, arrivalMs: 0, workers: 1, perWorker: req(1), eligible: anyNode, ...o };
}
