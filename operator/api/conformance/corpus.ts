// The conformance corpus: Arena training manifests (what an Experiment carries in spec.manifest), each as the text
// of a manifest file. The conformance suite pushes every case through each layer of the product (the apiserver
// with our CRD, the webhook, the operator, the runtime, `kubectl arena manifest`) and compares what each layer
// says with the platform's own verdict. This file only states the inputs: it never says what the verdict is, so a
// case cannot drift from the platform. corpus.test.ts checks the corpus covers what it claims to against the live
// platform validator (every algorithm valid and refused, every section both ways, a balance of the two).
//
// Most cases are a base manifest per algorithm family with a small patch (`variant`), rendered as YAML 1.1 (the
// YAML the platform reads, PyYAML's), so a string such as "yes" or "010" stays a string. Cases where the text
// itself is the point (coercion, YAML 1.1 scalars, anchors, tabs, broken syntax) are written out by hand.
import { stringify } from 'yaml';

export interface CorpusCase {
  /** Unique, kebab-case and stable: the conformance suite reports by it. */
  id: string;
  /** What the case exercises, in a sentence. */
  about: string;
  /** The manifest file's text. */
  yaml: string;
}

type Doc = { [key: string]: unknown };

/** In a patch: delete this key from the base. */
const REMOVE: unique symbol = Symbol('remove');

/** In a patch: put this value in place as it is, rather than merging it into the base's mapping. */
class Whole {
  constructor(readonly value: unknown) {}
}
const whole = (value: unknown) => new Whole(value);

function isMapping(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Whole);
}

/** `base` with `patch` deep-merged in: mappings merge, REMOVE deletes, anything else (lists too) replaces. */
export function variant(base: Doc, patch: Doc): Doc {
  const out: Doc = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === REMOVE) delete out[key];
    else if (value instanceof Whole) out[key] = value.value;
    else if (isMapping(value)) out[key] = variant(isMapping(out[key]) ? out[key] : {}, value);
    else out[key] = value;
  }
  return out;
}

/** A manifest as YAML 1.1 text. A number JavaScript would print with an exponent is refused: PyYAML reads `1e-7`
 * as a string, so such a value would not mean what the builder wrote. Write those cases by hand. */
export function render(doc: unknown): string {
  checkNumbers(doc, '');
  return stringify(doc, { version: '1.1', lineWidth: 0 });
}

function checkNumbers(value: unknown, path: string): void {
  if (typeof value === 'number' && Number.isFinite(value) && /e/i.test(String(value))) {
    throw new Error(`corpus: ${path} = ${value} would render with an exponent; write that case as text`);
  }
  if (Array.isArray(value)) value.forEach((item, i) => checkNumbers(item, `${path}[${i}]`));
  else if (isMapping(value)) for (const [key, item] of Object.entries(value)) checkNumbers(item, path ? `${path}.${key}` : key);
}

/** Hand-written YAML: drops the first line break and the indentation the lines share. */
function text(strings: TemplateStringsArray, ...values: unknown[]): string {
  const raw = String.raw({ raw: strings.raw }, ...values).replace(/^\n/, '');
  const lines = raw.split('\n');
  const indents = lines.filter((line) => line.trim() !== '').map((line) => line.match(/^ */)![0].length);
  const common = indents.length ? Math.min(...indents) : 0;
  return lines.map((line) => line.slice(common)).join('\n').replace(/[ ]+$/, '');
}

const cases: CorpusCase[] = [];

function add(id: string, about: string, manifest: Doc | string): void {
  cases.push({ id, about, yaml: typeof manifest === 'string' ? manifest : render(manifest) });
}

const API_VERSION = 'agilerl.com/v1';

// ---------------------------------------------------------------------------------------------------------------
// Bases: one well-formed manifest per algorithm, each with hyperparameters of its own.

const mlpNetwork: Doc = {
  arch: 'mlp',
  latent_dim: 64,
  encoder_config: { hidden_size: [64, 64], activation: 'ReLU' },
  head_config: { hidden_size: [64], activation: 'ReLU' },
};

const lstmNetwork: Doc = {
  arch: 'lstm',
  latent_dim: 64,
  encoder_config: { hidden_state_size: 64, num_layers: 1 },
  head_config: { hidden_size: [64] },
};

const dqn: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'DQN', batch_size: 64, lr: 0.0001, gamma: 0.99, tau: 0.001, double: true, learn_step: 1, cudagraphs: false },
  environment: { name: 'CartPole-v1', num_envs: 8 },
  training: { max_steps: 100000, evo_steps: 10000, pop_size: 4, learning_delay: 1000, eps_start: 1.0, eps_end: 0.05, eps_decay: 0.995 },
  network: mlpNetwork,
  replay_buffer: { max_size: 50000 },
  tournament_selection: { tournament_size: 2, elitism: true },
};

const rainbow: Doc = {
  apiVersion: API_VERSION,
  algorithm: {
    name: 'Rainbow DQN',
    batch_size: 64,
    lr: 0.0001,
    num_atoms: 51,
    v_min: -200,
    v_max: 200,
    noise_std: 0.5,
    n_step: 3,
    beta: 0.4,
    prior_eps: 0.000001,
    combined_reward: false,
  },
  environment: { name: 'LunarLander-v3', num_envs: 16 },
  training: { max_steps: 500000, evo_steps: 10000, pop_size: 4 },
  replay_buffer: { max_size: 100000, n_step_buffer: true, n_step_buffer_args: { n_step: 3 }, per_buffer: true, per_buffer_args: { alpha: 0.6 } },
};

const ppo: Doc = {
  apiVersion: API_VERSION,
  algorithm: {
    name: 'PPO',
    lr: 0.0003,
    learn_step: 2048,
    gae_lambda: 0.95,
    clip_coef: 0.2,
    ent_coef: 0.01,
    vf_coef: 0.5,
    max_grad_norm: 0.5,
    update_epochs: 4,
    target_kl: 0.02,
    action_std_init: 0.6,
  },
  environment: { name: 'LunarLander-v3', num_envs: 16 },
  training: { max_steps: 1000000, evo_steps: 20480, pop_size: 4, hpo: true },
  network: mlpNetwork,
  mutation: {
    probabilities: { no_mut: 0.4, arch_mut: 0.2, new_layer: 0.2, params_mut: 0.2, act_mut: 0, rl_hp_mut: 0.2 },
    rl_hp_selection: { lr: { min: 0.0001, max: 0.01 }, batch_size: { min: 8, max: 512 } },
    mutation_sd: 0.1,
    rand_seed: 42,
  },
  tournament_selection: { tournament_size: 2, elitism: true },
};

const recurrentPpo: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'Recurrent PPO', lr: 0.0003, learn_step: 1024, max_seq_len: 32, bptt_sequence_type: 'chunked', update_epochs: 4 },
  environment: { name: 'CartPole-v1', num_envs: 8 },
  training: { max_steps: 200000, evo_steps: 8192, pop_size: 2 },
  network: lstmNetwork,
};

const cqn: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'CQN', batch_size: 256, lr: 0.0003, tau: 0.005, double: true, gamma: 0.99 },
  environment: { env_type: 'offline', name: 'CartPole-v1', num_envs: 1, minari_dataset_id: 'cartpole/expert-v0', remote: false },
  training: { max_steps: 50000, evo_steps: 5000, pop_size: 2 },
};

const ddpg: Doc = {
  apiVersion: API_VERSION,
  algorithm: {
    name: 'DDPG',
    lr_actor: 0.0001,
    lr_critic: 0.001,
    tau: 0.005,
    policy_freq: 2,
    O_U_noise: true,
    expl_noise: 0.1,
    mean_noise: 0.0,
    theta: 0.15,
    dt: 0.01,
    share_encoders: false,
  },
  environment: { name: 'Pendulum-v1', num_envs: 4 },
  training: { max_steps: 200000, evo_steps: 10000, pop_size: 2, learning_delay: 1000 },
  replay_buffer: { max_size: 100000 },
};

const td3: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'TD3', lr_actor: 0.0003, lr_critic: 0.0003, tau: 0.005, policy_freq: 2, O_U_noise: false, expl_noise: 0.1 },
  environment: { name: 'BipedalWalker-v3', num_envs: 8 },
  training: { max_steps: 1000000, evo_steps: 10000, pop_size: 4 },
  replay_buffer: { max_size: 1000000 },
};

const ippo: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'IPPO', lr: 0.0001, learn_step: 2048, gae_lambda: 0.95, clip_coef: 0.2, ent_coef: 0.01, vf_coef: 0.5, update_epochs: 4, action_batch_size: 2 },
  environment: { name: 'pettingzoo.mpe.simple_speaker_listener_v4', num_envs: 8 },
  training: { max_steps: 2000000, evo_steps: 16384, pop_size: 4, sum_scores: true },
};

const maddpg: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'MADDPG', lr_actor: 0.001, lr_critic: 0.01, gamma: 0.95, tau: 0.01, learn_step: 5, O_U_noise: true, expl_noise: 0.1 },
  environment: { name: 'pettingzoo.mpe.simple_spread_v3', num_envs: 8 },
  training: { max_steps: 2000000, evo_steps: 10000, pop_size: 4, sum_scores: true, learning_delay: 0 },
  replay_buffer: { max_size: 100000 },
};

const matd3: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'MATD3', lr_actor: 0.001, lr_critic: 0.01, gamma: 0.95, tau: 0.01, policy_freq: 2, learn_step: 5 },
  environment: { name: 'pettingzoo.mpe.simple_adversary_v3', num_envs: 8 },
  training: { max_steps: 2000000, evo_steps: 10000, pop_size: 4, sum_scores: false },
  replay_buffer: { max_size: 100000 },
};

const neuralUcb: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'NeuralUCB', lr: 0.001, gamma: 1.0, lamb: 1.0, reg: 0.000625, learn_step: 2, batch_size: 64 },
  environment: { env_type: 'bandit', name: 'IRIS', features: 'data/iris/features.csv', targets: 'data/iris/targets.csv' },
  training: { max_steps: 10000, evo_steps: 500, episode_steps: 500, pop_size: 4 },
};

const neuralTs: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'NeuralTS', lr: 0.003, gamma: 1.0, lamb: 0.5, reg: 0.001, learn_step: 2 },
  environment: { name: 'PenDigits', features: 'data/pendigits/features.csv', targets: 'data/pendigits/targets.csv' },
  training: { max_steps: 10000, evo_steps: 500, episode_steps: 500 },
};

const finetuning: Doc = {
  pretrained_model_name_or_path: 'Qwen/Qwen3-1.7B',
  max_context_length: 1024,
  lora_config: { lora_r: 16, lora_alpha: 32, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], lora_dropout: 0.05 },
};

const gsm8kRollout: Doc = {
  env_type: 'rollout',
  dataset: 'openai/gsm8k',
  prompt_template: { system_0: 'Solve the problem. Put the final answer in <answer></answer>.', user_1: '{question}' },
  rubric_file_path: 'rubrics/gsm8k.py',
  rubric_name: 'reward_fn',
  columns: { question: 'question', answer: 'answer' },
  train_test_split: 0.9,
};

const grpo: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'GRPO', batch_size: 8, group_size: 8, lr: 0.000001, beta: 0.001, clip_coef: 0.2, temperature: 0.9, max_output_tokens: 512, adv_norm: 'mean_only' },
  environment: gsm8kRollout,
  network: finetuning,
  training: { max_steps: 500, evo_steps: 50, pop_size: 1 },
};

const gspo: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'GSPO', batch_size: 4, group_size: 8, lr: 0.000001, clip_coef: 0.2, loss_type: 'gspo', max_output_tokens: 256 },
  environment: { env_type: 'rollout', env_image: 'ghcr.io/example/sokoban-env:1.2.0', env_port: 8000, max_turns: 20 },
  network: variant(finetuning, { pretrained_model_name_or_path: 'Qwen/Qwen3-4B', max_context_length: 4096 }),
  training: { max_steps: 300, evo_steps: 30 },
};

const cispo: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'CISPO', batch_size: 8, group_size: 4, lr: 0.000002, loss_type: 'cispo', max_output_tokens: 1024 },
  environment: gsm8kRollout,
  network: variant(finetuning, { max_context_length: 2048 }),
  training: { max_steps: 400, evo_steps: 40 },
};

const llmppo: Doc = {
  apiVersion: API_VERSION,
  algorithm: {
    name: 'LLMPPO',
    batch_size: 4,
    lr_actor: 0.000001,
    lr_critic: 0.00005,
    vf_coef: 0.5,
    gae_lambda: 0.95,
    gamma: 1.0,
    critic_warmup_steps: 10,
    turn_value_reduction: 'final_value',
    max_output_tokens: 256,
  },
  environment: { env_type: 'rollout', entrypoint: 'wordle_env:WordleEnv', max_turns: 6, env_config: { word_list: 'common' } },
  network: finetuning,
  training: { max_steps: 200, evo_steps: 20 },
};

const llmreinforce: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'LLMREINFORCE', batch_size: 8, lr: 0.000001, temperature: 1.0, top_p: 0.95, importance_sampling_level: 'token', max_output_tokens: 128 },
  environment: { env_type: 'rollout', env_url: 'http://twenty-questions.envs.svc.cluster.local:8000', max_turns: 20 },
  network: finetuning,
  training: { max_steps: 200, evo_steps: 20 },
};

const sft: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'SFT', batch_size: 16, lr: 0.00005, update_epochs: 1, max_grad_norm: 1.0 },
  environment: { env_type: 'dataset', objective: 'sft', dataset: 'HuggingFaceH4/ultrachat_200k', response_column: 'response' },
  network: variant(finetuning, { max_context_length: 2048 }),
  training: { max_steps: 2000, num_epochs: 2, evo_epochs: 1 },
};

const dpo: Doc = {
  apiVersion: API_VERSION,
  algorithm: { name: 'DPO', batch_size: 8, lr: 0.000005, beta: 0.1, nll_alpha: 1.0 },
  environment: { env_type: 'dataset', objective: 'preference', hf_dataset_id: 'trl-lib/ultrafeedback_binarized' },
  network: finetuning,
  training: { max_steps: 1000, evo_steps: 100 },
};

// ---------------------------------------------------------------------------------------------------------------
// Every registered algorithm name, each with its own hyperparameters, and each once refused for one of its own.

add('dqn-valid', 'DQN on CartPole with lr, tau, double, cudagraphs, an MLP network and a replay buffer', dqn);
add('dqn-lr-negative', 'DQN with lr -0.0001, below its lower bound of 0', variant(dqn, { algorithm: { lr: -0.0001 } }));
add('rainbow-dqn-valid', "'Rainbow DQN' (the spaced spelling) with atoms, v range, noise, n-step and a prioritized n-step buffer", rainbow);
add('rainbow-dqn-v-range-inverted', "'Rainbow DQN' with v_min 200 above v_max -200", variant(rainbow, { algorithm: { v_min: 200, v_max: -200 } }));
add('rainbowdqn-valid', "'RainbowDQN' (the class-name spelling) with num_atoms 1, the lowest it may be", variant(rainbow, { algorithm: { name: 'RainbowDQN', num_atoms: 1 } }));
add('rainbowdqn-num-atoms-zero', "'RainbowDQN' with num_atoms 0, below its lower bound of 1", variant(rainbow, { algorithm: { name: 'RainbowDQN', num_atoms: 0 } }));
add('ppo-valid', 'PPO on LunarLander with GAE, clipping, entropy and value coefficients, HPO mutating lr and batch_size', ppo);
add('ppo-clip-coef-above-one', 'PPO with clip_coef 1.01, above its upper bound of 1', variant(ppo, { algorithm: { clip_coef: 1.01 } }));
add('recurrent-ppo-valid', "'Recurrent PPO' (the spaced spelling) with max_seq_len, chunked BPTT and an LSTM encoder", recurrentPpo);
add('recurrent-ppo-recurrent-off', "'Recurrent PPO' with recurrent: false, which that algorithm requires on", variant(recurrentPpo, { algorithm: { recurrent: false } }));
add('recurrentppo-valid', "'RecurrentPPO' (the class-name spelling) with fifty-percent-overlap BPTT", variant(recurrentPpo, { algorithm: { name: 'RecurrentPPO', bptt_sequence_type: 'fifty_percent_overlap' } }));
add('recurrentppo-bptt-unknown', "'RecurrentPPO' with bptt_sequence_type 'sliding', not one of chunked, maximum, fifty_percent_overlap", variant(recurrentPpo, { algorithm: { name: 'RecurrentPPO', bptt_sequence_type: 'sliding' } }));
add('cqn-valid', 'CQN against an offline environment that names a Minari dataset', cqn);
add('cqn-batch-size-zero', 'CQN with batch_size 0, below its lower bound of 1', variant(cqn, { algorithm: { batch_size: 0 } }));
add('ddpg-valid', 'DDPG on Pendulum with actor and critic rates, policy_freq and OU noise', ddpg);
add('ddpg-tau-above-one', 'DDPG with tau 1.5, above its upper bound of 1', variant(ddpg, { algorithm: { tau: 1.5 } }));
add('td3-valid', 'TD3 on BipedalWalker with Gaussian exploration noise', td3);
add('td3-policy-freq-zero', 'TD3 with policy_freq 0, below its lower bound of 1', variant(td3, { algorithm: { policy_freq: 0 } }));
add('ippo-valid', 'IPPO on a PettingZoo environment with action_batch_size and summed scores', ippo);
add('ippo-gae-lambda-above-one', 'IPPO with gae_lambda 1.01, above its upper bound of 1', variant(ippo, { algorithm: { gae_lambda: 1.01 } }));
add('maddpg-valid', 'MADDPG on simple_spread with its multi-agent gamma, tau and learn_step', maddpg);
add('maddpg-gamma-above-one', 'MADDPG with gamma 1.01, above its upper bound of 1', variant(maddpg, { algorithm: { gamma: 1.01 } }));
add('matd3-valid', 'MATD3 on simple_adversary with policy_freq', matd3);
add('matd3-lr-critic-negative', 'MATD3 with lr_critic -0.01, below its lower bound of 0', variant(matd3, { algorithm: { lr_critic: -0.01 } }));
add('neural-ucb-valid', 'NeuralUCB on a tabular bandit dataset with lamb, reg and episode_steps', neuralUcb);
add('neural-ucb-learn-step-zero', 'NeuralUCB with learn_step 0, below its lower bound of 1', variant(neuralUcb, { algorithm: { learn_step: 0 } }));
add('neural-ts-valid', 'NeuralTS with the bandit environment type left for the algorithm to imply', neuralTs);
add('neural-ts-gamma-negative', 'NeuralTS with gamma -0.5, below its lower bound of 0', variant(neuralTs, { algorithm: { gamma: -0.5 } }));
add('grpo-valid', 'GRPO over GSM8K rows with a rubric, a prompt template and a LoRA adapter on Qwen3-1.7B', grpo);
add('grpo-adv-norm-unknown', "GRPO with adv_norm 'z_score', not one of mean_only, mean_std", variant(grpo, { algorithm: { adv_norm: 'z_score' } }));
add('gspo-valid', 'GSPO against a prebuilt env image, loss_type gspo', gspo);
add('gspo-loss-type-grpo', 'GSPO with loss_type grpo, which GSPO pins to gspo', variant(gspo, { algorithm: { loss_type: 'grpo' } }));
add('cispo-valid', 'CISPO over dataset rows with group_size 4', cispo);
add('cispo-group-size-zero', 'CISPO with group_size 0, below its lower bound of 1', variant(cispo, { algorithm: { group_size: 0 } }));
add('llmppo-valid', 'LLMPPO against an entrypoint env with actor and critic rates and critic warm-up', llmppo);
add('llmppo-turn-value-reduction-unknown', "LLMPPO with turn_value_reduction 'max', not one of mean, final_value", variant(llmppo, { algorithm: { turn_value_reduction: 'max' } }));
add('llmreinforce-valid', 'LLMREINFORCE against a hosted env_url with top_p and token-level importance sampling', llmreinforce);
add('llmreinforce-top-p-above-one', 'LLMREINFORCE with top_p 1.01, above its upper bound of 1', variant(llmreinforce, { algorithm: { top_p: 1.01 } }));
add('sft-valid', 'SFT over a Hugging Face dataset, epoch-driven', sft);
add('sft-activation-offload', 'SFT with activation_offload true, which SFT cannot forward', variant(sft, { algorithm: { activation_offload: true } }));
add('dpo-valid', 'DPO over a preference dataset named by hf_dataset_id, with beta and nll_alpha', dpo);
add('dpo-beta-above-one', 'DPO with beta 1.5, above its upper bound of 1', variant(dpo, { algorithm: { beta: 1.5 } }));

// ---------------------------------------------------------------------------------------------------------------
// apiVersion and the document's top level.

add('api-version-omitted', 'No apiVersion: the platform assumes the one it speaks', variant(dqn, { apiVersion: REMOVE }));
add('api-version-wrong', 'apiVersion agilerl.com/v2, a version the platform does not speak', variant(dqn, { apiVersion: 'agilerl.com/v2' }));
add('api-version-kubernetes-style', 'apiVersion arena.agilerl.com/v1alpha1, the CRD group rather than the manifest contract', variant(dqn, { apiVersion: 'arena.agilerl.com/v1alpha1' }));
add('api-version-empty', 'apiVersion as an empty string', variant(dqn, { apiVersion: '' }));
add('api-version-snake-case', 'The snake_case spelling api_version, which the platform also accepts', { api_version: API_VERSION, ...variant(dqn, { apiVersion: REMOVE }) });
add('api-version-wrong-case', "'apiversion' in lower case, not a key the platform knows", { apiversion: API_VERSION, ...variant(dqn, { apiVersion: REMOVE }) });
add('api-version-number', 'apiVersion written as the number 1', variant(dqn, { apiVersion: 1 }));
add('top-level-unknown-kind', "A Kubernetes-style 'kind' key at the top of the manifest", { kind: 'Experiment', ...dqn });
add('top-level-unknown-metadata', "A 'metadata' mapping at the top of the manifest", variant(dqn, { metadata: { name: 'cartpole' } }));
add('minimal-gym', 'Only the two required sections: an algorithm name and an environment name', { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } });
add('algorithm-missing', 'No algorithm section', variant(dqn, { algorithm: REMOVE }));
add('environment-missing', 'No environment section', variant(dqn, { environment: REMOVE }));

// ---------------------------------------------------------------------------------------------------------------
// algorithm

add('algorithm-name-missing', 'An algorithm section without a name', variant(dqn, { algorithm: { name: REMOVE } }));
add('algorithm-name-lowercase', "Algorithm name 'dqn': names are case-sensitive", variant(dqn, { algorithm: { name: 'dqn' } }));
add('algorithm-name-hyphenated', "Algorithm name 'Rainbow-DQN', a spelling not registered", variant(rainbow, { algorithm: { name: 'Rainbow-DQN' } }));
add('algorithm-name-unregistered', "Algorithm name 'SAC', not a registered algorithm", variant(dqn, { algorithm: { name: 'SAC' } }));
add('algorithm-name-null', 'Algorithm name written as null', variant(dqn, { algorithm: { name: null } }));
add('algorithm-as-string', 'The algorithm section as the bare string DQN rather than a mapping', variant(dqn, { algorithm: 'DQN' }));
add('algorithm-as-list', 'The algorithm section as a list', variant(dqn, { algorithm: [{ name: 'DQN' }] }));
add('algorithm-unknown-key', "DQN with 'learning_rate', a key DQN does not have", variant(dqn, { algorithm: { learning_rate: 0.001 } }));
add('algorithm-other-family-key', 'DQN with clip_coef, a PPO hyperparameter', variant(dqn, { algorithm: { clip_coef: 0.2 } }));
add('algorithm-net-config-inline', 'DQN with its network written inline as algorithm.net_config', variant(dqn, { network: REMOVE, algorithm: { net_config: mlpNetwork } }));
add('algorithm-batch-size-one', 'DQN with batch_size 1, the lowest it may be', variant(dqn, { algorithm: { batch_size: 1 } }));
add('algorithm-batch-size-zero', 'DQN with batch_size 0, below its lower bound of 1', variant(dqn, { algorithm: { batch_size: 0 } }));
add('algorithm-lr-zero', 'DQN with lr 0, its lower bound', variant(dqn, { algorithm: { lr: 0 } }));
add('algorithm-gamma-one', 'DQN with gamma 1, its upper bound', variant(dqn, { algorithm: { gamma: 1 } }));
add('algorithm-gamma-zero', 'DQN with gamma 0, its lower bound', variant(dqn, { algorithm: { gamma: 0 } }));
add('algorithm-gamma-above-one', 'DQN with gamma 1.01, above its upper bound of 1', variant(dqn, { algorithm: { gamma: 1.01 } }));
add('algorithm-gamma-negative', 'DQN with gamma -0.01, below its lower bound of 0', variant(dqn, { algorithm: { gamma: -0.01 } }));
add('bandit-gamma-above-one', 'NeuralUCB with gamma 2: a bandit gamma is an exploration scale with no upper bound', variant(neuralUcb, { algorithm: { gamma: 2 } }));
add('algorithm-learn-step-zero', 'PPO with learn_step 0, below its lower bound of 1', variant(ppo, { algorithm: { learn_step: 0 } }));
add('ppo-clip-coef-one', 'PPO with clip_coef 1, its upper bound', variant(ppo, { algorithm: { clip_coef: 1 } }));
add('ppo-gae-lambda-one', 'PPO with gae_lambda 1, its upper bound', variant(ppo, { algorithm: { gae_lambda: 1 } }));
add('ppo-ent-coef-above-one', 'PPO with ent_coef 1.5, above its upper bound of 1', variant(ppo, { algorithm: { ent_coef: 1.5 } }));
add('ppo-target-kl-null', 'PPO with target_kl null, the unset value', variant(ppo, { algorithm: { target_kl: null } }));
add('ppo-update-epochs-zero', 'PPO with update_epochs 0, below its lower bound of 1', variant(ppo, { algorithm: { update_epochs: 0 } }));
add('ppo-recurrent-lstm', 'PPO with recurrent true and an LSTM encoder', variant(ppo, { algorithm: { recurrent: true, max_seq_len: 16 }, network: whole(lstmNetwork) }));
add('ppo-rollout-buffer-config', 'PPO with free-form rollout_buffer_config overrides', variant(ppo, { algorithm: { rollout_buffer_config: { use_gae: true } } }));
add('rainbow-dqn-n-step-zero', "'Rainbow DQN' with n_step 0, below its lower bound of 1", variant(rainbow, { algorithm: { n_step: 0 } }));
add('rainbow-dqn-v-range-equal', "'Rainbow DQN' with v_min equal to v_max", variant(rainbow, { algorithm: { v_min: 10, v_max: 10 } }));
add('ddpg-policy-freq-one', 'DDPG with policy_freq 1, its lower bound', variant(ddpg, { algorithm: { policy_freq: 1 } }));
add('td3-tau-above-one', 'TD3 with tau 1.5: unlike DDPG, TD3 puts no upper bound on tau', variant(td3, { algorithm: { tau: 1.5 } }));
add('maddpg-torch-compiler', "MADDPG with torch_compiler 'reduce-overhead'", variant(maddpg, { algorithm: { torch_compiler: 'reduce-overhead' } }));
add('ippo-policy-freq', 'IPPO with policy_freq, a hyperparameter only the deterministic actors have', variant(ippo, { algorithm: { policy_freq: 2 } }));
add('grpo-group-size-one', 'GRPO with group_size 1, its lower bound', variant(grpo, { algorithm: { group_size: 1 } }));
add('grpo-kl-clamp-zero', 'GRPO with kl_clamp 0, which must be above 0', variant(grpo, { algorithm: { kl_clamp: 0 } }));
add('grpo-kl-clamp-null', 'GRPO with kl_clamp null, no clamp', variant(grpo, { algorithm: { kl_clamp: null } }));
add('grpo-token-mask-bounds', 'GRPO with off_policy_token_mask_bounds [0.8, 1.25]', variant(grpo, { algorithm: { off_policy_token_mask_bounds: [0.8, 1.25] } }));
add('grpo-token-mask-bounds-three', 'GRPO with off_policy_token_mask_bounds of three numbers where a pair goes', variant(grpo, { algorithm: { off_policy_token_mask_bounds: [0.5, 1, 5] } }));
add('grpo-cosine-schedule', 'GRPO with a cosine learning-rate schedule, warmup_proportion 0.99', variant(grpo, { algorithm: { cosine_lr_schedule_config: { num_steps: 500, warmup_proportion: 0.99, min_lr_ratio: 0.1 } } }));
add('grpo-cosine-warmup-one', 'GRPO with warmup_proportion 1, which must stay below 1', variant(grpo, { algorithm: { cosine_lr_schedule_config: { num_steps: 500, warmup_proportion: 1 } } }));
add('grpo-vllm-config', 'GRPO with a vLLM config at gpu_memory_utilization 1, its upper bound', variant(grpo, { algorithm: { vllm_config: { gpu_memory_utilization: 1, max_num_seqs: 64, sleep_mode: true, tensor_parallel_size: 1 } } }));
add('grpo-vllm-memory-above-one', 'GRPO with vLLM gpu_memory_utilization 1.1, above its upper bound of 1', variant(grpo, { algorithm: { vllm_config: { gpu_memory_utilization: 1.1 } } }));
add('grpo-vllm-unknown-key', "GRPO with vllm_config.swap_space, a key the vLLM section does not have", variant(grpo, { algorithm: { vllm_config: { swap_space: 4 } } }));
add('grpo-fsdp-true', 'GRPO with fsdp: true, FSDP2 with defaults', variant(grpo, { algorithm: { fsdp: true } }));
add('grpo-fsdp-unknown-key', "GRPO with fsdp.shard_everything, not an FSDP key", variant(grpo, { algorithm: { fsdp: { shard_everything: true } } }));
add('grpo-answer-pattern', 'GRPO with an answer grammar and answer continuation', variant(grpo, { algorithm: { constrain_answer_pattern: '<answer>[0-9]+</answer>', answer_continuation: true } }));
add('grpo-answer-continuation-no-pattern', 'GRPO with answer_continuation but no constrain_answer_pattern', variant(grpo, { algorithm: { answer_continuation: true } }));
add('grpo-answer-pattern-anchored', 'GRPO with an answer grammar anchored by ^', variant(grpo, { algorithm: { constrain_answer_pattern: '^<answer>[0-9]+</answer>' } }));
add('grpo-answer-pattern-not-regex', 'GRPO with an answer grammar that does not compile', variant(grpo, { algorithm: { answer_pattern: '<answer>([0-9]+</answer>' } }));
add('grpo-thinking-budget', 'GRPO with thinking_token_budget 256 under max_output_tokens 512', variant(grpo, { algorithm: { thinking_token_budget: 256 } }));
add('grpo-thinking-budget-at-cap', 'GRPO with thinking_token_budget equal to max_output_tokens', variant(grpo, { algorithm: { thinking_token_budget: 512 } }));
add('grpo-thinking-budget-no-cap', 'GRPO with thinking_token_budget but no max_output_tokens', variant(grpo, { algorithm: { thinking_token_budget: 256, max_output_tokens: REMOVE } }));
add('grpo-sequence-packing-flash', 'GRPO packing sequences under flash_attention_2', variant(grpo, { algorithm: { use_sequence_packing: true, attn_implementation: 'flash_attention_2' } }));
add('grpo-sequence-packing-sdpa', 'GRPO packing sequences under sdpa, a dense attention backend', variant(grpo, { algorithm: { use_sequence_packing: true, attn_implementation: 'sdpa' } }));
add('dpo-sequence-packing', 'DPO with use_sequence_packing, which DPO does not accept', variant(dpo, { algorithm: { use_sequence_packing: true, attn_implementation: 'flash_attention_2' } }));
add('sft-quantized-no-checkpointing', 'SFT with quantization nf4 and gradient checkpointing off', variant(sft, { algorithm: { quantization: 'nf4', gradient_checkpointing: false } }));
add('llmppo-lr-alias', 'LLMPPO with its actor rate spelled lr', variant(llmppo, { algorithm: { lr_actor: REMOVE, lr: 0.000002 } }));
add('llmppo-vf-coef-above-one', 'LLMPPO with vf_coef 2: LLMPPO puts no upper bound on vf_coef', variant(llmppo, { algorithm: { vf_coef: 2 } }));
add('llmppo-critic-warmup-negative', 'LLMPPO with critic_warmup_steps -1, below its lower bound of 0', variant(llmppo, { algorithm: { critic_warmup_steps: -1 } }));

// ---------------------------------------------------------------------------------------------------------------
// environment: gym, multi-agent, custom entrypoints, offline, bandit, LLM dataset and rollout.

add('gym-num-envs-one', 'Gym environment with num_envs 1, the lowest it may be', variant(dqn, { environment: { num_envs: 1 } }));
add('gym-num-envs-zero', 'Gym environment with num_envs 0, below its lower bound of 1', variant(dqn, { environment: { num_envs: 0 } }));
add('gym-name-missing', 'Gym environment without a name', variant(dqn, { environment: { name: REMOVE } }));
add('gym-name-empty', 'Gym environment with an empty name', variant(dqn, { environment: { name: '' } }));
add('gym-explicit-env-type', "Gym environment with env_type: gym written out", variant(dqn, { environment: { env_type: 'gym' } }));
add('gym-env-type-unknown', "Environment with env_type 'atari', a kind the platform does not know", variant(dqn, { environment: { env_type: 'atari' } }));
add('gym-config-and-wrappers', 'Gym environment with env_config, wrappers (plain and with arguments), sync and default_type', variant(dqn, {
  environment: { env_config: { max_episode_steps: 500 }, env_wrappers: ['gymnasium.wrappers.RecordEpisodeStatistics', ['gymnasium.wrappers.TimeLimit', { max_episode_steps: 500 }]], sync: true, default_type: 'float64' },
}));
add('gym-config-alias', 'Gym environment with its config spelled config and its wrappers spelled wrappers', variant(dqn, { environment: { config: { render_mode: 'rgb_array' }, wrappers: ['gymnasium.wrappers.ClipAction'] } }));
add('gym-unknown-key', "Gym environment with 'render_mode', not an environment key", variant(dqn, { environment: { render_mode: 'human' } }));
add('gym-custom-entrypoint', 'Custom gym environment built from module:Class with a path and a version', variant(ppo, {
  environment: { name: 'WarehouseRobot-v0', custom: true, entrypoint: 'warehouse.envs:WarehouseEnv', path: 'src', version: 3 },
}));
add('gym-entrypoint-differs', 'Registered gym environment whose entrypoint is a different registered id', variant(dqn, { environment: { entrypoint: 'Acrobot-v1' } }));
add('gym-entrypoint-same', 'Registered gym environment whose entrypoint repeats its name', variant(dqn, { environment: { entrypoint: 'CartPole-v1' } }));
add('gym-factory-without-entrypoint', 'Gym environment with a factory but no entrypoint', variant(dqn, { environment: { factory: 'gymnasium:make' } }));
add('gym-factory-with-entrypoint', 'Custom gym environment with a factory receiving a module:Class entrypoint', variant(dqn, {
  environment: { custom: true, name: 'Maze-v0', entrypoint: 'maze:MazeEnv', factory: 'maze.factory:build' },
}));
add('gym-version-string', "Gym environment with version 'v2' as a string", variant(dqn, { environment: { version: 'v2' } }));
add('multi-agent-custom-entrypoint', 'IPPO against a custom PettingZoo parallel env', variant(ippo, { environment: { name: 'traffic-v0', custom: true, entrypoint: 'traffic.env:TrafficParallelEnv' } }));
add('multi-agent-num-envs-zero', 'MATD3 with environment num_envs 0', variant(matd3, { environment: { num_envs: 0 } }));
add('offline-dataset-path', 'CQN replaying a local HDF5 dataset', variant(cqn, { environment: { minari_dataset_id: REMOVE, dataset_path: 'data/cartpole.h5' } }));
add('offline-implied-env-type', 'CQN with env_type left for the algorithm to imply (offline)', variant(cqn, { environment: { env_type: REMOVE } }));
add('offline-remote-minari', 'CQN downloading its Minari dataset', variant(cqn, { environment: { remote: true, minari_dataset_id: 'D4RL/door/human-v2' } }));
add('offline-unknown-key', "Offline environment with 'dataset', the LLM spelling of a dataset", variant(cqn, { environment: { dataset: 'cartpole' } }));
add('offline-for-dqn', 'DQN given an offline environment with a dataset', variant(dqn, { environment: { env_type: 'offline', minari_dataset_id: 'cartpole/expert-v0' } }));
add('bandit-entrypoint', 'NeuralUCB against a bandit env from an entrypoint with config', variant(neuralUcb, { environment: { features: REMOVE, targets: REMOVE, entrypoint: 'bandits.envs:make_wheel', env_config: { delta: 0.5 } } }));
add('bandit-num-envs-zero', 'NeuralUCB with environment num_envs 0', variant(neuralUcb, { environment: { num_envs: 0 } }));
add('bandit-unknown-key', "Bandit environment with 'custom', a gym-only key", variant(neuralUcb, { environment: { custom: true } }));
add('bandit-env-config-string', 'Bandit environment with env_config as a string where a mapping goes', variant(neuralUcb, { environment: { env_config: 'delta=0.5' } }));
add('bandit-for-dqn', 'DQN given a bandit environment', variant(dqn, { environment: whole({ env_type: 'bandit', features: 'f.csv', targets: 't.csv' }) }));
add('llm-dataset-sft-path', 'SFT over a dataset named by dataset_path with column mapping', variant(sft, { environment: { dataset: REMOVE, dataset_path: 's3://datasets/support-chats.parquet', columns: { prompt: 'question' } } }));
add('llm-dataset-implied', 'DPO with env_type and objective left for the algorithm to imply', variant(dpo, { environment: { env_type: REMOVE, objective: REMOVE } }));
add('llm-dataset-no-source', 'SFT with a dataset environment that names no dataset', variant(sft, { environment: { dataset: REMOVE } }));
add('llm-dataset-no-objective', 'A dataset environment with env_type written out but no objective', variant(sft, { environment: { objective: REMOVE } }));
add('llm-dataset-objective-unknown', "A dataset environment with objective 'rlhf'", variant(sft, { environment: { objective: 'rlhf' } }));
add('llm-dataset-with-entrypoint', 'A dataset environment that also names an entrypoint', variant(sft, { environment: { entrypoint: 'wordle_env:WordleEnv' } }));
add('llm-dataset-with-rubric', 'A dataset environment with a rubric_file_path', variant(sft, { environment: { rubric_file_path: 'rubrics/r.py' } }));
add('llm-dataset-num-envs-zero', 'A dataset environment with num_envs 0', variant(sft, { environment: { num_envs: 0 } }));
add('llm-dataset-split-zero', 'SFT with train_test_split 0, its lower bound', variant(sft, { environment: { train_test_split: 0 } }));
add('llm-dataset-split-above-one', 'SFT with train_test_split 1.01, above its upper bound of 1', variant(sft, { environment: { train_test_split: 1.01 } }));
add('llm-rollout-dataset-implied', 'GRPO over dataset rows with env_type left for the algorithm to imply', variant(grpo, { environment: { env_type: REMOVE } }));
add('llm-rollout-no-rubric', 'GRPO over dataset rows without a rubric', variant(grpo, { environment: { rubric_file_path: REMOVE } }));
add('llm-rollout-no-prompt-template', 'GRPO over dataset rows without a prompt template', variant(grpo, { environment: { prompt_template: REMOVE } }));
add('llm-rollout-reward-alias', 'GRPO with the rubric spelled reward_file_path and reward_fn_name', variant(grpo, { environment: { rubric_file_path: REMOVE, rubric_name: REMOVE, reward_file_path: 'rewards/gsm8k.py', reward_fn_name: 'score' } }));
add('llm-rollout-dataset-multi-turn', 'GRPO over dataset rows with max_turns 2', variant(grpo, { environment: { max_turns: 2 } }));
add('llm-rollout-two-sources', 'GRPO naming both dataset rows and an entrypoint', variant(grpo, { environment: { entrypoint: 'wordle_env:WordleEnv' } }));
add('llm-rollout-no-source', 'GRPO with a rollout environment that names no source', variant(grpo, { environment: whole({ env_type: 'rollout', max_turns: 1 }) }));
add('llm-rollout-env-url-list', 'LLMREINFORCE against a list of interchangeable env_url replicas', variant(llmreinforce, { environment: { env_url: ['http://env-0.envs:8000', 'http://env-1.envs:8000'], request_timeout_s: 0 } }));
add('llm-rollout-env-url-no-turns', 'LLMREINFORCE against an env_url without max_turns', variant(llmreinforce, { environment: { max_turns: REMOVE } }));
add('llm-rollout-max-turns-zero', 'LLMREINFORCE with max_turns 0, below its lower bound of 1', variant(llmreinforce, { environment: { max_turns: 0 } }));
add('llm-rollout-env-packages', 'LLMPPO entrypoint env with env_packages to install and two env hosts', variant(llmppo, { environment: { env_packages: { uv: ['wordle-env==0.3.1'] }, env_hosts: 2 } }));
add('llm-rollout-env-packages-empty', 'LLMPPO entrypoint env with env_packages naming no package', variant(llmppo, { environment: { env_packages: { pip: [] } } }));
add('llm-rollout-env-config-env-id', 'LLMPPO entrypoint env with env_id inside env_config', variant(llmppo, { environment: { env_config: { env_id: 'wordle' } } }));
add('llm-rollout-observation-both', 'LLMPPO with both observation_field and observation_processor', variant(llmppo, { environment: { observation_field: 'text', observation_processor: 'obs:render' } }));
add('llm-rollout-env-image-sessions', 'GSPO env image with two sessions per host, each told its own port, and a backing service', variant(gspo, {
  environment: {
    env_sessions_per_host: 2,
    env_session_ports: { PORT: 8000 },
    env_vars: { LOG_LEVEL: 'info' },
    env_services: [{ name: 'redis', port: 6379, url_env: 'REDIS_URL', containers: [{ name: 'redis', image: 'redis:7', port: 6379 }] }],
  },
}));
add('llm-rollout-env-image-sessions-no-ports', 'GSPO env image with two sessions per host but no env_session_ports', variant(gspo, { environment: { env_sessions_per_host: 2 } }));
add('llm-rollout-env-vars-without-image', 'LLMPPO entrypoint env with env_vars, which configure env_image Pods', variant(llmppo, { environment: { env_vars: { LOG_LEVEL: 'debug' } } }));
add('llm-rollout-env-port-max', 'GSPO env image on port 65535, the highest port', variant(gspo, { environment: { env_port: 65535 } }));
add('llm-rollout-env-port-too-high', 'GSPO env image on port 65536, above the highest port', variant(gspo, { environment: { env_port: 65536 } }));
add('llm-rollout-service-two-ports', 'GSPO env service with two containers that both set a port', variant(gspo, {
  environment: { env_services: [{ name: 'db', port: 5432, url_env: 'DB_URL', containers: [{ name: 'db', image: 'postgres:16', port: 5432 }, { name: 'sidecar', image: 'busybox', port: 9000 }] }] },
}));
add('llm-rollout-segments', 'LLMPPO with context restarts every 2048 prompt tokens keeping two turns', variant(llmppo, { environment: { segment_prompt_tokens: 2048, restart_keep_turns: 2, restart_older_obs_field: 'summary' } }));
add('llm-rollout-keep-turns-no-segment', 'LLMPPO with restart_keep_turns but no segment limit', variant(llmppo, { environment: { restart_keep_turns: 1 } }));
add('llm-rollout-task-family-no-adaptive', 'GRPO with task_family_field but adaptive_task_sampling off', variant(grpo, { environment: { task_family_field: 'template' } }));
add('llm-rollout-unknown-key', "Rollout environment with 'reward_model', not an environment key", variant(grpo, { environment: { reward_model: 'rm-7b' } }));
add('llm-env-type-gym-for-grpo', 'GRPO given a gym environment', variant(grpo, { environment: whole({ env_type: 'gym', name: 'CartPole-v1' }) }));

// ---------------------------------------------------------------------------------------------------------------
// training: step-driven RL, epoch-driven LLM, colocated and async rollout, bandit episodes, multi-agent scores.

add('training-omitted', 'DQN with no training section: every training default', variant(dqn, { training: REMOVE }));
add('training-null', 'The training section written as null', variant(dqn, { training: null }));
add('training-max-steps-one', 'max_steps 1, its lower bound (evo_steps then defaults to 1 too)', variant(dqn, { training: { max_steps: 1, evo_steps: REMOVE } }));
add('training-max-steps-zero', 'max_steps 0, below its lower bound of 1', variant(dqn, { training: { max_steps: 0 } }));
add('training-evo-steps-equal-max', 'evo_steps equal to max_steps', variant(dqn, { training: { max_steps: 10000, evo_steps: 10000 } }));
add('training-evo-steps-above-max', 'evo_steps one above max_steps', variant(dqn, { training: { max_steps: 10000, evo_steps: 10001 } }));
add('training-evo-steps-zero', 'evo_steps 0, below its lower bound of 1', variant(dqn, { training: { evo_steps: 0 } }));
add('training-pop-size-one', 'pop_size 1, its lower bound', variant(dqn, { training: { pop_size: 1 } }));
add('training-pop-size-zero', 'pop_size 0, below its lower bound of 1', variant(dqn, { training: { pop_size: 0 } }));
add('training-aliases', 'training keys spelled population_size and metrics_interval', variant(dqn, { training: { pop_size: REMOVE, evo_steps: REMOVE, population_size: 6, metrics_interval: 5000 } }));
add('training-eps-inverted', 'eps_start 0.05 below eps_end 1.0', variant(dqn, { training: { eps_start: 0.05, eps_end: 1.0 } }));
add('training-learning-delay-negative', 'learning_delay -1, below its lower bound of 0', variant(dqn, { training: { learning_delay: -1 } }));
add('training-eval-and-checkpoints', 'Evaluation and checkpoint settings on a PPO run, with a target score and a wall-clock limit', variant(ppo, {
  training: { eval_steps: 1000, eval_loop: 3, target_score: 200.5, checkpoint_steps: 50000, checkpoint_path: '/checkpoints/ppo', overwrite_checkpoints: true, max_wall_seconds: 86400, reporting_interval: 2048 },
}));
add('training-eval-loop-zero', 'eval_loop 0, below its lower bound of 1', variant(ppo, { training: { eval_loop: 0 } }));
add('training-reporting-interval-zero', 'reporting_interval 0, below its lower bound of 1', variant(ppo, { training: { reporting_interval: 0 } }));
add('training-max-wall-seconds-zero', 'max_wall_seconds 0, which must be above 0', variant(ppo, { training: { max_wall_seconds: 0 } }));
add('training-env-resource-ratio-one', 'env_resource_ratio 1, its upper bound', variant(ppo, { training: { env_resource_ratio: 1 } }));
add('training-env-resource-ratio-zero', 'env_resource_ratio 0, which must be above 0', variant(ppo, { training: { env_resource_ratio: 0 } }));
add('training-unknown-key', "training with 'epochs', not a training key", variant(ppo, { training: { epochs: 10 } }));
add('training-retired-async-rollout', 'training with the retired async_rollout key', variant(grpo, { training: { async_rollout: true } }));
add('training-evo-epochs-without-epochs', 'evo_epochs without num_epochs', variant(sft, { training: { num_epochs: REMOVE } }));
add('training-eval-greedy-off', 'eval_greedy false with eval_samples_per_task 4', variant(grpo, { training: { eval_greedy: false, eval_samples_per_task: 4, evaluation_interval: 10 } }));
add('training-eval-greedy-off-no-samples', 'eval_greedy false and no held-out samples', variant(grpo, { training: { eval_greedy: false } }));
add('training-bandit-episodes', 'NeuralTS with episode_steps and hpo on', variant(neuralTs, { training: { episode_steps: 100, hpo: true, pop_size: 4 } }));
add('training-episode-steps-zero', 'episode_steps 0, below its lower bound of 1', variant(neuralTs, { training: { episode_steps: 0 } }));
add('training-multi-agent-experience-sharing', 'MADDPG with experience sharing across the population', variant(maddpg, { training: { experience_sharing: true } }));

const asyncGrpo = variant(grpo, {
  training: { rollout_mode: 'async', rollout_engines_per_agent: 1, rollout_batch_size: 4, training_gpus_per_agent: 2, weight_sync_backend: 'nccl', weight_sync_interval: 1, rollout_version_stamp: 'publish' },
  replay_buffer: { kind: 'llm', max_size: 1024, max_rollout_version_lag: 2, drop_uninformative_groups: true },
});
add('training-async-rollout', 'GRPO with async rollout on one engine, two trainer GPUs and the LLM rollout buffer', asyncGrpo);
add('training-async-engines-auto', "Async rollout with rollout_engines_per_agent 'auto'", variant(asyncGrpo, { training: { rollout_engines_per_agent: 'auto' } }));
add('training-async-engines-zero', 'Async rollout with rollout_engines_per_agent 0', variant(asyncGrpo, { training: { rollout_engines_per_agent: 0 } }));
add('training-async-no-buffer', 'Async rollout without a replay_buffer section', variant(asyncGrpo, { replay_buffer: REMOVE }));
add('training-async-classic-buffer', 'Async rollout with a classic replay buffer', variant(asyncGrpo, { replay_buffer: whole({ max_size: 1024 }) }));
add('training-async-batch-not-multiple', 'Async rollout with rollout_batch_size 3 over 2 trainer GPUs', variant(asyncGrpo, { training: { rollout_batch_size: 3 } }));
add('training-async-experience-sharing', 'Async rollout with experience_sharing', variant(asyncGrpo, { training: { experience_sharing: true } }));
add('training-async-weight-sync-unknown', "weight_sync_backend 'grpc', not one of filesystem, nccl", variant(asyncGrpo, { training: { weight_sync_backend: 'grpc' } }));
add('training-rollout-mode-unknown', "rollout_mode 'remote', not one of colocated, async", variant(grpo, { training: { rollout_mode: 'remote' } }));
add('training-prefix-cache-reuse', 'Async rollout reusing the prefix cache with max_rollout_version_lag 2', variant(asyncGrpo, { training: { reuse_prefix_cache_across_syncs: true } }));
add('training-prefix-cache-reuse-lag-zero', 'Prefix cache reuse with max_rollout_version_lag 0', variant(asyncGrpo, { training: { reuse_prefix_cache_across_syncs: true }, replay_buffer: { max_rollout_version_lag: 0 } }));
add('training-checkpoint-export-merged', 'LLM checkpoint export merged at the best checkpoint', variant(grpo, { training: { checkpoint_export: { format: 'merged', trigger: 'best' }, checkpoint_optimizer: false } }));
add('training-checkpoint-export-unknown', "Checkpoint export format 'gguf'", variant(grpo, { training: { checkpoint_export: { format: 'gguf' } } }));
add('training-colocated-explicit', 'GRPO with rollout_mode colocated written out', variant(grpo, { training: { rollout_mode: 'colocated' } }));

// ---------------------------------------------------------------------------------------------------------------
// network: MLP, CNN, LSTM, CNN-LSTM, SimBa, multi-input, deferred, pretrained fine-tuning with LoRA.

add('network-omitted', 'DQN with no network section: the encoder is inferred later', variant(dqn, { network: REMOVE }));
add('network-null', 'The network section written as null', variant(dqn, { network: null }));
add('network-mlp-nested-arch', 'MLP network with arch nested under encoder_config', variant(dqn, { network: whole({ latent_dim: 64, encoder_config: { arch: 'mlp', hidden_size: [128] }, head_config: { hidden_size: [64] } }) }));
add('network-mlp-no-head', 'MLP network without a head_config', variant(dqn, { network: { head_config: REMOVE } }));
add('network-mlp-hidden-empty', 'MLP encoder with an empty hidden_size list', variant(dqn, { network: { encoder_config: { hidden_size: [] } } }));
add('network-mlp-nodes-at-max', 'MLP encoder with a 256-wide layer, the default max_mlp_nodes', variant(dqn, { network: { encoder_config: { hidden_size: [256, 256] } } }));
add('network-mlp-nodes-above-max', 'MLP encoder with a 257-wide layer, one above the default max_mlp_nodes', variant(dqn, { network: { encoder_config: { hidden_size: [257] } } }));
add('network-mlp-too-many-layers', 'MLP encoder with seven hidden layers, above the default max_hidden_layers of 6', variant(dqn, { network: { encoder_config: { hidden_size: [64, 64, 64, 64, 64, 64, 64] } } }));
add('network-mlp-activation-unknown', "MLP encoder with activation 'Swish'", variant(dqn, { network: { encoder_config: { activation: 'Swish' } } }));
add('network-mlp-unknown-key', "MLP encoder with 'dropout', not an MLP key", variant(dqn, { network: { encoder_config: { dropout: 0.1 } } }));
add('network-unknown-key', "A network with an arch and 'optimizer', not a network key", variant(dqn, { network: { optimizer: 'adam' } }));
add('network-latent-above-max', 'latent_dim 256 above max_latent_dim 128', variant(dqn, { network: { latent_dim: 256 } }));
add('network-max-latent-one', 'max_latent_dim 1, which must be above 1', variant(dqn, { network: { max_latent_dim: 1, min_latent_dim: 1, latent_dim: 1 } }));
add('network-arch-unknown', "arch 'transformer', not an encoder the platform knows", variant(dqn, { network: { arch: 'transformer' } }));
add('network-cnn', 'CNN encoder on an Atari environment', variant(ppo, {
  environment: { name: 'ALE/Pong-v5', num_envs: 8 },
  network: whole({ arch: 'cnn', latent_dim: 128, encoder_config: { channel_size: [32, 64, 64], kernel_size: [8, 4, 3], stride_size: [4, 2, 1] }, head_config: { hidden_size: [128] } }),
}));
add('network-cnn-lengths-differ', 'CNN encoder with three channels but two kernel sizes', variant(ppo, {
  network: whole({ arch: 'cnn', encoder_config: { channel_size: [32, 64, 64], kernel_size: [8, 4], stride_size: [4, 2, 1] }, head_config: { hidden_size: [128] } }),
}));
add('network-cnn-lstm', 'CNN-LSTM encoder for a recurrent PPO on images', variant(recurrentPpo, {
  environment: { name: 'MiniGrid-MemoryS7-v0' },
  network: whole({ arch: 'cnn_lstm', latent_dim: 64, encoder_config: { channel_size: [16, 32], kernel_size: [3, 3], stride_size: [1, 1], hidden_state_size: 64 }, head_config: { hidden_size: [64] } }),
}));
add('network-lstm-state-above-max', 'LSTM encoder with hidden_state_size 512 above max_hidden_state_size 256', variant(recurrentPpo, { network: { encoder_config: { hidden_state_size: 512 } } }));
add('network-lstm-dropout-one', 'LSTM encoder with dropout 1, its upper bound', variant(recurrentPpo, { network: { encoder_config: { dropout: 1, num_layers: 2 } } }));
add('network-simba', 'SimBa encoder on a TD3 run', variant(td3, { network: { arch: 'simba', latent_dim: 64, encoder_config: { hidden_size: 128, num_blocks: 2 }, head_config: { hidden_size: [64] } } }));
add('network-simba-blocks-above-max', 'SimBa encoder with num_blocks 5 above max_blocks 4', variant(td3, { network: { arch: 'simba', encoder_config: { hidden_size: 128, num_blocks: 5 }, head_config: { hidden_size: [64] } } }));
add('network-multi-input', 'Multi-input encoder with MLP and CNN sub-encoders for a dict observation space', variant(ppo, {
  network: whole({
    arch: 'multiinput',
    latent_dim: 64,
    encoder_config: { latent_dim: 64, vector_space_mlp: true, mlp_config: { hidden_size: [64] }, cnn_config: { channel_size: [16], kernel_size: [3], stride_size: [1] } },
    head_config: { hidden_size: [64] },
  }),
}));
add('network-multi-input-latent-below-min', 'Multi-input encoder with latent_dim 8 below its min_latent_dim 16', variant(ppo, {
  network: whole({ arch: 'multiinput', encoder_config: { latent_dim: 8 }, head_config: { hidden_size: [64] } }),
}));
add('network-deferred', 'A network with no arch: latent size and head only, the encoder inferred from the observation space', variant(dqn, {
  network: whole({ latent_dim: 32, head_config: { hidden_size: [64] }, encoder_config: { hidden_size: [64] } }),
}));
add('network-deferred-unknown-key', "A network with no arch and 'layers', not a network key", variant(dqn, { network: whole({ latent_dim: 32, layers: 3 }) }));
add('network-deferred-squash', 'A deferred network with squash_output and random_seed for DDPG', variant(ddpg, { network: whole({ squash_output: true, random_seed: 7 }) }));
add('network-pretrained-for-dqn', 'DQN with a network naming a pretrained model', variant(dqn, { network: whole(finetuning) }));
add('network-mlp-for-grpo', 'GRPO with an MLP network instead of a pretrained model', variant(grpo, { network: whole(mlpNetwork) }));
add('network-pretrained-no-context', 'GRPO network naming a model but no max_context_length', variant(grpo, { network: { max_context_length: REMOVE } }));
add('network-pretrained-unknown-key', "GRPO network with 'revision', not a fine-tuning key", variant(grpo, { network: { revision: 'main' } }));
add('network-pretrained-no-lora', 'SFT full fine-tuning without a LoRA adapter', variant(sft, { network: { lora_config: REMOVE } }));
add('network-pretrained-empty-name', 'GRPO network with an empty model name', variant(grpo, { network: { pretrained_model_name_or_path: '' } }));
add('network-lora-rank-at-max', 'LoRA rank 128 on Qwen2.5-0.5B, the largest rank vLLM serves for it', variant(grpo, { network: { pretrained_model_name_or_path: 'Qwen/Qwen2.5-0.5B-Instruct', lora_config: { lora_r: 128, lora_alpha: 256 } } }));
add('network-lora-rank-above-max', 'LoRA rank 256 on Qwen2.5-0.5B, above the largest rank vLLM serves for it', variant(grpo, { network: { pretrained_model_name_or_path: 'Qwen/Qwen2.5-0.5B-Instruct', lora_config: { lora_r: 256, lora_alpha: 512 } } }));
add('network-lora-rank-zero', 'LoRA rank 0, below its lower bound of 1', variant(grpo, { network: { lora_config: { lora_r: 0 } } }));
add('network-lora-module-unknown', 'LoRA targeting c_attn, not a module of Qwen3-1.7B', variant(grpo, { network: { lora_config: { target_modules: ['c_attn'] } } }));
add('network-lora-all-linear', "LoRA targeting 'all-linear'", variant(grpo, { network: { lora_config: { target_modules: 'all-linear' } } }));
add('network-lora-unlisted-model', 'LoRA with free module names on a model the platform has no record of', variant(grpo, { network: { pretrained_model_name_or_path: 'acme/house-model-7b', lora_config: { target_modules: ['c_attn', 'c_proj'] } } }));
add('network-lora-moe-parameters', 'LoRA on gpt-oss-20b with its packed expert parameters and no dropout', variant(grpo, {
  network: { pretrained_model_name_or_path: 'openai/gpt-oss-20b', max_context_length: 4096, lora_config: { target_modules: ['q_proj', 'v_proj'], target_parameters: ['mlp.experts.gate_up_proj'], lora_dropout: 0 } },
}));
add('network-lora-dropout-one', 'LoRA dropout 1, its upper bound', variant(grpo, { network: { lora_config: { lora_dropout: 1 } } }));
add('network-lora-dropout-above-one', 'LoRA dropout 1.01, above its upper bound of 1', variant(grpo, { network: { lora_config: { lora_dropout: 1.01 } } }));
add('network-lora-unknown-key', "LoRA config with 'bias', not a LoRA key here", variant(grpo, { network: { lora_config: { bias: 'none' } } }));

// ---------------------------------------------------------------------------------------------------------------
// mutation

add('mutation-omitted', 'PPO with HPO on but no mutation section', variant(ppo, { mutation: REMOVE }));
add('mutation-empty', 'An empty mutation mapping, the same no-op as omitting it', variant(ppo, { mutation: whole({}) }));
add('mutation-null', 'The mutation section written as null', variant(ppo, { mutation: null }));
add('mutation-probabilities-all-zero', 'Every mutation probability 0', variant(ppo, { mutation: { probabilities: { no_mut: 0, arch_mut: 0, new_layer: 0, params_mut: 0, act_mut: 0, rl_hp_mut: 0 } } }));
add('mutation-probability-one', 'rl_hp_mut 1, the upper bound of a probability', variant(ppo, { mutation: { probabilities: { rl_hp_mut: 1 } } }));
add('mutation-probability-above-one', 'arch_mut 1.01, above the upper bound of a probability', variant(ppo, { mutation: { probabilities: { arch_mut: 1.01 } } }));
add('mutation-probability-negative', 'no_mut -0.1, below the lower bound of a probability', variant(ppo, { mutation: { probabilities: { no_mut: -0.1 } } }));
add('mutation-probabilities-unknown-key', "Mutation probabilities with 'crossover'", variant(ppo, { mutation: { probabilities: { crossover: 0.1 } } }));
add('mutation-unknown-key', "A mutation section with 'probability' (singular)", variant(ppo, { mutation: { probability: 0.5 } }));
add('mutation-sd-negative', 'mutation_sd -0.1, below its lower bound of 0', variant(ppo, { mutation: { mutation_sd: -0.1 } }));
add('mutation-rand-seed-negative', 'rand_seed -1, below its lower bound of 0', variant(ppo, { mutation: { rand_seed: -1 } }));
add('mutation-hp-grow-shrink', 'rl_hp_selection with explicit grow and shrink factors at their bounds (1 and 0)', variant(ppo, {
  mutation: { rl_hp_selection: whole({ learn_step: { min: 512, max: 8192, grow_factor: 1, shrink_factor: 0 }, gae_lambda: { min: 0.9, max: 0.99 } }) },
}));
add('mutation-hp-grow-below-one', 'rl_hp_selection with grow_factor 0.9, below its lower bound of 1', variant(ppo, { mutation: { rl_hp_selection: { lr: { grow_factor: 0.9 } } } }));
add('mutation-hp-shrink-above-one', 'rl_hp_selection with shrink_factor 1.1, above its upper bound of 1', variant(ppo, { mutation: { rl_hp_selection: { lr: { shrink_factor: 1.1 } } } }));
add('mutation-hp-min-above-max', 'rl_hp_selection with min above max', variant(ppo, { mutation: { rl_hp_selection: { lr: { min: 0.01, max: 0.0001 } } } }));
add('mutation-hp-min-equal-max', 'rl_hp_selection with min equal to max', variant(ppo, { mutation: { rl_hp_selection: { lr: { min: 0.001, max: 0.001 } } } }));
add('mutation-hp-missing-max', 'rl_hp_selection with a range that has no max', variant(ppo, { mutation: { rl_hp_selection: whole({ lr: { min: 0.0001 } }) } }));
add('mutation-hp-unknown-name', 'rl_hp_selection mutating clip_coef, which DQN does not have', variant(dqn, { training: { hpo: true }, mutation: { rl_hp_selection: { clip_coef: { min: 0.1, max: 0.3 } } } }));
add('mutation-hp-misspelled', "rl_hp_selection mutating 'learning_rate' rather than lr", variant(ppo, { mutation: { rl_hp_selection: whole({ learning_rate: { min: 0.0001, max: 0.01 } }) } }));
add('mutation-hp-not-numeric', 'rl_hp_selection mutating double, a flag, on DQN', variant(dqn, { mutation: { rl_hp_selection: { double: { min: 0, max: 1 } } } }));
add('mutation-hp-union-not-numeric', 'rl_hp_selection mutating off_policy_token_mask_bounds, which is a pair, on GRPO', variant(grpo, { mutation: { rl_hp_selection: { off_policy_token_mask_bounds: { min: 0.5, max: 5 } } } }));
add('mutation-hp-optional-numeric', 'rl_hp_selection mutating target_kl, a number that may be unset, on PPO', variant(ppo, { mutation: { rl_hp_selection: { target_kl: { min: 0.01, max: 0.05 } } } }));
add('mutation-hp-alias', 'rl_hp_selection mutating lr on LLMPPO, the alias of lr_actor', variant(llmppo, { mutation: { rl_hp_selection: { lr: { min: 0.000001, max: 0.00001 } } } }));
add('mutation-hp-llm-group-size', 'rl_hp_selection mutating group_size and temperature on GRPO', variant(grpo, { training: { hpo: true, pop_size: 4 }, mutation: { rl_hp_selection: { group_size: { min: 4, max: 16 }, temperature: { min: 0.5, max: 1 } } } }));
add('mutation-hp-bandit-lamb', 'rl_hp_selection mutating lamb and reg on NeuralUCB', variant(neuralUcb, { mutation: { rl_hp_selection: { lamb: { min: 0.1, max: 2 }, reg: { min: 0.0001, max: 0.01 } } } }));
add('mutation-hp-multi-agent-policy-freq', 'rl_hp_selection mutating policy_freq on MADDPG, which has none', variant(maddpg, { mutation: { rl_hp_selection: { policy_freq: { min: 1, max: 4 } } } }));
add('mutation-network-ranges', 'mutation.network bounds folded onto an MLP network', variant(ppo, {
  mutation: { network: { min_latent_dim: 16, max_latent_dim: 256, encoder: { min_mlp_nodes: 16, max_mlp_nodes: 512 }, head_net: { max_hidden_layers: 3 } } },
}));
add('mutation-network-ranges-conflict', 'mutation.network encoder bounds that the network\'s own layers fall outside of', variant(ppo, { mutation: { network: { encoder: { max_mlp_nodes: 32 } } } }));
add('mutation-network-unknown-key', "mutation.network with 'max_layers', not a range key", variant(ppo, { mutation: { network: { max_layers: 4 } } }));

// ---------------------------------------------------------------------------------------------------------------
// replay_buffer: classic, n-step, prioritized, the LLM rollout deque, group replay.

add('replay-buffer-memory-size-alias', 'A classic buffer sized with memory_size', variant(dqn, { replay_buffer: whole({ memory_size: 20000, name: 'cartpole-buffer' }) }));
add('replay-buffer-classic-kind', 'A classic buffer with kind: classic written out', variant(dqn, { replay_buffer: { kind: 'classic' } }));
add('replay-buffer-kind-unknown', "replay_buffer kind 'prioritized', not classic or llm", variant(dqn, { replay_buffer: { kind: 'prioritized' } }));
add('replay-buffer-max-size-one', 'replay_buffer max_size 1, its lower bound', variant(dqn, { replay_buffer: { max_size: 1 } }));
add('replay-buffer-max-size-zero', 'replay_buffer max_size 0, below its lower bound of 1', variant(dqn, { replay_buffer: { max_size: 0 } }));
add('replay-buffer-unknown-key', "A classic buffer with 'capacity', not a buffer key", variant(dqn, { replay_buffer: { capacity: 1000 } }));
add('replay-buffer-null', 'The replay_buffer section written as null', variant(dqn, { replay_buffer: null }));
add('replay-buffer-per-alpha-one', 'Prioritized replay with alpha 1, its upper bound', variant(rainbow, { replay_buffer: { per_buffer_args: { alpha: 1 } } }));
add('replay-buffer-per-alpha-above-one', 'Prioritized replay with alpha 1.5, above its upper bound of 1', variant(rainbow, { replay_buffer: { per_buffer_args: { alpha: 1.5 } } }));
add('replay-buffer-per-alpha-null', 'Prioritized replay with alpha null, which means its default', variant(rainbow, { replay_buffer: { per_buffer_args: { alpha: null } } }));
add('replay-buffer-n-step-zero', 'n-step buffer with n_step 0, below its lower bound of 1', variant(rainbow, { replay_buffer: { n_step_buffer_args: { n_step: 0 } } }));
add('replay-buffer-per-for-dqn', 'A prioritized buffer on plain DQN', variant(dqn, { replay_buffer: { per_buffer: true } }));
add('replay-buffer-for-ppo', 'A classic replay buffer on on-policy PPO', variant(ppo, { replay_buffer: { max_size: 10000 } }));
add('replay-buffer-llm-colocated', 'The LLM rollout buffer on a colocated GRPO run', variant(grpo, { replay_buffer: { kind: 'llm', max_size: 512 } }));
add('replay-buffer-llm-classic-key', 'The LLM rollout buffer with per_buffer, a classic-buffer key', variant(grpo, { replay_buffer: { kind: 'llm', per_buffer: true } }));
add('replay-buffer-llm-lag-negative', 'The LLM rollout buffer with max_rollout_version_lag -1', variant(asyncGrpo, { replay_buffer: { max_rollout_version_lag: -1 } }));
add('replay-buffer-group-replay', 'Group replay on async GRPO with group_size 8', variant(asyncGrpo, { replay_buffer: { group_replay_max_age: 4 } }));
add('replay-buffer-group-replay-group-one', 'Group replay on GRPO with group_size 1', variant(asyncGrpo, { algorithm: { group_size: 1 }, replay_buffer: { group_replay_max_age: 4 } }));
add('replay-buffer-group-replay-llmppo', 'Group replay on LLMPPO, which has no groups', variant(llmppo, { replay_buffer: { kind: 'llm', group_replay_max_age: 2 } }));
add('replay-buffer-group-replay-cispo', 'Group replay on CISPO, a GRPO-family algorithm', variant(cispo, { replay_buffer: { kind: 'llm', group_replay_max_age: 2 } }));

// ---------------------------------------------------------------------------------------------------------------
// tournament_selection / selection_strategy: tournament and multi-frequency PBT.

add('selection-tournament-size-one', 'tournament_size 1, its lower bound', variant(dqn, { tournament_selection: { tournament_size: 1 } }));
add('selection-tournament-size-zero', 'tournament_size 0, below its lower bound of 1', variant(dqn, { tournament_selection: { tournament_size: 0 } }));
add('selection-tournament-elitism-off', 'Tournament selection with elitism off, a label and strategy written out', variant(dqn, { tournament_selection: { strategy: 'tournament', elitism: false, name: 'tour' } }));
add('selection-tournament-unknown-key', "Tournament selection with 'k', not a selection key", variant(dqn, { tournament_selection: { k: 3 } }));
add('selection-strategy-key', 'The section spelled selection_strategy', variant(variant(dqn, { tournament_selection: REMOVE }), { selection_strategy: { tournament_size: 3, elitism: true } }));
add('selection-strategy-key-size-zero', 'selection_strategy spelling with tournament_size 0', variant(variant(dqn, { tournament_selection: REMOVE }), { selection_strategy: { tournament_size: 0 } }));
add('selection-strategy-unknown', "selection strategy 'roulette'", variant(dqn, { tournament_selection: { strategy: 'roulette' } }));
add('selection-null', 'The tournament_selection section written as null', variant(dqn, { tournament_selection: null }));
add('selection-both-spellings', 'Both tournament_selection and selection_strategy in one manifest', variant(dqn, { selection_strategy: { tournament_size: 4 } }));

const mfpbt = variant(ppo, {
  training: { pop_size: 6 },
  tournament_selection: REMOVE,
  selection_strategy: { strategy: 'multi_frequency', n_subpopulations: 2 },
});
add('selection-multi-frequency', 'Multi-frequency PBT: 6 agents in 2 subpopulations, brackets resolved from defaults', mfpbt);
add('selection-multi-frequency-explicit', 'Multi-frequency PBT with every bracket and the frequency ratios written out', variant(mfpbt, {
  training: { pop_size: 12 },
  selection_strategy: { n_subpopulations: 3, n_winners: 1, n_survivors: 0, n_open_for_migration: 1, n_losers: 2, evolution_frequency_ratios: [1, 4, 16], name: 'mf' },
}));
add('selection-multi-frequency-pop-five', 'Multi-frequency PBT with pop_size 5, below the smallest layout of 6', variant(mfpbt, { training: { pop_size: 5 } }));
add('selection-multi-frequency-one-subpop', 'Multi-frequency PBT with n_subpopulations 1, below its lower bound of 2', variant(mfpbt, { selection_strategy: { n_subpopulations: 1 } }));
add('selection-multi-frequency-indivisible', 'Multi-frequency PBT with pop_size 8 over 3 subpopulations', variant(mfpbt, { training: { pop_size: 8 }, selection_strategy: { n_subpopulations: 3 } }));
add('selection-multi-frequency-ratios-flat', 'Multi-frequency PBT with ratios [1, 1], not strictly increasing', variant(mfpbt, { selection_strategy: { evolution_frequency_ratios: [1, 1] } }));
add('selection-multi-frequency-ratios-length', 'Multi-frequency PBT with three ratios for two subpopulations', variant(mfpbt, { selection_strategy: { evolution_frequency_ratios: [1, 5, 10] } }));
add('selection-multi-frequency-brackets-sum', 'Multi-frequency PBT whose brackets add up to more than a subpopulation', variant(mfpbt, { selection_strategy: { n_winners: 2, n_open_for_migration: 1, n_losers: 1 } }));
add('selection-multi-frequency-unknown-key', "Multi-frequency PBT with 'tournament_size', a tournament key", variant(mfpbt, { selection_strategy: { tournament_size: 2 } }));
add('selection-multi-frequency-tournament-spelling', 'Multi-frequency PBT under the tournament_selection key', variant(variant(mfpbt, { selection_strategy: REMOVE }), { tournament_selection: { strategy: 'multi_frequency' } }));

// ---------------------------------------------------------------------------------------------------------------
// Cross-section rules.

add('cross-num-envs-agree', 'PPO with num_envs 16 in both environment and algorithm', variant(ppo, { algorithm: { num_envs: 16 } }));
add('cross-num-envs-disagree', 'PPO with environment num_envs 16 but algorithm num_envs 4', variant(ppo, { algorithm: { num_envs: 4 } }));
add('cross-num-envs-algorithm-only', 'PPO with num_envs only in the algorithm section', variant(ppo, { algorithm: { num_envs: 4 }, environment: { num_envs: REMOVE } }));
add('cross-vect-noise-dim-disagree', 'DDPG with environment num_envs 4 but vect_noise_dim 2', variant(ddpg, { algorithm: { vect_noise_dim: 2 } }));
add('cross-vect-noise-dim-agree', 'DDPG with vect_noise_dim equal to environment num_envs', variant(ddpg, { algorithm: { vect_noise_dim: 4 } }));
add('cross-simba-recurrent', "'Recurrent PPO' with a SimBa encoder", variant(recurrentPpo, { network: whole({ arch: 'simba', encoder_config: { hidden_size: 64, num_blocks: 2 }, head_config: { hidden_size: [64] } }) }));
add('cross-simba-flag-recurrent', 'PPO with recurrent true and a deferred network with simba: true', variant(ppo, { algorithm: { recurrent: true }, network: whole({ simba: true }) }));
add('cross-simba-non-recurrent', 'PPO (not recurrent) with a SimBa encoder', variant(ppo, { network: whole({ arch: 'simba', encoder_config: { hidden_size: 64, num_blocks: 2 }, head_config: { hidden_size: [64] } }) }));
add('cross-pretrained-missing', 'GRPO with no network section and no model named anywhere', variant(grpo, { network: REMOVE }));
add('cross-pretrained-on-algorithm', 'GRPO naming its model in the algorithm section, with no network section', variant(grpo, { network: REMOVE, algorithm: { pretrained_model_name_or_path: 'Qwen/Qwen3-1.7B', max_model_len: 2048 } }));
add('cross-pretrained-disagree', 'GRPO naming one model in the algorithm section and another in the network section', variant(grpo, { algorithm: { pretrained_model_name_or_path: 'Qwen/Qwen3-4B' } }));
add('cross-context-length-disagree', 'GRPO with algorithm.max_model_len 2048 but network.max_context_length 1024', variant(grpo, { algorithm: { max_model_len: 2048 } }));
add('cross-lora-disagree', 'GRPO with a LoRA config in both sections that differ', variant(grpo, { algorithm: { lora_config: { lora_r: 8, lora_alpha: 16 } } }));
add('cross-micro-mini-batch', 'GRPO with mini_batch_size 8, a multiple of micro_batch_size_per_gpu 4', variant(grpo, { algorithm: { mini_batch_size: 8, micro_batch_size_per_gpu: 4 } }));
add('cross-micro-mini-batch-not-multiple', 'GRPO with mini_batch_size 6 over micro_batch_size_per_gpu 4', variant(grpo, { algorithm: { mini_batch_size: 6, micro_batch_size_per_gpu: 4 } }));
add('cross-micro-mini-batch-sft', 'SFT with mini_batch_size 16 over micro_batch_size_per_gpu 3', variant(sft, { algorithm: { mini_batch_size: 16, micro_batch_size_per_gpu: 3 } }));
add('cross-max-row-tokens-derived', 'LLMPPO with segment_prompt_tokens: max_row_tokens is derived from it and max_output_tokens', variant(llmppo, { environment: { segment_prompt_tokens: 512 } }));
add('cross-max-row-tokens-disagree', 'LLMPPO with an explicit max_row_tokens that disagrees with the derived one', variant(llmppo, { environment: { segment_prompt_tokens: 512 }, algorithm: { max_row_tokens: 100 } }));

// ---------------------------------------------------------------------------------------------------------------
// Coercion: values of another type where the platform may or may not convert them. Written as text, since the
// quoting is the point.

const dqnHead = text`
  apiVersion: agilerl.com/v1
  environment:
    name: CartPole-v1
`;
function dqnWith(algorithmLines: string): string {
  return `${dqnHead}algorithm:\n  name: DQN\n${algorithmLines}\n`;
}
add('coerce-int-from-string', 'batch_size written as the string "64"', dqnWith('  batch_size: "64"'));
add('coerce-int-from-string-float', 'batch_size written as the string "64.0"', dqnWith('  batch_size: "64.0"'));
add('coerce-int-from-float', 'batch_size written as 64.0', dqnWith('  batch_size: 64.0'));
add('coerce-int-from-fraction', 'batch_size written as 64.5', dqnWith('  batch_size: 64.5'));
add('coerce-int-from-bool', 'batch_size written as true', dqnWith('  batch_size: true'));
add('coerce-float-from-string', 'lr written as the string "0.001"', dqnWith('  lr: "0.001"'));
add('coerce-float-from-word', 'lr written as the string "fast"', dqnWith('  lr: fast'));
add('coerce-float-from-int', 'gamma written as the integer 1', dqnWith('  gamma: 1'));
add('coerce-bool-from-string-true', 'double written as the string "true"', dqnWith('  double: "true"'));
add('coerce-bool-from-string-yes', 'double written as the string "yes"', dqnWith('  double: "yes"'));
add('coerce-bool-from-string-off', 'double written as the string "off"', dqnWith('  double: "off"'));
add('coerce-bool-from-string-maybe', 'double written as the string "maybe"', dqnWith('  double: "maybe"'));
add('coerce-bool-from-int-one', 'double written as 1', dqnWith('  double: 1'));
add('coerce-bool-from-int-two', 'double written as 2', dqnWith('  double: 2'));
add('coerce-string-from-int', 'The environment name written as the number 2048', text`
  algorithm:
    name: DQN
  environment:
    name: 2048
`);
add('coerce-string-from-bool', 'A string field (checkpoint_path) written as yes, a YAML 1.1 boolean', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  training:
    checkpoint_path: yes
`);
add('coerce-list-from-scalar', 'MLP hidden_size written as the scalar 64 rather than a list', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  network:
    arch: mlp
    encoder_config:
      hidden_size: 64
    head_config:
      hidden_size: [64]
`);
add('coerce-list-of-strings', 'MLP hidden_size written as a list of strings', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  network:
    arch: mlp
    encoder_config:
      hidden_size: ["64", "64"]
    head_config:
      hidden_size: [64]
`);
add('coerce-rollout-engines-string', 'rollout_engines_per_agent written as the string "2" (an int or the word auto)', text`
  algorithm:
    name: GRPO
    max_output_tokens: 256
  environment:
    env_type: rollout
    entrypoint: wordle_env:WordleEnv
  network:
    pretrained_model_name_or_path: Qwen/Qwen3-1.7B
    max_context_length: 1024
  training:
    rollout_mode: async
    rollout_engines_per_agent: "2"
  replay_buffer:
    kind: llm
`);

// ---------------------------------------------------------------------------------------------------------------
// YAML 1.1 as PyYAML reads it, and YAML edge cases. No .inf or .nan yet: the platform client's answers are JSON
// lines, and the server writes those values as Infinity / NaN, which JSON.parse refuses, so asking about such a
// document (parseYaml always; verdictYaml when the payload keeps the value) waits out the client's timeout.

add('yaml-bool-yes-no', 'YAML 1.1 booleans yes and no for flags', dqnWith('  double: yes\n  cudagraphs: no'));
add('yaml-bool-on-off', 'YAML 1.1 booleans on and off for flags', dqnWith('  double: on\n  normalize_images: off'));
add('yaml-bool-capitalised', 'YAML booleans True and FALSE', dqnWith('  double: True\n  cudagraphs: FALSE'));
add('yaml-bool-y-n', 'y and n, which PyYAML reads as strings, not booleans', dqnWith('  double: y'));
add('yaml-yes-as-name', 'An environment name written as yes: PyYAML reads a boolean', text`
  algorithm:
    name: DQN
  environment:
    name: yes
`);
add('yaml-quoted-yes-as-name', 'An environment name written as "yes" in quotes', text`
  algorithm:
    name: DQN
  environment:
    name: "yes"
`);
add('yaml-no-as-key', 'The key no: (a YAML 1.1 boolean key) inside env_config', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
    env_config:
      no: 1
`);
add('yaml-tilde-null', 'Optional sections written as ~', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  network: ~
  mutation: ~
  replay_buffer: ~
  tournament_selection: ~
`);
add('yaml-null-required', 'A required value (the environment name) written as null', text`
  algorithm:
    name: DQN
  environment:
    name: null
`);
add('yaml-empty-value', 'An optional value left empty (target_kl:), which YAML reads as null', text`
  algorithm:
    name: PPO
    target_kl:
  environment:
    name: CartPole-v1
`);
add('yaml-empty-section', 'The environment section left empty', text`
  algorithm:
    name: DQN
  environment:
`);
add('yaml-anchor-alias', 'An anchor on the encoder settings, reused by alias for the head', text`
  apiVersion: agilerl.com/v1
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  network:
    arch: mlp
    latent_dim: 64
    encoder_config: &layers
      hidden_size: [64, 64]
      activation: ReLU
    head_config: *layers
`);
add('yaml-merge-key', 'A YAML merge key (<<) pulling shared hyperparameters into the algorithm', text`
  apiVersion: agilerl.com/v1
  algorithm:
    <<: &shared
      batch_size: 128
      gamma: 0.98
    name: DQN
    lr: 0.0005
  environment:
    name: CartPole-v1
`);
add('yaml-merge-key-unknown', 'A merge key pulling a key DQN does not have into the algorithm', text`
  apiVersion: agilerl.com/v1
  algorithm:
    <<: {batch_size: 128, clip_coef: 0.2}
    name: DQN
  environment:
    name: CartPole-v1
`);
add('yaml-alias-scalar', 'An anchored scalar reused by alias for num_envs', text`
  algorithm:
    name: PPO
    num_envs: &envs 8
  environment:
    name: CartPole-v1
    num_envs: *envs
`);
add('yaml-alias-undefined', 'An alias to an anchor that is never defined', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
    num_envs: *missing
`);
add('yaml-exponent-no-dot', 'max_steps written as 1e3: PyYAML reads a string without a dot', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  training:
    max_steps: 1e3
    evo_steps: 100
`);
add('yaml-exponent-with-dot', 'max_steps written as 1.0e+3, a float PyYAML reads as 1000.0', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  training:
    max_steps: 1.0e+3
    evo_steps: 100
`);
add('yaml-exponent-unsigned', 'max_steps written as 1.0e3 (no exponent sign)', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  training:
    max_steps: 1.0e3
    evo_steps: 100
`);
add('yaml-exponent-float-field', 'lr written as 1e-4 where a float goes', dqnWith('  lr: 1e-4'));
add('yaml-octal-looking', 'max_steps written as 010, which YAML 1.1 reads as octal 8', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  training:
    max_steps: 010
    evo_steps: 4
`);
add('yaml-octal-0o', 'max_steps written as 0o10, the YAML 1.2 octal spelling', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  training:
    max_steps: 0o10
    evo_steps: 4
`);
add('yaml-hex', 'max_steps written as 0x2710', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  training:
    max_steps: 0x2710
`);
add('yaml-underscore-int', 'max_steps written as 1_000_000, an int in YAML 1.1', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  training:
    max_steps: 1_000_000
`);
add('yaml-sexagesimal', 'max_steps written as 1:30, a base-60 int (90) in YAML 1.1', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  training:
    max_steps: 1:30
    evo_steps: 30
`);
add('yaml-octal-version', 'Environment version written as 010', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
    version: 010
`);
add('yaml-date-version', 'Environment version written as 2024-06-01, which YAML reads as a date', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
    version: 2024-06-01
`);
add('yaml-date-quoted', 'Environment version written as "2024-06-01" in quotes', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
    version: "2024-06-01"
`);
add('yaml-timestamp-in-config', 'A timestamp inside the free-form env_config', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
    env_config:
      start: 2024-06-01T12:00:00Z
`);
add('yaml-negative-zero', 'lr written as -0.0', dqnWith('  lr: -0.0'));
add('yaml-big-int', 'batch_size larger than 64 bits', dqnWith('  batch_size: 123456789012345678901234567890'));
add('yaml-str-tag', 'batch_size tagged !!str', dqnWith('  batch_size: !!str 64'));
add('yaml-python-tag', 'A !!python/object tag, which a safe loader refuses', dqnWith('  lr: !!python/object:decimal.Decimal {}'));
add('yaml-custom-tag', 'A custom !secret tag', dqnWith('  lr: !secret learning-rate'));
add('yaml-duplicate-key', 'The algorithm name given twice: PyYAML keeps the last', text`
  algorithm:
    name: PPO
    name: DQN
    lr: 0.001
  environment:
    name: CartPole-v1
`);
add('yaml-duplicate-section', 'The environment section given twice', text`
  algorithm:
    name: DQN
  environment:
    name: Acrobot-v1
  environment:
    name: CartPole-v1
`);
add('yaml-empty-document', 'An empty document', '');
add('yaml-comment-only', 'A document holding only comments', '# nothing to train yet\n# algorithm: DQN\n');
add('yaml-document-marker-only', 'A document holding only the --- marker', '---\n');
add('yaml-top-level-list', 'A list at the top of the document', text`
  - algorithm:
      name: DQN
    environment:
      name: CartPole-v1
`);
add('yaml-top-level-scalar', 'A bare scalar as the whole document', 'DQN\n');
add('yaml-top-level-number', 'A number as the whole document', '42\n');
add('yaml-tab-indent', 'Indentation with a tab character', ['algorithm:', '\tname: DQN', 'environment:', '\tname: CartPole-v1', ''].join('\n'));
add('yaml-tab-after-colon', 'A tab between a key and its value', ['algorithm:', '  name:\tDQN', 'environment:', '  name:\tCartPole-v1', ''].join('\n'));
add('yaml-syntax-unclosed-flow', 'A flow mapping that is never closed', 'algorithm: {name: DQN\nenvironment: {name: CartPole-v1}\n');
add('yaml-syntax-bad-indent', 'A key indented less than its siblings', 'algorithm:\n    name: DQN\n  lr: 0.001\nenvironment:\n  name: CartPole-v1\n');
add('yaml-syntax-unclosed-quote', 'A quoted string that is never closed', 'algorithm:\n  name: "DQN\nenvironment:\n  name: CartPole-v1\n');
add('yaml-two-documents', 'Two documents in one file', text`
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  ---
  algorithm:
    name: PPO
  environment:
    name: CartPole-v1
`);
add('yaml-explicit-start-end', 'One document with explicit --- and ... markers', text`
  ---
  algorithm:
    name: DQN
  environment:
    name: CartPole-v1
  ...
`);
add('yaml-json-text', 'The manifest written as JSON, which is also YAML', JSON.stringify({ apiVersion: API_VERSION, algorithm: { name: 'PPO', lr: 0.0003 }, environment: { name: 'CartPole-v1', num_envs: 4 } }, null, 2));
add('yaml-flow-style', 'The whole manifest in flow style on one line', '{apiVersion: agilerl.com/v1, algorithm: {name: TD3, policy_freq: 3}, environment: {name: Pendulum-v1}}\n');
add('yaml-crlf', 'Windows line endings', 'apiVersion: agilerl.com/v1\r\nalgorithm:\r\n  name: DQN\r\nenvironment:\r\n  name: CartPole-v1\r\n');
add('yaml-bom', 'A byte-order mark before the document', '\ufeffalgorithm:\n  name: DQN\nenvironment:\n  name: CartPole-v1\n');
add('yaml-quoted-keys', 'Every key in quotes', '"algorithm":\n  "name": "DQN"\n"environment":\n  "name": "CartPole-v1"\n');
add('yaml-non-string-key', 'A number as a top-level key', 'algorithm:\n  name: DQN\nenvironment:\n  name: CartPole-v1\n1: one\n');
add('yaml-block-scalar', 'A literal block scalar in the prompt template', text`
  algorithm:
    name: GRPO
    max_output_tokens: 256
  environment:
    dataset: openai/gsm8k
    rubric_file_path: rubrics/gsm8k.py
    prompt_template:
      system_0: |
        You are a careful tutor.
        Show your working, then answer inside <answer></answer>.
      user_1: >-
        {question}
  network:
    pretrained_model_name_or_path: Qwen/Qwen3-1.7B
    max_context_length: 1024
`);
add('yaml-unicode', 'Non-ASCII text in a name and a prompt', text`
  algorithm:
    name: SFT
  environment:
    name: "Übersetzung ✓"
    dataset: "datasets/日本語-chat"
  network:
    pretrained_model_name_or_path: Qwen/Qwen3-1.7B
    max_context_length: 1024
`);
add('yaml-comments-everywhere', 'Comments after values and between sections', text`
  # A commented manifest.
  apiVersion: agilerl.com/v1  # the contract
  algorithm:   # what to train
    name: DQN  # a registered name
    lr: 0.0005 # step size
  # where to train
  environment:
    name: CartPole-v1
`);
add('yaml-trailing-space-name', "An algorithm name with a trailing space inside quotes ('DQN ')", text`
  algorithm:
    name: "DQN "
  environment:
    name: CartPole-v1
`);

export const corpus: CorpusCase[] = cases;
