// Builders shared by the inference server's tests (not a test file itself).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../operator/observability/log.ts';
import { encodeNpyBase64, ndarray, type NpyDtype } from '../npy/npy.ts';
import { checkpointFile, encodeWeights, writeCheckpoint } from '../trainers/dqn-cartpole/checkpoint.ts';

export const quietLogger = () => createLogger({ silent: true });

export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A one-layer DQN checkpoint with Q = W x: Q(left) = x (cart position), Q(right) = theta (pole angle), so the
 * greedy action is 1 exactly when theta > x.
 */
export function linearCheckpoint(dir: string): string {
  const weights = Float32Array.from([1, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
  return writeCheckpoint(checkpointFile(dir, 'linear', 1), {
    format: 'arena.dqn-cartpole/v1',
    step: 1,
    createdAt: new Date(0).toISOString(),
    environment: 'CartPole-v1',
    seed: 1,
    hyperparameters: { batch_size: 1, lr: 1, learn_step: 1, gamma: 1, tau: 1 },
    network: { sizes: [4, 2], activation: 'relu', weights: encodeWeights(weights) },
  }).path;
}

export function writeKey(path: string, key: string): void {
  writeFileSync(path, `${key}\n`);
}

/** Rows as one base64 .npy array of shape (rows, width). */
export function rowsB64(rows: number[][], dtype: NpyDtype = 'f4'): string {
  return encodeNpyBase64(ndarray(dtype, [rows.length, rows[0]?.length ?? 0], rows.flat()));
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read reply fields freely
  json: any;
}

export async function call(
  base: string,
  method: string,
  path: string,
  opts: { body?: unknown; raw?: string | Uint8Array; key?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key !== undefined) headers.authorization = `Bearer ${opts.key}`;
  let body: string | Uint8Array | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A small fake of SGLang's native HTTP API (/health, /generate, streamed or not) on loopback. */
export interface FakeEngine {
  url: string;
  healthy: boolean;
  /** Stream only the new piece in each event (SGLang's --incremental-streaming-output). */
  incremental: boolean;
  requests: { text: string | string[]; sampling_params: Record<string, number>; stream?: boolean }[];
  /** Resolves when the response to a "SLOW" prompt (one piece, then nothing) is closed by the other side. */
  slowClosed: Promise<void>;
  close(): Promise<void>;
}

/** What the fake model answers: the prompt's length, so a test can tell which text the engine got. */
export const completionOf = (text: string) => ` -> ${text.length}`;

async function readBody(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const c of req) s += String(c);
  return s;
}

export async function startFakeEngine(): Promise<FakeEngine> {
  let slowClosed!: () => void;
  const engine: Partial<FakeEngine> = { healthy: false, incremental: false, requests: [], slowClosed: new Promise((resolve) => (slowClosed = resolve)) };
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (req.method === 'GET' && req.url === '/health') {
        res.writeHead(engine.healthy ? 200 : 503).end();
        return;
      }
      if (req.method !== 'POST' || req.url !== '/generate') {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(await readBody(req)) as FakeEngine['requests'][number];
      engine.requests!.push(body);
      const texts = Array.isArray(body.text) ? body.text : [body.text];
      if (texts.some((t) => t.includes('FAIL500'))) {
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"error": "boom"}');
        return;
      }
      if (!body.stream) {
        const out = texts.map((t) => ({ text: completionOf(t), meta_info: { prompt_tokens: t.length, completion_tokens: 3 } }));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(Array.isArray(body.text) ? out : out[0]));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (texts[0]!.includes('SLOW')) {
        res.on('close', slowClosed);
        res.write(`data: ${JSON.stringify({ text: 'Once' })}\n\n`);
        return;
      }
      const pieces = ['Hel', 'lo w', 'orld!'];
      let sofar = '';
      for (const [i, p] of pieces.entries()) {
        sofar += p;
        res.write(`data: ${JSON.stringify({ text: engine.incremental ? p : sofar, meta_info: { completion_tokens: i + 1 } })}\n\n`);
        if (texts[0]!.includes('FAIL_MIDSTREAM')) {
          res.end(`data: ${JSON.stringify({ error: { message: 'CUDA out of memory' } })}\n\n`);
          return;
        }
      }
      res.end('data: [DONE]\n\n');
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as { port: number };
  engine.url = `http://127.0.0.1:${addr.port}`;
  engine.close = () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return engine as FakeEngine;
}
