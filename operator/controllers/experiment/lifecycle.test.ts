import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, retryBackoffMs, type Observed } from './lifecycle.ts';
import { USAGE_DAYS_KEPT, type ExperimentStatus } from '../../api/v1alpha1/experiment.ts';
import { exp, iso, now, observe, types, worker } from './lifecycle-testing.ts';


test('a gang that finished unseen is metered from its admission', () => {
  const d = decide(observe(exp('Train', { phase: 'Pending', run: 1, attempt: 1, admittedAt: iso(-600) }), { workers: [worker(0, 'Succeeded'), worker(1, 'Succeeded')] }));
  assert.equal(d.status.phase, 'Succeeded');
  assert.equal(d.status.startedAt, iso(-600));
  assert.ok((d.status.usage?.gpuSeconds ?? 0) > 0, `usage: ${JSON.stringify(d.status.usage)}`);
});

test('completing a half-created gang names the missing ranks and keeps the attempt', () => {
  const d = decide(observe(exp('Train', { phase: 'Pending', run: 1, attempt: 1, admittedAt: iso(-5) }), { gangSize: 3, workers: [worker(1, 'Pending', { gangNodes: ['a', 'b', 'c'] })] }));
  assert.deepEqual(d.actions.find((a) => a.type === 'createWorkers'), { type: 'createWorkers', run: 1, attempt: 1, nodes: ['a', 'b', 'c'] });
  assert.match(JSON.stringify(d.actions.filter((a) => a.type === 'event')), /GangCompleted.*worker\(s\) 0, 2 of a gang/);
  assert.equal(d.status.attempt, 1);
  assert.equal(d.status.lastFailure, undefined);
});

describe('experiment lifecycle', () => {
  const cases: { name: string; o: Observed; phase: string; reason: string; actions?: string[] }[] = [
    { name: 'a new experiment is a Draft', o: observe(exp('Draft')), phase: 'Draft', reason: 'Created', actions: [] },
    { name: 'Train from Draft queues it', o: observe(exp('Train', { phase: 'Draft' })), phase: 'Pending', reason: 'Queued', actions: ['queue'] },
    {
      name: 'Pending says why it waits',
      o: observe(exp('Train', { phase: 'Pending', run: 1, attempt: 1 }), {
        admission: { state: 'waiting', reason: 'WaitingBehind', message: '2 experiments are ahead', position: 3 },
      }),
      phase: 'Pending',
      reason: 'WaitingBehind',
      actions: ['queue'],
    },
    {
      name: 'a blocker keeps it Pending with the reason and takes it out of the queue',
      o: observe(exp('Train', { phase: 'Pending', run: 1, attempt: 1 }), { blocker: { reason: 'ClassDisabled', message: 'enable it' } }),
      phase: 'Pending',
      reason: 'ClassDisabled',
      actions: ['dequeue'],
    },
    {
      name: 'admission creates the workers on the planned nodes',
      o: observe(exp('Train', { phase: 'Pending', run: 1, attempt: 1 }), { admission: { state: 'admitted', nodes: ['n1', 'n2'] } }),
      phase: 'Pending',
      reason: 'Starting',
      actions: ['createWorkers'],
    },
    {
      name: 'every worker running makes it Running',
      o: observe(exp('Train', { phase: 'Pending', run: 1, attempt: 1, admittedAt: iso(-5) }), { workers: [worker(0, 'Running'), worker(1, 'Running')] }),
      phase: 'Running',
      reason: 'Training',
      actions: ['dequeue'],
    },
    {
      name: 'workers that finished before they were ever seen Running end it Succeeded, not stuck Pending',
      o: observe(exp('Train', { phase: 'Pending', run: 1, attempt: 1, admittedAt: iso(-5) }), { workers: [worker(0, 'Succeeded'), worker(1, 'Succeeded')] }),
      phase: 'Succeeded',
      reason: 'TrainingComplete',
    },
    {
      name: 'one worker finished and one running, none seen Running before, makes it Running',
      o: observe(exp('Train', { phase: 'Pending', run: 1, attempt: 1, admittedAt: iso(-5) }), { workers: [worker(0, 'Succeeded'), worker(1, 'Running')] }),
      phase: 'Running',
      reason: 'Training',
      actions: ['dequeue'],
    },
    {
      name: 'a reported completion while the workers still look Pending waits for them to start',
      o: observe(exp('Train', { phase: 'Pending', run: 1, attempt: 1, admittedAt: iso(-5) }), {
        workers: [worker(0, 'Pending'), worker(1, 'Pending')],
        reports: { completed: true, finalCheckpointAfterStop: false },
      }),
      phase: 'Pending',
      reason: 'Starting',
    },
    {
      name: 'a partial gang past its timeout is released and retried',
      o: observe(exp('Train', { phase: 'Pending', run: 1, attempt: 1, admittedAt: iso(-301) }), { workers: [worker(0, 'Running'), worker(1, 'Pending')] }),
      phase: 'Pending',
      reason: 'RetryBackoff',
      actions: ['dequeue', 'deleteWorkers'],
    },
    {
      name: 'a gang a previous operator left half-created gets its missing ranks, on the planned nodes, with no failure',
      o: observe(exp('Train', { phase: 'Pending', run: 1, attempt: 1, admittedAt: iso(-5) }), { workers: [worker(0, 'Running', { gangNodes: ['n1', 'n2'] })] }),
      phase: 'Pending',
      reason: 'Starting',
      actions: ['dequeue', 'createWorkers'],
    },
    {
      name: 'half a gang whose pods carry no plan (made before plans were recorded) waits for the partial-gang timeout',
      o: observe(exp('Train', { phase: 'Pending', run: 1, attempt: 1, admittedAt: iso(-5) }), { workers: [worker(0, 'Running')] }),
      phase: 'Pending',
      reason: 'Starting',
      actions: ['dequeue'],
    },
    {
      name: 'all workers succeeded makes it Succeeded',
      o: observe(exp('Train', { phase: 'Running', run: 1, attempt: 1, attemptStartedAt: iso(-3600) }), { workers: [worker(0, 'Succeeded'), worker(1, 'Succeeded')] }),
      phase: 'Succeeded',
      reason: 'TrainingComplete',
      actions: ['dequeue'],
    },
    {
      name: 'a failed worker tears the gang down and retries',
      o: observe(exp('Train', { phase: 'Running', run: 1, attempt: 1 }), { workers: [worker(0, 'Running'), worker(1, 'Failed', { exitCode: 137 })] }),
      phase: 'Pending',
      reason: 'RetryBackoff',
      actions: ['deleteWorkers'],
    },
    {
      name: 'a lost node tears the gang down and retries',
      o: observe(exp('Train', { phase: 'Running', run: 1, attempt: 2 }), {
        workers: [worker(0, 'Running', { attemptId: '1-2', nodeLost: true, nodeName: 'n1' }), worker(1, 'Running', { attemptId: '1-2' })],
      }),
      phase: 'Pending',
      reason: 'RetryBackoff',
      actions: ['deleteWorkers'],
    },
    {
      name: 'retries exhausted make it Failed with the reason',
      o: observe(exp('Train', { phase: 'Running', run: 1, attempt: 3 }), {
        workers: [worker(0, 'Failed', { attemptId: '1-3' }), worker(1, 'Running', { attemptId: '1-3' })],
      }),
      phase: 'Failed',
      reason: 'WorkerFailed',
      actions: ['deleteWorkers', 'dequeue'],
    },
    {
      name: 'a non-retryable failure report fails at once',
      o: observe(exp('Train', { phase: 'Running', run: 1, attempt: 1 }), {
        workers: [worker(0, 'Running'), worker(1, 'Running')],
        reports: { completed: false, finalCheckpointAfterStop: false, failed: { reason: 'FlashAttentionUnsupported', message: 'm', hint: 'h', retryable: false } },
      }),
      phase: 'Failed',
      reason: 'FlashAttentionUnsupported',
      actions: ['deleteWorkers', 'dequeue'],
    },
    { name: 'Stop while Pending cancels at once', o: observe(exp('Stop', { phase: 'Pending', run: 1, attempt: 1 })), phase: 'Stopped', reason: 'StoppedByUser', actions: ['dequeue', 'dequeue'] },
    {
      name: 'Stop while Running goes Stopping and records the request; the workers are told once it is stored',
      o: observe(exp('Stop', { phase: 'Running', run: 1, attempt: 1 }), { workers: [worker(0, 'Running'), worker(1, 'Running')] }),
      phase: 'Stopping',
      reason: 'StopRequested',
      actions: [],
    },
    {
      name: 'Stopping ends Stopped after a final checkpoint',
      o: observe(exp('Stop', { phase: 'Stopping', run: 1, attempt: 1, attemptStartedAt: iso(-60), stopRequestedAt: iso(-5) }), {
        reports: { completed: false, finalCheckpointAfterStop: true },
      }),
      phase: 'Stopped',
      reason: 'StoppedByUser',
      actions: ['dequeue'],
    },
    {
      name: 'Stopping ends Stopped, not Failed, when workers were killed without a final checkpoint',
      o: observe(exp('Stop', { phase: 'Stopping', run: 1, attempt: 1, attemptStartedAt: iso(-60), stopRequestedAt: iso(-5) })),
      phase: 'Stopped',
      reason: 'StoppedByUser',
      actions: ['dequeue'],
    },
    {
      name: 'Stopping waits while workers are still terminating',
      o: observe(exp('Stop', { phase: 'Stopping', run: 1, attempt: 1, stopRequestedAt: iso(-5) }), { workers: [worker(0, 'Running', { deleting: true })] }),
      phase: 'Stopping',
      reason: 'StopRequested',
      actions: ['deleteWorkers'],
    },
    ...(['Draft', 'Stopped', 'Succeeded', 'Failed'] as const).map((phase) => ({
      name: `Stop in ${phase} changes nothing`,
      o: observe(exp('Stop', { phase, reason: 'Before', run: 1, attempt: 1 })),
      phase,
      reason: 'Before',
      actions: [] as string[],
    })),
    {
      name: 'Train on Succeeded with the same run does nothing new',
      o: observe(exp('Train', { phase: 'Succeeded', reason: 'TrainingComplete', run: 1, attempt: 1 })),
      phase: 'Succeeded',
      reason: 'TrainingComplete',
      actions: [],
    },
    {
      name: 'Train on Succeeded with a raised run starts a new run',
      o: observe(exp('Train', { phase: 'Succeeded', run: 1, attempt: 1 }, 2)),
      phase: 'Pending',
      reason: 'Queued',
      actions: ['queue'],
    },
    {
      name: 'Train on Failed with a raised run retries',
      o: observe(exp('Train', { phase: 'Failed', run: 1, attempt: 4 }, 2)),
      phase: 'Pending',
      reason: 'Queued',
      actions: ['queue'],
    },
    {
      name: 'Train on Stopped continues the run',
      o: observe(exp('Train', { phase: 'Stopped', run: 1, attempt: 1 })),
      phase: 'Pending',
      reason: 'Queued',
      actions: ['queue'],
    },
    {
      name: 'the previous attempt is cleaned up before admission',
      o: observe(exp('Train', { phase: 'Pending', run: 1, attempt: 2 }), { workers: [worker(0, 'Failed')] }),
      phase: 'Pending',
      reason: 'CleaningUp',
      actions: ['deleteWorkers'],
    },
    {
      name: 'stale workers stuck on a lost node do not hold up the retry',
      o: observe(exp('Train', { phase: 'Pending', run: 1, attempt: 2 }), {
        workers: [worker(0, 'Running', { nodeLost: true, nodeName: 'gone' })],
        admission: { state: 'admitted', nodes: ['n2', 'n3'] },
      }),
      phase: 'Pending',
      reason: 'Starting',
      actions: ['deleteWorkers', 'createWorkers'],
    },
    {
      name: 'retry backoff holds admission',
      o: observe(exp('Train', { phase: 'Pending', run: 1, attempt: 2, retryAt: iso(20) })),
      phase: 'Pending',
      reason: 'RetryBackoff',
      actions: [],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = decide(c.o);
      assert.equal(d.status.phase, c.phase);
      assert.equal(d.status.reason, c.reason);
      if (c.actions) assert.deepEqual(types(d.actions), c.actions);
      assert.equal(d.status.observedGeneration, 3);
    });
  }

  test('a retry bumps the attempt and schedules it with backoff', () => {
    const d = decide(observe(exp('Train', { phase: 'Running', run: 1, attempt: 1 }), { workers: [worker(0, 'Failed'), worker(1, 'Running')] }));
    assert.equal(d.status.attempt, 2);
    assert.equal(d.status.retryAt, iso(10));
    assert.equal(d.requeueAfterMs, 10_000);
    assert.equal(d.status.lastFailure?.reason, 'WorkerFailed');
    assert.equal(d.status.lastFailure?.attempt, 1);
  });

  test('backoff doubles and is capped', () => {
    assert.deepEqual([1, 2, 3, 4, 10].map(retryBackoffMs), [10_000, 20_000, 40_000, 80_000, 300_000]);
  });

  test('usage is metered when an attempt ends: node-seconds, GPU-seconds and credits', () => {
    const d = decide(
      observe(exp('Train', { phase: 'Running', run: 1, attempt: 1, attemptStartedAt: iso(-1800), usage: { nodeSeconds: 100, gpuSeconds: 400, credits: 1 } }), {
        workers: [worker(0, 'Succeeded'), worker(1, 'Succeeded')],
      }),
    );
    // 1800 s × 2 workers = 3600 node-seconds = 1 node-hour at 10 credits; 4 GPUs per worker.
    // The days list only what it can place: the earlier 100 node-seconds were recorded without a date.
    assert.deepEqual(d.status.usage, {
      nodeSeconds: 3700,
      gpuSeconds: 14_800,
      credits: 11,
      days: [{ date: '2026-11-23', nodeSeconds: 3600, gpuSeconds: 14_400, credits: 10 }],
    });
    assert.equal(d.status.attemptStartedAt, undefined);
  });

  test('an attempt across UTC midnight is split between the days it ran on, added to days already there', () => {
    const earlier = { date: '2026-11-22', nodeSeconds: 1000, gpuSeconds: 4000, credits: 2.777778 };
    const d = decide(
      observe(
        exp('Train', {
          phase: 'Running',
          run: 1,
          attempt: 2,
          attemptStartedAt: '2026-11-22T23:00:00Z',
          usage: { nodeSeconds: 1000, gpuSeconds: 4000, credits: 2.777778, days: [earlier] },
        }),
        { workers: [worker(0, 'Succeeded'), worker(1, 'Succeeded')] },
      ),
    );
    // 23:00 to 10:00 on 2 workers: 7,200 node-seconds on the 22nd and 72,000 on the 23rd.
    assert.deepEqual(d.status.usage?.days, [
      { date: '2026-11-22', nodeSeconds: 8200, gpuSeconds: 32_800, credits: 22.777778 },
      { date: '2026-11-23', nodeSeconds: 72_000, gpuSeconds: 288_000, credits: 200 },
    ]);
    assert.equal(d.status.usage?.nodeSeconds, 80_200);
  });

  test(`only the newest ${USAGE_DAYS_KEPT} days are kept; the totals keep everything`, () => {
    const day = (i: number) => ({ date: new Date(Date.UTC(2026, 0, 1) + i * 86_400_000).toISOString().slice(0, 10), nodeSeconds: 10, gpuSeconds: 40, credits: 0.1 });
    const days = Array.from({ length: USAGE_DAYS_KEPT }, (_, i) => day(i));
    const d = decide(
      observe(exp('Train', { phase: 'Running', run: 1, attempt: 1, attemptStartedAt: iso(-1800), usage: { nodeSeconds: 10 * USAGE_DAYS_KEPT, gpuSeconds: 40 * USAGE_DAYS_KEPT, credits: 12, days } }), {
        workers: [worker(0, 'Succeeded'), worker(1, 'Succeeded')],
      }),
    );
    const kept = d.status.usage!.days!;
    assert.equal(kept.length, USAGE_DAYS_KEPT);
    assert.deepEqual([kept[0]!.date, kept.at(-1)!.date], [day(1).date, '2026-11-23']);
    assert.equal(d.status.usage!.nodeSeconds, 10 * USAGE_DAYS_KEPT + 3600);
  });

  test('Stop outside Pending/Running/Stopping explains itself in a condition', () => {
    const d = decide(observe(exp('Stop', { phase: 'Succeeded', run: 1, attempt: 1 })));
    const c = d.status.conditions?.find((x) => x.type === 'Progressing');
    assert.equal(c?.reason, 'StopIgnored');
    assert.match(c?.message ?? '', /only Pending, Running or Stopping/);
  });

  test('an invalid manifest marks Valid False', () => {
    const d = decide(observe(exp('Train', { phase: 'Draft' }), { blocker: { reason: 'InvalidManifest', message: 'spec.manifest.training.max_steps: must be >= 1' } }));
    assert.equal(d.status.phase, 'Pending');
    assert.equal(d.status.reason, 'InvalidManifest');
    assert.equal(d.status.conditions?.find((c) => c.type === 'Valid')?.status, 'False');
  });

  test('deciding twice on the same observation gives the same status (level-based)', () => {
    const o = observe(exp('Train', { phase: 'Pending', run: 1, attempt: 1 }), {
      admission: { state: 'waiting', reason: 'InsufficientCapacity', message: '1 of 2 nodes fit', position: 1 },
    });
    const first = decide(o);
    const second = decide({ ...o, experiment: { ...o.experiment, status: first.status } });
    assert.deepEqual(second.status, first.status);
  });

  test('a run queued and admitted in one step says so in one event', () => {
    const d = decide(observe(exp('Train', { phase: 'Draft' }), { admission: { state: 'admitted', nodes: ['n1', 'n2'] } }));
    assert.equal(d.status.reason, 'Starting');
    const events = d.actions.flatMap((a) => (a.type === 'event' ? [a] : []));
    assert.deepEqual(events.map((e) => e.reason), ['Admitted']);
    assert.match(events[0]!.note, /Run 1 queued and admitted on n1, n2/);
  });

  test('the admitted status is what the appearing, not yet running pods give: their arrival writes nothing', () => {
    const admitted = decide(observe(exp('Train', { phase: 'Draft' }), { admission: { state: 'admitted', nodes: ['n1', 'n2'] } }));
    const podsSeen = decide(
      observe({ ...exp('Train'), status: admitted.status }, { now: new Date(now.getTime() + 2000), workers: [worker(0, 'Pending'), worker(1, 'Pending')] }),
    );
    assert.deepEqual(podsSeen.status, admitted.status);
    assert.deepEqual(types(podsSeen.actions), ['dequeue']);
  });

  test('the status that makes it Running is the one the next look at a running gang gives', () => {
    const running = decide(observe(exp('Train', { phase: 'Pending', run: 1, attempt: 1, admittedAt: iso(-5) }), { workers: [worker(0, 'Running'), worker(1, 'Running')] }));
    assert.equal(running.status.phase, 'Running');
    const later = decide(observe({ ...exp('Train'), status: running.status }, { now: new Date(now.getTime() + 5000), workers: [worker(0, 'Running'), worker(1, 'Running')] }));
    assert.deepEqual(later.status, running.status);
  });
});

test('a stop is stored before the workers are told, so no final checkpoint can predate stopRequestedAt', () => {
  const running = exp('Stop', { phase: 'Running', run: 1, attempt: 1, attemptStartedAt: iso(-60) });
  const workers = [worker(0, 'Running'), worker(1, 'Running')];
  const first = decide(observe(running, { workers }));
  assert.equal(first.status.phase, 'Stopping');
  assert.equal(first.status.stopRequestedAt, now.toISOString());
  assert.deepEqual(types(first.actions), [], 'nobody is told to stop before stopRequestedAt is stored: that write may fail and land later');
  // The write landed: the stored status holds the request, and now the workers get their grace period.
  const later = new Date(now.getTime() + 1000);
  const second = decide({ ...observe(exp('Stop', first.status), { workers }), now: later });
  assert.deepEqual(second.actions.filter((a) => a.type === 'deleteWorkers'), [{ type: 'deleteWorkers', which: 'all', gracePeriodSeconds: 30 }]);
  assert.equal(second.status.stopRequestedAt, first.status.stopRequestedAt, 'the stored moment is kept');
  // The write that carried the first decision failed instead: the next try stamps its own moment, and still has
  // told nobody, so whatever final checkpoint comes is written after the stamp that gets stored.
  const retried = decide({ ...observe(running, { workers }), now: later });
  assert.deepEqual(types(retried.actions), []);
  assert.equal(retried.status.stopRequestedAt, later.toISOString());
});

describe('every stop of a Running attempt is stored before its workers are told', () => {
  const running = { phase: 'Running' as const, reason: 'Training', run: 1, attempt: 1, attemptStartedAt: iso(-600) };
  const workers = [worker(0, 'Running'), worker(1, 'Running')];
  const zero = { exhausted: true, policy: 'Stop' as const, balance: 0, message: 'The credit balance of TrainingCluster onprem is 0.' };
  const victim = { by: 'ns/high', byPriority: 100, attemptId: '1-1', deadlineSeconds: 20 };
  const causes: { name: string; o: (status: ExperimentStatus) => Observed; reason: string; grace: number }[] = [
    { name: 'the user\'s Stop', o: (st) => observe(exp('Stop', st), { workers }), reason: 'StopRequested', grace: 30 },
    { name: 'credits at zero', o: (st) => observe(exp('Train', st), { workers, credits: zero }), reason: 'CreditsExhausted', grace: 30 },
    { name: 'a preemption', o: (st) => observe(exp('Train', st), { workers, preemption: victim, preemptionDeadlineSeconds: 20 }), reason: 'Preempted', grace: 20 },
  ];
  for (const c of causes) {
    test(`${c.name}: recorded in one step, the workers deleted in the next with their grace period`, () => {
      const first = decide(c.o(running));
      assert.equal(first.status.phase, 'Stopping');
      assert.equal(first.status.reason, c.reason);
      assert.equal(first.status.stopRequestedAt, now.toISOString());
      assert.deepEqual(types(first.actions), [], 'no pod is deleted before stopRequestedAt is stored');
      assert.ok(first.requeueAfterMs !== undefined && first.requeueAfterMs <= 2_000, 'the next step comes soon even without a watch event');

      const later = new Date(now.getTime() + 1000);
      const second = decide({ ...c.o(first.status), now: later });
      assert.equal(second.status.phase, 'Stopping');
      assert.equal(second.status.reason, c.reason);
      assert.deepEqual(
        second.actions.filter((a) => a.type === 'deleteWorkers'),
        [{ type: 'deleteWorkers', which: 'all', gracePeriodSeconds: c.grace }],
      );
      assert.equal(second.status.stopRequestedAt, first.status.stopRequestedAt, 'the stored moment is kept');
      assert.deepEqual(second.status.lastInterruption, first.status.lastInterruption);

      // The write that carried the first decision failed: the next try stamps its own moment and still tells nobody.
      const retried = decide({ ...c.o(running), now: later });
      assert.deepEqual(types(retried.actions), []);
      assert.equal(retried.status.stopRequestedAt, later.toISOString());
    });
  }

  test('a preemption\'s workers get its deadline even once the choice is no longer in view (an operator restart)', () => {
    const first = decide(causes[2]!.o(running));
    const second = decide(observe(exp('Train', first.status), { workers, preemptionDeadlineSeconds: 20 }));
    assert.deepEqual(
      second.actions.filter((a) => a.type === 'deleteWorkers'),
      [{ type: 'deleteWorkers', which: 'all', gracePeriodSeconds: 20 }],
    );
    assert.equal(second.status.reason, 'Preempted');
  });
});

describe('a user Stop without a final checkpoint', () => {
  // A retry's attempt 2, stopped moments after its first checkpoint; its worker was killed at the end of the grace
  // period before it reported a final one (the pod as the cache shows it: deleted, exit 137).
  const stopping = {
    phase: 'Stopping' as const,
    reason: 'StopRequested',
    run: 1,
    attempt: 2,
    failedAttempts: 1,
    attemptStartedAt: iso(-40),
    stopRequestedAt: iso(-6),
    latestCheckpoint: { step: 3000, location: '/ckpt/ns/e/run-1/step-3000' },
  };
  const killed = [worker(0, 'Failed', { attemptId: '1-2', deleting: true, exitCode: 137 }), worker(1, 'Failed', { attemptId: '1-2', deleting: true, exitCode: 137 })];
  const events = (d: ReturnType<typeof decide>) => d.actions.flatMap((a) => (a.type === 'event' ? [`${a.eventType} ${a.reason}: ${a.note}`] : []));

  test('ends Stopped, naming the latest checkpoint that Train continues from, and says why in a Warning event', () => {
    const d = decide(observe(exp('Stop', stopping), { workers: killed }));
    assert.equal(d.status.phase, 'Stopped');
    assert.equal(d.status.reason, 'StoppedByUser');
    assert.equal(
      d.status.message,
      'Stopped without a final checkpoint: none was reported within the 30s grace period. Train continues from the latest checkpoint, step 3000.',
    );
    assert.deepEqual(events(d), [`Warning FinalCheckpointMissing: ${d.status.message}`, `Normal Stopped: ${d.status.message}`]);
    assert.equal(d.status.lastFailure, undefined, 'a stop is not a failed attempt');
    assert.equal(d.status.failedAttempts, 1);
    assert.ok((d.status.usage?.nodeSeconds ?? 0) > 0, 'the attempt\'s usage is counted');

    // Train again continues the same run from that checkpoint, as a new attempt that spends no retry.
    const again = decide(observe(exp('Train', d.status)));
    assert.equal(again.status.phase, 'Pending');
    assert.equal(again.status.run, 1);
    assert.equal(again.status.attempt, 3);
    assert.equal(again.status.failedAttempts, 1);
    assert.deepEqual(again.status.latestCheckpoint, stopping.latestCheckpoint);
  });

  test('a failure the trainer reported after the stop was recorded is named', () => {
    const failed = { reason: 'VolumeFull', message: 'The checkpoint volume /ckpt is full.', retryable: true };
    const d = decide(observe(exp('Stop', stopping), { workers: killed, reports: { completed: false, finalCheckpointAfterStop: false, failed } }));
    assert.equal(d.status.phase, 'Stopped');
    assert.match(d.status.message!, /^Stopped without a final checkpoint: the trainer reported a failure \(VolumeFull: The checkpoint volume \/ckpt is full\.\)\. Train continues from the latest checkpoint, step 3000\.$/);
  });

  test('without any checkpoint it says Train starts over, or continues from the checkpoint it was resumed from', () => {
    const none = decide(observe(exp('Stop', { ...stopping, latestCheckpoint: undefined }), { workers: killed }));
    assert.equal(none.status.phase, 'Stopped');
    assert.match(none.status.message!, /Train starts over: no checkpoint was written\.$/);
    const resumed = { ...stopping, latestCheckpoint: undefined, resumedFrom: { experiment: 'base', step: 800, location: '/ckpt/ns/base/run-1/step-800' } };
    const d = decide(observe(exp('Stop', resumed), { workers: killed }));
    assert.match(d.status.message!, /Train continues from step 800 of base, which it was resumed from\.$/);
  });

  test('with a final checkpoint the message names its step, and no Warning is raised', () => {
    const d = decide(observe(exp('Stop', { ...stopping, latestCheckpoint: { step: 3100, location: '/ckpt/ns/e/run-1/step-3100-final' } }), { reports: { completed: false, finalCheckpointAfterStop: true } }));
    assert.equal(d.status.phase, 'Stopped');
    assert.equal(d.status.message, 'Stopped after a final checkpoint at step 3100.');
    assert.ok(!events(d).some((e) => e.startsWith('Warning')));
  });
});
