// The trainer supervisor: what `arena-runtime train` does in every worker pod. It checks before it launches
// (manifest, GPUs), runs the trainer as a child process, turns the trainer's events (runtime/PROTOCOL.md) into
// reports to the operator, stops the trainer with a final checkpoint on SIGTERM, and diagnoses crashes.
//
// Exit codes: 0 completed, or stopped after a final checkpoint; 1 the trainer failed (or a stop ended without a
// final checkpoint); 2 refused before launch (invalid manifest, no usable GPU, no trainer); 3 the operator says
// this run or attempt is no longer current; 4 the operator does not accept the run token.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'winston';
import { createLogger, forObject } from '../operator/observability/log.ts';
import type { Manifest } from '../operator/api/v1alpha1/manifest.ts';
import { diagnose, matchSignature, OutputTail, volumeFull, type Diagnosis, type VolumeSpace } from './diagnosis.ts';
import { memoryCgroup, oomKilledBetween, type MemoryCgroup } from './oom.ts';
import type { WorkerEnv } from './env.ts';
import { checkpointReport, EVENTS_FD, EVENTS_FD_ENV, parseTrainerEvent, progressReport, type TrainerError, type TrainerEvent } from './events.ts';
import { attentionBackendFor, formatCapability, gpuRequirement, probeHost, type HostProbe } from './gpu/probe.ts';
import { checkpointSize } from './checkpoint-size.ts';
import { handOver, scanEarlierAttempts } from './recovery.ts';
import { Reporter, type FatalKind } from './reporter.ts';
import { verifyingFetch } from './report-transport.ts';
import { resolveTrainer, type TrainerCommand } from './trainers/registry.ts';
import { formatRefusals, validateForLaunch } from './validate.ts';

export const EXIT_CODES = { ok: 0, failed: 1, refused: 2, superseded: 3, unauthorized: 4 } as const;

export type Outcome = 'completed' | 'stopped' | 'failed' | 'refused' | 'superseded' | 'unauthorized';

export interface Failure {
  reason: string;
  message: string;
  hint?: string;
  retryable: boolean;
}

export interface SupervisorResult {
  exitCode: number;
  outcome: Outcome;
  failure?: Failure;
  checkpoints: number;
  /** A checkpoint arrived after the stop request. */
  finalCheckpoint: boolean;
  /** Reports still unacknowledged when the supervisor finished (they stay in the buffer file). */
  reportsPending: number;
}

export interface SupervisorOptions {
  env: WorkerEnv;
  logger?: Logger;
  /** The trainer to run instead of the one the manifest selects. */
  trainer?: TrainerCommand;
  /** The environment the trainer inherits (and where ARENA_TRAINER_COMMAND is read); default process.env. */
  processEnv?: NodeJS.ProcessEnv;
  probe?: () => Promise<HostProbe>;
  fetch?: typeof fetch;
  /** Where the trainer's output is passed through to (the pod log); default this process's stdout/stderr. */
  stdout?: Writable;
  stderr?: Writable;
  /** The local report buffer; default <checkpoint dir>/run-<run>/reports/attempt-<a>-worker-<rank>.jsonl. */
  bufferPath?: string;
  /** Retry timing of report delivery. */
  backoff?: { initialMs: number; maxMs: number };
  /** The container's memory cgroup (OOM-kill count and limit); default oom.ts reading /sys/fs/cgroup. */
  memory?: () => MemoryCgroup;
}

/** The AgileRL trainer's reasons for "an exception of this kind, in this phase" (trainers/agilerl/arena_agilerl/errors.py). */
const CATCH_ALL_TRAINER_REASONS: ReadonlySet<string> = new Set(['InvalidHyperparameter', 'TrainingFailed']);

const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

/** Waits for the promise, but no longer than `ms`; the timer is cleared either way so it cannot hold the process. */
async function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

export function reportBufferPath(env: WorkerEnv, root = env.checkpointDir): string {
  return join(root, `run-${env.run}`, 'reports', `attempt-${env.attempt}-worker-${env.rank}.jsonl`);
}

export class Supervisor {
  private readonly env: WorkerEnv;
  private readonly log: Logger;
  private reporter!: Reporter;
  private child: ChildProcess | undefined;
  private stopRequestedAt: number | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private fatal: FatalKind | undefined;
  private checkpoints = 0;
  private finalCheckpoint = false;
  private finished = false;
  private trainerError: TrainerError | undefined;
  private readonly tail = new OutputTail();
  private readonly memory: () => MemoryCgroup;
  private memoryAtStart: MemoryCgroup | undefined;
  /** Where the trainer resumes from: the operator's choice, or a newer checkpoint an earlier attempt never reported. */
  private resume: { from?: string; step?: number };

  constructor(private readonly opts: SupervisorOptions) {
    this.env = opts.env;
    this.memory = opts.memory ?? (() => memoryCgroup());
    this.resume = { from: opts.env.resumeFrom, step: opts.env.resumeStep };
    const base = opts.logger ?? createLogger({ component: 'arena-runtime' });
    this.log = forObject(base, { kind: 'Experiment', namespace: opts.env.namespace, name: opts.env.experiment }).child({
      run: opts.env.run,
      attempt: opts.env.attempt,
      worker: opts.env.rank,
    });
  }

  private get graceMs(): number {
    return this.env.stopGraceSeconds * 1000;
  }

  /** Asks the trainer to stop with a final checkpoint (SIGTERM), and kills it if it has not exited in time. */
  stop(): void {
    if (this.stopRequestedAt !== undefined) return;
    this.stopRequestedAt = Date.now();
    this.log.info('Stop requested: asking the trainer for a final checkpoint', { graceSeconds: this.env.stopGraceSeconds });
    // Part of the grace period is kept for delivering the final reports after the trainer exits.
    const reserve = Math.min(5_000, this.graceMs * 0.2);
    this.terminateChild(this.graceMs - reserve);
  }

  private terminateChild(killAfterMs: number): void {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    this.killTimer = setTimeout(() => {
      this.log.warn('The trainer did not exit in time; killing it', { afterMs: killAfterMs });
      child.kill('SIGKILL');
    }, killAfterMs);
  }

  private onFatal(kind: FatalKind, message: string): void {
    this.fatal = kind;
    this.log.error(kind === 'superseded' ? 'This run or attempt is no longer current: stopping the trainer' : 'The operator refused the run token: stopping the trainer', {
      detail: message,
    });
    this.terminateChild(Math.min(this.graceMs, 10_000));
  }

  async run(): Promise<SupervisorResult> {
    this.reporter = this.openReporter();
    try {
      try {
        this.recoverEarlierCheckpoints();
      } catch (err) {
        // Recovery is a chance to keep what an earlier attempt lost, never a reason to not train.
        this.log.error('Cannot read the earlier attempts\' report buffers; training from the operator\'s choice', { error: (err as Error).message });
      }
      return await this.supervise();
    } finally {
      clearTimeout(this.killTimer);
      await this.reporter.close();
    }
  }

  private openReporter(): Reporter {
    const e = this.env;
    const common = {
      baseUrl: e.reportUrl,
      token: e.runTokenFile ? () => readFileSync(e.runTokenFile!, 'utf8').trim() : e.runToken,
      identity: { experiment: { namespace: e.namespace, name: e.experiment }, run: e.run, attempt: e.attempt, worker: e.rank },
      progressIntervalMs: e.progressIntervalSeconds * 1000,
      // With the operator's CA file, only a server that verifies against it gets the run token.
      fetch: this.opts.fetch ?? (e.reportCaFile ? verifyingFetch(e.reportCaFile) : undefined),
      logger: this.log,
      backoff: this.opts.backoff,
      onFatal: (kind: FatalKind, message: string) => this.onFatal(kind, message),
    };
    // An unwritable or full checkpoint volume must not cost the reports: the buffer moves to local disk, at open or
    // at the first write the volume refuses, and still survives an operator restart.
    const bufferPath = this.opts.bufferPath ?? reportBufferPath(e);
    const fallbackBufferPath = reportBufferPath(e, join(tmpdir(), 'arena-reports', e.namespace, e.experiment));
    return Reporter.open({ ...common, bufferPath, fallbackBufferPath: fallbackBufferPath === bufferPath ? undefined : fallbackBufferPath });
  }

  /**
   * Reports the checkpoints earlier attempts wrote but never got acknowledged, and resumes from the newest
   * checkpoint any earlier attempt wrote when it is newer than the operator's choice. Every rank reads the same
   * buffers and so resumes from the same checkpoint; rank 0 alone reports them.
   */
  private recoverEarlierCheckpoints(): void {
    const e = this.env;
    if (!e.checkpointDir) return;
    const found = scanEarlierAttempts(e.checkpointDir, { run: e.run, attempt: e.attempt });
    for (const s of found.skipped) this.log.warn('An earlier attempt\'s unreported checkpoint cannot be reported', { location: s.location, why: s.reason });
    if (e.rank === 0 && found.unreported.length > 0) {
      for (const c of found.unreported) this.reporter.report({ ...c.event, recovered: c.origin });
      // Now in this attempt's own buffer, durably: this attempt delivers them, or a later one finds them there.
      for (const f of handOver(found.buffers)) this.log.warn('Cannot mark an earlier attempt\'s report buffer as handed over', { path: f.path, error: f.error });
      this.log.info('Reporting checkpoints earlier attempts wrote but never got acknowledged', {
        checkpoints: found.unreported.map((c) => ({ run: c.origin.run, attempt: c.origin.attempt, step: c.event.step, location: c.event.location })),
      });
    }
    const newest = found.newest;
    if (newest && newest.event.step > (this.resume.step ?? -1)) {
      this.log.info('Resuming from a newer checkpoint than the operator knew of', {
        location: newest.event.location,
        step: newest.event.step,
        writtenBy: newest.origin,
        instead: this.resume.from === undefined ? undefined : { location: this.resume.from, step: this.resume.step },
      });
      this.resume = { from: newest.event.location, step: newest.event.step };
    }
  }

  /** The checkpoint volume's space now, for telling a failed write on a full volume; undefined if it cannot be read. */
  private volumeSpace(): VolumeSpace | undefined {
    try {
      const st = statfsSync(this.env.checkpointDir);
      return { path: this.env.checkpointDir, freeBytes: st.bavail * st.bsize, totalBytes: st.blocks * st.bsize };
    } catch {
      return undefined;
    }
  }

  private result(outcome: Outcome, exitCode: number, failure?: Failure): SupervisorResult {
    return { exitCode, outcome, failure, checkpoints: this.checkpoints, finalCheckpoint: this.finalCheckpoint, reportsPending: this.reporter.pending };
  }

  private async fail(failure: Failure, exitCode: number, outcome: Outcome = 'failed'): Promise<SupervisorResult> {
    const f = { ...failure, message: clip(failure.message, 4096), hint: failure.hint === undefined ? undefined : clip(failure.hint, 1024) };
    // winston folds a `message` field into the line's text, so the failure's message travels as `detail`.
    this.log.error('Training failed', { reason: f.reason, detail: f.message, hint: f.hint, retryable: f.retryable });
    this.reporter.report({ type: 'failed', at: new Date().toISOString(), ...f });
    await this.reporter.flush(this.env.flushTimeoutSeconds * 1000);
    return this.fatal ? this.fatalResult() : this.result(outcome, exitCode, f);
  }

  private fatalResult(): SupervisorResult {
    return this.fatal === 'superseded' ? this.result('superseded', EXIT_CODES.superseded) : this.result('unauthorized', EXIT_CODES.unauthorized);
  }

  private async supervise(): Promise<SupervisorResult> {
    const e = this.env;
    let manifest: Manifest;
    try {
      manifest = JSON.parse(readFileSync(e.manifestPath, 'utf8')) as Manifest;
    } catch (err) {
      return this.fail(
        { reason: 'ManifestUnreadable', message: `Cannot read the manifest at ${e.manifestPath}: ${(err as Error).message}`, hint: 'The attempt\'s Secret, which holds the manifest, may be missing or not mounted.', retryable: true },
        EXIT_CODES.refused,
        'refused',
      );
    }

    const host = await (this.opts.probe ?? (() => probeHost()))();
    const gpus = host.gpu.gpus;
    this.log.info('Probed the worker', {
      cpu: host.cpu.brand,
      cores: host.cpu.available,
      memoryGiB: Math.round(host.memory.totalBytes / 2 ** 30),
      os: `${host.os.distro ?? host.os.platform} ${host.os.release}`,
      gpus: gpus.map((g) => `${g.index}: ${g.name} (SM ${formatCapability(g.computeCapability)}, ${g.memoryTotalMiB ?? '?'} MiB${g.migMode === 'Enabled' ? ', MIG' : ''})`),
      gpuError: host.gpu.error,
      source: host.source,
    });

    let checked: Awaited<ReturnType<typeof validateForLaunch>>;
    try {
      checked = await validateForLaunch(manifest);
    } catch (err) {
      // An image without the platform's validator cannot tell a good manifest from a bad one: it must not guess.
      return this.fail(
        { reason: 'ValidatorUnavailable', message: `The runtime cannot check the manifest: ${(err as Error).message}`, hint: 'Use a runtime image (setup bundle) that includes its Python environment.', retryable: false },
        EXIT_CODES.refused,
        'refused',
      );
    }
    if (!checked.ok) {
      return this.fail(
        { reason: 'InvalidManifest', message: `The manifest cannot be trained: ${formatRefusals(checked.refusals)}`, hint: checked.refusals[0]!.fix, retryable: false },
        EXIT_CODES.refused,
        'refused',
      );
    }
    // ARENA_DEVICE=cpu is an image's (or a test node's) explicit choice to fine-tune on CPU: tiny models only.
    const cpuChosen = (this.opts.processEnv ?? process.env).ARENA_DEVICE === 'cpu';
    const gpuRefusal = cpuChosen ? undefined : gpuRequirement(manifest.algorithm.name, host.gpu, e.nodeName);
    if (gpuRefusal) return this.fail({ ...gpuRefusal, retryable: false }, EXIT_CODES.refused, 'refused');

    let trainer = this.opts.trainer;
    if (!trainer) {
      const resolved = resolveTrainer(manifest, this.opts.processEnv ?? process.env);
      if (!resolved.ok) {
        const hint = resolved.hint ?? 'Use a runtime image (setup bundle) that includes this trainer.';
        return this.fail({ reason: 'TrainerUnavailable', message: resolved.message, hint, retryable: false }, EXIT_CODES.refused, 'refused');
      }
      trainer = resolved.trainer;
    }
    if (this.stopRequestedAt !== undefined) {
      this.log.info('Stopped before the trainer started');
      return this.result('stopped', EXIT_CODES.ok);
    }
    return this.launch(trainer, host);
  }

  private trainerEnv(host: HostProbe): NodeJS.ProcessEnv {
    const e = this.env;
    const env: NodeJS.ProcessEnv = {
      ...(this.opts.processEnv ?? process.env),
      ARENA_EXPERIMENT: e.experiment,
      ARENA_NAMESPACE: e.namespace,
      ARENA_RUN: String(e.run),
      ARENA_ATTEMPT: String(e.attempt),
      ARENA_WORKER_RANK: String(e.rank),
      ARENA_MANIFEST: e.manifestPath,
      ARENA_CHECKPOINT_DIR: e.checkpointDir,
      [EVENTS_FD_ENV]: String(EVENTS_FD),
    };
    // The trainer reports through the supervisor only; it has no use for the operator's address or the token.
    delete env.ARENA_RUN_TOKEN;
    delete env.ARENA_RUN_TOKEN_FILE;
    delete env.ARENA_REPORT_URL;
    delete env.ARENA_RESUME_FROM;
    delete env.ARENA_RESUME_STEP;
    if (this.resume.from) {
      env.ARENA_RESUME_FROM = this.resume.from;
      if (this.resume.step !== undefined) env.ARENA_RESUME_STEP = String(this.resume.step);
    }
    const backend = attentionBackendFor(host.gpu.gpus);
    if (backend) {
      env.ARENA_ATTENTION_BACKEND = backend;
      env.ARENA_GPU_COMPUTE_CAPABILITY = host.gpu.gpus.map((g) => formatCapability(g.computeCapability)).join(',');
    }
    return env;
  }

  private async launch(trainer: TrainerCommand, host: HostProbe): Promise<SupervisorResult> {
    const out = this.opts.stdout ?? process.stdout;
    const err = this.opts.stderr ?? process.stderr;
    this.log.info('Starting the trainer', { trainer: trainer.name, resumeFrom: this.resume.from, resumeStep: this.resume.step });
    let child: ChildProcess;
    try {
      child = spawn(trainer.command, trainer.args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: { ...this.trainerEnv(host), ...trainer.env } });
    } catch (error) {
      return this.fail({ reason: 'TrainerStartFailed', message: `Cannot start ${trainer.name}: ${(error as Error).message}`, retryable: false }, EXIT_CODES.refused, 'refused');
    }
    this.child = child;
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    // Passed through with backpressure (a slow log reader slows the trainer's writes, not our memory), and the
    // last lines kept for the diagnosis.
    child.stdout!.on('data', (c: Buffer) => this.tail.push(c, 'stdout'));
    child.stderr!.on('data', (c: Buffer) => this.tail.push(c, 'stderr'));
    child.stdout!.pipe(out, { end: false });
    child.stderr!.pipe(err, { end: false });
    const events = createInterface({ input: child.stdio[3] as Readable, crlfDelay: Infinity });
    events.on('line', (line) => this.onLine(line));
    const eventsDone = new Promise<void>((resolve) => events.once('close', resolve));
    const outputDone = new Promise<void>((resolve) => child.once('close', () => resolve()));

    // A SIGTERM that arrived while the supervisor was still checking is passed on now.
    if (this.stopRequestedAt !== undefined) {
      const left = this.stopRequestedAt + this.graceMs - Date.now();
      this.terminateChild(Math.max(0, left - Math.min(5_000, this.graceMs * 0.2)));
    }

    // The kernel's OOM-kill count before the trainer can use memory, to tell its kills from others' afterwards.
    this.memoryAtStart = this.memory();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const first = await Promise.race([exited, spawnError.then((error) => ({ error }))]);
    if ('error' in first) {
      return this.fail({ reason: 'TrainerStartFailed', message: `Cannot start ${trainer.name}: ${first.error.message}`, retryable: false }, EXIT_CODES.refused, 'refused');
    }
    // Read the events and output the trainer wrote just before it exited (a grandchild holding a pipe open must not
    // hang us).
    await waitAtMost(Promise.all([eventsDone, outputDone]), 2_000);
    clearTimeout(this.killTimer);
    const { code, signal } = first;
    this.log.info('The trainer exited', { code, signal, checkpoints: this.checkpoints });

    if (this.fatal) return this.fatalResult();

    if (this.finished && code === 0 && !this.trainerError) {
      this.reporter.report({ type: 'completed', at: new Date().toISOString() });
      const delivered = await this.reporter.flush(this.flushBudgetMs());
      if (!delivered) this.log.warn('Completion not acknowledged yet; it stays in the local buffer', { pending: this.reporter.pending });
      return this.fatal ? this.fatalResult() : this.result('completed', EXIT_CODES.ok);
    }

    if (this.stopRequestedAt !== undefined) {
      const delivered = await this.reporter.flush(this.flushBudgetMs());
      if (!delivered) this.log.warn('Final reports not acknowledged within the grace period', { pending: this.reporter.pending });
      if (this.fatal) return this.fatalResult();
      if (this.finalCheckpoint) return this.result('stopped', EXIT_CODES.ok);
      this.log.error('Stopped without a final checkpoint', { code, signal });
      return this.result('stopped', EXIT_CODES.failed);
    }

    return this.fail(this.failureOf(code, signal), EXIT_CODES.failed);
  }

  private flushBudgetMs(): number {
    if (this.stopRequestedAt === undefined) return this.env.flushTimeoutSeconds * 1000;
    return Math.max(0, this.stopRequestedAt + this.graceMs - 500 - Date.now());
  }

  private failureOf(code: number | null, signal: NodeJS.Signals | null): Failure {
    const now = this.memory();
    const oomKilled = this.memoryAtStart && oomKilledBetween(this.memoryAtStart, now) ? { limitBytes: now.limitBytes } : undefined;
    const volume = this.volumeSpace();
    const found: Diagnosis = diagnose({ lines: this.tail.lines(), exitCode: code, signal, oomKilled, volume });
    const own = this.trainerError;
    // A full checkpoint volume is the cause even when the trainer named the consequence (a checkpoint it could not
    // write): the reason says so, with the volume and its free space.
    const full = volumeFull({ lines: this.tail.lines(), volume, also: own ? `${own.reason ?? ''}: ${own.message}` : undefined });
    if (full) return { reason: full.reason, message: full.message, hint: full.hint, retryable: full.retryable };
    if (own) {
      // A catch-all reason of the trainer's whose message carries a known signature (AgileRL's ValueError for a
      // GRPO group of one is 'InvalidHyperparameter' to the trainer) takes the signature's reason and hint.
      const named = own.reason === undefined || CATCH_ALL_TRAINER_REASONS.has(own.reason) ? matchSignature(own.message.split('\n')) : undefined;
      if (named) return { reason: named.reason, message: own.message, hint: named.hint, retryable: named.retryable };
      // The trainer's own word wins; the log diagnosis fills in what it left out.
      return { reason: own.reason ?? found.reason, message: own.message, hint: own.hint ?? found.hint, retryable: own.retryable ?? found.retryable };
    }
    if (code === 0 && !signal) {
      return {
        reason: 'TrainerExitedEarly',
        message: 'The trainer exited with code 0 without saying it finished.',
        hint: 'A trainer must write {"event":"finished"} on its event channel before it exits (runtime/PROTOCOL.md).',
        retryable: true,
      };
    }
    return { reason: found.reason, message: found.message, hint: found.hint, retryable: found.retryable };
  }

  private onLine(line: string): void {
    if (!line.trim()) return;
    const parsed = parseTrainerEvent(line);
    if (!parsed.ok) {
      this.log.warn('Ignored a malformed trainer event', { error: parsed.error, line: clip(line, 200) });
      return;
    }
    this.onEvent(parsed.event);
  }

  private onEvent(ev: TrainerEvent): void {
    const at = new Date().toISOString();
    switch (ev.event) {
      case 'progress':
        this.reporter.report(progressReport(ev, at));
        return;
      case 'metrics':
        this.log.debug('Trainer metrics', { step: ev.step, ...ev.values });
        return;
      case 'checkpoint': {
        // Only what is on disk is recorded: a checkpoint the trainer names but that is missing or empty (a write
        // that failed, a full volume) would be resumed from and fail then.
        let measured: number;
        try {
          measured = checkpointSize(ev.path);
        } catch (error) {
          this.log.error('The trainer named a checkpoint that is not on disk; it is not recorded', { step: ev.step, path: ev.path, error: error as Error });
          return;
        }
        if (measured === 0) {
          this.log.error('The trainer named an empty checkpoint; it is not recorded', { step: ev.step, path: ev.path });
          return;
        }
        const size = ev.size_bytes ?? measured;
        const final = ev.final === true || this.stopRequestedAt !== undefined;
        this.checkpoints++;
        if (final && this.stopRequestedAt !== undefined) this.finalCheckpoint = true;
        this.log.info('Checkpoint written', { step: ev.step, path: ev.path, evaluationScore: ev.evaluation_score, trainingScore: ev.training_score, final });
        this.reporter.report(checkpointReport({ ...ev, ...(final ? { final: true } : {}) }, at, size));
        return;
      }
      case 'finished':
        this.finished = true;
        return;
      case 'error':
        this.trainerError = ev;
        return;
    }
  }
}
