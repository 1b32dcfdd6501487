/**
 * Victim choice for checkpoint-aware preemption, as a pure function: which running gangs of lower priority to stop
 * so that a higher-priority gang that does not fit now would fit.
 *
 * Rules, in order:
 * - Only gangs of strictly lower priority that have run at least `minRunTimeMs` (this attempt) are candidates: a
 *   gang that just started has written no checkpoint worth keeping, and preempting it over and over would starve it.
 * - Nothing is preempted for a gang that would still not fit with every candidate gone.
 * - The fewest victims that make it fit; among sets of that size, the one that loses the least work, i.e. the
 *   smallest sum of time since each victim's last checkpoint (or since its attempt started, without one); then the
 *   lower priorities; then keys, so the answer is deterministic.
 *
 * - Reclaim (team quotas, teams.ts): a candidate marked `reclaimFrom` belongs to another team that borrows GPUs
 *   beyond its quota; it may be taken whatever its priority, but a team's victims together may cut at most into
 *   what it borrows: before the last of them (the largest) is taken, the team must still be over its quota.
 *
 * The search is exact for small candidate sets (every subset of size 1, 2, … until one fits, within a budget of
 * 5,000 subsets looked at); beyond the budget it falls back to greedy (least lost work first until it fits) and then drops
 * every victim the fit does not need. Fit is per node: a worker needs one distinct node whose free capacity, plus
 * what its victims there would free, holds the per-worker request.
 */
import type { Resources } from './capacity.ts';

/** An eligible node of the preemptor's class, with what is free on it now. */
export interface FreeNode {
  name: string;
  free: Resources & { pods: number };
}

/** A running gang that could be preempted. */
export interface Candidate {
  key: string;
  priority: number;
  /** When its current attempt started running (ms since the epoch). */
  startedAtMs: number;
  /** When it last wrote a checkpoint in this attempt's run; undefined when it has none. */
  lastCheckpointAtMs?: number;
  /** What stopping it gives back, per node (its workers' requests). */
  frees: readonly { node: string; resources: Resources }[];
  /** Set for a gang of another team that borrows: its team, so reclaim may take it regardless of priority. */
  reclaimFrom?: string;
}

export interface Preemptor {
  key: string;
  priority: number;
  workers: number;
  perWorker: Resources;
}

export interface VictimInput {
  gang: Preemptor;
  nodes: readonly FreeNode[];
  candidates: readonly Candidate[];
  nowMs: number;
  minRunTimeMs: number;
  /** GPUs each team borrows beyond its quota, for candidates with reclaimFrom. */
  borrowedGpus?: ReadonlyMap<string, number>;
  /** Subsets the exact search may look at before it goes greedy. Default 5,000. */
  searchBudget?: number;
}

export type VictimChoice =
  | { ok: true; victims: Candidate[]; lostMs: number }
  | { ok: false; why: 'FitsAlready' | 'NoCandidates' | 'StillWouldNotFit'; message: string };

const DEFAULT_BUDGET = 5_000;

/** The work a victim would lose if stopped now: time since its last checkpoint, or since it started. */
export function lostWorkMs(c: Candidate, nowMs: number): number {
  return Math.max(0, nowMs - (c.lastCheckpointAtMs ?? c.startedAtMs));
}

export function chooseVictims(input: VictimInput): VictimChoice {
  const { gang, nodes, nowMs } = input;
  const fit = fitter(gang, nodes);
  if (fit([])) return { ok: false, why: 'FitsAlready', message: `${gang.key} fits without preempting anything.` };

  const eligible = new Set(nodes.map((n) => n.name));
  const tooYoung: string[] = [];
  const candidates = input.candidates
    .filter((c) => {
      if ((c.reclaimFrom === undefined && c.priority >= gang.priority) || !c.frees.some((f) => eligible.has(f.node))) return false;
      if (nowMs - c.startedAtMs < input.minRunTimeMs) {
        tooYoung.push(c.key);
        return false;
      }
      return true;
    })
    .sort((a, b) => lostWorkMs(a, nowMs) - lostWorkMs(b, nowMs) || a.priority - b.priority || cmp(a.key, b.key));
  const young = tooYoung.length > 0 ? ` (${tooYoung.length} ran less than the minimum run time of ${Math.round(input.minRunTimeMs / 1000)}s)` : '';
  if (candidates.length === 0) {
    const teams = input.borrowedGpus !== undefined ? ', and no other team borrows GPUs there,' : '';
    return { ok: false, why: 'NoCandidates', message: `No running experiment of lower priority than ${gang.priority} on its nodes${teams} can be preempted${young}.` };
  }
  const allowed = reclaimLimit(input.borrowedGpus);
  if (!fit(candidates)) {
    return {
      ok: false,
      why: 'StillWouldNotFit',
      message: `Preempting every one of the ${candidates.length} lower-priority experiments that may be preempted would still not make room${young}, so none is.`,
    };
  }

  const best = exact(candidates, fit, allowed, nowMs, input.searchBudget ?? DEFAULT_BUDGET) ?? greedy(candidates, fit, allowed);
  if (best === undefined) {
    return {
      ok: false,
      why: 'StillWouldNotFit',
      message: `Reclaiming only what other teams borrow beyond their quota would not make room, and no lower-priority run of its own team would${young}, so none is preempted.`,
    };
  }
  return { ok: true, victims: best, lostMs: best.reduce((sum, c) => sum + lostWorkMs(c, nowMs), 0) };
}

/**
 * Whether the gang fits once the given victims are gone. Nodes that hold a worker already are counted once; a call
 * then only looks at the nodes its victims free something on, so the search costs O(victims' workers) per subset.
 */
function fitter(gang: Preemptor, nodes: readonly FreeNode[]): (victims: readonly Candidate[]) => boolean {
  const r = gang.perWorker;
  const holds = (gpus: number, cpu: number, mem: number, pods: number) => gpus >= r.gpus && cpu >= r.cpuMilli && mem >= r.memoryBytes && pods >= 1;
  const byName = new Map(nodes.map((n) => [n.name, n]));
  let fitsNow = 0;
  for (const n of nodes) if (holds(n.free.gpus, n.free.cpuMilli, n.free.memoryBytes, n.free.pods)) fitsNow++;
  return (victims) => {
    if (fitsNow >= gang.workers) return true;
    const freed = new Map<string, Resources & { pods: number }>();
    for (const v of victims) {
      for (const f of v.frees) {
        if (!byName.has(f.node)) continue;
        const acc = freed.get(f.node) ?? { cpuMilli: 0, memoryBytes: 0, gpus: 0, pods: 0 };
        acc.cpuMilli += f.resources.cpuMilli;
        acc.memoryBytes += f.resources.memoryBytes;
        acc.gpus += f.resources.gpus;
        acc.pods += 1;
        freed.set(f.node, acc);
      }
    }
    let fits = fitsNow;
    for (const [name, extra] of freed) {
      const n = byName.get(name)!;
      if (holds(n.free.gpus, n.free.cpuMilli, n.free.memoryBytes, n.free.pods)) continue;
      if (holds(n.free.gpus + extra.gpus, n.free.cpuMilli + extra.cpuMilli, n.free.memoryBytes + extra.memoryBytes, n.free.pods + extra.pods) && ++fits >= gang.workers) return true;
    }
    return false;
  };
}

/**
 * Every subset of size k = 1, 2, … (candidates are sorted by lost work, so the first fitting subset of a size in
 * lexicographic order is not necessarily the best: all of that size are compared). Undefined past the budget.
 */
/**
 * Whether a set of victims takes from each lending team at most what it borrows: with its largest victim set aside,
 * the rest must leave the team over its quota, so that every victim is taken while its team still borrows.
 */
function reclaimLimit(borrowed: ReadonlyMap<string, number> | undefined): (victims: readonly Candidate[]) => boolean {
  if (borrowed === undefined) return () => true;
  return (victims) => {
    const sum = new Map<string, { total: number; largest: number }>();
    for (const v of victims) {
      if (v.reclaimFrom === undefined) continue;
      const gpus = v.frees.reduce((n, f) => n + f.resources.gpus, 0);
      const acc = sum.get(v.reclaimFrom) ?? { total: 0, largest: 0 };
      acc.total += gpus;
      acc.largest = Math.max(acc.largest, gpus);
      sum.set(v.reclaimFrom, acc);
    }
    for (const [team, acc] of sum) if (acc.total - acc.largest >= (borrowed.get(team) ?? 0)) return false;
    return true;
  };
}

function exact(candidates: Candidate[], fit: (v: readonly Candidate[]) => boolean, allowed: (v: readonly Candidate[]) => boolean, nowMs: number, budget: number): Candidate[] | undefined {
  let looked = 0;
  const n = candidates.length;
  for (let k = 1; k <= n; k++) {
    let best: { set: Candidate[]; lost: number; prio: number } | undefined;
    const idx = Array.from({ length: k }, (_, i) => i);
    for (;;) {
      if (++looked > budget) return undefined;
      const set = idx.map((i) => candidates[i]!);
      if (allowed(set) && fit(set)) {
        const lost = set.reduce((s, c) => s + lostWorkMs(c, nowMs), 0);
        const prio = set.reduce((s, c) => s + c.priority, 0);
        if (best === undefined || lost < best.lost || (lost === best.lost && prio < best.prio)) best = { set, lost, prio };
      }
      // Next combination in lexicographic order.
      let i = k - 1;
      while (i >= 0 && idx[i] === n - k + i) i--;
      if (i < 0) break;
      idx[i]!++;
      for (let j = i + 1; j < k; j++) idx[j] = idx[j - 1]! + 1;
    }
    if (best !== undefined) return best.set;
  }
  return undefined;
}

/**
 * Least lost work first (skipping any the reclaim limit forbids) until it fits, then drop (most lost work first) every
 * victim the fit does not need; undefined when it never fits.
 */
function greedy(candidates: Candidate[], fit: (v: readonly Candidate[]) => boolean, allowed: (v: readonly Candidate[]) => boolean): Candidate[] | undefined {
  const chosen: Candidate[] = [];
  let fits = false;
  for (const c of candidates) {
    chosen.push(c);
    if (!allowed(chosen)) {
      chosen.pop();
      continue;
    }
    if ((fits = fit(chosen))) break;
  }
  if (!fits) return undefined;
  for (let i = chosen.length - 1; i >= 0; i--) {
    const without = chosen.filter((_, j) => j !== i);
    if (fit(without)) chosen.splice(i, 1);
  }
  return chosen;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
