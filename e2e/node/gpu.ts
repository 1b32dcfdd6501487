// The node's GPUs as the cluster sees them: an nvidia.com/gpu capacity and the labels NVIDIA GPU Feature
// Discovery puts on a GPU node, either declared or taken from the machine's real GPUs through a probe.

type Capability = string | number | { major: number; minor: number };

/** One GPU as a probe reports it; runtime/gpu/probe.ts's queryGpus() answers in this shape. */
export interface ProbedGpu {
  name: string;
  memoryMiB?: number;
  /** queryGpus() calls it this. */
  memoryTotalMiB?: number;
  /** "9.0", 9.0 or { major: 9, minor: 0 }; unknown on old drivers. */
  computeCapability?: Capability;
}

/** `error`: why the GPUs could not be listed (nvidia-smi failed), as opposed to there being none. */
export type GpuProbe = () => Promise<{ gpus: ProbedGpu[]; error?: string }>;

/** Declared GPUs, for a node that pretends to have them. */
export interface DeclaredGpus {
  count: number;
  /** The nvidia.com/gpu.product value, e.g. NVIDIA-H100-80GB-HBM3 (spaces become dashes). */
  product: string;
  memoryMiB: number;
  computeCapability: Capability;
}

export type GpuConfig = DeclaredGpus | { probe: GpuProbe };

export interface GpuInventory {
  count: number;
  product: string;
  memoryMiB?: number;
  major?: number;
  minor?: number;
}

export function parseComputeCapability(cc: Capability): { major: number; minor: number } {
  if (typeof cc === 'object') return { major: cc.major, minor: cc.minor };
  const m = /^(\d+)(?:\.(\d+))?$/.exec(String(cc).trim());
  if (!m) throw new Error(`compute capability ${JSON.stringify(cc)} is not like "8.9"`);
  return { major: Number(m[1]), minor: Number(m[2] ?? 0) };
}

/** GFD writes the product name with dashes for spaces; a label value also allows only [A-Za-z0-9._-], ≤ 63 chars. */
export function productLabel(name: string): string {
  return name
    .trim()
    .replace(/\s+/g, '-')
    .replace(/[^A-Za-z0-9._-]/g, '')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

/** What the node reports; GFD labels describe the first GPU (it assumes a node's GPUs are all alike). */
export async function gpuInventory(config: GpuConfig | undefined): Promise<GpuInventory | undefined> {
  if (!config) return undefined;
  if ('probe' in config) {
    let result: { gpus: ProbedGpu[]; error?: string };
    try {
      result = await config.probe();
    } catch (err) {
      throw new Error(`the GPU probe failed: ${(err as Error).message}`, { cause: err });
    }
    // Asked for the machine's GPUs and could not list them: say so rather than register a node without GPUs.
    if (result.gpus.length === 0 && result.error) throw new Error(`the GPU probe failed: ${result.error}`);
    const first = result.gpus[0];
    if (!first) return undefined;
    const memory = first.memoryMiB ?? first.memoryTotalMiB;
    const inv: GpuInventory = { count: result.gpus.length, product: productLabel(first.name) };
    if (memory !== undefined) inv.memoryMiB = Math.round(memory);
    if (first.computeCapability !== undefined) Object.assign(inv, parseComputeCapability(first.computeCapability));
    return inv;
  }
  if (!Number.isInteger(config.count) || config.count < 0) throw new Error(`gpus.count must be a whole number ≥ 0, got ${config.count}`);
  if (config.count === 0) return undefined;
  return { count: config.count, product: productLabel(config.product), memoryMiB: config.memoryMiB, ...parseComputeCapability(config.computeCapability) };
}

export function gpuLabels(inv: GpuInventory | undefined): Record<string, string> {
  if (!inv) return {};
  const labels: Record<string, string> = {
    'nvidia.com/gpu.present': 'true',
    'nvidia.com/gpu.product': inv.product,
    'nvidia.com/gpu.count': String(inv.count),
  };
  if (inv.memoryMiB !== undefined) labels['nvidia.com/gpu.memory'] = String(inv.memoryMiB);
  if (inv.major !== undefined) labels['nvidia.com/gpu.compute.major'] = String(inv.major);
  if (inv.minor !== undefined) labels['nvidia.com/gpu.compute.minor'] = String(inv.minor);
  return labels;
}

/**
 * Hands out GPU indexes to containers the way the device plugin does: a container that asks for N GPUs gets N
 * of its own, visible to it through CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES.
 */
export class GpuAllocator {
  private readonly owner = new Map<number, string>();

  constructor(readonly count: number) {}

  /** Indexes for `owner` (idempotent), or undefined when not enough are free. */
  allocate(owner: string, n: number): number[] | undefined {
    const mine = this.of(owner);
    if (mine.length >= n) return mine.slice(0, n);
    const free: number[] = [];
    for (let i = 0; i < this.count && mine.length + free.length < n; i++) if (!this.owner.has(i)) free.push(i);
    if (mine.length + free.length < n) return undefined;
    for (const i of free) this.owner.set(i, owner);
    return [...mine, ...free].sort((a, b) => a - b);
  }

  free(): number {
    return this.count - this.owner.size;
  }

  of(owner: string): number[] {
    return [...this.owner].filter(([, o]) => o === owner).map(([i]) => i);
  }

  /** Frees every index whose owner starts with `prefix` (all containers of a pod). */
  releasePrefix(prefix: string): void {
    for (const [i, o] of this.owner) if (o.startsWith(prefix)) this.owner.delete(i);
  }
}
