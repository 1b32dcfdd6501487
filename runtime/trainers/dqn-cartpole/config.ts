// The reference trainer's settings, read from an Arena training manifest in the platform's own dialect
// (agilerl-arena's TrainingManifest). A manifest as written and the platform's validated payload of it must give
// the same settings, so every default below is the platform's default and the platform's aliases are read too
// (memory_size, metrics_interval, population_size, selection_strategy, a network's top-level arch).
//
// The trainer builds plain ReLU MLPs: a network's layer_norm, init_layers and output_vanish are not modelled.
import type { Manifest } from '../../../operator/api/v1alpha1/manifest.ts';
import type { DqnHyperparameters } from './agent.ts';

/** The platform's mutation kinds, with the weights it uses when a mutation section leaves them out. */
export const DEFAULT_MUTATION_PROBABILITIES = { no_mut: 0.4, arch_mut: 0.2, new_layer: 0.2, params_mut: 0.2, act_mut: 0, rl_hp_mut: 0.2 };
export type MutationKind = keyof typeof DEFAULT_MUTATION_PROBABILITIES;

// Leaving the mutation section out (or writing `mutation: {}`) is the platform's no-op, not its defaults.
const NO_MUTATION: Record<MutationKind, number> = { no_mut: 1, arch_mut: 0, new_layer: 0, params_mut: 0, act_mut: 0, rl_hp_mut: 0 };

/** training.max_steps when unset. */
export const DEFAULT_MAX_STEPS = 1_000_000;
// DQN's own evolution cadence, which the platform caps at max_steps.
const DQN_DEFAULT_EVO_STEPS = 10_000;
// The trainer's network when the manifest has no network section: the platform leaves the encoder to the trainer
// then, and two hidden layers of 64 learn CartPole reliably.
const DEFAULT_HIDDEN = [64, 64];

export interface HyperparameterRange {
  min: number;
  max: number;
  grow_factor: number;
  shrink_factor: number;
}

export interface DqnConfig {
  seed: number;
  numEnvs: number;
  /** Environment steps per agent. */
  maxSteps: number;
  /** Environment steps per agent between evolution rounds. */
  evoSteps: number;
  popSize: number;
  /** Step limit per evaluation episode; unset runs each to its end (at most 500 steps). */
  evalSteps?: number;
  evalLoop: number;
  learningDelay: number;
  epsStart: number;
  epsEnd: number;
  epsDecay: number;
  hp: DqnHyperparameters;
  /** Double DQN: the online network picks the next action, the target network values it. */
  double: boolean;
  /** Hidden layer widths between observation and Q-values: the encoder's, the latent, the head's. */
  hidden: number[];
  /** Whether the manifest chose the hidden layers (a resumed checkpoint must then match them). */
  hiddenFromManifest: boolean;
  bufferSize: number;
  mutation: {
    probabilities: Record<MutationKind, number>;
    hpRanges: Record<string, HyperparameterRange>;
    sd: number;
  };
  selection: { tournamentSize: number; elitism: boolean };
  /** Steps between checkpoints; checkpoints are written after evolution rounds. */
  checkpointSteps: number;
  /** Steps between progress events. */
  reportingInterval: number;
  targetScore?: number;
}

// The DQN hyperparameters this trainer can mutate; the platform refuses rl_hp_selection names DQN lacks.
const MUTABLE_HPS = new Set<string>(['lr', 'batch_size', 'learn_step', 'gamma', 'tau']);

type Loose = Record<string, unknown>;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const obj = (v: unknown): Loose => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Loose) : {});
const widths = (v: unknown): number[] | undefined =>
  Array.isArray(v) && v.length > 0 && v.every((n) => Number.isInteger(n) && (n as number) > 0) ? (v as number[]) : undefined;

function sections(manifest: Manifest) {
  const network = obj(manifest.network);
  const encoder = obj(network.encoder_config);
  return {
    algorithm: obj(manifest.algorithm),
    training: obj(manifest.training),
    environment: obj(manifest.environment),
    mutation: manifest.mutation,
    selection: obj(manifest.selection_strategy ?? manifest.tournament_selection),
    replay: obj(manifest.replay_buffer),
    network,
    encoder,
    head: obj(network.head_config),
    arch: typeof network.arch === 'string' ? network.arch : typeof encoder.arch === 'string' ? encoder.arch : undefined,
  };
}

/**
 * The platform's network is an encoder (observation to latent) and a head (latent to Q-values); as one MLP that is
 * the encoder's hidden layers, then a layer of latent_dim, then the head's hidden layers.
 */
function hiddenLayers(s: ReturnType<typeof sections>): number[] | undefined {
  if (Object.keys(s.network).length === 0) return undefined;
  const encoder = widths(s.encoder.hidden_size) ?? [];
  const head = widths(s.head.hidden_size) ?? [];
  // The platform's default latent is 128 for a network with a declared encoder arch and 32 for one it infers.
  const latent = num(s.network.latent_dim) ?? (s.arch ? 128 : 32);
  return [...encoder, latent, ...head];
}

export function dqnConfig(manifest: Manifest): DqnConfig {
  const s = sections(manifest);
  const { algorithm, training, environment, selection, replay } = s;
  const mutation = obj(s.mutation);
  const mutating = Object.keys(mutation).length > 0;

  const maxSteps = num(training.max_steps) ?? DEFAULT_MAX_STEPS;
  const evoSteps = num(training.evo_steps) ?? num(training.metrics_interval) ?? Math.min(DQN_DEFAULT_EVO_STEPS, maxSteps);
  const probabilities = mutating ? { ...DEFAULT_MUTATION_PROBABILITIES, ...(obj(mutation.probabilities) as Partial<Record<MutationKind, number>>) } : NO_MUTATION;
  const hpRanges: Record<string, HyperparameterRange> = {};
  // training.hpo off means the population trains without hyperparameter mutation, whatever rl_hp_selection says.
  if (training.hpo === true) {
    for (const [name, range] of Object.entries(obj(mutation.rl_hp_selection))) {
      if (!MUTABLE_HPS.has(name)) continue;
      const r = obj(range);
      hpRanges[name] = {
        min: num(r.min) ?? 0,
        max: num(r.max) ?? 0,
        grow_factor: num(r.grow_factor) ?? 1.2,
        shrink_factor: num(r.shrink_factor) ?? 0.8,
      };
    }
  }
  const hidden = hiddenLayers(s);
  return {
    seed: num(mutation.rand_seed) ?? 42,
    numEnvs: num(environment.num_envs) ?? 32,
    maxSteps,
    evoSteps,
    popSize: num(training.pop_size) ?? num(training.population_size) ?? 1,
    evalSteps: num(training.eval_steps),
    evalLoop: num(training.eval_loop) ?? 1,
    learningDelay: num(training.learning_delay) ?? 0,
    epsStart: num(training.eps_start) ?? 1,
    epsEnd: num(training.eps_end) ?? 0.1,
    epsDecay: num(training.eps_decay) ?? 0.995,
    hp: {
      batch_size: num(algorithm.batch_size) ?? 64,
      lr: num(algorithm.lr) ?? 1e-4,
      learn_step: num(algorithm.learn_step) ?? 5,
      gamma: num(algorithm.gamma) ?? 0.99,
      tau: num(algorithm.tau) ?? 1e-3,
    },
    double: typeof algorithm.double === 'boolean' ? algorithm.double : true,
    hidden: hidden ?? DEFAULT_HIDDEN,
    hiddenFromManifest: hidden !== undefined,
    bufferSize: num(replay.max_size) ?? num(replay.memory_size) ?? 100_000,
    mutation: { probabilities, hpRanges, sd: num(mutation.mutation_sd) ?? 0.1 },
    selection: {
      tournamentSize: num(selection.tournament_size) ?? 2,
      elitism: typeof selection.elitism === 'boolean' ? selection.elitism : true,
    },
    checkpointSteps: num(training.checkpoint_steps) ?? evoSteps,
    reportingInterval: num(training.reporting_interval) ?? 1024,
    targetScore: num(training.target_score),
  };
}

/** Why this trainer cannot run the manifest, or undefined when it can. */
export function unsupported(manifest: Manifest): string | undefined {
  const s = sections(manifest);
  const name = String(s.algorithm.name);
  if (name !== 'DQN') return `the reference trainer runs DQN, not ${name}`;
  const envType = s.environment.env_type ?? 'gym';
  if (envType !== 'gym') return `the reference trainer runs a gym environment, not env_type ${String(envType)}`;
  if (!isCartPole(s.environment.name)) return `the reference trainer runs CartPole-v1, not ${String(s.environment.name)}`;
  if (s.arch !== undefined && s.arch !== 'mlp') return `the reference trainer builds an MLP encoder (arch mlp), not arch ${s.arch}`;
  for (const [where, mlp] of [['encoder_config', s.encoder], ['head_config', s.head]] as const) {
    if (mlp.activation !== undefined && mlp.activation !== 'ReLU') return `the reference trainer's networks use ReLU, not network.${where}.activation ${String(mlp.activation)}`;
  }
  const strategy = s.selection.strategy ?? 'tournament';
  if (strategy !== 'tournament') return `the reference trainer selects by tournament, not by ${String(strategy)}`;
  if (s.replay.n_step_buffer === true || s.replay.per_buffer === true) return 'the reference trainer samples its replay buffer uniformly, without n-step returns or priorities';
  return undefined;
}

export function isCartPole(name: unknown): boolean {
  return typeof name === 'string' && /^cartpole(-v1)?$/i.test(name);
}
