// Benchmark (not a test): how long a fleet of simulated GPU nodes takes to be Ready and schedulable (Ready, and
// the node lifecycle controller's not-ready taint lifted), which every other benchmark waits for first.
// Run: node --import tsx e2e/bench/fleet.bench.ts [--nodes 1000] [--test-defaults]
// --test-defaults starts the cluster as the cluster tests do (10 s leases, 20-45 s heartbeats) instead of with
// the large-fleet settings the benchmarks use.
import { parseArgs } from 'node:util';
import { LocalCluster } from '../cluster/control-plane.ts';
import { createGpuNodes, gpuProducts } from '../cluster/gpu-nodes.ts';

const { values } = parseArgs({
  options: { nodes: { type: 'string', default: '1000' }, 'test-defaults': { type: 'boolean', default: false } },
});
const count = Number(values.nodes);
if (!Number.isInteger(count) || count < 1) throw new Error(`--nodes must be a positive integer, got ${values.nodes}`);

const cluster = await LocalCluster.start({ name: `fleet-${process.pid}`, largeFleet: !values['test-defaults'] });
try {
  const t = Date.now();
  await createGpuNodes(cluster.kubeConfig(), { prefix: 'gpu', count, gpus: 8, gpu: gpuProducts.H100 });
  const s = (Date.now() - t) / 1000;
  console.log(`fleet: ${count} simulated GPU nodes Ready and schedulable in ${s.toFixed(1)}s (${(count / s).toFixed(0)} nodes/s)${values['test-defaults'] ? ', test defaults' : ''}`);
} finally {
  await cluster.stop();
}
