// Which trainer process runs a manifest. The runtime image brings the reference DQN CartPole trainer; an image
// with other trainers (the Python LLM trainers) names its command in ARENA_TRAINER_COMMAND.
import { fileURLToPath } from 'node:url';
import type { Manifest } from '../../operator/api/v1alpha1/manifest.ts';
import { unsupported as dqnUnsupported } from './dqn-cartpole/config.ts';

export interface TrainerCommand {
  /** For logs. */
  name: string;
  command: string;
  args: string[];
}

export const TRAINER_COMMAND_ENV = 'ARENA_TRAINER_COMMAND';

/** The reference trainer, run by this Node with the same TypeScript loader. */
export function dqnCartpoleCommand(): TrainerCommand {
  return {
    name: 'dqn-cartpole',
    command: process.execPath,
    args: ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('./dqn-cartpole/main.ts', import.meta.url))],
  };
}

export function resolveTrainer(manifest: Manifest, env: NodeJS.ProcessEnv = process.env): { ok: true; trainer: TrainerCommand } | { ok: false; message: string } {
  const custom = env[TRAINER_COMMAND_ENV];
  if (custom) {
    let argv: unknown;
    try {
      argv = JSON.parse(custom);
    } catch {
      argv = undefined;
    }
    if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string' && a.length > 0)) {
      return { ok: false, message: `${TRAINER_COMMAND_ENV} must be a JSON array of strings, e.g. ["python","-m","trainer"]` };
    }
    const [command, ...args] = argv as string[];
    return { ok: true, trainer: { name: command!, command: command!, args } };
  }
  const why = dqnUnsupported(manifest);
  if (!why) return { ok: true, trainer: dqnCartpoleCommand() };
  return { ok: false, message: `This runtime image has no trainer for ${manifest.algorithm.name} on ${environmentLabel(manifest.environment)}: ${why}.` };
}

// LLM environments are often a dataset with no name, and any environment may be a custom entrypoint.
function environmentLabel(environment: Record<string, unknown>): string {
  for (const key of ['name', 'dataset', 'hf_dataset_id', 'entrypoint', 'env_url', 'env_image'] as const) {
    const value = environment[key];
    if (typeof value === 'string' && value.length > 0) return value;
  }
  return `an environment of type ${String(environment.env_type ?? 'gym')}`;
}
