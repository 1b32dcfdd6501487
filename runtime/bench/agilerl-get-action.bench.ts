// Benchmark (not a test): get_action latency and throughput of one `arena-runtime serve` process with an AgileRL
// DQN CartPole checkpoint, so every request goes through the Python model process (arena_agilerl.serve) and
// AgileRL's own get_action. Loaded over loopback from this script with keep-alive connections. Prints p50/p95/p99
// latency and requests per second for a few concurrency and batch sizes; each run is bounded by a request count and
// a time limit. The load generator shares the machine's cores with both processes: on a small machine the figures
// are a floor. Without --checkpoint, the real AgileRL trainer first trains a tiny checkpoint (about 20 s).
//
//   node --import tsx runtime/bench/agilerl-get-action.bench.ts [--requests 5000] [--seconds 15] [--checkpoint PATH]
import { spawnSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { resolvePython } from '../../operator/api/platform/verdict.ts';
import { tempDir, writeKey } from '../serve/testing.ts';
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

function trainTiny(): string {
  const root = fileURLToPath(new URL('../trainers/agilerl/', import.meta.url));
  const r = spawnSync(resolvePython(), ['-m', 'arena_agilerl'], {
    env: { ...process.env, PYTHONPATH: root, ARENA_MANIFEST: join(root, 'tests/manifests/dqn-cartpole-tiny.json'), ARENA_CHECKPOINT_DIR: tmp.dir, ARENA_RUN: 'bench' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`the trainer exited with ${r.status}`);
  const run = join(tmp.dir, 'run-bench');
  const last = readdirSync(run).filter((f) => /^step-\d+/.test(f)).sort((a, b) => parseInt(a.slice(5), 10) - parseInt(b.slice(5), 10)).at(-1)!;
  return join(run, last);
}
const checkpoint = values.checkpoint ?? trainTiny();

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
