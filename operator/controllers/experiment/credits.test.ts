// The experiment lifecycle when its cluster's credits run out and are topped up (lifecycle.ts, credits rule).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, type Action, type Observed } from './lifecycle.ts';
import type { ExperimentStatus } from '../../api/v1alpha1/experiment.ts';
import { exp, iso, now, observe, types, worker } from './lifecycle-testing.ts';
import type { CreditsVerdict } from '../trainingcluster/credits.ts';

const zero = (policy: CreditsVerdict['policy'] = 'Stop'): CreditsVerdict => ({ exhausted: true, policy, balance: 0, message: 'The credit balance of TrainingCluster onprem is 0.' });
const left: CreditsVerdict = { exhausted: false, policy: 'Stop', balance: 50, message: '' };

const events = (actions: Action[]) => actions.flatMap((a) => (a.type === 'event' ? [a.reason] : []));
const running: ExperimentStatus = { phase: 'Running', reason: 'Training', run: 1, attempt: 1, startedAt: iso(-600), attemptStartedAt: iso(-600), latestCheckpoint: { step: 400, location: 'ns/e/400' } };
const both = [worker(0, 'Running'), worker(1, 'Running')];

describe('credits in the experiment lifecycle', () => {
  const cases: { name: string; o: Observed; phase: string; reason: string; actions: string[]; events?: string[] }[] = [
    {
      name: 'a new run at zero waits in Pending with reason CreditsExhausted, out of the queue',
      o: observe(exp('Train', { phase: 'Draft' }), { credits: zero() }),
      phase: 'Pending',
      reason: 'CreditsExhausted',
      actions: ['dequeue'],
      events: ['Queued', 'CreditsExhausted'],
    },
    {
      name: 'a run that still waits for credits says so once, with no new event',
      o: observe(exp('Train', { phase: 'Pending', reason: 'CreditsExhausted', run: 1, attempt: 1 }), { credits: zero() }),
      phase: 'Pending',
      reason: 'CreditsExhausted',
      actions: ['dequeue'],
      events: [],
    },
    {
      name: 'credits back: a waiting run is queued again',
      o: observe(exp('Train', { phase: 'Pending', reason: 'CreditsExhausted', run: 1, attempt: 1 }), { credits: left }),
      phase: 'Pending',
      reason: 'Queued',
      actions: ['queue'],
    },
    {
      name: 'a Running run at zero is stopped through the Stop path: recorded first, the workers told on the next step',
      o: observe(exp('Train', running), { credits: zero(), workers: both }),
      phase: 'Stopping',
      reason: 'CreditsExhausted',
      actions: [],
      events: ['CreditsExhausted'],
    },
    {
      name: 'with exhaustedPolicy Finish a Running run goes on',
      o: observe(exp('Train', running), { credits: zero('Finish'), workers: both }),
      phase: 'Running',
      reason: 'Training',
      actions: [],
    },
    {
      name: 'with Finish the retry of a started run goes on too',
      o: observe(exp('Train', { ...running, phase: 'Pending', reason: 'RetryBackoff', attempt: 2, retryAt: iso(-1), attemptStartedAt: undefined }), { credits: zero('Finish') }),
      phase: 'Pending',
      reason: 'Queued',
      actions: ['queue'],
    },
    {
      name: 'with Finish a new run still waits',
      o: observe(exp('Train', { phase: 'Draft' }), { credits: zero('Finish') }),
      phase: 'Pending',
      reason: 'CreditsExhausted',
      actions: ['dequeue'],
    },
    {
      name: 'an admitted gang still starting at zero is taken down and waits',
      o: observe(exp('Train', { phase: 'Pending', reason: 'Starting', run: 1, attempt: 1, admittedAt: iso(-5) }), { credits: zero(), workers: [worker(0, 'Pending'), worker(1, 'Running')] }),
      phase: 'Pending',
      reason: 'CreditsExhausted',
      actions: ['dequeue', 'deleteWorkers'],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = decide(c.o);
      assert.equal(d.status.phase, c.phase);
      assert.equal(d.status.reason, c.reason);
      assert.deepEqual(types(d.actions), c.actions);
      if (c.events) assert.deepEqual(events(d.actions), c.events);
    });
  }

  test('the stop for credits records the interruption and its message names the balance', () => {
    const d = decide(observe(exp('Train', running), { credits: zero(), workers: both }));
    assert.equal(d.status.lastInterruption?.reason, 'CreditsExhausted');
    assert.equal(d.status.lastInterruption?.at, now.toISOString());
    assert.equal(d.status.stopRequestedAt, now.toISOString());
    assert.match(d.status.message!, /balance of TrainingCluster onprem is 0\. Workers have 30s to write a final checkpoint/);
    const next = decide(observe(exp('Train', d.status), { credits: zero(), workers: both }));
    const del = next.actions.find((a) => a.type === 'deleteWorkers');
    assert.deepEqual(del, { type: 'deleteWorkers', which: 'all', gracePeriodSeconds: 30 });
    assert.equal(next.status.reason, 'CreditsExhausted');
  });

  const stopping: ExperimentStatus = {
    ...running,
    phase: 'Stopping',
    reason: 'CreditsExhausted',
    stopRequestedAt: iso(-10),
    latestCheckpoint: { step: 450, location: 'ns/e/450' },
    lastInterruption: { reason: 'CreditsExhausted', message: 'zero', at: iso(-10), run: 1 },
  };

  test('workers still writing their final checkpoint keep it Stopping with reason CreditsExhausted', () => {
    const d = decide(observe(exp('Train', stopping), { credits: zero(), workers: both }));
    assert.equal(d.status.phase, 'Stopping');
    assert.equal(d.status.reason, 'CreditsExhausted');
  });

  test('the workers gone after a final checkpoint: Stopped with reason CreditsExhausted, the checkpoint recorded, usage folded in', () => {
    const d = decide(observe(exp('Train', stopping), { credits: zero(), reports: { completed: false, finalCheckpointAfterStop: true } }));
    assert.equal(d.status.phase, 'Stopped');
    assert.equal(d.status.reason, 'CreditsExhausted');
    assert.match(d.status.message!, /after a final checkpoint at step 450.*resumes by itself after a top-up/);
    assert.equal(d.status.lastInterruption?.checkpointStep, 450);
    assert.equal(d.status.attemptStartedAt, undefined);
    assert.equal(d.status.usage?.nodeSeconds, 1200);
  });

  test('no final checkpoint: the operator\'s own stop does not fail the run, it goes on from the latest one', () => {
    const d = decide(observe(exp('Train', stopping), { credits: zero(), workers: [worker(0, 'Failed', { exitCode: 137 }), worker(1, 'Failed', { exitCode: 137 })] }));
    assert.equal(d.status.phase, 'Stopped');
    assert.equal(d.status.reason, 'CreditsExhausted');
    assert.match(d.status.message!, /without a final checkpoint; it goes on from the latest one, step 450/);
  });

  const stopped: ExperimentStatus = { ...stopping, phase: 'Stopped', finishedAt: iso(-5), attemptStartedAt: undefined, stopRequestedAt: undefined, lastInterruption: { ...stopping.lastInterruption!, checkpointStep: 450 } };

  test('Stopped for credits with action Train stays Stopped while the balance is zero', () => {
    const d = decide(observe(exp('Train', stopped), { credits: zero() }));
    assert.equal(d.status.phase, 'Stopped');
    assert.equal(d.status.reason, 'CreditsExhausted');
    assert.deepEqual(types(d.actions), []);
    assert.match(d.status.conditions!.find((c) => c.type === 'Progressing')!.message, /resumes from its final checkpoint by itself/);
  });

  test('after a top-up it is queued again by itself to continue from that checkpoint, and says so', () => {
    const d = decide(observe(exp('Train', stopped), { credits: left }));
    assert.equal(d.status.phase, 'Pending');
    assert.equal(d.status.attempt, 2);
    assert.deepEqual(types(d.actions), ['queue']);
    assert.deepEqual(events(d.actions), ['ResumedAfterTopUp']);
    // The scheduler's verdict takes the message over at once; the event and status.lastInterruption keep the resume.
    const note = d.actions.find((a) => a.type === 'event' && a.reason === 'ResumedAfterTopUp');
    assert.match(note?.type === 'event' ? note.note : '', /Credits are available again: run 1 is queued to continue from the checkpoint at step 450/);
    assert.equal(d.status.lastInterruption?.resumedAt, now.toISOString());
    assert.equal(d.status.latestCheckpoint?.step, 450, 'the checkpoint the workers will resume from');
  });

  test('credits not enforced (no verdict): a user\'s Stopped run is untouched by any of this', () => {
    const d = decide(observe(exp('Stop', { ...stopped, reason: 'StoppedByUser' })));
    assert.equal(d.status.phase, 'Stopped');
    assert.equal(d.status.reason, 'StoppedByUser');
  });
});

describe('a spent budget in the experiment lifecycle: the credits rule, with reason BudgetExhausted', () => {
  const spent: CreditsVerdict = { exhausted: true, policy: 'Stop', balance: 0, reason: 'BudgetExhausted', message: 'Budget vision of TrainingCluster onprem is spent for 2026-03.' };

  test('a new run waits Pending/BudgetExhausted, naming the budget', () => {
    const d = decide(observe(exp('Train', { phase: 'Draft' }), { credits: spent }));
    assert.equal(d.status.phase, 'Pending');
    assert.equal(d.status.reason, 'BudgetExhausted');
    assert.match(d.status.message!, /^Budget vision/);
    assert.deepEqual(events(d.actions), ['Queued', 'BudgetExhausted']);
  });

  test('a Running run stops with the grace period, then ends Stopped/BudgetExhausted after its final checkpoint', () => {
    const d = decide(observe(exp('Train', running), { credits: spent, workers: both }));
    assert.equal(d.status.phase, 'Stopping');
    assert.equal(d.status.reason, 'BudgetExhausted');
    assert.equal(d.status.lastInterruption?.reason, 'BudgetExhausted');
    const stoppingNow = { ...d.status, latestCheckpoint: { step: 450, location: 'ns/e/450' } };
    const still = decide(observe(exp('Train', stoppingNow), { credits: spent, workers: both }));
    assert.equal(still.status.reason, 'BudgetExhausted', 'while the workers write their checkpoint');
    const done = decide(observe(exp('Train', stoppingNow), { credits: spent, reports: { completed: false, finalCheckpointAfterStop: true } }));
    assert.equal(done.status.phase, 'Stopped');
    assert.equal(done.status.reason, 'BudgetExhausted');
    assert.match(done.status.message!, /after a final checkpoint at step 450: its namespace's budget is spent\. It resumes by itself when the budget is raised or its next period begins\./);

    // Held while spent; once the budget allows it (raised, or a new month), it continues from that checkpoint.
    assert.equal(decide(observe(exp('Train', done.status), { credits: spent })).status.phase, 'Stopped');
    const resumed = decide(observe(exp('Train', done.status)));
    assert.equal(resumed.status.phase, 'Pending');
    assert.equal(resumed.status.attempt, 2);
    const note = resumed.actions.find((a) => a.type === 'event' && a.reason === 'ResumedAfterTopUp');
    assert.match(note?.type === 'event' ? note.note : '', /^Its budget allows training again: run 1 is queued to continue from the checkpoint at step 450/);
  });
});
