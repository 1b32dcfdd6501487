import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Experiment } from '../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../api/v1alpha1/trainingcluster.ts';
import { creditsLine, duration, explain, renderWhy } from './why.ts';
import { age, bytes, table } from './format.ts';
import { closest, editDistance } from './suggest.ts';

const now = new Date('2026-01-01T01:00:00Z');
const cond = (type: string, status: 'True' | 'False', reason: string, message: string) => ({ type, status, reason, message, lastTransitionTime: '2026-01-01T00:55:00Z' });

const pending: Experiment = {
  metadata: { name: 'big', namespace: 'ml' },
  spec: { action: 'Train', resourceClass: 'a100-x2', manifest: {} as Experiment['spec']['manifest'] },
  status: {
    phase: 'Pending',
    reason: 'InsufficientGpus',
    message: 'needs 2 nodes with 8 free NVIDIA-A100-SXM4-80GB GPUs; 1 has them',
    run: 1,
    attempt: 1,
    queuePosition: 3,
    conditions: [cond('Admitted', 'False', 'InsufficientGpus', 'waiting for GPUs')],
  },
};
const cls: ResourceClass = {
  metadata: { name: 'a100-x2' },
  spec: { trainingCluster: 'onprem', nodes: 2, worker: { gpus: 8, gpuProduct: 'NVIDIA-A100-SXM4-80GB' } },
  status: { available: true, reason: 'Available', eligibleNodes: 4, fitNow: 0, fitMax: 2, queued: 5, running: 1 },
};
const cluster: TrainingCluster = {
  metadata: { name: 'onprem' },
  spec: { setupBundle: { version: '1.0.0', images: { runtime: 'r' } }, checkpointStorage: { hostPath: { path: '/x' } } },
  status: {
    conditions: [cond('Ready', 'True', 'Ready', 'ok')],
    workers: { total: 4, ready: 4, notReady: 0 },
    gpus: { total: 40, allocated: 30, free: 10, byProduct: [{ product: 'NVIDIA-A100-SXM4-80GB', total: 32, allocated: 26, free: 6 }, { product: 'NVIDIA-L4', total: 8, allocated: 4, free: 4 }] },
    bundle: { installedVersion: '1.0.0', state: 'Current' },
  },
};

describe('why', () => {
  test('a Pending experiment: reason, queue, class fit, GPUs of its product, cluster, conditions', () => {
    const r = explain(pending, cls, cluster);
    assert.equal(r.waiting, true);
    assert.deepEqual(r.queue, { position: 3, class: 'a100-x2', queued: 5 });
    assert.deepEqual(r.gpus, { product: 'NVIDIA-A100-SXM4-80GB', free: 6, total: 32, neededPerGang: 16 });
    const text = renderWhy(r, now);
    for (const line of [
      /^Experiment ml\/big: Pending \(InsufficientGpus\), run 1 attempt 1$/m,
      /needs 2 nodes with 8 free/,
      /^Queue: +position 3 of 5 on a100-x2 \(2 ahead\)$/m,
      /^Class: +a100-x2: 2 worker\(s\) × 8 GPU\(s\) NVIDIA-A100-SXM4-80GB; enabled yes, available yes \(Available\)$/m,
      /4 eligible node\(s\), 0 gang\(s\) fit now, 2 on an empty cluster, 1 running/,
      /^GPUs: +6 free of 32 \(NVIDIA-A100-SXM4-80GB\); one run needs 16$/m,
      /^Cluster: +onprem: enabled yes, Ready True, bundle 1\.0\.0 \(Current\), workers 4\/4 ready$/m,
      /^ {2}Admitted +False +InsufficientGpus +5m +waiting for GPUs$/m,
    ]) {
      assert.match(text, line);
    }
    assert.ok(text.split('\n').length < 25, 'one screen');
  });

  test('a missing class and a class without a GPU product', () => {
    assert.match(renderWhy(explain(pending, undefined, undefined), now), /a100-x2 does not exist/);
    const anyGpu = { ...cls, spec: { ...cls.spec, worker: { gpus: 1 } } };
    assert.deepEqual(explain(pending, anyGpu, cluster).gpus, { product: 'any', free: 10, total: 40, neededPerGang: 2 });
  });

  test('a Running experiment is not waiting; a last failure shows with its hint', () => {
    const running: Experiment = {
      ...pending,
      status: { phase: 'Running', run: 1, attempt: 2, lastFailure: { reason: 'CudaOutOfMemory', message: 'CUDA out of memory', hint: 'lower the batch size', at: '2026-01-01T00:30:00Z', attempt: 1 } },
    };
    const text = renderWhy(explain(running, cls, cluster), now);
    assert.match(text, /not waiting for anything/);
    assert.match(text, /Last failure \(attempt 1, 30m ago\): CudaOutOfMemory: CUDA out of memory\n {2}hint: lower the batch size/);
    assert.doesNotMatch(text, /Queue:/);
  });
});

describe('why, with credits', () => {
  const ledger = { source: 'Spec' as const, balance: -0.4, granted: 6, spent: 6.4, metered: 6.4, debitedThrough: '2026-01-01T00:58:00Z', burnRatePerHour: 0, running: 0, exhaustedAt: '2026-01-01T00:58:00Z' };
  const out: TrainingCluster = { ...cluster, spec: { ...cluster.spec, credits: { granted: 6 } }, status: { ...cluster.status, credits: ledger } };
  const stopped: Experiment = {
    ...pending,
    status: {
      phase: 'Stopped',
      reason: 'CreditsExhausted',
      message: 'Stopped after a final checkpoint at step 150: the credit balance reached zero. It resumes by itself after a top-up.',
      run: 1,
      attempt: 1,
      lastInterruption: { reason: 'CreditsExhausted', message: 'zero', at: '2026-01-01T00:58:00Z', run: 1, checkpointStep: 150 },
    },
  };

  test('Stopped for credits with action Train waits for a top-up, and why says so with the balance and the checkpoint', () => {
    const r = explain(stopped, cls, out);
    assert.equal(r.waiting, true);
    assert.deepEqual(r.credits, { source: 'Spec', balance: -0.4, spent: 6.4, granted: 6, burnRatePerHour: 0, exhausted: true, exhaustedPolicy: 'Stop' });
    const text = renderWhy(r, now);
    assert.match(text, /resumes from its final checkpoint by itself once the cluster has credits again/);
    assert.match(text, /^Credits: +-0\.40 left of 6 granted, 6\.40 spent; nothing is spending; exhausted \(running experiments: Stop\)$/m);
    assert.match(text, /^Stopped by the operator \(CreditsExhausted, run 1\) 2m ago with the checkpoint at step 150$/m);
  });

  test('a top-up shows at once, before the ledger\'s next pass; the burn rate and time left read as people read them', () => {
    const topped: TrainingCluster = { ...out, spec: { ...out.spec, credits: { granted: 106 } } };
    assert.equal(explain(stopped, cls, topped).credits?.balance, 99.6);
    assert.equal(creditsLine({ source: 'Spec', balance: 50, spent: 10, granted: 60, burnRatePerHour: 7.2, secondsLeft: 25_000, exhausted: false, exhaustedPolicy: 'Stop' }), '50 left of 60 granted, 10 spent; burning 7.20/h, about 6h56m left');
    assert.deepEqual([45, 720, 90_000].map(duration), ['45s', '12m', '1d1h']);
  });

  test('no credits on the cluster: no line about them', () => {
    assert.doesNotMatch(renderWhy(explain(pending, cls, cluster), now), /Credits:/);
  });
});

describe('why, with priorities, preemption and the start estimate', () => {
  test('a preempted run waiting again: the preemptor, the checkpoint it resumes from, the steps lost, the estimate', () => {
    const preempted: Experiment = {
      ...pending,
      spec: { ...pending.spec, priority: 0 },
      status: {
        phase: 'Pending',
        reason: 'Preempted',
        message: 'Preempted by ml/urgent (priority 100), which needs this run\'s capacity. It resumes from its checkpoint at step 150 when capacity returns.',
        run: 1,
        attempt: 2,
        estimatedStartTime: '2026-01-01T01:10:00.000Z',
        conditions: [
          cond('Admitted', 'False', 'Preempted', 'Preempted by ml/urgent. Waiting for capacity. Estimated start 2026-01-01T01:10:00.000Z, when ml/urgent finishes (at 20 steps/s toward 5000 steps) (a replay of the queue at the running experiments\' current speed).'),
        ],
        lastInterruption: { reason: 'Preempted', message: 'Preempted by ml/urgent.', at: '2026-01-01T00:58:00Z', run: 1, preemptedBy: 'ml/urgent', checkpointStep: 150, stepAtStop: 155, lostSteps: 5 },
      },
    };
    const r = explain(preempted, cls, cluster);
    assert.equal(r.waiting, true);
    assert.deepEqual(r.priority, { value: 0 });
    assert.equal(r.estimate?.at, '2026-01-01T01:10:00.000Z');
    const text = renderWhy(r, now);
    assert.match(text, /^Experiment ml\/big: Pending \(Preempted\), run 1 attempt 2$/m);
    assert.match(text, /^Priority: +0; higher-priority runs go first and may preempt lower ones$/m);
    assert.match(text, /^Estimate: +starts in about 10m, at 2026-01-01T01:10:00.000Z: when ml\/urgent finishes \(at 20 steps\/s toward 5000 steps\)/m);
    assert.match(text, /^Preempted by ml\/urgent \(run 1\) 2m ago with the checkpoint at step 150 \(5 step\(s\) past it lost\)$/m);
  });

  test('a PriorityClass is named; no estimate once it is not Pending', () => {
    const running: Experiment = { ...pending, spec: { ...pending.spec, priorityClassName: 'research-high' }, status: { ...pending.status, phase: 'Running', estimatedStartTime: '2026-01-01T01:10:00Z' } };
    const r = explain(running, cls, cluster);
    assert.deepEqual(r.priority, { className: 'research-high' });
    assert.equal(r.estimate, undefined);
    assert.match(renderWhy(r, now), /^Priority: +PriorityClass research-high;/m);
  });
});

describe('formatting', () => {
  test('tables pad columns by three and print <none> for empty cells', () => {
    assert.equal(table(['name', 'phase'], [['a', 'Running'], ['longer', undefined]]), 'NAME     PHASE\na        Running\nlonger   <none>\n');
  });
  test('ages and sizes', () => {
    const t = new Date('2026-01-10T00:00:00Z');
    assert.deepEqual(
      ['2026-01-09T23:59:15Z', '2026-01-09T23:00:00Z', '2026-01-09T00:00:00Z', '2026-01-01T00:00:00Z'].map((x) => age(x, t)),
      ['45s', '60m', '24h', '9d'],
    );
    assert.deepEqual([bytes(512), bytes(7168), bytes(1.5 * 1024 ** 3)], ['512B', '7.0KiB', '1.5GiB']);
  });
  test('suggestions: prefixes and small edits, nothing far away', () => {
    assert.equal(editDistance('cartpole', 'catrpole'), 2);
    assert.deepEqual(closest('cartpol', ['cartpole', 'cartpole-2', 'lunar']), ['cartpole', 'cartpole-2']);
    assert.deepEqual(closest('catrpole', ['cartpole', 'lunar']), ['cartpole']);
    assert.deepEqual(closest('zzz', ['cartpole', 'lunar']), []);
  });
});
