// Team quotas in the admission service, in memory: borrowing idle GPUs up to the limit, reclaim of what another team
// borrows (and never of its own quota), fair share between teams, and the words a waiting run gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CapacityModel } from '../../scheduler/capacity.ts';
import { node, pod, req } from '../../scheduler/testing.ts';
import { createLogger } from '../../observability/log.ts';
import { AdmissionService, type RunningGang } from './admission-service.ts';
import type { ResourceClass, ResourceClassTeam } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import type { AdmissionView } from './lifecycle.ts';

const NOW = 10_000_000;
const cluster = { metadata: { name: 'tc', resourceVersion: '1' }, spec: {} } as TrainingCluster;
const teamsOf = (b: Partial<ResourceClassTeam> = {}): ResourceClassTeam[] => [
  { name: 'a', namespaces: ['team-a'], gpus: 16 },
  { name: 'b', namespaces: ['team-b'], gpus: 16, ...b },
];
const shared = (teams: ResourceClassTeam[] | undefined): ResourceClass =>
  ({ metadata: { name: 'shared', resourceVersion: '1' }, spec: { trainingCluster: 'tc', nodes: 1, worker: { gpus: 8, cpu: '1', memory: '1Gi' }, ...(teams ? { teams } : {}) } }) as ResourceClass;

/** A run of one 8-GPU worker on `nodeName`, in the class, checkpointed `ckptAgoMs` ago. */
const run = (key: string, nodeName: string, ckptAgoMs = 60_000, priority = 0): RunningGang => ({
  key,
  className: 'shared',
  priority,
  attemptId: '1-1',
  preemptible: true,
  startedAtMs: 0,
  lastCheckpointAtMs: NOW - ckptAgoMs,
  frees: [{ node: nodeName, resources: req(8) }],
});

function setup(o: { nodes?: number; teams?: ResourceClassTeam[] | undefined; running?: RunningGang[] } = {}) {
  const capacity = new CapacityModel();
  for (let i = 1; i <= (o.nodes ?? 4); i++) capacity.upsertNode(node(`n${i}`, { gpus: 8 }));
  const running = o.running ?? [];
  for (const r of running) r.frees.forEach((f, i) => capacity.upsertPod(`${r.key}/${i}`, pod(f.node, f.resources), r.key));
  const cls = shared('teams' in o ? o.teams : teamsOf());
  const svc = new AdmissionService({
    capacity,
    wake: () => {},
    logger: createLogger({ silent: true }),
    now: () => NOW,
    running: () => running,
    preemption: { minRunTimeMs: 0, deadlineSeconds: 30 },
    classOf: () => 'shared',
  });
  let arrival = 0;
  const queue = (key: string, priority = 0) => svc.queue({ key, className: 'shared', priority, arrivalMs: ++arrival, workers: 1, cls, cluster });
  return { svc, capacity, queue, running };
}

const waiting = (v: AdmissionView) => {
  assert.equal(v.state, 'waiting', JSON.stringify(v));
  return v as Extract<AdmissionView, { state: 'waiting' }>;
};

test('a team borrows idle GPUs up to its borrowing limit; past it the run waits QuotaExceeded, naming the limit', () => {
  const { svc, queue } = setup({ teams: teamsOf({ borrowingLimit: 8 }) });
  for (const n of ['1', '2', '3', '4']) queue(`team-b/r${n}`);
  svc.cycle();
  for (const n of ['1', '2', '3']) assert.equal(svc.view(`team-b/r${n}`).state, 'admitted', `r${n}: 16 GPUs of quota and 8 borrowed`);
  const v = waiting(svc.view('team-b/r4'));
  assert.equal(v.reason, 'QuotaExceeded');
  assert.match(v.message, /^Team b uses 24 GPU\(s\) of class shared against a quota of 16 and a borrowing limit of 8; this run needs 8 more\..*raise spec\.teams\[b\]\.gpus or \.borrowingLimit/);
  assert.equal(v.position, undefined, 'a run over its limit takes no place in the queue');
});

test('a run over its team\'s limit does not hold up the others: the next team\'s run takes the free node', () => {
  const { svc, queue } = setup({ teams: teamsOf({ borrowingLimit: 0 }), running: [run('team-b/x', 'n1'), run('team-b/y', 'n2')] });
  queue('team-b/over');
  queue('team-a/mine');
  svc.cycle();
  assert.equal(waiting(svc.view('team-b/over')).reason, 'QuotaExceeded');
  assert.equal(svc.view('team-a/mine').state, 'admitted');
});

test('a team within its quota reclaims what another team borrows, whatever the borrower\'s priority', () => {
  // Team b holds every node: 16 GPUs of its quota and 16 borrowed. Team a asks for 8 of its 16.
  const running = [run('team-b/b1', 'n1', 50_000, 900), run('team-b/b2', 'n2', 10_000, 900), run('team-b/b3', 'n3', 40_000, 900), run('team-b/b4', 'n4', 30_000, 900)];
  const { svc, queue, capacity } = setup({ running });
  queue('team-a/mine');
  svc.cycle();
  const v = waiting(svc.view('team-a/mine'));
  assert.equal(v.reason, 'Preempting');
  assert.match(v.message, /Team a uses 0 of its 16-GPU quota on class shared\. Preempting team-b\/b2 \(team b, borrowing beyond its quota\) \(to reclaim team a's quota\)/);
  assert.deepEqual(svc.preemption('team-b/b2'), { by: 'team-a/mine', byPriority: 0, attemptId: '1-1', deadlineSeconds: 30, reclaim: { from: 'b', for: 'a' } });

  // The victim exits and queues again at its higher priority: the run that fits its team's quota still goes first,
  // or the two would take the node from each other forever.
  capacity.removePod('team-b/b2/0');
  running.splice(1, 1);
  svc.queue({ key: 'team-b/b2', className: 'shared', priority: 900, arrivalMs: 0, workers: 1, cls: shared(teamsOf()), cluster });
  svc.cycle();
  assert.deepEqual(svc.view('team-a/mine'), { state: 'admitted', nodes: ['n2'] });
  assert.equal(waiting(svc.view('team-b/b2')).reason, 'InsufficientCapacity');
});

test('reclaim takes no more than is borrowed, also across several waiting runs of the team', () => {
  // Team b borrows 8 GPUs (24 of 16); team a holds 8 of its 16 and queues two more runs.
  const running = [run('team-a/a1', 'n1'), run('team-b/b1', 'n2', 10_000), run('team-b/b2', 'n3', 20_000), run('team-b/b3', 'n4', 30_000)];
  const { svc, queue } = setup({ running });
  queue('team-a/a2');
  queue('team-a/a3');
  svc.cycle();
  assert.equal(waiting(svc.view('team-a/a2')).reason, 'Preempting');
  assert.equal(svc.preemption('team-b/b1')?.by, 'team-a/a2');
  // a3 would take team a past its quota once a2 runs, and team b no longer borrows once b1 goes: no second victim.
  const a3 = waiting(svc.view('team-a/a3'));
  assert.notEqual(a3.reason, 'Preempting', a3.message);
  for (const k of ['team-b/b2', 'team-b/b3']) assert.equal(svc.preemption(k), undefined, `${k} is within team b's quota`);
});

test('a higher-priority run preempts within its own team, never another team that stays within its quota', () => {
  const running = [run('team-a/a1', 'n1', 60_000, 900), run('team-a/a2', 'n2', 60_000, 0), run('team-b/b1', 'n3', 1_000), run('team-b/b2', 'n4', 1_000)];
  const { svc, queue } = setup({ running });
  queue('team-a/urgent', 1000);
  svc.cycle();
  assert.equal(waiting(svc.view('team-a/urgent')).reason, 'Preempting');
  // b's runs lose the least work, but team b is within its quota; a2 is team a's own lower-priority run.
  assert.equal(svc.preemption('team-a/a2')?.by, 'team-a/urgent');
  assert.equal(svc.preemption('team-a/a2')?.reclaim, undefined);
  for (const k of ['team-b/b1', 'team-b/b2', 'team-a/a1']) assert.equal(svc.preemption(k), undefined, k);

  // With no lower-priority run of its own, it waits, and says why nothing was preempted.
  const other = setup({ running: [run('team-a/a1', 'n1', 60_000, 2000), run('team-a/a2', 'n2', 60_000, 2000), run('team-b/b1', 'n3'), run('team-b/b2', 'n4')] });
  other.queue('team-a/urgent', 1000);
  other.svc.cycle();
  const v = waiting(other.svc.view('team-a/urgent'));
  assert.equal(v.reason, 'InsufficientCapacity');
  assert.match(v.message, /Team a uses 16 of its 16-GPU quota/);
  assert.match(v.message, /Preemption: No running experiment of lower priority than 1000 on its nodes, and no other team borrows GPUs there, can be preempted\./);
});

test('namespaces no team lists run on idle GPUs only, and give them back to a team on demand', () => {
  const running = [run('scratch/s1', 'n1'), run('scratch/s2', 'n2', 5_000), run('team-b/b1', 'n3'), run('team-b/b2', 'n4')];
  const { svc, queue } = setup({ running });
  queue('scratch/s3');
  queue('team-a/mine');
  svc.cycle();
  const s3 = waiting(svc.view('scratch/s3'));
  assert.match(s3.message, /Its namespace is in no team of class shared: such runs use 16 GPU\(s\), only what the teams leave idle\./);
  assert.equal(waiting(svc.view('team-a/mine')).reason, 'Preempting');
  assert.deepEqual(svc.preemption('scratch/s2')?.reclaim, { from: 'unassigned', for: 'a' });
});

test('between teams the queue is fair share: a team that runs nothing goes before another team\'s older runs', () => {
  for (const [teams, want] of [
    [teamsOf(), ['team-a/a1', 'team-b/b1']],
    [undefined, ['team-a/a1', 'team-a/a2']],
  ] as const) {
    const { svc, queue } = setup({ nodes: 2, teams: teams ? [...teams] : undefined });
    queue('team-a/a1');
    queue('team-a/a2');
    queue('team-a/a3');
    queue('team-b/b1');
    svc.cycle();
    const admitted = ['team-a/a1', 'team-a/a2', 'team-a/a3', 'team-b/b1'].filter((k) => svc.view(k).state === 'admitted');
    assert.deepEqual(admitted, want, teams ? 'with teams' : 'without teams: arrival order');
  }
});

test('a heavier team weight gets the larger fair share', () => {
  const { svc, queue } = setup({ nodes: 3, teams: [{ name: 'a', namespaces: ['team-a'], gpus: 8, weight: 2 }, { name: 'b', namespaces: ['team-b'], gpus: 8 }] });
  queue('team-b/b1');
  queue('team-b/b2');
  queue('team-a/a1');
  queue('team-a/a2');
  svc.cycle();
  // Progressive filling: b1 (both at 0, b1 earlier), a1 (0 < 8/24), a2 (8/24/2 < 8/24), then b2.
  const admitted = ['team-b/b1', 'team-b/b2', 'team-a/a1', 'team-a/a2'].filter((k) => svc.view(k).state === 'admitted');
  assert.deepEqual(admitted, ['team-b/b1', 'team-a/a1', 'team-a/a2']);
});
