// Deployment: an Arena agent, a frozen checkpoint of an experiment that can be served as an inference endpoint.
// The kind name is also apps/v1 Deployment; users reach this one as `adeploy`, `agent` or through `kubectl get arena`.
import { Type, type Static } from '@sinclair/typebox';
import { Bool, Conditions, Int, List, Name, Num, Obj, Quantity, Str, StringEnum, Timestamp, patterns } from '../schema.ts';
import { withRules } from '../rules.ts';
import { ageColumn, defineKind, type Resource } from '../kind.ts';
import { Description, Message, ObservedGeneration, Reason, stepChoiceRules } from './common.ts';

export const DEPLOYMENT_PHASES = ['Undeployed', 'Pending', 'Deployed', 'Failed'] as const;
export type DeploymentPhase = (typeof DEPLOYMENT_PHASES)[number];

export const DEPLOYMENT_CHECKPOINTS = ['best', 'final', 'specific'] as const;
export const MEMORY_SCOPES = ['user', 'organization'] as const;
export const INFERENCE_PATHS = ['get_action', 'predict', 'generate'] as const;

export const DeploymentConditions = {
  /** The endpoint serves requests (the agent is connected and its pods are ready). */
  Available: 'Available',
  /** The latest health checks passed; False while the endpoint retries after failed checks. */
  Healthy: 'Healthy',
} as const;

const Source = withRules(
  Obj('The experiment checkpoint this agent serves. It is resolved once and then frozen in status.checkpoint.', {
    experiment: Name('The experiment, in this namespace, that wrote the checkpoint.'),
    checkpoint: Type.Optional(
      StringEnum('Which checkpoint: best (highest evaluation score), final (most steps) or specific (the one at source.step).', DEPLOYMENT_CHECKPOINTS, {
        default: 'best',
      }),
    ),
    step: Type.Optional(Int('The step of the checkpoint to serve; only with checkpoint specific.', { minimum: 0 })),
  }),
  stepChoiceRules('specific'),
);

const MemoryScope = withRules(
  StringEnum('Who shares LLM chat-session memory: each user separately, or the whole organization. Fixed at creation.', MEMORY_SCOPES, { default: 'user' }),
  [
    {
      cel: 'self == oldSelf',
      message: 'memoryScope cannot change after creation: create a new Deployment instead',
      check: (scope, old) => scope === old,
    },
  ],
);

const KeyRotation = withRules(
  Int('Raise to issue a new API key; the old key stops working at once.', { minimum: 0, default: 0 }),
  [{ cel: 'self >= oldSelf', message: 'keyRotation can only be raised', check: (n, old) => n >= old }],
);

export const DeploymentSpec = Obj('The desired state of an agent.', {
  source: Source,
  connected: Type.Optional(Bool('Whether inference is on (Connect). false keeps the agent and its checkpoint but removes the endpoint (Disconnect).', { default: false })),
  description: Type.Optional(Description('what this agent is for')),
  replicas: Type.Optional(Int('Inference pods serving the endpoint while connected.', { minimum: 1, maximum: 16, default: 1 })),
  memoryScope: Type.Optional(MemoryScope),
  keyRotation: Type.Optional(KeyRotation),
  resources: Type.Optional(
    Obj('What each inference pod requests; unset fields are chosen from the algorithm (LLMs get 1 GPU).', {
      cpu: Type.Optional(Quantity('CPU per pod, e.g. 2 or 500m.', { max: '100k', unit: 'cpu' })),
      memory: Type.Optional(Quantity('Memory per pod, e.g. 16Gi.', { max: '1Pi', unit: 'bytes' })),
      gpus: Type.Optional(Int('NVIDIA GPUs per pod.', { minimum: 0, maximum: 8 })),
    }),
  ),
});
export type DeploymentSpec = Static<typeof DeploymentSpec>;

export const DeploymentStatus = Obj('The observed state of the agent, as the operator last saw it.', {
  observedGeneration: Type.Optional(ObservedGeneration()),
  phase: Type.Optional(StringEnum('Undeployed, Pending (starting or recovering), Deployed or Failed (disconnect and connect to retry).', DEPLOYMENT_PHASES)),
  reason: Type.Optional(Reason('the phase')),
  message: Type.Optional(Message('the phase')),
  conditions: Type.Optional(Conditions('Current state: Available and Healthy.')),
  deploymentId: Type.Optional(
    Str('Stable identifier of this agent, used in its host name inference-<deploymentId>.<domain>.', { maxLength: 63, pattern: patterns.dnsLabel }),
  ),
  checkpoint: Type.Optional(
    Obj('The checkpoint spec.source resolved to, frozen at first resolution so later training does not change the agent.', {
      experiment: Name('The source experiment.'),
      step: Int('The checkpoint step.', { minimum: 0 }),
      trainingScore: Type.Optional(Num('Its training score.')),
      evaluationScore: Type.Optional(Num('Its evaluation score (fitness).')),
      location: Str('Where the checkpoint is stored, relative to the training cluster\'s checkpoint storage.', { maxLength: 1024 }),
      resolvedAt: Timestamp('When spec.source was resolved to this checkpoint.'),
    }),
  ),
  endpoint: Type.Optional(
    Obj('Where the agent serves requests, with Authorization: Bearer <API key>.', {
      url: Type.Optional(Str('External base URL; absent without a TrainingCluster exposure domain.', { maxLength: 2048 })),
      serviceURL: Str('In-cluster base URL of the Service.', { maxLength: 2048 }),
      inferencePath: StringEnum('The inference route for this algorithm: get_action (classic RL), predict (Supervised, LatentPPO) or generate (LLMs).', INFERENCE_PATHS),
      paths: Type.Optional(List('Every route served, relative to the base URL.', Str('A route, e.g. /status.', { maxLength: 256 }), { maxItems: 16 })),
    }),
  ),
  apiKeySecretName: Type.Optional(Name('The Secret in this namespace that holds the current API key.')),
  observedKeyRotation: Type.Optional(Int('The spec.keyRotation the current API key was issued for.', { minimum: 0 })),
  health: Type.Optional(
    Obj('Health checks of the endpoint.', {
      consecutiveFailures: Int('Failed checks since the last success.', { minimum: 0 }),
      lastCheckedAt: Type.Optional(Timestamp('When the endpoint was last checked.')),
      lastHealthyAt: Type.Optional(Timestamp('When a check last passed.')),
    }),
  ),
});
export type DeploymentStatus = Static<typeof DeploymentStatus>;

export type Deployment = Resource<DeploymentSpec, DeploymentStatus>;

export const deploymentKind = defineKind({
  kind: 'Deployment',
  plural: 'deployments',
  scope: 'Namespaced',
  shortNames: ['adeploy', 'agent'],
  description:
    'Deployment is an Arena agent: a frozen checkpoint of an experiment that, while connected, serves the Arena inference API at its own endpoint with its own API key. (Not apps/v1 Deployment: use adeploy or agent.)',
  spec: DeploymentSpec,
  status: DeploymentStatus,
  printerColumns: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Whether the endpoint is up.' },
    { name: 'Experiment', type: 'string', jsonPath: '.spec.source.experiment', description: 'The source experiment.' },
    { name: 'Checkpoint', type: 'integer', jsonPath: '.status.checkpoint.step', description: 'Step of the frozen checkpoint.' },
    { name: 'Endpoint', type: 'string', jsonPath: '.status.endpoint.url', description: 'External base URL.' },
    ageColumn,
  ],
});
