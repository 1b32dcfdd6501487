// The chart's values.schema.json. The TrainingCluster and ResourceClass parts are taken from the generated CRDs (the
// one schema source), made strict (an unknown key is an error, not a silently pruned field), so a bad class in
// values fails `helm install` with the path of the value instead of reaching the API server.
type Schema = Record<string, unknown>;

/** JSON Schema keywords only: the CRD's x-kubernetes-* extensions mean nothing to Helm's validator. */
function withoutKubernetesExtensions(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withoutKubernetesExtensions);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema as Schema)) {
    if (key.startsWith('x-kubernetes-')) continue;
    // Property names are data, not keywords: recurse into each property's schema without filtering the names.
    if (key === 'properties') {
      out[key] = Object.fromEntries(Object.entries(value as Schema).map(([k, v]) => [k, withoutKubernetesExtensions(v)]));
    } else {
      out[key] = withoutKubernetesExtensions(value);
    }
  }
  return out;
}

/** Every object with declared properties refuses undeclared ones (the API server would prune them silently). */
export function strict(schema: unknown, preserved = false): unknown {
  if (Array.isArray(schema)) return schema.map((s) => strict(s));
  if (schema === null || typeof schema !== 'object') return schema;
  const s = schema as Schema;
  const keepsUnknown = preserved || s['x-kubernetes-preserve-unknown-fields'] === true;
  const out: Schema = {};
  for (const [key, value] of Object.entries(s)) {
    if (key === 'properties') {
      out[key] = Object.fromEntries(Object.entries(value as Schema).map(([k, v]) => [k, strict(v)]));
    } else if (key === 'items' || key === 'additionalProperties' || key === 'anyOf' || key === 'oneOf' || key === 'allOf') {
      out[key] = strict(value);
    } else {
      out[key] = value;
    }
  }
  if (s.properties !== undefined && s.additionalProperties === undefined && !keepsUnknown) out.additionalProperties = false;
  return out;
}

const str = (description: string, extra: Schema = {}): Schema => ({ type: 'string', description, ...extra });
const int = (description: string, minimum: number, maximum?: number): Schema => ({
  type: 'integer',
  description,
  minimum,
  ...(maximum !== undefined ? { maximum } : {}),
});
const bool = (description: string): Schema => ({ type: 'boolean', description });
const obj = (description: string, properties: Record<string, Schema>, extra: Schema = {}): Schema => ({
  type: 'object',
  description,
  properties,
  additionalProperties: false,
  ...extra,
});
const stringMap = (description: string): Schema => ({ type: 'object', description, additionalProperties: { type: 'string' } });
const anyObject = (description: string): Schema => ({ type: 'object', description });
const anyList = (description: string): Schema => ({ type: 'array', description, items: { type: 'object' } });

const SEMVER = '^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?$';
const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
const QUANTITY = '^(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$';
const DURATION = '^([0-9]+(ms|s|m|h))+$';

const quantity = (description: string): Schema => ({ description, anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: QUANTITY }] });
const resources = (description: string): Schema =>
  obj(description, {
    requests: { type: 'object', description: 'Requested cpu and memory.', additionalProperties: quantity('A quantity, e.g. 100m or 256Mi.') },
    limits: { type: 'object', description: 'Limits on cpu and memory.', additionalProperties: quantity('A quantity, e.g. 1 or 1Gi.') },
  });

const image = (what: string, withPullPolicy: boolean): Schema =>
  obj(`The ${what} image.`, {
    registry: str('Registry host (and path); global.imageRegistry replaces it.', { pattern: '^([^\\s/:]+(:[0-9]+)?(/[^\\s]+)?)?$' }),
    repository: str('Repository within the registry.', { minLength: 1, pattern: '^[a-z0-9]+([._/-][a-z0-9]+)*$' }),
    // "latest" is refused by the template, with a message that says why.
    tag: str('Tag; empty means the bundle version.', { pattern: '^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$' }),
    digest: str('A digest that pins the image.', { pattern: '^(sha256:[a-f0-9]{64})?$' }),
    ...(withPullPolicy ? { pullPolicy: { type: 'string', description: 'When the kubelet pulls.', enum: ['Always', 'IfNotPresent', 'Never'] } } : {}),
  }, { required: ['repository'] });

export interface CrdSpecs {
  trainingCluster: Schema;
  resourceClass: Schema;
}

export function valuesSchema(crd: CrdSpecs): Schema {
  const tcSpec = withoutKubernetesExtensions(strict(crd.trainingCluster)) as Schema;
  const tcProps = { ...(tcSpec.properties as Record<string, Schema>) };
  // The chart fills these in: the bundle version and images from their own values, the platform link from platform.
  delete tcProps.setupBundle;
  delete tcProps.platform;
  // The CRD's rule "exactly one of persistentVolumeClaim or hostPath" is checked by the template, whose message can
  // say how to swap the default claim for a hostPath (a JSON Schema oneOf only says that nothing matched).
  const storage = tcProps.checkpointStorage!;
  tcProps.checkpointStorage = {
    ...storage,
    description: `${storage.description as string} To use a hostPath instead of the default claim, also set persistentVolumeClaim: null.`,
  };
  const trainingCluster: Schema = {
    type: 'object',
    description: 'The TrainingCluster this release creates; every spec field except setupBundle and platform (filled in from other values).',
    properties: {
      create: bool('Create the TrainingCluster.'),
      name: str('Its name (cluster-scoped).', { minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN }),
      ...tcProps,
    },
    additionalProperties: false,
    required: ['create', 'name'],
    if: { properties: { create: { const: true } } },
    then: { required: ['checkpointStorage'] },
  };

  const rcSpec = withoutKubernetesExtensions(strict(crd.resourceClass)) as Schema;
  const resourceClass: Schema = {
    ...rcSpec,
    description: 'A ResourceClass: a name and its spec fields; trainingCluster defaults to trainingCluster.name.',
    properties: {
      name: str('The class name (cluster-scoped), e.g. nvidia-a100-x2.', { minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN }),
      ...(rcSpec.properties as Record<string, Schema>),
    },
    required: ['name', ...((rcSpec.required as string[] | undefined) ?? []).filter((r) => r !== 'trainingCluster')],
  };

  // An empty namespace selector matches every namespace, which would let any tenant's pod in by its own labels.
  const namespaceSelector = (description: string): Schema => ({
    type: 'object',
    description: `${description} Must not be empty: {} matches every namespace.`,
    minProperties: 1,
    properties: { matchLabels: { type: 'object', minProperties: 1, additionalProperties: { type: 'string' } }, matchExpressions: { type: 'array', minItems: 1, items: anyObject('A label selector requirement.') } },
    additionalProperties: false,
  });
  const peerList = (description: string) => ({ type: 'array', description, items: anyObject('A NetworkPolicyPeer.') });

  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Arena operator chart values',
    type: 'object',
    additionalProperties: false,
    properties: {
      global: obj('Values shared with every subchart.', {
        imageRegistry: str('Replaces the registry of every image (air-gapped mirrors).', { pattern: '^([^\\s/:]+(:[0-9]+)?(/[^\\s]+)?)?$' }),
        imagePullSecrets: { type: 'array', description: 'Pull secrets, [{name}].', items: obj('A pull secret.', { name: str('Secret name.', { minLength: 1 }) }, { required: ['name'] }) },
      }),
      nameOverride: str('Replaces the chart name in resource names.', { maxLength: 40 }),
      fullnameOverride: str('Replaces the full resource name.', { maxLength: 50 }),
      bundleVersion: str('The installed setup-bundle version; empty means the chart appVersion.', { pattern: `(${SEMVER})|^$` }),
      image: image('operator', true),
      runtimeImage: image('runtime', false),
      replicaCount: int('Operator replicas; 2 gives a warm standby.', 1, 5),
      leaderElection: obj('Leader election.', {
        leaseDurationSeconds: int('Lease duration in seconds.', 5, 300),
        leaseName: str('Name of the leader-election Lease in the release namespace; give each release in one namespace its own.', {
          minLength: 1,
          maxLength: 253,
          pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
        }),
      }),
      operator: obj('Operator settings.', {
        qps: int('Sustained API requests per second.', 1, 10000),
        burst: int('API request burst.', 1, 20000),
        workers: int('Experiments reconciled at once.', 1, 64),
        logLevel: { type: 'string', description: 'Lowest log level written.', enum: ['error', 'warn', 'info', 'debug'] },
        extraArgs: { type: 'array', description: 'Extra operator flags.', items: { type: 'string' } },
        extraEnv: anyList('Extra container env entries.'),
      }),
      scheduling: obj('Gang admission and preemption.', {
        nodeLostAfterSeconds: int('Seconds a worker\'s node may be NotReady before its gang is retried elsewhere.', 1, 86400),
        preemption: obj('Checkpoint-aware preemption (priority, and team quota reclaim).', {
          enabled: bool('Preempt at all; false only orders the queue by priority.'),
          minRunSeconds: int('Seconds an attempt must have run before it may be preempted.', 0, 604800),
          checkpointDeadlineSeconds: int('Seconds a victim\'s workers get to write a checkpoint and exit.', 1, 3600),
        }),
      }),
      rbac: obj('Roles for the people who use Arena.', {
        aggregateToDefaultRoles: bool('Add experiments and agents to the built-in edit, admin and view roles.'),
        clusterViewSubjects: anyList('RBAC subjects that may read training clusters and resource classes.'),
      }),
      serviceAccount: obj('The operator ServiceAccount.', {
        create: bool('Create it.'),
        name: str('Its name; default the release full name.', { pattern: `(${DNS_SUBDOMAIN})|^$` }),
        annotations: stringMap('Annotations.'),
      }),
      resources: resources('Operator container resources.'),
      podSecurityContext: anyObject('Pod security context.'),
      securityContext: anyObject('Container security context.'),
      podAnnotations: stringMap('Extra pod annotations.'),
      podLabels: stringMap('Extra pod labels.'),
      nodeSelector: stringMap('Node selector for the operator pods.'),
      tolerations: anyList('Tolerations for the operator pods.'),
      affinity: anyObject('Affinity; empty means soft anti-affinity between replicas.'),
      topologySpreadConstraints: anyList('Topology spread; empty means a soft spread over zones.'),
      priorityClassName: str('Priority class of the operator pods.'),
      podDisruptionBudget: obj('The PodDisruptionBudget.', {
        enabled: bool('Create it.'),
        maxUnavailable: { description: 'Replicas a voluntary disruption may take at once.', anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string', pattern: '^[0-9]+%$' }] },
      }),
      service: obj('The operator API Service (TLS).', {
        type: { type: 'string', description: 'Service type.', enum: ['ClusterIP', 'NodePort', 'LoadBalancer'] },
        port: int('HTTPS port of the runtime report API and the status API.', 1, 65535),
        annotations: stringMap('Service annotations.'),
      }),
      apiTls: obj('The API serving certificate.', {
        existingSecret: str('A kubernetes.io/tls Secret in the release namespace with tls.crt, tls.key and ca.crt; empty: the operator makes and rotates one.', { pattern: `(${DNS_SUBDOMAIN})|^$` }),
        dnsNames: { type: 'array', description: 'More names for the certificate the operator makes.', items: { type: 'string', pattern: DNS_SUBDOMAIN } },
      }),
      webhook: obj('The admission webhook.', { enabled: bool('Run it.'), port: int('HTTPS container port.', 1, 65535) }),
      metrics: obj('Metrics.', {
        port: int('Plain-HTTP port of /metrics, /healthz and /readyz.', 1, 65535),
        serviceMonitor: obj('A Prometheus Operator ServiceMonitor.', {
          enabled: bool('Create it (needs the ServiceMonitor CRD).'),
          interval: str('Scrape interval, e.g. 30s.', { pattern: DURATION }),
          scrapeTimeout: str('Scrape timeout, e.g. 10s.', { pattern: DURATION }),
          labels: stringMap('Labels your Prometheus selects ServiceMonitors by.'),
        }),
      }),
      networkPolicy: obj('Ingress NetworkPolicy of the operator pods.', {
        enabled: bool('Create it.'),
        workerNamespaceSelector: namespaceSelector('Namespaces whose worker pods may send runtime reports (a label only administrators set).'),
        statusApiFrom: peerList('Extra peers allowed on the API port (the path to the platform).'),
        prometheus: obj('Where Prometheus runs.', { namespaceSelector: namespaceSelector('Namespaces Prometheus runs in.'), podSelector: anyObject('Pod selector.') }),
        webhookFrom: peerList('Peers allowed on the webhook port; empty allows all.'),
      }),
      grafanaDashboards: obj('Grafana dashboards ConfigMap.', {
        enabled: bool('Create it when the chart has dashboards.'),
        labels: stringMap('Labels the Grafana sidecar watches.'),
        annotations: stringMap('Annotations, e.g. the sidecar folder.'),
      }),
      statusApi: obj('Status API tokens.', {
        existingSecret: str('A Secret in the release namespace whose every key is a token.', { pattern: `(${DNS_SUBDOMAIN})|^$` }),
        tokens: { type: 'object', description: 'key -> token for the chart\'s Secret.', additionalProperties: { type: 'string', minLength: 16 } },
      }),
      platform: obj('The outward heartbeat to the Arena platform.', {
        url: str('Platform API base URL; empty turns the heartbeat off.', { pattern: '^(https?://[^\\s]+)?$' }),
        token: str('The cluster token.'),
        existingSecret: str('A Secret in the release namespace holding the token.', { pattern: `(${DNS_SUBDOMAIN})|^$` }),
        secretKey: str('Key of the token in the Secret.', { minLength: 1, pattern: '^[-._a-zA-Z0-9]+$' }),
        heartbeatIntervalSeconds: int('Seconds between heartbeats.', 5, 3600),
      }),
      trainingCluster,
      resourceClasses: { type: 'array', description: 'ResourceClasses to create.', items: resourceClass },
      crds: obj('CRD handling.', {
        upgrade: obj('The pre-install/pre-upgrade Job that replaces the CRDs with the chart\'s.', {
          enabled: bool('Run it.'),
          resources: resources('Its resources.'),
        }),
      }),
      tests: obj('The helm test pod.', { resources: resources('Its resources.') }),
    },
  };
}
