// Gymnasium CartPole-v1 episodes played through an agent's Arena endpoint by the platform's own Python client
// (runtime/serve/play_cartpole.py), or by a seeded random policy for comparison.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { resolvePython } from '../../operator/api/platform/verdict.ts';

const SCRIPT = fileURLToPath(new URL('../../runtime/serve/play_cartpole.py', import.meta.url));

export interface Episodes {
  episodes: number;
  mean_length: number;
  lengths: number[];
}

export async function playCartpole(opts: { url?: string; key?: string; episodes: number; seed: number; random?: boolean }): Promise<Episodes> {
  const args = [SCRIPT, '--episodes', String(opts.episodes), '--seed', String(opts.seed)];
  if (opts.random) args.push('--random');
  else args.push('--url', opts.url!);
  // The key travels as the client's own ARENA_API_KEY, not on a command line other users can read.
  const env = { ...process.env, ...(opts.key ? { ARENA_API_KEY: opts.key } : {}) };
  const { stdout } = await promisify(execFile)(resolvePython(), args, { timeout: 300_000, env });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Episodes;
}
