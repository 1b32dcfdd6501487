// Builders shared by the inference server's tests (not a test file itself).
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { resolvePython } from '../../operator/api/platform/verdict.ts';
import { createLogger } from '../../operator/observability/log.ts';
import { decodeNpy, encodeNpy, encodeNpyBase64, ndarray, type NdArray, type NpyDtype } from '../npy/npy.ts';
import { checkActionMask, checkObservation } from './agilerl-model.ts';
import { badRequest } from './errors.ts';
import type { ActionModel, AgentInfo } from './models.ts';

export const quietLogger = () => createLogger({ silent: true });

export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A stand-in CartPole policy for the server's contract tests (auth, limits, codec, masks, metrics), where what is
 * under test is the HTTP side and a model process would only add seconds: Q(left) = x (cart position), Q(right) =
 * theta (pole angle), so the greedy action is 1 exactly when theta > x, and never one the row's action_mask forbids.
 * It refuses input with the checks and messages of the AgileRL model (shape, dtype, mask) and of its process
 * (non-finite values), so the 400s these tests assert are the ones a deployment answers.
 */
export function linearCartPoleModel(): ActionModel & { agent: AgentInfo } {
  const width = 4;
  const actions = 2;
  return {
    description: 'linear CartPole test policy (action 1 iff theta > x)',
    agent: { algo: 'DQN', multi_agent: false, llm: false, recurrent: false, supervised: false },
    getAction({ obs, batchSize: n, actionMask }) {
      checkObservation(obs, { type: 'Box', shape: [width], dtype: 'float32' }, 'obs', n);
      const rows = obs as NdArray;
      for (let i = 0; i < rows.size; i++) {
        if (!Number.isFinite(rows.number(i))) throw badRequest('obs', `row ${Math.floor(i / width)} holds a non-finite value`);
      }
      if (actionMask != null) checkActionMask(actionMask, actions, n);
      const out = ndarray('i8', [n]);
      for (let k = 0; k < n; k++) {
        const q = [rows.number(k * width), rows.number(k * width + 2)];
        let best = -1;
        for (let a = 0; a < actions; a++) {
          if (actionMask != null && (actionMask as NdArray).number(k * actions + a) === 0) continue;
          if (best < 0 || q[a]! > q[best]!) best = a;
        }
        (out.data as BigInt64Array)[k] = BigInt(best);
      }
      return { action: out };
    },
  };
}

const PLAY_CARTPOLE = fileURLToPath(new URL('./play_cartpole.py', import.meta.url));

/** What play_cartpole.py prints. */
export interface Episodes {
  policy: 'served' | 'random';
  episodes: number;
  mean_length: number;
  lengths: number[];
  /** Batched get_action calls made (0 with --random). */
  requests: number;
}

/**
 * Gymnasium CartPole-v1 episodes played through an endpoint by the platform's own client (play_cartpole.py, the
 * project's Python), or by its seeded random policy. Rejects with the script's stderr when it fails.
 */
export async function playCartpole(opts: { url?: string; key?: string; episodes: number; seed: number; random?: boolean }): Promise<Episodes> {
  const args = [PLAY_CARTPOLE, '--episodes', String(opts.episodes), '--seed', String(opts.seed)];
  if (opts.random) args.push('--random');
  if (opts.url !== undefined) args.push('--url', opts.url);
  // Nothing from the caller's environment may point the client elsewhere: no platform credentials, no proxy. The
  // key goes as the client's own ARENA_API_KEY, not on a command line that other users of the machine can read.
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^ARENA_|proxy/i.test(k))),
    NO_PROXY: '127.0.0.1,localhost',
    ...(opts.key !== undefined ? { ARENA_API_KEY: opts.key } : {}),
  };
  const { stdout } = await promisify(execFile)(resolvePython(), args, { env, timeout: 300_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Episodes;
}

const AGILERL_REFERENCE = fileURLToPath(new URL('./agilerl_reference.py', import.meta.url));

/**
 * AgileRL's own actions for `obs` from a checkpoint's elite member, in evaluation mode, computed in a Python process
 * of its own (agilerl_reference.py, independent of serve.py): one get_action for the whole batch, or one per row.
 */
export async function agilerlActions(folder: string, obs: NdArray, opts: { mode?: 'batch' | 'rows'; mask?: NdArray } = {}): Promise<NdArray> {
  const dir = mkdtempSync(join(tmpdir(), 'agilerl-ref-'));
  try {
    const file = (name: string) => join(dir, name);
    writeFileSync(file('obs.npy'), encodeNpy(obs));
    if (opts.mask) writeFileSync(file('mask.npy'), encodeNpy(opts.mask));
    const args = [AGILERL_REFERENCE, folder, file('obs.npy'), opts.mask ? file('mask.npy') : '-', file('out.npy'), opts.mode ?? 'batch'];
    await promisify(execFile)(resolvePython(), args, { timeout: 120_000 });
    return decodeNpy(new Uint8Array(readFileSync(file('out.npy'))));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
