// Which trainer process runs a manifest. Classic single-agent RL on Gymnasium trains with AgileRL's own manifest
// trainer (trainers/agilerl, Python): the run the platform would build from the same manifest. An image with other
// trainers names its command in ARENA_TRAINER_COMMAND.
import { fileURLToPath } from 'node:url';
import { resolvePython } from '../../operator/api/platform/verdict.ts';
import { algorithmFamily, isAlgorithmName, type Manifest } from '../../operator/api/v1alpha1/manifest.ts';

export interface TrainerCommand {
  /** For logs. */
  name: string;
  command: string;
  args: string[];
  /** Added to the trainer's environment. */
  env?: Record<string, string>;
}

export const TRAINER_COMMAND_ENV = 'ARENA_TRAINER_COMMAND';

/** What AgileRL's trainer here covers: the platform's single-agent algorithms that train on Gymnasium. */
export const AGILERL_GYM_ALGORITHMS: ReadonlySet<string> = new Set(['DQN', 'Rainbow DQN', 'RainbowDQN', 'PPO', 'Recurrent PPO', 'RecurrentPPO', 'DDPG', 'TD3']);

/**
 * The other classic families AgileRL's manifest trainer builds, each with the env_type the platform gives it:
 * multi-agent on PettingZoo (env_type gym, a PettingZoo module as the name), contextual bandits on a feature and
 * target table, offline RL on a dataset.
 */
export const AGILERL_FAMILY_ALGORITHMS: ReadonlyMap<string, string> = new Map([
  ['MADDPG', 'gym'],
  ['MATD3', 'gym'],
  ['IPPO', 'gym'],
  ['NeuralUCB', 'bandit'],
  ['NeuralTS', 'bandit'],
  ['CQN', 'offline'],
]);

/** AgileRL's manifest trainer, run by the project's Python ($ARENA_PYTHON, or the checkout's .venv). */
export function agilerlCommand(env: NodeJS.ProcessEnv = process.env): TrainerCommand {
  const pythonPath = fileURLToPath(new URL('./agilerl/', import.meta.url));
  return {
    name: 'agilerl',
    command: resolvePython(env.ARENA_PYTHON),
    args: ['-m', 'arena_agilerl'],
    env: { PYTHONPATH: env.PYTHONPATH ? `${pythonPath}:${env.PYTHONPATH}` : pythonPath, PYTHONDONTWRITEBYTECODE: '1' },
  };
}

/**
 * AgileRL 2.58.0's multi-process path for classic RL (an Accelerator handed to its training loops) fails in its own
 * code: DQN in tournament selection (KeyError: 'actor' when it clones an unwrapped agent), PPO in the first step
 * ('DistributedDataParallel' object has no attribute 'extract_features'). Reproduced on CPU with two processes by
 * trainers/agilerl/bench/accelerate_repro.py. A gang of several workers is refused before launch rather than
 * crashing after admission; the check goes when a pinned AgileRL passes that script.
 */
function multiWorkerRefusal(manifest: Manifest, env: NodeJS.ProcessEnv): string | undefined {
  const world = Number(env.WORLD_SIZE ?? 1);
  if (!Number.isInteger(world) || world <= 1) return undefined;
  return `AgileRL ${AGILERL_VERSION} trains ${manifest.algorithm.name} in one process: its multi-process (Accelerate) path for classic RL fails inside AgileRL (runtime/trainers/agilerl/bench/accelerate_repro.py reproduces it), and this gang has ${world} workers`;
}

/** The pinned AgileRL, for messages (python/requirements.lock holds the pin). */
export const AGILERL_VERSION = '2.58.0';

function agilerlCovers(manifest: Manifest): string | undefined {
  if (isAlgorithmName(manifest.algorithm.name) && algorithmFamily(manifest.algorithm.name) === 'llm') return undefined;
  const family = AGILERL_FAMILY_ALGORITHMS.get(manifest.algorithm.name);
  if (family !== undefined) {
    // The platform's validator already matched env_type to the algorithm; a bandit manifest may leave it out.
    const envType = manifest.environment.env_type ?? (family === 'bandit' ? 'bandit' : 'gym');
    return envType === family ? undefined : `the AgileRL trainer here runs ${manifest.algorithm.name} on env_type ${family}, not ${String(envType)}`;
  }
  if (!AGILERL_GYM_ALGORITHMS.has(manifest.algorithm.name)) {
    return `the AgileRL trainer here runs ${[...AGILERL_GYM_ALGORITHMS, ...AGILERL_FAMILY_ALGORITHMS.keys()].join(', ')} and the LLM algorithms of the platform's registry; ${manifest.algorithm.name} is none of them`;
  }
  const envType = manifest.environment.env_type;
  if (envType !== undefined && envType !== 'gym') return `the AgileRL trainer here runs Gymnasium environments, not env_type ${String(envType)}`;
  return undefined;
}

export function resolveTrainer(manifest: Manifest, env: NodeJS.ProcessEnv = process.env): { ok: true; trainer: TrainerCommand } | { ok: false; message: string; hint?: string } {
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
  const why = agilerlCovers(manifest);
  if (why) return { ok: false, message: `This runtime image has no trainer for ${manifest.algorithm.name} on ${environmentLabel(manifest.environment)}: ${why}.` };
  if (isAlgorithmName(manifest.algorithm.name) && algorithmFamily(manifest.algorithm.name) === 'llm') return llmTrainer(env);
  const gang = multiWorkerRefusal(manifest, env);
  if (gang) return { ok: false, message: `${gang}.`, hint: 'Train classic RL on a resource class with nodes: 1 (all of that worker\'s GPUs are its own).' };
  try {
    return { ok: true, trainer: agilerlCommand(env) };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

// LLM environments are often a dataset with no name, and any environment may be a custom entrypoint.
function environmentLabel(environment: Record<string, unknown>): string {
  for (const key of ['name', 'dataset', 'hf_dataset_id', 'entrypoint', 'env_url', 'env_image'] as const) {
    const value = environment[key];
    if (typeof value === 'string' && value.length > 0) return value;
  }
  return `an environment of type ${String(environment.env_type ?? 'gym')}`;
}

/**
 * The platform's LLM algorithms train with AgileRL's LLM trainers (trainers/agilerl/arena_agilerl/llm.py). AgileRL's
 * LLM path is torch.distributed, launched by torchrun, not Accelerate: a worker with several GPUs, or a gang of
 * several workers, runs it under torchrun with the pod's rendezvous (MASTER_ADDR/MASTER_PORT, NNODES, NODE_RANK,
 * NPROC_PER_NODE, which the operator sets on every worker pod).
 */
function llmTrainer(env: NodeJS.ProcessEnv): { ok: true; trainer: TrainerCommand } | { ok: false; message: string; hint?: string } {
  let base: TrainerCommand;
  try {
    base = agilerlCommand(env);
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
  const llm = { ...base, name: 'agilerl-llm', args: ['-m', 'arena_agilerl.llm'] };
  const launch = torchrunArgs(env);
  return { ok: true, trainer: launch ? { ...llm, name: 'agilerl-llm (torchrun)', args: [...launch, ...llm.args] } : llm };
}

/** torchrun's arguments (python -m torch.distributed.run) for this worker, or undefined for a single process. */
export function torchrunArgs(env: NodeJS.ProcessEnv): string[] | undefined {
  const nnodes = Number(env.NNODES ?? env.WORLD_SIZE ?? 1);
  const nproc = Number(env.NPROC_PER_NODE ?? 1);
  if (!(Number.isInteger(nnodes) && nnodes >= 1 && Number.isInteger(nproc) && nproc >= 1) || nnodes * nproc <= 1) return undefined;
  return [
    '-m',
    'torch.distributed.run',
    `--nnodes=${nnodes}`,
    `--node-rank=${env.NODE_RANK ?? env.RANK ?? '0'}`,
    `--nproc-per-node=${nproc}`,
    `--master-addr=${env.MASTER_ADDR ?? '127.0.0.1'}`,
    `--master-port=${env.MASTER_PORT ?? '29500'}`,
  ];
}
