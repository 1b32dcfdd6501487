// ResourceClass: a hardware pool experiments are queued on (a resource-class row in Arena).
import { Type, type Static } from '@sinclair/typebox';
import { Bool, Conditions, Int, List, ListMap, Name, Num, Obj, Quantity, Str, StringMap, patterns } from '../schema.ts';
import { withRules } from '../rules.ts';
import { ageColumn, defineKind, type Resource } from '../kind.ts';
import { Description, Message, ObservedGeneration, Reason, Toleration } from './common.ts';
import { bundleStatus } from './trainingcluster.ts';

export const ResourceClassConditions = {
  /** The class can take experiments: it and its provider are enabled and at least one gang fits on an empty cluster. */
  Available: 'Available',
  /** The provider's setup bundle is older than the platform's current one. */
  UpdateRecommended: 'UpdateRecommended',
} as const;

const Worker = withRules(
  Obj(
    'What each worker pod requests. These describe one worker, not the whole experiment.',
    {
      cpu: Type.Optional(Quantity('CPU per worker (requested and limited), e.g. 8 or 7500m.', { max: '100k', unit: 'cpu' })),
      memory: Type.Optional(Quantity('Memory per worker (requested and limited), e.g. 64Gi.', { max: '1Pi', unit: 'bytes' })),
      gpus: Type.Optional(Int('NVIDIA GPUs per worker. Advanced Training (LLM) experiments need at least 1.', { minimum: 0, maximum: 64, default: 0 })),
      gpuProduct: Type.Optional(
        Str('Run only on nodes whose nvidia.com/gpu.product label has this value, e.g. NVIDIA-A100-SXM4-80GB.', {
          minLength: 1,
          maxLength: 63,
          pattern: patterns.labelValue,
        }),
      ),
      ephemeralStorage: Type.Optional(Quantity('Scratch disk per worker, e.g. 100Gi.', { max: '1Pi', unit: 'bytes' })),
    },
    { default: {} },
  ),
  [
    {
      cel: '!has(self.gpuProduct) || (has(self.gpus) && self.gpus >= 1)',
      message: 'gpuProduct needs gpus >= 1: a GPU product only selects nodes for workers that request GPUs',
      fieldPath: '.gpus',
      check: (w) => w.gpuProduct === undefined || (w.gpus ?? 0) >= 1,
    },
  ],
);

const Team = withRules(Obj('A team\'s guaranteed share of the class\'s GPUs.', {
  name: Str('The team, as messages and status name it.', { minLength: 1, maxLength: 63, pattern: patterns.dnsLabel }),
  namespaces: List('The namespaces whose experiments count as this team\'s; a namespace belongs to at most one team of a class.', Str('A namespace.', { minLength: 1, maxLength: 63, pattern: patterns.dnsLabel }), {
    minItems: 1,
    maxItems: 16,
    listType: 'set',
  }),
  gpus: Int('GPUs of this class guaranteed to the team (its nominal quota): while it asks for no more, it gets them back from teams that borrowed them, by preemption.', {
    minimum: 0,
    maximum: 1000000,
  }),
  borrowingLimit: Type.Optional(
    Int('At most this many GPUs beyond its quota may the team borrow while other teams leave them idle; unset borrows without limit, 0 never borrows.', {
      minimum: 0,
      maximum: 1000000,
    }),
  ),
  weight: Type.Optional(Num('The team\'s weight in fair sharing: a team of weight 2 is served as if it used half of what it uses.', { minimum: 0.01, maximum: 1000, default: 1 })),
}), [
  {
    cel: "self.name != 'unassigned'",
    message: 'unassigned names the namespaces no team lists: give the team another name',
    fieldPath: '.name',
    check: (t) => t.name !== 'unassigned',
  },
]);

const Teams = withRules(
  ListMap('Team quotas on this class: each team\'s guaranteed GPUs, what it may borrow beyond them, and its weight in fair sharing. Namespaces no team lists share only what the teams leave idle, and give it back on demand. Unset: no quotas, one queue by priority and arrival.', Team, {
    keys: ['name'],
    maxItems: 32,
  }),
  [
    {
      cel: 'self.all(t, t.namespaces.all(n, self.filter(u, n in u.namespaces).size() == 1))',
      message: 'a namespace may belong to only one team of a class: remove it from all teams but one',
      reason: 'FieldValueDuplicate',
      check: (teams) => {
        const seen = new Set<string>();
        for (const t of teams) for (const n of t.namespaces) {
          if (seen.has(n)) return false;
          seen.add(n);
        }
        return true;
      },
    },
  ],
);
export type ResourceClassTeam = Static<typeof Team>;

export const ResourceClassSpec = withRules(Obj('The desired state of a hardware pool.', {
  trainingCluster: Name('The TrainingCluster this class runs on.'),
  enabled: Type.Optional(Bool('Whether new experiments may use this class. A disabled class keeps its queue; new runs wait with reason ClassDisabled.', { default: true })),
  description: Type.Optional(Description('what hardware this class is')),
  nodes: Int('Workers per experiment: the gang size, one worker pod per node. Every worker must be placed before training starts.', {
    minimum: 1,
    maximum: 1024,
  }),
  worker: Type.Optional(Worker),
  nodeSelector: Type.Optional(
    StringMap('Labels a node must carry to run workers of this class, on top of the cluster-wide workerNodeSelector.', { maxProperties: 32, maxValueLength: 63 }),
  ),
  tolerations: Type.Optional(List('Taints that workers of this class tolerate, besides the GPU taint (added automatically when gpus >= 1).', Toleration, { maxItems: 32 })),
  creditsPerNodeHour: Type.Optional(
    Num('Credits charged per worker node per hour of running, used to report usage; 0 means free.', { minimum: 0, maximum: 1000000, default: 0 }),
  ),
  maxQueueWaitSeconds: Type.Optional(
    Int('How long an experiment may wait in Pending for capacity on this class before it fails with reason QueueTimeout; unset waits indefinitely.', {
      minimum: 1,
      maximum: 2592000,
    }),
  ),
  teams: Type.Optional(Teams),
}), [
  {
    cel: '!has(self.teams) || (has(self.worker) && has(self.worker.gpus) && self.worker.gpus >= 1)',
    message: 'team quotas share GPUs: set worker.gpus to 1 or more, or remove teams',
    fieldPath: '.teams',
    check: (s) => s.teams === undefined || (s.worker?.gpus ?? 0) >= 1,
  },
]);
export type ResourceClassSpec = Static<typeof ResourceClassSpec>;

const Count = (what: string) => Int(what, { minimum: 0 });

const TeamStatus = Obj('One team\'s use of the class.', {
  name: Str('The team (spec.teams[].name), or "unassigned".', { minLength: 1, maxLength: 63 }),
  quotaGpus: Count('Its guaranteed GPUs (spec.teams[].gpus; 0 for unassigned namespaces).'),
  usedGpus: Count('GPUs its admitted and running experiments hold on this class.'),
  borrowedGpus: Count('Of those, the GPUs beyond its quota: reclaimable by a team that needs its own quota back.'),
  queued: Count('Its experiments waiting in Pending for this class.'),
  running: Count('Its experiments admitted on this class and not yet finished.'),
});

export const ResourceClassStatus = Obj('The observed state of the pool, as the operator and scheduler last saw it.', {
  observedGeneration: Type.Optional(ObservedGeneration()),
  conditions: Type.Optional(Conditions('Current state: Available and UpdateRecommended.')),
  available: Type.Optional(Bool('Whether new experiments can be queued on this class now (the Available condition, for printing).')),
  reason: Type.Optional(Reason('why the class is or is not available')),
  message: Type.Optional(Message('the availability')),
  advancedTrainingEligible: Type.Optional(Bool('Whether Advanced Training (LLM) experiments may use this class: at least 1 GPU per worker.')),
  eligibleNodes: Type.Optional(Count('Ready worker nodes that satisfy the selectors, tolerations, GPU product and per-worker requests.')),
  fitNow: Type.Optional(Count('Experiments (whole gangs) that fit on the free capacity right now.')),
  fitMax: Type.Optional(Count('Experiments (whole gangs) that fit on the eligible nodes when nothing else runs; 0 means this class can never run.')),
  queued: Type.Optional(Count('Experiments waiting in Pending for this class.')),
  running: Type.Optional(Count('Experiments admitted on this class and not yet finished.')),
  teams: Type.Optional(
    List('Per team of spec.teams (and "unassigned" for namespaces no team lists, when any of them uses the class): its quota, what it uses and borrows, and what waits.', TeamStatus, { maxItems: 33 }),
  ),
  bundle: Type.Optional(bundleStatus('Whether the setup bundle of the class\'s TrainingCluster is current; the same verdict as its status.bundle.')),
});
export type ResourceClassStatus = Static<typeof ResourceClassStatus>;

export const resourceClassKind = defineKind({
  kind: 'ResourceClass',
  plural: 'resourceclasses',
  scope: 'Cluster',
  // Not "rc": kubectl already resolves that to ReplicationController.
  shortNames: ['rclass', 'arenaclass'],
  description:
    'ResourceClass is a hardware pool of a TrainingCluster: how many worker nodes an experiment gets, what each worker requests, which nodes qualify, and the credit rate.',
  spec: ResourceClassSpec,
  status: ResourceClassStatus,
  printerColumns: [
    { name: 'Nodes', type: 'integer', jsonPath: '.spec.nodes', description: 'Workers per experiment.' },
    { name: 'GPUs/Worker', type: 'integer', jsonPath: '.spec.worker.gpus', description: 'GPUs per worker.' },
    { name: 'Product', type: 'string', jsonPath: '.spec.worker.gpuProduct', description: 'Required GPU product.' },
    { name: 'Available', type: 'boolean', jsonPath: '.status.available', description: 'Whether new experiments can be queued.' },
    { name: 'Queued', type: 'integer', jsonPath: '.status.queued', description: 'Experiments waiting for capacity.' },
    { name: 'Running', type: 'integer', jsonPath: '.status.running', description: 'Experiments admitted and running.' },
    ageColumn,
  ],
});

export type ResourceClass = Resource<ResourceClassSpec, ResourceClassStatus>;
