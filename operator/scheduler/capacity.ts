// What every node can still take: allocatable minus the requests of the pods bound to it, minus the capacity held
// for gangs the scheduler admitted whose pods are not bound yet. Kept incrementally from node and pod events so an
// admission cycle reads it in O(1) per node instead of summing pods.

/** The node label NVIDIA GPU Feature Discovery sets to the GPU model. */
export const GPU_PRODUCT_LABEL = 'nvidia.com/gpu.product';

export interface Resources {
  cpuMilli: number;
  memoryBytes: number;
  gpus: number;
}

export interface NodeResources extends Resources {
  pods: number;
}

export interface Taint {
  key: string;
  value?: string;
  /** NoSchedule, PreferNoSchedule or NoExecute. */
  effect: string;
}

/** The fields of a Node the scheduler needs; everything else is dropped so the cache stays small. */
export interface NodeInfo {
  name: string;
  labels: Readonly<Record<string, string>>;
  taints: readonly Taint[];
  unschedulable: boolean;
  ready: boolean;
  allocatable: NodeResources;
}

/** A pod's effective requests and where it runs; node '' means not bound yet. */
export interface PodUsage extends Resources {
  node: string;
  /** Succeeded or Failed: it holds nothing any more. */
  terminal: boolean;
}

export interface Placement extends Resources {
  node: string;
}

export interface GpuCounts {
  total: number;
  /** Requested by pods bound to the nodes. */
  allocated: number;
  /** Held for admitted gangs whose pods are not bound yet. */
  reserved: number;
  /** total − allocated − reserved, per node and never below 0. */
  free: number;
}

export interface CapacitySummary {
  nodes: { total: number; ready: number; notReady: number };
  /** GPUs on nodes that are Ready and schedulable. */
  gpus: GpuCounts & { byProduct: (GpuCounts & { product: string })[] };
}

/** The product name used for GPU nodes that lack the nvidia.com/gpu.product label. */
export const UNKNOWN_GPU_PRODUCT = 'unknown';

/**
 * One node's ledger. Exposed read-only to the admission scheduler, which reads it in tight loops; everything else
 * should use CapacityModel.free().
 */
export class NodeState {
  info: NodeInfo | undefined = undefined;
  usedCpuMilli = 0;
  usedMemoryBytes = 0;
  usedGpus = 0;
  usedPods = 0;
  reservedCpuMilli = 0;
  reservedMemoryBytes = 0;
  reservedGpus = 0;
  reservedPods = 0;

  constructor(readonly name: string) {}

  /** Free GPUs now; negative when the node is over-committed (e.g. its allocatable shrank under running pods). */
  freeGpus(): number {
    return (this.info?.allocatable.gpus ?? 0) - this.usedGpus - this.reservedGpus;
  }

  freeCpuMilli(): number {
    return (this.info?.allocatable.cpuMilli ?? 0) - this.usedCpuMilli - this.reservedCpuMilli;
  }

  freeMemoryBytes(): number {
    return (this.info?.allocatable.memoryBytes ?? 0) - this.usedMemoryBytes - this.reservedMemoryBytes;
  }

  freePods(): number {
    return (this.info?.allocatable.pods ?? 0) - this.usedPods - this.reservedPods;
  }

  /** Whether one more pod with these requests fits in what is free now. */
  fitsNow(r: Resources): boolean {
    const a = this.info?.allocatable;
    return (
      a !== undefined &&
      a.gpus - this.usedGpus - this.reservedGpus >= r.gpus &&
      a.cpuMilli - this.usedCpuMilli - this.reservedCpuMilli >= r.cpuMilli &&
      a.memoryBytes - this.usedMemoryBytes - this.reservedMemoryBytes >= r.memoryBytes &&
      a.pods - this.usedPods - this.reservedPods >= 1
    );
  }

  /** Whether one pod with these requests would fit if nothing else ran here. */
  fitsEmpty(r: Resources): boolean {
    const a = this.info?.allocatable;
    return a !== undefined && a.gpus >= r.gpus && a.cpuMilli >= r.cpuMilli && a.memoryBytes >= r.memoryBytes && a.pods >= 1;
  }

  isEmpty(): boolean {
    return this.info === undefined && this.usedPods === 0 && this.reservedPods === 0;
  }
}

interface CountedPod extends Resources {
  node: string;
  gangKey: string | undefined;
}

interface Reservation {
  /** Every node of the plan, in the order given, including those whose pod already counts. */
  nodes: string[];
  /** What is still held per node: dropped when the gang's pod on that node is counted. */
  held: Map<string, Resources>;
}

export class CapacityModel {
  private readonly nodes = new Map<string, NodeState>();
  private readonly pods = new Map<string, CountedPod>();
  private readonly reservations = new Map<string, Reservation>();
  /** gang → node → how many of its pods count there; lets reserve() skip nodes the gang already occupies. */
  private readonly gangPods = new Map<string, Map<string, number>>();
  /** gang → what its counted pods and its reservation hold together, for team quotas. */
  private readonly gangHeld = new Map<string, Resources>();
  private version = 0;

  /**
   * Changes whenever a node appears, disappears or changes a field that eligibility reads (labels, taints,
   * readiness, schedulability, allocatable); pod and reservation changes leave it alone. Caches of per-class
   * eligible nodes stay valid while it does not change.
   */
  get nodesVersion(): number {
    return this.version;
  }

  get nodeCount(): number {
    let n = 0;
    for (const s of this.nodes.values()) if (s.info !== undefined) n++;
    return n;
  }

  /** Pods that count against a node now (bound and not terminal). */
  get podCount(): number {
    return this.pods.size;
  }

  get reservationCount(): number {
    return this.reservations.size;
  }

  upsertNode(node: NodeInfo): void {
    const s = this.state(node.name);
    if (s.info === undefined || !sameEligibilityFields(s.info, node)) this.version++;
    s.info = node;
  }

  removeNode(name: string): void {
    const s = this.nodes.get(name);
    if (s?.info === undefined) return;
    s.info = undefined;
    this.version++;
    this.dropIfEmpty(s);
  }

  node(name: string): NodeInfo | undefined {
    return this.nodes.get(name)?.info;
  }

  /**
   * Records a pod's requests. It counts against its node while it is bound and not terminal; an unbound or terminal
   * pod counts nowhere and is not kept. When the pod belongs to an admitted gang (gangKey) and lands on a node the
   * gang holds a reservation on, that reservation entry is dropped, so the worker is counted once.
   */
  upsertPod(key: string, pod: PodUsage, gangKey?: string): void {
    const prev = this.pods.get(key);
    if (prev !== undefined) this.uncount(key, prev);
    if (pod.node === '' || pod.terminal) return;
    const counted: CountedPod = { node: pod.node, cpuMilli: pod.cpuMilli, memoryBytes: pod.memoryBytes, gpus: pod.gpus, gangKey };
    this.pods.set(key, counted);
    const s = this.state(pod.node);
    s.usedCpuMilli += pod.cpuMilli;
    s.usedMemoryBytes += pod.memoryBytes;
    s.usedGpus += pod.gpus;
    s.usedPods += 1;
    if (gangKey !== undefined) {
      let perNode = this.gangPods.get(gangKey);
      if (perNode === undefined) this.gangPods.set(gangKey, (perNode = new Map()));
      perNode.set(pod.node, (perNode.get(pod.node) ?? 0) + 1);
      this.addHeld(gangKey, pod, 1);
      const held = this.reservations.get(gangKey)?.held;
      const entry = held?.get(pod.node);
      if (held !== undefined && entry !== undefined) {
        held.delete(pod.node);
        this.unhold(s, entry);
        this.addHeld(gangKey, entry, -1);
      }
    }
  }

  removePod(key: string): void {
    const prev = this.pods.get(key);
    if (prev !== undefined) this.uncount(key, prev);
  }

  /**
   * Holds capacity for an admitted gang until release(gangKey). Replaces an earlier reservation of the same gang.
   * Nodes where a pod of the gang already counts are recorded in the plan but hold nothing more.
   */
  reserve(gangKey: string, placements: readonly Placement[]): void {
    this.release(gangKey);
    const occupied = this.gangPods.get(gangKey);
    const reservation: Reservation = { nodes: [], held: new Map() };
    for (const p of placements) {
      reservation.nodes.push(p.node);
      if (occupied?.has(p.node)) continue;
      const r = { cpuMilli: p.cpuMilli, memoryBytes: p.memoryBytes, gpus: p.gpus };
      const prev = reservation.held.get(p.node);
      if (prev !== undefined) {
        prev.cpuMilli += r.cpuMilli;
        prev.memoryBytes += r.memoryBytes;
        prev.gpus += r.gpus;
      } else {
        reservation.held.set(p.node, r);
      }
      this.addHeld(gangKey, r, 1);
      const s = this.state(p.node);
      s.reservedCpuMilli += r.cpuMilli;
      s.reservedMemoryBytes += r.memoryBytes;
      s.reservedGpus += r.gpus;
      if (prev === undefined) s.reservedPods += 1;
    }
    this.reservations.set(gangKey, reservation);
  }

  release(gangKey: string): void {
    const reservation = this.reservations.get(gangKey);
    if (reservation === undefined) return;
    this.reservations.delete(gangKey);
    for (const [node, r] of reservation.held) {
      this.addHeld(gangKey, r, -1);
      const s = this.nodes.get(node);
      if (s !== undefined) this.unhold(s, r);
    }
  }

  /** What each gang holds now: its bound, non-terminal pods plus what its reservation still holds. */
  gangUsage(): ReadonlyMap<string, Readonly<Resources>> {
    return this.gangHeld;
  }

  /** The nodes planned for a gang that still has a reservation, or undefined. */
  reservedNodes(gangKey: string): readonly string[] | undefined {
    return this.reservations.get(gangKey)?.nodes;
  }

  /** What a node can still take (never below 0), or undefined for a node the model does not know. */
  free(nodeName: string): NodeResources | undefined {
    const s = this.nodes.get(nodeName);
    if (s?.info === undefined) return undefined;
    return {
      cpuMilli: Math.max(0, s.freeCpuMilli()),
      memoryBytes: Math.max(0, s.freeMemoryBytes()),
      gpus: Math.max(0, s.freeGpus()),
      pods: Math.max(0, s.freePods()),
    };
  }

  /** A node's ledger. Read-only: for the admission scheduler. */
  stateOf(nodeName: string): NodeState | undefined {
    return this.nodes.get(nodeName);
  }

  /** Every known node's ledger, in no particular order. Read-only: for the admission scheduler. */
  states(): IterableIterator<NodeState> {
    return this.nodes.values();
  }

  /**
   * Node counts and GPU numbers for the status API. `include` narrows to worker nodes (e.g. the training cluster's
   * workerNodeSelector); GPUs count only on nodes that are Ready and schedulable.
   */
  summary(include?: (node: NodeInfo) => boolean): CapacitySummary {
    const nodes = { total: 0, ready: 0, notReady: 0 };
    const total: GpuCounts = { total: 0, allocated: 0, reserved: 0, free: 0 };
    const byProduct = new Map<string, GpuCounts>();
    for (const s of this.nodes.values()) {
      const info = s.info;
      if (info === undefined || (include !== undefined && !include(info))) continue;
      nodes.total++;
      if (!info.ready || info.unschedulable) {
        nodes.notReady++;
        continue;
      }
      nodes.ready++;
      if (info.allocatable.gpus <= 0 && s.usedGpus <= 0) continue;
      const product = info.labels[GPU_PRODUCT_LABEL] || UNKNOWN_GPU_PRODUCT;
      let counts = byProduct.get(product);
      if (counts === undefined) byProduct.set(product, (counts = { total: 0, allocated: 0, reserved: 0, free: 0 }));
      for (const c of [total, counts]) {
        c.total += info.allocatable.gpus;
        c.allocated += s.usedGpus;
        c.reserved += s.reservedGpus;
        c.free += Math.max(0, s.freeGpus());
      }
    }
    return {
      nodes,
      gpus: {
        ...total,
        byProduct: [...byProduct].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([product, c]) => ({ product, ...c })),
      },
    };
  }

  private state(name: string): NodeState {
    let s = this.nodes.get(name);
    if (s === undefined) this.nodes.set(name, (s = new NodeState(name)));
    return s;
  }

  private uncount(key: string, pod: CountedPod): void {
    this.pods.delete(key);
    const s = this.nodes.get(pod.node);
    if (s !== undefined) {
      s.usedCpuMilli -= pod.cpuMilli;
      s.usedMemoryBytes -= pod.memoryBytes;
      s.usedGpus -= pod.gpus;
      s.usedPods -= 1;
      this.dropIfEmpty(s);
    }
    if (pod.gangKey !== undefined) {
      this.addHeld(pod.gangKey, pod, -1);
      const perNode = this.gangPods.get(pod.gangKey);
      const n = perNode?.get(pod.node) ?? 0;
      if (perNode !== undefined) {
        if (n > 1) perNode.set(pod.node, n - 1);
        else perNode.delete(pod.node);
        if (perNode.size === 0) this.gangPods.delete(pod.gangKey);
      }
    }
  }

  private addHeld(gangKey: string, r: Resources, sign: 1 | -1): void {
    let h = this.gangHeld.get(gangKey);
    if (h === undefined) this.gangHeld.set(gangKey, (h = { cpuMilli: 0, memoryBytes: 0, gpus: 0 }));
    h.cpuMilli += sign * r.cpuMilli;
    h.memoryBytes += sign * r.memoryBytes;
    h.gpus += sign * r.gpus;
    // Exact integers, so a gang that holds nothing any more is back at zero and forgotten.
    if (h.cpuMilli === 0 && h.memoryBytes === 0 && h.gpus === 0) this.gangHeld.delete(gangKey);
  }

  private unhold(s: NodeState, r: Resources): void {
    s.reservedCpuMilli -= r.cpuMilli;
    s.reservedMemoryBytes -= r.memoryBytes;
    s.reservedGpus -= r.gpus;
    s.reservedPods -= 1;
    this.dropIfEmpty(s);
  }

  /** Forget ledgers of nodes that are gone and hold nothing, so memory follows the live cluster. */
  private dropIfEmpty(s: NodeState): void {
    if (s.isEmpty()) this.nodes.delete(s.name);
  }
}

function sameEligibilityFields(a: NodeInfo, b: NodeInfo): boolean {
  if (a === b) return true;
  if (a.ready !== b.ready || a.unschedulable !== b.unschedulable) return false;
  const x = a.allocatable;
  const y = b.allocatable;
  if (x.cpuMilli !== y.cpuMilli || x.memoryBytes !== y.memoryBytes || x.gpus !== y.gpus || x.pods !== y.pods) return false;
  if (a.taints.length !== b.taints.length) return false;
  for (let i = 0; i < a.taints.length; i++) {
    const s = a.taints[i];
    const t = b.taints[i];
    if (s?.key !== t?.key || (s?.value ?? '') !== (t?.value ?? '') || s?.effect !== t?.effect) return false;
  }
  const aKeys = Object.keys(a.labels);
  if (aKeys.length !== Object.keys(b.labels).length) return false;
  for (const k of aKeys) if (a.labels[k] !== b.labels[k]) return false;
  return true;
}
