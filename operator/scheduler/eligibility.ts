// Which nodes may run a worker of a resource class: the same filters kube-scheduler will apply to the worker pod
// (node selectors, taints and tolerations, readiness) plus the class's GPU product and per-worker GPU count. Admission
// must agree with kube-scheduler, or it admits gangs whose pods then sit unschedulable on their pinned nodes.
import { GPU_PRODUCT_LABEL, type NodeInfo, type Taint } from './capacity.ts';

/** The core/v1 Toleration fields that matching reads. */
export interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
}

/** What a resource class asks of a node, from the ResourceClass and its TrainingCluster. */
export interface ClassEligibility {
  /** The TrainingCluster's workerNodeSelector. */
  workerNodeSelector?: Readonly<Record<string, string>>;
  /** The ResourceClass's nodeSelector. */
  nodeSelector?: Readonly<Record<string, string>>;
  /** Required value of the nvidia.com/gpu.product label. */
  gpuProduct?: string;
  /** GPUs per worker (0 for CPU-only classes). */
  gpus: number;
  /** The ResourceClass's tolerations, without the GPU one. */
  tolerations?: readonly Toleration[];
}

/** The taint key GPU nodes carry (TrainingCluster spec.gpu.taint.key defaults to it). */
export const DEFAULT_GPU_TAINT_KEY = 'nvidia.com/gpu';

/**
 * The tolerations a worker pod of this class gets: the class's own plus, for workers that request GPUs, one that
 * tolerates any value and effect of the GPU taint key. The pod builder must use this same function, so admission
 * and kube-scheduler agree on which nodes a worker may land on.
 */
export function workerTolerations(cls: Pick<ClassEligibility, 'gpus' | 'tolerations'>, gpuTaintKey = DEFAULT_GPU_TAINT_KEY): Toleration[] {
  const own = [...(cls.tolerations ?? [])];
  if (cls.gpus >= 1) own.push({ key: gpuTaintKey, operator: 'Exists' });
  return own;
}

/** core/v1 Toleration.ToleratesTaint: an empty effect matches every effect, an empty key with Exists every taint. */
export function tolerates(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  if (toleration.key && toleration.key !== taint.key) return false;
  switch (toleration.operator ?? '') {
    case '':
    case 'Equal':
      return (toleration.value ?? '') === (taint.value ?? '');
    case 'Exists':
      return true;
    default:
      // Operators this code does not know (newer Kubernetes adds some) tolerate nothing, as in older kube-schedulers.
      return false;
  }
}

/** The first NoSchedule or NoExecute taint none of the tolerations tolerate; PreferNoSchedule only scores. */
export function untoleratedTaint(taints: readonly Taint[], tolerations: readonly Toleration[]): Taint | undefined {
  for (const taint of taints) {
    if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
    if (!tolerations.some((t) => tolerates(t, taint))) return taint;
  }
  return undefined;
}

export interface NodeEligibility {
  /** Whether a worker of the class may run on the node. */
  eligible(node: NodeInfo): boolean;
  /** Why not, in one short phrase a person can act on; undefined when eligible. */
  explain(node: NodeInfo): string | undefined;
}

/**
 * Precomputes a class's tolerations once and returns its node filter. Build it once per ResourceClass (and
 * TrainingCluster) generation and reuse it: the admission scheduler caches eligible nodes per filter identity.
 */
export function classEligibility(cls: ClassEligibility, gpuTaintKey = DEFAULT_GPU_TAINT_KEY): NodeEligibility {
  const tolerations = workerTolerations(cls, gpuTaintKey);
  const workerSelector = Object.entries(cls.workerNodeSelector ?? {});
  const classSelector = Object.entries(cls.nodeSelector ?? {});
  const explain = (node: NodeInfo): string | undefined => {
    if (!node.ready) return 'not Ready';
    if (node.unschedulable) return 'cordoned (spec.unschedulable)';
    for (const [k, v] of workerSelector) {
      if (node.labels[k] !== v) return `missing label ${k}=${v} (the training cluster's workerNodeSelector)`;
    }
    for (const [k, v] of classSelector) {
      if (node.labels[k] !== v) return `missing label ${k}=${v} (the class nodeSelector)`;
    }
    if (cls.gpuProduct !== undefined && node.labels[GPU_PRODUCT_LABEL] !== cls.gpuProduct) {
      const product = node.labels[GPU_PRODUCT_LABEL];
      return product === undefined ? `no ${GPU_PRODUCT_LABEL} label (class needs ${cls.gpuProduct})` : `GPU product ${product} (class needs ${cls.gpuProduct})`;
    }
    if (node.allocatable.gpus < cls.gpus) return `${node.allocatable.gpus} allocatable GPUs (a worker needs ${cls.gpus})`;
    const taint = untoleratedTaint(node.taints, tolerations);
    if (taint !== undefined) {
      const shown = taint.value ? `${taint.key}=${taint.value}:${taint.effect}` : `${taint.key}:${taint.effect}`;
      return `taint ${shown} not tolerated (add it to the class tolerations)`;
    }
    return undefined;
  };
  return { eligible: (node) => explain(node) === undefined, explain };
}

/** One-off check; in loops build classEligibility(cls) once instead. */
export function nodeMatchesClass(node: NodeInfo, cls: ClassEligibility, gpuTaintKey = DEFAULT_GPU_TAINT_KEY): boolean {
  return classEligibility(cls, gpuTaintKey).eligible(node);
}

/**
 * Why nodes are not eligible, most common reason first, e.g. "7 nodes: missing label pool=a100 (the class
 * nodeSelector); 2 nodes: not Ready". For Pending messages and ResourceClass status.
 */
export function ineligibilityBreakdown(nodes: Iterable<NodeInfo>, explain: (node: NodeInfo) => string | undefined, limit = 3): string {
  const counts = new Map<string, number>();
  for (const node of nodes) {
    const why = explain(node);
    if (why !== undefined) counts.set(why, (counts.get(why) ?? 0) + 1);
  }
  const ranked = [...counts].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0));
  const shown = ranked.slice(0, limit).map(([why, n]) => `${nodeCount(n)}: ${why}`);
  if (ranked.length > limit) shown.push(`${nodeCount(ranked.slice(limit).reduce((sum, [, n]) => sum + n, 0))}: other reasons`);
  return shown.join('; ');
}

function nodeCount(n: number): string {
  return n === 1 ? '1 node' : `${n} nodes`;
}
