// The runtime reports of running experiments, between the HTTP handler that receives them and the reconciler that
// folds them into status. The reconciler is the only status writer, so reports never race with phase changes:
// the handler files events here and wakes the reconciler; a checkpoint, completion or failure is acknowledged to
// the worker only after a status write containing it succeeded, so an operator crash loses nothing the worker
// was told is stored (the worker keeps unacknowledged events and sends them again).
import type { ExperimentStatus } from '../../api/v1alpha1/experiment.ts';
import type { CheckpointEvent, FailedEvent, ProgressEvent, Report, ReportEvent } from '../../runtime-api/protocol.ts';
import type { ReportView } from './lifecycle.ts';

export const MAX_LISTED_CHECKPOINTS = 100;

interface Waiter {
  worker: number;
  seq: number;
  resolve: (acked: number) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface Box {
  run: number;
  attempt: number;
  progress?: ProgressEvent;
  checkpoints: (CheckpointEvent & { worker: number })[];
  completed?: { worker: number; seq: number };
  failed?: FailedEvent & { worker: number };
  /** Highest sequence number per worker that is durable (or needed no durability). */
  acked: Map<number, number>;
  /** Highest sequence number per worker received. */
  received: Map<number, number>;
  waiters: Waiter[];
  lastProgressWrite: number;
}

export class StaleReportError extends Error {}

export interface FoldResult {
  /** Whether anything in `status` changed because of reports. */
  changed: boolean;
  /** Ms until throttled progress may be written; undefined when nothing waits. */
  progressDueInMs?: number;
  /** Call after the status write succeeded. */
  commit(): void;
}

export class ReportInbox {
  private readonly boxes = new Map<string, Box>();

  constructor(
    private readonly opts: {
      /** Wakes the reconciler of `key`. */
      wake: (key: string) => void;
      /** Minimum interval between progress-only status writes of one experiment. */
      progressIntervalMs?: number;
      /** How long a worker waits for its events to become durable before it is told to retry. */
      ackTimeoutMs?: number;
      now?: () => number;
    },
  ) {}

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  /**
   * Files a report from a worker of the experiment's current run and attempt, which the caller has verified.
   * Resolves with the highest sequence number now acknowledged for that worker.
   */
  accept(key: string, current: { run: number; attempt: number }, report: Report): Promise<number> {
    if (report.run !== current.run || report.attempt !== current.attempt) {
      return Promise.reject(
        new StaleReportError(
          `run ${report.run} attempt ${report.attempt} is not current (run ${current.run} attempt ${current.attempt}); stop this worker`,
        ),
      );
    }
    let box = this.boxes.get(key);
    if (!box || box.run !== report.run || box.attempt !== report.attempt) {
      box = { run: report.run, attempt: report.attempt, checkpoints: [], acked: new Map(), received: new Map(), waiters: [], lastProgressWrite: Number.NEGATIVE_INFINITY };
      this.boxes.set(key, box);
    }
    const w = report.worker;
    let needsDurability = false;
    let top = box.received.get(w) ?? -1;
    for (const ev of [...report.events].sort((a, b) => a.seq - b.seq)) {
      if (ev.seq <= top) continue; // sent again after a lost acknowledgement
      top = ev.seq;
      needsDurability = this.file(box, w, ev) || needsDurability;
    }
    box.received.set(w, top);
    if (!needsDurability && !this.pendingFor(box, w)) {
      box.acked.set(w, top);
      if (box.progress) this.opts.wake(key);
      return Promise.resolve(top);
    }
    this.opts.wake(key);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        box.waiters = box.waiters.filter((x) => x !== waiter);
        reject(new Error('the report is not stored yet; send it again'));
      }, this.opts.ackTimeoutMs ?? 15_000);
      const waiter: Waiter = { worker: w, seq: top, resolve, reject, timer };
      box.waiters.push(waiter);
    });
  }

  private file(box: Box, worker: number, ev: ReportEvent): boolean {
    switch (ev.type) {
      case 'progress':
        // Rank 0 speaks for the gang; other ranks' progress would only make the numbers jump.
        if (worker === 0 && (!box.progress || ev.step >= box.progress.step)) box.progress = ev;
        return false;
      case 'checkpoint':
        box.checkpoints.push({ ...ev, worker });
        return true;
      case 'completed':
        box.completed ??= { worker, seq: ev.seq };
        return true;
      case 'failed':
        box.failed ??= { ...ev, worker };
        return true;
    }
  }

  private pendingFor(box: Box, worker: number): boolean {
    return box.checkpoints.some((c) => c.worker === worker) || box.completed?.worker === worker || box.failed?.worker === worker;
  }

  /** What the lifecycle needs to know about reports of the current attempt. */
  view(key: string, current: { run: number; attempt: number }, stopRequestedAt?: string, status?: ExperimentStatus): ReportView {
    const box = this.boxes.get(key);
    const live = box && box.run === current.run && box.attempt === current.attempt ? box : undefined;
    const stopAt = stopRequestedAt ? Date.parse(stopRequestedAt) : undefined;
    const afterStop = (c: { at?: string; createdAt?: string; final?: boolean }) =>
      c.final === true || (stopAt !== undefined && Date.parse(c.at ?? c.createdAt ?? '') >= stopAt);
    const storedFinal = stopAt !== undefined && (status?.checkpoints ?? []).some((c) => c.run === current.run && afterStop(c));
    return {
      completed: live?.completed !== undefined,
      failed: live?.failed
        ? { reason: live.failed.reason, message: live.failed.message, hint: live.failed.hint, retryable: live.failed.retryable ?? true }
        : undefined,
      // An earlier attempt's final checkpoint, reported late, says nothing about whether this attempt stopped cleanly.
      finalCheckpointAfterStop: storedFinal || (live?.checkpoints.some((c) => c.recovered === undefined && afterStop(c)) ?? false),
    };
  }

  /**
   * Folds pending checkpoints and (throttled) progress into `status`, in place. `force` writes progress now
   * because a status write happens anyway.
   */
  fold(key: string, status: ExperimentStatus, opts: { force: boolean; gangSize: number }): FoldResult {
    const box = this.boxes.get(key);
    const noop: FoldResult = { changed: false, commit: () => undefined };
    if (!box || box.run !== status.run || box.attempt !== status.attempt) return noop;
    const now = this.now();
    let changed = false;
    // Nothing leaves the inbox until commit(): a status write that fails (a conflict with a newer version of the
    // object) must not lose what it carried; the next reconcile folds the same items again.
    const taken = [...box.checkpoints];
    // A checkpoint an earlier attempt wrote but could not report belongs to the run that wrote it.
    for (const c of taken) changed = addCheckpoint(status, c.recovered?.run ?? box.run, c) || changed;
    let progressDueInMs: number | undefined;
    let progressTaken: ProgressEvent | undefined;
    if (box.progress) {
      const interval = this.opts.progressIntervalMs ?? 5_000;
      const due = box.lastProgressWrite + interval - now;
      if (opts.force || changed || due <= 0) {
        changed = applyProgress(status, box.progress) || changed;
        progressTaken = box.progress;
      } else {
        progressDueInMs = due;
      }
    }
    return {
      changed,
      progressDueInMs,
      commit: () => {
        box.checkpoints = box.checkpoints.filter((c) => !taken.includes(c));
        if (progressTaken) {
          if (box.progress === progressTaken) box.progress = undefined;
          box.lastProgressWrite = now;
        }
        // Completion and failure are durable once the phase they caused is stored.
        if (box.completed && status.phase === 'Succeeded') box.completed = undefined;
        if (box.failed && (status.phase === 'Failed' || status.lastFailure?.reason === box.failed.reason)) box.failed = undefined;
        this.acknowledge(box);
      },
    };
  }

  /** Everything a worker sent is acknowledged once none of it is still waiting to be stored. */
  private acknowledge(box: Box): void {
    for (const [worker, received] of box.received) {
      if (!this.pendingFor(box, worker)) box.acked.set(worker, received);
    }
    box.waiters = box.waiters.filter((w) => {
      const acked = box.acked.get(w.worker) ?? -1;
      if (acked < w.seq) return true;
      clearTimeout(w.timer);
      w.resolve(acked);
      return false;
    });
  }

  /** Drops what is kept for an experiment that is gone or whose attempt ended. */
  forget(key: string): void {
    const box = this.boxes.get(key);
    if (!box) return;
    for (const w of box.waiters) {
      clearTimeout(w.timer);
      w.reject(new StaleReportError('the experiment is gone or its attempt ended'));
    }
    this.boxes.delete(key);
  }

  /** Experiments with reports waiting, for metrics. */
  size(): number {
    return this.boxes.size;
  }
}

function addCheckpoint(status: ExperimentStatus, run: number, c: CheckpointEvent): boolean {
  const list = status.checkpoints ?? [];
  const entry = {
    run,
    step: c.step,
    sizeBytes: c.sizeBytes,
    location: c.location,
    createdAt: c.at,
    ...(c.trainingScore !== undefined ? { trainingScore: c.trainingScore } : {}),
    ...(c.evaluationScore !== undefined ? { evaluationScore: c.evaluationScore } : {}),
  };
  const same = list.findIndex((x) => x.run === run && x.step === c.step);
  if (same >= 0) {
    // A later checkpoint at a step already listed replaces it: a stop that lands right after a periodic checkpoint
    // gets a final one at the same step, and that is the one to resume from (and the proof the stop was clean).
    // A resent copy of the same checkpoint changes nothing.
    const old = list[same]!;
    if (old.location === entry.location || Date.parse(entry.createdAt) < Date.parse(old.createdAt)) return false;
    list[same] = entry;
  } else {
    list.push(entry);
  }
  list.sort((a, b) => a.run - b.run || a.step - b.step);
  // The newest run's newest checkpoint: a late report of an earlier run's checkpoint is not the latest once a
  // later run has one of its own.
  const latest = list.at(-1)!;
  status.latestCheckpoint = { step: latest.step, location: latest.location };
  const best = bestOf(list);
  if (best) status.bestCheckpoint = { step: best.step, evaluationScore: best.evaluationScore! };
  // Keep the list bounded for etcd, but never drop the best or the latest.
  while (list.length > MAX_LISTED_CHECKPOINTS) {
    const i = list.findIndex((x) => x !== best && x !== latest);
    list.splice(i, 1);
  }
  status.checkpoints = list;
  return true;
}

export function bestOf<T extends { evaluationScore?: number; step: number }>(list: T[]): T | undefined {
  let best: T | undefined;
  for (const c of list) {
    if (c.evaluationScore === undefined) continue;
    if (!best || c.evaluationScore > best.evaluationScore! || (c.evaluationScore === best.evaluationScore && c.step > best.step)) best = c;
  }
  return best;
}

function applyProgress(status: ExperimentStatus, p: ProgressEvent): boolean {
  const before = JSON.stringify(status.progress ?? null);
  const maxSteps = p.maxSteps ?? status.progress?.maxSteps;
  const progress: NonNullable<ExperimentStatus['progress']> = { step: p.step, updatedAt: p.at };
  if (maxSteps !== undefined) {
    progress.maxSteps = maxSteps;
    progress.percent = Math.min(100, Math.floor((p.step / maxSteps) * 100));
  }
  if (p.trainingScore !== undefined) progress.trainingScore = p.trainingScore;
  if (p.evaluationScore !== undefined) progress.evaluationScore = p.evaluationScore;
  if (p.stepsPerSecond !== undefined) {
    progress.stepsPerSecond = Math.round(p.stepsPerSecond * 100) / 100;
    if (maxSteps !== undefined && p.stepsPerSecond > 0) progress.etaSeconds = Math.max(0, Math.round((maxSteps - p.step) / p.stepsPerSecond));
  }
  status.progress = progress;
  return JSON.stringify(progress) !== before;
}
