// Builders shared by the inference server's tests (not a test file itself).
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
