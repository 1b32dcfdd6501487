// The experiment lifecycle when the admission service preempts a running attempt (lifecycle.ts, preempt rule), and
// the rule that only failures spend retries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, type Observed, type WorkerView, type Action, type PreemptionView } from './lifecycle.ts';
import type { Experiment, ExperimentStatus } from '../../api/v1alpha1/experiment.ts';
import { experimentPriority } from './gating.ts';

const now = new Date('2026-11-23T10:00:00Z');
const iso = (offsetS: number) => new Date(now.getTime() + offsetS * 1000).toISOString();

function exp(status: ExperimentStatus): Experiment {
  return {
    metadata: { name: 'low', namespace: 'ns', uid: 'u', generation: 3 },
    spec: { action: 'Train', run: 1, resourceClass: 'c', manifest: { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } } },
    status,
  } as Experiment;
}

function worker(rank: number, phase: WorkerView['phase'], more: Partial<WorkerView> = {}): WorkerView {
  return { rank, name: `low-w${rank}`, attemptId: '1-1', phase, ready: phase === 'Running', deleting: false, nodeLost: false, ...more };
}

function observe(e: Experiment, more: Partial<Observed> = {}): Observed {
  return {
    now,
    experiment: e,
    spec: { action: 'Train', run: 1, maxRetries: 1, stopGracePeriodSeconds: 120, partialGangTimeoutSeconds: 300 },
    gangSize: 1,
    gpusPerWorker: 4,
    creditsPerNodeHour: 10,
    admission: { state: 'unknown' },
    workers: [],
    reports: { completed: false, finalCheckpointAfterStop: false },
    ...more,
  };
}

const byHigh: PreemptionView = { by: 'ns/high', byPriority: 100, attemptId: '1-1', deadlineSeconds: 20 };
const running: ExperimentStatus = {
  phase: 'Running',
  reason: 'Training',
  run: 1,
  attempt: 1,
  failedAttempts: 0,
  startedAt: iso(-600),
  attemptStartedAt: iso(-600),
  latestCheckpoint: { step: 400, location: 'ns/low/400' },
  progress: { step: 430, maxSteps: 1000 },
};
const deletes = (actions: Action[]) => actions.flatMap((a) => (a.type === 'deleteWorkers' ? [a] : []));
const events = (actions: Action[]) => actions.flatMap((a) => (a.type === 'event' ? [a.reason] : []));

test('a preempted Running attempt is stopped through the Stop path with the checkpoint deadline', () => {
  const d = decide(observe(exp(running), { workers: [worker(0, 'Running')], preemption: byHigh }));
  assert.equal(d.status.phase, 'Stopping');
  assert.equal(d.status.reason, 'Preempted');
  assert.match(d.status.message!, /Preempted by ns\/high \(priority 100\).*20s to write a checkpoint/);
  assert.deepEqual(deletes(d.actions), [], 'the workers are told once the stop is stored');
  assert.equal(d.status.lastInterruption?.reason, 'Preempted');
  assert.equal(d.status.lastInterruption?.preemptedBy, 'ns/high');
  assert.deepEqual(events(d.actions), ['Preempted']);
  // The next step deletes them with the deadline, not the experiment's own 120 s.
  const next = decide(observe(exp(d.status), { workers: [worker(0, 'Running')], preemption: byHigh }));
  assert.deepEqual(deletes(next.actions), [{ type: 'deleteWorkers', which: 'all', gracePeriodSeconds: 20 }]);
});

test('while the victim\'s workers exit, the message still names the preemptor', () => {
  const first = decide(observe(exp(running), { workers: [worker(0, 'Running')], preemption: byHigh }));
  const d = decide(observe(exp(first.status), { workers: [worker(0, 'Running', { deleting: true })], preemption: byHigh }));
  assert.equal(d.status.phase, 'Stopping');
  assert.match(d.status.message!, /^Preempted by ns\/high \(priority 100\).*Waiting for 1 worker\(s\)/);
});

test('a choice made for an earlier attempt does not preempt the current one', () => {
  const d = decide(observe(exp({ ...running, attempt: 2 }), { workers: [worker(0, 'Running', { attemptId: '1-2' })], preemption: byHigh }));
  assert.equal(d.status.phase, 'Running');
});

test('once its workers are gone the victim is Pending/Preempted as a new attempt, naming the preemptor and what it keeps', () => {
  const stopping: ExperimentStatus = {
    ...running,
    phase: 'Stopping',
    reason: 'Preempted',
    stopRequestedAt: iso(-10),
    latestCheckpoint: { step: 440, location: 'ns/low/440' },
    progress: { step: 445, maxSteps: 1000 },
    lastInterruption: { reason: 'Preempted', message: 'Preempted by ns/high (priority 100), which needs this run\'s capacity.', at: iso(-10), run: 1, preemptedBy: 'ns/high' },
  };
  const d = decide(
    observe(exp(stopping), {
      workers: [worker(0, 'Succeeded', { exitCode: 0 })],
      reports: { completed: false, finalCheckpointAfterStop: true },
      admission: { state: 'waiting', reason: 'InsufficientCapacity', message: 'Waiting for capacity.', position: 1 },
    }),
  );
  assert.equal(d.status.phase, 'Pending');
  assert.equal(d.status.reason, 'Preempted');
  assert.match(d.status.message!, /Preempted by ns\/high.*resumes from its checkpoint at step 440/);
  assert.equal(d.status.attempt, 2);
  assert.equal(d.status.failedAttempts, 0, 'a preemption is not a failed attempt');
  assert.equal(d.status.lastInterruption?.checkpointStep, 440);
  assert.equal(d.status.lastInterruption?.stepAtStop, 445);
  assert.equal(d.status.lastInterruption?.lostSteps, 5);
  assert.equal(d.status.stopRequestedAt, undefined);
  assert.ok(d.status.usage && d.status.usage.nodeSeconds > 0, 'the attempt\'s usage is counted');
  assert.ok(events(d.actions).includes('Requeued'));
});

test('while it waits, the reason stays Preempted and the scheduler\'s words and estimate follow', () => {
  const waiting: ExperimentStatus = {
    phase: 'Pending',
    reason: 'Preempted',
    run: 1,
    attempt: 2,
    failedAttempts: 0,
    latestCheckpoint: { step: 440, location: 'ns/low/440' },
    lastInterruption: { reason: 'Preempted', message: 'Preempted by ns/high (priority 100).', at: iso(-10), run: 1, preemptedBy: 'ns/high', checkpointStep: 440 },
  };
  const d = decide(
    observe(exp(waiting), {
      admission: { state: 'waiting', reason: 'WaitingBehind', message: 'Waiting behind 1 experiment.', position: 2, estimate: { at: iso(300), reasoning: 'Estimated start in 5m.' } },
    }),
  );
  assert.equal(d.status.reason, 'Preempted');
  assert.match(d.status.message!, /Preempted by ns\/high.*step 440.*Waiting behind 1 experiment\. Estimated start in 5m\./);
  assert.equal(d.status.estimatedStartTime, iso(300));
  assert.equal(d.status.queuePosition, 2);

  const admitted = decide(observe(exp(d.status), { admission: { state: 'admitted', nodes: ['n1'] } }));
  assert.equal(admitted.status.lastInterruption?.resumedAt, now.toISOString());
  assert.equal(admitted.status.estimatedStartTime, undefined, 'the estimate goes once admitted');
  assert.ok(events(admitted.actions).includes('ResumedAfterPreemption'));
  assert.deepEqual(
    admitted.actions.filter((a) => a.type === 'createWorkers'),
    [{ type: 'createWorkers', run: 1, attempt: 2, nodes: ['n1'] }],
  );
});

test('after a preemption, a failure still gets every retry', () => {
  // maxRetries 1: attempt 2 (begun by a preemption) fails; with failedAttempts 0 it is retried, not failed.
  const resumed: ExperimentStatus = { ...running, attempt: 2, failedAttempts: 0 };
  const d = decide(observe(exp(resumed), { workers: [worker(0, 'Failed', { attemptId: '1-2', exitCode: 1 })] }));
  assert.equal(d.status.phase, 'Pending');
  assert.equal(d.status.reason, 'RetryBackoff');
  assert.equal(d.status.failedAttempts, 1);
  assert.equal(d.status.attempt, 3);
  // The second failure spends the last retry.
  const again = decide(observe(exp({ ...d.status, phase: 'Running', attemptStartedAt: iso(-60) }), { workers: [worker(0, 'Failed', { attemptId: '1-3', exitCode: 1 })] }));
  assert.equal(again.status.phase, 'Failed');
});

test('a credits stop and top-up do not spend a retry either', () => {
  const stopped: ExperimentStatus = { ...running, phase: 'Stopped', reason: 'CreditsExhausted', finishedAt: iso(-5) };
  const d = decide(observe(exp(stopped), { credits: { exhausted: false, policy: 'Stop', balance: 10, message: '' } }));
  assert.equal(d.status.phase, 'Pending');
  assert.equal(d.status.attempt, 2);
  assert.equal(d.status.failedAttempts, 0);
});

test('status from before failedAttempts: earlier attempts count as failed, as they did', () => {
  const old: ExperimentStatus = { ...running, attempt: 2 };
  delete old.failedAttempts;
  const d = decide(observe(exp(old), { workers: [worker(0, 'Failed', { attemptId: '1-2', exitCode: 1 })] }));
  assert.equal(d.status.phase, 'Failed');
});

test('the priority: spec.priority, or a PriorityClass value clamped to its range; a missing class gives none', () => {
  const withSpec = (spec: Partial<Experiment['spec']>) => ({ ...exp({}), spec: { ...exp({}).spec, ...spec } }) as Experiment;
  const classes: Record<string, number> = { high: 1_000_000, low: -5, mid: 42 };
  const value = (name: string) => classes[name];
  assert.equal(experimentPriority(withSpec({}), value), 0);
  assert.equal(experimentPriority(withSpec({ priority: 7 }), value), 7);
  assert.equal(experimentPriority(withSpec({ priorityClassName: 'mid' }), value), 42);
  assert.equal(experimentPriority(withSpec({ priorityClassName: 'high' }), value), 1000);
  assert.equal(experimentPriority(withSpec({ priorityClassName: 'low' }), value), -5);
  assert.equal(experimentPriority(withSpec({ priorityClassName: 'gone' }), value), undefined);
});
