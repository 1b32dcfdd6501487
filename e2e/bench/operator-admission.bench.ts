// Benchmark (not a test): the whole operator admitting experiments onto simulated GPU nodes on a real control
// plane. Prints the admission rate (created → every worker pod created, and → Running), API requests per worker
// pod, and the operator's memory. Run: node --import tsx e2e/bench/operator-admission.bench.ts [--nodes 1000]
// [--experiments 1000] [--workers 1]
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

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000' },
    experiments: { type: 'string', default: '1000' },
    workers: { type: 'string', default: '1' },
  },
});
const nodeCount = Number(values.nodes);
const expCount = Number(values.experiments);
const workers = Number(values.workers);

const cluster = await LocalCluster.start({ name: `bench-${process.pid}` });
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

  const registry = new Registry();
  const op = await startOperator({ kc, registry, logger: createLogger({ silent: true }), http: { host: '127.0.0.1', port: 0 }, leaderElect: false, qps: 200, burst: 400 });
  const heapBefore = process.memoryUsage().heapUsed;

  // Create the experiments as fast as the API server takes them, a few dozen at a time.
  t = Date.now();
  const names = Array.from({ length: expCount }, (_, i) => `exp-${i}`);
  for (let i = 0; i < names.length; i += 50) {
    await Promise.all(names.slice(i, i + 50).map((n) => arena.apply(experiment('bench', n, 'bench'))));
  }
  const created = Date.now();
  console.log(`${expCount} experiments created in ${((created - t) / 1000).toFixed(1)}s`);

  const podsExpected = expCount * workers;
  const countPhases = async () => {
    const list = (await arena.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'experiments', namespace: 'bench' })) as {
      items: { status?: { phase?: string } }[];
    };
    const by: Record<string, number> = {};
    for (const e of list.items) by[e.status?.phase ?? 'none'] = (by[e.status?.phase ?? 'none'] ?? 0) + 1;
    return by;
  };
  let podsAt = 0;
  const progress = setInterval(() => {
    void countPhases().then((by) => console.log(`  ${((Date.now() - created) / 1000).toFixed(0)}s: ${JSON.stringify(by)}`));
  }, 10_000);
  await waitFor(
    async () => {
      // (remainingItemCount is not reported for label-selected lists, so count the items.)
      const n = (await arena.core.listNamespacedPod({ namespace: 'bench', labelSelector: 'app.kubernetes.io/component=worker' })).items.length;
      if (n >= podsExpected && !podsAt) podsAt = Date.now();
      return n >= podsExpected;
    },
    { timeoutMs: 30 * 60_000, what: 'every worker pod', intervalMs: 250 },
  );
  await waitFor(async () => (await countPhases()).Running === expCount, { timeoutMs: 30 * 60_000, what: 'every experiment Running', intervalMs: 500 });
  const running = Date.now();
  clearInterval(progress);

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
  console.log(`admission: ${expCount} experiments (${podsExpected} worker pods on ${nodeCount} nodes)`);
  console.log(`  created -> all worker pods created: ${((podsAt - created) / 1000).toFixed(1)}s = ${(expCount / ((podsAt - created) / 1000)).toFixed(0)} admissions/s`);
  console.log(`  created -> all Running:            ${((running - created) / 1000).toFixed(1)}s = ${(expCount / ((running - created) / 1000)).toFixed(0)} experiments/s`);
  console.log(`  operator API requests: ${totalRequests} (${(totalRequests / podsExpected).toFixed(1)} per worker pod), status writes: ${statusWrites} (${(statusWrites / expCount).toFixed(1)} per experiment)`);
  console.log(`  operator process memory: rss ${(mem.rss / 2 ** 20).toFixed(0)} MiB, heap ${(mem.heapUsed / 2 ** 20).toFixed(0)} MiB (heap before: ${(heapBefore / 2 ** 20).toFixed(0)} MiB)`);
  console.log('  note: the benchmark, the operator and the API server share this machine\'s cores');
  await op.stop();
} finally {
  await cluster.stop();
}
