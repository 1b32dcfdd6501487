// A manifest small enough for unit tests (about two seconds of training on one core) whose evaluation score,
// for this seed, rises from about 10 to over 150.
import type { Manifest } from '../../../../operator/api/v1alpha1/manifest.ts';

export const SMALL: Manifest = {
  algorithm: { name: 'DQN', batch_size: 64, lr: 0.001, learn_step: 1, tau: 0.01 },
  environment: { name: 'CartPole-v1', num_envs: 8 },
  training: { max_steps: 2000, evo_steps: 500, pop_size: 2, learning_delay: 500, eps_end: 0.05, eps_decay: 0.99 },
  network: { arch: 'mlp', latent_dim: 32, encoder_config: { hidden_size: [32] }, head_config: { hidden_size: [32] } },
  mutation: { rand_seed: 7 },
};
