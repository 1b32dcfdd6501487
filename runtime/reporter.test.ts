import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../operator/observability/log.ts';
import type { ReportEvent } from '../operator/runtime-api/protocol.ts';
import type { UnnumberedEvent } from './events.ts';
import { Reporter, type FatalKind, type ReporterOptions } from './reporter.ts';
import { FakeOperator } from './testing/fake-operator.ts';

const dir = mkdtempSync(join(tmpdir(), 'reporter-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const logger = createLogger({ silent: true });
const at = () => new Date().toISOString();
const checkpoint = (step: number): UnnumberedEvent => ({ type: 'checkpoint', at: at(), step, sizeBytes: 100, location: `/ck/step-${step}.json`, evaluationScore: step / 10 });
const progress = (step: number): UnnumberedEvent => ({ type: 'progress', at: at(), step });

function open(op: FakeOperator | undefined, extra: Partial<ReporterOptions> = {}): Reporter {
  return Reporter.open({
    baseUrl: op?.url,
    token: op?.token,
    identity: { experiment: { namespace: 'ml', name: 'cartpole' }, run: 1, attempt: 1, worker: 0 },
    bufferPath: join(dir, `buffer-${files++}.jsonl`),
    progressIntervalMs: 60_000,
    backoff: { initialMs: 20, maxMs: 200 },
    logger,
    ...extra,
  });
}

/** Sequence numbers of all events in requests answered 200, in order (an acknowledged resend would repeat one). */
const acceptedSeqs = (op: FakeOperator) => op.requests.filter((r) => r.status === 200).flatMap((r) => r.events.map((e) => e.seq));

async function withOperator(fn: (op: FakeOperator) => Promise<void>): Promise<void> {
  const op = new FakeOperator();
  await op.start();
  try {
    await fn(op);
  } finally {
    await op.stop();
  }
}

test('numbers events from 0, sends them, and records the acknowledgement in the buffer', () =>
  withOperator(async (op) => {
    const r = open(op);
    for (let s = 1; s <= 5; s++) r.report(checkpoint(s * 100));
    assert.equal(await r.flush(5_000), true);
    await r.close();
    assert.deepEqual(op.accepted.map((e) => e.seq), [0, 1, 2, 3, 4]);
    assert.deepEqual(op.eventsOfType('checkpoint').map((e) => e.step), [100, 200, 300, 400, 500]);
    assert.equal(r.acknowledged, 4);
    assert.equal(r.pending, 0);
  }));

test('progress is throttled: the newest waits for the interval, a flush sends it', () =>
  withOperator(async (op) => {
    const r = open(op, { progressIntervalMs: 60_000 });
    for (let s = 1; s <= 50; s++) r.report(progress(s));
    r.report(checkpoint(50));
    await op.until(() => op.accepted.length === 2);
    assert.deepEqual(
      op.accepted.map((e) => [e.type, e.seq, (e as { step: number }).step]),
      [
        ['progress', 0, 1],
        ['checkpoint', 1, 50],
      ],
      'the first progress at once, the checkpoint without waiting, later progress held back',
    );
    assert.equal(await r.flush(5_000), true);
    await r.close();
    assert.deepEqual(op.accepted.at(-1), { ...progress(50), at: op.accepted.at(-1)!.at, seq: 2, worker: 0 }, 'only the newest held-back progress is sent');
  }));

test('a completion is preceded by the held-back progress', () =>
  withOperator(async (op) => {
    const r = open(op);
    r.report(progress(1));
    r.report(progress(2));
    r.report({ type: 'completed', at: at() });
    assert.equal(await r.flush(5_000), true);
    await r.close();
    assert.deepEqual(op.accepted.map((e) => `${e.type}:${e.seq}`), ['progress:0', 'progress:1', 'completed:2']);
  }));

test('503 then 200: the events are sent again, none lost, none repeated after acknowledgement', () =>
  withOperator(async (op) => {
    op.answerNext({ status: 503, headers: { 'retry-after': '0' } }, { status: 503 });
    const r = open(op);
    r.report(checkpoint(100));
    r.report(checkpoint(200));
    assert.equal(await r.flush(5_000), true);
    r.report(checkpoint(300));
    assert.equal(await r.flush(5_000), true);
    await r.close();
    assert.equal(op.requests.filter((q) => q.status === 503).length, 2);
    assert.ok(op.requests[0]!.events.some((e) => e.seq === 0), 'the refused request carried seq 0');
    assert.deepEqual(acceptedSeqs(op), [0, 1, 2]);
    assert.equal(r.stats.failedRequests, 2);
  }));

test('events reported while the operator is down are delivered after it restarts', () =>
  withOperator(async (op) => {
    const r = open(op);
    r.report(checkpoint(100));
    assert.equal(await r.flush(5_000), true);
    await op.stop();
    r.report(checkpoint(200));
    r.report({ type: 'failed', at: at(), reason: 'CudaOutOfMemory', message: 'out of memory', hint: 'lower the batch size', retryable: true });
    assert.equal(await r.flush(300), false, 'nothing can be acknowledged while the operator is down');
    await op.start();
    assert.equal(await r.flush(5_000), true);
    await r.close();
    assert.deepEqual(acceptedSeqs(op), [0, 1, 2]);
    assert.equal(op.eventsOfType('failed')[0]!.reason, 'CudaOutOfMemory');
  }));

test('a new reporter on the same buffer resends what was not acknowledged and continues the sequence', () =>
  withOperator(async (op) => {
    const bufferPath = join(dir, 'shared-buffer.jsonl');
    const first = open(op, { bufferPath });
    first.report(checkpoint(100));
    assert.equal(await first.flush(5_000), true);
    await op.stop();
    first.report(checkpoint(200));
    first.report(checkpoint(300));
    await first.close();
    // A crash while writing leaves half a line behind; it must not stop the restore.
    appendFileSync(bufferPath, '{"event":{"type":"checkpo');
    await op.start();
    const second = open(op, { bufferPath });
    assert.equal(second.sequence, 3);
    second.report(checkpoint(400));
    assert.equal(await second.flush(5_000), true);
    await second.close();
    assert.deepEqual(acceptedSeqs(op), [0, 1, 2, 3]);
    assert.deepEqual(op.eventsOfType('checkpoint').map((e) => e.step), [100, 200, 300, 400]);
    const lines = readFileSync(bufferPath, 'utf8').trim().split('\n');
    assert.deepEqual(JSON.parse(lines[0]!), { ack: 0 }, 'the reopened buffer was compacted to its high-water mark and pending events');
  }));

test('409 and 401/403 are fatal: the owner is told once, nothing more is sent', async () => {
  for (const [status, kind] of [
    [409, 'superseded'],
    [401, 'unauthorized'],
    [403, 'unauthorized'],
  ] as const) {
    await withOperator(async (op) => {
      op.answerNext({ status });
      const fatal: FatalKind[] = [];
      const r = open(op, { onFatal: (k) => fatal.push(k) });
      r.report(checkpoint(100));
      assert.equal(await r.flush(5_000), false);
      r.report(checkpoint(200));
      await r.flush(200);
      await r.close();
      assert.deepEqual(fatal, [kind], String(status));
      assert.equal(r.fatalKind, kind);
      assert.equal(op.requests.length, 1, `${status}: no request after the fatal answer`);
    });
  }
});

test('a wrong token is refused by the operator', () =>
  withOperator(async (op) => {
    const fatal: FatalKind[] = [];
    const r = open(op, { token: 'not-the-token', onFatal: (k) => fatal.push(k) });
    r.report(checkpoint(100));
    await r.flush(5_000);
    await r.close();
    assert.deepEqual(fatal, ['unauthorized']);
    assert.equal(op.requests[0]!.status, 403);
  }));

test('a token the operator calls stale is read again and retried: a re-issued token is delivered with, nothing lost', () =>
  withOperator(async (op) => {
    const stale = { status: 403, body: { error: { reason: 'StaleToken', message: 'read the token file again' } } };
    op.answerNext(stale, stale);
    let reads = 0;
    const fatal: FatalKind[] = [];
    const r = open(op, { token: () => (reads++, op.token), onFatal: (k) => fatal.push(k) });
    r.report(checkpoint(100));
    assert.equal(await r.flush(10_000), true);
    await r.close();
    assert.deepEqual(fatal, []);
    assert.equal(reads, 3, 'the token is read for every request');
    assert.deepEqual(acceptedSeqs(op), [0]);
  }));

test('a token still stale after the grace period is fatal as unauthorized', () =>
  withOperator(async (op) => {
    const stale = { status: 403, body: { error: { reason: 'StaleToken', message: 'm' } } };
    op.answerNext(...Array.from({ length: 50 }, () => stale));
    const fatal: FatalKind[] = [];
    const r = open(op, { staleTokenGraceMs: 300, onFatal: (k) => fatal.push(k) });
    r.report(checkpoint(100));
    assert.equal(await r.flush(10_000), false);
    await r.close();
    assert.deepEqual(fatal, ['unauthorized']);
  }));

test('a 400 drops that batch and delivery goes on; events the protocol refuses are never numbered', () =>
  withOperator(async (op) => {
    op.answerNext({ status: 400, body: { error: { message: 'events.0.step: must be >= 0' } } });
    const r = open(op);
    r.report(checkpoint(100));
    await op.until(() => op.requests.length === 1);
    r.report({ type: 'failed', at: at(), reason: 'not camel case', message: 'x' } as UnnumberedEvent);
    r.report(checkpoint(200));
    assert.equal(await r.flush(5_000), true);
    await r.close();
    assert.deepEqual(op.accepted.map((e) => [e.seq, e.type]), [[1, 'checkpoint']]);
  }));

test('without an operator URL events stay in the buffer and flush does not wait', async () => {
  const bufferPath = join(dir, 'offline.jsonl');
  const r = open(undefined, { bufferPath });
  r.report(checkpoint(100));
  r.report({ type: 'completed', at: at() });
  assert.equal(await r.flush(10_000), true);
  await r.close();
  const events = readFileSync(bufferPath, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event?: ReportEvent })
    .flatMap((l) => (l.event ? [l.event.type] : []));
  assert.deepEqual(events, ['checkpoint', 'completed']);
});

test('large backlogs go out in several reports within the protocol limits', () =>
  withOperator(async (op) => {
    const r = open(op);
    await op.stop();
    for (let s = 0; s < 1_200; s++) r.report(checkpoint(s));
    await op.start();
    assert.equal(await r.flush(10_000), true);
    await r.close();
    assert.deepEqual(acceptedSeqs(op), Array.from({ length: 1_200 }, (_, i) => i));
    assert.ok(op.requests.filter((q) => q.status === 200).every((q) => q.events.length <= 500));
  }));

test('a buffer whose volume fills up (ENOSPC) moves to local disk with every event, and a new reporter finds them there', { timeout: 60_000 }, async () => {
  const volume = mkdtempSync(join(tmpdir(), 'reporter-volume-'));
  const fallback = join(mkdtempSync(join(tmpdir(), 'reporter-fallback-')), 'attempt-1-worker-0.jsonl');
  const script = fileURLToPath(new URL('./testing/reporter-on-full-volume.ts', import.meta.url));
  // A real full filesystem: a 64 KiB tmpfs in a mount namespace of the child's own, gone when it exits.
  const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve) => {
    const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=64k arena-test "$1" && exec "$2" --import tsx "$3" "$1" "$4"', 'sh', volume, process.execPath, script, fallback]);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', (c) => resolve({ stdout: out, stderr: err, code: c }));
  });
  assert.equal(code, 0, `the reporter must not crash on ENOSPC: ${stderr.slice(-2000)}`);
  const seen = JSON.parse(stdout.trim().split('\n').at(-1)!) as { before: string; after: string; filled: number; pending: number; sequence: number };
  assert.ok(seen.before.startsWith(volume), 'it started on the volume');
  assert.equal(seen.after, fallback, 'the buffer moved to the fallback');
  assert.ok(seen.filled > 0);
  assert.ok(seen.sequence > 2 && seen.pending === seen.sequence, `every event still pending (${seen.pending} of ${seen.sequence})`);
  // The volume is gone with the namespace (as a pod's would be after a restart elsewhere); the fallback keeps all.
  const again = Reporter.open({ bufferPath: join(volume, 'run-1', 'reports', 'attempt-1-worker-0.jsonl'), fallbackBufferPath: fallback, identity: { experiment: { namespace: 'ml', name: 'cartpole' }, run: 1, attempt: 1, worker: 0 } });
  try {
    assert.equal(again.pending, seen.sequence, 'the checkpoints before the volume filled, the one it refused, those after, and the failure');
    assert.equal(again.sequence, seen.sequence);
  } finally {
    await again.close();
    rmSync(volume, { recursive: true, force: true });
    rmSync(dirname(fallback), { recursive: true, force: true });
  }
});
