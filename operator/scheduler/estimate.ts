/**
 * When will a pending gang start? A pure replay of the queue on the capacity there is: running gangs end when their
 * steps reach max_steps at their current speed, and at each end the waiting gangs are admitted in queue order with
 * backfill, as GangScheduler admits them (all workers at once, one per distinct eligible node, best fit). A waiting
 * gang that starts in the replay frees its nodes after its own expected duration, when that is known (a run that
 * trained before: its steps left at its last speed); otherwise it is taken to hold them past the horizon.
 *
 * It is an estimate, and says so: a running gang without a reported speed never ends in the replay, so gangs that
 * can only start after it get no estimate (the reasoning names it), and gangs that arrive later with a higher
 * priority, failures and preemptions are not foreseen.
 */
import type { Resources } from './capacity.ts';

export interface EstimateNode {
  name: string;
  free: Resources & { pods: number };
}

export interface RunningWork {
  key: string;
  frees: readonly { node: string; resources: Resources }[];
  /** ms until it reaches max_steps at its current speed; undefined when it has reported no speed. */
  remainingMs?: number;
  /** For the reasoning: "1200 of 5000 steps left at 20 steps/s". */
  why?: string;
}

export interface QueuedGang {
  key: string;
  workers: number;
  perWorker: Resources;
  /** Node names the gang may use. */
  eligible: ReadonlySet<string>;
  /** How long it runs once started, when known. */
  durationMs?: number;
}

export interface Estimate {
  key: string;
  /** ms since the epoch; undefined when the replay cannot say. */
  atMs?: number;
  /** What it waits for and what goes first, without times ("when ns/a finishes (…), after 1 experiment queued ahead of it"). */
  reasoning: string;
}

export interface EstimateInput {
  nowMs: number;
  nodes: readonly EstimateNode[];
  running: readonly RunningWork[];
  /** In queue order (priority, then arrival). */
  queue: readonly QueuedGang[];
}

interface Ending {
  atMs: number;
  key: string;
  why?: string;
  frees: readonly { node: string; resources: Resources }[];
}

export function estimateStarts(input: EstimateInput): Estimate[] {
  const free = new Map(input.nodes.map((n) => [n.name, { ...n.free }]));
  const endings: Ending[] = [];
  const unknown: string[] = [];
  for (const r of input.running) {
    if (r.remainingMs === undefined) unknown.push(r.key);
    else endings.push({ atMs: input.nowMs + Math.max(0, r.remainingMs), key: r.key, why: r.why, frees: r.frees });
  }
  const started = new Map<string, { atMs: number; after?: Ending; ahead: number }>();
  let t = input.nowMs;
  let last: Ending | undefined;
  for (;;) {
    let ahead = 0;
    for (const g of input.queue) {
      if (started.has(g.key)) continue;
      const nodes = place(g, free);
      if (nodes === undefined) {
        ahead++;
        continue;
      }
      const frees = nodes.map((node) => ({ node, resources: g.perWorker }));
      for (const f of frees) take(free, f.node, f.resources, -1);
      started.set(g.key, { atMs: t, after: last, ahead: countStartedAhead(input.queue, g.key, started, t) });
      if (g.durationMs !== undefined) endings.push({ atMs: t + g.durationMs, key: g.key, frees });
    }
    if (started.size === input.queue.length || endings.length === 0 || ahead === 0) break;
    endings.sort((a, b) => a.atMs - b.atMs || (a.key < b.key ? -1 : 1));
    const next = endings.shift()!;
    t = Math.max(t, next.atMs);
    for (const f of next.frees) take(free, f.node, f.resources, +1);
    last = next;
  }

  return input.queue.map((g) => {
    const s = started.get(g.key);
    if (s === undefined) {
      const blockers = unknown.length > 0 ? ` until ${list(unknown)} ${unknown.length === 1 ? 'reports its' : 'report their'} training speed` : '';
      return { key: g.key, reasoning: `No start estimate yet: what runs now does not free enough capacity for it in the replay of the queue${blockers}.` };
    }
    // No times in the words: the caller puts the (rounded) time in front, and the words stay put while it holds.
    const when = s.after === undefined ? 'on capacity free now' : `when ${s.after.key} finishes${s.after.why ? ` (${s.after.why})` : ''}`;
    const ahead = s.ahead > 0 ? `, after ${s.ahead === 1 ? '1 experiment' : `${s.ahead} experiments`} queued ahead of it` : '';
    return { key: g.key, atMs: s.atMs, reasoning: `${when}${ahead}` };
  });
}

/** Gangs earlier in the queue that the replay started no later than `t`. */
function countStartedAhead(queue: readonly QueuedGang[], key: string, started: ReadonlyMap<string, { atMs: number }>, t: number): number {
  let n = 0;
  for (const g of queue) {
    if (g.key === key) break;
    const s = started.get(g.key);
    if (s !== undefined && s.atMs <= t) n++;
  }
  return n;
}

/** Best fit as GangScheduler places: the eligible nodes with the fewest free GPUs that hold a worker, ties by name. */
function place(g: QueuedGang, free: ReadonlyMap<string, Resources & { pods: number }>): string[] | undefined {
  const r = g.perWorker;
  const fits: { name: string; gpus: number }[] = [];
  for (const name of g.eligible) {
    const f = free.get(name);
    if (f && f.gpus >= r.gpus && f.cpuMilli >= r.cpuMilli && f.memoryBytes >= r.memoryBytes && f.pods >= 1) fits.push({ name, gpus: f.gpus });
  }
  if (fits.length < g.workers) return undefined;
  fits.sort((a, b) => a.gpus - b.gpus || (a.name < b.name ? -1 : 1));
  return fits.slice(0, g.workers).map((f) => f.name);
}

function take(free: Map<string, Resources & { pods: number }>, node: string, r: Resources, sign: 1 | -1): void {
  const f = free.get(node);
  if (!f) return;
  f.gpus += sign * r.gpus;
  f.cpuMilli += sign * r.cpuMilli;
  f.memoryBytes += sign * r.memoryBytes;
  f.pods += sign;
}

function list(keys: readonly string[]): string {
  return keys.length > 3 ? `${keys.slice(0, 3).join(', ')} and ${keys.length - 3} more` : keys.join(', ');
}
