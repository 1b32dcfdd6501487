// Builders for tables of decide() cases (lifecycle.test.ts, credits.test.ts): an experiment, a worker as the
// reconciler sees it, and the observation around them, at a fixed clock.
import type { Observed, WorkerView, Action } from './lifecycle.ts';
import type { Experiment, ExperimentStatus, ExperimentAction } from '../../api/v1alpha1/experiment.ts';

export const now = new Date('2026-11-23T10:00:00Z');
export const iso = (offsetS: number) => new Date(now.getTime() + offsetS * 1000).toISOString();

export function exp(action: ExperimentAction, status: ExperimentStatus = {}, run = 1): Experiment {
  return {
    metadata: { name: 'e', namespace: 'ns', uid: 'u', generation: 3 },
    spec: { action, run, resourceClass: 'c', manifest: { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } } },
    status,
  } as Experiment;
}

export function worker(rank: number, phase: WorkerView['phase'], more: Partial<WorkerView> = {}): WorkerView {
  return { rank, name: `e-w${rank}`, attemptId: '1-1', phase, ready: phase === 'Running', deleting: false, nodeLost: false, ...more };
}

export function observe(e: Experiment, more: Partial<Observed> = {}): Observed {
  return {
    now,
    experiment: e,
    spec: {
      action: e.spec.action ?? 'Draft',
      run: e.spec.run ?? 1,
      maxRetries: 2,
      stopGracePeriodSeconds: 30,
      partialGangTimeoutSeconds: 300,
    },
    gangSize: 2,
    gpusPerWorker: 4,
    creditsPerNodeHour: 10,
    admission: { state: 'unknown' },
    workers: [],
    reports: { completed: false, finalCheckpointAfterStop: false },
    ...more,
  };
}

/** The actions' types, events left out. */
export const types = (actions: Action[]) => actions.map((a) => a.type).filter((t) => t !== 'event');
