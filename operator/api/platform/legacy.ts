// Before the manifest became the platform's own (agilerl-arena's TrainingManifest), this operator's v1alpha1
// Experiments accepted a few fields the platform does not have. Such an Experiment is not converted: the meaning of
// the old fields is not always one platform field, and a silent rewrite would train something the author did not
// write. It lands in InvalidManifest, and the platform's refusal of each old field is followed by the field to use.
const LEGACY: Record<string, string> = {
  'algorithm.use_vllm': 'generation with vLLM is configured by algorithm.vllm_config and training.rollout_mode',
  'algorithm.hp_config': 'mutation.rl_hp_selection holds the hyperparameter ranges',
  'environment.type': 'environment.env_type (rollout or dataset), with environment.objective (sft or preference) for dataset training',
  'training.seed': 'network.random_seed seeds the weights and mutation.rand_seed the mutations',
  'network.recurrent': "algorithm.recurrent: true (PPO), or algorithm.name 'Recurrent PPO'",
  'network.hidden_size': 'network.encoder_config.hidden_size and network.head_config.hidden_size',
};

const LEGACY_ALGORITHMS: Record<string, string> = {
  Supervised: 'the platform registers no supervised algorithm; train it outside Arena or pick a registered one',
  LatentPPO: "the platform registers no LatentPPO; 'PPO' with network.latent_dim is the nearest",
};

/** What to write instead of a field the earlier dialect had and the platform refuses, if it is one. */
export function legacyHint(field: string, manifest: unknown): string | undefined {
  if (LEGACY[field]) return `this operator's earlier manifest dialect had ${field}; the platform's: ${LEGACY[field]}`;
  if (field === 'algorithm') {
    const name = (manifest as { algorithm?: { name?: unknown } } | undefined)?.algorithm?.name;
    if (typeof name === 'string' && LEGACY_ALGORITHMS[name]) return `${name} was accepted by this operator's earlier manifest dialect: ${LEGACY_ALGORITHMS[name]}`;
  }
  return undefined;
}
