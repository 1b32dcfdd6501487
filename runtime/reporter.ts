// Delivers report events to the operator (POST /runtime/v1/reports, operator/runtime-api/protocol.ts) so that none
// is lost: every event gets the next per-worker sequence number and is appended to a local JSON-lines buffer before
// it is sent; events stay pending until the operator acknowledges their sequence number, and are sent again after
// failures, after an operator restart, or by a restarted runtime that reopens the same buffer. Progress is
// throttled (the latest one wins); checkpoints, completion and failure go out at once.
import { closeSync, existsSync, fdatasyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'winston';
import { MAX_EVENTS_PER_REPORT, MAX_REPORT_BYTES, REPORTS_PATH, parseReport, type Report, type ReportEvent } from '../operator/runtime-api/protocol.ts';
import type { UnnumberedEvent } from './events.ts';
import { ServerNotVerified } from './report-transport.ts';

export interface ReportIdentity {
  experiment: { namespace: string; name: string };
  run: number;
  attempt: number;
  worker: number;
}

export type FatalKind = 'superseded' | 'unauthorized';

export interface ReporterOptions {
  /** The operator's base URL; undefined keeps events in the buffer only (no operator, e.g. a run by hand). */
  baseUrl?: string;
  /** The run token, or how to read it now (the pod's token file, which the operator may re-issue). */
  token?: string | (() => string);
  /**
   * How long a token the operator calls stale (made with a signing key since replaced) is retried, re-reading it
   * each time, before the worker gives up as unauthorized. The kubelet refreshes a mounted Secret within a minute
   * or two. Default 10 minutes.
   */
  staleTokenGraceMs?: number;
  identity: ReportIdentity;
  /** The append-only buffer file; reopening it resumes the sequence and resends what is unacknowledged. */
  bufferPath: string;
  /**
   * Where the buffer moves when its own volume refuses it (full: ENOSPC, read-only, gone), at open or at any later
   * write; reopening reads both. Without one, a refused write leaves the events in memory only, and says so.
   */
  fallbackBufferPath?: string;
  progressIntervalMs?: number;
  requestTimeoutMs?: number;
  backoff?: { initialMs: number; maxMs: number };
  fetch?: typeof fetch;
  logger?: Logger;
  /** Called once when the operator says this worker must stop (409) or does not accept its token (401/403). */
  onFatal?: (kind: FatalKind, message: string) => void;
}

export interface ReporterStats {
  requests: number;
  failedRequests: number;
  eventsSent: number;
  /** Events acknowledged since this reporter opened. */
  eventsAcknowledged: number;
}

type Line = { event: ReportEvent } | { ack: number };

/**
 * The lines of a report buffer's text: the acknowledged high-water mark (-1 when none) and the numbered events, in
 * file order. A line cut short by a crash mid-write (or by a full volume), or not a buffer line at all, is passed over.
 */
export function parseBuffer(text: string): { acked: number; events: ReportEvent[] } {
  let acked = -1;
  const events: ReportEvent[] = [];
  for (const raw of text.split('\n')) {
    if (!raw) continue;
    let line: unknown;
    try {
      line = JSON.parse(raw);
    } catch {
      continue;
    }
    if (typeof line !== 'object' || line === null) continue;
    const { ack, event } = line as { ack?: unknown; event?: ReportEvent };
    if (typeof ack === 'number') acked = Math.max(acked, ack);
    else if (event && Number.isInteger(event.seq)) events.push(event);
  }
  return { acked, events };
}

const BATCH_BYTES = Math.floor(MAX_REPORT_BYTES * 0.9);

export class Reporter {
  private nextSeq = 0;
  private acked = -1;
  private readonly queue: ReportEvent[] = [];
  private fd: number;
  private linesWritten = 0;
  private pendingProgress: UnnumberedEvent | undefined;
  private progressTimer: NodeJS.Timeout | undefined;
  private lastProgressAt = -Infinity;
  private pumping: Promise<void> | undefined;
  private closed = false;
  private fatal: FatalKind | undefined;
  /** When the operator first called the token stale, while it still does. */
  private staleSince: number | undefined;
  private inFlight: AbortController | undefined;
  private wake: (() => void) | undefined;
  private idleWaiters: (() => void)[] = [];
  readonly stats: ReporterStats = { requests: 0, failedRequests: 0, eventsSent: 0, eventsAcknowledged: 0 };

  private constructor(private readonly opts: ReporterOptions) {
    this.fd = -1;
  }

  /** Opens (or creates) the buffer, restores the sequence and queues what was never acknowledged. */
  static open(opts: ReporterOptions): Reporter {
    const r = new Reporter(opts);
    r.restore();
    if (r.queue.length > 0) {
      opts.logger?.info('Resending unacknowledged reports from the local buffer', { events: r.queue.length, firstSeq: r.queue[0]!.seq });
      r.kick();
    }
    return r;
  }

  private restore(): void {
    const { bufferPath, fallbackBufferPath } = this.opts;
    const events = new Map<number, ReportEvent>();
    // A buffer moved to the fallback by an earlier process holds what the primary lacks; both are read.
    for (const path of [bufferPath, fallbackBufferPath]) {
      if (path === undefined || !existsSync(path)) continue;
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        this.opts.logger?.warn('Cannot read a report buffer', { path, error: (err as Error).message });
        continue;
      }
      const buffer = parseBuffer(text);
      this.acked = Math.max(this.acked, buffer.acked);
      for (const event of buffer.events) events.set(event.seq, event);
    }
    const seqs = [...events.keys()];
    this.nextSeq = Math.max(this.acked, ...seqs, -1) + 1;
    this.queue.push(...[...events.values()].filter((e) => e.seq > this.acked).sort((a, b) => a.seq - b.seq));
    try {
      this.compactInto(bufferPath);
    } catch (err) {
      if (fallbackBufferPath === undefined) throw err;
      this.opts.logger?.warn('Cannot keep the report buffer with the checkpoints; using local disk', { path: bufferPath, fallback: fallbackBufferPath, error: (err as Error).message });
      this.compactInto(fallbackBufferPath);
      this.movedTo = fallbackBufferPath;
    }
  }

  /** Where the buffer went after its own volume refused it, if it did. */
  private movedTo: string | undefined;

  /** The buffer file in use now. */
  get bufferFile(): string {
    return this.movedTo ?? this.opts.bufferPath;
  }

  /** Writes the high-water mark and what is unacknowledged (plus `extra`) to `path`, and appends there from now on. */
  private compactInto(path: string, extra?: Line): void {
    mkdirSync(dirname(path), { recursive: true });
    // Compact: what is acknowledged is no longer needed, only its high-water mark.
    const tmp = `${path}.tmp`;
    const lines = [JSON.stringify({ ack: this.acked }), ...this.queue.map((event) => JSON.stringify({ event })), ...(extra ? [JSON.stringify(extra)] : [])];
    writeFileSync(tmp, lines.join('\n') + '\n');
    fdatasyncOf(tmp);
    renameSync(tmp, path);
    const fd = openSync(path, 'a');
    if (this.fd >= 0) closeQuietly(this.fd);
    this.fd = fd;
    this.linesWritten = lines.length;
  }

  private append(line: Line, durable: boolean): void {
    try {
      const bytes = Buffer.from(`${JSON.stringify(line)}\n`);
      // A nearly full volume can take part of a line and refuse the rest without an error.
      if (writeSync(this.fd, bytes) < bytes.length) throw Object.assign(new Error('short write: the volume took only part of the line'), { code: 'ENOSPC' });
      if (durable) fdatasyncSync(this.fd);
      this.linesWritten++;
    } catch (err) {
      this.bufferRefused(err as NodeJS.ErrnoException, line);
    }
  }

  /**
   * The buffer's volume refused a write (ENOSPC when the checkpoint volume is full): the whole buffer moves to
   * the fallback, with this line, so nothing numbered is lost and the failure that follows can still be reported.
   */
  private bufferRefused(err: NodeJS.ErrnoException, line: Line): void {
    const fallback = this.opts.fallbackBufferPath;
    if (fallback !== undefined && this.movedTo === undefined) {
      try {
        this.compactInto(fallback, line);
        this.movedTo = fallback;
        this.opts.logger?.warn('The report buffer\'s volume refused a write; the buffer moved to local disk', { code: err.code, path: this.opts.bufferPath, fallback });
        return;
      } catch (moveErr) {
        this.opts.logger?.error('Cannot move the report buffer to local disk either', { fallback, error: (moveErr as Error).message });
      }
    }
    // Still sent from memory; only a restart of this process before they are acknowledged would lose them.
    this.opts.logger?.error('Cannot write the report buffer; reports are kept in memory until acknowledged', { code: err.code, path: this.bufferFile });
  }

  /** Sequence number the next event will get. */
  get sequence(): number {
    return this.nextSeq;
  }

  /** Highest sequence number the operator acknowledged. */
  get acknowledged(): number {
    return this.acked;
  }

  /** Events numbered but not yet acknowledged. */
  get pending(): number {
    return this.queue.length + (this.pendingProgress ? 1 : 0);
  }

  get fatalKind(): FatalKind | undefined {
    return this.fatal;
  }

  /** Queues an event; progress is held back so at most one goes out per progress interval. */
  report(event: UnnumberedEvent): void {
    if (this.closed || this.fatal) return;
    if (event.type === 'progress') {
      this.pendingProgress = event;
      const wait = this.lastProgressAt + (this.opts.progressIntervalMs ?? 5_000) - Date.now();
      if (wait <= 0) this.commitProgress();
      else this.progressTimer ??= setTimeout(() => this.commitProgress(), wait);
      return;
    }
    // A terminal event goes after the newest progress, so the final step is recorded too.
    if (event.type !== 'checkpoint') this.commitProgress();
    this.commit(event);
  }

  private commitProgress(): void {
    clearTimeout(this.progressTimer);
    this.progressTimer = undefined;
    const p = this.pendingProgress;
    if (!p || this.closed) return;
    this.pendingProgress = undefined;
    this.lastProgressAt = Date.now();
    this.commit(p);
  }

  private commit(event: UnnumberedEvent): void {
    const numbered = { ...event, seq: this.nextSeq } as ReportEvent;
    // Checked here, so an event the operator would refuse (400) never blocks the ones behind it.
    const check = parseReport({ ...this.envelope(), events: [numbered] });
    if (!check.ok) {
      this.opts.logger?.error('Dropped an invalid report event', { type: event.type, error: check.error });
      return;
    }
    this.nextSeq++;
    this.append({ event: numbered }, event.type !== 'progress');
    this.queue.push(numbered);
    this.kick();
  }

  private envelope(): Omit<Report, 'events'> {
    return { experiment: this.opts.identity.experiment, run: this.opts.identity.run, attempt: this.opts.identity.attempt, worker: this.opts.identity.worker };
  }

  private kick(): void {
    if (!this.opts.baseUrl) {
      this.notifyIdle();
      return;
    }
    if (this.pumping) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      // Events committed while the last request was finishing still need a sender.
      if (this.queue.length > 0 && !this.closed && !this.fatal) this.kick();
      else this.notifyIdle();
    });
  }

  private notifyIdle(): void {
    if (this.queue.length > 0 && this.opts.baseUrl && !this.closed && !this.fatal) return;
    const waiters = this.idleWaiters.splice(0);
    for (const w of waiters) w();
  }

  private async pump(): Promise<void> {
    let failures = 0;
    while (this.queue.length > 0 && !this.closed && !this.fatal) {
      const batch: ReportEvent[] = [];
      let bytes = 512;
      for (const e of this.queue) {
        const size = JSON.stringify(e).length + 1;
        if (batch.length >= MAX_EVENTS_PER_REPORT || (batch.length > 0 && bytes + size > BATCH_BYTES)) break;
        batch.push(e);
        bytes += size;
      }
      const outcome = await this.post(batch);
      if (outcome.kind === 'acked') {
        failures = 0;
        this.acknowledge(outcome.seq);
        if (outcome.seq < batch.at(-1)!.seq) await this.sleep(this.backoff(0));
      } else if (outcome.kind === 'retry') {
        this.stats.failedRequests++;
        const delay = outcome.afterMs ?? this.backoff(failures++);
        this.opts.logger?.warn('Report not delivered; retrying', { reason: outcome.reason, retryInMs: Math.round(delay), pending: this.queue.length });
        await this.sleep(delay);
      } else if (outcome.kind === 'bad') {
        // The operator refuses the body as malformed: sending it again cannot succeed, and it would block the rest.
        this.stats.failedRequests++;
        this.opts.logger?.error('The operator refused a report as malformed; dropping it', { error: outcome.reason, firstSeq: batch[0]!.seq, lastSeq: batch.at(-1)!.seq });
        this.acknowledge(batch.at(-1)!.seq);
      } else {
        this.stats.failedRequests++;
        this.fatal = outcome.kind;
        this.opts.logger?.error(outcome.kind === 'superseded' ? 'The operator says this run is no longer current' : 'The operator refused the run token', { reason: outcome.reason });
        this.opts.onFatal?.(outcome.kind, outcome.reason);
      }
    }
  }

  private acknowledge(seq: number): void {
    if (seq <= this.acked) return;
    this.acked = seq;
    let dropped = 0;
    while (this.queue.length > 0 && this.queue[0]!.seq <= seq) {
      this.queue.shift();
      dropped++;
    }
    this.stats.eventsAcknowledged += dropped;
    this.append({ ack: seq }, false);
  }

  private backoff(failures: number): number {
    const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 500, maxMs: 30_000 };
    return Math.min(maxMs, initialMs * 2 ** failures) * (0.8 + 0.4 * Math.random());
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      // A flush cuts the wait short: it wants the events out now.
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }

  private token(): string {
    const t = this.opts.token;
    if (typeof t !== 'function') return t ?? '';
    try {
      return t();
    } catch (err) {
      // An unreadable token file is answered 401 by the operator, which ends the worker with that reason.
      this.opts.logger?.error('Cannot read the run token', { error: (err as Error).message });
      return '';
    }
  }

  private async post(events: ReportEvent[]): Promise<
    { kind: 'acked'; seq: number } | { kind: 'retry'; reason: string; afterMs?: number } | { kind: 'bad'; reason: string } | { kind: FatalKind; reason: string }
  > {
    const body: Report = { ...this.envelope(), events };
    const controller = new AbortController();
    this.inFlight = controller;
    this.stats.requests++;
    this.stats.eventsSent += events.length;
    try {
      const res = await (this.opts.fetch ?? fetch)(`${this.opts.baseUrl}${REPORTS_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token()}` },
        body: JSON.stringify(body),
        signal: AbortSignal.any([controller.signal, AbortSignal.timeout(this.opts.requestTimeoutMs ?? 30_000)]),
      });
      const text = await res.text();
      const reason = `HTTP ${res.status}${text ? `: ${text.slice(0, 300)}` : ''}`;
      if (res.status === 200) {
        this.staleSince = undefined;
        const ack = (JSON.parse(text) as { acknowledged?: unknown }).acknowledged;
        return typeof ack === 'number' && Number.isInteger(ack) ? { kind: 'acked', seq: ack } : { kind: 'retry', reason: `HTTP 200 without an acknowledged sequence: ${text.slice(0, 200)}` };
      }
      if (res.status === 409) return { kind: 'superseded', reason };
      if (res.status === 403 && errorReason(text) === 'StaleToken') {
        // The operator re-issues tokens after a key change; the next read of the token file brings the new one.
        this.staleSince ??= Date.now();
        if (Date.now() - this.staleSince < (this.opts.staleTokenGraceMs ?? 600_000)) return { kind: 'retry', reason };
        return { kind: 'unauthorized', reason: `${reason} (still stale after ${Math.round((Date.now() - this.staleSince) / 1000)} s)` };
      }
      if (res.status === 401 || res.status === 403) return { kind: 'unauthorized', reason };
      if (res.status === 400 || res.status === 413) return { kind: 'bad', reason };
      const retryAfter = Number(res.headers.get('retry-after'));
      return { kind: 'retry', reason, afterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      // A server that does not verify is retried (a CA rotation may be reaching this pod), with the whole why.
      if (e instanceof ServerNotVerified || e.cause?.code === 'CA_FILE_UNREADABLE') return { kind: 'retry', reason: e.message };
      return { kind: 'retry', reason: e.cause?.code ?? e.message };
    } finally {
      this.inFlight = undefined;
    }
  }

  /**
   * Sends any held-back progress now and waits until every event is acknowledged, the operator refused the
   * worker, or the timeout passed. True when nothing is left pending.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    this.commitProgress();
    if (this.queue.length === 0 || !this.opts.baseUrl || this.fatal) return this.queue.length === 0 || !this.opts.baseUrl;
    this.kick();
    this.wake?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, timeoutMs)))),
    ]);
    clearTimeout(timer);
    return this.queue.length === 0;
  }

  /** Stops sending; unacknowledged events stay in the buffer file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.progressTimer);
    this.inFlight?.abort();
    this.wake?.();
    await this.pumping;
    closeQuietly(this.fd);
    this.notifyIdle();
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // a descriptor on a volume that went away
  }
}

/** Flushes a file just written to disk, so a rename after it never exposes an empty file after a crash. */
function fdatasyncOf(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The `error.reason` of an operator error body, if it is one. */
function errorReason(text: string): string | undefined {
  try {
    const reason = (JSON.parse(text) as { error?: { reason?: unknown } }).error?.reason;
    return typeof reason === 'string' ? reason : undefined;
  } catch {
    return undefined;
  }
}
