// Benchmark (not a test): get_action latency and throughput of one `arena-runtime serve` process with an AgileRL
// DQN CartPole checkpoint, so every request goes through the Python model process (arena_agilerl.serve) and
// AgileRL's own get_action. Loaded over loopback from this script with keep-alive connections. Prints p50/p95/p99
// latency and requests per second for a few concurrency and batch sizes; each run is bounded by a request count and
// a time limit. The load generator shares the machine's cores with both processes: on a small machine the figures
// are a floor. Without --checkpoint, the real AgileRL trainer first trains a tiny checkpoint (about 20 s).
//
//   node --import tsx runtime/bench/agilerl-get-action.bench.ts [--requests 5000] [--seconds 15] [--checkpoint PATH]
import { spawn, spawnSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { resolvePython } from '../../operator/api/platform/verdict.ts';
import { decodeNpyBase64, encodeNpyBase64, ndarray } from '../npy/npy.ts';
import { tempDir, writeKey } from '../serve/testing.ts';
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

// The model process loads after the server listens: the first answer says it has.
{
  const first = await fetch(new URL('/get_action', url), { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: body(1) });
  if (first.status !== 200) throw new Error(`the first get_action answered ${first.status}: ${await first.text()}`);
}

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

console.log(`AgileRL get_action benchmark: one server process and its model process, ${checkpoint}, loopback, ${availableParallelism()} cores (load ${loadavg()[0]!.toFixed(2)})`);
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
