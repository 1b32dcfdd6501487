// The TrainingCluster's status as a pure function of what the caches hold: worker nodes, GPU capacity per product,
// setup-bundle currency and the conditions the platform reads ("Workers running", "Setup bundle Current").
import { TrainingClusterConditions, type TrainingCluster, type TrainingClusterStatus } from '../../api/v1alpha1/trainingcluster.ts';
import { removeCondition, setCondition, type Condition, type ConditionStatus } from '../../kube/conditions.ts';
import { GPU_PRODUCT_LABEL, UNKNOWN_GPU_PRODUCT, type CapacitySummary, type NodeInfo } from '../../scheduler/capacity.ts';
import { resolveBundle, sourceSentence, type PlatformBundleReport, type ResolvedBundle } from './bundle.ts';
import type { LedgerResult } from './credits.ts';

/** Node labels set by NVIDIA GPU Feature Discovery, besides the product. */
export const GPU_MEMORY_LABEL = 'nvidia.com/gpu.memory';
export const GPU_COMPUTE_MAJOR_LABEL = 'nvidia.com/gpu.compute.major';
export const GPU_COMPUTE_MINOR_LABEL = 'nvidia.com/gpu.compute.minor';

/** The condition the platform heartbeat adds; only present while spec.platform is set. */
export const PLATFORM_CONNECTED = 'PlatformConnected';

/**
 * Node names listed per list. The counts stay exact; the names are for people, and a thousand of them in every
 * watch event of the object would cost more than they tell.
 */
export const NODE_NAMES_LIMIT = 128;
/** The status schema's bound on byProduct. */
const PRODUCTS_LIMIT = 32;

export type AttentionBackend = 'fa3' | 'flashinfer';

/**
 * The attention backend the runtime picks for a GPU: FlashAttention 3 is built for SM 8.0 (A100) and 9.0 (H100);
 * the SM 8.6 / 8.9 parts (RTX 30xx/40xx, L4) and everything else get flashinfer. Kept equal to the runtime's choice
 * (runtime/gpu/probe.ts) so the platform shows what workers will really use.
 */
export function attentionBackend(major: number, minor: number): AttentionBackend {
  const sm = major * 10 + minor;
  return sm === 80 || sm === 90 ? 'fa3' : 'flashinfer';
}

/** Whether a node carries every label of the selector; an empty or absent selector selects every node. */
export function selects(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (selector === undefined) return true;
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

/** Ready and schedulable, the same rule CapacityModel.summary counts by. */
export function isReadyWorker(node: NodeInfo): boolean {
  return node.ready && !node.unschedulable;
}

export interface PlatformHealth {
  status: ConditionStatus;
  reason: string;
  message: string;
}

export interface TrainingClusterObservation {
  cluster: TrainingCluster;
  /** Every node the capacity model knows; the selector is applied here. */
  nodes: Iterable<NodeInfo>;
  /** capacity.summary() restricted to this cluster's worker nodes. */
  capacity: CapacitySummary;
  /** The platform link's last result; consulted only while spec.platform is set. */
  platform?: PlatformHealth;
  /** What the platform link's heartbeat replies said about the current bundle; consulted only while spec.platform is set. */
  platformBundle?: PlatformBundleReport;
  /** The credit ledger's next state (credits.ts computeLedger); absent or empty while credits are not enforced. */
  ledger?: LedgerResult;
  /** status.budgets from the budgets' ledger (budgets.ts computeBudgets); absent without spec.budgets. */
  budgets?: NonNullable<TrainingClusterStatus['budgets']>;
  now: Date;
}

type GpuProductStatus = NonNullable<NonNullable<TrainingClusterStatus['gpus']>['byProduct']>[number];

interface ProductDetails {
  memoryMiB?: number;
  computeCapability?: string;
  attentionBackend?: AttentionBackend;
}

function wholeNumber(v: string | undefined): number | undefined {
  if (v === undefined || !/^[0-9]+$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** What GPU Feature Discovery says about a product, from one node that has it. */
export function productDetails(labels: Readonly<Record<string, string>>): ProductDetails {
  const out: ProductDetails = {};
  const memory = wholeNumber(labels[GPU_MEMORY_LABEL]);
  if (memory !== undefined) out.memoryMiB = memory;
  const major = wholeNumber(labels[GPU_COMPUTE_MAJOR_LABEL]);
  const minor = wholeNumber(labels[GPU_COMPUTE_MINOR_LABEL]);
  if (major !== undefined && minor !== undefined) {
    out.computeCapability = `${major}.${minor}`;
    out.attentionBackend = attentionBackend(major, minor);
  }
  return out;
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The status the controller should write; conditions keep their transition times when their status holds. */
export function desiredTrainingClusterStatus(o: TrainingClusterObservation): TrainingClusterStatus {
  const { cluster, now } = o;
  const spec = cluster.spec;
  const generation = cluster.metadata?.generation ?? 0;
  const selector = spec.workerNodeSelector;

  const ready: string[] = [];
  const notReady: string[] = [];
  // The lowest-named node of each product speaks for it, so the details do not flip between equal nodes.
  const details = new Map<string, { node: string; labels: Readonly<Record<string, string>> }>();
  for (const n of o.nodes) {
    if (!selects(selector, n.labels)) continue;
    (isReadyWorker(n) ? ready : notReady).push(n.name);
    const product = n.labels[GPU_PRODUCT_LABEL];
    if (product !== undefined) {
      const seen = details.get(product);
      if (seen === undefined || n.name < seen.node) details.set(product, { node: n.name, labels: n.labels });
    }
  }
  ready.sort(byName);
  notReady.sort(byName);

  const gpus = o.capacity.gpus;
  // Capacity held for admitted gangs whose pods are not bound yet is as taken as a bound pod's: shown as allocated,
  // so that total = allocated + free.
  const byProduct: GpuProductStatus[] = gpus.byProduct.slice(0, PRODUCTS_LIMIT).map((p) => {
    const d = p.product === UNKNOWN_GPU_PRODUCT ? undefined : details.get(p.product);
    return { product: p.product, total: p.total, allocated: p.allocated + p.reserved, free: p.free, ...(d ? productDetails(d.labels) : {}) };
  });

  const resolved = resolveBundle(cluster, spec.platform ? o.platformBundle : undefined);
  const { source: _, ...bundle } = resolved;
  const status: TrainingClusterStatus = {
    observedGeneration: generation,
    workers: {
      total: ready.length + notReady.length,
      ready: ready.length,
      notReady: notReady.length,
      readyNodes: ready.slice(0, NODE_NAMES_LIMIT),
      notReadyNodes: notReady.slice(0, NODE_NAMES_LIMIT),
    },
    gpus: {
      total: gpus.total,
      allocated: gpus.allocated + gpus.reserved,
      free: gpus.free,
      ...(byProduct.length > 0 ? { byProduct } : {}),
    },
    bundle,
  };
  const platform: NonNullable<TrainingClusterStatus['platform']> = {
    ...(resolved.source === 'Platform' ? { currentBundleVersion: resolved.currentVersion } : {}),
    ...(o.ledger?.platformCredits ? { credits: o.ledger.platformCredits } : {}),
  };
  if (Object.keys(platform).length > 0) status.platform = platform;
  if (o.ledger?.credits) status.credits = o.ledger.credits;
  if (o.budgets) status.budgets = o.budgets;

  let conditions: Condition[] = (cluster.status?.conditions ?? []) as Condition[];
  const set = (type: string, s: ConditionStatus, reason: string, message: string) => {
    conditions = setCondition(conditions, { type, status: s, reason, message }, generation, now);
  };

  const enabled = spec.enabled !== false;
  if (enabled) set(TrainingClusterConditions.ProviderEnabled, 'True', 'ProviderEnabled', 'The provider takes new training runs.');
  else set(TrainingClusterConditions.ProviderEnabled, 'False', 'ProviderDisabled', 'The provider is disabled: new runs wait in Pending until spec.enabled is true.');

  const total = ready.length + notReady.length;
  const where = selector && Object.keys(selector).length > 0 ? `matching ${Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',')}` : 'in the cluster';
  if (total === 0) {
    set(TrainingClusterConditions.WorkersReady, 'False', 'NoWorkerNodes', `No nodes ${where}: label the GPU nodes or change spec.workerNodeSelector.`);
  } else if (ready.length === 0) {
    set(TrainingClusterConditions.WorkersReady, 'False', 'NoReadyWorkers', `None of the ${total} worker nodes is Ready and schedulable.`);
  } else if (notReady.length > 0) {
    set(TrainingClusterConditions.WorkersReady, 'True', 'SomeWorkersNotReady', `${ready.length} of ${total} worker nodes are Ready; not ready: ${listNames(notReady)}.`);
  } else {
    set(TrainingClusterConditions.WorkersReady, 'True', 'WorkersReady', `All ${total} worker nodes are Ready.`);
  }

  const replyNote = spec.platform && o.platformBundle?.problem !== undefined ? ` ${replyProblemSentence(o.platformBundle.problem, resolved)}` : '';
  if (bundle.state === 'Current') {
    set(TrainingClusterConditions.BundleCurrent, 'True', 'BundleCurrent', `Setup bundle ${bundle.installedVersion} is current. ${sourceSentence(resolved)}${replyNote}`);
  } else if (bundle.state === 'UpdateRecommended') {
    set(
      TrainingClusterConditions.BundleCurrent,
      'False',
      'UpdateRecommended',
      `Setup bundle ${bundle.installedVersion} is installed; the platform's current version is ${bundle.currentVersion}: re-run arena on-prem install or re-download the bundle. ${sourceSentence(resolved)}${replyNote}`,
    );
  } else {
    const why = spec.platform
      ? 'Neither a heartbeat reply from the platform nor spec.currentBundleVersion names the current version'
      : 'spec.currentBundleVersion is not set';
    set(TrainingClusterConditions.BundleCurrent, 'Unknown', 'CurrentVersionUnknown', `${why}, so whether the bundle is current is unknown.${replyNote}`);
  }

  // An outdated bundle is a recommendation (the platform shows "Update recommended" and still schedules), so it
  // does not make the provider unready; it only shows in the message.
  const workersOk = ready.length > 0;
  const note = bundle.state === 'UpdateRecommended' ? ' A setup-bundle update is recommended.' : '';
  const exhausted = o.ledger?.condition?.status === 'False';
  if (!enabled) set(TrainingClusterConditions.Ready, 'False', 'ProviderDisabled', 'The provider is disabled.');
  else if (exhausted) set(TrainingClusterConditions.Ready, 'False', 'CreditsExhausted', 'The credit balance is zero: experiments cannot start (see the CreditsAvailable condition).');
  else if (!workersOk) set(TrainingClusterConditions.Ready, 'False', total === 0 ? 'NoWorkerNodes' : 'NoReadyWorkers', 'No worker node is Ready: experiments cannot start.');
  else set(TrainingClusterConditions.Ready, 'True', 'Ready', `Experiments can start on ${ready.length} ready worker node(s).${note}`);

  if (o.ledger?.condition) set(o.ledger.condition.type, o.ledger.condition.status, o.ledger.condition.reason, o.ledger.condition.message);
  else conditions = removeCondition(conditions, TrainingClusterConditions.CreditsAvailable);

  if (spec.platform) {
    const p = o.platform ?? { status: 'Unknown', reason: 'HeartbeatPending', message: 'No heartbeat has been sent to the platform yet.' };
    set(PLATFORM_CONNECTED, p.status, p.reason, p.message);
  } else {
    conditions = removeCondition(conditions, PLATFORM_CONNECTED);
  }

  status.conditions = conditions;
  return status;
}

/** Why the last reply taught nothing, and what the verdict rests on instead. */
function replyProblemSentence(problem: string, b: ResolvedBundle): string {
  const instead =
    b.source === 'Platform'
      ? `the last version it reported, ${b.currentVersion}, is kept`
      : b.source === 'Spec'
        ? `spec.currentBundleVersion (${b.currentVersion}) is used`
        : 'no current version is known';
  return `The platform's last heartbeat reply ${problem}: ${instead}.`;
}

function listNames(names: readonly string[], max = 10): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}
