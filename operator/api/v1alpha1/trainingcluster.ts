// TrainingCluster: the on-prem training provider of this Kubernetes cluster (Arena's "On-prem training cluster").
import { Type, type Static } from '@sinclair/typebox';
import { Bool, Conditions, Int, List, ListMap, Name, Num, Obj, Str, StringEnum, StringMap, Timestamp, patterns } from '../schema.ts';
import { withRules } from '../rules.ts';
import { ageColumn, defineKind, type Resource } from '../kind.ts';
import { Description, ObservedGeneration, SecretKeyReference, TAINT_EFFECTS } from './common.ts';

export const TrainingClusterConditions = {
  /** spec.enabled, as the controller last acted on it. */
  ProviderEnabled: 'ProviderEnabled',
  /** At least one worker node is Ready and schedulable. */
  WorkersReady: 'WorkersReady',
  /** The installed setup bundle is the version the platform calls current. */
  BundleCurrent: 'BundleCurrent',
  /** Experiments can start: enabled, workers ready and bundle current. */
  Ready: 'Ready',
  /** Only while credits are enforced: True while the balance is above zero, False (CreditsExhausted) at zero. */
  CreditsAvailable: 'CreditsAvailable',
} as const;

/** What running experiments do when the balance reaches zero. */
export const CREDITS_EXHAUSTED_POLICIES = ['Stop', 'Finish'] as const;
export type CreditsExhaustedPolicy = (typeof CREDITS_EXHAUSTED_POLICIES)[number];
/** Where the balance comes from: the platform's heartbeat replies (wins while spec.platform is set) or spec.credits.granted. */
export const CREDIT_SOURCES = ['Platform', 'Spec'] as const;

export const BUDGET_PERIODS = ['Month', 'Total'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];
export type CreditSource = (typeof CREDIT_SOURCES)[number];
/** The largest credit amount the API takes (a trillion): far beyond any real grant, small enough to stay exact. */
export const CREDITS_MAX = 1e12;

export const BUNDLE_STATES = ['Current', 'UpdateRecommended', 'Unknown'] as const;

const GpuSetup = Obj(
  'How GPU nodes are set up; worker pods that request GPUs use this runtime class and tolerate this taint.',
  {
    runtimeClassName: Type.Optional(Name('The RuntimeClass that exposes NVIDIA GPUs to containers.', { default: 'nvidia' })),
    taint: Type.Optional(
      Obj(
        'The taint that keeps ordinary pods off GPU nodes.',
        {
          key: Type.Optional(Str('Taint key.', { minLength: 1, maxLength: 316, pattern: patterns.qualifiedName, default: 'nvidia.com/gpu' })),
          value: Type.Optional(Str('Taint value.', { maxLength: 63, pattern: patterns.labelValue, default: 'true' })),
          effect: Type.Optional(StringEnum('Taint effect.', TAINT_EFFECTS, { default: 'NoSchedule' })),
        },
        { default: {} },
      ),
    ),
  },
  { default: {} },
);

const SetupBundle = Obj('The setup bundle installed in this cluster: its version and the images it runs.', {
  version: Str('Installed setup-bundle version.', { minLength: 1, maxLength: 64, pattern: patterns.semver }),
  images: Obj('Container images of this bundle.', {
    runtime: Str('Image of the Arena runtime that runs in every training worker and inference pod.', {
      minLength: 1,
      maxLength: 512,
      pattern: patterns.imageReference,
    }),
    operator: Type.Optional(Str('Image of the operator, as installed with this bundle.', { minLength: 1, maxLength: 512, pattern: patterns.imageReference })),
  }),
  runtimeCommand: Type.Optional(
    List('The command a training worker runs; the manifest and run settings reach it through mounted files and environment variables.', Str('One argument.', { minLength: 1, maxLength: 256 }), {
      minItems: 1,
      maxItems: 32,
      default: ['arena-runtime', 'train'],
    }),
  ),
});

const CheckpointStorage = withRules(
  Obj('Where workers write checkpoints. Set exactly one of persistentVolumeClaim or hostPath.', {
    mountPath: Type.Optional(Str('Where the storage is mounted inside worker and inference pods.', { maxLength: 1024, pattern: patterns.absolutePath, default: '/checkpoints' })),
    persistentVolumeClaim: Type.Optional(
      Obj('A ReadWriteMany claim shared by every worker. Pods use the claim of this name in their own namespace, so it must exist in every namespace that runs experiments.', {
        claimName: Name('Name of the PersistentVolumeClaim.'),
      }),
    ),
    hostPath: Type.Optional(
      Obj('A directory on every node (single-node clusters and tests; it is not shared between nodes).', {
        path: Str('Absolute directory path on the node.', { minLength: 1, maxLength: 1024, pattern: patterns.absolutePath }),
      }),
    ),
  }),
  [
    {
      cel: 'has(self.persistentVolumeClaim) != has(self.hostPath)',
      message: 'set exactly one of persistentVolumeClaim or hostPath',
      check: (s) => (s.persistentVolumeClaim !== undefined) !== (s.hostPath !== undefined),
    },
  ],
);

const ParentReference = Obj('A Gateway API parent (a Gateway listener) the inference routes attach to.', {
  name: Name('Name of the Gateway.'),
  namespace: Type.Optional(Str('Namespace of the Gateway; defaults to the namespace of the route.', { minLength: 1, maxLength: 63, pattern: patterns.dnsLabel })),
  sectionName: Type.Optional(Str('Name of the Gateway listener.', { minLength: 1, maxLength: 253, pattern: patterns.dnsSubdomain })),
});

const Exposure = withRules(
  Obj('How inference endpoints are reached from outside the cluster; without a domain they are reachable only in-cluster, through their Service.', {
    domain: Type.Optional(Str('DNS domain under which each deployment gets the host inference-<deployment id>.<domain>.', { minLength: 1, maxLength: 200, pattern: patterns.dnsSubdomain })),
    gateway: Type.Optional(
      Obj('Expose endpoints with Gateway API HTTPRoutes.', {
        parentRefs: List('The Gateways (listeners) the routes attach to.', ParentReference, { minItems: 1, maxItems: 8 }),
      }),
    ),
    ingressClassName: Type.Optional(Name('Expose endpoints with Ingresses of this class instead of a Gateway.')),
  }),
  [
    {
      cel: 'has(self.domain) || (!has(self.gateway) && !has(self.ingressClassName))',
      message: 'a gateway or ingressClassName needs a domain to build endpoint host names',
      fieldPath: '.domain',
      reason: 'FieldValueRequired',
      check: (e) => e.domain !== undefined || (e.gateway === undefined && e.ingressClassName === undefined),
    },
    {
      cel: '!has(self.gateway) || !has(self.ingressClassName)',
      message: 'choose either gateway or ingressClassName, not both',
      fieldPath: '.ingressClassName',
      reason: 'FieldValueForbidden',
      check: (e) => e.gateway === undefined || e.ingressClassName === undefined,
    },
  ],
);

const Platform = Obj('The hosted Arena platform this cluster reports to. The operator never blocks reconciling on it.', {
  url: Str('Base URL of the platform API.', { minLength: 1, maxLength: 2048, pattern: patterns.httpUrl }),
  tokenSecretRef: SecretKeyReference('the cluster token sent with heartbeats'),
  heartbeatIntervalSeconds: Type.Optional(Int('Seconds between heartbeats sent to the platform.', { minimum: 5, maximum: 3600, default: 30 })),
});

const Credits = Obj(
  'Credits that training on this cluster spends (node-hours times each ResourceClass\'s creditsPerNodeHour). While a balance is known, experiments cannot start at zero and running ones stop (or finish, per exhaustedPolicy); a top-up resumes them from their final checkpoint. Without spec.credits and without a balance from the platform, training is not limited.',
  {
    granted: Type.Optional(
      Num(
        'Credits granted to this cluster in total, over its life: the balance is this minus what training has spent since the ledger started (status.credits.spent). To top up, raise it by the amount (1000 to 1500 adds 500); re-applying the same value changes nothing. Ignored while spec.platform is set and the platform has named a balance in its heartbeat replies.',
        { minimum: 0, maximum: CREDITS_MAX },
      ),
    ),
    exhaustedPolicy: Type.Optional(
      StringEnum(
        'What running experiments do when the balance reaches zero: Stop (workers write a final checkpoint, the run ends Stopped with reason CreditsExhausted and resumes from that checkpoint after a top-up) or Finish (runs that have started train to the end; only new ones wait). Either way new experiments wait in Pending with reason CreditsExhausted.',
        CREDITS_EXHAUSTED_POLICIES,
        { default: 'Stop' },
      ),
    ),
  },
);

const Budget = withRules(
  Obj('A spending limit for a project: the namespaces it covers, in credits, GPU-hours or both, per calendar month (UTC) or in total.', {
    name: Str('The budget, as status and messages name it.', { minLength: 1, maxLength: 63, pattern: patterns.dnsLabel }),
    namespaces: List(
      'The namespaces whose experiments (on this cluster\'s classes) spend from it; a namespace may be under several budgets, and any of them spent holds it.',
      Str('A namespace.', { minLength: 1, maxLength: 63, pattern: patterns.dnsLabel }),
      { minItems: 1, maxItems: 64, listType: 'set' },
    ),
    credits: Type.Optional(Num('Credits the namespaces may spend per period (node-hours times each class\'s creditsPerNodeHour).', { minimum: 0, maximum: CREDITS_MAX })),
    gpuHours: Type.Optional(Num('GPU-hours the namespaces may use per period.', { minimum: 0, maximum: CREDITS_MAX })),
    period: Type.Optional(
      StringEnum('Month: the budget starts afresh on the first of each month (UTC), and runs it held resume by themselves; Total: over the budget\'s life.', BUDGET_PERIODS, {
        default: 'Month',
      }),
    ),
    exhaustedPolicy: Type.Optional(
      StringEnum(
        'What running experiments of these namespaces do once the budget is spent: Stop (final checkpoint, Stopped with reason BudgetExhausted, resumed when the budget is raised or the next period begins) or Finish (runs that have started go on; only new ones wait).',
        CREDITS_EXHAUSTED_POLICIES,
        { default: 'Stop' },
      ),
    ),
  }),
  [
    {
      cel: 'has(self.credits) || has(self.gpuHours)',
      message: 'a budget needs a limit: set credits, gpuHours or both',
      fieldPath: '.credits',
      reason: 'FieldValueRequired',
      check: (b) => b.credits !== undefined || b.gpuHours !== undefined,
    },
  ],
);
export type Budget = Static<typeof Budget>;

export const TrainingClusterSpec = withRules(Obj('The desired state of the on-prem training provider.', {
  enabled: Type.Optional(
    Bool('Whether this provider takes new training runs. While false, new runs wait in Pending (reason ProviderDisabled); running ones are not interrupted.', {
      default: true,
    }),
  ),
  description: Type.Optional(Description('what this cluster is')),
  workerNodeSelector: Type.Optional(
    StringMap('Labels a node must carry to run training workers; empty allows every schedulable node.', { maxProperties: 32, maxValueLength: 63 }),
  ),
  gpu: Type.Optional(GpuSetup),
  setupBundle: SetupBundle,
  currentBundleVersion: Type.Optional(
    Str(
      'The setup-bundle version the platform calls current, set by hand; when it differs from setupBundle.version an update is recommended. A fallback: while spec.platform is set, the version the platform names in its heartbeat replies wins. Unset (and no platform answer) means unknown.',
      {
        minLength: 1,
        maxLength: 64,
        pattern: patterns.semver,
      },
    ),
  ),
  checkpointStorage: CheckpointStorage,
  exposure: Type.Optional(Exposure),
  platform: Type.Optional(Platform),
  credits: Type.Optional(Credits),
  budgets: Type.Optional(
    ListMap(
      'Spending limits per project (a set of namespaces) and period, on top of the cluster\'s credits: at a spent budget the namespaces\' new experiments wait (reason BudgetExhausted) and running ones stop with a final checkpoint, until the budget is raised or its next period begins.',
      Budget,
      { keys: ['name'], maxItems: 64 },
    ),
  ),
}), [
  {
    cel: '!has(self.credits) || has(self.credits.granted) || has(self.platform)',
    message: 'credits.granted is required without spec.platform: set the credits granted to this cluster (raise it later to top up), or remove spec.credits',
    fieldPath: '.credits.granted',
    reason: 'FieldValueRequired',
    check: (s) => s.credits === undefined || s.credits.granted !== undefined || s.platform !== undefined,
  },
]);
export type TrainingClusterSpec = Static<typeof TrainingClusterSpec>;

/** Also the shape of ResourceClass status.bundle, the same verdict for the class's provider. */
export const bundleStatus = (description: string) =>
  Obj(description, {
  installedVersion: Type.Optional(Str('spec.setupBundle.version, as acted on.', { maxLength: 64 })),
  currentVersion: Type.Optional(
    Str('The version the platform calls current: from its heartbeat replies while spec.platform is set and it has named one, else spec.currentBundleVersion.', {
      maxLength: 64,
    }),
  ),
  state: StringEnum('Current, UpdateRecommended (re-install the newer bundle), or Unknown when the current version is not known.', BUNDLE_STATES),
  });

const NodeNames = (which: string) =>
  List(`Names of the ${which} worker nodes (at most 1024 are listed; the counts are always exact).`, Str('Node name.', { maxLength: 253 }), {
    maxItems: 1024,
  });

const Count = (what: string) => Int(what, { minimum: 0 });

const GpuProduct = Obj('GPU capacity of one product (the nvidia.com/gpu.product node label).', {
  product: Str('The GPU product name as the node label gives it.', { minLength: 1, maxLength: 63 }),
  total: Count('GPUs of this product on ready worker nodes.'),
  allocated: Count('GPUs of this product requested by running pods.'),
  free: Count('GPUs of this product not requested by any pod.'),
  memoryMiB: Type.Optional(Count('Memory of one GPU, in MiB.')),
  computeCapability: Type.Optional(Str('CUDA compute capability of the product.', { maxLength: 8, pattern: patterns.computeCapability })),
  attentionBackend: Type.Optional(
    Str('The attention backend the runtime selects on this product (FlashAttention 3 needs compute capability 8.0 to 9.0).', { maxLength: 32 }),
  ),
});

export const TrainingClusterStatus = Obj('The observed state of the provider, as the operator last saw it.', {
  observedGeneration: Type.Optional(ObservedGeneration()),
  conditions: Type.Optional(Conditions('Current state: ProviderEnabled, WorkersReady, BundleCurrent and Ready.')),
  workers: Type.Optional(
    Obj('Worker nodes selected by workerNodeSelector.', {
      total: Count('Worker nodes.'),
      ready: Count('Worker nodes that are Ready and schedulable.'),
      notReady: Count('Worker nodes that are not Ready or are cordoned.'),
      readyNodes: Type.Optional(NodeNames('ready')),
      notReadyNodes: Type.Optional(NodeNames('not-ready')),
    }),
  ),
  gpus: Type.Optional(
    Obj('GPU capacity on ready worker nodes.', {
      total: Count('GPUs on ready worker nodes.'),
      allocated: Count('GPUs requested by running pods.'),
      free: Count('GPUs not requested by any pod.'),
      byProduct: Type.Optional(ListMap('The same numbers per GPU product.', GpuProduct, { keys: ['product'], maxItems: 32 })),
    }),
  ),
  bundle: Type.Optional(bundleStatus('Whether the installed setup bundle is current.')),
  platform: Type.Optional(
    Obj('What the platform said in its heartbeat replies; present only while spec.platform is set and the platform has named a version or a credit balance.', {
      currentBundleVersion: Type.Optional(
        Str('The last valid setup-bundle version the platform called current. Kept when a later reply carries none, and across operator restarts.', {
          maxLength: 64,
          pattern: patterns.semver,
        }),
      ),
      credits: Type.Optional(
        Obj('The last credit balance the platform named. It counts what the heartbeat reported as spent (spentAtReport); what was spent since is taken off it here.', {
          balance: Num('The balance the platform named.', { minimum: -CREDITS_MAX, maximum: CREDITS_MAX }),
          spentAtReport: Num('status.credits.spent as the heartbeat that got this reply reported it.', { minimum: 0, maximum: CREDITS_MAX }),
          receivedAt: Timestamp('When the reply arrived.'),
        }),
      ),
    }),
  ),
  budgets: Type.Optional(
    List(
      'The ledger of each spec.budgets entry for its current period, kept like status.credits: each pass adds what its namespaces\' experiments metered since the last one.',
      Obj('One budget\'s ledger.', {
        name: Str('spec.budgets[].name.', { minLength: 1, maxLength: 63 }),
        period: Str('The period it counts: the month (YYYY-MM, UTC) or "total".', { maxLength: 16 }),
        spentCredits: Num('Credits spent in the period.', { minimum: 0, maximum: CREDITS_MAX }),
        spentGpuHours: Num('GPU-hours used in the period.', { minimum: 0, maximum: CREDITS_MAX }),
        meteredCredits: Num('The namespaces\' metered credits at the last debit: the level the next one is measured from.', { minimum: 0, maximum: CREDITS_MAX }),
        meteredGpuHours: Num('The namespaces\' metered GPU-hours at the last debit.', { minimum: 0, maximum: CREDITS_MAX }),
        debitedThrough: Timestamp('Usage up to this moment is counted.'),
        running: Int('Experiments of these namespaces spending now.', { minimum: 0 }),
        burnRatePerHour: Num('Credits per hour they spend now.', { minimum: 0, maximum: CREDITS_MAX }),
        secondsLeft: Type.Optional(Int('At the current rates, seconds until a limit of the budget is reached; absent while nothing runs or once it is spent.', { minimum: 0 })),
        exhaustedAt: Type.Optional(Timestamp('When the budget was spent in this period; absent while some is left.')),
      }),
      { maxItems: 64 },
    ),
  ),
  credits: Type.Optional(
    Obj(
      'The credit ledger, kept here so no credit is spent twice across operator restarts: each pass debits what the experiments on this cluster have metered since the last one (their status.usage.credits plus the running attempts), never from events. Present while a balance is known (spec.credits.granted or the platform).',
      {
        source: StringEnum('Where the balance comes from: Platform (heartbeat replies; wins while spec.platform is set) or Spec (spec.credits.granted).', CREDIT_SOURCES),
        balance: Num('Credits left as of debitedThrough; at 0 or below new experiments wait and running ones stop (see spec.credits.exhaustedPolicy).', {
          minimum: -CREDITS_MAX,
          maximum: CREDITS_MAX,
        }),
        granted: Type.Optional(Num('spec.credits.granted as last applied (source Spec).', { minimum: 0, maximum: CREDITS_MAX })),
        spent: Num('Credits debited since the ledger started.', { minimum: 0, maximum: CREDITS_MAX }),
        metered: Num('The experiments\' metered credits summed at the last debit: the level the next debit is measured from.', { minimum: 0, maximum: CREDITS_MAX }),
        debitedThrough: Timestamp('Usage up to this moment is debited.'),
        burnRatePerHour: Num('Credits per hour the running experiments spend now.', { minimum: 0, maximum: CREDITS_MAX }),
        running: Int('Experiments spending credits now.', { minimum: 0 }),
        secondsLeft: Type.Optional(Int('At the burn rate, seconds until the balance reaches zero; absent while nothing runs or once it is zero.', { minimum: 0 })),
        exhaustedAt: Type.Optional(Timestamp('When the balance reached zero; absent while credits are left.')),
      },
    ),
  ),
});
export type TrainingClusterStatus = Static<typeof TrainingClusterStatus>;

export const trainingClusterKind = defineKind({
  kind: 'TrainingCluster',
  plural: 'trainingclusters',
  scope: 'Cluster',
  shortNames: ['tcl', 'arenacluster'],
  description:
    'TrainingCluster is the on-prem Arena training provider of this Kubernetes cluster: whether it is enabled, which nodes are workers, the installed setup bundle, and where checkpoints live.',
  spec: TrainingClusterSpec,
  status: TrainingClusterStatus,
  printerColumns: [
    { name: 'Enabled', type: 'boolean', jsonPath: '.spec.enabled', description: 'Whether the provider takes new training runs.' },
    { name: 'Workers Ready', type: 'integer', jsonPath: '.status.workers.ready', description: 'Ready worker nodes.' },
    { name: 'GPUs Free', type: 'integer', jsonPath: '.status.gpus.free', description: 'GPUs not requested by any pod.' },
    { name: 'Bundle', type: 'string', jsonPath: '.status.bundle.state', description: 'Whether the setup bundle is current.' },
    { name: 'Credits', type: 'number', jsonPath: '.status.credits.balance', description: 'The credit balance, while credits are enforced.' },
    ageColumn,
  ],
});

export type TrainingCluster = Resource<TrainingClusterSpec, TrainingClusterStatus>;
