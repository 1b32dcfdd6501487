// Why an experiment cannot be queued at all, before capacity is even considered. Each reason says what to fix.
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import { needsGpu, type AlgorithmName } from '../../api/v1alpha1/manifest.ts';
import { validate, formatErrors, type FieldError } from '../../api/validate.ts';
import type { Blocker } from './lifecycle.ts';

export interface GateInput {
  experiment: Experiment;
  cls?: ResourceClass;
  cluster?: TrainingCluster;
  /** Set when spec.resumeFrom cannot be resolved (unknown experiment, no such checkpoint). */
  resumeProblem?: string;
  /** The Arena platform's verdict on spec.manifest, as errors under spec.manifest (none when it is valid). */
  manifestErrors?: readonly FieldError[];
}

// Every experiment of a class asks on every reconcile; a cached class object is replaced, never changed, when the
// class changes, so its verdict is kept with the object.
const classVerdicts = new WeakMap<ResourceClass, string | undefined>();

function classErrors(cls: ResourceClass): string | undefined {
  if (classVerdicts.has(cls)) return classVerdicts.get(cls);
  const r = validate('ResourceClass', { apiVersion: cls.apiVersion ?? 'arena.agilerl.com/v1alpha1', kind: 'ResourceClass', ...cls });
  const problem = r.ok ? undefined : formatErrors(r.errors);
  classVerdicts.set(cls, problem);
  return problem;
}

export function blockerFor({ experiment, cls, cluster, resumeProblem, manifestErrors = [] }: GateInput): Blocker | undefined {
  const result = validate('Experiment', experiment);
  const structural = result.ok ? [] : result.errors;
  // Where the CRD's own structure already refuses the manifest, the platform's verdict on it adds nothing.
  const errors = structural.some((e) => e.field.startsWith('spec.manifest')) ? structural : [...structural, ...manifestErrors];
  if (errors.length) {
    const manifestOnly = errors.every((e) => e.field.startsWith('spec.manifest'));
    return {
      reason: manifestOnly ? 'InvalidManifest' : 'InvalidSpec',
      message: `Fix the experiment: ${listErrors(errors)}`,
    };
  }
  const className = experiment.spec.resourceClass;
  if (!className) return { reason: 'NoResourceClass', message: 'Set spec.resourceClass to the ResourceClass to train on.' };
  if (!cls) {
    return {
      reason: 'ResourceClassNotFound',
      message: `ResourceClass ${className} does not exist: create it or set spec.resourceClass to one listed by kubectl get rclass.`,
    };
  }
  if (!cluster) {
    return {
      reason: 'TrainingClusterNotFound',
      message: `ResourceClass ${className} names TrainingCluster ${cls.spec.trainingCluster}, which does not exist: an admin must create it (kubectl get tcl).`,
    };
  }
  if (cluster.spec.enabled === false) {
    return {
      reason: 'ProviderDisabled',
      message: `The on-prem provider ${cluster.metadata?.name} is disabled: an admin must set spec.enabled: true on the TrainingCluster.`,
    };
  }
  if (cls.spec.enabled === false) {
    return { reason: 'ClassDisabled', message: `ResourceClass ${className} is disabled: an admin must enable it, or pick another class.` };
  }
  // The API refuses such a class now; one stored before that (or with its checks bypassed) must not reach the
  // scheduler, which cannot count it.
  const classProblem = classErrors(cls);
  if (classProblem) {
    return { reason: 'InvalidResourceClass', message: `ResourceClass ${className} is not valid: ${classProblem}. An admin must fix it.` };
  }
  const algorithm = experiment.spec.manifest.algorithm.name as AlgorithmName;
  if (needsGpu(algorithm) && (cls.spec.worker?.gpus ?? 0) < 1) {
    return {
      reason: 'ClassHasNoGpus',
      message: `${algorithm} is an Advanced Training (LLM) algorithm and needs at least 1 GPU per worker; ResourceClass ${className} has none: pick a GPU class.`,
    };
  }
  if (resumeProblem) return { reason: 'ResumeSourceUnavailable', message: resumeProblem };
  return undefined;
}

/** status.message holds 4,096 characters: the errors that fit in half of it, then how many more there are. */
export const MAX_LISTED_ERRORS_CHARS = 2048;

export function listErrors(errors: readonly FieldError[], budget = MAX_LISTED_ERRORS_CHARS): string {
  const shown: FieldError[] = [];
  for (const e of errors) {
    if (shown.length > 0 && formatErrors([...shown, e]).length > budget) break;
    shown.push(e);
  }
  let text = formatErrors(shown);
  if (text.length > budget) text = `${text.slice(0, budget - 1)}…`;
  const more = errors.length - shown.length;
  return more > 0 ? `${text}; and ${more} more (kubectl arena manifest validate lists them all)` : text;
}

/**
 * The priority admission orders and preempts by: spec.priority, or the value of spec.priorityClassName clamped to
 * spec.priority's range; undefined while that PriorityClass does not exist.
 */
export function experimentPriority(experiment: Experiment, priorityClassValue?: (name: string) => number | undefined): number | undefined {
  const name = experiment.spec.priorityClassName;
  if (name === undefined) return experiment.spec.priority ?? 0;
  const value = priorityClassValue?.(name);
  return value === undefined ? undefined : Math.max(-1000, Math.min(1000, value));
}
