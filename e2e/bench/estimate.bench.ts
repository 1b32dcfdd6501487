// Start-estimate benchmark: replays a queue on simulated time and prints how far status.estimatedStartTime was from
// when each experiment actually started. The truth is the operator's own GangScheduler on a CapacityModel (a cycle
// every simulated 10 s, backfill included); the estimate is operator/scheduler/estimate.ts fed what the operator
// sees: each running run's reported speed toward its max_steps. Real speeds drift (a mean-reverting walk of
// ±`--drift` of the mean per minute), so the estimate errs the way it would in a cluster. Prints figures, exits 0.
//
//   node --import tsx e2e/bench/estimate.bench.ts [--nodes 16] [--jobs 300] [--drift 0.1] [--seed 7]
import { parseArgs } from 'node:util';
import { CapacityModel } from '../../operator/scheduler/capacity.ts';
import { GangScheduler, type GangRequest } from '../../operator/scheduler/admission.ts';
import { estimateStarts, type QueuedGang, type RunningWork } from '../../operator/scheduler/estimate.ts';
import { node, pod, req } from '../../operator/scheduler/testing.ts';

const { values: args } = parseArgs({
  options: { nodes: { type: 'string', default: '16' }, jobs: { type: 'string', default: '300' }, drift: { type: 'string', default: '0.1' }, seed: { type: 'string', default: '7' } },
});
const NODES = Number(args.nodes);
const JOBS = Number(args.jobs);
const DRIFT = Number(args.drift);
const TICK_MS = 10_000;

let seed = Number(args.seed) >>> 0 || 1;
const rand = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};

interface Job {
  key: string;
  workers: number;
  gpus: number;
  arrivalMs: number;
  maxSteps: number;
  meanSpeed: number;
  speed: number;
  step: number;
  nodes: string[];
  startedMs?: number;
  endedMs?: number;
  /** Estimates made while it waited: when made, what it said. */
  estimates: { madeMs: number; atMs: number }[];
}

const capacity = new CapacityModel();
const names = Array.from({ length: NODES }, (_, i) => `n${String(i).padStart(3, '0')}`);
for (const n of names) capacity.upsertNode(node(n, { gpus: 8 }));
const scheduler = new GangScheduler(capacity);
const eligibleAll = new Set(names);

// Arrivals roughly as fast as the fleet drains, so a queue forms and clears: 1–4 node gangs of 4 or 8 GPUs, 10–60
// minutes of training at their mean speed.
const jobs: Job[] = [];
let t = 0;
for (let i = 0; i < JOBS; i++) {
  t += Math.round(rand() * 4 * 60_000);
  const speed = 50 + rand() * 150;
  const minutes = 10 + rand() * 50;
  jobs.push({
    key: `ns/j${i}`,
    workers: 1 + Math.floor(rand() * rand() * 4),
    gpus: rand() < 0.5 ? 4 : 8,
    arrivalMs: t,
    maxSteps: Math.round(speed * minutes * 60),
    meanSpeed: speed,
    speed,
    step: 0,
    nodes: [],
    estimates: [],
  });
}

const gangOf = (j: Job): GangRequest => ({ key: j.key, classKey: 'c', priority: 0, arrivalMs: j.arrivalMs, workers: j.workers, perWorker: req(j.gpus), eligible: () => true });
let now = 0;
const started = performance.now();
for (let tick = 0; jobs.some((j) => j.endedMs === undefined); tick++) {
  now = tick * TICK_MS;
  // Running jobs train; their speed drifts; the finished give their nodes back.
  for (const j of jobs) {
    if (j.startedMs === undefined || j.endedMs !== undefined) continue;
    j.step += (j.speed * TICK_MS) / 1000;
    // Mean-reverting, so a run's speed wanders around its mean rather than decaying.
    j.speed = Math.max(j.meanSpeed * 0.3, j.speed + (j.meanSpeed - j.speed) * 0.05 + j.meanSpeed * (rand() * 2 - 1) * DRIFT * (TICK_MS / 60_000));
    if (j.step >= j.maxSteps) {
      j.endedMs = now;
      j.nodes.forEach((_, w) => capacity.removePod(`${j.key}/${w}`));
    }
  }
  const waiting = jobs.filter((j) => j.arrivalMs <= now && j.startedMs === undefined);
  const result = scheduler.cycle(waiting.map(gangOf), now);
  for (const a of result.admitted) {
    const j = jobs.find((x) => x.key === a.key)!;
    j.startedMs = now;
    j.nodes = a.nodes;
    a.nodes.forEach((n, w) => capacity.upsertPod(`${j.key}/${w}`, pod(n, req(j.gpus)), j.key));
    capacity.release(j.key);
  }
  // Every simulated minute, estimate every waiting job as the operator would (its queue order is the scheduler's).
  if (tick % 6 === 0) {
    const still = result.waiting.map((w) => jobs.find((x) => x.key === w.key)!).filter((j) => j.startedMs === undefined);
    if (still.length === 0) continue;
    const running: RunningWork[] = jobs
      .filter((j) => j.startedMs !== undefined && j.endedMs === undefined)
      .map((j) => ({ key: j.key, frees: j.nodes.map((n) => ({ node: n, resources: req(j.gpus) })), remainingMs: ((j.maxSteps - j.step) / j.speed) * 1000 }));
    const queue: QueuedGang[] = still.map((j) => ({ key: j.key, workers: j.workers, perWorker: req(j.gpus), eligible: eligibleAll }));
    const free = names.map((n) => {
      const f = capacity.free(n)!;
      return { name: n, free: { gpus: f.gpus, cpuMilli: f.cpuMilli, memoryBytes: f.memoryBytes, pods: f.pods } };
    });
    for (const e of estimateStarts({ nowMs: now, nodes: free, running, queue })) {
      if (e.atMs !== undefined) jobs.find((x) => x.key === e.key)!.estimates.push({ madeMs: now, atMs: e.atMs });
    }
  }
}
const elapsedMs = performance.now() - started;

const errors: number[] = [];
const relative: number[] = [];
let estimated = 0;
let waited = 0;
for (const j of jobs) {
  if (j.startedMs === undefined || j.startedMs - j.arrivalMs < TICK_MS) continue;
  waited++;
  if (j.estimates.length > 0) estimated++;
  for (const e of j.estimates) {
    const err = (e.atMs - j.startedMs) / 1000;
    errors.push(err);
    const left = (j.startedMs - e.madeMs) / 1000;
    if (left >= 60) relative.push(Math.abs(err) / left);
  }
}
const q = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};
const abs = errors.map(Math.abs);
const mean = abs.reduce((a, b) => a + b, 0) / Math.max(1, abs.length);
const early = errors.filter((e) => e < 0).length;
console.log(`estimate bench: ${NODES} nodes × 8 GPUs, ${JOBS} jobs, speed drift ±${DRIFT * 100}%/min, ${(now / 3_600_000).toFixed(1)} h simulated in ${(elapsedMs / 1000).toFixed(1)} s`);
console.log(`  jobs that waited: ${waited}; with an estimate while waiting: ${estimated}; estimates compared: ${errors.length}`);
console.log(`  absolute error (s): mean ${mean.toFixed(0)}, p50 ${q(abs, 0.5).toFixed(0)}, p90 ${q(abs, 0.9).toFixed(0)}, p99 ${q(abs, 0.99).toFixed(0)}`);
console.log(`  error relative to the wait left (estimates ≥ 1 min ahead): p50 ${(q(relative, 0.5) * 100).toFixed(0)}%, p90 ${(q(relative, 0.9) * 100).toFixed(0)}%`);
console.log(`  estimates too early (started later than said): ${((early / Math.max(1, errors.length)) * 100).toFixed(0)}%`);
