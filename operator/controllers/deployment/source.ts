// The checkpoint an agent serves: spec.source resolved once against the source experiment's checkpoints and then
// frozen in status.checkpoint, so that training that goes on (a better best, a later final) never moves a live
// endpoint. Only a source that names another experiment or another specific step is resolved again.
import type { Deployment, DeploymentStatus } from '../../api/v1alpha1/deployment.ts';
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import { rfc3339 } from '../../kube/conditions.ts';
import { resolveCheckpoint } from '../experiment/checkpoints.ts';

export type FrozenCheckpoint = NonNullable<DeploymentStatus['checkpoint']>;

/** Why no checkpoint could be chosen. Each can fix itself (the experiment appears, trains, writes the step). */
export type SourceProblem = 'SourceNotFound' | 'NoCheckpoints' | 'CheckpointNotFound';

export type SourceState =
  | { ok: true; checkpoint: FrozenCheckpoint; /** Resolved by this call, not read from status. */ fresh: boolean }
  | { ok: false; reason: SourceProblem; message: string };

/** Whether the frozen checkpoint still answers spec.source (another experiment or step means a new choice). */
export function frozenMatches(source: Deployment['spec']['source'], frozen: FrozenCheckpoint | undefined): frozen is FrozenCheckpoint {
  if (!frozen || frozen.experiment !== source.experiment) return false;
  return (source.checkpoint ?? 'best') !== 'specific' || frozen.step === source.step;
}

export function sourceState(d: Deployment, experiment: Experiment | undefined, now: Date): SourceState {
  const source = d.spec.source;
  const frozen = d.status?.checkpoint;
  if (frozenMatches(source, frozen)) return { ok: true, checkpoint: frozen, fresh: false };

  const name = source.experiment;
  if (!experiment) {
    return { ok: false, reason: 'SourceNotFound', message: `Experiment ${name} does not exist in namespace ${d.metadata?.namespace}; the agent waits for it.` };
  }
  if ((experiment.status?.checkpoints ?? []).length === 0) {
    return { ok: false, reason: 'NoCheckpoints', message: `Experiment ${name} has no checkpoints yet; the agent waits for its first one.` };
  }
  const r = resolveCheckpoint(experiment, { experiment: name, checkpoint: source.checkpoint ?? 'best', step: source.step });
  if (!r.ok) return { ok: false, reason: 'CheckpointNotFound', message: r.problem };
  const c = r.checkpoint;
  return {
    ok: true,
    fresh: true,
    checkpoint: {
      experiment: name,
      step: c.step,
      ...(c.trainingScore !== undefined ? { trainingScore: c.trainingScore } : {}),
      ...(c.evaluationScore !== undefined ? { evaluationScore: c.evaluationScore } : {}),
      location: c.location,
      resolvedAt: rfc3339(now),
    },
  };
}
