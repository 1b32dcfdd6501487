// The real AgileRL trainer (runtime/trainers/agilerl) for tests and benchmarks that need what it writes: its tiny
// manifest, and one run of it to a checkpoint folder. Not a test file itself.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolvePython } from '../../operator/api/platform/verdict.ts';
import type { Manifest } from '../../operator/api/v1alpha1/manifest.ts';
import { AGILERL_METADATA } from '../serve/agilerl-model.ts';

const AGILERL_TRAINER = fileURLToPath(new URL('../trainers/agilerl/', import.meta.url));

/** The AgileRL trainer's own tiny DQN CartPole manifest (pop 2, 4 envs, 2,000 steps per member), a fresh copy. */
export function tinyDqnManifest(): Manifest {
  return JSON.parse(readFileSync(join(AGILERL_TRAINER, 'tests/manifests/dqn-cartpole-tiny.json'), 'utf8')) as Manifest;
}

export interface TrainedCheckpoint {
  /** The checkpoint folder, as the trainer reported it. */
  path: string;
  step: number;
  /** The best member's fitness, from arena-checkpoint.json. */
  evaluationScore: number | null;
}

/**
 * One run of the real AgileRL trainer (`python -m arena_agilerl`, the project's Python) on `manifest`, writing
 * under `dir`; its checkpoints in step order. Rejects with the trainer's output when it fails.
 */
export async function trainAgileRl(dir: string, run: string, manifest: unknown = tinyDqnManifest()): Promise<TrainedCheckpoint[]> {
  const manifestPath = join(dir, `manifest-${run}.json`);
  writeFileSync(manifestPath, JSON.stringify(manifest));
  const env = { ...process.env, PYTHONPATH: AGILERL_TRAINER, ARENA_MANIFEST: manifestPath, ARENA_CHECKPOINT_DIR: dir, ARENA_RUN: run };
  const child = spawn(resolvePython(), ['-m', 'arena_agilerl'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-4000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0) throw new Error(`the AgileRL trainer exited with ${code}:\n${out}`);
  const runDir = join(dir, `run-${run}`);
  return readdirSync(runDir)
    .filter((f) => /^step-\d+/.test(f) && existsSync(join(runDir, f, AGILERL_METADATA)))
    .map((f) => {
      const meta = JSON.parse(readFileSync(join(runDir, f, AGILERL_METADATA), 'utf8')) as { step: number; evaluation_score: number | null };
      return { path: join(runDir, f), step: meta.step, evaluationScore: meta.evaluation_score };
    })
    .sort((a, b) => a.step - b.step);
}
