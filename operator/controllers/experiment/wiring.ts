// Wires the Experiment controller into the operator: the capacity model kept from the shared pod and node caches,
// the admission service (the gang scheduler), the report inbox, the reconciler with its API writes, and the event
// handlers that only enqueue keys. startOperator calls wireExperiments once; admission and the controller run on
// the leader only.
import type { CoreV1Api, CustomObjectsApi, V1Node, V1Pod } from '@kubernetes/client-node';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from 'winston';
import { GROUP, VERSION, kinds } from '../../api/v1alpha1/index.ts';
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import type { FieldError } from '../../api/field-errors.ts';
import type { SharedCaches, WorkerPod } from '../../caches.ts';
import { Controller, objectKey } from '../../kube/controller.ts';
import type { EventRecorder } from '../../kube/events.ts';
import type { LeanNode } from '../../kube/informer.ts';
import { updateStatusIfChanged } from '../../kube/status.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { CapacityModel } from '../../scheduler/capacity.ts';
import { nodeInfoFromNode, podUsageFromPod } from '../../scheduler/from-kube.ts';
import { creditsVerdict } from '../trainingcluster/credits.ts';
import { spentBudgets } from '../trainingcluster/budgets.ts';
import { AdmissionService } from './admission-service.ts';
import { runningGangs } from './running-gangs.ts';
import { ExperimentReconciler, type ExperimentReconcilerDeps } from './reconcile.ts';
import { ReportInbox } from './reports.ts';
import { labels } from './workers.ts';

export interface ExperimentControllerConfig {
  /** Concurrent reconciles. Default 64. */
  workers?: number;
  progressIntervalMs?: number;
  starvationMs?: number;
  /** How long a worker's node may be NotReady before its gang is retried elsewhere; default 60 s. */
  nodeLostAfterMs?: number;
  /**
   * Checkpoint-aware preemption (running-gangs.ts, scheduler/preemption.ts): a victim must have run its attempt
   * `minRunTimeSeconds` (default 300) and gets `checkpointDeadlineSeconds` (default 120, or its own
   * stopGracePeriodSeconds when lower) to write a checkpoint and exit. `enabled: false` turns it off.
   */
  preemption?: { enabled?: boolean; minRunTimeSeconds?: number; checkpointDeadlineSeconds?: number };
}

export interface ExperimentDeps {
  core: CoreV1Api;
  custom: CustomObjectsApi;
  caches: SharedCaches;
  recorder: EventRecorder;
  metrics: Metrics;
  registry: Registry;
  logger: Logger;
  runTokens: ExperimentReconcilerDeps['runTokens'];
  runTokenKey: ExperimentReconcilerDeps['runTokenKey'];
  reportUrl: string;
  reportCa?: ExperimentReconcilerDeps['reportCa'];
  manifestErrors: (manifest: unknown) => Promise<FieldError[]>;
}

export interface ExperimentParts {
  capacity: CapacityModel;
  admission: AdmissionService;
  inbox: ReportInbox;
  controller: Controller;
  startLeading(): void;
  stop(): Promise<void>;
}

/** A worker pod's gang is its owning Experiment; the reservation of an admitted gang is kept under that key. */
function gangOf(p: WorkerPod): string | undefined {
  if (p.metadata?.labels?.[labels.component] !== 'worker') return undefined;
  const owner = p.metadata.ownerReferences?.find((r) => r.kind === 'Experiment' && r.apiVersion === `${GROUP}/${VERSION}`);
  return owner ? `${p.metadata.namespace}/${owner.name}` : undefined;
}

/**
 * Whether a training cluster's ledgers let work run: the credits, and which budgets are spent. A change of it (a
 * status write, a raised budget) changes what experiments may do.
 */
function creditsState(tc: TrainingCluster): string {
  const v = creditsVerdict(tc);
  return `${v === undefined ? 'unlimited' : v.exhausted ? 'exhausted' : 'available'}/${spentBudgets(tc)}`;
}

export function wireExperiments(d: ExperimentDeps, config: ExperimentControllerConfig = {}): ExperimentParts {
  const { experiments, classes, clusters, pods, nodes, priorityClasses } = d.caches;
  const logger = d.logger;
  const cycleSeconds = new Gauge({ name: 'arena_admission_cycle_seconds', help: 'Duration of the last admission cycle.', registers: [d.registry] });

  // Capacity: kept incrementally from node and pod events.
  const capacity = new CapacityModel();
  const countPod = (p: WorkerPod) => {
    const usage = podUsageFromPod(p as unknown as V1Pod);
    // A worker pinned to its planned node holds that node's capacity from creation, before it is bound.
    if (usage.node === '' && p.pin) usage.node = p.pin;
    capacity.upsertPod(objectKey(p), usage, gangOf(p));
  };
  const countNode = (n: LeanNode) => {
    try {
      capacity.upsertNode(nodeInfoFromNode(n as unknown as V1Node));
    } catch (err) {
      logger.warn('node skipped', { name: n.metadata?.name, error: (err as Error).message });
    }
  };

  const priorityClassValue = (name: string) => priorityClasses.get(name)?.value;
  const deadlineSeconds = config.preemption?.checkpointDeadlineSeconds ?? 120;
  const preemptionsTotal = new Counter({ name: 'arena_preemptions_total', help: 'Running experiments chosen as preemption victims.', registers: [d.registry] });
  const preemptionLostSteps = new Histogram({
    name: 'arena_preemption_lost_steps',
    help: 'Steps a preempted experiment trained past the checkpoint it resumes from (work lost per preemption).',
    buckets: [0, 1, 10, 100, 1_000, 10_000, 100_000],
    registers: [d.registry],
  });

  const inbox = new ReportInbox({ wake: (key) => controller.enqueue(key), progressIntervalMs: config.progressIntervalMs });
  const admission = new AdmissionService({
    capacity,
    logger,
    starvationMs: config.starvationMs,
    wake: (keys) => keys.forEach((k) => controller.enqueue(k)),
    onCycle: (s) => cycleSeconds.set(s.durationMs / 1000),
    running: () => runningGangs({ experiments: experiments.list(), podsOf: (uid) => pods.byIndex('experiment', uid) as unknown as V1Pod[], priorityClassValue, nowMs: Date.now() }),
    preemption: config.preemption?.enabled !== false ? { minRunTimeMs: (config.preemption?.minRunTimeSeconds ?? 300) * 1000, deadlineSeconds } : undefined,
    onPreempt: () => preemptionsTotal.inc(),
    classOf: (key) => experiments.get(key)?.spec.resourceClass,
  });
  const readyCondition = (name: string) => nodes.get(name)?.status?.conditions?.find((c) => c.type === 'Ready');
  const reconciler = new ExperimentReconciler({
    core: d.core,
    experiments,
    classes,
    clusters,
    workerPods: (uid) => pods.byIndex('experiment', uid) as unknown as V1Pod[],
    nodeState: (name) => {
      if (!nodes.get(name)) return 'missing';
      return readyCondition(name)?.status === 'True' ? 'ready' : 'notReady';
    },
    nodeNotReadySince: (name) => {
      const ready = readyCondition(name);
      if (!ready || ready.status === 'True' || !ready.lastTransitionTime) return undefined;
      const ms = Date.parse(String(ready.lastTransitionTime));
      return Number.isFinite(ms) ? new Date(ms) : undefined;
    },
    nodeLostAfterMs: config.nodeLostAfterMs,
    admission,
    priorityClassValue,
    // Without preemption no run is stopped by one, so nothing plans for its deadline.
    preemptionDeadlineSeconds: config.preemption?.enabled !== false ? deadlineSeconds : undefined,
    onPreemptionRequeued: (lost) => preemptionLostSteps.observe(lost),
    inbox,
    runTokens: d.runTokens,
    runTokenKey: d.runTokenKey,
    writeStatus: async (exp, status) => {
      await updateStatusIfChanged(
        d.custom,
        { group: GROUP, version: VERSION, plural: kinds.Experiment.plural, kind: 'Experiment', schema: kinds.Experiment.status },
        exp,
        status as Record<string, unknown>,
        d.metrics,
      );
    },
    // Cached objects come from lists, which carry no kind or apiVersion; events need both to name the object.
    recordEvent: (exp, type, reason, note) => d.recorder.record({ ...exp, apiVersion: `${GROUP}/${VERSION}`, kind: 'Experiment' }, type, reason, note),
    reportUrl: d.reportUrl,
    reportCa: d.reportCa,
    logger,
    manifestErrors: d.manifestErrors,
  });
  // Reconciles spend most of their time waiting on the API server; enough workers keep admission from queueing
  // behind those round trips (one key is still never reconciled twice at once). 64 rather than 16 took 300
  // admissions from 24 s to 17 s in e2e/bench/operator-admission.bench.ts.
  const controller = new Controller({ name: 'experiment', reconciler, workers: config.workers ?? 64, metrics: d.metrics, logger });

  // Event wiring: every handler only enqueues keys; reconcile reads the caches.
  const enqueueExp = (o: Experiment) => controller.enqueue(objectKey(o));
  experiments.on('add', enqueueExp);
  experiments.on('update', enqueueExp);
  experiments.on('delete', enqueueExp);
  const enqueueOwner = (p: WorkerPod) => {
    const gang = gangOf(p);
    if (gang) controller.enqueue(gang);
  };
  pods.on('add', (p) => (countPod(p), enqueueOwner(p), admission.trigger()));
  pods.on('update', (p) => (countPod(p), enqueueOwner(p), admission.trigger()));
  pods.on('delete', (p) => {
    capacity.removePod(objectKey(p));
    const gang = gangOf(p);
    if (gang) reconciler.podGone(gang, p.metadata!.name!);
    enqueueOwner(p);
    admission.trigger();
  });
  const onNode = (n: LeanNode) => {
    for (const p of pods.byIndex('node', n.metadata!.name!)) enqueueOwner(p);
    admission.trigger();
  };
  nodes.on('add', (n) => (countNode(n), onNode(n)));
  nodes.on('update', (n, old) => {
    countNode(n);
    if (JSON.stringify(n.status?.conditions) !== JSON.stringify(old.status?.conditions) || n.metadata?.resourceVersion !== old.metadata?.resourceVersion) onNode(n);
  });
  nodes.on('delete', (n) => (capacity.removeNode(n.metadata!.name!), onNode(n)));
  const byPriorityClass = (pc: { metadata?: { name?: string } }) => experiments.list().filter((e) => e.spec.priorityClassName === pc.metadata?.name).forEach(enqueueExp);
  priorityClasses.on('add', byPriorityClass);
  priorityClasses.on('update', byPriorityClass);
  priorityClasses.on('delete', byPriorityClass);
  const byClass = (className: string) => experiments.list().filter((e) => e.spec.resourceClass === className).forEach(enqueueExp);
  const onClass = (c: ResourceClass) => byClass(c.metadata!.name!);
  classes.on('add', onClass);
  // Status writes (the class controller's) do not change what experiments see; only spec changes do.
  classes.on('update', (c, old) => c.metadata?.generation !== old.metadata?.generation && onClass(c));
  classes.on('delete', onClass);
  const onCluster = (tc: TrainingCluster) =>
    classes.list().filter((c) => c.spec.trainingCluster === tc.metadata!.name).forEach(onClass);
  clusters.on('add', onCluster);
  // Besides spec changes, the credit ledger running out or being topped up (a status write) changes what
  // experiments may do.
  clusters.on('update', (tc, old) => (tc.metadata?.generation !== old.metadata?.generation || creditsState(tc) !== creditsState(old)) && onCluster(tc));
  clusters.on('delete', onCluster);

  return {
    capacity,
    admission,
    inbox,
    controller,
    startLeading: () => {
      admission.start();
      controller.start();
      for (const e of experiments.list()) enqueueExp(e);
    },
    stop: async () => {
      admission.stop();
      await controller.stop();
    },
  };
}
