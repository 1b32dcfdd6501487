// Checkpoints of the reference trainer: one JSON file per checkpoint holding the best agent's network and
// hyperparameters, written atomically (temporary file, then rename) so a reader never sees half a file.
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DqnHyperparameters } from './agent.ts';
import { layout } from './mlp.ts';

export const CHECKPOINT_FORMAT = 'arena.dqn-cartpole/v1';

export interface DqnCheckpoint {
  format: typeof CHECKPOINT_FORMAT;
  /** Environment steps per agent when it was written. */
  step: number;
  trainingScore?: number;
  evaluationScore?: number;
  createdAt: string;
  environment: 'CartPole-v1';
  seed: number;
  hyperparameters: DqnHyperparameters;
  network: {
    /** Layer widths from observation to actions, e.g. [4, 64, 64, 2]. */
    sizes: number[];
    activation: 'relu';
    /** Float32 little-endian, per layer: the outputs x inputs weight matrix (row-major), then the biases. */
    weights: string;
  };
  /** True for the checkpoint written because training was asked to stop. */
  final?: boolean;
}

export function checkpointFile(dir: string, run: string, step: number): string {
  return join(dir, `run-${run}`, `step-${step}.json`);
}

export function encodeWeights(params: Float32Array): string {
  const le = new DataView(new ArrayBuffer(params.length * 4));
  params.forEach((v, i) => le.setFloat32(i * 4, v, true));
  return Buffer.from(le.buffer).toString('base64');
}

export function decodeWeights(encoded: string): Float32Array {
  const bytes = Buffer.from(encoded, 'base64');
  if (bytes.length % 4 !== 0) throw new Error('Checkpoint is corrupt: the weights are not a whole number of float32 values');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

/** Writes the checkpoint; returns where and how large. */
export function writeCheckpoint(path: string, checkpoint: DqnCheckpoint): { path: string; sizeBytes: number } {
  mkdirSync(join(path, '..'), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(checkpoint));
  renameSync(tmp, path);
  return { path, sizeBytes: statSync(path).size };
}

/**
 * Reads a checkpoint file, or the highest step-N.json in a folder (a resume location may name either). Throws
 * with a message the failure diagnosis recognises when the file is not a checkpoint of this trainer.
 */
export function readCheckpoint(location: string): { checkpoint: DqnCheckpoint; params: Float32Array; path: string } {
  let path = location;
  if (statSync(location).isDirectory()) {
    const steps = readdirSync(location)
      .map((f) => /^step-(\d+)\.json$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .sort((a, b) => Number(b[1]) - Number(a[1]));
    if (steps.length === 0) throw new Error(`FileNotFoundError: Checkpoint step_N not found in ${location}`);
    path = join(location, steps[0]![0]);
  }
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Partial<DqnCheckpoint>;
  if (raw.format !== CHECKPOINT_FORMAT) {
    throw new Error(`ValueError: Checkpoint architecture mismatch: ${path} is ${String(raw.format ?? 'not a checkpoint')}, expected ${CHECKPOINT_FORMAT}`);
  }
  const sizes = raw.network?.sizes ?? [];
  const params = decodeWeights(raw.network?.weights ?? '');
  const expected = layout(sizes).count;
  if (sizes.length < 2 || params.length !== expected) {
    throw new Error(`RuntimeError: Error(s) in loading state_dict: size mismatch: layers ${sizes.join('x')} need ${expected} parameters, the checkpoint has ${params.length}`);
  }
  return { checkpoint: raw as DqnCheckpoint, params, path };
}
