// The Arena training manifests the tests and the demo submit, in the platform's own dialect, so there is one place
// to keep them valid as the platform evolves. operator/api/platform/repository-manifests.test.ts asks the
// platform's validator about every export here: each builder must work without arguments, and a new export that
// is not a valid manifest (or a builder of one) fails that test.
import { readFileSync } from 'node:fs';
import type { Manifest } from '../../operator/api/v1alpha1/manifest.ts';

const DEMO_PATH = new URL('./demo-manifest.json', import.meta.url);

type Training = NonNullable<Manifest['training']>;

/** The demo's run (demo-manifest.json: AgileRL DQN on CartPole-v1, population of 2), a fresh copy each call. */
export function demoManifest(): Manifest {
  return JSON.parse(readFileSync(DEMO_PATH, 'utf8')) as Manifest;
}

/** The demo run with another length, and any other training settings over it. */
export function demoRun(maxSteps = 20_000, training: Training = {}): Manifest {
  const demo = demoManifest();
  return { ...demo, training: { ...demo.training, max_steps: maxSteps, ...training } };
}

/**
 * The demo's run with an evolution step, and so a checkpoint, every 1,000 steps: what the cluster tests train.
 * Learning starts after the first evaluation, so the first checkpoint scores the untrained network: a baseline
 * the later ones are compared with (an evaluation after a few hundred learning steps can already reach 300).
 */
export function quickDqn(maxSteps = 3000, training: Training = {}): Manifest {
  return demoRun(maxSteps, { evo_steps: 1000, learning_delay: 1000, ...training });
}

/** A short DQN run on CartPole: what an Experiment of the e2e fixtures trains unless a test says otherwise. */
export function cartpoleDqn(training: Training = {}): Manifest {
  return {
    algorithm: { name: 'DQN', batch_size: 64, lr: 0.001 },
    environment: { name: 'CartPole-v1', num_envs: 4 },
    training: { max_steps: 10_000, evo_steps: 1_000, pop_size: 2, ...training },
  };
}

/** GRPO fine-tuning of a small Qwen on GSM8K: a rollout over dataset rows, scored by a rubric. Needs a GPU. */
export function grpoGsm8k(algorithm: Record<string, unknown> = {}): Manifest {
  return {
    algorithm: { name: 'GRPO', group_size: 4, pretrained_model_name_or_path: 'Qwen/Qwen2.5-0.5B', ...algorithm },
    environment: {
      name: 'gsm8k',
      dataset: 'openai/gsm8k',
      prompt_template: { user_0: '{question}' },
      rubric_file_path: 'rubrics/gsm8k.py',
      rubric_name: 'exact_answer',
    },
  };
}

/** Supervised fine-tuning of a small instruction-tuned Qwen on Alpaca. Needs a GPU. */
export function sftAlpaca(): Manifest {
  return {
    algorithm: { name: 'SFT', pretrained_model_name_or_path: 'Qwen/Qwen2.5-0.5B-Instruct' },
    environment: { name: 'alpaca', dataset: 'tatsu-lab/alpaca', response_column: 'output' },
  };
}

/** Where the families cluster test puts the datasets it makes, in its namespace's part of the checkpoint storage. */
const FAMILIES_DATASETS = '/checkpoints/families/datasets';

/** MADDPG on the MPE simple_spread (three agents, continuous actions, from PyPI's mpe2): a tiny population of 2. */
export function maddpgSpread(maxSteps = 300): Manifest {
  return {
    algorithm: { name: 'MADDPG', batch_size: 32, lr_actor: 0.001, lr_critic: 0.01, gamma: 0.95, tau: 0.01, learn_step: 5 },
    environment: { name: 'mpe2.simple_spread_v3', num_envs: 2, env_config: { max_cycles: 25, continuous_actions: true } },
    training: { max_steps: maxSteps, evo_steps: 100, pop_size: 2, learning_delay: 0, eval_loop: 1 },
    network: { arch: 'mlp', latent_dim: 16, encoder_config: { hidden_size: [16] }, head_config: { hidden_size: [16] } },
    replay_buffer: { max_size: 10000 },
  };
}

/** NeuralUCB on a feature and target table in the checkpoint storage (a contextual bandit AgileRL builds from them). */
export function neuralUcbTables(maxSteps = 200, dir = `${FAMILIES_DATASETS}/bandit`): Manifest {
  return {
    algorithm: { name: 'NeuralUCB', lr: 0.001, gamma: 1.0, lamb: 1.0, reg: 0.000625, learn_step: 2, batch_size: 16 },
    environment: { env_type: 'bandit', name: 'three-classes', features: `${dir}/features.csv`, targets: `${dir}/targets.csv` },
    training: { max_steps: maxSteps, evo_steps: 50, episode_steps: 50, pop_size: 2 },
    network: { arch: 'mlp', latent_dim: 16, encoder_config: { hidden_size: [16] }, head_config: { hidden_size: [16] } },
  };
}

/** CQN on CartPole from an HDF5 dataset in the checkpoint storage (offline RL: no environment steps in training). */
export function cqnCartpole(maxSteps = 400, datasetPath = `${FAMILIES_DATASETS}/cartpole.h5`): Manifest {
  return {
    algorithm: { name: 'CQN', batch_size: 32, lr: 0.001, tau: 0.01, double: true, gamma: 0.99 },
    environment: { env_type: 'offline', name: 'CartPole-v1', num_envs: 1, dataset_path: datasetPath },
    training: { max_steps: maxSteps, evo_steps: 100, pop_size: 2, eval_loop: 1 },
    network: { arch: 'mlp', latent_dim: 16, encoder_config: { hidden_size: [16] }, head_config: { hidden_size: [16] } },
    replay_buffer: { max_size: 10000 },
  };
}
