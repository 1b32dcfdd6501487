// The ResourceClass's status as a pure function: whether new experiments can be queued on it and why not, how many
// gangs fit now and at most, its queue, and whether its provider's setup bundle needs an update.
import { ResourceClassConditions, type ResourceClass, type ResourceClassStatus } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import { setCondition, type Condition, type ConditionStatus } from '../../kube/conditions.ts';
import { resolveBundle, sourceSentence, type BundleView } from '../trainingcluster/bundle.ts';
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import { ClassTeams, UNASSIGNED } from '../../scheduler/teams.ts';

type TeamStatus = NonNullable<ResourceClassStatus['teams']>[number];

/**
 * Per team of spec.teams, from the class's experiments: admitted and running ones hold a gang's GPUs (nodes ×
 * worker.gpus), Pending ones not yet admitted wait. Namespaces no team lists show as "unassigned" when they use the
 * class at all. Undefined without teams.
 */
export function teamStatuses(cls: ResourceClass, experiments: Iterable<Experiment>): TeamStatus[] | undefined {
  const spec = cls.spec.teams;
  if (spec === undefined || spec.length === 0) return undefined;
  const teams = new ClassTeams(cls.metadata?.name ?? '', spec);
  const gang = cls.spec.nodes * (cls.spec.worker?.gpus ?? 0);
  const rows = new Map<string, TeamStatus>();
  for (const t of spec) rows.set(t.name, { name: t.name, quotaGpus: t.gpus, usedGpus: 0, borrowedGpus: 0, queued: 0, running: 0 });
  for (const e of experiments) {
    const st = e.status;
    const holds = st?.phase === 'Running' || st?.phase === 'Stopping' || (st?.phase === 'Pending' && st.admittedAt !== undefined);
    const waits = st?.phase === 'Pending' && st.admittedAt === undefined;
    if (!holds && !waits) continue;
    const team = teams.teamOf(e.metadata?.namespace ?? '');
    let row = rows.get(team);
    if (!row) rows.set(team, (row = { name: UNASSIGNED, quotaGpus: 0, usedGpus: 0, borrowedGpus: 0, queued: 0, running: 0 }));
    if (holds) {
      row.running++;
      row.usedGpus += gang;
    } else row.queued++;
  }
  for (const row of rows.values()) row.borrowedGpus = Math.max(0, row.usedGpus - row.quotaGpus);
  return [...rows.values()];
}

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
  /** teamStatuses(), when the class has teams. */
  teams?: TeamStatus[];
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
    ...(o.teams ? { teams: o.teams } : {}),
    ...(bundle ? { bundle } : {}),
  };
}
