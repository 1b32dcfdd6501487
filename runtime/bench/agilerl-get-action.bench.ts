// Benchmark (not a test): get_action latency and throughput of one `arena-runtime serve` process with an AgileRL
// DQN CartPole checkpoint, so every request goes through the Python model process (arena_agilerl.serve) and
// AgileRL's own get_action. Loaded over loopback from this script with keep-alive connections. Prints p50/p95/p99
// latency and requests per second for a few concurrency and batch sizes; each run is bounded by a request count and
// a time limit. The load generator shares the machine's cores with both processes: on a small machine the figures
// are a floor. Without --checkpoint, the real AgileRL trainer first trains a tiny checkpoint (about 20 s).
//
//   node --import tsx runtime/bench/agilerl-get-action.bench.ts [--requests 5000] [--seconds 15] [--checkpoint PATH]
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { tempDir, writeKey } from '../serve/testing.ts';
import { trainAgileRl } from '../testing/agilerl.ts';
import { body, printLoadTable, startServer, stopServer } from './get-action-load.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '5000' },
    seconds: { type: 'string', default: '15' },
    checkpoint: { type: 'string' },
  },
});
const maxRequests = Number(values.requests);
const maxSeconds = Number(values.seconds);

const tmp = tempDir('agilerl-get-action-bench-');
const keyFile = join(tmp.dir, 'key');
const KEY = 'bench-key';
writeKey(keyFile, KEY);

const checkpoint = values.checkpoint ?? (await trainAgileRl(tmp.dir, 'bench')).at(-1)!.path;

const { url, server } = await startServer(checkpoint, keyFile);

// One answer before the clock starts: the model process serves, and its first call's set-up is not counted.
{
  const first = await fetch(new URL('/get_action', url), { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: body(1) });
  if (first.status !== 200) throw new Error(`the first get_action answered ${first.status}: ${await first.text()}`);
}

console.log(`AgileRL get_action benchmark: one server process and its model process, ${checkpoint}, loopback, ${availableParallelism()} cores (load ${loadavg()[0]!.toFixed(2)})`);
await printLoadTable(url, KEY, maxRequests, maxSeconds);
await stopServer(server);
tmp.remove();
