// Benchmark (not a test): get_action latency and throughput of one `arena-runtime serve` process with a reference
// DQN CartPole checkpoint, loaded over loopback from this script with keep-alive connections. Prints p50/p95/p99
// latency and requests per second for a few concurrency and batch sizes; each run is bounded by a request count
// and a time limit. The load generator shares the machine's cores with the server: on a small machine the
// figures are a floor.
//
//   node --import tsx runtime/bench/get-action.bench.ts [--requests 5000] [--seconds 15] [--checkpoint PATH]
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeNpyBase64, encodeNpyBase64, ndarray } from '../npy/npy.ts';
import { tempDir, writeKey } from '../serve/testing.ts';
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

const cli = fileURLToPath(new URL('../serve/cli.ts', import.meta.url));
const server = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), cli, '--host', '127.0.0.1', '--port', '0', '--checkpoint', checkpoint, '--api-key-file', keyFile], {
  env: { ...process.env, LOG_LEVEL: 'info' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise<URL>((resolve, reject) => {
  server.on('exit', (code) => reject(new Error(`the server exited with ${code}`)));
  createInterface({ input: server.stdout! }).on('line', (line) => {
    const entry = JSON.parse(line) as { msg?: string; url?: string };
    if (entry.msg === 'Serving' && entry.url) resolve(new URL(entry.url));
  });
});

function body(batch: number): string {
  const rng = new Rng(batch);
  const obs = ndarray('f4', [batch, 4], Array.from({ length: batch * 4 }, () => rng.uniform(-0.1, 0.1)));
  return JSON.stringify({ obs: encodeNpyBase64(obs), batch_size: batch });
}

interface Run {
  concurrency: number;
  batch: number;
}

async function run({ concurrency, batch }: Run, requests: number, seconds: number): Promise<{ latencies: number[]; elapsed: number; failures: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const payload = body(batch);
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization: `Bearer ${KEY}` };
  const latencies: number[] = [];
  let failures = 0;
  let issued = 0;
  const deadline = performance.now() + seconds * 1000;
  const one = () =>
    new Promise<void>((resolve) => {
      const start = performance.now();
      const req = request({ host: url.hostname, port: url.port, path: '/get_action', method: 'POST', agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          latencies.push(performance.now() - start);
          if (res.statusCode !== 200) failures++;
          else if (latencies.length === 1) {
            const a = decodeNpyBase64((JSON.parse(Buffer.concat(chunks).toString()) as { action: string }).action);
            if (a.shape[0] !== batch) failures++;
          }
          resolve();
        });
      });
      req.on('error', () => {
        failures++;
        resolve();
      });
      req.end(payload);
    });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < requests && performance.now() < deadline) {
        issued++;
        await one();
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  return { latencies, elapsed, failures };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

console.log(`get_action benchmark: one server process, DQN ${sizes.join('x')}, loopback, ${availableParallelism()} cores (load ${loadavg()[0]!.toFixed(2)})`);
console.log(`each run: at most ${maxRequests} requests or ${maxSeconds} s after ${Math.min(500, maxRequests)} warm-up requests\n`);
console.log('concurrency  batch  requests  failures   p50 ms   p95 ms   p99 ms   req/s   rows/s');
const runs: Run[] = [
  { concurrency: 1, batch: 1 },
  { concurrency: 8, batch: 1 },
  { concurrency: 32, batch: 1 },
  { concurrency: 8, batch: 64 },
];
for (const r of runs) {
  await run(r, Math.min(500, maxRequests), maxSeconds);
  const { latencies, elapsed, failures } = await run(r, maxRequests, maxSeconds);
  const sorted = [...latencies].sort((a, b) => a - b);
  const rps = latencies.length / elapsed;
  console.log(
    [
      String(r.concurrency).padStart(11),
      String(r.batch).padStart(6),
      String(latencies.length).padStart(9),
      String(failures).padStart(9),
      pct(sorted, 50).toFixed(3).padStart(8),
      pct(sorted, 95).toFixed(3).padStart(8),
      pct(sorted, 99).toFixed(3).padStart(8),
      rps.toFixed(0).padStart(7),
      (rps * r.batch).toFixed(0).padStart(8),
    ].join(' '),
  );
}

server.kill('SIGTERM');
await new Promise((resolve) => server.on('exit', resolve));
tmp.remove();
