/**
 * Gang admission: decides which Pending experiments may start, and on which nodes, so that every worker of an
 * admitted gang (one per distinct node) fits at once. Pure and in-memory; the caller feeds it the pending gangs and
 * a CapacityModel kept from informer events, and acts on the result (pins worker pods to the planned nodes).
 *
 * Policy: priority first, backfill for utilisation, node holds against starvation.
 * - Order. All pending gangs are walked once, by priority (higher first), then arrival (earlier first), then key.
 *   Each resource class's queue is that order restricted to the class.
 * - Admission. A gang is admitted as soon as it fits: `workers` distinct eligible nodes whose free capacity holds
 *   one worker each, not counting nodes held for another gang earlier in the order. Its capacity is reserved in
 *   the CapacityModel at once, so neither a later gang of the same cycle nor a later cycle counts it again.
 * - Backfill. A gang that does not fit does not stop the walk: later gangs, of any class, that fit on what is free
 *   start now. GPUs are not left idle behind a big gang that cannot start yet.
 * - Starvation. Backfill alone can keep a big gang waiting forever, as small ones keep taking freed GPUs. So once
 *   the first waiting gang of a class queue (its head) has waited `starvationMs` (default 5 minutes), it holds
 *   `workers` nodes: those it held last cycle while they stay usable, else the eligible nodes that are nearest to
 *   fitting a worker (most free GPUs, then CPU, then memory, then name). Which nodes free up soonest is unknown.
 *   Gangs later in the order may not start on held nodes, so those drain as running work ends, and the head starts
 *   there at the latest. Gangs earlier in the order (higher priority, or same priority and older) may still use
 *   them: higher priority always goes first.
 * - NeverFits. A gang that could not fit even on empty eligible nodes waits with reason NeverFits, blocks nobody,
 *   holds nothing and takes no place in the queue (position 0).
 * - Placement is best fit: among nodes where a worker fits, the ones with the fewest free GPUs, so that whole nodes
 *   stay free for big workers; ties go to the node name, so a cycle is deterministic.
 *
 * Cost of a cycle: O(q log q) to order q gangs, plus one pass over a class's eligible nodes per admission and per
 * distinct gang shape that fails (capacity only shrinks within a cycle, so a shape that failed fails again and is
 * answered from a memo), plus an eligibility pass per class only when nodes or the class filter changed.
 */
import { formatBytes, formatCpu } from './quantity.ts';
import type { CapacityModel, NodeInfo, NodeState, Resources } from './capacity.ts';
import { ineligibilityBreakdown } from './eligibility.ts';

export const DEFAULT_STARVATION_MS = 5 * 60 * 1000;

/** One Pending experiment: a gang of `workers` pods, one per distinct node. */
export interface GangRequest {
  /** Stable identity, e.g. "namespace/name" (or with the run's uid): the reservation is kept under it. */
  key: string;
  /** The resource class queue it waits in. Gangs of one class must share `eligible`. */
  classKey: string;
  /** Higher goes first. */
  priority: number;
  /** When it entered Pending (ms since the epoch); earlier goes first among equal priority. Starvation counts from it. */
  arrivalMs: number;
  /**
   * Where it stands among gangs of its priority, when not by arrival: team quotas hand a class's arrival times to
   * its gangs in fair-share order, so the class's queue follows fair share and still interleaves with other classes.
   */
  orderMs?: number;
  /**
   * Lower goes first, before priority (default 0). Team quotas put gangs that would borrow beyond their team's quota
   * at 1, as Kueue admits workloads that fit their nominal quota first: a team taking its quota back is not overtaken
   * by a borrower of higher priority (who would then be reclaimed again).
   */
  tier?: number;
  workers: number;
  perWorker: Resources;
  /**
   * Whether a node may run one of its workers (e.g. classEligibility(...).eligible). Eligible nodes are cached per
   * class while this function's identity and the nodes stay the same: pass a new function when the class changes.
   */
  eligible: (node: NodeInfo) => boolean;
  /** Why a node is not eligible; only used to explain NeverFits (e.g. classEligibility(...).explain). */
  explainIneligible?: (node: NodeInfo) => string | undefined;
}

export type WaitReason = 'NeverFits' | 'InsufficientCapacity' | 'WaitingBehind' | 'QuotaExceeded';

/**
 * A check every gang passes before it may be placed, and is told of once admitted: team quotas refuse a gang whose
 * team would exceed its quota plus borrowing limit, and count each admission so the next gang of the team sees it.
 */
export interface AdmissionGate {
  /** Why the gang may not start now, or undefined. */
  refuse(g: GangRequest): string | undefined;
  admitted(g: GangRequest): void;
}

export interface Admission {
  key: string;
  /** Distinct node names, sorted; worker i goes to nodes[i]. */
  nodes: string[];
}

export interface Wait {
  key: string;
  reason: WaitReason;
  /** For a person: why, with numbers, and what would change it. */
  message: string;
  /** 1 for the first waiting gang of its class queue, 2 for the next, …; 0 for NeverFits. */
  position: number;
}

export interface AdmissionResult {
  admitted: Admission[];
  waiting: Wait[];
}

export interface AdmissionOptions {
  /** How long a class head waits before it holds nodes against backfill. Default 5 minutes. */
  starvationMs?: number;
}

interface ClassView {
  eligible: (node: NodeInfo) => boolean;
  nodesVersion: number;
  /** Eligible nodes, by name. */
  nodes: NodeState[];
  names: Set<string>;
  maxGpus: number;
  /** Largest allocatable per dimension among eligible nodes, for NeverFits messages. */
  largest: Resources;
  shapes: Map<string, Shape>;
  /** The last shape looked up: gangs of a class usually share it, which saves building its key. */
  last: Shape | undefined;
  breakdown: string | undefined;
  /** The last cycle that used this view; per-cycle fields below are stale when it is not the current one. */
  cycle: number;
  /** Waiting gangs of the class queue so far this cycle, and the first of them. */
  waiting: number;
  head: string;
}

/** A gang size of one class: workers × per-worker request. */
interface Shape {
  workers: number;
  perWorker: Resources;
  /** Eligible nodes that could hold one worker when empty. */
  capable: number;
  /** "8 GPUs, 16 CPU, 64Gi memory", for messages. */
  worker: string;
  /** Why it did not fit, when it already failed this cycle: capacity only shrinks within a cycle. */
  shortfall: Shortfall | undefined;
  failedCycle: number;
}

interface Shortfall {
  /** Eligible nodes where a worker fits now and that nobody earlier holds. */
  fitNow: number;
  /** Nodes where a worker fits now but that are held for a gang earlier in the order. */
  heldFits: number;
  /** Free GPUs summed over the class's eligible nodes. */
  freeGpus: number;
}

export class GangScheduler {
  private readonly starvationMs: number;
  private readonly views = new Map<string, ClassView>();
  private holds = new Map<string, string[]>();
  private cycleNo = 0;
  private hist = new Int32Array(17);
  /** Node → the starving gang holding it, this cycle; cleared rather than reallocated. */
  private readonly heldBy = new Map<string, string>();

  constructor(
    private readonly capacity: CapacityModel,
    options: AdmissionOptions = {},
  ) {
    this.starvationMs = options.starvationMs ?? DEFAULT_STARVATION_MS;
  }

  /** The nodes held against backfill for a starving gang after the last cycle, if any. */
  heldNodes(gangKey: string): readonly string[] | undefined {
    return this.holds.get(gangKey);
  }

  /** Every starving gang holding nodes after the last cycle (for metrics and status). */
  heldGangs(): ReadonlyMap<string, readonly string[]> {
    return this.holds;
  }

  /**
   * Admits what fits now and says why the rest waits. Admitted gangs are reserved in the CapacityModel under their
   * key; the caller releases the reservation once all their pods are bound and counted, or when it gives up on
   * them. A gang that still has a reservation is reported admitted again with the same nodes, so a caller that
   * passes it once more (a status write that has not landed yet) cannot admit it twice.
   */
  cycle(gangs: readonly GangRequest[], nowMs: number, gate?: AdmissionGate): AdmissionResult {
    const cycle = ++this.cycleNo;
    const admitted: Admission[] = [];
    const waiting: Wait[] = [];
    const nextHolds = new Map<string, string[]>();
    this.heldBy.clear();
    const seen = new Set<string>();

    for (const g of [...gangs].sort(queueOrder)) {
      if (seen.has(g.key)) continue;
      seen.add(g.key);

      const planned = this.capacity.reservedNodes(g.key);
      if (planned !== undefined) {
        admitted.push({ key: g.key, nodes: [...planned] });
        continue;
      }
      const invalid = invalidRequest(g);
      if (invalid !== undefined) {
        waiting.push({ key: g.key, reason: 'NeverFits', message: invalid, position: 0 });
        continue;
      }

      const view = this.view(g, cycle);
      const shape = this.shape(view, g);
      if (shape.capable < g.workers) {
        waiting.push({ key: g.key, reason: 'NeverFits', message: this.neverFits(g, view, shape), position: 0 });
        continue;
      }
      // A gang over its team's limit waits for its own team's work to end: it blocks and holds nothing.
      const refused = gate?.refuse(g);
      if (refused !== undefined) {
        waiting.push({ key: g.key, reason: 'QuotaExceeded', message: refused, position: 0 });
        continue;
      }

      let shortfall = shape.failedCycle === cycle ? shape.shortfall : undefined;
      if (shortfall === undefined) {
        const placed = this.place(g, view);
        if (Array.isArray(placed)) {
          this.capacity.reserve(
            g.key,
            placed.map((node) => ({ node, ...g.perWorker })),
          );
          admitted.push({ key: g.key, nodes: placed });
          gate?.admitted(g);
          continue;
        }
        shortfall = shape.shortfall = placed;
        shape.failedCycle = cycle;
      }

      const ahead = view.waiting++;
      if (ahead === 0) view.head = g.key;
      else {
        waiting.push({ key: g.key, reason: 'WaitingBehind', message: waitingBehind(g, shape, ahead, view.head), position: ahead + 1 });
        continue;
      }
      let message = insufficient(g, shape, shortfall);
      if (nowMs - g.arrivalMs >= this.starvationMs) {
        const held = this.hold(g, view);
        nextHolds.set(g.key, held);
        message += holding(held, g.workers, this.starvationMs);
      }
      waiting.push({ key: g.key, reason: 'InsufficientCapacity', message, position: 1 });
    }

    this.holds = nextHolds;
    for (const [classKey, view] of this.views) if (view.cycle !== cycle) this.views.delete(classKey);
    return { admitted, waiting };
  }

  private view(g: GangRequest, cycle: number): ClassView {
    const version = this.capacity.nodesVersion;
    let view = this.views.get(g.classKey);
    // Within a cycle the first gang's filter stands for the class; across cycles a new filter means a changed class.
    if (view !== undefined && view.nodesVersion === version && (view.cycle === cycle || view.eligible === g.eligible)) {
      if (view.cycle !== cycle) {
        view.cycle = cycle;
        view.waiting = 0;
      }
      return view;
    }
    const nodes: NodeState[] = [];
    const largest: Resources = { cpuMilli: 0, memoryBytes: 0, gpus: 0 };
    for (const s of this.capacity.states()) {
      const info = s.info;
      if (info === undefined || !g.eligible(info)) continue;
      nodes.push(s);
      largest.cpuMilli = Math.max(largest.cpuMilli, info.allocatable.cpuMilli);
      largest.memoryBytes = Math.max(largest.memoryBytes, info.allocatable.memoryBytes);
      largest.gpus = Math.max(largest.gpus, info.allocatable.gpus);
    }
    nodes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    view = {
      eligible: g.eligible,
      nodesVersion: version,
      nodes,
      names: new Set(nodes.map((s) => s.name)),
      maxGpus: largest.gpus,
      largest,
      shapes: new Map(),
      last: undefined,
      breakdown: undefined,
      cycle,
      waiting: 0,
      head: '',
    };
    this.views.set(g.classKey, view);
    if (this.hist.length < largest.gpus + 1) this.hist = new Int32Array(largest.gpus + 1);
    return view;
  }

  private shape(view: ClassView, g: GangRequest): Shape {
    const r = g.perWorker;
    const last = view.last;
    if (last !== undefined && last.workers === g.workers && sameRequest(last.perWorker, r)) return last;
    const key = `${g.workers}:${r.gpus}:${r.cpuMilli}:${r.memoryBytes}`;
    let shape = view.shapes.get(key);
    if (shape === undefined) {
      let capable = 0;
      for (const s of view.nodes) if (s.fitsEmpty(r)) capable++;
      shape = { workers: g.workers, perWorker: { ...r }, capable, worker: worker(r), shortfall: undefined, failedCycle: 0 };
      view.shapes.set(key, shape);
    }
    view.last = shape;
    return shape;
  }

  /** Best fit: the `workers` usable nodes with the fewest free GPUs, ties by name; or why there are not enough. */
  private place(g: GangRequest, view: ClassView): string[] | Shortfall {
    const r = g.perWorker;
    const top = view.maxGpus;
    const hist = this.hist;
    hist.fill(0, 0, top + 1);
    let fitNow = 0;
    let heldFits = 0;
    let freeGpus = 0;
    for (const s of view.nodes) {
      const free = s.freeGpus();
      if (free > 0) freeGpus += free;
      if (!s.fitsNow(r)) continue;
      if (this.heldBy.has(s.name)) {
        heldFits++;
        continue;
      }
      fitNow++;
      hist[Math.min(free, top)]! += 1;
    }
    if (fitNow < g.workers) return { fitNow, heldFits, freeGpus };

    // The smallest free-GPU bucket t that completes the gang: take all nodes below it, then the first by name in it.
    let below = 0;
    let t = 0;
    while (below + hist[t]! < g.workers) below += hist[t++]!;
    let atThreshold = g.workers - below;
    const chosen: string[] = [];
    for (const s of view.nodes) {
      if (!s.fitsNow(r) || this.heldBy.has(s.name)) continue;
      const bucket = Math.min(s.freeGpus(), top);
      if (bucket < t) chosen.push(s.name);
      else if (bucket === t && atThreshold > 0) {
        chosen.push(s.name);
        atThreshold--;
      }
    }
    return chosen;
  }

  /** Picks the nodes a starving head holds: last cycle's while still usable, then those nearest to fitting. */
  private hold(g: GangRequest, view: ClassView): string[] {
    const r = g.perWorker;
    const chosen: string[] = [];
    const usable = (s: NodeState | undefined): s is NodeState =>
      s !== undefined && view.names.has(s.name) && s.fitsEmpty(r) && !this.heldBy.has(s.name);
    for (const name of this.holds.get(g.key) ?? []) {
      if (chosen.length === g.workers) break;
      if (usable(this.capacity.stateOf(name))) chosen.push(name);
    }
    if (chosen.length < g.workers) {
      const kept = new Set(chosen);
      const candidates = view.nodes.filter((s) => usable(s) && !kept.has(s.name));
      candidates.sort(
        (a, b) =>
          Number(b.fitsNow(r)) - Number(a.fitsNow(r)) ||
          b.freeGpus() - a.freeGpus() ||
          b.freeCpuMilli() - a.freeCpuMilli() ||
          b.freeMemoryBytes() - a.freeMemoryBytes() ||
          (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
      );
      for (const s of candidates) {
        if (chosen.length === g.workers) break;
        chosen.push(s.name);
      }
    }
    for (const name of chosen) this.heldBy.set(name, g.key);
    return chosen.sort();
  }

  private neverFits(g: GangRequest, view: ClassView, shape: Shape): string {
    const eligible = view.nodes.length;
    const capable = shape.capable;
    const need =
      g.workers === 1 ? `a node that can hold its worker (${shape.worker})` : `${g.workers} nodes that can each hold one worker (${shape.worker}), one worker per node,`;
    const parts = [`Never fits: resource class "${g.classKey}" needs ${need} and ${capable === 0 ? 'no node' : `only ${nodes(capable)}`} can`];
    if (g.explainIneligible !== undefined) view.breakdown ??= ineligibilityBreakdown(this.infos(), g.explainIneligible);
    const others = view.breakdown ? ` (${view.breakdown})` : '';
    if (eligible === 0) {
      parts.push(`no node is eligible for the class${others}`);
    } else {
      let line = `${nodes(eligible)} ${eligible === 1 ? 'is' : 'are'} eligible`;
      if (capable < eligible) {
        const l = view.largest;
        line += `, ${eligible - capable} of them too small (the largest eligible allocatable is ${l.gpus} GPUs, ${formatCpu(l.cpuMilli)} CPU, ${formatBytes(l.memoryBytes)} memory)`;
      }
      parts.push(line);
      if (others !== '') parts.push(`the other nodes are not${others}`);
    }
    return `${parts.join('; ')}. Lower the class's nodes or per-worker request, or add or relabel nodes for it.`;
  }

  private *infos(): Generator<NodeInfo> {
    for (const s of this.capacity.states()) if (s.info !== undefined) yield s.info;
  }
}

/**
 * How many gangs of this shape fit on the eligible nodes, each worker on a distinct node: now (`fitNow`, on free
 * capacity) and at most (`fitMax`, on empty nodes). For ResourceClass status; O(eligible nodes).
 */
export function classFit(
  capacity: CapacityModel,
  eligible: (node: NodeInfo) => boolean,
  workers: number,
  perWorker: Resources,
): { eligibleNodes: number; fitNow: number; fitMax: number } {
  const now: number[] = [];
  const empty: number[] = [];
  for (const s of capacity.states()) {
    const info = s.info;
    if (info === undefined || !eligible(info)) continue;
    const a = info.allocatable;
    empty.push(copies(perWorker, a.cpuMilli, a.memoryBytes, a.gpus, a.pods));
    now.push(copies(perWorker, s.freeCpuMilli(), s.freeMemoryBytes(), s.freeGpus(), s.freePods()));
  }
  return { eligibleNodes: empty.length, fitNow: maxGangs(now, workers), fitMax: maxGangs(empty, workers) };
}

/** Workers of this size that fit in the given amounts. */
function copies(r: Resources, cpuMilli: number, memoryBytes: number, gpus: number, pods: number): number {
  let n = Math.max(0, pods);
  if (r.cpuMilli > 0) n = Math.min(n, Math.floor(cpuMilli / r.cpuMilli));
  if (r.memoryBytes > 0) n = Math.min(n, Math.floor(memoryBytes / r.memoryBytes));
  if (r.gpus > 0) n = Math.min(n, Math.floor(gpus / r.gpus));
  return Math.max(0, n);
}

/**
 * The most gangs G of `workers` workers, each on distinct nodes, where node i takes at most perNode[i] workers:
 * the largest G with Σ min(perNode[i], G) ≥ G × workers. The left side is concave in G, so the feasible G form a
 * prefix and binary search finds its end.
 */
function maxGangs(perNode: readonly number[], workers: number): number {
  if (workers < 1) return 0;
  let total = 0;
  for (const k of perNode) total += k;
  let lo = 0;
  let hi = Math.floor(total / workers);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    let sum = 0;
    for (const k of perNode) sum += Math.min(k, mid);
    if (sum >= mid * workers) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function queueOrder(a: GangRequest, b: GangRequest): number {
  return (a.tier ?? 0) - (b.tier ?? 0) || b.priority - a.priority || (a.orderMs ?? a.arrivalMs) - (b.orderMs ?? b.arrivalMs) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

function sameRequest(a: Resources, b: Resources): boolean {
  return a.gpus === b.gpus && a.cpuMilli === b.cpuMilli && a.memoryBytes === b.memoryBytes;
}

function invalidRequest(g: GangRequest): string | undefined {
  if (!Number.isSafeInteger(g.workers) || g.workers < 1) return `Invalid request: workers must be a whole number of at least 1, got ${g.workers}.`;
  const r = g.perWorker;
  const bad = !wholeAmount(r.gpus) ? 'gpus' : !wholeAmount(r.cpuMilli) ? 'cpuMilli' : !wholeAmount(r.memoryBytes) ? 'memoryBytes' : undefined;
  return bad === undefined ? undefined : `Invalid request: per-worker ${bad} must be a whole number of at least 0, got ${r[bad]}.`;
}

function wholeAmount(v: number): boolean {
  return Number.isSafeInteger(v) && v >= 0;
}

function nodes(n: number): string {
  return n === 1 ? '1 node' : `${n} nodes`;
}

function worker(r: Resources): string {
  const parts = [`${formatCpu(r.cpuMilli)} CPU`, `${formatBytes(r.memoryBytes)} memory`];
  if (r.gpus > 0) parts.unshift(r.gpus === 1 ? '1 GPU' : `${r.gpus} GPUs`);
  return parts.join(', ');
}

function insufficient(g: GangRequest, shape: Shape, s: Shortfall): string {
  let m =
    `Waiting for capacity on resource class "${g.classKey}": needs ${nodes(g.workers)} each with ${shape.worker} free; ` +
    `${s.fitNow} of the ${shape.capable} eligible nodes large enough ${s.fitNow === 1 ? 'has' : 'have'} that now`;
  if (s.heldFits > 0) m += ` and ${s.heldFits} more ${s.heldFits === 1 ? 'is' : 'are'} held for an experiment that has waited longer`;
  if (g.perWorker.gpus > 0) m += `; ${s.freeGpus} GPUs are free across the class's eligible nodes`;
  return `${m}. It starts when running work on these nodes finishes.`;
}

function waitingBehind(g: GangRequest, shape: Shape, ahead: number, head: string): string {
  const others = ahead === 1 ? '1 experiment' : `${ahead} experiments`;
  return (
    `Waiting behind ${others} queued earlier or with higher priority on resource class "${g.classKey}" (first in line: ${head}); ` +
    `it needs ${nodes(g.workers)} each with ${shape.worker} free.`
  );
}

function holding(held: readonly string[], workers: number, starvationMs: number): string {
  if (held.length === 0) return ` It has waited longer than ${duration(starvationMs)}, but every suitable node is held for experiments ahead of it.`;
  const shown = held.length > 3 ? `${held.slice(0, 3).join(', ')} and ${held.length - 3} more` : held.join(', ');
  const partial = held.length < workers ? ` (${workers - held.length} more will be held when nodes held for others free up)` : '';
  return ` It has waited longer than ${duration(starvationMs)}, so no experiment queued after it may start on ${shown}${partial} until it has started.`;
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
}
