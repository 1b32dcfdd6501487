// reconcile(key) for Experiments: read the experiment and everything it depends on from the caches, let the pure
// lifecycle decide the next status and actions, carry the actions out, and write status only when it changed.
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import { withDefaults, type FieldError } from '../../api/validate.ts';
import type { Experiment, ExperimentStatus } from '../../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import { isAlreadyExists, isNotFound, toKubeError } from '../../kube/errors.ts';
import { deletePodSeen } from '../../kube/delete.ts';
import { setCondition, statusEqual } from '../../kube/conditions.ts';
import type { ReconcileResult } from '../../kube/controller.ts';
import { blockerFor, experimentPriority } from './gating.ts';
import { decide, type Action, type Observed, type WorkerView } from './lifecycle.ts';
import type { ReportInbox } from './reports.ts';
import { annotations, labels, names, runObjects, workerPods, attemptId, type AttemptRef } from './workers.ts';
import { resolveCheckpoint } from './checkpoints.ts';
import { Expectations } from './expectations.ts';
import { creditsVerdict } from '../trainingcluster/credits.ts';
import { budgetVerdict } from '../trainingcluster/budgets.ts';

export interface Cache<T> {
  get(key: string): T | undefined;
  list(namespace?: string): T[];
}

export interface GangRequest {
  key: string;
  className: string;
  priority: number;
  arrivalMs: number;
  workers: number;
  cls: ResourceClass;
  cluster: TrainingCluster;
  /** How long it would run once admitted, when it trained before (steps left at its last speed); for estimates. */
  expectedDurationMs?: number;
}

/** The admission scheduler as the reconciler sees it. */
export interface Admission {
  queue(req: GangRequest): void;
  dequeue(key: string): void;
  view(key: string): Observed['admission'];
  /** The admitted gang's pods exist now: it leaves the queue; its reservation lasts until release(). */
  placed(key: string): void;
  /** Drops the gang's reservation: its pods are counted on their nodes, or it will not run. */
  release(key: string): void;
  isQueued(key: string): boolean;
  /** Resolves once the gangs queued so far have a verdict (or at once when admission is not running). */
  settled?(): Promise<void>;
  /** Set while this experiment's running attempt is a preemption victim. */
  preemption?(key: string): Observed['preemption'];
}

export interface ExperimentReconcilerDeps {
  core: CoreV1Api;
  experiments: Cache<Experiment>;
  classes: Cache<ResourceClass>;
  clusters: Cache<TrainingCluster>;
  /** Worker pods of an experiment, by its uid. */
  workerPods: (experimentUid: string) => V1Pod[];
  nodeState: (name: string) => 'ready' | 'notReady' | 'missing';
  /** When the node's Ready condition last turned away from True; undefined when unknown (or Ready). */
  nodeNotReadySince?: (name: string) => Date | undefined;
  /**
   * How long a worker's node may be NotReady before the gang is torn down and retried. A kubelet that misses a
   * few heartbeats has not necessarily lost its containers; a node that is gone is acted on at once. Default 60 s.
   */
  nodeLostAfterMs?: number;
  admission: Admission;
  /** The value of a scheduling.k8s.io PriorityClass, undefined when there is none of that name. */
  priorityClassValue?: (name: string) => number | undefined;
  /** Caps a preemption victim's grace period; the victim's own stopGracePeriodSeconds when lower. */
  preemptionDeadlineSeconds?: number;
  /** A preempted run was queued again: the steps since the checkpoint it resumes from are lost. */
  onPreemptionRequeued?: (lostSteps: number) => void;
  inbox: ReportInbox;
  /** Tokens for the workers of an attempt, one per rank, and the id of the signing key that made them. */
  runTokens: (exp: Experiment, attempt: AttemptRef, workers: number) => Promise<{ key: string; tokens: string[] }>;
  /** The id of the signing key tokens are checked with now; undefined while it is not loaded. */
  runTokenKey: () => string | undefined;
  writeStatus: (exp: Experiment, status: ExperimentStatus) => Promise<void>;
  recordEvent: (exp: Experiment, type: 'Normal' | 'Warning', reason: string, note: string) => void;
  reportUrl: string;
  /**
   * The CA bundle workers verify the report API with (server/api-tls.ts): the ConfigMap's name, and how to make
   * sure it is in a namespace before pods that mount it are created. Absent: plain HTTP (local development).
   */
  reportCa?: { configMap: string; ensure: (namespace: string) => Promise<void> };
  logger: Logger;
  now?: () => Date;
  /**
   * The Arena platform's verdict on a manifest, as errors under spec.manifest. It throws when the platform's
   * validator cannot run, and the reconcile is retried: an experiment is never admitted on a guess.
   */
  manifestErrors: (manifest: unknown) => Promise<FieldError[]>;
}

export class ExperimentReconciler {
  private readonly expectations: Expectations;

  constructor(private readonly d: ExperimentReconcilerDeps) {
    this.expectations = new Expectations({
      onExpired: (key, unmet) =>
        d.logger.warn('the caches did not show this operator\'s own writes in time; reconciling from them anyway', { key, statusWrite: unmet.status, pods: unmet.pods }),
    });
  }

  /** A worker pod left the cache: one this process created need not be waited for any more. */
  podGone(key: string, podName: string): void {
    this.expectations.podGone(key, podName);
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const d = this.d;
    const stored = d.experiments.get(key);
    if (!stored) {
      // Gone: its pods, Service and Secrets go with it through owner references.
      d.admission.dequeue(key);
      d.admission.release(key);
      d.inbox.forget(key);
      this.expectations.forget(key);
      return;
    }
    if (stored.metadata?.deletionTimestamp) {
      d.admission.dequeue(key);
      d.admission.release(key);
      this.expectations.forget(key);
      return;
    }
    const pods = d.workerPods(stored.metadata!.uid!);
    const behindMs = this.expectations.waitMs(key, {
      resourceVersion: stored.metadata?.resourceVersion,
      hasPod: (name) => pods.some((p) => p.metadata?.name === name),
    });
    // The watch events that bring this process's own writes into the caches wake this key again.
    if (behindMs > 0) return { requeueAfterMs: behindMs };
    const exp = withDefaults('Experiment', structuredClone(stored));
    const now = d.now?.() ?? new Date();
    const cls = exp.spec.resourceClass ? d.classes.get(exp.spec.resourceClass) : undefined;
    const cluster = cls ? d.clusters.get(cls.spec.trainingCluster) : undefined;
    const status = stored.status ?? {};

    const resume = exp.spec.resumeFrom ? resolveCheckpoint(d.experiments.get(`${exp.metadata!.namespace}/${exp.spec.resumeFrom.experiment}`), exp.spec.resumeFrom) : undefined;
    const manifestErrors = await d.manifestErrors(exp.spec.manifest);
    const priority = this.priority(exp);
    const blocker =
      blockerFor({ experiment: exp, cls, cluster, manifestErrors, resumeProblem: resume && !resume.ok ? resume.problem : undefined }) ??
      (priority === undefined
        ? {
            reason: 'PriorityClassNotFound',
            message: `PriorityClass ${exp.spec.priorityClassName} does not exist: create it (kubectl get priorityclass lists them) or set spec.priority to a number instead.`,
          }
        : undefined);
    const { views: workers, recheckInMs: nodeRecheckInMs } = this.workerViews(pods, now);
    const current = { run: status.run ?? exp.spec.run ?? 1, attempt: status.attempt ?? 1 };

    const observed: Observed = {
      now,
      experiment: stored,
      spec: {
        action: exp.spec.action ?? 'Draft',
        run: exp.spec.run ?? 1,
        maxRetries: exp.spec.maxRetries ?? 3,
        stopGracePeriodSeconds: exp.spec.stopGracePeriodSeconds ?? 120,
        partialGangTimeoutSeconds: exp.spec.partialGangTimeoutSeconds ?? 300,
      },
      blocker,
      gangSize: cls?.spec.nodes ?? 0,
      gpusPerWorker: cls?.spec.worker?.gpus ?? 0,
      creditsPerNodeHour: cls?.spec.creditsPerNodeHour ?? 0,
      admission: d.admission.view(key),
      credits: spendingVerdict(cluster, exp.metadata?.namespace ?? '', now),
      preemption: this.preemptionView(key, exp),
      ...(d.preemptionDeadlineSeconds !== undefined ? { preemptionDeadlineSeconds: Math.min(exp.spec.stopGracePeriodSeconds ?? 120, d.preemptionDeadlineSeconds) } : {}),
      workers,
      reports: d.inbox.view(key, current, status.stopRequestedAt, status),
    };
    let decision = decide(observed);
    if (observed.admission.state === 'unknown' && d.admission.settled && decision.actions.some((a) => a.type === 'queue')) {
      // A gang the scheduler has not seen: file it and decide on its verdict, so that a run which fits is queued
      // and admitted with one status write, and one that waits is written once with the reason.
      await this.act({ type: 'queue' }, exp, cls, cluster, decision.status, now);
      await d.admission.settled();
      observed.admission = d.admission.view(key);
      decision = decide(observed);
    }
    const next = decision.status;
    if (resume?.ok && next.phase !== 'Draft' && !next.resumedFrom) {
      next.resumedFrom = { experiment: exp.spec.resumeFrom!.experiment, step: resume.checkpoint.step, location: resume.checkpoint.location };
    }

    let retryCreationInMs: number | undefined;
    for (const action of decision.actions) {
      try {
        await this.act(action, exp, cls, cluster, next, now);
      } catch (err) {
        if (action.type !== 'createWorkers') throw err;
        // The API refused a worker (admission webhook, quota, a missing RuntimeClass): say so in status, give the
        // capacity back, and try again later rather than hammering the API from the retry queue.
        const e = toKubeError(err);
        if (e.retryable) throw err;
        d.admission.release(key);
        next.phase = 'Pending';
        next.reason = 'WorkerCreationFailed';
        next.message = `The API refused a worker pod: ${e.message}. ${creationHint(e.message)}`.trim();
        next.conditions = setCondition(next.conditions, { type: 'Admitted', status: 'False', reason: 'WorkerCreationFailed', message: next.message }, stored.metadata?.generation ?? 0, now);
        delete next.admittedAt;
        d.recordEvent(exp, 'Warning', 'WorkerCreationFailed', next.message);
        retryCreationInMs = 30_000;
      }
    }
    // Worker pods count on their pinned nodes from the moment the pod cache holds them, so the reservation that
    // bridged admission and pod creation can go; so can that of a gang that will not run.
    const currentId = attemptId({ run: next.run ?? 1, attempt: next.attempt ?? 1 });
    const visible = workers.filter((w) => w.attemptId === currentId).length;
    const justCreated = decision.actions.some((a) => a.type === 'createWorkers');
    if (!justCreated && !d.admission.isQueued(key) && (visible === 0 || visible >= observed.gangSize)) d.admission.release(key);
    if (!justCreated && visible > 0) await this.reissueStaleTokens(exp, { run: next.run ?? 1, attempt: next.attempt ?? 1 }, observed.gangSize, next);

    const lost = next.lastInterruption?.lostSteps;
    if (lost !== undefined && next.reason === 'Preempted' && status.phase === 'Stopping' && next.phase === 'Pending') d.onPreemptionRequeued?.(lost);

    const phaseChanged = next.phase !== status.phase;
    const folded = d.inbox.fold(key, next, { force: phaseChanged, gangSize: observed.gangSize });
    if (!statusEqual(stored.status, next)) {
      await d.writeStatus(stored, next);
      this.expectations.wroteStatus(key, stored.metadata?.resourceVersion);
    }
    folded.commit();

    const waits = [decision.requeueAfterMs, folded.progressDueInMs, retryCreationInMs, nodeRecheckInMs].filter((x): x is number => x !== undefined && x > 0);
    // Running experiments are looked at now and then even without events, so a stalled cache cannot hide a
    // stuck gang for long.
    if (next.phase === 'Running' || next.phase === 'Stopping') waits.push(60_000);
    return waits.length ? { requeueAfterMs: Math.min(...waits) } : undefined;
  }

  private priority(exp: Experiment): number | undefined {
    return experimentPriority(exp, this.d.priorityClassValue);
  }

  private preemptionView(key: string, exp: Experiment): Observed['preemption'] {
    const p = this.d.admission.preemption?.(key);
    if (!p) return undefined;
    const own = exp.spec.stopGracePeriodSeconds ?? 120;
    return { ...p, deadlineSeconds: Math.min(own, p.deadlineSeconds, this.d.preemptionDeadlineSeconds ?? own) };
  }

  /** The workers as the lifecycle sees them, and when a NotReady node's grace ends (to look again then). */
  private workerViews(pods: V1Pod[], now: Date): { views: WorkerView[]; recheckInMs?: number } {
    const graceMs = this.d.nodeLostAfterMs ?? 60_000;
    let recheckInMs: number | undefined;
    const lost = (node: string | undefined, phase: string | undefined): boolean => {
      if (node === undefined || phase === 'Succeeded' || phase === 'Failed') return false;
      const state = this.d.nodeState(node);
      if (state !== 'notReady') return state === 'missing';
      const since = this.d.nodeNotReadySince?.(node);
      const leftMs = since === undefined ? 0 : since.getTime() + graceMs - now.getTime();
      if (leftMs <= 0) return true;
      recheckInMs = Math.min(recheckInMs ?? leftMs, leftMs);
      return false;
    };
    const views = pods.map((p): WorkerView => {
      const l = p.metadata?.labels ?? {};
      const term = p.status?.containerStatuses?.[0]?.state?.terminated;
      const node = p.spec?.nodeName;
      return {
        rank: Number(l[labels.rank] ?? 0),
        name: p.metadata!.name!,
        attemptId: `${l[labels.run] ?? '0'}-${l[labels.attempt] ?? '0'}`,
        phase: (p.status?.phase as WorkerView['phase']) ?? 'Pending',
        nodeName: node,
        ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
        deleting: p.metadata?.deletionTimestamp !== undefined,
        nodeLost: lost(node, p.status?.phase),
        exitCode: term?.exitCode,
        terminationReason: term?.reason,
        gangNodes: p.metadata?.annotations?.[annotations.gangNodes]?.split(',').filter(Boolean),
      };
    });
    return { views, recheckInMs };
  }

  private async act(action: Action, exp: Experiment, cls: ResourceClass | undefined, cluster: TrainingCluster | undefined, next: ExperimentStatus, now: Date): Promise<void> {
    const d = this.d;
    const key = `${exp.metadata!.namespace}/${exp.metadata!.name}`;
    switch (action.type) {
      case 'queue':
        if (cls && cluster) {
          d.admission.queue({
            key,
            className: cls.metadata!.name!,
            priority: this.priority(exp) ?? 0,
            expectedDurationMs: expectedDurationMs(next),
            arrivalMs: Date.parse(exp.metadata?.creationTimestamp ? String(exp.metadata.creationTimestamp) : now.toISOString()),
            workers: cls.spec.nodes,
            cls,
            cluster,
          });
        }
        return;
      case 'dequeue':
        d.admission.dequeue(key);
        return;
      case 'createWorkers':
        if (!cls || !cluster) return;
        await this.createWorkers(exp, cls, cluster, action.run, action.attempt, action.nodes, next);
        d.admission.placed(key);
        return;
      case 'deleteWorkers':
        await this.deleteWorkers(exp, action.which, next, action.gracePeriodSeconds);
        return;
      case 'event':
        d.recordEvent(exp, action.eventType, action.reason, action.note);
        return;
    }
  }

  private async createWorkers(
    exp: Experiment,
    cls: ResourceClass,
    cluster: TrainingCluster,
    run: number,
    attempt: number,
    nodes: string[],
    next: ExperimentStatus,
  ): Promise<void> {
    const core = this.d.core;
    const ns = exp.metadata!.namespace!;
    const a = { run, attempt };
    // Tokens are derived from the key and the attempt, so a retry that finds the Secret already there knows what it holds.
    const issued = await this.d.runTokens(exp, a, nodes.length);
    const objs = runObjects(exp, a, issued.tokens);
    next.runTokenKey = issued.key;
    // A retry or a stop-and-train continues from the newest checkpoint of the run; a resume from the chosen one.
    const latest = next.latestCheckpoint ?? (next.resumedFrom ? { step: next.resumedFrom.step, location: next.resumedFrom.location } : undefined);
    const pods = workerPods({ experiment: exp, cls, cluster, attempt: a, nodes, reportUrl: this.d.reportUrl, reportCaConfigMap: this.d.reportCa?.configMap, resumeFrom: latest, preemptionDeadlineSeconds: this.d.preemptionDeadlineSeconds });
    // Before the pods: a worker without the CA could not verify the operator, and so would never send a report.
    await this.d.reportCa?.ensure(ns);
    // One round trip for the Secret, the Service (gangs of several) and the pods: a kubelet that starts a worker before
    // its Secret exists retries, and a gang any of them failed for is removed below.
    // Deterministic names make creation idempotent: an operator that restarts mid-way creates no duplicates.
    const perRun = [
      ignoreExists(core.createNamespacedSecret({ namespace: ns, body: objs.secret })),
      ...(objs.service ? [ignoreExists(core.createNamespacedService({ namespace: ns, body: objs.service }))] : []),
    ];
    const created: V1Pod[] = [];
    const results = await Promise.allSettled([
      ...perRun,
      ...pods.map((body) =>
        ignoreExists(
          core.createNamespacedPod({ namespace: ns, body }).then((pod) => {
            created.push(pod);
            return pod;
          }),
        ),
      ),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      // Half a gang is worse than none: remove the workers this call created (by uid: never a pod it did not make),
      // then report why.
      await Promise.allSettled(created.map((p) => deletePodSeen(core, p, 0)));
      throw failed.reason;
    }
    const existed = pods.filter((_, i) => (results[perRun.length + i] as PromiseFulfilledResult<boolean>).value).map((p) => p.metadata!.name!);
    // Expected after an operator restart; otherwise this reconcile decided from caches that missed the pods.
    if (existed.length > 0) this.d.logger.info('worker pods of this attempt already existed', { namespace: ns, name: exp.metadata!.name, pods: existed });
    this.expectations.createdPods(`${ns}/${exp.metadata!.name!}`, pods.map((p) => p.metadata!.name!));
  }

  /**
   * After the signing key was replaced, the running workers' tokens no longer verify: give the attempt a Secret with
   * tokens of the new key. Its pods read the token from the mounted file, which the kubelet refreshes, and the
   * runtime re-reads it when the operator answers StaleToken; so running work carries on instead of being stranded.
   */
  private async reissueStaleTokens(exp: Experiment, a: AttemptRef, gangSize: number, next: ExperimentStatus): Promise<void> {
    // No key loaded (its Secret was deleted) counts as changed: issuing tokens makes the new key.
    if (next.runTokenKey === undefined || next.runTokenKey === this.d.runTokenKey() || gangSize === 0) return;
    const issued = await this.d.runTokens(exp, a, gangSize);
    if (issued.key === next.runTokenKey) return;
    const { secret } = runObjects(exp, a, issued.tokens);
    const ns = exp.metadata!.namespace!;
    // Create and delete are all the operator may do with Secrets: it never reads one back.
    try {
      await this.d.core.deleteNamespacedSecret({ namespace: ns, name: names(exp, a).secret });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    await ignoreExists(this.d.core.createNamespacedSecret({ namespace: ns, body: secret }));
    this.d.recordEvent(exp, 'Normal', 'RunTokensReissued', `The operator's signing key was replaced; the workers of run ${a.run} attempt ${a.attempt} got tokens of the new key.`);
    next.runTokenKey = issued.key;
  }

  private async deleteWorkers(exp: Experiment, which: 'all' | 'stale', next: ExperimentStatus, grace?: number): Promise<void> {
    const current = attemptId({ run: next.run ?? 1, attempt: next.attempt ?? 1 });
    // A pod whose node object is gone has no kubelet to end it; it is force-deleted, as the pod garbage
    // collector would do later. Every other pod gets its grace period.
    const orphaned = (p: V1Pod) => p.spec?.nodeName !== undefined && this.d.nodeState(p.spec.nodeName) === 'missing';
    const pods = this.d.workerPods(exp.metadata!.uid!).filter((p) => {
      if (p.metadata?.deletionTimestamp && !orphaned(p)) return false;
      if (which === 'all') return true;
      const l = p.metadata?.labels ?? {};
      return `${l[labels.run]}-${l[labels.attempt]}` !== current;
    });
    await Promise.all(
      // The pods as the cache saw them: a pod of the same name created since is not the one decided on.
      pods.map((p) => deletePodSeen(this.d.core, p, orphaned(p) ? 0 : grace)),
    );
  }
}

/** A run that trained before: its steps left at its last reported speed. */
function expectedDurationMs(s: ExperimentStatus): number | undefined {
  const p = s.progress;
  if (!p?.maxSteps || !p.stepsPerSecond) return undefined;
  const from = s.latestCheckpoint?.step ?? 0;
  return (Math.max(0, p.maxSteps - from) / p.stepsPerSecond) * 1000;
}

function creationHint(message: string): string {
  if (/RuntimeClass/i.test(message)) return 'Install the NVIDIA GPU Operator (it creates the RuntimeClass) or set spec.gpu.runtimeClassName on the TrainingCluster.';
  if (/quota/i.test(message)) return 'A ResourceQuota in this namespace is full: raise it or free resources.';
  return '';
}

/** Resolves true when the object already existed. */
async function ignoreExists<T>(p: Promise<T>): Promise<boolean> {
  try {
    await p;
    return false;
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    return true;
  }
}

/** The cluster's credits at zero hold a run first; otherwise a spent budget of its namespace; else the credits as they are. */
function spendingVerdict(cluster: TrainingCluster | undefined, namespace: string, now: Date) {
  const credits = creditsVerdict(cluster);
  if (credits?.exhausted) return credits;
  return budgetVerdict(cluster, namespace, now) ?? credits;
}
