// What a connected agent runs and what it keeps while disconnected, as pure builders: the frozen manifest
// (ConfigMap), the API key (Secret), the Service, the inference pods (an apps/v1 Deployment) and the external
// route (HTTPRoute or Ingress). The reconciler creates, replaces and deletes what these return; their shape is
// unit-tested here.
import { createHash } from 'node:crypto';
import type {
  V1ConfigMap,
  V1Deployment,
  V1EnvVar,
  V1Ingress,
  V1OwnerReference,
  V1PodTemplateSpec,
  V1Probe,
  V1Secret,
  V1Service,
  V1Toleration,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { API_VERSION } from '../../api/v1alpha1/common.ts';
import type { Deployment } from '../../api/v1alpha1/deployment.ts';
import { algorithmFamily, inferencePath, type AlgorithmFamily, type AlgorithmName, type InferencePath, type Manifest } from '../../api/v1alpha1/manifest.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import { MANAGED_BY, shortName } from '../experiment/workers.ts';

export const agentLabels = {
  managedBy: 'app.kubernetes.io/managed-by',
  component: 'app.kubernetes.io/component',
  /** Every object of an agent carries its Deployment's uid: names can be reused, uids cannot. */
  agentUid: 'arena.agilerl.com/agent-uid',
  /** On inference pods: which desired pod template they were created from. */
  templateHash: 'arena.agilerl.com/template-hash',
} as const;

export const agentAnnotations = {
  agent: 'arena.agilerl.com/agent',
  /** On the workload and routes: the hash of the spec the operator last wrote, to write only on change. */
  specHash: 'arena.agilerl.com/spec-hash',
  /** On the API key Secret: the spec.keyRotation it was issued for. */
  keyRotation: 'arena.agilerl.com/key-rotation',
  /** On the manifest ConfigMap: the training cluster whose storage holds the checkpoint. */
  trainingCluster: 'arena.agilerl.com/training-cluster',
  /** On the manifest ConfigMap: `<experiment>@<step>`, the checkpoint the manifest was frozen with. */
  checkpoint: 'arena.agilerl.com/checkpoint',
} as const;

export const components = {
  inference: 'inference',
  apiKey: 'api-key',
  manifest: 'agent-manifest',
  route: 'inference-route',
} as const;

/** The inference server's port inside the pod, and the Service's. */
export const INFERENCE_PORT = 8000;
export const SERVICE_PORT = 80;
export const API_KEY_FILE_KEY = 'key';
const MANIFEST_MOUNT = '/etc/arena';
const API_KEY_MOUNT = '/var/run/arena/api-key';
/** The serve process finishes in-flight requests in 10 s; the rest is margin. */
const TERMINATION_GRACE_SECONDS = 15;

export function agentNames(d: Deployment) {
  const name = d.metadata!.name!;
  // 47 leaves room for the ReplicaSet and pod suffixes within a 63-character pod name.
  const serving = shortName(name, 'inference', 47);
  return {
    workload: serving,
    service: serving,
    route: serving,
    manifest: shortName(name, 'agent-manifest', 253),
    apiKey: (rotation: number) => shortName(name, `api-key-${rotation}`, 253),
  };
}

/** A stable DNS label naming the agent in its host name inference-<id>.<domain>. */
export function newDeploymentId(d: Deployment): string {
  const uid = (d.metadata?.uid ?? '').replace(/-/g, '').slice(0, 8) || 'x';
  // inference-<id> must itself fit a 63-character label.
  return shortName(d.metadata!.name!, uid, 53);
}

export function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

function ownerRef(d: Deployment): V1OwnerReference {
  return { apiVersion: API_VERSION, kind: 'Deployment', name: d.metadata!.name!, uid: d.metadata!.uid!, controller: true, blockOwnerDeletion: true };
}

export function selectorLabels(d: Deployment): Record<string, string> {
  return { [agentLabels.agentUid]: d.metadata!.uid!, [agentLabels.component]: components.inference };
}

interface AgentObjectMeta {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  ownerReferences: V1OwnerReference[];
  resourceVersion?: string;
}

function meta(d: Deployment, name: string, component: string, annotations: Record<string, string> = {}): AgentObjectMeta {
  return {
    name,
    namespace: d.metadata!.namespace!,
    labels: { [agentLabels.managedBy]: MANAGED_BY, [agentLabels.component]: component, [agentLabels.agentUid]: d.metadata!.uid! },
    annotations: { [agentAnnotations.agent]: d.metadata!.name!, ...annotations },
    ownerReferences: [ownerRef(d)],
  };
}

export function checkpointTag(c: { experiment: string; step: number }): string {
  return `${c.experiment}@${c.step}`;
}

/**
 * The source experiment's manifest, copied when the checkpoint is frozen: the agent keeps serving if the
 * experiment is edited or deleted later. Immutable: a new source replaces it.
 */
export function manifestConfigMap(d: Deployment, manifest: Manifest, trainingCluster: string, checkpoint: { experiment: string; step: number }): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(d, agentNames(d).manifest, components.manifest, {
      [agentAnnotations.trainingCluster]: trainingCluster,
      [agentAnnotations.checkpoint]: checkpointTag(checkpoint),
    }),
    immutable: true,
    data: { 'manifest.json': JSON.stringify(manifest, null, 2) },
  };
}

/** One Secret per key: rotation creates the next one and deletes the old, so a key is never edited in place. */
export function apiKeySecret(d: Deployment, rotation: number, key: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(d, agentNames(d).apiKey(rotation), components.apiKey, { [agentAnnotations.keyRotation]: String(rotation) }),
    type: 'Opaque',
    immutable: true,
    stringData: { [API_KEY_FILE_KEY]: key },
  };
}

export function inferenceService(d: Deployment): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(d, agentNames(d).service, components.inference),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(d),
      ports: [{ name: 'http', port: SERVICE_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

export function serviceURL(d: Deployment): string {
  return `http://${agentNames(d).service}.${d.metadata!.namespace!}.svc`;
}

/** Every route the agent serves, relative to its base URL. */
export function inferencePaths(path: InferencePath): string[] {
  switch (path) {
    case 'generate':
      return ['/status', '/generate', '/generate_stream', '/sessions'];
    case 'predict':
      return ['/status', '/predict'];
    default:
      return ['/status', '/get_action'];
  }
}

export interface PodResources {
  cpu: string;
  memory: string;
  gpus: number;
}

const familyDefaults: Record<AlgorithmFamily, PodResources> = {
  // The model process imports torch and AgileRL before it loads a checkpoint: about 950 MB at its peak for a small
  // DQN (measured with /usr/bin/time -v), with the Node server beside it. Below that every load is OOM-killed.
  'single-agent': { cpu: '500m', memory: '1536Mi', gpus: 0 },
  'multi-agent': { cpu: '500m', memory: '2Gi', gpus: 0 },
  // An LLM is served by its engine on a GPU; the host side holds the tokenizer and request queue.
  llm: { cpu: '4', memory: '32Gi', gpus: 1 },
};

/** spec.resources over the defaults of the algorithm's family. */
export function podResources(algorithm: AlgorithmName, spec: Deployment['spec']['resources']): PodResources {
  const base = familyDefaults[algorithmFamily(algorithm)];
  return {
    cpu: spec?.cpu !== undefined ? String(spec.cpu) : base.cpu,
    memory: spec?.memory !== undefined ? String(spec.memory) : base.memory,
    gpus: spec?.gpus ?? base.gpus,
  };
}

/** Where the pod finds the checkpoint: locations are stored as pod paths, or relative to the storage root. */
export function checkpointPath(location: string, mountPath: string): string {
  if (location.startsWith('/')) return location;
  return `${mountPath.replace(/\/+$/, '')}/${location.replace(/^\.?\/+/, '')}`;
}

/** The training command with its subcommand swapped: whatever launches `train` launches `serve`. */
export function serveCommand(cluster: TrainingCluster): string[] {
  const train = cluster.spec.setupBundle.runtimeCommand;
  if (train && train.length > 1 && train[train.length - 1] === 'train') return [...train.slice(0, -1), 'serve'];
  return ['arena-runtime', 'serve'];
}

export interface WorkloadInput {
  deployment: Deployment;
  deploymentId: string;
  cluster: TrainingCluster;
  algorithm: AlgorithmName;
  checkpointLocation: string;
  apiKey: { name: string };
  replicas: number;
  /**
   * The address the server listens on. 0.0.0.0 in a pod network namespace; nodes without one (the local test
   * node) need the pod IP, given as $(POD_IP).
   */
  bindHost?: string;
}

export interface DesiredWorkload {
  workload: V1Deployment;
  /** Hash of the pod template: pods with another one belong to an earlier key, checkpoint or image. */
  templateHash: string;
  /** Hash of everything the operator sets, kept in an annotation to write only on change. */
  specHash: string;
}

const httpProbe = (path: string, extra: Partial<V1Probe>): V1Probe => ({ httpGet: { path, port: 'http' }, timeoutSeconds: 2, ...extra });

export function inferenceWorkload(input: WorkloadInput): DesiredWorkload {
  const { deployment: d, cluster } = input;
  const names = agentNames(d);
  const storage = cluster.spec.checkpointStorage;
  const mountPath = storage.mountPath ?? '/checkpoints';
  const res = podResources(input.algorithm, d.spec.resources);

  const requests: Record<string, string> = { cpu: res.cpu, memory: res.memory };
  // No CPU limit: a throttled server answers slowly, which health checks would read as sick.
  const limits: Record<string, string> = { memory: res.memory };
  if (res.gpus > 0) requests['nvidia.com/gpu'] = limits['nvidia.com/gpu'] = String(res.gpus);
  const tolerations: V1Toleration[] = [];
  if (res.gpus > 0) {
    const taint = cluster.spec.gpu?.taint;
    tolerations.push({ key: taint?.key ?? 'nvidia.com/gpu', operator: 'Exists', effect: taint?.effect ?? 'NoSchedule' });
  }

  const env: V1EnvVar[] = [
    { name: 'ARENA_CHECKPOINT', value: checkpointPath(input.checkpointLocation, mountPath) },
    { name: 'ARENA_MANIFEST', value: `${MANIFEST_MOUNT}/manifest.json` },
    { name: 'ARENA_API_KEY_FILE', value: `${API_KEY_MOUNT}/${API_KEY_FILE_KEY}` },
    { name: 'ARENA_DEPLOYMENT_ID', value: input.deploymentId },
    { name: 'ARENA_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
  ];
  const volumes: V1Volume[] = [
    { name: 'manifest', configMap: { name: names.manifest } },
    // Group-readable for the pod's fsGroup; the server runs as a non-root user.
    { name: 'api-key', secret: { secretName: input.apiKey.name, defaultMode: 0o440 } },
    { name: 'tmp', emptyDir: {} },
  ];
  const mounts: V1VolumeMount[] = [
    { name: 'manifest', mountPath: MANIFEST_MOUNT, readOnly: true },
    { name: 'api-key', mountPath: API_KEY_MOUNT, readOnly: true },
    { name: 'tmp', mountPath: '/tmp' },
  ];
  if (storage.persistentVolumeClaim) {
    volumes.push({ name: 'checkpoints', persistentVolumeClaim: { claimName: storage.persistentVolumeClaim.claimName, readOnly: true } });
  } else if (storage.hostPath) {
    volumes.push({ name: 'checkpoints', hostPath: { path: storage.hostPath.path, type: 'Directory' } });
  }
  if (storage.persistentVolumeClaim || storage.hostPath) mounts.push({ name: 'checkpoints', mountPath, readOnly: true });

  const template: V1PodTemplateSpec = {
    metadata: {
      labels: { [agentLabels.managedBy]: MANAGED_BY, ...selectorLabels(d) },
      annotations: { [agentAnnotations.agent]: d.metadata!.name! },
    },
    spec: {
      enableServiceLinks: false,
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
      ...(cluster.spec.workerNodeSelector && Object.keys(cluster.spec.workerNodeSelector).length > 0 ? { nodeSelector: { ...cluster.spec.workerNodeSelector } } : {}),
      ...(tolerations.length ? { tolerations } : {}),
      ...(res.gpus > 0 && cluster.spec.gpu?.runtimeClassName !== '' ? { runtimeClassName: cluster.spec.gpu?.runtimeClassName ?? 'nvidia' } : {}),
      securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'inference',
          image: cluster.spec.setupBundle.images.runtime,
          command: serveCommand(cluster),
          args: ['--port', String(INFERENCE_PORT), '--host', input.bindHost ?? '0.0.0.0'],
          env,
          ports: [{ name: 'http', containerPort: INFERENCE_PORT, protocol: 'TCP' }],
          resources: { requests, limits },
          // The kubelet's view; the operator checks the endpoint itself before it calls the agent Deployed.
          readinessProbe: httpProbe('/readyz', { periodSeconds: 2, failureThreshold: 3 }),
          // The server opens its port only once the model has loaded (AgileRL's import alone is 5-15 s, far more on a
          // busy node), so the liveness probe waits for this one instead of killing a slow but healthy start. A load
          // that fails ends the process itself, with the reason; this only bounds a start that hangs (5 minutes).
          startupProbe: httpProbe('/healthz', { periodSeconds: 2, failureThreshold: 150 }),
          livenessProbe: httpProbe('/healthz', { periodSeconds: 10, failureThreshold: 3 }),
          // serve writes why it could not start to the termination log; without one (or when it crashed
          // otherwise) the log tail stands in, which carries the same reason as a JSON line.
          terminationMessagePolicy: 'FallbackToLogsOnError',
          volumeMounts: mounts,
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
        },
      ],
      volumes,
    },
  };
  const templateHash = hashOf(template);
  template.metadata!.labels![agentLabels.templateHash] = templateHash;
  const spec: V1Deployment['spec'] = {
    replicas: input.replicas,
    selector: { matchLabels: selectorLabels(d) },
    // Old pods go before new ones start: after a key rotation nothing may still accept the old key.
    strategy: { type: 'Recreate' },
    revisionHistoryLimit: 1,
    template,
  };
  const specHash = hashOf(spec);
  const workload: V1Deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(d, names.workload, components.inference, { [agentAnnotations.specHash]: specHash }),
    spec,
  };
  return { workload, templateHash, specHash };
}

export function externalHost(deploymentId: string, domain: string): string {
  return `inference-${deploymentId}.${domain}`;
}

export const HTTPROUTE = { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes', kind: 'HTTPRoute' } as const;

export interface HttpRoute {
  apiVersion: string;
  kind: 'HTTPRoute';
  metadata: AgentObjectMeta;
  spec: Record<string, unknown>;
}

export type DesiredRoute = { kind: 'HTTPRoute'; object: HttpRoute; host: string } | { kind: 'Ingress'; object: V1Ingress; host: string };

/** The external route the training cluster's exposure asks for, or none without a domain. */
export function desiredRoute(d: Deployment, deploymentId: string, cluster: TrainingCluster): DesiredRoute | undefined {
  const exposure = cluster.spec.exposure;
  if (!exposure?.domain) return undefined;
  const host = externalHost(deploymentId, exposure.domain);
  const name = agentNames(d).route;
  const backend = { name: agentNames(d).service, port: SERVICE_PORT };
  if (exposure.gateway) {
    const spec = {
      parentRefs: exposure.gateway.parentRefs.map((p) => ({ ...p })),
      hostnames: [host],
      rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [backend] }],
    };
    const object: HttpRoute = {
      apiVersion: `${HTTPROUTE.group}/${HTTPROUTE.version}`,
      kind: 'HTTPRoute',
      metadata: meta(d, name, components.route, { [agentAnnotations.specHash]: hashOf(spec) }),
      spec,
    };
    return { kind: 'HTTPRoute', object, host };
  }
  const spec: V1Ingress['spec'] = {
    ...(exposure.ingressClassName ? { ingressClassName: exposure.ingressClassName } : {}),
    rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: backend.name, port: { number: backend.port } } } }] } }],
  };
  const object: V1Ingress = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: meta(d, name, components.route, { [agentAnnotations.specHash]: hashOf(spec) }),
    spec,
  };
  return { kind: 'Ingress', object, host };
}

/** The external base URL: routes are expected to end at a TLS-terminating gateway or ingress. */
export function externalURL(host: string): string {
  return `https://${host}`;
}

export function endpointFor(d: Deployment, algorithm: AlgorithmName, host: string | undefined) {
  const path = inferencePath(algorithm);
  return {
    ...(host ? { url: externalURL(host) } : {}),
    serviceURL: serviceURL(d),
    inferencePath: path,
    paths: inferencePaths(path),
  };
}
