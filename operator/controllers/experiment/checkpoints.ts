// Choosing a checkpoint of an experiment: best (highest evaluation score), final (most steps) or a given step.
// Resume uses it now; deployments use the same rule.
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import { bestOf } from './reports.ts';

export type CheckpointChoice = { checkpoint?: 'best' | 'final' | 'step' | 'specific'; step?: number };
type Stored = NonNullable<NonNullable<Experiment['status']>['checkpoints']>[number];

export type Resolved = { ok: true; checkpoint: Stored } | { ok: false; problem: string };

export function resolveCheckpoint(source: Experiment | undefined, choice: CheckpointChoice & { experiment?: string }): Resolved {
  const name = choice.experiment ?? source?.metadata?.name ?? '?';
  if (!source) return { ok: false, problem: `Experiment ${name} does not exist in this namespace.` };
  const list = source.status?.checkpoints ?? [];
  if (list.length === 0) return { ok: false, problem: `Experiment ${name} has no checkpoints yet.` };
  const kind = choice.checkpoint ?? 'best';
  if (kind === 'step' || kind === 'specific') {
    const hit = [...list].reverse().find((c) => c.step === choice.step);
    if (!hit) {
      const steps = list.map((c) => c.step).slice(-10).join(', ');
      return { ok: false, problem: `Experiment ${name} has no checkpoint at step ${choice.step}; it has steps ${steps}.` };
    }
    return { ok: true, checkpoint: hit };
  }
  if (kind === 'final') {
    const final = list.reduce((a, b) => (b.step > a.step || (b.step === a.step && b.run > a.run) ? b : a));
    return { ok: true, checkpoint: final };
  }
  const best = bestOf(list);
  if (!best) return { ok: false, problem: `Experiment ${name} has no checkpoint with an evaluation score; choose final or a step.` };
  return { ok: true, checkpoint: best };
}
