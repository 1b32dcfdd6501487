// What AgileRL itself makes of a checkpoint the cluster wrote: the tests' independent check that a checkpoint is
// AgileRL's own (it loads outside the operator and the runtime) and that an agent serves what AgileRL computes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export { agilerlActions } from '../../runtime/serve/testing.ts';

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
