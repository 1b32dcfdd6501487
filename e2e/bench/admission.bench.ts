// Admission benchmark: 1,000 simulated 8-GPU nodes of 3 products, 5,000 gangs of mixed sizes in 7 resource classes,
// run as the operator runs it: a cycle per simulated second, admitted gangs' pods bind on the next cycle (the
// reservation is then released), runs end after 30 s to 10 min of simulated time. Prints figures, exits 0.
//
//   node --import tsx e2e/bench/admission.bench.ts [--gangs N] [--seed S]
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { availableParallelism, loadavg } from 'node:os';
import { CapacityModel, type NodeInfo } from '../../operator/scheduler/capacity.ts';
import { GangScheduler, type GangRequest } from '../../operator/scheduler/admission.ts';
import { classEligibility } from '../../operator/scheduler/eligibility.ts';
import { node, pod, req } from '../../operator/scheduler/testing.ts';

const { values: args } = parseArgs({ options: { gangs: { type: 'string', default: '5000' }, seed: { type: 'string', default: '42' } } });
const GANGS = Number(args.gangs);
const NODES = 1000;

// Heap figures mean little without a collection first; expose gc() without needing a command-line flag.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMiB = () => {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

let seed = Number(args.seed) >>> 0 || 1;
const rand = (n: number) => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};

const products = [
  { name: 'NVIDIA-H100-80GB-HBM3', pool: 'h100', share: 0.4 },
  { name: 'NVIDIA-A100-SXM4-80GB', pool: 'a100', share: 0.4 },
  { name: 'NVIDIA-L4', pool: 'l4', share: 0.2 },
];
const gpuTaint = { key: 'nvidia.com/gpu', value: 'true', effect: 'NoSchedule' };
const workerSelector = { 'arena.agilerl.com/worker': 'true' };

const classes = [
  { key: 'h100-1x1', pool: 'h100', workers: 1, gpus: 1, weight: 30 },
  { key: 'h100-1x8', pool: 'h100', workers: 1, gpus: 8, weight: 10 },
  { key: 'h100-4x8', pool: 'h100', workers: 4, gpus: 8, weight: 4 },
  { key: 'a100-2x4', pool: 'a100', workers: 2, gpus: 4, weight: 20 },
  { key: 'a100-1x2', pool: 'a100', workers: 1, gpus: 2, weight: 20 },
  { key: 'l4-1x1', pool: 'l4', workers: 1, gpus: 1, weight: 10 },
  { key: 'l4-8x1', pool: 'l4', workers: 8, gpus: 1, weight: 6 },
].map((c) => {
  const product = products.find((p) => p.pool === c.pool)!.name;
  const e = classEligibility({ workerNodeSelector: workerSelector, nodeSelector: { pool: c.pool }, gpuProduct: product, gpus: c.gpus });
  return { ...c, perWorker: req(c.gpus, 8 * c.gpus, 64 * c.gpus), eligible: e.eligible, explain: e.explain };
});
const totalWeight = classes.reduce((s, c) => s + c.weight, 0);

function buildNodes(): NodeInfo[] {
  const nodes: NodeInfo[] = [];
  for (const p of products) {
    const count = Math.round(NODES * p.share);
    for (let i = 0; i < count; i++) {
      nodes.push(node(`${p.pool}-${String(i).padStart(4, '0')}`, { gpus: 8, product: p.name, cpu: 128, memoryGiB: 1024, labels: { pool: p.pool, ...workerSelector }, taints: [gpuTaint] }));
    }
  }
  return nodes;
}

function makeGang(i: number, arrivalMs: number): GangRequest {
  let pick = rand(totalWeight);
  const c = classes.find((x) => (pick -= x.weight) < 0)!;
  return {
    key: `ns-${i % 50}/exp-${i}`,
    classKey: c.key,
    priority: rand(10) === 0 ? 1 : 0,
    arrivalMs,
    workers: c.workers,
    perWorker: c.perWorker,
    eligible: c.eligible,
    explainIneligible: c.explain,
  };
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
const ms = (x: number) => `${x.toFixed(3)} ms`;

interface Run {
  cycleMs: number[];
  /** CPU time of the process during each cycle: what the cycle costs, without waits for a busy machine's cores. */
  cycleCpuMs: number[];
  admittedPerCycle: number[];
  firstCycle: { ms: number; admitted: number; waiting: number };
  eventsMs: number;
  admitted: number;
  completed: number;
  seconds: number;
  deepestQueue: number;
  /** Share of GPUs requested or reserved after each cycle that left gangs waiting. */
  busyGpuShare: number[];
  mostHolding: number;
  waits: Map<string, number[]>;
  heap: { queued: number; at10min: number; end: number };
  model: { pods: number; reservations: number };
}

/**
 * Submits every gang at once, then runs a cycle per simulated second: last cycle's admissions bind (pods counted,
 * reservation released), finished runs' pods go away, and the scheduler admits what fits.
 */
function simulate(): Run {
  const capacity = new CapacityModel();
  for (const n of buildNodes()) capacity.upsertNode(n);
  const scheduler = new GangScheduler(capacity, { starvationMs: 5 * 60_000 });
  const pending = new Map<string, GangRequest>();
  for (let i = 0; i < GANGS; i++) {
    const g = makeGang(i, rand(1000));
    pending.set(g.key, g);
  }
  const run: Run = {
    cycleMs: [],
    cycleCpuMs: [],
    admittedPerCycle: [],
    firstCycle: { ms: 0, admitted: 0, waiting: 0 },
    eventsMs: 0,
    admitted: 0,
    completed: 0,
    seconds: 0,
    deepestQueue: 0,
    busyGpuShare: [],
    mostHolding: 0,
    waits: new Map(),
    heap: { queued: heapMiB(), at10min: 0, end: 0 },
    model: { pods: 0, reservations: 0 },
  };
  const toBind: { g: GangRequest; nodes: string[] }[] = [];
  const endsAt = new Map<number, { g: GangRequest; nodes: string[] }[]>();

  let second = 0;
  for (; run.completed < GANGS && second < 24 * 3600; second++) {
    const now = (second + 1) * 1000; // every gang was submitted during the first simulated second

    const t0 = performance.now();
    for (const { g, nodes } of toBind.splice(0)) {
      nodes.forEach((n, w) => capacity.upsertPod(`${g.key}-${w}`, pod(n, g.perWorker), g.key));
      capacity.release(g.key);
      const end = second + 30 + rand(570);
      let list = endsAt.get(end);
      if (list === undefined) endsAt.set(end, (list = []));
      list.push({ g, nodes });
    }
    for (const { g, nodes } of endsAt.get(second) ?? []) {
      nodes.forEach((_, w) => capacity.removePod(`${g.key}-${w}`));
      run.completed++;
    }
    endsAt.delete(second);
    run.eventsMs += performance.now() - t0;

    if (pending.size === 0) continue;
    run.deepestQueue = Math.max(run.deepestQueue, pending.size);
    const gangs = [...pending.values()];
    const t1 = performance.now();
    const c1 = process.cpuUsage();
    const result = scheduler.cycle(gangs, now);
    const cpu = process.cpuUsage(c1);
    const took = performance.now() - t1;
    run.cycleMs.push(took);
    run.cycleCpuMs.push((cpu.user + cpu.system) / 1000);
    run.admittedPerCycle.push(result.admitted.length);
    run.mostHolding = Math.max(run.mostHolding, scheduler.heldGangs().size);
    if (second === 0) run.firstCycle = { ms: took, admitted: result.admitted.length, waiting: result.waiting.length };
    for (const a of result.admitted) {
      const g = pending.get(a.key)!;
      pending.delete(a.key);
      toBind.push({ g, nodes: a.nodes });
      let w = run.waits.get(g.classKey);
      if (w === undefined) run.waits.set(g.classKey, (w = []));
      w.push((now - g.arrivalMs) / 60_000);
      run.admitted++;
    }
    if (second === 600) run.heap.at10min = heapMiB();
    if (pending.size > 0) {
      const gpus = capacity.summary().gpus;
      run.busyGpuShare.push((gpus.allocated + gpus.reserved) / gpus.total);
    }
  }
  run.seconds = second;
  run.heap.end = heapMiB();
  run.model = { pods: capacity.podCount, reservations: capacity.reservationCount };
  return run;
}

/** CPU time of cycles over a saturated cluster (1 GPU free per node, `queue` gangs wait), and right after a relabel. */
function saturated(queue: number, rounds = 100): { steady: number[]; relabelled: number[] } {
  const full = new CapacityModel();
  for (const n of buildNodes()) {
    full.upsertNode(n);
    full.upsertPod(`busy/${n.name}`, pod(n.name, req(7, 8, 64)));
  }
  const scheduler = new GangScheduler(full);
  const deep = Array.from({ length: queue }, (_, i) => makeGang(GANGS + i, i));
  scheduler.cycle(deep, 0);
  const steady: number[] = [];
  const relabelled: number[] = [];
  const cpuMs = (since: NodeJS.CpuUsage) => {
    const d = process.cpuUsage(since);
    return (d.user + d.system) / 1000;
  };
  for (let i = 0; i < rounds; i++) {
    let t = process.cpuUsage();
    scheduler.cycle(deep, 1000 + i);
    steady.push(cpuMs(t));
    const n = full.node('h100-0000')!;
    full.upsertNode({ ...n, labels: { ...n.labels, flip: String(i) } });
    t = process.cpuUsage();
    scheduler.cycle(deep, 1000 + i);
    relabelled.push(cpuMs(t));
  }
  return { steady: steady.sort((a, b) => a - b), relabelled: relabelled.sort((a, b) => a - b) };
}

function main(): void {
  const heapStart = heapMiB();
  // The first run pays for JIT compilation, as an operator does once after it starts; the second is what a
  // running operator sees.
  const cold = simulate();
  const run = simulate();
  const sat500 = saturated(500);
  const sat5000 = saturated(5000, 20);

  const sorted = [...run.cycleMs].sort((a, b) => a - b);
  const sortedCpu = [...run.cycleCpuMs].sort((a, b) => a - b);
  const totalCpuMs = run.cycleCpuMs.reduce((s, x) => s + x, 0);
  const busy = run.cycleCpuMs.filter((_, i) => run.admittedPerCycle[i]! > 0).sort((a, b) => a - b);
  const totalCycleMs = run.cycleMs.reduce((s, x) => s + x, 0);
  const lines: [string, string][] = [
    ['nodes / GPUs', `${NODES} / ${NODES * 8} (${products.map((p) => `${Math.round(NODES * p.share)} ${p.pool}`).join(', ')})`],
    ['resource classes', classes.map((c) => c.key).join(', ')],
    ['gangs submitted / admitted / completed', `${GANGS} / ${run.admitted} / ${run.completed}`],
    ['simulated time', `${(run.seconds / 60).toFixed(1)} min, one cycle per simulated second`],
    ['cycles run (queue non-empty)', `${run.cycleMs.length}, deepest queue ${run.deepestQueue}`],
    ['first cycle, cold JIT (5,000 queued, empty cluster)', `${ms(cold.firstCycle.ms)}: ${cold.firstCycle.admitted} admitted`],
    ['first cycle, warm', `${ms(run.firstCycle.ms)}: ${run.firstCycle.admitted} admitted, ${run.firstCycle.waiting} waiting`],
    ['cycle wall time p50 / p99 / max', `${ms(percentile(sorted, 50))} / ${ms(percentile(sorted, 99))} / ${ms(sorted.at(-1) ?? 0)}`],
    ['cycle CPU time p50 / p99 / max', `${ms(percentile(sortedCpu, 50))} / ${ms(percentile(sortedCpu, 99))} / ${ms(sortedCpu.at(-1) ?? 0)}`],
    ['cycles that admitted something, CPU p50', `${busy.length} cycles, ${ms(percentile(busy, 50))}`],
    ['admissions per second of cycle wall / CPU time', `${Math.round(run.admitted / (totalCycleMs / 1000))} / ${Math.round(run.admitted / (totalCpuMs / 1000))}`],
    ['pod/node event handling, total', `${ms(run.eventsMs)} for ${run.admitted} gangs bound and completed`],
    ['saturated cycle CPU, 500 waiting: p50 / p99', `${ms(percentile(sat500.steady, 50))} / ${ms(percentile(sat500.steady, 99))}`],
    ['same right after a node relabel, CPU: p50 / p99', `${ms(percentile(sat500.relabelled, 50))} / ${ms(percentile(sat500.relabelled, 99))}`],
    ['saturated cycle CPU, 5,000 waiting: p50 / max', `${ms(percentile(sat5000.steady, 50))} / ${ms(sat5000.steady.at(-1) ?? 0)}`],
    [
      'heap used after gc: start / 5,000 queued / at 10 min / end',
      `${heapStart.toFixed(1)} / ${run.heap.queued.toFixed(1)} / ${run.heap.at10min.toFixed(1)} / ${run.heap.end.toFixed(1)} MiB`,
    ],
    ['model at end: pods counted / reservations', `${run.model.pods} / ${run.model.reservations}`],
    ['most class heads holding nodes at once', String(run.mostHolding)],
    [
      'GPUs busy while gangs wait: mean / min',
      `${((100 * run.busyGpuShare.reduce((s, x) => s + x, 0)) / run.busyGpuShare.length).toFixed(1)} % / ${(100 * Math.min(...run.busyGpuShare)).toFixed(1)} %`,
    ],
    ...classes.map((c): [string, string] => {
      const w = (run.waits.get(c.key) ?? []).sort((a, b) => a - b);
      return [`queue wait ${c.key} (${w.length} gangs): p50 / max`, `${percentile(w, 50).toFixed(1)} / ${(w.at(-1) ?? 0).toFixed(1)} min`];
    }),
  ];
  const width = Math.max(...lines.map(([k]) => k.length));
  console.log(`admission benchmark (node ${process.version}, seed ${args.seed}, load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} CPUs)`);
  for (const [k, v] of lines) console.log(`  ${k.padEnd(width)}  ${v}`);
}

main();
