// What a chaos scenario is and what it answers. Each scenario starts what it needs (a control plane, the operator
// as processes, simulated GPU nodes, runtime processes), breaks something, and reports figures and the three
// counts the suite is about: what was lost, what was doubled, what was left behind.

export interface ChaosOptions {
  /** Multiplies the scenario's load (experiments, reports, kills); 1 is the size the issue names. */
  scale: number;
  /** Seed for the moments and choices a scenario makes at random, so a failure can be replayed. */
  seed: number;
  /** Where the scenario may keep files. */
  dir: string;
  log: (line: string) => void;
}

export interface ChaosResult {
  /** Measured figures, printed as `key=value` in the given order (durations in ms, rates per second). */
  figures: Record<string, number | string>;
  /** Acknowledged work (checkpoints, reports, transitions) that the end state does not have. */
  lost: number;
  /** Objects or records that exist twice (worker pods of one rank and attempt, a report counted twice). */
  duplicates: number;
  /** Objects that should be gone and are not (pods of finished experiments, processes, mounts). */
  leaked: number;
  /** Why the scenario failed, beyond the counts (an experiment in the wrong phase, a deadline missed). */
  failures: string[];
}

export interface ChaosScenario {
  name: string;
  /** One line: what breaks and what must hold. */
  description: string;
  run(opts: ChaosOptions): Promise<ChaosResult>;
}

export function emptyResult(): ChaosResult {
  return { figures: {}, lost: 0, duplicates: 0, leaked: 0, failures: [] };
}

export function passed(r: ChaosResult): boolean {
  return r.lost === 0 && r.duplicates === 0 && r.leaked === 0 && r.failures.length === 0;
}

/** `chaos: <scenario>: <figures> lost=<n> duplicates=<n> leaked=<n>`, the line the suite prints per scenario. */
export function resultLine(name: string, r: ChaosResult): string {
  const figures = Object.entries(r.figures).map(([k, v]) => `${k}=${typeof v === 'number' ? formatNumber(v) : v}`);
  return `chaos: ${name}: ${[...figures, `lost=${r.lost}`, `duplicates=${r.duplicates}`, `leaked=${r.leaked}`].join(' ')}`;
}

function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
}

/** A small seeded generator (mulberry32): the same seed gives the same kill moments and choices. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The p-th percentile (0..100) of `values`, nearest-rank; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}
