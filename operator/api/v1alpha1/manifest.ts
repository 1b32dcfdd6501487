// The Arena training manifest, as embedded in Experiment.spec.manifest and checked again by the runtime before
// launch. The manifest belongs to the platform's trainer, which knows more keys than this API: every section keeps
// keys it does not declare, and only the declared ones are typed and bounded. `mutation` is the exception, because
// the trainer refuses unknown keys there.
import { Type, type Static } from '@sinclair/typebox';
import { Bool, Int, IntOrString, MapOf, Num, Obj, OpenObj, PreserveUnknownObject, Str, StringEnum, celDouble } from '../schema.ts';
import { withRules } from '../rules.ts';

export const ALGORITHM_NAMES = [
  'DQN',
  'RainbowDQN',
  'DDPG',
  'TD3',
  'PPO',
  'MADDPG',
  'MATD3',
  'IPPO',
  'GRPO',
  'GSPO',
  'CISPO',
  'LLMPPO',
  'LLMREINFORCE',
  'DPO',
  'SFT',
  'Supervised',
  'LatentPPO',
] as const;
export type AlgorithmName = (typeof ALGORITHM_NAMES)[number];

export type AlgorithmFamily = 'classic-rl' | 'multi-agent' | 'llm' | 'supervised' | 'latent-ppo';

const FAMILY: Record<AlgorithmName, AlgorithmFamily> = {
  DQN: 'classic-rl',
  RainbowDQN: 'classic-rl',
  DDPG: 'classic-rl',
  TD3: 'classic-rl',
  PPO: 'classic-rl',
  MADDPG: 'multi-agent',
  MATD3: 'multi-agent',
  IPPO: 'multi-agent',
  GRPO: 'llm',
  GSPO: 'llm',
  CISPO: 'llm',
  LLMPPO: 'llm',
  LLMREINFORCE: 'llm',
  DPO: 'llm',
  SFT: 'llm',
  Supervised: 'supervised',
  LatentPPO: 'latent-ppo',
};

export function algorithmFamily(name: AlgorithmName): AlgorithmFamily {
  return FAMILY[name];
}

/** LLM fine-tuning cannot run without a GPU; the other families can, if slowly. */
export function needsGpu(name: AlgorithmName): boolean {
  return FAMILY[name] === 'llm';
}

export type InferencePath = 'get_action' | 'predict' | 'generate';

/** The inference route a deployed checkpoint of this algorithm serves. */
export function inferencePath(name: AlgorithmName): InferencePath {
  switch (FAMILY[name]) {
    case 'llm':
      return 'generate';
    case 'supervised':
    case 'latent-ppo':
      return 'predict';
    default:
      return 'get_action';
  }
}

export const LLM_ALGORITHMS = ALGORITHM_NAMES.filter((n) => FAMILY[n] === 'llm');

const celList = (values: readonly string[]) => `[${values.map((v) => `'${v}'`).join(', ')}]`;

const positiveInt = (description: string) => Type.Optional(Int(description, { minimum: 1 }));
const fraction = (description: string) => Type.Optional(Num(description, { minimum: 0, maximum: 1 }));
const ModelPath = (where: string) =>
  Type.Optional(Str(`Hugging Face model id or path of the pretrained model to fine-tune (LLM algorithms; may be given here or in ${where}).`, { minLength: 1, maxLength: 1024 }));

const Algorithm = withRules(
  OpenObj('What to train and its hyperparameters. Keys not listed here are passed to the trainer unchanged.', {
    name: StringEnum(
      'The algorithm. Classic RL: DQN, RainbowDQN, DDPG, TD3, PPO. Multi-agent: MADDPG, MATD3, IPPO. LLM fine-tuning: GRPO, GSPO, CISPO, LLMPPO, LLMREINFORCE, DPO, SFT. Supervised and LatentPPO are families the Arena UI offers outside the public algorithm registry.',
      ALGORITHM_NAMES,
    ),
    batch_size: positiveInt('Samples per learning step.'),
    learn_step: positiveInt('Environment steps between learning steps.'),
    gamma: fraction('Discount factor for future rewards.'),
    lr: Type.Optional(Num('Learning rate.', { exclusiveMinimum: 0 })),
    group_size: positiveInt('Completions sampled per prompt (GRPO requires it).'),
    clip_coef: Type.Optional(Num('Policy-ratio clipping coefficient.', { minimum: 0 })),
    beta: Type.Optional(Num('KL penalty coefficient against the reference model.', { minimum: 0 })),
    max_grad_norm: Type.Optional(Num('Gradient-norm clipping threshold.', { exclusiveMinimum: 0 })),
    update_epochs: positiveInt('Optimisation epochs per batch of experience.'),
    pretrained_model_name_or_path: ModelPath('network'),
    max_model_len: positiveInt('Longest sequence, in tokens, the model is run with.'),
    use_vllm: Type.Optional(Bool('Generate with vLLM; needs vllm_config.')),
    vllm_config: Type.Optional(PreserveUnknownObject('vLLM engine settings, passed through unchanged.')),
    recurrent: Type.Optional(Bool('Use a recurrent (LSTM) policy (PPO); cannot be combined with network.simba.')),
    hp_config: Type.Optional(PreserveUnknownObject('Per-hyperparameter search ranges, passed through unchanged.')),
  }),
  [
    {
      cel: "self.name != 'GRPO' || has(self.group_size)",
      message: 'GRPO needs group_size: the number of completions sampled per prompt',
      fieldPath: '.group_size',
      reason: 'FieldValueRequired',
      check: (a) => a.name !== 'GRPO' || a.group_size !== undefined,
    },
    {
      cel: '!has(self.use_vllm) || !self.use_vllm || has(self.vllm_config)',
      message: 'use_vllm needs vllm_config: set vllm_config or turn use_vllm off',
      fieldPath: '.vllm_config',
      reason: 'FieldValueRequired',
      check: (a) => a.use_vllm !== true || a.vllm_config !== undefined,
    },
  ],
);

export const ENVIRONMENT_TYPES = ['reasoning', 'preference', 'sft', 'multiturn'] as const;

const Environment = OpenObj('What to train against: an Arena environment or a registered dataset. Keys not listed here are passed to the trainer unchanged.', {
  name: Str('Name of the environment or dataset registered with Arena.', { minLength: 1, maxLength: 253 }),
  num_envs: positiveInt('Environments run in parallel per agent.'),
  version: Type.Optional(IntOrString('Environment version; unset uses the latest.', { maxLength: 64 })),
  type: Type.Optional(
    StringEnum('For LLM fine-tuning, the kind of data: reasoning (GRPO family), preference (DPO), sft (SFT) or multiturn.', ENVIRONMENT_TYPES),
  ),
});

// The trainer's default, needed to check evo_steps when max_steps is left out.
export const DEFAULT_MAX_STEPS = 1_000_000;

const aliasRule = (canonical: string, alias: string) => ({
  cel: `!has(self.${canonical}) || !has(self.${alias})`,
  message: `${alias} is another name for ${canonical}: set only one of them`,
  fieldPath: `.${alias}`,
  reason: 'FieldValueForbidden' as const,
  check: (s: Record<string, unknown>) => s[canonical] === undefined || s[alias] === undefined,
});

const evoNotBeyondMax = (key: 'evo_steps' | 'metrics_interval') => ({
  cel: `!has(self.${key}) || self.${key} <= (has(self.max_steps) ? self.max_steps : ${DEFAULT_MAX_STEPS})`,
  message: `${key} must be <= max_steps (${DEFAULT_MAX_STEPS} when unset): evolution cannot happen less often than once per run`,
  fieldPath: `.${key}`,
  check: (t: { max_steps?: number; evo_steps?: number; metrics_interval?: number }) => {
    const steps = t[key];
    return steps === undefined || steps <= (t.max_steps ?? DEFAULT_MAX_STEPS);
  },
});

const Training = withRules(
  OpenObj('How long to train and how the population evolves. Keys not listed here are passed to the trainer unchanged.', {
    max_steps: positiveInt(`Total environment steps to train for (the trainer defaults to ${DEFAULT_MAX_STEPS}).`),
    evo_steps: positiveInt('Steps between evolution rounds; must be <= max_steps.'),
    metrics_interval: positiveInt('Another name for evo_steps.'),
    pop_size: positiveInt('Agents trained in parallel (population size for evolutionary HPO).'),
    population_size: positiveInt('Another name for pop_size.'),
    hpo: Type.Optional(Bool('Mutate hyperparameters and architectures between evolution rounds.')),
    target_score: Type.Optional(Num('Stop early once this evaluation score is reached.')),
    eval_steps: positiveInt('Steps per evaluation episode; when evaluation_interval is also set it must be greater.'),
    eval_loop: positiveInt('Evaluation episodes averaged into each fitness score.'),
    evaluation_interval: positiveInt('Steps between evaluations (LLM fine-tuning).'),
    num_epochs: positiveInt('Passes over the dataset, for epoch-driven training.'),
    learning_delay: Type.Optional(Int('Steps collected before the first learning step.', { minimum: 0 })),
    eps_start: fraction('Initial probability of a random action; must be >= eps_end.'),
    eps_end: fraction('Final probability of a random action.'),
    eps_decay: fraction('Per-step multiplier applied to the random-action probability.'),
    checkpoint_steps: positiveInt('Steps between checkpoints when training locally; on Arena the platform sets the cadence.'),
    reporting_interval: positiveInt('Steps between metric reports.'),
    experience_sharing: Type.Optional(Bool('Let population members learn from each other\'s experience.')),
    episode_steps: positiveInt('Steps per episode (bandits).'),
    sum_scores: Type.Optional(Bool('Sum the agents\' scores into one fitness instead of averaging (multi-agent).')),
    seed: Type.Optional(Int('Random seed.')),
  }),
  [
    aliasRule('evo_steps', 'metrics_interval'),
    aliasRule('pop_size', 'population_size'),
    evoNotBeyondMax('evo_steps'),
    evoNotBeyondMax('metrics_interval'),
    {
      cel: '!has(self.eps_start) || !has(self.eps_end) || self.eps_start >= self.eps_end',
      message: 'eps_end must be <= eps_start: exploration decays from eps_start down to eps_end',
      fieldPath: '.eps_end',
      check: (t) => t.eps_start === undefined || t.eps_end === undefined || t.eps_start >= t.eps_end,
    },
    {
      cel: '!has(self.eval_steps) || !has(self.evaluation_interval) || self.eval_steps > self.evaluation_interval',
      message: 'eval_steps must be greater than evaluation_interval',
      fieldPath: '.eval_steps',
      check: (t) => t.eval_steps === undefined || t.evaluation_interval === undefined || t.eval_steps > t.evaluation_interval,
    },
  ],
);

const Network = withRules(
  OpenObj('The model: an architecture to build, or a pretrained model to fine-tune. Passed to the trainer unchanged apart from these checks.', {
    pretrained_model_name_or_path: ModelPath('algorithm'),
    simba: Type.Optional(Bool('Use a SimBa encoder; cannot be combined with a recurrent policy.')),
    recurrent: Type.Optional(Bool('Use a recurrent (LSTM) encoder; cannot be combined with simba.')),
    max_context_length: positiveInt('Longest context, in tokens, of the pretrained model.'),
  }),
  [
    {
      cel: '!(has(self.simba) && self.simba && has(self.recurrent) && self.recurrent)',
      message: 'simba and recurrent cannot both be set: choose one encoder',
      fieldPath: '.recurrent',
      reason: 'FieldValueForbidden',
      check: (n) => !(n.simba === true && n.recurrent === true),
    },
  ],
);

// The trainer's default probabilities, needed to tell whether any mutation can happen.
export const DEFAULT_MUTATION_PROBABILITIES = { no_mut: 0.4, arch_mut: 0.2, new_layer: 0.2, params_mut: 0.2, act_mut: 0, rl_hp_mut: 0.2 } as const;
type MutationKind = keyof typeof DEFAULT_MUTATION_PROBABILITIES;
const MUTATION_KINDS = Object.keys(DEFAULT_MUTATION_PROBABILITIES) as MutationKind[];

const MUTATION_MEANING: Record<MutationKind, string> = {
  no_mut: 'no mutation',
  arch_mut: 'an architecture mutation',
  new_layer: 'adding a layer',
  params_mut: 'a weight mutation',
  act_mut: 'an activation-function mutation',
  rl_hp_mut: 'an RL hyperparameter mutation',
};

const Probabilities = withRules(
  Obj(
    'Relative probabilities of each mutation per evolution round; they are normalised, so only their ratios matter.',
    Object.fromEntries(
      MUTATION_KINDS.map((k) => [k, fraction(`Probability of ${MUTATION_MEANING[k]} (default ${DEFAULT_MUTATION_PROBABILITIES[k]}).`)]),
    ) as Record<MutationKind, ReturnType<typeof fraction>>,
  ),
  [
    {
      cel: `${MUTATION_KINDS.map((k) => `(has(self.${k}) ? self.${k} : ${celDouble(DEFAULT_MUTATION_PROBABILITIES[k])})`).join(' + ')} > 0.0`,
      message: 'at least one mutation probability must be above 0 (unset ones take their defaults)',
      check: (p) => MUTATION_KINDS.reduce((sum, k) => sum + (p[k] ?? DEFAULT_MUTATION_PROBABILITIES[k]), 0) > 0,
    },
  ],
);

const HyperparameterRange = withRules(
  Obj('The range and step factors for mutating one RL hyperparameter.', {
    min: Num('Smallest value mutation may reach.'),
    max: Num('Largest value mutation may reach.'),
    grow_factor: Type.Optional(Num('Factor applied when the value grows (default 1.2).', { minimum: 1 })),
    shrink_factor: Type.Optional(Num('Factor applied when the value shrinks (default 0.8).', { minimum: 0, maximum: 1 })),
  }),
  [{ cel: 'self.min <= self.max', message: 'min must be <= max', fieldPath: '.min', check: (r) => r.min <= r.max }],
);

const Mutation = Obj('What evolutionary HPO may change between evolution rounds. Unlike other sections it takes no other keys.', {
  probabilities: Type.Optional(Probabilities),
  rl_hp_selection: Type.Optional(MapOf('Hyperparameters to mutate, by name, with their ranges.', HyperparameterRange, { maxProperties: 64 })),
  mutation_sd: Type.Optional(Num('Standard deviation of weight mutations.', { minimum: 0 })),
  rand_seed: Type.Optional(Int('Random seed for mutations.', { minimum: 0 })),
  dormant_threshold: Type.Optional(Num('Score at or below which a neuron counts as dormant during weight mutation.', { minimum: 0 })),
});

const Selection = (description: string) =>
  OpenObj(description, {
    strategy: Type.Optional(StringEnum('Selection strategy; tournament is the only one.', ['tournament'])),
    tournament_size: Type.Optional(Int('Agents compared in each tournament.', { minimum: 2 })),
    elitism: Type.Optional(Bool('Always keep the best agent unchanged.')),
  });

const ReplayBuffer = withRules(
  OpenObj('Experience replay for off-policy algorithms. Keys not listed here are passed to the trainer unchanged.', {
    max_size: positiveInt('Transitions kept before the oldest are dropped.'),
    memory_size: positiveInt('Another name for max_size.'),
    standard_buffer: Type.Optional(Bool('Sample transitions uniformly.')),
    n_step_buffer: Type.Optional(OpenObj('Use an n-step buffer.', { n_step: positiveInt('Steps of reward folded into each stored transition.') })),
    per_buffer: Type.Optional(OpenObj('Use prioritized experience replay.', { alpha: fraction('How strongly sampling follows priority: 0 uniform, 1 fully proportional.') })),
  }),
  [aliasRule('max_size', 'memory_size')],
);

const modelPathGiven = (m: { algorithm: { pretrained_model_name_or_path?: string }; network?: { pretrained_model_name_or_path?: string } }) =>
  m.algorithm.pretrained_model_name_or_path !== undefined || m.network?.pretrained_model_name_or_path !== undefined;

export const Manifest = withRules(
  OpenObj('The Arena training manifest: algorithm, environment, training, network and HPO settings, as the Arena platform defines them.', {
    algorithm: Algorithm,
    environment: Environment,
    training: Type.Optional(Training),
    network: Type.Optional(Network),
    mutation: Type.Optional(Mutation),
    replay_buffer: Type.Optional(ReplayBuffer),
    selection_strategy: Type.Optional(Selection('Tournament selection of the population at each evolution round.')),
    tournament_selection: Type.Optional(Selection('Another name for selection_strategy (the name the platform stores).')),
  }),
  [
    {
      cel: `!(self.algorithm.name in ${celList(LLM_ALGORITHMS)}) || has(self.algorithm.pretrained_model_name_or_path) || (has(self.network) && has(self.network.pretrained_model_name_or_path))`,
      message: 'LLM algorithms fine-tune a pretrained model: set pretrained_model_name_or_path in algorithm or in network',
      fieldPath: '.algorithm.pretrained_model_name_or_path',
      reason: 'FieldValueRequired',
      check: (m) => algorithmFamily(m.algorithm.name) !== 'llm' || modelPathGiven(m),
    },
    {
      cel: '!(has(self.algorithm.recurrent) && self.algorithm.recurrent && has(self.network) && has(self.network.simba) && self.network.simba)',
      message: 'simba and recurrent cannot both be set: a network uses either a SimBa or a recurrent encoder',
      fieldPath: '.network.simba',
      reason: 'FieldValueForbidden',
      check: (m) => !(m.algorithm.recurrent === true && m.network?.simba === true),
    },
    {
      cel: '!has(self.selection_strategy) || !has(self.tournament_selection)',
      message: 'tournament_selection is another name for selection_strategy: set only one of them',
      fieldPath: '.tournament_selection',
      reason: 'FieldValueForbidden',
      check: (m) => m.selection_strategy === undefined || m.tournament_selection === undefined,
    },
  ],
);
export type Manifest = Static<typeof Manifest>;
