import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CheckpointEvent } from '../operator/runtime-api/protocol.ts';
import { handOver, scanEarlierAttempts, type Origin } from './recovery.ts';

const at = '2026-12-04T01:00:00.000Z';

/** A checkpoint folder of `bytes` bytes under the experiment's folder, and the event that reported it. */
function checkpoint(dir: string, run: number, step: number, opts: { bytes?: number; written?: boolean; recovered?: Origin; seq?: number } = {}): CheckpointEvent {
  const location = join(dir, `run-${run}`, `step-${step}`);
  const bytes = opts.bytes ?? 8;
  if (opts.written !== false) {
    mkdirSync(location, { recursive: true });
    writeFileSync(join(location, 'weights.pt'), 'w'.repeat(bytes));
  }
  return { type: 'checkpoint', seq: opts.seq ?? 0, at, step, sizeBytes: bytes, location, ...(opts.recovered ? { recovered: opts.recovered } : {}) };
}

/** An attempt's report buffer: its events, numbered in order, then an acknowledgement line when `acked` is given. */
function buffer(dir: string, run: number, attempt: number, worker: number, events: CheckpointEvent[], acked?: number, extra = ''): string {
  const path = join(dir, `run-${run}`, 'reports', `attempt-${attempt}-worker-${worker}.jsonl`);
  mkdirSync(join(dir, `run-${run}`, 'reports'), { recursive: true });
  const lines = [JSON.stringify({ ack: -1 }), ...events.map((e, seq) => JSON.stringify({ event: { ...e, seq } })), ...(acked === undefined ? [] : [JSON.stringify({ ack: acked })])];
  writeFileSync(path, lines.join('\n') + '\n' + extra);
  return path;
}

interface Case {
  name: string;
  current: Origin;
  build: (dir: string) => void;
  /** [origin run, origin attempt, step] of each checkpoint to report again. */
  unreported: [number, number, number][];
  newest?: number;
  skipped?: RegExp[];
}

const cases: Case[] = [
  {
    name: 'a final checkpoint a stopped run never got acknowledged is found by the next run',
    current: { run: 2, attempt: 1 },
    build: (d) => void buffer(d, 1, 1, 0, [checkpoint(d, 1, 100), checkpoint(d, 1, 150)], 0),
    unreported: [[1, 1, 150]],
    newest: 150,
  },
  {
    name: 'acknowledged checkpoints need no report but the newest still counts',
    current: { run: 1, attempt: 2 },
    build: (d) => void buffer(d, 1, 1, 0, [checkpoint(d, 1, 100), checkpoint(d, 1, 200)], 1),
    unreported: [],
    newest: 200,
  },
  {
    name: 'this attempt\'s own buffers, and a later attempt\'s, are not read',
    current: { run: 1, attempt: 2 },
    build: (d) => {
      buffer(d, 1, 2, 1, [checkpoint(d, 1, 300)]);
      buffer(d, 1, 3, 0, [checkpoint(d, 1, 400)]);
      buffer(d, 2, 1, 0, [checkpoint(d, 2, 500)]);
    },
    unreported: [],
  },
  {
    name: 'a checkpoint whose files are gone, changed or outside the experiment\'s folder is skipped, with the reason',
    current: { run: 1, attempt: 2 },
    build: (d) => {
      const changed = checkpoint(d, 1, 20);
      writeFileSync(join(changed.location, 'weights.pt'), 'short');
      buffer(d, 1, 1, 0, [checkpoint(d, 1, 10, { written: false }), changed, { ...checkpoint(d, 1, 30), location: '/etc' }]);
    },
    unreported: [],
    skipped: [/gone/, /holds 5 bytes, not the 8/, /outside this experiment's checkpoint folder/],
  },
  {
    name: 'every rank\'s copy of one checkpoint is one, and an acknowledgement by any rank settles it',
    current: { run: 1, attempt: 2 },
    build: (d) => {
      const c = checkpoint(d, 1, 40);
      buffer(d, 1, 1, 0, [c]);
      buffer(d, 1, 1, 1, [c]);
      const e = checkpoint(d, 1, 60);
      buffer(d, 1, 1, 2, [e], 0);
      buffer(d, 1, 1, 3, [e]);
    },
    unreported: [[1, 1, 40]],
    newest: 60,
  },
  {
    name: 'a checkpoint an attempt was itself reporting late keeps the run and attempt that wrote it',
    current: { run: 2, attempt: 2 },
    build: (d) => {
      const c = checkpoint(d, 1, 70);
      buffer(d, 1, 1, 0, [c], 0);
      buffer(d, 2, 1, 0, [{ ...c, recovered: { run: 1, attempt: 1 } }]);
    },
    unreported: [],
    newest: 70,
  },
  {
    name: 'a line cut short by a crash, and files that are not buffers, are passed over',
    current: { run: 1, attempt: 2 },
    build: (d) => {
      buffer(d, 1, 1, 0, [checkpoint(d, 1, 80)], undefined, '{"event":{"type":"checkp');
      writeFileSync(join(d, 'run-1', 'reports', 'attempt-1-worker-0.jsonl.tmp'), 'x');
      mkdirSync(join(d, 'run-x', 'reports'), { recursive: true });
    },
    unreported: [[1, 1, 80]],
    newest: 80,
  },
  {
    name: 'a checkpoint line damaged by hand (no location, a step as text, a broken origin) is passed over',
    current: { run: 1, attempt: 2 },
    build: (d) => {
      const good = checkpoint(d, 1, 90);
      const { location: _location, ...noLocation } = checkpoint(d, 1, 91);
      buffer(d, 1, 1, 0, [noLocation as CheckpointEvent, { ...checkpoint(d, 1, 92), step: '92' as unknown as number }, { ...checkpoint(d, 1, 93), recovered: null as unknown as Origin }, good]);
    },
    unreported: [[1, 1, 90]],
    newest: 90,
  },
  {
    name: 'an experiment with no earlier attempt has nothing to recover',
    current: { run: 1, attempt: 1 },
    build: () => undefined,
    unreported: [],
  },
];

for (const c of cases) {
  test(`earlier attempts' checkpoints: ${c.name}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'recovery-test-'));
    try {
      c.build(dir);
      const found = scanEarlierAttempts(dir, c.current);
      assert.deepEqual(
        found.unreported.map((u) => [u.origin.run, u.origin.attempt, u.event.step]),
        c.unreported,
      );
      for (const u of found.unreported) assert.equal(u.event.recovered, undefined, 'the origin travels beside the event, not in it');
      assert.equal(found.newest?.event.step, c.newest);
      assert.equal(found.skipped.length, (c.skipped ?? []).length, JSON.stringify(found.skipped));
      for (const [i, why] of (c.skipped ?? []).entries()) assert.match(found.skipped[i]!.reason, why);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('once handed over, an earlier attempt\'s checkpoints are not reported again, and still count as the newest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'recovery-test-'));
  try {
    const path = buffer(dir, 1, 1, 0, [checkpoint(dir, 1, 100), checkpoint(dir, 1, 150)]);
    const first = scanEarlierAttempts(dir, { run: 1, attempt: 2 });
    assert.deepEqual(first.unreported.map((u) => u.event.step), [100, 150]);
    assert.deepEqual([...first.buffers], [[path, 1]]);
    assert.deepEqual(handOver(first.buffers), []);
    assert.match(readFileSync(path, 'utf8'), /\{"ack":1\}\n$/);
    const again = scanEarlierAttempts(dir, { run: 1, attempt: 3 });
    assert.deepEqual(again.unreported, []);
    assert.equal(again.newest?.event.step, 150);
    assert.deepEqual(handOver(new Map([[join(dir, 'no-such-dir', 'x.jsonl'), 0]])).map((f) => f.error.split(':')[0]), ['ENOENT']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
