// The experiment state machine, as a pure function: given everything the reconciler observed, what the status
// should be next and which actions move the world one step toward the spec. No I/O here, so every transition is
// covered by table-driven tests; reconcile.ts gathers the observation and carries the actions out.
//
// Rules (Arena's, which users already know):
//   Train  from Draft, Stopped, Succeeded or Failed. From Draft and Stopped the action alone starts training
//          (Stopped continues the same run from its latest checkpoint); a finished run (Succeeded, Failed)
//          trains again only when spec.run is raised above status.run, so re-applying the same object is a no-op.
//   Stop   from Pending, Running or Stopping: Pending is cancelled at once; Running goes Stopping while workers
//          get the grace period to write a final checkpoint, then Stopped. Without a final checkpoint it is Stopped
//          all the same, naming the latest earlier one that Train continues from (and a FinalCheckpointMissing
//          Warning event says why). In any other phase Stop changes nothing and says why.
//   Credits at zero (the cluster's ledger, trainingcluster/credits.ts): a queued run waits in Pending with reason
//          CreditsExhausted; a Running one is stopped like Stop (final checkpoint in the grace period) and ends
//          Stopped with reason CreditsExhausted, unless the cluster's exhaustedPolicy is Finish (then runs that have
//          started, retries included, go on). While spec.action stays Train, a top-up queues it again to continue
//          from that checkpoint, without anyone re-applying it; status.lastInterruption records both moments.
//          A spent budget of the run's namespace (trainingcluster/budgets.ts) does the same with reason
//          BudgetExhausted, until the budget is raised or its next period begins.
//   Preempt a Running attempt chosen as a victim by the admission service (operator/scheduler/preemption.ts: a
//          higher-priority gang needs its GPUs) is stopped like Stop, with the preemption's checkpoint deadline as the
//          grace period; once its workers are gone it goes back to Pending with reason Preempted (naming the
//          preemptor), keeps its place by priority and arrival, and resumes from that checkpoint when admitted.
//   Retry  a failed worker, a lost node or a gang that never fully started tears the whole gang down and tries
//          again with backoff from the latest checkpoint, up to spec.maxRetries, then Failed with the reason.
//          status.failedAttempts counts the failures: a preemption or a credits stop is a new attempt, not a failure.
import type { Experiment, ExperimentStatus, ExperimentPhase } from '../../api/v1alpha1/experiment.ts';
import { ExperimentConditions, USAGE_DAYS_KEPT } from '../../api/v1alpha1/experiment.ts';
import { round6, spanDays } from '../../usage/usage.ts';
import { setCondition } from '../../kube/conditions.ts';
import type { CreditsVerdict } from '../trainingcluster/credits.ts';
import { BUDGET_EXHAUSTED } from '../trainingcluster/budgets.ts';

/** What the scheduler last decided for this experiment's current attempt. */
export type AdmissionView =
  | { state: 'admitted'; nodes: string[] }
  | { state: 'waiting'; reason: string; message: string; position?: number; estimate?: StartEstimate }
  | { state: 'unknown' };

/** When a waiting gang is expected to start, and why (operator/scheduler/estimate.ts). */
export interface StartEstimate {
  at: string;
  reasoning: string;
}

/** The admission service chose this experiment's running attempt as a preemption victim. */
export interface PreemptionView {
  /** namespace/name of the higher-priority experiment that needs the capacity. */
  by: string;
  byPriority: number;
  /** `<run>-<attempt>` of the attempt chosen; a later attempt is not a victim of this choice. */
  attemptId: string;
  /** The grace period the workers get to write their checkpoint and exit. */
  deadlineSeconds: number;
  /** Set when a team takes back its quota from this run's team, which borrows beyond its own. */
  reclaim?: { from: string; for: string };
}

export interface WorkerView {
  rank: number;
  name: string;
  /** `<run>-<attempt>` of the attempt that created it. */
  attemptId: string;
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  nodeName?: string;
  ready: boolean;
  deleting: boolean;
  /** The node it was bound to is gone or NotReady. */
  nodeLost: boolean;
  exitCode?: number;
  terminationReason?: string;
  /** Every rank's planned node, as the pod carries it (workers.ts annotations.gangNodes). */
  gangNodes?: string[];
}

/** Why the experiment cannot be queued at all, e.g. an unknown class. Blocking problems keep it Pending. */
export interface Blocker {
  reason: string;
  message: string;
  /** Blockers that no retry can fix (an invalid manifest) still leave it Pending: the user fixes the spec. */
}

export interface ReportView {
  /** The current attempt's runtime said training finished. */
  completed: boolean;
  /** The current attempt's runtime reported a failure. */
  failed?: { reason: string; message: string; hint?: string; retryable: boolean };
  /** A checkpoint of the current run written after the stop request. */
  finalCheckpointAfterStop: boolean;
}

export interface Observed {
  now: Date;
  experiment: Experiment;
  /** Spec fields after defaults. */
  spec: Required<Pick<Experiment['spec'], 'action' | 'run' | 'maxRetries' | 'stopGracePeriodSeconds' | 'partialGangTimeoutSeconds'>>;
  blocker?: Blocker;
  /** Workers per gang, from the class (0 when the class is unknown). */
  gangSize: number;
  gpusPerWorker: number;
  creditsPerNodeHour: number;
  admission: AdmissionView;
  /** The credits of the class's cluster; undefined while credits are not enforced there. */
  credits?: CreditsVerdict;
  /** Set while the current attempt is a preemption victim. */
  preemption?: PreemptionView;
  /**
   * The operator's preemption checkpoint deadline, capped by stopGracePeriodSeconds: the grace period a preempted
   * attempt's workers get when they are told, which may be after the choice is no longer in view (a restart).
   */
  preemptionDeadlineSeconds?: number;
  /** Worker pods of this experiment, any attempt. */
  workers: WorkerView[];
  reports: ReportView;
}

export type Action =
  | { type: 'queue' }
  | { type: 'dequeue' }
  | { type: 'createWorkers'; run: number; attempt: number; nodes: string[] }
  | { type: 'deleteWorkers'; which: 'all' | 'stale'; gracePeriodSeconds?: number }
  | { type: 'event'; eventType: 'Normal' | 'Warning'; reason: string; note: string };

export interface Decision {
  status: ExperimentStatus;
  actions: Action[];
  requeueAfterMs?: number;
}

/** The reason of a run the operator stopped, or keeps waiting, because the cluster's credit balance is zero. */
export const CREDITS_EXHAUSTED = 'CreditsExhausted';
// A spent budget of the experiment's namespace (trainingcluster/budgets.ts) is handled as credits at zero.
const heldBySpending = (reason: string | undefined) => reason === CREDITS_EXHAUSTED || reason === BUDGET_EXHAUSTED;
/** The reason of a run stopped (and queued again) to make room for a higher-priority one. */
export const PREEMPTED = 'Preempted';

const terminal: ReadonlySet<ExperimentPhase> = new Set(['Stopped', 'Succeeded', 'Failed']);

/** Backoff before retry n (1-based): 10 s, 20 s, 40 s … capped at 5 minutes. */
export function retryBackoffMs(failedAttempt: number): number {
  return Math.min(10_000 * 2 ** Math.max(0, failedAttempt - 1), 300_000);
}

export function decide(o: Observed): Decision {
  return new Step(o).run();
}

class Step {
  private readonly s: ExperimentStatus;
  private readonly actions: Action[] = [];
  private requeueAfterMs?: number;
  private readonly nowIso: string;
  private readonly generation: number;
  /** Set when this step wrote the scheduler's start estimate; any other outcome drops a stale one. */
  private estimated = false;

  constructor(private readonly o: Observed) {
    this.s = structuredClone(o.experiment.status ?? {});
    this.nowIso = o.now.toISOString();
    this.generation = o.experiment.metadata?.generation ?? 0;
  }

  run(): Decision {
    this.s.observedGeneration = this.generation;
    const phase: ExperimentPhase = this.s.phase ?? 'Draft';
    const action = this.o.spec.action;
    if (!this.s.phase) this.setPhase('Draft', 'Created', 'The experiment is a draft: set spec.action to Train to run it.');

    if (action === 'Stop') this.stop(phase);
    else if (action === 'Train') this.train(phase);
    else this.draft(phase);

    this.validCondition();
    if (!this.estimated) delete this.s.estimatedStartTime;
    return { status: this.s, actions: this.actions, requeueAfterMs: this.requeueAfterMs };
  }

  // --- actions -------------------------------------------------------------------------------------------------

  private draft(phase: ExperimentPhase): void {
    // Draft is where an experiment starts; asking for it later cannot undo a run, so it only explains itself.
    if (phase === 'Pending' || phase === 'Running' || phase === 'Stopping') {
      this.progressing(phase);
      this.condition(ExperimentConditions.Progressing, 'True', 'DraftIgnored', 'action Draft does not stop a run: set spec.action to Stop.');
    }
  }

  private stop(phase: ExperimentPhase): void {
    switch (phase) {
      case 'Pending':
        this.actions.push({ type: 'dequeue' });
        if (this.currentWorkers().length > 0 || this.staleWorkers().length > 0) {
          this.s.stopRequestedAt = this.nowIso;
          this.deleteAll();
          this.setPhase('Stopping', 'StopRequested', 'Stop requested while starting: removing the workers.');
        } else {
          this.finish('Stopped', 'StoppedByUser', 'Stopped before it started: the queued run was cancelled.');
        }
        return;
      case 'Running':
        this.requestStop('StopRequested', `Workers have ${this.o.spec.stopGracePeriodSeconds}s to write a final checkpoint and exit.`);
        this.event('Normal', 'Stopping', 'Stop requested: workers are writing a final checkpoint.');
        return;
      case 'Stopping':
        this.stopping('user');
        return;
      default:
        // Nothing runs, so there is nothing to stop; say so without touching the phase.
        this.condition(
          ExperimentConditions.Progressing,
          'False',
          'StopIgnored',
          `Stop has no effect on a ${phase} experiment: only Pending, Running or Stopping runs can be stopped.`,
        );
    }
  }

  /** Who stopped the run: the user, the operator because the balance is zero, or a preemption. */
  private stopping(cause: 'user' | 'credits' | 'preempted'): void {
    const credits = cause === 'credits';
    const alive = this.o.workers.filter((w) => w.phase === 'Pending' || w.phase === 'Running');
    if (alive.length > 0) {
      this.deleteAll(cause === 'preempted' ? this.preemptionGraceSeconds() : undefined);
      const reason = credits ? (heldBySpending(this.s.reason) ? this.s.reason! : CREDITS_EXHAUSTED) : cause === 'preempted' ? PREEMPTED : 'StopRequested';
      const waiting = `Waiting for ${alive.length} worker(s) to write a final checkpoint and exit.`;
      this.setPhase('Stopping', reason, cause === 'preempted' ? `${this.s.lastInterruption?.message ?? 'Preempted.'} ${waiting}` : waiting);
      this.requeueAfterMs = 2_000;
      return;
    }
    if (this.o.workers.length > 0) this.actions.push({ type: 'deleteWorkers', which: 'all' });
    if (cause === 'preempted') {
      this.requeueAfterPreemption();
      return;
    }
    // A stop never fails a run: without a final checkpoint it goes on from the latest earlier one, as a retry does.
    // The grace period is a chance to write one, not a promise (a loaded node, a trainer still loading its model),
    // and missing it loses only the steps since that checkpoint; Failed would lose the rest too, since a Failed run
    // trains again only as a new run from the start.
    const step = this.s.latestCheckpoint?.step;
    const final = this.o.reports.finalCheckpointAfterStop;
    if (credits) {
      const from = final
        ? `after a final checkpoint at step ${step ?? '?'}`
        : step !== undefined
          ? `without a final checkpoint; it goes on from the latest one, step ${step}`
          : 'before any checkpoint was written; it starts over';
      if (this.s.lastInterruption) {
        if (step !== undefined) this.s.lastInterruption.checkpointStep = step;
        else delete this.s.lastInterruption.checkpointStep;
      }
      if (this.s.reason === BUDGET_EXHAUSTED) {
        this.finish('Stopped', BUDGET_EXHAUSTED, `Stopped ${from}: its namespace's budget is spent. It resumes by itself when the budget is raised or its next period begins.`);
      } else {
        this.finish('Stopped', CREDITS_EXHAUSTED, `Stopped ${from}: the credit balance reached zero. It resumes by itself after a top-up.`);
      }
      return;
    }
    if (final) {
      this.finish('Stopped', 'StoppedByUser', `Stopped after a final checkpoint at step ${step ?? '?'}.`);
      return;
    }
    const rf = this.s.resumedFrom;
    const next =
      step !== undefined
        ? `Train continues from the latest checkpoint, step ${step}.`
        : rf
          ? `Train continues from step ${rf.step} of ${rf.experiment}, which it was resumed from.`
          : 'Train starts over: no checkpoint was written.';
    if (this.s.attemptStartedAt === undefined) {
      this.finish('Stopped', 'StoppedByUser', `Stopped before the workers started training. ${next}`);
      return;
    }
    const failed = this.o.reports.failed;
    const why = failed ? `the trainer reported a failure (${failed.reason}: ${failed.message})` : `none was reported within the ${this.o.spec.stopGracePeriodSeconds}s grace period`;
    const message = `Stopped without a final checkpoint: ${why}. ${next}`;
    // The reason the phase no longer carries, for whoever watches Warning events.
    this.event('Warning', 'FinalCheckpointMissing', message);
    this.finish('Stopped', 'StoppedByUser', message);
  }

  private train(phase: ExperimentPhase): void {
    const { run } = this.o.spec;
    const newRun = phase === 'Draft' || ((phase === 'Succeeded' || phase === 'Failed') && run > (this.s.run ?? 0));
    if (newRun) {
      this.startRun(run);
      return;
    }
    if (phase === 'Stopped') {
      if (heldBySpending(this.s.reason)) this.afterCreditsStop();
      else this.continueRun();
      return;
    }
    switch (phase) {
      case 'Pending':
        this.pending();
        return;
      case 'Running':
        this.running();
        return;
      case 'Stopping':
        // A stop in flight finishes first; Train afterwards continues the run from its final checkpoint.
        this.stopping(heldBySpending(this.s.reason) ? 'credits' : this.s.reason === PREEMPTED ? 'preempted' : 'user');
        return;
      default:
        this.progressing(phase);
    }
  }

  private startRun(run: number): void {
    this.s.run = run;
    this.s.attempt = 1;
    this.s.failedAttempts = 0;
    for (const k of ['progress', 'admittedAt', 'startedAt', 'finishedAt', 'lastFailure', 'retryAt', 'stopRequestedAt', 'attemptStartedAt', 'latestCheckpoint'] as const) {
      delete this.s[k];
    }
    this.setPhase('Pending', 'Queued', 'Queued on the resource class.');
    this.event('Normal', 'Queued', `Run ${run} queued.`);
    this.pending();
  }

  private continueRun(why?: { reason: string; message: string }): void {
    this.newAttempt();
    for (const k of ['finishedAt', 'retryAt', 'stopRequestedAt', 'admittedAt', 'attemptStartedAt'] as const) delete this.s[k];
    this.setPhase('Pending', 'Queued', why?.message ?? 'Queued to continue from the latest checkpoint.');
    this.event('Normal', why?.reason ?? 'Queued', why?.message ?? `Run ${this.s.run ?? 1} queued to continue from its latest checkpoint.`);
    this.pending();
  }

  /** Stopped for credits, spec.action still Train: wait for a top-up, then go on from the checkpoint it stopped with. */
  private afterCreditsStop(): void {
    const c = this.o.credits;
    if (c?.exhausted) {
      this.condition(ExperimentConditions.Progressing, 'False', c.reason ?? CREDITS_EXHAUSTED, `${c.message} This run resumes from its final checkpoint by itself then.`);
      return;
    }
    const step = this.s.latestCheckpoint?.step;
    if (this.s.lastInterruption) this.s.lastInterruption.resumedAt = this.nowIso;
    const from = step !== undefined ? `the checkpoint at step ${step}` : 'the start (no checkpoint was written)';
    const again = this.s.reason === BUDGET_EXHAUSTED ? 'Its budget allows training again' : 'Credits are available again';
    this.continueRun({ reason: 'ResumedAfterTopUp', message: `${again}: run ${this.s.run ?? 1} is queued to continue from ${from}.` });
  }

  /** Credits at zero, and nothing lets this attempt go on: true when it must wait (and says so). */
  private creditsHold(current: WorkerView[]): boolean {
    const c = this.o.credits;
    if (!c?.exhausted) return false;
    // Finish lets runs that have started go on; a retry of one (retryAt set by the failure) has started.
    if (c.policy === 'Finish' && this.s.retryAt !== undefined) return false;
    const reason = c.reason ?? CREDITS_EXHAUSTED;
    this.actions.push({ type: 'dequeue' });
    if (current.length > 0) this.deleteAll();
    if (this.s.reason !== reason) this.event('Warning', reason, c.message);
    delete this.s.queuePosition;
    this.waiting(reason, c.message);
    return true;
  }

  /** Stops a Running attempt because the balance is zero or its budget spent, through the same path as Stop. */
  private creditsStop(c: CreditsVerdict): void {
    const reason = c.reason ?? CREDITS_EXHAUSTED;
    this.s.lastInterruption = { reason, message: c.message, at: this.nowIso, run: this.s.run ?? 1 };
    this.requestStop(reason, `${c.message} Workers have ${this.o.spec.stopGracePeriodSeconds}s to write a final checkpoint and exit.`);
    this.condition(ExperimentConditions.Progressing, 'False', reason, c.message);
    this.event('Warning', reason, `Stopping: ${c.message}`);
  }

  /**
   * Every stop of a Running attempt (the user's, the credits', a preemption's) is recorded first and told second:
   * the workers hear of it (their pods are deleted) only from the Stopping step, once a status holding
   * stopRequestedAt is stored. A final checkpoint is judged against that moment, so it must never come after the
   * workers were told: a write that fails (a cut connection) and lands later with a later stamp would make a final
   * checkpoint look older than the stop.
   */
  private requestStop(reason: string, message: string): void {
    this.s.stopRequestedAt = this.nowIso;
    this.requeueAfterMs = 2_000;
    this.setPhase('Stopping', reason, message);
  }

  /** The grace period of a preemption's workers: its deadline, as the choice said or as the operator caps it. */
  private preemptionGraceSeconds(): number {
    const p = this.o.preemption;
    if (p && p.attemptId === this.currentId()) return p.deadlineSeconds;
    return this.o.preemptionDeadlineSeconds ?? this.o.spec.stopGracePeriodSeconds;
  }

  /** A new attempt of the same run that is not a failure: failedAttempts carries over, so no retry is spent. */
  private newAttempt(): void {
    const attempt = this.s.attempt ?? 0;
    // Status written before failedAttempts existed: every earlier attempt counts as failed, as it did then.
    this.s.failedAttempts ??= Math.max(0, attempt - 1);
    this.s.attempt = attempt + 1;
  }

  /** Stops a Running attempt that a higher-priority gang preempts, through the same path as Stop. */
  private preemptStop(p: PreemptionView): void {
    const message = p.reclaim
      ? `Preempted by ${p.by} (team ${p.reclaim.for}), which reclaims its quota: this run's team ${p.reclaim.from} borrows GPUs beyond its own.`
      : `Preempted by ${p.by} (priority ${p.byPriority}), which needs this run's capacity.`;
    this.s.lastInterruption = { reason: PREEMPTED, message, at: this.nowIso, run: this.s.run ?? 1, preemptedBy: p.by };
    this.requestStop(PREEMPTED, `${message} Workers have ${p.deadlineSeconds}s to write a checkpoint and exit; the run then waits in the queue and resumes from it.`);
    this.condition(ExperimentConditions.Progressing, 'False', PREEMPTED, message);
    this.event('Warning', PREEMPTED, `Stopping: ${message}`);
  }

  /** The victim's workers are gone: record what the resume keeps, and queue the run again as a new attempt. */
  private requeueAfterPreemption(): void {
    this.accountUsage();
    const step = this.s.latestCheckpoint?.step;
    const reached = Math.max(this.s.progress?.step ?? 0, step ?? 0);
    const li = this.s.lastInterruption;
    if (li) {
      if (step !== undefined) li.checkpointStep = step;
      else delete li.checkpointStep;
      li.stepAtStop = reached;
      li.lostSteps = reached - (step ?? 0);
    }
    this.newAttempt();
    for (const k of ['finishedAt', 'retryAt', 'stopRequestedAt', 'admittedAt', 'attemptStartedAt'] as const) delete this.s[k];
    this.setPhase('Pending', PREEMPTED, this.preemptedMessage());
    this.event('Normal', 'Requeued', `${this.preemptedMessage()} ${li?.lostSteps ?? 0} step(s) since that checkpoint are lost.`);
    this.pending();
  }

  /** Queued again after a preemption and not admitted since. */
  private waitingAfterPreemption(): boolean {
    const li = this.s.lastInterruption;
    return li?.reason === PREEMPTED && li.run === (this.s.run ?? 1) && li.resumedAt === undefined && this.s.stopRequestedAt === undefined;
  }

  private preemptedMessage(): string {
    return `${this.s.lastInterruption?.message ?? 'Preempted.'} It resumes from ${this.resumePoint()} when capacity returns.`;
  }

  private resumePoint(): string {
    const step = this.s.lastInterruption?.checkpointStep;
    return step !== undefined ? `its checkpoint at step ${step}` : 'the start (no checkpoint was written)';
  }

  /** A wait in the queue; after a preemption the reason stays Preempted and the scheduler's words follow. */
  private queueWait(reason: string, message: string): void {
    if (this.waitingAfterPreemption()) this.waiting(PREEMPTED, `${this.preemptedMessage()} ${message}`);
    else this.waiting(reason, message);
  }

  private pending(): void {
    const o = this.o;
    const current = this.currentWorkers();
    if (o.blocker) {
      this.actions.push({ type: 'dequeue' });
      if (current.length > 0) this.deleteAll();
      this.waiting(o.blocker.reason, o.blocker.message);
      return;
    }
    if (this.creditsHold(current)) return;
    const stale = this.staleWorkers();
    if (stale.length > 0) this.actions.push({ type: 'deleteWorkers', which: 'stale' });
    // The previous attempt's pods still hold their GPUs, so admission waits until they are gone; pods stuck on a
    // lost node do not hold it up (their node is not eligible, and the kubelet that would end them is gone).
    if (stale.some((w) => !w.nodeLost)) {
      this.queueWait('CleaningUp', 'Removing the workers of the previous attempt.');
      this.requeueAfterMs = 1_000;
      return;
    }
    const retryAt = this.s.retryAt ? Date.parse(this.s.retryAt) : 0;
    if (retryAt > o.now.getTime()) {
      const secs = Math.ceil((retryAt - o.now.getTime()) / 1000);
      this.waiting('RetryBackoff', `Attempt ${this.s.attempt ?? 1} starts in ${secs}s after the last failure.`);
      this.requeueAfterMs = retryAt - o.now.getTime();
      return;
    }

    if (current.length > 0) {
      // Admitted before (possibly by a previous operator process): the pods are the record of it.
      this.actions.push({ type: 'dequeue' });
      this.starting(current);
      return;
    }
    if (o.admission.state === 'admitted') {
      this.actions.push({ type: 'createWorkers', run: this.s.run ?? 1, attempt: this.s.attempt ?? 1, nodes: o.admission.nodes });
      this.s.admittedAt = this.nowIso;
      delete this.s.queuePosition;
      if (this.waitingAfterPreemption()) {
        this.s.lastInterruption!.resumedAt = this.nowIso;
        this.event('Normal', 'ResumedAfterPreemption', `Admitted again after the preemption; it resumes from ${this.resumePoint()}.`);
      }
      this.condition(ExperimentConditions.Admitted, 'True', 'Admitted', `Admitted on ${o.admission.nodes.length} node(s).`);
      // Exactly what starting() says once the pods are seen and none runs yet, so their appearance writes nothing.
      this.workersStarting(0);
      // Queued and admitted in one step: one event says both.
      const queued = this.actions.findIndex((a) => a.type === 'event' && a.reason === 'Queued');
      if (queued >= 0) this.actions.splice(queued, 1);
      this.event('Normal', 'Admitted', `${queued >= 0 ? `Run ${this.s.run ?? 1} queued and admitted` : 'Admitted'} on ${o.admission.nodes.join(', ')}.`);
      this.requeueAfterMs = o.spec.partialGangTimeoutSeconds * 1000;
      return;
    }
    this.actions.push({ type: 'queue' });
    if (o.admission.state === 'waiting') {
      if (o.admission.position !== undefined) this.s.queuePosition = o.admission.position;
      else delete this.s.queuePosition;
      const estimate = o.admission.estimate;
      if (estimate) {
        this.s.estimatedStartTime = estimate.at;
        this.estimated = true;
      }
      this.queueWait(o.admission.reason, estimate ? `${o.admission.message} ${estimate.reasoning}` : o.admission.message);
    } else {
      this.queueWait('Queued', 'Waiting for the scheduler.');
    }
  }

  private starting(current: WorkerView[]): void {
    const o = this.o;
    const failed = this.firstFailure(current);
    if (failed) {
      this.failAttempt(failed.reason, failed.message, failed.hint, failed.retryable);
      return;
    }
    // Fewer pods than ranks while none has failed: an operator stopped between creating them (a SIGKILL mid-
    // admission). The reconciler waits for its own creations to reach the cache before it decides, so this is the
    // gang a previous process left. Each pod carries the whole plan: create the missing ranks on their nodes now
    // rather than wait out the partial-gang timeout and spend a retry.
    const plan = current.find((w) => w.gangNodes?.length === o.gangSize)?.gangNodes;
    if (current.length < o.gangSize && plan && current.every((w) => !w.deleting)) {
      const have = new Set(current.map((w) => w.rank));
      const missing = plan.map((_, rank) => rank).filter((rank) => !have.has(rank));
      this.actions.push({ type: 'createWorkers', run: this.s.run ?? 1, attempt: this.s.attempt ?? 1, nodes: plan });
      this.event('Normal', 'GangCompleted', `Created worker(s) ${missing.join(', ')} of a gang a previous operator process left half-created.`);
    }
    // A worker that finished before the operator ever saw it Running (a short run, a busy operator, a watch that
    // delivered Pending then Succeeded) has started all the same; waiting for Running would hold the experiment
    // Pending until the partial-gang timeout failed it.
    const started = (w: WorkerView) => w.phase === 'Running' || w.phase === 'Succeeded';
    if (current.length >= o.gangSize && current.every(started)) {
      const finishedUnseen = o.reports.completed || current.some((w) => w.phase === 'Succeeded');
      // Usage is metered from the attempt's start; one never seen running held its GPUs from admission on.
      this.s.attemptStartedAt = finishedUnseen ? (this.s.admittedAt ?? this.nowIso) : this.nowIso;
      this.s.startedAt ??= this.s.attemptStartedAt;
      this.condition(ExperimentConditions.WorkersReady, 'True', 'AllWorkersRunning', `${current.length} of ${o.gangSize} workers running.`);
      this.setPhase('Running', 'Training', `${current.length} worker(s) training.`);
      this.event('Normal', 'Running', `All ${current.length} workers are running.`);
      if (finishedUnseen) {
        // Decided in this same step: finished, failed or still running, as the Running phase would see it.
        this.running();
        return;
      }
      // What running() says from the next look on, written now with the phase rather than in a write of its own.
      this.progressing('Running');
      return;
    }
    const admittedAt = this.s.admittedAt ? Date.parse(this.s.admittedAt) : o.now.getTime();
    const deadline = admittedAt + o.spec.partialGangTimeoutSeconds * 1000;
    const running = current.filter((w) => w.phase === 'Running').length;
    if (o.now.getTime() >= deadline) {
      this.failAttempt(
        'PartialGang',
        `Only ${running} of ${o.gangSize} workers were running ${o.spec.partialGangTimeoutSeconds}s after admission; the gang was released.`,
        'Check why the missing workers did not start (image pull, node problems): kubectl describe pod.',
        true,
      );
      return;
    }
    this.s.admittedAt ??= this.nowIso;
    this.workersStarting(running);
    this.requeueAfterMs = deadline - o.now.getTime();
  }

  private workersStarting(running: number): void {
    const message = `${running} of ${this.o.gangSize} workers running.`;
    this.condition(ExperimentConditions.WorkersReady, 'False', 'WorkersStarting', message);
    this.setPhase('Pending', 'Starting', message);
  }

  private running(): void {
    const o = this.o;
    const current = this.currentWorkers();
    const failed = this.firstFailure(current);
    if (failed) {
      this.failAttempt(failed.reason, failed.message, failed.hint, failed.retryable);
      return;
    }
    const allDone = current.length >= o.gangSize && current.every((w) => w.phase === 'Succeeded');
    if (o.reports.completed || allDone) {
      this.accountUsage();
      this.finish('Succeeded', 'TrainingComplete', 'Training finished.');
      return;
    }
    if (current.length < o.gangSize) {
      this.failAttempt('WorkerLost', `${o.gangSize - current.length} worker pod(s) disappeared.`, undefined, true);
      return;
    }
    if (o.credits?.exhausted && o.credits.policy === 'Stop') {
      this.creditsStop(o.credits);
      return;
    }
    if (o.preemption && o.preemption.attemptId === this.currentId()) {
      this.preemptStop(o.preemption);
      return;
    }
    this.progressing('Running');
  }

  // --- helpers -------------------------------------------------------------------------------------------------

  private firstFailure(current: WorkerView[]): { reason: string; message: string; hint?: string; retryable: boolean } | undefined {
    if (this.o.reports.failed) return this.o.reports.failed;
    const lost = current.find((w) => w.nodeLost);
    if (lost) {
      return {
        reason: 'NodeLost',
        message: `Node ${lost.nodeName ?? '?'} of worker ${lost.rank} is gone or not ready.`,
        retryable: true,
      };
    }
    const failed = current.find((w) => w.phase === 'Failed');
    if (failed) {
      const code = failed.exitCode !== undefined ? ` with exit code ${failed.exitCode}` : '';
      const why = failed.terminationReason ? ` (${failed.terminationReason})` : '';
      return { reason: 'WorkerFailed', message: `Worker ${failed.rank} (${failed.name}) failed${code}${why}.`, retryable: true };
    }
    const vanished = current.find((w) => w.deleting);
    if (vanished && this.s.phase === 'Running') {
      return { reason: 'WorkerLost', message: `Worker ${vanished.rank} (${vanished.name}) is being deleted.`, retryable: true };
    }
    return undefined;
  }

  private failAttempt(reason: string, message: string, hint: string | undefined, retryable: boolean): void {
    const attempt = this.s.attempt ?? 1;
    // Only failures spend retries; attempts begun by a preemption or a credits stop do not.
    const retries = this.s.failedAttempts ?? attempt - 1;
    this.s.failedAttempts = retries + 1;
    this.accountUsage();
    this.s.lastFailure = { reason, message, at: this.nowIso, attempt, ...(hint ? { hint } : {}) };
    this.deleteAll();
    delete this.s.attemptStartedAt;
    delete this.s.admittedAt;
    this.condition(ExperimentConditions.WorkersReady, 'False', reason, message);
    if (retryable && retries < this.o.spec.maxRetries) {
      const backoff = retryBackoffMs(retries + 1);
      this.s.attempt = attempt + 1;
      this.s.retryAt = new Date(this.o.now.getTime() + backoff).toISOString();
      this.setPhase('Pending', 'RetryBackoff', `Attempt ${attempt} failed (${reason}): ${message} Retrying from the latest checkpoint in ${Math.round(backoff / 1000)}s.`);
      this.event('Warning', reason, `Attempt ${attempt} failed: ${message} Retrying (${retries + 1} of ${this.o.spec.maxRetries}).`);
      this.requeueAfterMs = backoff;
      return;
    }
    const why = retryable ? `after ${attempt} attempt(s)` : '(not retryable)';
    this.finish('Failed', reason, `${message} The run failed ${why}.`);
  }

  private finish(phase: 'Stopped' | 'Succeeded' | 'Failed', reason: string, message: string): void {
    this.accountUsage();
    this.actions.push({ type: 'dequeue' });
    this.s.finishedAt = this.nowIso;
    for (const k of ['queuePosition', 'retryAt', 'attemptStartedAt', 'admittedAt'] as const) delete this.s[k];
    this.setPhase(phase, reason, message);
    this.condition(ExperimentConditions.Progressing, 'False', reason, message);
    this.condition(ExperimentConditions.WorkersReady, 'False', 'RunEnded', 'The run has ended.');
    this.event(phase === 'Failed' ? 'Warning' : 'Normal', phase, message);
  }

  /**
   * Folds the running time of the current attempt into usage, once (attemptStartedAt is cleared after): into the
   * totals, and into the UTC days it spanned, so daily reports place it exactly.
   */
  private accountUsage(): void {
    const started = this.s.attemptStartedAt ? Date.parse(this.s.attemptStartedAt) : undefined;
    if (started === undefined) return;
    const ended = Math.max(started, this.o.now.getTime());
    const usage = this.s.usage ?? { nodeSeconds: 0, gpuSeconds: 0, credits: 0 };
    const amounts = (seconds: number) => {
      const nodeSeconds = Math.round(seconds) * this.o.gangSize;
      return { nodeSeconds, gpuSeconds: nodeSeconds * this.o.gpusPerWorker, credits: (nodeSeconds / 3600) * this.o.creditsPerNodeHour };
    };
    const total = amounts((ended - started) / 1000);
    usage.nodeSeconds += total.nodeSeconds;
    usage.gpuSeconds += total.gpuSeconds;
    usage.credits = round6(usage.credits + total.credits);
    const days = new Map((usage.days ?? []).map((d) => [d.date, { ...d }]));
    for (const [date, fraction] of spanDays({ startMs: started, endMs: ended }, { fromMs: -Infinity, toMs: Infinity })) {
      const part = amounts(((ended - started) / 1000) * fraction);
      if (part.nodeSeconds === 0) continue;
      const day = days.get(date) ?? { date, nodeSeconds: 0, gpuSeconds: 0, credits: 0 };
      day.nodeSeconds += part.nodeSeconds;
      day.gpuSeconds += part.gpuSeconds;
      day.credits = round6(day.credits + part.credits);
      days.set(date, day);
    }
    const kept = [...days.values()].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0)).slice(-USAGE_DAYS_KEPT);
    if (kept.length > 0) usage.days = kept;
    this.s.usage = usage;
    delete this.s.attemptStartedAt;
  }

  private waiting(reason: string, message: string): void {
    this.setPhase('Pending', reason, message);
    this.condition(ExperimentConditions.Admitted, 'False', reason, message);
  }

  private progressing(phase: ExperimentPhase): void {
    if (phase === 'Running') this.condition(ExperimentConditions.Progressing, 'True', 'Training', 'Training.');
    else if (terminal.has(phase)) this.condition(ExperimentConditions.Progressing, 'False', this.s.reason ?? phase, this.s.message ?? phase);
  }

  private validCondition(): void {
    const b = this.o.blocker;
    if (b && (b.reason === 'InvalidManifest' || b.reason === 'InvalidSpec')) this.condition(ExperimentConditions.Valid, 'False', b.reason, b.message);
    else this.condition(ExperimentConditions.Valid, 'True', 'Valid', 'The spec and manifest are valid.');
  }

  private currentId(): string {
    return `${this.s.run ?? 1}-${this.s.attempt ?? 1}`;
  }

  private currentWorkers(): WorkerView[] {
    const id = this.currentId();
    return this.o.workers.filter((w) => w.attemptId === id && !(w.deleting && this.s.phase !== 'Running'));
  }

  private staleWorkers(): WorkerView[] {
    const id = this.currentId();
    return this.o.workers.filter((w) => w.attemptId !== id);
  }

  private deleteAll(gracePeriodSeconds = this.o.spec.stopGracePeriodSeconds): void {
    if (this.o.workers.length === 0) return;
    this.actions.push({ type: 'deleteWorkers', which: 'all', gracePeriodSeconds });
  }

  private setPhase(phase: ExperimentPhase, reason: string, message: string): void {
    this.s.phase = phase;
    this.s.reason = reason;
    this.s.message = message;
  }

  private condition(type: string, status: 'True' | 'False' | 'Unknown', reason: string, message: string): void {
    this.s.conditions = setCondition(this.s.conditions, { type, status, reason, message }, this.generation, this.o.now);
  }

  private event(eventType: 'Normal' | 'Warning', reason: string, note: string): void {
    this.actions.push({ type: 'event', eventType, reason, note });
  }
}
