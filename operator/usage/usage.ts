// Usage metering for reports: node-hours, GPU-hours and credits per experiment, and per UTC day, namespace and
// class, within a time window. Two sources per experiment:
//  - recorded: status.usage, folded in by the experiment controller whenever an attempt ends, as totals and per
//    UTC day (status.usage.days) — so each day gets exactly what ran on it;
//  - live: the attempt running now (status.attemptStartedAt until now, times its workers), not yet recorded.
// What the days do not account for (days beyond the newest USAGE_DAYS_KEPT, or status written before days were
// recorded) is spread evenly over the run's active span before the first listed day: totals stay exact, and only
// that remainder's placement on days is an estimate. Within a day, usage counts as spread evenly (up to where the
// recorded attempts ended), so a window that cuts a day in two gets a proportional share of it.
import type { Experiment, ExperimentPhase } from '../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../api/v1alpha1/resourceclass.ts';

const DAY_MS = 86_400_000;

export interface Amounts {
  nodeSeconds: number;
  gpuSeconds: number;
  credits: number;
}

/** A stretch of time over which some usage was spent evenly. */
export interface UsageSpan extends Amounts {
  startMs: number;
  endMs: number;
  live: boolean;
}

export interface UsageWindow {
  fromMs: number;
  /** Exclusive. */
  toMs: number;
}

export interface ExperimentUsageRow extends Amounts {
  namespace: string;
  name: string;
  class: string;
  phase: ExperimentPhase;
  liveNodeSeconds: number;
}

export interface DailyRow extends Amounts {
  /** YYYY-MM-DD, UTC. */
  date: string;
  namespace: string;
  class: string;
  experiment: string;
  live: boolean;
}

export interface UsageResult {
  experiments: ExperimentUsageRow[];
  /** Per day and experiment, in no particular order (sortDaily puts them in report order). */
  daily: DailyRow[];
  totals: Amounts;
}

function parseTime(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  const ms = v instanceof Date ? v.getTime() : Date.parse(String(v));
  return Number.isFinite(ms) ? ms : undefined;
}

/** The spans an experiment spent resources over: what status.usage recorded, and the attempt running now. */
export function usageSpans(e: Experiment, cls: ResourceClass | undefined, nowMs: number): UsageSpan[] {
  const s = e.status ?? {};
  const spans: UsageSpan[] = [];
  const attemptStart = parseTime(s.attemptStartedAt);
  const recorded = s.usage;
  if (recorded && (recorded.nodeSeconds > 0 || recorded.gpuSeconds > 0 || recorded.credits > 0)) {
    const rest = { nodeSeconds: recorded.nodeSeconds, gpuSeconds: recorded.gpuSeconds, credits: recorded.credits };
    // Recorded usage ends where the last ended attempt did; a day's share never runs past that (today's share would
    // otherwise be spread into hours that have not happened, and a window ending now would miss part of it).
    const recordedEndMs = parseTime(s.finishedAt) ?? attemptStart ?? parseTime(s.lastFailure?.at) ?? nowMs;
    let firstDayMs: number | undefined;
    for (const d of recorded.days ?? []) {
      const dayMs = parseTime(`${d.date}T00:00:00Z`);
      if (dayMs === undefined) continue;
      firstDayMs = Math.min(firstDayMs ?? dayMs, dayMs);
      const endMs = Math.max(dayMs, Math.min(dayMs + DAY_MS, recordedEndMs));
      spans.push({ startMs: dayMs, endMs, nodeSeconds: d.nodeSeconds, gpuSeconds: d.gpuSeconds, credits: d.credits, live: false });
      rest.nodeSeconds -= d.nodeSeconds;
      rest.gpuSeconds -= d.gpuSeconds;
      rest.credits -= d.credits;
    }
    // Rounding leaves the days a few millionths of a credit off the total; only a real remainder is spread.
    if (rest.nodeSeconds > 0 || rest.gpuSeconds > 0 || rest.credits > 1e-4) {
      const endMs = Math.min(recordedEndMs, firstDayMs ?? recordedEndMs);
      const startMs = Math.min(endMs, parseTime(s.startedAt) ?? parseTime(e.metadata?.creationTimestamp) ?? endMs);
      spans.push({ startMs, endMs, nodeSeconds: Math.max(0, rest.nodeSeconds), gpuSeconds: Math.max(0, rest.gpuSeconds), credits: Math.max(0, rest.credits), live: false });
    }
  }
  if (attemptStart !== undefined && attemptStart < nowMs) {
    const workers = s.workers?.desired ?? cls?.spec.nodes ?? 0;
    const seconds = (nowMs - attemptStart) / 1000;
    const nodeSeconds = seconds * workers;
    spans.push({
      startMs: attemptStart,
      endMs: nowMs,
      nodeSeconds,
      gpuSeconds: nodeSeconds * (cls?.spec.worker?.gpus ?? 0),
      credits: (nodeSeconds / 3600) * (cls?.spec.creditsPerNodeHour ?? 0),
      live: true,
    });
  }
  return spans;
}

// Day names by day number: a report over weeks of thousands of experiments asks for the same few dozen days
// thousands of times, and toISOString is the dearest step of the day split.
const dayNames = new Map<number, string>();

export function utcDate(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  let name = dayNames.get(day);
  if (name === undefined) {
    name = new Date(day * DAY_MS).toISOString().slice(0, 10);
    if (dayNames.size > 10_000) dayNames.clear();
    dayNames.set(day, name);
  }
  return name;
}

/** The part of a span inside the window, cut at UTC midnights: [date, fraction of the span][]. */
export function spanDays(span: Pick<UsageSpan, 'startMs' | 'endMs'>, w: UsageWindow): [string, number][] {
  const length = span.endMs - span.startMs;
  if (length <= 0) {
    // An instant: all of it belongs to the day it happened, if that is inside the window.
    return span.startMs >= w.fromMs && span.startMs < w.toMs ? [[utcDate(span.startMs), 1]] : [];
  }
  const from = Math.max(span.startMs, w.fromMs);
  const to = Math.min(span.endMs, w.toMs);
  const out: [string, number][] = [];
  for (let t = from; t < to; ) {
    const dayEnd = Math.floor(t / DAY_MS) * DAY_MS + DAY_MS;
    const end = Math.min(dayEnd, to);
    out.push([utcDate(t), (end - t) / length]);
    t = end;
  }
  return out;
}

const zero = (): Amounts => ({ nodeSeconds: 0, gpuSeconds: 0, credits: 0 });

function add(into: Amounts, a: Amounts, f = 1): void {
  into.nodeSeconds += a.nodeSeconds * f;
  into.gpuSeconds += a.gpuSeconds * f;
  into.credits += a.credits * f;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface UsageQuery {
  window: UsageWindow;
  namespace?: string;
  nowMs: number;
  classOf: (name: string) => ResourceClass | undefined;
}

export function computeUsage(experiments: Iterable<Experiment>, q: UsageQuery): UsageResult {
  const rows: ExperimentUsageRow[] = [];
  const daily = new Map<string, DailyRow>();
  const totals = zero();
  for (const e of experiments) {
    const namespace = e.metadata?.namespace ?? '';
    if (q.namespace !== undefined && namespace !== q.namespace) continue;
    const className = e.spec.resourceClass ?? '';
    const spans = usageSpans(e, className ? q.classOf(className) : undefined, q.nowMs);
    if (spans.length === 0) continue;
    const name = e.metadata?.name ?? '';
    const row: ExperimentUsageRow = { namespace, name, class: className, phase: e.status?.phase ?? 'Draft', ...zero(), liveNodeSeconds: 0 };
    for (const span of spans) {
      for (const [date, f] of spanDays(span, q.window)) {
        add(row, span, f);
        if (span.live) row.liveNodeSeconds += span.nodeSeconds * f;
        const key = `${date}\u0000${namespace}\u0000${name}`;
        let d = daily.get(key);
        if (!d) daily.set(key, (d = { date, namespace, class: className, experiment: name, live: false, ...zero() }));
        add(d, span, f);
        d.live ||= span.live;
      }
    }
    if (row.nodeSeconds > 0 || row.gpuSeconds > 0 || row.credits > 0) {
      rows.push(row);
      add(totals, row);
    }
  }
  rows.sort((a, b) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name));
  return { experiments: rows, daily: [...daily.values()], totals };
}

/** Daily rows in report order: date, namespace, class, experiment. */
export function sortDaily<T extends Pick<DailyRow, 'date' | 'namespace' | 'class'> & { experiment?: string }>(rows: T[]): T[] {
  return rows.sort((a, b) => cmp(a.date, b.date) || cmp(a.namespace, b.namespace) || cmp(a.class, b.class) || cmp(a.experiment ?? '', b.experiment ?? ''));
}

export interface DayClassTotal extends Amounts {
  date: string;
  namespace: string;
  class: string;
  experiments: number;
}

/** The daily rows summed per day, namespace and class. */
export function totalsByDayAndClass(daily: readonly DailyRow[]): DayClassTotal[] {
  const out = new Map<string, DayClassTotal>();
  for (const d of daily) {
    const key = `${d.date}\u0000${d.namespace}\u0000${d.class}`;
    let t = out.get(key);
    if (!t) out.set(key, (t = { date: d.date, namespace: d.namespace, class: d.class, experiments: 0, ...zero() }));
    t.experiments++;
    add(t, d);
  }
  return sortDaily([...out.values()]);
}

/** Seconds to hours, rounded to 6 decimals (a few milliseconds of a node): what reports show. */
export function hours(seconds: number): number {
  return round6(seconds / 3600);
}

export function round6(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}
