// What AgileRL itself makes of a checkpoint the cluster wrote: the tests' independent check that a checkpoint is
// AgileRL's own (it loads outside the operator and the runtime) and that an agent serves what AgileRL computes.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { resolvePython } from '../../operator/api/platform/verdict.ts';
import { decodeNpy, encodeNpy, type NdArray } from '../../runtime/npy/npy.ts';

const REFERENCE = fileURLToPath(new URL('../../runtime/serve/agilerl_reference.py', import.meta.url));

/** The checkpoint folder's arena-checkpoint.json (the trainer's metadata next to AgileRL's .pt files). */
export interface CheckpointMetadata {
  step: number;
  algorithm: string;
  elite: string;
  final?: boolean;
  agents: { file: string }[];
}

export function readCheckpointMetadata(folder: string): CheckpointMetadata {
  return JSON.parse(readFileSync(join(folder, 'arena-checkpoint.json'), 'utf8')) as CheckpointMetadata;
}

/** AgileRL's actions for `obs` from the checkpoint's elite member, loaded by AgileRL in a process of its own. */
export async function agilerlActions(folder: string, obs: NdArray): Promise<NdArray> {
  const dir = mkdtempSync(join(tmpdir(), 'agilerl-ref-'));
  try {
    writeFileSync(join(dir, 'obs.npy'), encodeNpy(obs));
    await promisify(execFile)(resolvePython(), [REFERENCE, folder, join(dir, 'obs.npy'), '-', join(dir, 'out.npy'), 'batch'], { timeout: 120_000 });
    return decodeNpy(new Uint8Array(readFileSync(join(dir, 'out.npy'))));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
