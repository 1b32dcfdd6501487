import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ReportInbox, StaleReportError, MAX_LISTED_CHECKPOINTS } from './reports.ts';
import type { Report, ReportEvent } from '../../runtime-api/protocol.ts';
import type { ExperimentStatus } from '../../api/v1alpha1/experiment.ts';

const at = '2026-11-23T10:00:00.000Z';
type Ev = { [K in ReportEvent['type']]: Omit<Extract<ReportEvent, { type: K }>, 'at'> }[ReportEvent['type']];

function report(events: Ev[], worker = 0, run = 1, attempt = 1): Report {
  return { experiment: { namespace: 'ns', name: 'e' }, run, attempt, worker, events: events.map((e) => ({ ...e, at }) as ReportEvent) };
}
const ckpt = (seq: number, step: number, evaluationScore?: number): Ev => ({
  type: 'checkpoint',
  seq,
  step,
  sizeBytes: 10,
  location: `step-${step}`,
  ...(evaluationScore !== undefined ? { evaluationScore } : {}),
});

function setup(now = { t: 0 }) {
  const woken: string[] = [];
  const inbox = new ReportInbox({ wake: (k) => woken.push(k), progressIntervalMs: 5000, ackTimeoutMs: 200, now: () => now.t });
  return { inbox, woken, now };
}
const current = { run: 1, attempt: 1 };
const fresh = (): ExperimentStatus => ({ run: 1, attempt: 1, phase: 'Running' });

describe('report inbox', () => {
  test('a checkpoint is acknowledged only after the status write that stores it', async () => {
    const { inbox, woken } = setup();
    let acked: number | undefined;
    const pending = inbox.accept('ns/e', current, report([ckpt(1, 100, 5)])).then((n) => (acked = n));
    assert.deepEqual(woken, ['ns/e']);
    await Promise.resolve();
    assert.equal(acked, undefined, 'not acknowledged before it is stored');
    const status = fresh();
    const fold = inbox.fold('ns/e', status, { force: false, gangSize: 1 });
    assert.equal(fold.changed, true);
    assert.deepEqual(status.checkpoints?.map((c) => c.step), [100]);
    fold.commit();
    await pending;
    assert.equal(acked, 1);
  });

  test('a failed status write loses nothing: the next fold carries the same checkpoint', async () => {
    const { inbox } = setup();
    const pending = inbox.accept('ns/e', current, report([ckpt(1, 100)]));
    inbox.fold('ns/e', fresh(), { force: false, gangSize: 1 }); // the write of this fold fails: no commit()
    const retry = fresh();
    const fold = inbox.fold('ns/e', retry, { force: false, gangSize: 1 });
    assert.deepEqual(retry.checkpoints?.map((c) => c.step), [100]);
    fold.commit();
    assert.equal(await pending, 1);
  });

  test('events sent again after a lost acknowledgement are recognised by their sequence number', async () => {
    const { inbox } = setup();
    const first = inbox.accept('ns/e', current, report([ckpt(1, 100), ckpt(2, 200)]));
    const status = fresh();
    inbox.fold('ns/e', status, { force: false, gangSize: 1 }).commit();
    assert.equal(await first, 2);
    // The worker never saw the answer and sends both again, plus a new one.
    const again = inbox.accept('ns/e', current, report([ckpt(1, 100), ckpt(2, 200), ckpt(3, 300)]));
    inbox.fold('ns/e', status, { force: false, gangSize: 1 }).commit();
    assert.equal(await again, 3);
    assert.deepEqual(status.checkpoints?.map((c) => c.step), [100, 200, 300]);
  });

  test('a final checkpoint at the step of the last periodic one replaces it and proves the stop clean', async () => {
    const { inbox } = setup();
    const status = fresh();
    await Promise.all([
      inbox.accept('ns/e', current, report([ckpt(1, 1024, 49)])),
      Promise.resolve(inbox.fold('ns/e', status, { force: false, gangSize: 1 }).commit()),
    ]);
    const stopAt = '2026-11-23T10:00:01.000Z';
    const final: Ev = { type: 'checkpoint', seq: 2, step: 1024, sizeBytes: 11, location: 'step-1024-final', evaluationScore: 49, final: true };
    const acked = inbox.accept('ns/e', current, { ...report([]), events: [{ ...final, at: '2026-11-23T10:00:02.000Z' } as ReportEvent] });
    const fold = inbox.fold('ns/e', status, { force: false, gangSize: 1 });
    assert.equal(fold.changed, true);
    fold.commit();
    assert.equal(await acked, 2);
    assert.deepEqual(status.checkpoints?.map((c) => [c.step, c.location]), [[1024, 'step-1024-final']]);
    assert.deepEqual(status.latestCheckpoint, { step: 1024, location: 'step-1024-final' });
    status.stopRequestedAt = stopAt;
    assert.equal(inbox.view('ns/e', current, stopAt, status).finalCheckpointAfterStop, true);
    // The same checkpoint sent again changes nothing.
    assert.equal(inbox.fold('ns/e', status, { force: false, gangSize: 1 }).changed, false);
  });

  test('reports of another run or attempt are refused as stale', async () => {
    const { inbox } = setup();
    await assert.rejects(inbox.accept('ns/e', current, report([ckpt(1, 1)], 0, 1, 2)), StaleReportError);
    await assert.rejects(inbox.accept('ns/e', { run: 2, attempt: 1 }, report([ckpt(1, 1)])), StaleReportError);
  });

  test('progress is acknowledged at once and written at most once per interval', async () => {
    const { inbox, now } = setup();
    assert.equal(await inbox.accept('ns/e', current, report([{ type: 'progress', seq: 1, step: 10, maxSteps: 100, stepsPerSecond: 5 }])), 1);
    const s1 = fresh();
    const f1 = inbox.fold('ns/e', s1, { force: false, gangSize: 1 });
    assert.equal(f1.changed, true);
    assert.deepEqual(s1.progress, { step: 10, maxSteps: 100, percent: 10, stepsPerSecond: 5, etaSeconds: 18, updatedAt: at });
    f1.commit();
    now.t = 1000;
    await inbox.accept('ns/e', current, report([{ type: 'progress', seq: 2, step: 20, maxSteps: 100 }]));
    const s2 = fresh();
    const f2 = inbox.fold('ns/e', s2, { force: false, gangSize: 1 });
    assert.equal(f2.changed, false, 'throttled');
    assert.equal(f2.progressDueInMs, 4000);
    now.t = 5000;
    const f3 = inbox.fold('ns/e', s2, { force: false, gangSize: 1 });
    assert.equal(f3.changed, true);
    assert.equal(s2.progress?.step, 20);
  });

  test('only rank 0 reports progress for the gang', async () => {
    const { inbox } = setup();
    await inbox.accept('ns/e', current, report([{ type: 'progress', seq: 1, step: 99 }], 1));
    const s = fresh();
    assert.equal(inbox.fold('ns/e', s, { force: true, gangSize: 2 }).changed, false);
    assert.equal(s.progress, undefined);
  });

  test('completion and failure show in the view until the phase they cause is stored', async () => {
    const { inbox } = setup();
    const done = inbox.accept('ns/e', current, report([{ type: 'completed', seq: 1 }]));
    assert.equal(inbox.view('ns/e', current).completed, true);
    const s = fresh();
    const fold = inbox.fold('ns/e', s, { force: true, gangSize: 1 });
    s.phase = 'Succeeded';
    fold.commit();
    assert.equal(await done, 1);
  });

  test('the checkpoint list is bounded but keeps the best and the latest; best and latest are tracked', async () => {
    const { inbox } = setup();
    const events: Ev[] = [ckpt(1, 1, 999)];
    for (let i = 2; i <= MAX_LISTED_CHECKPOINTS + 20; i++) events.push(ckpt(i, i, i / 10));
    const pending = inbox.accept('ns/e', current, report(events));
    const s = fresh();
    inbox.fold('ns/e', s, { force: false, gangSize: 1 }).commit();
    await pending;
    assert.equal(s.checkpoints?.length, MAX_LISTED_CHECKPOINTS);
    assert.equal(s.checkpoints?.[0]?.step, 1, 'the best (step 1, score 999) is kept');
    assert.equal(s.checkpoints?.at(-1)?.step, MAX_LISTED_CHECKPOINTS + 20);
    assert.deepEqual(s.bestCheckpoint, { step: 1, evaluationScore: 999 });
    assert.deepEqual(s.latestCheckpoint, { step: MAX_LISTED_CHECKPOINTS + 20, location: `step-${MAX_LISTED_CHECKPOINTS + 20}` });
  });

  test('a final checkpoint after a stop request is seen', async () => {
    const { inbox } = setup();
    void inbox.accept('ns/e', current, report([{ ...ckpt(1, 50), final: true } as Ev])).catch(() => undefined);
    assert.equal(inbox.view('ns/e', current, '2026-11-23T09:59:00Z').finalCheckpointAfterStop, true);
    inbox.forget('ns/e');
  });

  test('a checkpoint an earlier attempt wrote but never reported is filed under its run, and never counts as this attempt\'s final one', async () => {
    const { inbox } = setup();
    // Run 2, attempt 1 (train again after a stop whose final report was lost): run 1 had reached step 300.
    const now = { run: 2, attempt: 1 };
    const status: ExperimentStatus = {
      run: 2,
      attempt: 1,
      phase: 'Running',
      checkpoints: [{ run: 1, step: 300, sizeBytes: 10, location: 'step-300', createdAt: '2026-11-23T09:00:00.000Z' }],
      latestCheckpoint: { step: 300, location: 'step-300' },
    };
    const late = { ...ckpt(1, 350), final: true, recovered: { run: 1, attempt: 1 } } as Ev;
    const pending = inbox.accept('ns/e', now, report([late], 0, 2, 1));
    assert.equal(inbox.view('ns/e', now, '2026-11-23T09:59:00Z', status).finalCheckpointAfterStop, false, 'a stop of run 2 is not clean because run 1 stopped cleanly');
    inbox.fold('ns/e', status, { force: false, gangSize: 1 }).commit();
    assert.equal(await pending, 1);
    assert.deepEqual(status.checkpoints?.map((c) => [c.run, c.step]), [[1, 300], [1, 350]]);
    assert.deepEqual(status.latestCheckpoint, { step: 350, location: 'step-350' }, 'the newest checkpoint, the one to resume from');

    // Once run 2 has a checkpoint of its own, a late report of run 1's does not replace it as the latest.
    const own = inbox.accept('ns/e', now, report([ckpt(2, 400), { ...ckpt(3, 360), recovered: { run: 1, attempt: 1 } } as Ev], 0, 2, 1));
    inbox.fold('ns/e', status, { force: false, gangSize: 1 }).commit();
    assert.equal(await own, 3);
    assert.deepEqual(status.checkpoints?.map((c) => [c.run, c.step]), [[1, 300], [1, 350], [1, 360], [2, 400]]);
    assert.deepEqual(status.latestCheckpoint, { step: 400, location: 'step-400' });
  });

  test('an unacknowledged report times out so the worker sends it again', async () => {
    const { inbox } = setup();
    await assert.rejects(inbox.accept('ns/e', current, report([ckpt(1, 1)])), /send it again/);
  });
});
