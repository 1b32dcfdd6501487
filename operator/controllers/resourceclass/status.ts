// The ResourceClass's status as a pure function: whether new experiments can be queued on it and why not, how many
// gangs fit now and at most, its queue, and whether its provider's setup bundle needs an update.
import { ResourceClassConditions, type ResourceClass, type ResourceClassStatus } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import { setCondition, type Condition, type ConditionStatus } from '../../kube/conditions.ts';
import { resolveBundle, sourceSentence, type BundleView } from '../trainingcluster/bundle.ts';

export interface ClassFit {
  eligibleNodes: number;
  fitNow: number;
  fitMax: number;
}

export interface ResourceClassObservation {
  cls: ResourceClass;
  cluster?: TrainingCluster;
  /** classFit() over the cluster's nodes; absent when it cannot be computed (no cluster, invalid spec). */
  fit?: ClassFit;
  /** Why the worker nodes are not eligible, e.g. ineligibilityBreakdown(); used when none is. */
  ineligible?: string;
  /** Set when spec.worker cannot be read (a malformed quantity that got past admission). */
  specError?: string;
  queued: number;
  running: number;
  now: Date;
}

/** Available (False) reasons, in the order they are checked: the first one that applies is reported. */
export const UNAVAILABLE_REASONS = ['TrainingClusterNotFound', 'InvalidSpec', 'ProviderDisabled', 'ClassDisabled', 'NoEligibleNode', 'NeverFits'] as const;

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function availability(o: ResourceClassObservation): { available: boolean; reason: string; message: string } {
  const { cls, cluster, fit } = o;
  const name = cls.metadata?.name ?? '';
  if (!cluster) {
    return {
      available: false,
      reason: 'TrainingClusterNotFound',
      message: `TrainingCluster ${cls.spec.trainingCluster} does not exist: create it or fix spec.trainingCluster.`,
    };
  }
  if (o.specError !== undefined) return { available: false, reason: 'InvalidSpec', message: `Fix the class: ${o.specError}` };
  if (cluster.spec.enabled === false) {
    return { available: false, reason: 'ProviderDisabled', message: `The provider ${cluster.metadata?.name} is disabled, so its classes are not offered.` };
  }
  if (cls.spec.enabled === false) return { available: false, reason: 'ClassDisabled', message: `ResourceClass ${name} is disabled: set spec.enabled to true to offer it.` };
  if (!fit || fit.eligibleNodes === 0) {
    const why = o.ineligible ? ` (${o.ineligible})` : '';
    return { available: false, reason: 'NoEligibleNode', message: `No Ready worker node can run a worker of this class${why}.` };
  }
  if (fit.fitMax === 0) {
    return {
      available: false,
      reason: 'NeverFits',
      message: `A gang needs ${plural(cls.spec.nodes, 'node')} that each hold one worker, but only ${plural(fit.eligibleNodes, 'eligible node')} exist and not enough of them can hold a worker even when empty.`,
    };
  }
  return {
    available: true,
    reason: 'Available',
    message: `Up to ${plural(fit.fitMax, 'experiment')} fit at once on ${plural(fit.eligibleNodes, 'eligible node')}.`,
  };
}

export function desiredResourceClassStatus(o: ResourceClassObservation): ResourceClassStatus {
  const { cls, cluster, fit, now } = o;
  const generation = cls.metadata?.generation ?? 0;
  const a = availability(o);

  let conditions: Condition[] = (cls.status?.conditions ?? []) as Condition[];
  const set = (type: string, s: ConditionStatus, reason: string, message: string) => {
    conditions = setCondition(conditions, { type, status: s, reason, message }, generation, now);
  };
  set(ResourceClassConditions.Available, a.available ? 'True' : 'False', a.reason, a.message);

  // Per the platform: "Update recommended" is advice on the row, not a reason to stop offering the class.
  // The verdict comes from the cluster as cached, including the version its status recorded from the platform, so
  // the class and its TrainingCluster agree once the cluster's status is written.
  let bundle: BundleView | undefined;
  if (!cluster) {
    set(ResourceClassConditions.UpdateRecommended, 'Unknown', 'TrainingClusterNotFound', `TrainingCluster ${cls.spec.trainingCluster} does not exist.`);
  } else {
    const b = resolveBundle(cluster);
    const { source: _, ...view } = b;
    bundle = view;
    if (b.state === 'UpdateRecommended') {
      set(
        ResourceClassConditions.UpdateRecommended,
        'True',
        'UpdateRecommended',
        `The platform's training image changed: setup bundle ${b.currentVersion} replaces the installed ${b.installedVersion}. Re-download the bundle or re-run arena on-prem install. ${sourceSentence(b)}`,
      );
    } else if (b.state === 'Current') {
      set(ResourceClassConditions.UpdateRecommended, 'False', 'BundleCurrent', `Setup bundle ${b.installedVersion} is current. ${sourceSentence(b)}`);
    } else {
      set(
        ResourceClassConditions.UpdateRecommended,
        'Unknown',
        'CurrentVersionUnknown',
        `The platform's current setup-bundle version is not known: TrainingCluster ${cluster.metadata?.name} has no version from the platform's heartbeat replies and no spec.currentBundleVersion.`,
      );
    }
  }

  return {
    observedGeneration: generation,
    conditions,
    available: a.available,
    reason: a.reason,
    message: a.message,
    advancedTrainingEligible: (cls.spec.worker?.gpus ?? 0) >= 1,
    ...(fit ? { eligibleNodes: fit.eligibleNodes, fitNow: fit.fitNow, fitMax: fit.fitMax } : {}),
    queued: o.queued,
    running: o.running,
    ...(bundle ? { bundle } : {}),
  };
}
