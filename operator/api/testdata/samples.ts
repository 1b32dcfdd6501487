// One valid object of each kind, shared by the unit tests and the end-to-end suite (which applies them to a real
// apiserver and expects them back unchanged, so every sample spells out the defaults the apiserver would add).
// Use sample(kind) for a private copy; the exported constants are shared.
import type { Deployment, Experiment, KindName, ResourceByKind, ResourceClass, TrainingCluster } from '../v1alpha1/index.ts';
import { API_VERSION } from '../v1alpha1/index.ts';

export const NAMESPACE = 'default';

export const trainingCluster: TrainingCluster = {
  apiVersion: API_VERSION,
  kind: 'TrainingCluster',
  metadata: { name: 'on-prem' },
  spec: {
    enabled: true,
    description: 'Two racks of A100 nodes in the west data centre',
    workerNodeSelector: { 'arena.agilerl.com/worker': 'true' },
    gpu: { runtimeClassName: 'nvidia', taint: { key: 'nvidia.com/gpu', value: 'true', effect: 'NoSchedule' } },
    setupBundle: {
      version: '1.4.0',
      images: { runtime: 'ghcr.io/agilerl/arena-runtime:1.4.0', operator: 'ghcr.io/agilerl/arena-operator:1.4.0' },
      runtimeCommand: ['arena-runtime', 'train'],
    },
    currentBundleVersion: '1.4.0',
    checkpointStorage: { mountPath: '/checkpoints', persistentVolumeClaim: { claimName: 'arena-checkpoints' } },
    exposure: {
      domain: 'arena.example.com',
      gateway: { parentRefs: [{ name: 'public', namespace: 'gateway-system', sectionName: 'https' }] },
    },
    platform: {
      url: 'https://arena.agilerl.com',
      tokenSecretRef: { name: 'arena-cluster-token', namespace: 'arena-system', key: 'token' },
      heartbeatIntervalSeconds: 30,
    },
    budgets: [
      { name: 'vision', namespaces: ['team-vision'], credits: 5000, gpuHours: 400, period: 'Month', exhaustedPolicy: 'Stop' },
      { name: 'pilot', namespaces: ['team-nlp', 'nlp-dev'], gpuHours: 100, period: 'Total', exhaustedPolicy: 'Finish' },
    ],
  },
};

export const resourceClass: ResourceClass = {
  apiVersion: API_VERSION,
  kind: 'ResourceClass',
  metadata: { name: 'a100-x2' },
  spec: {
    trainingCluster: 'on-prem',
    enabled: true,
    description: 'Two workers with one A100 each',
    nodes: 2,
    worker: { cpu: '15', memory: '110Gi', gpus: 1, gpuProduct: 'NVIDIA-A100-SXM4-80GB', ephemeralStorage: '100Gi' },
    nodeSelector: { 'arena.agilerl.com/pool': 'a100' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'arena', effect: 'NoSchedule' }],
    creditsPerNodeHour: 15.74,
    maxQueueWaitSeconds: 3600,
    teams: [
      { name: 'vision', namespaces: ['team-vision'], gpus: 2, borrowingLimit: 2, weight: 2 },
      { name: 'nlp', namespaces: ['team-nlp', 'nlp-dev'], gpus: 2, weight: 1 },
    ],
  },
};

export const experiment: Experiment = {
  apiVersion: API_VERSION,
  kind: 'Experiment',
  metadata: { name: 'cartpole-ppo', namespace: NAMESPACE },
  spec: {
    action: 'Train',
    run: 1,
    resourceClass: 'a100-x2',
    priority: 10,
    maxRetries: 3,
    stopGracePeriodSeconds: 120,
    partialGangTimeoutSeconds: 300,
    description: 'PPO on CartPole with evolutionary HPO',
    manifest: {
      algorithm: { name: 'PPO', batch_size: 128, learn_step: 2048, gamma: 0.99, lr: 0.0003, clip_coef: 0.2, update_epochs: 4 },
      environment: { name: 'CartPole-v1', num_envs: 16 },
      training: { max_steps: 1000000, evo_steps: 10000, pop_size: 4, hpo: true, eval_loop: 1, target_score: 475 },
      network: { latent_dim: 64, simba: false },
      mutation: {
        probabilities: { no_mut: 0.4, arch_mut: 0.2, new_layer: 0.2, params_mut: 0.2, act_mut: 0, rl_hp_mut: 0.2 },
        rl_hp_selection: { lr: { min: 0.00001, max: 0.01 }, batch_size: { min: 32, max: 512, grow_factor: 1.5, shrink_factor: 0.5 } },
        mutation_sd: 0.1,
        rand_seed: 42,
      },
      selection_strategy: { tournament_size: 2, elitism: true },
    },
  },
};

// The defaults the apiserver fills into every Experiment spec. Samples spell them out so an object read back
// from the apiserver equals the one sent.
const experimentDefaults = { action: 'Draft', run: 1, maxRetries: 3, stopGracePeriodSeconds: 120, partialGangTimeoutSeconds: 300 } as const;

/** An LLM fine-tuning experiment: GRPO over dataset rows scored by a rubric. */
export const llmExperiment: Experiment = {
  apiVersion: API_VERSION,
  kind: 'Experiment',
  metadata: { name: 'gsm8k-grpo', namespace: NAMESPACE },
  spec: {
    ...experimentDefaults,
    resourceClass: 'a100-x2',
    manifest: {
      algorithm: {
        name: 'GRPO',
        pretrained_model_name_or_path: 'Qwen/Qwen2.5-0.5B-Instruct',
        group_size: 8,
        beta: 0.04,
        max_grad_norm: 1,
      },
      environment: {
        name: 'gsm8k',
        dataset: 'openai/gsm8k',
        rubric_file_path: 'rubrics/gsm8k.py',
        rubric_name: 'reward',
        prompt_template: { system_0: 'Think step by step, then give the answer.', user_1: '{question}' },
      },
      training: { max_steps: 2000 },
    },
  },
};

/** Keys this API does not know, at every level of the manifest that keeps them; they must survive untouched. */
export const experimentWithUnknownManifestKeys: Experiment = {
  apiVersion: API_VERSION,
  kind: 'Experiment',
  metadata: { name: 'unknown-manifest-keys', namespace: NAMESPACE },
  spec: {
    ...experimentDefaults,
    manifest: {
      apiVersion: 'agilerl.com/v1',
      algorithm: { name: 'DQN', double: true, hp_config: { lr: { min: 0.0001, max: 0.01 } }, net_config: { head_config: { hidden_size: [64, 64] } } },
      environment: { name: 'LunarLander-v3', version: 3, wrappers: ['FrameStack'], env_kwargs: { continuous: false } },
      training: { max_steps: 50000, checkpoint_path: './ckpt', overwrite_checkpoints: true, rollout_mode: 'colocated' },
      network: { arch: 'mlp', encoder_config: { hidden_size: [128], activation: 'ReLU' } },
      replay_buffer: { max_size: 100000, kind: 'classic', per_buffer: { alpha: 0.6, beta: 0.4 } },
      tournament_selection: { tournament_size: 3, future_option: 'x' },
      future_section: { anything: [1, 'two', { three: 3 }] },
    },
  },
};

export const deployment: Deployment = {
  apiVersion: API_VERSION,
  kind: 'Deployment',
  metadata: { name: 'cartpole-agent', namespace: NAMESPACE },
  spec: {
    source: { experiment: 'cartpole-ppo', checkpoint: 'specific', step: 500000 },
    connected: true,
    description: 'The CartPole policy behind the demo page',
    replicas: 2,
    memoryScope: 'user',
    keyRotation: 0,
    resources: { cpu: '2', memory: '4Gi', gpus: 0 },
  },
};

export const samples: { readonly [K in KindName]: ResourceByKind[K] } = {
  TrainingCluster: trainingCluster,
  ResourceClass: resourceClass,
  Experiment: experiment,
  Deployment: deployment,
};

/** A private deep copy of the sample of a kind. */
export function sample<K extends KindName>(kind: K): ResourceByKind[K] {
  return structuredClone(samples[kind]);
}

/** A status of each kind as the operator writes it, to hold the status schemas to what the controllers produce. */
export const sampleStatuses: { readonly [K in KindName]: NonNullable<ResourceByKind[K]['status']> } = {
  TrainingCluster: {
    observedGeneration: 3,
    conditions: [
      { type: 'ProviderEnabled', status: 'True', reason: 'Enabled', message: 'The provider takes new runs.', lastTransitionTime: '2026-03-01T10:00:00Z', observedGeneration: 3 },
      { type: 'Ready', status: 'False', reason: 'BundleOutOfDate', message: 'Install setup bundle 1.5.0.', lastTransitionTime: '2026-03-02T08:30:00Z' },
    ],
    workers: { total: 3, ready: 2, notReady: 1, readyNodes: ['gpu-a', 'gpu-b'], notReadyNodes: ['gpu-c'] },
    gpus: {
      total: 16,
      allocated: 4,
      free: 12,
      byProduct: [
        { product: 'NVIDIA-A100-SXM4-80GB', total: 16, allocated: 4, free: 12, memoryMiB: 81920, computeCapability: '8.0', attentionBackend: 'fa3' },
      ],
    },
    bundle: { installedVersion: '1.4.0', currentVersion: '1.5.0', state: 'UpdateRecommended' },
  },
  ResourceClass: {
    observedGeneration: 1,
    conditions: [{ type: 'Available', status: 'True', reason: 'CapacityAvailable', message: '6 experiments fit now.', lastTransitionTime: '2026-03-01T10:00:00Z' }],
    available: true,
    reason: 'CapacityAvailable',
    message: '6 experiments fit now.',
    advancedTrainingEligible: true,
    eligibleNodes: 12,
    fitNow: 6,
    fitMax: 8,
    queued: 0,
    running: 2,
  },
  Experiment: {
    observedGeneration: 2,
    phase: 'Running',
    reason: 'Training',
    message: 'All 2 workers are training.',
    conditions: [
      { type: 'Valid', status: 'True', reason: 'Validated', message: 'The manifest is valid.', lastTransitionTime: '2026-03-01T10:00:00Z' },
      { type: 'Admitted', status: 'True', reason: 'GangAdmitted', message: 'Admitted on a100-x2.', lastTransitionTime: '2026-03-01T10:00:05Z' },
      { type: 'WorkersReady', status: 'True', reason: 'AllWorkersRunning', message: '2 of 2 workers run.', lastTransitionTime: '2026-03-01T10:01:00Z' },
      { type: 'Progressing', status: 'True', reason: 'Training', message: 'Step 520000 of 1000000.', lastTransitionTime: '2026-03-01T10:01:00Z' },
    ],
    run: 1,
    attempt: 2,
    admittedAt: '2026-03-01T10:00:05Z',
    startedAt: '2026-03-01T10:01:00Z',
    attemptStartedAt: '2026-03-01T11:30:00Z',
    workers: { desired: 2, scheduled: 2, running: 2 },
    progress: {
      step: 520000,
      maxSteps: 1000000,
      percent: 52,
      trainingScore: 312.5,
      evaluationScore: 401.25,
      stepsPerSecond: 180.4,
      etaSeconds: 2660,
      updatedAt: '2026-03-01T12:00:00Z',
    },
    checkpoints: [
      { run: 1, step: 250000, trainingScore: 120, evaluationScore: 150.5, sizeBytes: 2048000, location: 'default/cartpole-ppo/run-1/step_250000', createdAt: '2026-03-01T10:40:00Z' },
      { run: 1, step: 500000, trainingScore: 300, sizeBytes: 2048000, location: 'default/cartpole-ppo/run-1/step_500000', createdAt: '2026-03-01T11:55:00Z' },
    ],
    latestCheckpoint: { step: 500000, location: 'default/cartpole-ppo/run-1/step_500000' },
    bestCheckpoint: { step: 250000, evaluationScore: 150.5 },
    lastFailure: { reason: 'NodeLost', message: 'Node gpu-c stopped reporting.', hint: 'The run resumed from step 250000.', at: '2026-03-01T11:20:00Z', attempt: 1 },
    usage: { nodeSeconds: 14400, gpuSeconds: 14400, credits: 62.96 },
  },
  Deployment: {
    observedGeneration: 1,
    phase: 'Deployed',
    reason: 'EndpointReady',
    message: 'Serving at https://inference-d7f3a2.arena.example.com.',
    conditions: [
      { type: 'Available', status: 'True', reason: 'EndpointReady', message: '2 of 2 replicas ready.', lastTransitionTime: '2026-03-02T09:00:00Z' },
      { type: 'Healthy', status: 'True', reason: 'HealthCheckPassed', message: 'GET /status answered.', lastTransitionTime: '2026-03-02T09:00:30Z' },
    ],
    deploymentId: 'd7f3a2',
    checkpoint: {
      experiment: 'cartpole-ppo',
      step: 500000,
      trainingScore: 300,
      location: 'default/cartpole-ppo/run-1/step_500000',
      resolvedAt: '2026-03-02T08:58:00Z',
    },
    endpoint: {
      url: 'https://inference-d7f3a2.arena.example.com',
      serviceURL: 'http://cartpole-agent.default.svc:8000',
      inferencePath: 'get_action',
      paths: ['/status', '/get_action'],
    },
    apiKeySecretName: 'cartpole-agent-api-key',
    observedKeyRotation: 0,
    health: { consecutiveFailures: 0, lastCheckedAt: '2026-03-02T12:00:00Z', lastHealthyAt: '2026-03-02T12:00:00Z' },
  },
};
