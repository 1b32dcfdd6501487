// Checkpoints that an earlier attempt of this experiment wrote but whose reports the operator never acknowledged:
// the attempt was cut off from the operator until it ended (a partition longer than the stop grace, a node lost
// right after a final checkpoint). Its report buffer, kept with the checkpoints, still holds them. A new attempt
// reads every earlier attempt's buffer, reports those whose files are on disk as they were reported, and resumes
// from the newest of them when it is newer than the checkpoint the operator chose: nothing written is lost.
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { CheckpointEvent } from '../operator/runtime-api/protocol.ts';
import { checkpointSize } from './checkpoint-size.ts';
import { parseBuffer } from './reporter.ts';

export interface Origin {
  run: number;
  attempt: number;
}

export interface EarlierCheckpoint {
  /** The run and attempt that wrote it (not the one whose buffer held it, when that one was reporting it late). */
  origin: Origin;
  event: CheckpointEvent;
  /** Whether the operator acknowledged it (then it needs no report, but can still be the newest). */
  acknowledged: boolean;
}

export interface Skipped {
  location: string;
  reason: string;
}

export interface Recovery {
  /** Verified checkpoints the operator never acknowledged, oldest first: to report again. */
  unreported: EarlierCheckpoint[];
  /** The newest verified checkpoint of every earlier attempt, acknowledged or not. */
  newest?: EarlierCheckpoint;
  /** Unacknowledged checkpoints that cannot be reported: their files are gone or changed. */
  skipped: Skipped[];
  /** Each buffer holding an unreported checkpoint, with the highest sequence number it holds. */
  buffers: Map<string, number>;
}

const BUFFER_NAME = /^attempt-([1-9][0-9]*)-worker-([0-9]+)\.jsonl$/;
const RUN_DIR = /^run-([1-9][0-9]*)$/;

const before = (a: Origin, b: Origin) => a.run < b.run || (a.run === b.run && a.attempt < b.attempt);

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** What recovery reads of a checkpoint event; a line edited or damaged by hand is passed over, not trusted. */
function wellFormed(ev: Partial<CheckpointEvent>): boolean {
  const origin = ev.recovered;
  return (
    typeof ev.location === 'string' &&
    ev.location.length > 0 &&
    typeof ev.at === 'string' &&
    Number.isSafeInteger(ev.step) &&
    Number.isSafeInteger(ev.sizeBytes) &&
    (origin === undefined || (typeof origin === 'object' && origin !== null && Number.isSafeInteger(origin.run) && Number.isSafeInteger(origin.attempt)))
  );
}

/** The checkpoint events of one buffer file, with its acknowledged high-water mark and highest sequence number. */
function readBuffer(path: string): { events: CheckpointEvent[]; acked: number; top: number } | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const { acked, events } = parseBuffer(text);
  const top = events.reduce((max, e) => Math.max(max, e.seq), acked);
  const checkpoints = events.filter((e): e is CheckpointEvent => e.type === 'checkpoint' && wellFormed(e));
  return { events: checkpoints, acked, top };
}

/** Why a reported checkpoint cannot be reported again, or undefined when its files are there as they were. */
function unusable(checkpointDir: string, event: CheckpointEvent): string | undefined {
  const root = resolve(checkpointDir);
  const location = resolve(event.location);
  if (!location.startsWith(root + sep)) return `it is outside this experiment's checkpoint folder ${root}`;
  let size: number;
  try {
    size = checkpointSize(location);
  } catch {
    return 'its files are gone';
  }
  if (size !== event.sizeBytes) return `it holds ${size} bytes, not the ${event.sizeBytes} it had when written`;
  return undefined;
}

/**
 * Reads the report buffers of every attempt of this experiment before `current` (under
 * <checkpoint dir>/run-<run>/reports/), and verifies each checkpoint they hold against the files on disk.
 */
export function scanEarlierAttempts(checkpointDir: string, current: Origin): Recovery {
  const found = new Map<string, EarlierCheckpoint>();
  /** The buffers holding each unacknowledged checkpoint, and the highest sequence number each holds. */
  const holders = new Map<EarlierCheckpoint, { path: string; top: number }[]>();
  const runs = list(checkpointDir)
    .map((name) => ({ name, run: Number(RUN_DIR.exec(name)?.[1]) }))
    .filter((r) => Number.isSafeInteger(r.run) && r.run <= current.run)
    .sort((a, b) => a.run - b.run);
  for (const { name, run } of runs) {
    const dir = join(checkpointDir, name, 'reports');
    for (const file of list(dir).sort()) {
      const m = BUFFER_NAME.exec(file);
      if (!m) continue;
      const holder = { run, attempt: Number(m[1]) };
      // This attempt's own buffers, and any of a later attempt (this one is then the stale one), are not earlier.
      if (!before(holder, current)) continue;
      const path = join(dir, file);
      const buffer = readBuffer(path);
      if (!buffer) continue;
      for (const { recovered, ...event } of buffer.events) {
        const origin = recovered ?? holder;
        const acknowledged = event.seq <= buffer.acked;
        // Every rank of a gang, and every attempt that reported it late, may hold the same checkpoint.
        const key = `${origin.run}/${event.step}/${event.location}`;
        let c = found.get(key);
        if (!c) found.set(key, (c = { origin, event, acknowledged }));
        c.acknowledged ||= acknowledged;
        if (!acknowledged) holders.set(c, [...(holders.get(c) ?? []), { path, top: buffer.top }]);
      }
    }
  }
  const all = [...found.values()].sort((a, b) => a.origin.run - b.origin.run || a.event.step - b.event.step || a.origin.attempt - b.origin.attempt);
  // Verified against the disk only where it matters (an LLM checkpoint is many files, and a long run has hundreds
  // of acknowledged checkpoints): every unacknowledged one, and the newest acknowledged ones until one is intact.
  const unreported = new Set<EarlierCheckpoint>();
  const skipped: Skipped[] = [];
  const buffers = new Map<string, number>();
  for (const c of all.filter((x) => !x.acknowledged)) {
    const why = unusable(checkpointDir, c.event);
    if (why) {
      skipped.push({ location: c.event.location, reason: why });
      continue;
    }
    unreported.add(c);
    for (const b of holders.get(c) ?? []) buffers.set(b.path, Math.max(buffers.get(b.path) ?? -1, b.top));
  }
  const newest = all.findLast((c) => (c.acknowledged ? unusable(checkpointDir, c.event) === undefined : unreported.has(c)));
  return { unreported: [...unreported], newest, skipped, buffers };
}

/**
 * Marks the buffers' checkpoints as handed over to this attempt, whose own buffer now holds them durably: a later
 * attempt reads them there, not here again. Returns the buffers that could not be marked (a later attempt then
 * reports their checkpoints once more, which the operator recognises as already listed).
 */
export function handOver(buffers: Map<string, number>): { path: string; error: string }[] {
  const failed: { path: string; error: string }[] = [];
  for (const [path, top] of buffers) {
    try {
      appendFileSync(path, `${JSON.stringify({ ack: top })}\n`);
    } catch (err) {
      failed.push({ path, error: (err as Error).message });
    }
  }
  return failed;
}
