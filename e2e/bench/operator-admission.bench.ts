// Benchmark (not a test): the whole operator admitting experiments onto simulated GPU nodes on a real control
// plane. Prints the admission rate (created → every worker pod created, and → Running), API requests per worker
// pod, and the operator's memory. Run: node --import tsx e2e/bench/operator-admission.bench.ts [--nodes 1000]
// [--experiments 1000] [--workers 1] [--qps 200 --burst 400] [--reconcile-workers N]
import { createWriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { LocalCluster } from '../cluster/control-plane.ts';
import { installCrds } from '../cluster/crds.ts';
import { createGpuNodes, gpuProducts } from '../cluster/gpu-nodes.ts';
import { waitFor } from '../cluster/wait.ts';
import { Arena, experiment, resourceClass, trainingCluster } from '../support/fixtures.ts';
import { startOperator } from '../../operator/operator.ts';
import { createLogger } from '../../operator/observability/log.ts';
import { GROUP, VERSION } from '../../operator/api/v1alpha1/index.ts';
import type { Experiment } from '../../operator/api/v1alpha1/experiment.ts';
import { Informer, leanPod, type LeanPod } from '../../operator/kube/informer.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000' },
    experiments: { type: 'string', default: '1000' },
    workers: { type: 'string', default: '1' },
    qps: { type: 'string', default: '200' },
    burst: { type: 'string', default: '400' },
    'reconcile-workers': { type: 'string' },
    /** Write the operator's log (info and up) to this file. */
    log: { type: 'string' },
  },
});
const nodeCount = Number(values.nodes);
const expCount = Number(values.experiments);
const workers = Number(values.workers);
const qps = Number(values.qps);
const burst = Number(values.burst);
const reconcileWorkers = values['reconcile-workers'] === undefined ? undefined : Number(values['reconcile-workers']);

const cluster = await LocalCluster.start({ name: `bench-${process.pid}`, largeFleet: true });
try {
  await installCrds(cluster);
  const kc = cluster.kubeConfig();
  const arena = new Arena(kc);
  let t = Date.now();
  await createGpuNodes(kc, { prefix: 'gpu', count: nodeCount, gpus: 8, gpu: gpuProducts.H100 });
  console.log(`${nodeCount} simulated GPU nodes Ready in ${((Date.now() - t) / 1000).toFixed(1)}s`);
  await arena.apply(trainingCluster('onprem'));
  await arena.apply(resourceClass('bench', 'onprem', { nodes: workers, worker: { cpu: '1', memory: '1Gi', gpus: 1 } }));
  await arena.namespace('bench');

  // The benchmark watches (rather than polls) pods and experiments: a list of every pod four times a second
  // costs the API server more than the admissions being measured.
  const created = new Map<string, number>();
  const podSeen = new Map<string, number>();
  const runningSeen = new Map<string, number>();
  const quiet = createLogger({ silent: true });
  const benchPods = new Informer<LeanPod>({ kc, group: '', version: 'v1', plural: 'pods', namespace: 'bench', labelSelector: 'app.kubernetes.io/component=worker', transform: leanPod, logger: quiet });
  const benchExps = new Informer<Experiment>({ kc, group: GROUP, version: VERSION, plural: 'experiments', namespace: 'bench', logger: quiet });
  const onPod = (p: LeanPod) => {
    const exp = p.metadata?.ownerReferences?.[0]?.name;
    if (exp && !podSeen.has(`${exp}#${p.metadata!.name}`)) podSeen.set(`${exp}#${p.metadata!.name}`, Date.now());
  };
  benchPods.on('add', onPod);
  const onExp = (e: Experiment) => {
    if (e.status?.phase === 'Running' && !runningSeen.has(e.metadata!.name!)) runningSeen.set(e.metadata!.name!, Date.now());
  };
  benchExps.on('add', onExp).on('update', onExp);
  await Promise.all([benchPods.start(), benchExps.start()]);

  const registry = new Registry();
  const logger = values.log ? createLogger({ stream: createWriteStream(values.log) }) : createLogger({ silent: true });
  const op = await startOperator({ kc, registry, logger, http: { host: '127.0.0.1', port: 0 }, leaderElect: false, qps, burst, workers: reconcileWorkers });
  const heapBefore = process.memoryUsage().heapUsed;

  // Create the experiments as fast as the API server takes them, a few dozen at a time.
  t = Date.now();
  const names = Array.from({ length: expCount }, (_, i) => `exp-${i}`);
  for (let i = 0; i < names.length; i += 50) {
    await Promise.all(
      names.slice(i, i + 50).map(async (n) => {
        // The tests' 30 s partial-gang timeout is for gangs that never start; here a thousand pods at once queue
        // at kube-scheduler and kwok for longer than that, which is their throughput, not a stuck gang.
        await arena.apply(experiment('bench', n, 'bench', { partialGangTimeoutSeconds: 600 }));
        created.set(n, Date.now());
      }),
    );
  }
  const firstCreated = t;
  console.log(`${expCount} experiments created in ${((Date.now() - t) / 1000).toFixed(1)}s`);

  const podsExpected = expCount * workers;
  let peakRss = 0;
  const progress = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    const by: Record<string, number> = {};
    for (const e of benchExps.list()) by[e.status?.phase ?? 'none'] = (by[e.status?.phase ?? 'none'] ?? 0) + 1;
    console.log(`  ${((Date.now() - firstCreated) / 1000).toFixed(0)}s: ${JSON.stringify(by)} pods ${benchPods.size()}, reconcile queue ${op.internals.controller.queue.len()}`);
  }, 5_000);
  await waitFor(async () => benchPods.size() >= podsExpected, { timeoutMs: 30 * 60_000, what: 'every worker pod', intervalMs: 100 });
  const podsAt = Math.max(...podSeen.values());
  await waitFor(async () => runningSeen.size >= expCount, { timeoutMs: 30 * 60_000, what: 'every experiment Running', intervalMs: 100 });
  const running = Math.max(...runningSeen.values());
  clearInterval(progress);
  // Retries mean admission went wrong somewhere (or the simulated nodes flapped): say how many and why.
  const retried: Record<string, number> = {};
  for (const e of benchExps.list()) {
    if ((e.status?.attempt ?? 1) > 1) retried[e.status?.lastFailure?.reason ?? '?'] = (retried[e.status?.lastFailure?.reason ?? '?'] ?? 0) + 1;
  }
  benchPods.stop();
  benchExps.stop();

  // Each experiment's own latency: its create call returned → its last worker pod was seen; → Running seen.
  const toPods = new Map<string, number>();
  for (const [k, at] of podSeen) {
    const exp = k.slice(0, k.indexOf('#'));
    toPods.set(exp, Math.max(toPods.get(exp) ?? 0, at));
  }
  const pct = (xs: number[], p: number) => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
  const podLat = [...toPods].map(([n, at]) => at - (created.get(n) ?? at));
  const runLat = [...runningSeen].map(([n, at]) => at - (created.get(n) ?? at));
  const metrics = await registry.getMetricsAsJSON();
  const requests = metrics.find((m) => m.name === 'rest_client_requests_total');
  const totalRequests = (requests?.values ?? []).reduce((a, v) => a + Number(v.value), 0);
  const statusWrites = metrics.find((m) => m.name === 'arena_status_writes_total')?.values.filter((v) => v.labels.result === 'written').reduce((a, v) => a + Number(v.value), 0) ?? 0;
  const sum = (name: string, filter: (l: Partial<Record<string, string | number>>) => boolean = () => true) =>
    (metrics.find((m) => m.name === name)?.values ?? []).filter((v) => filter(v.labels)).reduce((a, v) => a + Number(v.value), 0);
  console.log(
    `  reconciles: ${sum('controller_runtime_reconcile_total')} (errors ${sum('controller_runtime_reconcile_errors_total')}), queue retries ${sum('workqueue_retries_total')}, 409s ${sum('rest_client_requests_total', (l) => l.code === '409')}`,
  );
  const mem = process.memoryUsage();
  console.log(`  experiments that needed a second attempt, by reason: ${JSON.stringify(retried)}`);
  console.log(`admission: ${expCount} experiments (${podsExpected} worker pods on ${nodeCount} nodes)`);
  console.log(`  first create -> all worker pods created: ${((podsAt - firstCreated) / 1000).toFixed(1)}s = ${(expCount / ((podsAt - firstCreated) / 1000)).toFixed(1)} admissions/s`);
  console.log(`  first create -> all Running:            ${((running - firstCreated) / 1000).toFixed(1)}s = ${(expCount / ((running - firstCreated) / 1000)).toFixed(1)} experiments/s`);
  console.log(`  per experiment, created -> its pods: p50 ${(pct(podLat, 50) / 1000).toFixed(1)}s p99 ${(pct(podLat, 99) / 1000).toFixed(1)}s; -> Running: p50 ${(pct(runLat, 50) / 1000).toFixed(1)}s p99 ${(pct(runLat, 99) / 1000).toFixed(1)}s`);
  console.log(`  operator API requests: ${totalRequests} (${(totalRequests / podsExpected).toFixed(1)} per worker pod), status writes: ${statusWrites} (${(statusWrites / expCount).toFixed(1)} per experiment)`);
  console.log(`  operator process memory: rss ${(mem.rss / 2 ** 20).toFixed(0)} MiB (peak sampled ${(Math.max(peakRss, mem.rss) / 2 ** 20).toFixed(0)} MiB), heap ${(mem.heapUsed / 2 ** 20).toFixed(0)} MiB (heap before: ${(heapBefore / 2 ** 20).toFixed(0)} MiB)`);
  // Requests before the experiments were created (cache lists, the cluster and class status) are not the
  // admissions' cost; they are in the totals above but small and fixed.
  const byVerb = new Map<string, number>();
  for (const v of metrics.find((m) => m.name === 'arena_api_requests_total')?.values ?? []) {
    const k = `${v.labels.verb} ${v.labels.resource}${v.labels.code === undefined || String(v.labels.code).startsWith('2') ? '' : ` (${v.labels.code})`}`;
    byVerb.set(k, (byVerb.get(k) ?? 0) + Number(v.value));
  }
  console.log('  API requests per experiment, by verb and resource:');
  for (const [k, n] of [...byVerb].sort((a, b) => b[1] - a[1])) console.log(`    ${k.padEnd(36)} ${String(n).padStart(7)}  ${(n / expCount).toFixed(2)}`);
  const hist = (name: string) => {
    const vs = metrics.find((m) => m.name === name)?.values ?? [];
    const total = (suffix: string) => vs.filter((v) => (v as { metricName?: string }).metricName === `${name}_${suffix}`).reduce((a, v) => a + Number(v.value), 0);
    return { sum: total('sum'), count: total('count') };
  };
  const limiterWait = hist('rest_client_rate_limiter_duration_seconds');
  const requestTime = hist('rest_client_request_duration_seconds');
  const reconcileTime = hist('controller_runtime_reconcile_time_seconds');
  const queueWait = hist('workqueue_queue_duration_seconds');
  console.log(
    `  time: reconcile mean ${((reconcileTime.sum / Math.max(1, reconcileTime.count)) * 1000).toFixed(1)} ms over ${reconcileTime.count}, API request mean ${((requestTime.sum / Math.max(1, requestTime.count)) * 1000).toFixed(1)} ms, client rate-limiter wait mean ${((limiterWait.sum / Math.max(1, limiterWait.count)) * 1000).toFixed(1)} ms (total ${limiterWait.sum.toFixed(0)} s), reconcile queue wait mean ${((queueWait.sum / Math.max(1, queueWait.count)) * 1000).toFixed(0)} ms`,
  );
  console.log('  note: the benchmark, the operator and the API server share this machine\'s cores');
  await op.stop();
} finally {
  await cluster.stop();
}
