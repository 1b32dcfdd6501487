// Projections of cached objects into the status API's shapes (schemas.ts). Pure: the router and the platform
// heartbeat both build their answers from these, so the two always say the same.
import { EXPERIMENT_PHASES, type Experiment, type ExperimentPhase } from '../api/v1alpha1/experiment.ts';
import { DEPLOYMENT_PHASES, type Deployment, type DeploymentPhase } from '../api/v1alpha1/deployment.ts';
import { ResourceClassConditions, type ResourceClass } from '../api/v1alpha1/resourceclass.ts';
import { TrainingClusterConditions, type TrainingCluster } from '../api/v1alpha1/trainingcluster.ts';
import { resolveBundle } from '../controllers/trainingcluster/bundle.ts';
import {
  STATUS_API_VERSION,
  type ClusterStatus,
  type DeploymentItem,
  type ExperimentDetail,
  type ExperimentItem,
  type ResourceClassSummary,
  type TrainingClusterSummary,
} from './schemas.ts';

type Conds = { type: string; status: string }[] | undefined;

function conditionIs(conditions: Conds, type: string, status: 'True' | 'False'): boolean {
  return conditions?.some((c) => c.type === type && c.status === status) ?? false;
}

/** Copies the listed keys that are set, leaving out the rest (undefined would still be a key to statusEqual/JSON). */
function pick<S extends object, K extends keyof S>(src: S | undefined, keys: readonly K[]): Partial<Pick<S, K>> {
  const out: Partial<Pick<S, K>> = {};
  if (!src) return out;
  for (const k of keys) if (src[k] !== undefined) out[k] = src[k];
  return out;
}

function timestamp(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  return v instanceof Date ? v.toISOString().replace(/\.\d+Z$/, 'Z') : String(v);
}

function meta(o: { metadata?: { namespace?: string; name?: string; uid?: string; creationTimestamp?: unknown } }) {
  const m = o.metadata ?? {};
  const createdAt = timestamp(m.creationTimestamp);
  return { namespace: m.namespace ?? '', name: m.name ?? '', ...(m.uid ? { uid: m.uid } : {}), ...(createdAt ? { createdAt } : {}) };
}

export function experimentPhase(e: Experiment): ExperimentPhase {
  return e.status?.phase ?? 'Draft';
}

export function deploymentPhase(d: Deployment): DeploymentPhase {
  return d.status?.phase ?? 'Undeployed';
}

export function trainingClusterSummary(tc: TrainingCluster): TrainingClusterSummary {
  const s = tc.status;
  const { source, ...bundle } = resolveBundle(tc);
  return {
    name: tc.metadata?.name ?? '',
    enabled: tc.spec.enabled !== false,
    ...(tc.spec.description ? { description: tc.spec.description } : {}),
    ready: conditionIs(s?.conditions, TrainingClusterConditions.Ready, 'True'),
    workersRunning: (s?.workers?.ready ?? 0) > 0,
    bundle: { ...bundle, ...(source ? { currentVersionSource: source } : {}) },
    ...pick(s, ['workers', 'gpus', 'credits', 'budgets']),
    platformConfigured: tc.spec.platform !== undefined,
    conditions: s?.conditions ?? [],
    generation: tc.metadata?.generation ?? 0,
    ...pick(s, ['observedGeneration']),
  };
}

export function resourceClassSummary(rc: ResourceClass): ResourceClassSummary {
  const s = rc.status;
  const update = s?.conditions?.find((c) => c.type === ResourceClassConditions.UpdateRecommended);
  return {
    name: rc.metadata?.name ?? '',
    trainingCluster: rc.spec.trainingCluster,
    enabled: rc.spec.enabled !== false,
    ...(rc.spec.description ? { description: rc.spec.description } : {}),
    nodes: rc.spec.nodes,
    worker: { ...rc.spec.worker, gpus: rc.spec.worker?.gpus ?? 0 },
    creditsPerNodeHour: rc.spec.creditsPerNodeHour ?? 0,
    ...pick(s, ['available', 'reason', 'message']),
    ...(update && update.status !== 'Unknown' ? { updateRecommended: update.status === 'True' } : {}),
    advancedTrainingEligible: (rc.spec.worker?.gpus ?? 0) >= 1,
    ...pick(s, ['eligibleNodes', 'fitNow', 'fitMax', 'queued', 'running', 'teams']),
    conditions: s?.conditions ?? [],
    generation: rc.metadata?.generation ?? 0,
    ...pick(s, ['observedGeneration']),
  };
}

const listedStatus = [
  'reason',
  'message',
  'run',
  'attempt',
  'queuePosition',
  'estimatedStartTime',
  'failedAttempts',
  'admittedAt',
  'startedAt',
  'finishedAt',
  'workers',
  'progress',
  'latestCheckpoint',
  'bestCheckpoint',
  'lastFailure',
  'lastInterruption',
  'usage',
] as const;

export function experimentItem(e: Experiment): ExperimentItem {
  return {
    ...meta(e),
    ...(e.spec.resourceClass ? { class: e.spec.resourceClass } : {}),
    ...(e.spec.manifest?.algorithm?.name ? { algorithm: String(e.spec.manifest.algorithm.name) } : {}),
    action: e.spec.action ?? 'Draft',
    ...(e.spec.priority !== undefined ? { priority: e.spec.priority } : {}),
    ...(e.spec.priorityClassName ? { priorityClassName: e.spec.priorityClassName } : {}),
    phase: experimentPhase(e),
    ...pick(e.status, listedStatus),
  };
}

export function experimentDetail(e: Experiment): ExperimentDetail {
  return {
    ...experimentItem(e),
    ...(e.spec.description ? { description: e.spec.description } : {}),
    checkpoints: e.status?.checkpoints ?? [],
    ...pick(e.status, ['resumedFrom']),
    conditions: e.status?.conditions ?? [],
  };
}

export function deploymentItem(d: Deployment): DeploymentItem {
  return {
    ...meta(d),
    experiment: d.spec.source.experiment,
    connected: d.spec.connected === true,
    phase: deploymentPhase(d),
    ...pick(d.status, ['reason', 'message', 'deploymentId', 'checkpoint', 'endpoint', 'health']),
  };
}

export function countByPhase<P extends string, T>(phases: readonly P[], items: Iterable<T>, phaseOf: (t: T) => P): { total: number; byPhase: Record<P, number> } {
  const byPhase = Object.fromEntries(phases.map((p) => [p, 0])) as Record<P, number>;
  let total = 0;
  for (const item of items) {
    const phase = phaseOf(item);
    // The API server holds status to the phase enum; a value outside it is still counted in the total.
    total++;
    if (Object.hasOwn(byPhase, phase)) byPhase[phase]++;
  }
  return { total, byPhase };
}

function byName<T extends { metadata?: { name?: string } }>(a: T, b: T): number {
  const x = a.metadata?.name ?? '';
  const y = b.metadata?.name ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}

export interface ClusterSources {
  clusters: Iterable<TrainingCluster>;
  classes: Iterable<ResourceClass>;
  experiments: Iterable<Experiment>;
  deployments: Iterable<Deployment>;
}

export function clusterStatus(src: ClusterSources): ClusterStatus {
  return {
    apiVersion: STATUS_API_VERSION,
    kind: 'ClusterStatus',
    trainingClusters: [...src.clusters].sort(byName).map(trainingClusterSummary),
    classes: [...src.classes].sort(byName).map(resourceClassSummary),
    experiments: countByPhase(EXPERIMENT_PHASES, src.experiments, experimentPhase),
    deployments: countByPhase(DEPLOYMENT_PHASES, src.deployments, deploymentPhase),
  };
}

export { byName as compareByName };
