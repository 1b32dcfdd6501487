// Status API benchmark: the router over in-memory caches holding 1,000 nodes' worth of cluster status, 5,000
// experiments and 200 deployments, polled over loopback HTTP by closed-loop clients running in a worker thread (so
// the load generator does not share the server's event loop). It measures the server, not the API server. Also times
// the TrainingCluster and ResourceClass status computations over 1,000 nodes. Prints figures, exits 0.
//
//   node --import tsx e2e/bench/status-api.bench.ts [--seconds 4] [--concurrency 16]
import { Worker } from 'node:worker_threads';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import express from 'express';
import type { Deployment } from '../../operator/api/v1alpha1/deployment.ts';
import type { Experiment } from '../../operator/api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../../operator/api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../operator/api/v1alpha1/trainingcluster.ts';
import { createLogger } from '../../operator/observability/log.ts';
import { CapacityModel, type NodeInfo } from '../../operator/scheduler/capacity.ts';
import { classFit } from '../../operator/scheduler/admission.ts';
import { classEligibility } from '../../operator/scheduler/eligibility.ts';
import { node, pod, req } from '../../operator/scheduler/testing.ts';
import { desiredTrainingClusterStatus, selects } from '../../operator/controllers/trainingcluster/status.ts';
import { desiredResourceClassStatus } from '../../operator/controllers/resourceclass/status.ts';
import { perWorker, queueCounts } from '../../operator/controllers/resourceclass/reconcile.ts';
import { TokenSet } from '../../operator/status-api/auth.ts';
import { STATUS_API_PATH, statusApiRouter } from '../../operator/status-api/router.ts';
import { MemoryCollection, generatedDeployment, generatedExperiment } from '../../operator/status-api/testing.ts';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, concurrency: { type: 'string', default: '16' } } });
const SECONDS = Number(args.seconds);
const CONCURRENCY = Number(args.concurrency);
const NODES = 1000;
const EXPERIMENTS = 5000;
const DEPLOYMENTS = 200;
const TOKEN = 'bench-token';

// --- caches -------------------------------------------------------------------------------------------------------

const products = [
  { name: 'NVIDIA-H100-80GB-HBM3', major: 9, minor: 0, memory: 81559, share: 0.4 },
  { name: 'NVIDIA-A100-SXM4-80GB', major: 8, minor: 0, memory: 81920, share: 0.4 },
  { name: 'NVIDIA-L4', major: 8, minor: 9, memory: 23034, share: 0.2 },
];
const nodes: NodeInfo[] = [];
for (let i = 0; i < NODES; i++) {
  const p = i < NODES * 0.4 ? products[0]! : i < NODES * 0.8 ? products[1]! : products[2]!;
  nodes.push(
    node(`gpu-${String(i).padStart(4, '0')}`, {
      gpus: 8,
      product: p.name,
      ready: i % 97 !== 0,
      labels: {
        pool: p.name.split('-')[1]!.toLowerCase(),
        'arena.agilerl.com/worker': 'true',
        'nvidia.com/gpu.memory': String(p.memory),
        'nvidia.com/gpu.compute.major': String(p.major),
        'nvidia.com/gpu.compute.minor': String(p.minor),
      },
    }),
  );
}
const capacity = new CapacityModel();
for (const n of nodes) capacity.upsertNode(n);
nodes.forEach((n, i) => {
  if (i % 2 === 0) capacity.upsertPod(`p-${i}`, pod(n.name, req(4, 8, 64)));
});

const classNames = ['h100-1x1', 'h100-1x8', 'h100-4x8', 'a100-2x4', 'a100-1x2', 'l4-1x1', 'l4-8x1'];
const experimentList: Experiment[] = Array.from({ length: EXPERIMENTS }, (_, i) => generatedExperiment(i, { namespaces: 20, classes: classNames }));

const clusterSpec: TrainingCluster = {
  metadata: { name: 'onprem', generation: 1 },
  spec: {
    workerNodeSelector: { 'arena.agilerl.com/worker': 'true' },
    setupBundle: { version: '1.0.0', images: { runtime: 'r:1' } },
    currentBundleVersion: '1.1.0',
    checkpointStorage: { hostPath: { path: '/c' } },
  },
};

function timeIt<T>(runs: number, fn: () => T): { ms: number; result: T } {
  let result!: T;
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) result = fn();
  return { ms: (performance.now() - t0) / runs, result };
}

const tcTiming = timeIt(50, () =>
  desiredTrainingClusterStatus({
    cluster: clusterSpec,
    nodes,
    capacity: capacity.summary((n) => selects(clusterSpec.spec.workerNodeSelector, n.labels)),
    now: new Date(),
  }),
);
const cluster: TrainingCluster = { ...clusterSpec, status: tcTiming.result };

const classes: ResourceClass[] = classNames.map((name) => {
  const [pool, shape] = name.split('-') as [string, string];
  const [workers, gpus] = shape.split('x').map(Number) as [number, number];
  return { metadata: { name, generation: 1 }, spec: { trainingCluster: 'onprem', nodes: workers, nodeSelector: { pool }, worker: { cpu: String(2 * gpus), memory: `${16 * gpus}Gi`, gpus }, creditsPerNodeHour: 2.5 * gpus } };
});
const byClass = new Map<string, Experiment[]>();
for (const e of experimentList) byClass.set(e.spec.resourceClass!, [...(byClass.get(e.spec.resourceClass!) ?? []), e]);
const rcTiming = timeIt(20, () =>
  classes.map((c) => {
    const filter = classEligibility({ workerNodeSelector: clusterSpec.spec.workerNodeSelector, nodeSelector: c.spec.nodeSelector, gpus: c.spec.worker!.gpus!, tolerations: [] });
    const fit = classFit(capacity, filter.eligible, c.spec.nodes, perWorker(c));
    return desiredResourceClassStatus({ cls: c, cluster, fit, ...queueCounts(byClass.get(c.metadata!.name!) ?? []), now: new Date() });
  }),
);
classes.forEach((c, i) => (c.status = rcTiming.result[i]));

const experiments = new MemoryCollection<Experiment>(experimentList);
const deployments = new MemoryCollection<Deployment>(Array.from({ length: DEPLOYMENTS }, (_, i) => generatedDeployment(i)));
const clusters = new MemoryCollection<TrainingCluster>([cluster]);
const classCol = new MemoryCollection<ResourceClass>(classes);

// --- server -------------------------------------------------------------------------------------------------------

const tokens = new TokenSet();
tokens.update({ token: TOKEN });
let invalidate = false;
/** Server-side time per request, from the router's first middleware to the last byte handed to the socket. */
let serverMs: number[] = [];
const app = express();
app.set('etag', false);
app.use((_req, res, next) => {
  const t0 = performance.now();
  res.on('finish', () => serverMs.push(performance.now() - t0));
  next();
});
// For the "cache always cold" runs: every request sees a new cache version, as if objects changed between polls.
app.use((_req, _res, next) => {
  if (invalidate) {
    experiments.touch();
    deployments.touch();
  }
  next();
});
app.use(STATUS_API_PATH, statusApiRouter({ sources: { experiments, deployments, clusters, classes: classCol }, tokens, rateLimit: false, logger: createLogger({ silent: true }) }));
const server = await new Promise<Server>((resolve) => {
  const s = app.listen(0, '127.0.0.1', () => resolve(s));
});
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${STATUS_API_PATH}`;

// --- load ---------------------------------------------------------------------------------------------------------

// Plain JavaScript so the worker needs no TypeScript loader. Each of `concurrency` loops sends a request, waits for
// the answer, and records its latency, until the time is up.
const workerCode = `
const { parentPort, workerData } = require('node:worker_threads');
const { paths, headers, seconds, concurrency } = workerData;
(async () => {
  const latencies = [];
  const statuses = {};
  let bytes = 0;
  let i = 0;
  const end = performance.now() + seconds * 1000;
  const loop = async () => {
    while (performance.now() < end) {
      const path = paths[i++ % paths.length];
      const t0 = performance.now();
      const res = await fetch(path, { headers });
      const body = await res.arrayBuffer();
      latencies.push(performance.now() - t0);
      bytes += body.byteLength;
      statuses[res.status] = (statuses[res.status] || 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  parentPort.postMessage({ latencies, statuses, bytes });
})();
`;

interface LoadResult {
  latencies: number[];
  statuses: Record<string, number>;
  bytes: number;
}

function load(paths: string[], headers: Record<string, string>): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(workerCode, { eval: true, workerData: { paths, headers, seconds: SECONDS, concurrency: CONCURRENCY } });
    w.once('message', (m: LoadResult) => {
      void w.terminate();
      resolve(m);
    });
    w.once('error', reject);
  });
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const rows: string[][] = [];

async function scenario(name: string, paths: string[], opts: { etag?: boolean; cold?: boolean; noToken?: boolean } = {}): Promise<void> {
  const headers: Record<string, string> = opts.noToken ? {} : { authorization: `Bearer ${TOKEN}` };
  if (opts.etag) {
    const res = await fetch(paths[0]!, { headers });
    await res.arrayBuffer();
    headers['if-none-match'] = res.headers.get('etag')!;
  }
  invalidate = opts.cold ?? false;
  // Warm-up: JIT and, for warm scenarios, the answer cache.
  await Promise.all(paths.slice(0, 50).map(async (p) => (await fetch(p, { headers })).arrayBuffer()));
  serverMs = [];
  const elu0 = performance.eventLoopUtilization();
  const r = await load(paths, headers);
  const elu = performance.eventLoopUtilization(elu0);
  invalidate = false;
  const sorted = r.latencies.sort((a, b) => a - b);
  const server = serverMs.sort((a, b) => a - b);
  const n = sorted.length;
  rows.push([
    name,
    String(Math.round(n / SECONDS)),
    pct(sorted, 50).toFixed(2),
    pct(sorted, 95).toFixed(2),
    pct(sorted, 99).toFixed(2),
    pct(server, 50).toFixed(2),
    pct(server, 99).toFixed(2),
    ((elu.active * 1000) / Math.max(1, n)).toFixed(0),
    (r.bytes / Math.max(1, n) / 1024).toFixed(1),
    Object.entries(r.statuses)
      .map(([s, c]) => `${s}×${c}`)
      .join(' '),
  ]);
}

const pageUrls: string[] = [];
{
  let cont: string | undefined;
  do {
    const res = await fetch(`${base}/experiments?limit=100${cont ? `&continue=${cont}` : ''}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await res.json()) as { metadata: { continue?: string } };
    pageUrls.push(`${base}/experiments?limit=100${cont ? `&continue=${cont}` : ''}`);
    cont = body.metadata.continue;
  } while (cont);
}
const detailUrls = experimentList.filter((_, i) => i % 7 === 0).map((e) => `${base}/experiments/${e.metadata!.namespace}/${e.metadata!.name}`);

await scenario('GET /cluster, If-None-Match (304)', [`${base}/cluster`], { etag: true });
await scenario('GET /cluster (200, answer kept)', [`${base}/cluster`]);
await scenario('GET /cluster, caches change every poll', [`${base}/cluster`], { cold: true });
await scenario('GET /experiments?limit=100, all 50 pages', pageUrls);
await scenario('  same, caches change every poll', pageUrls, { cold: true });
await scenario('GET /experiments?namespace&phase&limit=100', [`${base}/experiments?namespace=ns-3&phase=Running,Pending&limit=100`], { cold: true });
await scenario('GET /experiments/{ns}/{name}', detailUrls);
await scenario('GET /deployments?limit=200, changing', [`${base}/deployments?limit=200`], { cold: true });
await scenario('GET /usage (30 days, 5,000 experiments)', [`${base}/usage`]);
await scenario('GET /usage?format=csv', [`${base}/usage?format=csv`]);
await scenario('no token (401)', [`${base}/cluster`], { noToken: true });

server.closeAllConnections();
server.close();

const header = ['scenario', 'polls/s', 'p50 ms', 'p95 ms', 'p99 ms', 'srv p50', 'srv p99', 'busy µs/poll', 'KiB/answer', 'statuses'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(`status API benchmark: ${NODES} nodes, ${EXPERIMENTS} experiments, ${DEPLOYMENTS} deployments, ${classes.length} classes`);
console.log(`${CONCURRENCY} concurrent clients for ${SECONDS}s per scenario (closed loop, loopback, client in a worker thread); ${availableParallelism()} CPUs, load ${loadavg()[0]!.toFixed(2)}`);
console.log(`TrainingCluster status over ${NODES} nodes: ${tcTiming.ms.toFixed(2)} ms per reconcile; ${classes.length} ResourceClass statuses (classFit): ${rcTiming.ms.toFixed(2)} ms for all`);
console.log('p50/p95/p99: client-side latency; srv: in the server from first middleware to finish; busy: server event-loop time per poll');
console.log(line(header));
for (const r of rows) console.log(line(r));
