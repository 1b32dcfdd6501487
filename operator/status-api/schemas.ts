// The status API's response shapes, written once: the TypeScript types of the views, and the schemas of the OpenAPI
// document (openapi.ts) that the platform and the tests validate against. Fields that mirror a custom resource's
// status reuse that resource's own schema, so the API cannot drift from the CRDs.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Condition as CrdCondition } from '../api/schema.ts';
import { EXPERIMENT_PHASES, ExperimentStatus, ExperimentSpec } from '../api/v1alpha1/experiment.ts';
import { DEPLOYMENT_PHASES, DeploymentStatus } from '../api/v1alpha1/deployment.ts';
import { BUNDLE_STATES, TrainingClusterStatus } from '../api/v1alpha1/trainingcluster.ts';
import { BUNDLE_VERSION_SOURCES } from '../controllers/trainingcluster/bundle.ts';
import { ResourceClassSpec, ResourceClassStatus } from '../api/v1alpha1/resourceclass.ts';

/** The version in every body; the path carries it too (/api/v1). Bumped only for incompatible changes. */
export const STATUS_API_VERSION = 'v1';

/**
 * A CRD schema node as plain JSON Schema for the OpenAPI document: Kubernetes extensions dropped, and objects closed
 * (additionalProperties: false) so that a field the document does not describe fails validation.
 */
export function plainSchema<T extends TSchema>(schema: T): T {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (typeof node !== 'object' || node === null) return node;
    const src = node as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(src)) {
      if (k.startsWith('x-kubernetes-') || k === 'default') continue;
      out[k] = walk(v);
    }
    if (src.type === 'object' && src.properties && src.additionalProperties === undefined && !src['x-kubernetes-preserve-unknown-fields']) {
      out.additionalProperties = false;
    }
    // An int-or-string carries its string rules beside the anyOf, the one shape a CRD allows; plain JSON Schema
    // says the same more precisely with the rules inside the string branch.
    if (src['x-kubernetes-int-or-string'] && Array.isArray(out.anyOf)) {
      const stringRules: Record<string, unknown> = {};
      for (const k of ['pattern', 'maxLength', 'minLength', 'format']) {
        if (out[k] !== undefined) {
          stringRules[k] = out[k];
          delete out[k];
        }
      }
      out.anyOf = (out.anyOf as Record<string, unknown>[]).map((b) => (b.type === 'string' ? { ...b, ...stringRules } : b));
    }
    return out;
  };
  // JSON first: TypeBox keeps its bookkeeping under symbol keys, which have no place in a published document.
  return walk(JSON.parse(JSON.stringify(schema))) as T;
}

const closed = { additionalProperties: false } as const;
const prop = <T extends TSchema>(s: T) => plainSchema(s);

const stringEnum = <const V extends readonly string[]>(values: V, description: string) =>
  Type.Unsafe<V[number]>({ type: 'string', enum: [...values], description });

/** A reference to a named schema of the document; typed as the schema it names. */
function ref<T extends TSchema>(name: string, _schema: T) {
  return Type.Unsafe<Static<T>>({ $ref: `#/components/schemas/${name}` });
}

const es = ExperimentStatus.properties;
const ds = DeploymentStatus.properties;
const ts = TrainingClusterStatus.properties;
const rs = ResourceClassSpec.properties;

export const ErrorBody = Type.Object(
  {
    error: Type.Object(
      {
        code: Type.Integer({ description: 'The HTTP status code.' }),
        reason: Type.String({ description: 'A CamelCase machine-readable reason, e.g. Unauthorized, InvalidContinueToken.' }),
        message: Type.String({ description: 'What went wrong and what to do about it.' }),
      },
      closed,
    ),
  },
  { ...closed, description: 'Every error answer has this body.' },
);

const Conditions = Type.Array(prop(CrdCondition), { description: 'The object\'s conditions, as the operator last wrote them.' });
const Timestamp = (description: string) => Type.String({ format: 'date-time', description });

const PhaseCounts = <V extends readonly string[]>(phases: V, what: string) =>
  Type.Object(Object.fromEntries(phases.map((p) => [p, Type.Integer({ minimum: 0 })])) as Record<V[number], ReturnType<typeof Type.Integer>>, {
    ...closed,
    description: `${what} per phase; every phase is listed, with 0 when none is in it.`,
  });

export const TrainingClusterSummary = Type.Object(
  {
    name: Type.String(),
    enabled: Type.Boolean({ description: 'Whether the provider takes new runs (spec.enabled).' }),
    description: Type.Optional(Type.String()),
    ready: Type.Boolean({ description: 'The Ready condition is True: enabled and at least one worker node is Ready.' }),
    workersRunning: Type.Boolean({ description: 'At least one worker node is Ready (the platform\'s "Workers running").' }),
    bundle: Type.Object(
      {
        installedVersion: Type.Optional(Type.String()),
        currentVersion: Type.Optional(Type.String()),
        currentVersionSource: Type.Optional(
          stringEnum(
            BUNDLE_VERSION_SOURCES,
            'Where currentVersion came from: Platform (a heartbeat reply; wins while spec.platform is set) or Spec (spec.currentBundleVersion, the admin\'s fallback).',
          ),
        ),
        state: stringEnum(BUNDLE_STATES, 'Current, UpdateRecommended, or Unknown while the platform\'s current version is not known.'),
      },
      {
        ...closed,
        description:
          'Computed from the spec and the version the status recorded from the platform, so an installed-version change shows even before the controller has written status.',
      },
    ),
    workers: Type.Optional(prop(ts.workers)),
    gpus: Type.Optional(prop(ts.gpus)),
    credits: Type.Optional(prop(ts.credits)),
    budgets: Type.Optional(prop(ts.budgets)),
    platformConfigured: Type.Boolean({ description: 'spec.platform is set: the operator sends heartbeats (see the PlatformConnected condition).' }),
    conditions: Conditions,
    generation: Type.Integer({ minimum: 0 }),
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { ...closed, description: 'An on-prem training provider (TrainingCluster).' },
);

export const ResourceClassSummary = Type.Object(
  {
    name: Type.String(),
    trainingCluster: Type.String(),
    enabled: Type.Boolean(),
    description: Type.Optional(Type.String()),
    nodes: Type.Integer({ minimum: 1, description: 'Workers per experiment.' }),
    worker: prop(rs.worker),
    creditsPerNodeHour: Type.Number({ minimum: 0 }),
    available: Type.Optional(Type.Boolean()),
    reason: Type.Optional(Type.String()),
    message: Type.Optional(Type.String()),
    updateRecommended: Type.Optional(Type.Boolean({ description: 'The UpdateRecommended condition is True: the platform\'s training image changed since the installed bundle.' })),
    advancedTrainingEligible: Type.Boolean({ description: 'At least 1 GPU per worker: Advanced Training (LLM) projects may use the class.' }),
    eligibleNodes: Type.Optional(Type.Integer({ minimum: 0 })),
    fitNow: Type.Optional(Type.Integer({ minimum: 0 })),
    fitMax: Type.Optional(Type.Integer({ minimum: 0 })),
    queued: Type.Optional(Type.Integer({ minimum: 0 })),
    running: Type.Optional(Type.Integer({ minimum: 0 })),
    teams: Type.Optional(prop(ResourceClassStatus.properties.teams)),
    conditions: Conditions,
    generation: Type.Integer({ minimum: 0 }),
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { ...closed, description: 'A resource class (hardware pool); status fields are as the operator last wrote them.' },
);

const experimentFields = {
  namespace: Type.String(),
  name: Type.String(),
  uid: Type.Optional(Type.String()),
  createdAt: Type.Optional(Timestamp('metadata.creationTimestamp.')),
  class: Type.Optional(Type.String({ description: 'spec.resourceClass.' })),
  algorithm: Type.Optional(Type.String({ description: 'The manifest\'s algorithm name.' })),
  action: prop(ExperimentSpec.properties.action),
  phase: stringEnum(EXPERIMENT_PHASES, 'Where the current run is; Draft until the operator has looked at a new experiment.'),
  reason: Type.Optional(prop(es.reason)),
  message: Type.Optional(prop(es.message)),
  run: Type.Optional(prop(es.run)),
  attempt: Type.Optional(prop(es.attempt)),
  queuePosition: Type.Optional(prop(es.queuePosition)),
  priority: Type.Optional(Type.Integer({ description: 'spec.priority, when set.' })),
  priorityClassName: Type.Optional(Type.String({ description: 'spec.priorityClassName, when set.' })),
  estimatedStartTime: Type.Optional(prop(es.estimatedStartTime)),
  failedAttempts: Type.Optional(prop(es.failedAttempts)),
  admittedAt: Type.Optional(prop(es.admittedAt)),
  startedAt: Type.Optional(prop(es.startedAt)),
  finishedAt: Type.Optional(prop(es.finishedAt)),
  workers: Type.Optional(prop(es.workers)),
  progress: Type.Optional(prop(es.progress)),
  latestCheckpoint: Type.Optional(prop(es.latestCheckpoint)),
  bestCheckpoint: Type.Optional(prop(es.bestCheckpoint)),
  lastFailure: Type.Optional(prop(es.lastFailure)),
  lastInterruption: Type.Optional(prop(es.lastInterruption)),
  usage: Type.Optional(prop(es.usage)),
};

export const ExperimentItem = Type.Object(experimentFields, { ...closed, description: 'An experiment as listed.' });

export const ExperimentDetail = Type.Object(
  {
    ...experimentFields,
    description: Type.Optional(Type.String()),
    checkpoints: Type.Array(prop(es.checkpoints.items), { description: 'Checkpoints of every run, oldest first.' }),
    resumedFrom: Type.Optional(prop(es.resumedFrom)),
    conditions: Conditions,
  },
  { ...closed, description: 'One experiment with its checkpoints and conditions.' },
);

export const DeploymentItem = Type.Object(
  {
    namespace: Type.String(),
    name: Type.String(),
    uid: Type.Optional(Type.String()),
    createdAt: Type.Optional(Timestamp('metadata.creationTimestamp.')),
    experiment: Type.String({ description: 'spec.source.experiment.' }),
    connected: Type.Boolean(),
    phase: stringEnum(DEPLOYMENT_PHASES, 'Undeployed until the operator has looked at a new deployment.'),
    reason: Type.Optional(prop(ds.reason)),
    message: Type.Optional(prop(ds.message)),
    deploymentId: Type.Optional(prop(ds.deploymentId)),
    checkpoint: Type.Optional(prop(ds.checkpoint)),
    endpoint: Type.Optional(prop(ds.endpoint)),
    health: Type.Optional(prop(ds.health)),
  },
  { ...closed, description: 'A deployment (agent).' },
);

const ListMeta = Type.Object(
  {
    total: Type.Integer({ minimum: 0, description: 'Items matching the filters, over all pages.' }),
    continue: Type.Optional(Type.String({ description: 'Pass as ?continue= to get the next page; absent on the last page.' })),
  },
  closed,
);

const listOf = <T extends TSchema>(kind: string, item: T, name: string) =>
  Type.Object(
    { apiVersion: Type.Literal(STATUS_API_VERSION), kind: Type.Literal(kind), metadata: ListMeta, items: Type.Array(ref(name, item)) },
    { ...closed, description: `A page of ${name} items, ordered by namespace and name.` },
  );

export const ExperimentList = listOf('ExperimentList', ExperimentItem, 'ExperimentItem');
export const DeploymentList = listOf('DeploymentList', DeploymentItem, 'DeploymentItem');

export const ResourceClassList = Type.Object(
  {
    apiVersion: Type.Literal(STATUS_API_VERSION),
    kind: Type.Literal('ResourceClassList'),
    items: Type.Array(ref('ResourceClassSummary', ResourceClassSummary)),
  },
  { ...closed, description: 'Every resource class, by name.' },
);

export const ExperimentResponse = Type.Object(
  { apiVersion: Type.Literal(STATUS_API_VERSION), kind: Type.Literal('Experiment'), experiment: ref('ExperimentDetail', ExperimentDetail) },
  closed,
);

export const ClusterStatus = Type.Object(
  {
    apiVersion: Type.Literal(STATUS_API_VERSION),
    kind: Type.Literal('ClusterStatus'),
    trainingClusters: Type.Array(ref('TrainingClusterSummary', TrainingClusterSummary), { description: 'The on-prem providers (usually one).' }),
    classes: Type.Array(ref('ResourceClassSummary', ResourceClassSummary)),
    experiments: Type.Object({ total: Type.Integer({ minimum: 0 }), byPhase: PhaseCounts(EXPERIMENT_PHASES, 'Experiments') }, closed),
    deployments: Type.Object({ total: Type.Integer({ minimum: 0 }), byPhase: PhaseCounts(DEPLOYMENT_PHASES, 'Deployments') }, closed),
  },
  { ...closed, description: 'Everything the platform shows about this cluster, in one answer.' },
);

const Amounts = {
  nodeHours: Type.Number({ minimum: 0, description: 'Worker-node hours.' }),
  gpuHours: Type.Number({ minimum: 0 }),
  credits: Type.Number({ minimum: 0, description: 'Node-hours times the class\'s creditsPerNodeHour.' }),
};

export const UsageDay = Type.Object(
  {
    date: Type.String({ format: 'date', description: 'The UTC day.' }),
    namespace: Type.String(),
    class: Type.String({ description: 'The resource class; empty for experiments without one.' }),
    experiments: Type.Integer({ minimum: 0, description: 'Experiments that used resources that day.' }),
    ...Amounts,
  },
  closed,
);

export const UsageExperiment = Type.Object(
  {
    namespace: Type.String(),
    name: Type.String(),
    class: Type.String(),
    phase: stringEnum(EXPERIMENT_PHASES, 'The experiment\'s phase now.'),
    ...Amounts,
    liveNodeHours: Type.Number({ minimum: 0, description: 'The part of nodeHours from the attempt running now, not yet in status.usage.' }),
  },
  closed,
);

export const Usage = Type.Object(
  {
    apiVersion: Type.Literal(STATUS_API_VERSION),
    kind: Type.Literal('Usage'),
    from: Timestamp('Start of the window (inclusive).'),
    to: Timestamp('End of the window (exclusive).'),
    namespace: Type.Optional(Type.String()),
    generatedAt: Timestamp('When the answer was computed; running attempts are counted up to then.'),
    totals: Type.Object(Amounts, closed),
    daily: Type.Array(UsageDay, { description: 'Per UTC day, namespace and class, by date then namespace then class.' }),
    experiments: Type.Array(UsageExperiment, { description: 'Per experiment within the window, by namespace and name.' }),
  },
  { ...closed, description: 'Resource use within a window.' },
);

export type ErrorBody = Static<typeof ErrorBody>;
export type TrainingClusterSummary = Static<typeof TrainingClusterSummary>;
export type ResourceClassSummary = Static<typeof ResourceClassSummary>;
export type ExperimentItem = Static<typeof ExperimentItem>;
export type ExperimentDetail = Static<typeof ExperimentDetail>;
export type DeploymentItem = Static<typeof DeploymentItem>;
export type ClusterStatus = Static<typeof ClusterStatus>;
export type Usage = Static<typeof Usage>;
export type UsageDay = Static<typeof UsageDay>;
export type UsageExperiment = Static<typeof UsageExperiment>;

/** The named schemas of the document. */
export const componentSchemas = {
  Error: ErrorBody,
  ClusterStatus,
  TrainingClusterSummary,
  ResourceClassSummary,
  ResourceClassList,
  ExperimentItem,
  ExperimentDetail,
  ExperimentList,
  ExperimentResponse,
  DeploymentItem,
  DeploymentList,
  Usage,
} as const;
