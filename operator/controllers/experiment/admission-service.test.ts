// The admission service's preemption bookkeeping, in memory: a plan is made once for a waiting gang, its victims are
// told (and only for the attempt chosen), no further victims are taken while they exit, and the plan ends when the
// preemptor is admitted. Estimates appear for waiting gangs and hold still while they move little.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CapacityModel } from '../../scheduler/capacity.ts';
import { node, pod, req } from '../../scheduler/testing.ts';
import { createLogger } from '../../observability/log.ts';
import { AdmissionService, type RunningGang } from './admission-service.ts';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';

const cls = { metadata: { name: 'whole', resourceVersion: '1' }, spec: { trainingCluster: 'tc', nodes: 1, worker: { gpus: 8, cpu: '1', memory: '1Gi' } } } as ResourceClass;
const cluster = { metadata: { name: 'tc', resourceVersion: '1' }, spec: {} } as TrainingCluster;

function setup(running: RunningGang[], nowMs = 1_000_000) {
  const capacity = new CapacityModel();
  for (const n of ['a', 'b']) capacity.upsertNode(node(n, { gpus: 8 }));
  for (const r of running) r.frees.forEach((f, i) => capacity.upsertPod(`${r.key}/${i}`, pod(f.node, f.resources), r.key));
  const woken: string[] = [];
  const clock = { now: nowMs };
  const svc = new AdmissionService({
    capacity,
    wake: (keys) => woken.push(...keys),
    logger: createLogger({ silent: true }),
    now: () => clock.now,
    running: () => running,
    preemption: { minRunTimeMs: 60_000, deadlineSeconds: 30 },
  });
  const queue = (key: string, priority: number) => svc.queue({ key, className: 'whole', priority, arrivalMs: 0, workers: 1, cls, cluster });
  return { svc, capacity, woken, queue, clock };
}

const holder = (key: string, nodeName: string, checkpointAgoMs: number, remainingMs?: number): RunningGang => ({
  key,
  priority: 0,
  attemptId: '1-1',
  preemptible: true,
  startedAtMs: 0,
  lastCheckpointAtMs: 1_000_000 - checkpointAgoMs,
  frees: [{ node: nodeName, resources: req(8) }],
  ...(remainingMs !== undefined ? { remainingMs, speed: 'at 10 steps/s toward 1000 steps' } : {}),
});

test('a waiting high-priority gang preempts the run with the freshest checkpoint, once', () => {
  const running = [holder('ns/old-ckpt', 'a', 600_000), holder('ns/new-ckpt', 'b', 10_000)];
  const { svc, woken, queue } = setup(running);
  queue('ns/high', 100);
  svc.cycle();
  const v = svc.view('ns/high');
  assert.equal(v.state, 'waiting');
  assert.ok(v.state === 'waiting' && v.reason === 'Preempting' && /Preempting ns\/new-ckpt \(lower priority than its 100\)/.test(v.message), JSON.stringify(v));
  assert.deepEqual(svc.preemption('ns/new-ckpt'), { by: 'ns/high', byPriority: 100, attemptId: '1-1', deadlineSeconds: 30 });
  assert.equal(svc.preemption('ns/old-ckpt'), undefined);
  assert.ok(woken.includes('ns/new-ckpt'));

  // While the victim exits, the next cycles take no one else.
  running[1]!.preemptible = false;
  svc.cycle();
  svc.cycle();
  assert.equal(svc.preemption('ns/old-ckpt'), undefined);
  assert.equal(svc.preemption('ns/new-ckpt')?.by, 'ns/high');
});

test('the plan ends when the preemptor is admitted, and the victim is told no more', () => {
  const running = [holder('ns/low', 'a', 10_000), holder('ns/other', 'b', 600_000)];
  const { svc, capacity, queue } = setup(running);
  queue('ns/high', 100);
  svc.cycle();
  assert.equal(svc.preemption('ns/low')?.by, 'ns/high');
  // The victim's pod goes: the preemptor fits and is admitted.
  capacity.removePod('ns/low/0');
  running.splice(0, 1);
  svc.cycle();
  assert.deepEqual(svc.view('ns/high'), { state: 'admitted', nodes: ['a'] });
  assert.equal(svc.preemption('ns/low'), undefined);
});

test('equal priority never preempts; it gets a start estimate instead, which holds still while it moves little', () => {
  const running = [holder('ns/r1', 'a', 10_000, 120_000), holder('ns/r2', 'b', 10_000, 600_000)];
  const { svc, queue, clock } = setup(running);
  queue('ns/peer', 0);
  svc.cycle();
  const v = svc.view('ns/peer');
  assert.ok(v.state === 'waiting' && v.reason === 'InsufficientCapacity', JSON.stringify(v));
  assert.equal(svc.preemption('ns/r1'), undefined);
  assert.ok(v.state === 'waiting' && v.estimate);
  assert.equal(v.estimate.at, new Date(Math.ceil((1_000_000 + 120_000) / 10_000) * 10_000).toISOString());
  assert.match(v.estimate.reasoning, /when ns\/r1 finishes \(at 10 steps\/s toward 1000 steps\)/);

  // 10 s later, the run is 5 s behind its old pace: within the hysteresis, the estimate stays.
  clock.now += 10_000;
  running[0]!.remainingMs = 115_000;
  svc.cycle();
  const same = svc.view('ns/peer');
  assert.ok(same.state === 'waiting' && same.estimate?.at === v.estimate.at);
  // It speeds up a lot: the estimate moves.
  clock.now += 10_000;
  running[0]!.remainingMs = 20_000;
  svc.cycle();
  const moved = svc.view('ns/peer');
  assert.ok(moved.state === 'waiting' && moved.estimate && Date.parse(moved.estimate.at) < Date.parse(v.estimate.at), JSON.stringify(moved));
});

test('no victim younger than the minimum run time, and the wait says why nothing was preempted', () => {
  const young = { ...holder('ns/young', 'a', 1_000), startedAtMs: 1_000_000 - 5_000 };
  const running = [young, { ...holder('ns/young2', 'b', 1_000), startedAtMs: 1_000_000 - 5_000 }];
  const { svc, queue } = setup(running);
  queue('ns/high', 100);
  svc.cycle();
  const v = svc.view('ns/high');
  assert.ok(v.state === 'waiting' && v.reason === 'InsufficientCapacity', JSON.stringify(v));
  assert.ok(v.state === 'waiting' && /Preemption: No running experiment .* can be preempted \(2 ran less than the minimum run time of 60s\)/.test(v.message), JSON.stringify(v));
  assert.equal(svc.preemption('ns/young'), undefined);
});
