// The load side of the get_action benchmark (agilerl-get-action.bench.ts): one `arena-runtime serve` process on a
// checkpoint, driven over loopback with keep-alive connections at a few concurrency and batch sizes, each run
// bounded by a request count and a time limit; prints p50/p95/p99 latency and requests (and rows) per second. The
// load generator shares the machine's cores with the server: on a small machine the figures are a floor.
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { decodeNpyBase64, encodeNpyBase64, ndarray } from '../npy/npy.ts';
import { Rng } from '../testing/rng.ts';

export interface Run {
  concurrency: number;
  batch: number;
}

export const RUNS: readonly Run[] = [
  { concurrency: 1, batch: 1 },
  { concurrency: 8, batch: 1 },
  { concurrency: 32, batch: 1 },
  { concurrency: 8, batch: 64 },
];

/** A get_action body of `batch` CartPole observations. */
export function body(batch: number): string {
  const rng = new Rng(batch);
  const obs = ndarray('f4', [batch, 4], Array.from({ length: batch * 4 }, () => rng.uniform(-0.1, 0.1)));
  return JSON.stringify({ obs: encodeNpyBase64(obs), batch_size: batch });
}

/** `arena-runtime serve` on the checkpoint, once it says where it serves. */
export async function startServer(checkpoint: string, keyFile: string): Promise<{ url: URL; server: ChildProcess }> {
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
  return { url, server };
}

export async function stopServer(server: ChildProcess): Promise<void> {
  server.kill('SIGTERM');
  await new Promise((resolve) => server.on('exit', resolve));
}

async function run(url: URL, key: string, { concurrency, batch }: Run, requests: number, seconds: number): Promise<{ latencies: number[]; elapsed: number; failures: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const payload = body(batch);
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization: `Bearer ${key}` };
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

/** Each run after a warm-up, one table row per run. */
export async function printLoadTable(url: URL, key: string, maxRequests: number, maxSeconds: number): Promise<void> {
  console.log(`each run: at most ${maxRequests} requests or ${maxSeconds} s after ${Math.min(500, maxRequests)} warm-up requests\n`);
  console.log('concurrency  batch  requests  failures   p50 ms   p95 ms   p99 ms   req/s   rows/s');
  for (const r of RUNS) {
    await run(url, key, r, Math.min(500, maxRequests), maxSeconds);
    const { latencies, elapsed, failures } = await run(url, key, r, maxRequests, maxSeconds);
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
}
