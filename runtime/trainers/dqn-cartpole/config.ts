// The reference trainer's settings, read from the Arena manifest with AgileRL's defaults for what is left out.
import type { Manifest } from '../../../operator/api/v1alpha1/manifest.ts';
import { DEFAULT_MAX_STEPS, DEFAULT_MUTATION_PROBABILITIES } from '../../../operator/api/v1alpha1/manifest.ts';
import type { DqnHyperparameters } from './agent.ts';

export type MutationKind = keyof typeof DEFAULT_MUTATION_PROBABILITIES;

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

// AgileRL's default search ranges for DQN.
const DEFAULT_HP_RANGES: Record<string, HyperparameterRange> = {
  lr: { min: 6.25e-5, max: 1e-2, grow_factor: 1.2, shrink_factor: 0.8 },
  batch_size: { min: 8, max: 512, grow_factor: 1.2, shrink_factor: 0.8 },
  learn_step: { min: 1, max: 16, grow_factor: 1.2, shrink_factor: 0.8 },
};

const MUTABLE_HPS = new Set<string>(['lr', 'batch_size', 'learn_step', 'gamma', 'tau']);

type Loose = Record<string, unknown>;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const obj = (v: unknown): Loose => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Loose) : {});

function hiddenSizes(network: Loose): number[] | undefined {
  const candidates = [network.hidden_size, obj(network.encoder_config).hidden_size, obj(network.head_config).hidden_size];
  for (const c of candidates) {
    if (Array.isArray(c) && c.length > 0 && c.every((n) => Number.isInteger(n) && n > 0)) return c as number[];
  }
  return undefined;
}

export function dqnConfig(manifest: Manifest): DqnConfig {
  const algorithm = manifest.algorithm as Loose;
  const training = obj(manifest.training);
  const environment = obj(manifest.environment);
  const mutation = obj(manifest.mutation);
  const selection = obj(manifest.selection_strategy ?? manifest.tournament_selection);
  const replay = obj(manifest.replay_buffer);
  const network = { ...obj(algorithm.net_config), ...obj(manifest.network) };

  const maxSteps = num(training.max_steps) ?? DEFAULT_MAX_STEPS;
  const evoSteps = num(training.evo_steps) ?? num(training.metrics_interval) ?? 10_000;
  const probabilities = { ...DEFAULT_MUTATION_PROBABILITIES, ...(obj(mutation.probabilities) as Partial<Record<MutationKind, number>>) };
  const hpRanges: Record<string, HyperparameterRange> = {};
  const requested = obj(mutation.rl_hp_selection);
  const source = Object.keys(requested).length > 0 ? requested : DEFAULT_HP_RANGES;
  for (const [name, range] of Object.entries(source)) {
    if (!MUTABLE_HPS.has(name)) continue;
    const r = obj(range);
    hpRanges[name] = {
      min: num(r.min) ?? 0,
      max: num(r.max) ?? 0,
      grow_factor: num(r.grow_factor) ?? 1.2,
      shrink_factor: num(r.shrink_factor) ?? 0.8,
    };
  }
  return {
    seed: num(mutation.rand_seed) ?? num(training.seed) ?? 42,
    numEnvs: num(environment.num_envs) ?? 16,
    maxSteps,
    evoSteps: Math.min(evoSteps, maxSteps),
    popSize: num(training.pop_size) ?? num(training.population_size) ?? 1,
    evalSteps: num(training.eval_steps),
    evalLoop: num(training.eval_loop) ?? 1,
    learningDelay: num(training.learning_delay) ?? 0,
    epsStart: num(training.eps_start) ?? 1,
    epsEnd: num(training.eps_end) ?? 0.1,
    epsDecay: num(training.eps_decay) ?? 0.995,
    hp: {
      batch_size: num(algorithm.batch_size) ?? 128,
      lr: num(algorithm.lr) ?? 1e-3,
      learn_step: num(algorithm.learn_step) ?? 5,
      gamma: num(algorithm.gamma) ?? 0.99,
      tau: num(algorithm.tau) ?? 1e-3,
    },
    hidden: hiddenSizes(network) ?? [64, 64],
    hiddenFromManifest: hiddenSizes(network) !== undefined,
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
  if (manifest.algorithm.name !== 'DQN') return `the reference trainer runs DQN, not ${manifest.algorithm.name}`;
  if (!isCartPole(manifest.environment.name)) return `the reference trainer runs CartPole-v1, not ${manifest.environment.name}`;
  return undefined;
}

export function isCartPole(name: string): boolean {
  return /^cartpole(-v1)?$/i.test(name);
}
