// Benchmark (not a test): get_action latency and throughput of one `arena-runtime serve` process with a reference
// DQN CartPole checkpoint, loaded over loopback from this script with keep-alive connections. Prints p50/p95/p99
// latency and requests per second for a few concurrency and batch sizes; each run is bounded by a request count
// and a time limit. The load generator shares the machine's cores with the server: on a small machine the
// figures are a floor.
//
//   node --import tsx runtime/bench/get-action.bench.ts [--requests 5000] [--seconds 15] [--checkpoint PATH]
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { tempDir, writeKey } from '../serve/testing.ts';
import { printLoadTable, startServer, stopServer } from './get-action-load.ts';
import { checkpointFile, encodeWeights, writeCheckpoint } from '../trainers/dqn-cartpole/checkpoint.ts';
import { Mlp } from '../trainers/dqn-cartpole/mlp.ts';
import { Rng } from '../trainers/dqn-cartpole/rng.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '5000' },
    seconds: { type: 'string', default: '15' },
    checkpoint: { type: 'string' },
  },
});
const maxRequests = Number(values.requests);
const maxSeconds = Number(values.seconds);

const tmp = tempDir('get-action-bench-');
const keyFile = join(tmp.dir, 'key');
const KEY = 'bench-key';
writeKey(keyFile, KEY);

// The network of the demo manifest's size class (64x64 hidden); the weights do not change the cost.
const sizes = [4, 64, 64, 2];
const checkpoint =
  values.checkpoint ??
  writeCheckpoint(checkpointFile(tmp.dir, 'bench', 1), {
    format: 'arena.dqn-cartpole/v1',
    step: 1,
    createdAt: new Date().toISOString(),
    environment: 'CartPole-v1',
    seed: 1,
    hyperparameters: { batch_size: 64, lr: 1e-3, learn_step: 1, gamma: 0.99, tau: 0.01 },
    network: { sizes, activation: 'relu', weights: encodeWeights(Mlp.random(sizes, new Rng(1)).params) },
  }).path;

const { url, server } = await startServer(checkpoint, keyFile);

console.log(`get_action benchmark: one server process, DQN ${sizes.join('x')}, loopback, ${availableParallelism()} cores (load ${loadavg()[0]!.toFixed(2)})`);
await printLoadTable(url, KEY, maxRequests, maxSeconds);
await stopServer(server);
tmp.remove();
