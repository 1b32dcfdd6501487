// What one attempt of an experiment runs: a gang of worker pods (one per planned node) with a headless Service for
// rendezvous, and one Secret per attempt holding the manifest and the attempt's run tokens (one per worker, each
// pod mounting the manifest and only its own token). Pure builders, so the shape of every object is unit-tested; the reconciler only creates
// and deletes what these return.
//
// Every name carries a tag of the experiment's uid: an experiment deleted and created again under the same name
// before garbage collection has removed the old one's objects gets objects of its own, never the old manifest,
// token or pods found by name.
import { posix } from 'node:path';
import { createHash } from 'node:crypto';
import type { V1EnvVar, V1OwnerReference, V1Pod, V1Secret, V1Service, V1Toleration, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import { API_VERSION } from '../../api/v1alpha1/common.ts';

export const labels = {
  managedBy: 'app.kubernetes.io/managed-by',
  component: 'app.kubernetes.io/component',
  experimentUid: 'arena.agilerl.com/experiment-uid',
  run: 'arena.agilerl.com/run',
  attempt: 'arena.agilerl.com/attempt',
  rank: 'arena.agilerl.com/rank',
  runToken: 'arena.agilerl.com/run-token',
} as const;
export const annotations = {
  experiment: 'arena.agilerl.com/experiment',
  /** On each worker pod: every rank's planned node, comma-separated, so that any one pod holds the whole plan. */
  gangNodes: 'arena.agilerl.com/gang-nodes',
} as const;
export const MANAGED_BY = 'arena-operator';

/**
 * The runtime's own stop budget (ARENA_STOP_GRACE_SECONDS) inside the pod's grace period: the supervisor kills the
 * trainer and gives up on its last reports before it ends, so it exits before the kubelet's SIGKILL. The margin is
 * a fifth of the grace, 1 to 5 s: a flat 5 s left the trainer of a 5 s grace 0.8 s for its final checkpoint, which a
 * loaded node does not write in time (1.2 s measured at four runnable processes per core), and the stop lost it.
 */
export function runtimeStopGraceSeconds(podGraceSeconds: number): number {
  const margin = Math.min(5, Math.max(1, Math.ceil(podGraceSeconds / 5)));
  return Math.max(1, podGraceSeconds - margin);
}

export const MASTER_PORT = 29500;
/** Where a worker reads its run token; a file, so that a token re-issued after a key change reaches a running pod. */
export const RUN_TOKEN_DIR = '/var/run/arena/run-token';
export const RUN_TOKEN_FILE = `${RUN_TOKEN_DIR}/token`;
/** Where a worker reads the CAs it verifies the report API with (the operator's CA ConfigMap, server/api-tls.ts). */
export const REPORT_CA_DIR = '/var/run/arena/report-ca';
export const REPORT_CA_FILE = `${REPORT_CA_DIR}/ca.crt`;
/** Ports NCCL and torch.distributed use between workers; declared so network policies can allow them. */
export const NCCL_PORT_RANGE = '29400-29500';
const MANIFEST_MOUNT = '/etc/arena';

/** A DNS-1035 label of at most `max` characters derived from `name`; a hash keeps truncated names unique. */
export function shortName(name: string, suffix: string, max = 63): string {
  const base = name.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^[^a-z]+/, 'x');
  const full = `${base}-${suffix}`;
  if (full.length <= max) return full;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 6);
  const keep = max - suffix.length - hash.length - 2;
  return `${base.slice(0, keep).replace(/-+$/, '')}-${hash}-${suffix}`;
}

export interface AttemptRef {
  run: number;
  attempt: number;
}

export const attemptId = (a: AttemptRef) => `${a.run}-${a.attempt}`;

/** Six hex characters of the experiment's uid: unique per object the API server ever stored under one name. */
export function uidTag(exp: Experiment): string {
  return createHash('sha256').update(exp.metadata!.uid!).digest('hex').slice(0, 6);
}

export function names(exp: Experiment, a: AttemptRef) {
  const name = exp.metadata!.name!;
  const tag = uidTag(exp);
  return {
    service: shortName(name, `${tag}-r${a.run}`),
    secret: shortName(name, `${tag}-r${a.run}a${a.attempt}-token`, 253),
    pod: (rank: number) => shortName(name, `${tag}-r${a.run}a${a.attempt}-${rank}`),
  };
}

/** The Secret key holding worker `rank`'s token. */
export const tokenKey = (rank: number) => `worker-${rank}`;

function ownerRef(exp: Experiment): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: 'Experiment',
    name: exp.metadata!.name!,
    uid: exp.metadata!.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

function commonLabels(exp: Experiment, component: string, run: number): Record<string, string> {
  return {
    [labels.managedBy]: MANAGED_BY,
    [labels.component]: component,
    [labels.experimentUid]: exp.metadata!.uid!,
    [labels.run]: String(run),
  };
}

/** The key of the attempt's Secret that holds the manifest. */
export const MANIFEST_KEY = 'manifest.json';

/**
 * The objects the attempt's workers share: the attempt's Secret with the manifest and every worker's token, and for
 * a gang of more than one worker the run's headless Service they rendezvous through. One object carries both the
 * manifest and the tokens, and a lone worker (nobody to find) gets no Service: each is an API write less per
 * experiment, most of them in a queue of one-worker runs.
 */
export function runObjects(exp: Experiment, a: AttemptRef, tokens: readonly string[]): { secret: V1Secret; service?: V1Service } {
  const n = names(exp, a);
  const ns = exp.metadata!.namespace!;
  const meta = (name: string, component: string) => ({
    name,
    namespace: ns,
    labels: commonLabels(exp, component, a.run),
    annotations: { [annotations.experiment]: exp.metadata!.name! },
    ownerReferences: [ownerRef(exp)],
  });
  return {
    secret: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { ...meta(n.secret, 'run-token'), labels: { ...commonLabels(exp, 'run-token', a.run), [labels.attempt]: String(a.attempt), [labels.runToken]: 'true' } },
      type: 'Opaque',
      stringData: { [MANIFEST_KEY]: JSON.stringify(exp.spec.manifest, null, 2), ...Object.fromEntries(tokens.map((t, rank) => [tokenKey(rank), t])) },
    },
    ...(tokens.length > 1 ? { service: rendezvousService(exp, a, meta(n.service, 'rendezvous')) } : {}),
  };
}

function rendezvousService(exp: Experiment, a: AttemptRef, metadata: V1Service['metadata']): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata,
    spec: {
      clusterIP: 'None',
      // Workers must resolve each other before they are Ready: rendezvous happens during startup.
      publishNotReadyAddresses: true,
      selector: { [labels.experimentUid]: exp.metadata!.uid!, [labels.run]: String(a.run) },
      ports: [{ name: 'rendezvous', port: MASTER_PORT, targetPort: MASTER_PORT }],
    },
  };
}

/**
 * The storage is shared by every experiment of every tenant, so a worker sees only its own experiment's folder,
 * read-write, at the path it would have in the whole volume (checkpoint locations do not change), and the folder
 * of the experiment it resumes from, read-only.
 */
/** The folder of the checkpoint storage, per namespace, that holds what its runs read: base models, datasets. */
export const SHARED_ASSETS = '_shared';

function checkpointMounts(exp: Experiment, mountPath: string): V1VolumeMount[] {
  const ns = exp.metadata!.namespace!;
  const own = `${ns}/${exp.metadata!.name!}`;
  const mounts: V1VolumeMount[] = [
    { name: 'checkpoints', mountPath: `${mountPath}/${own}`, subPath: own },
    // The namespace's base models and datasets (an LLM manifest names them by this path); no experiment can be
    // called _shared, since a Kubernetes name has no underscore.
    { name: 'checkpoints', mountPath: `${mountPath}/${ns}/${SHARED_ASSETS}`, subPath: `${ns}/${SHARED_ASSETS}`, readOnly: true },
  ];
  const source = exp.spec.resumeFrom?.experiment;
  if (source && source !== exp.metadata!.name) mounts.push({ name: 'checkpoints', mountPath: `${mountPath}/${ns}/${source}`, subPath: `${ns}/${source}`, readOnly: true });
  for (const file of datasetFiles(exp, mountPath)) {
    // Already visible through a folder mounted above.
    if (mounts.some((m) => file.startsWith(`${m.mountPath}/`))) continue;
    mounts.push({ name: 'checkpoints', mountPath: file, subPath: file.slice(mountPath.length + 1), readOnly: true });
  }
  return mounts;
}

/** The manifest's environment fields that name a file the trainer reads: offline RL's dataset, a bandit's tables. */
export const DATASET_FIELDS = ['dataset_path', 'features', 'targets'] as const;

/**
 * The dataset files of the manifest that lie in this namespace's part of the checkpoint storage, each mounted
 * read-only on its own at the path the manifest names: a worker sees the files its manifest names, not the rest
 * of the namespace's folder (other experiments' checkpoints). A path elsewhere is not mounted; the trainer then
 * refuses it as DatasetNotFound, naming the field and where datasets go.
 */
export function datasetFiles(exp: Experiment, mountPath: string): string[] {
  const environment = (exp.spec.manifest?.environment ?? {}) as Record<string, unknown>;
  const prefix = `${mountPath}/${exp.metadata!.namespace!}/`;
  const files: string[] = [];
  for (const field of DATASET_FIELDS) {
    const value = environment[field];
    if (typeof value !== 'string') continue;
    const path = posix.normalize(value);
    if (path !== value || !path.startsWith(prefix) || path.length === prefix.length) continue;
    // The namespace's shared folder is mounted whole (read-only): a file mount inside it would need a mount point
    // made in a read-only mount.
    if (path.startsWith(`${prefix}${SHARED_ASSETS}/`)) continue;
    if (!files.includes(path)) files.push(path);
  }
  return files;
}

export interface WorkerPodInput {
  experiment: Experiment;
  cls: ResourceClass;
  cluster: TrainingCluster;
  attempt: AttemptRef;
  nodes: string[];
  /** Where the runtime posts its reports (the operator's runtime API). */
  reportUrl: string;
  /** The ConfigMap (in the experiment's namespace) with the CAs of the report API, under ca.crt; mounted when set. */
  reportCaConfigMap?: string;
  /** The checkpoint to start from (a retry continues from the latest one; a resume from the chosen one). */
  resumeFrom?: { location: string; step: number };
  /** How long a preempted run has to checkpoint and exit, when preemption is on (the operator's flag). */
  preemptionDeadlineSeconds?: number;
}

/**
 * The grace the runtime plans its stop for. A SIGTERM does not say whether a user stopped the run or a preemption
 * deleted its pods with a shorter grace, so the runtime fits the shorter of the two: planning for the pod's own
 * grace under a preemption's would get the kubelet's SIGKILL in the middle of the final checkpoint.
 */
export function stopPlanSeconds(stopGracePeriodSeconds: number, preemptionDeadlineSeconds?: number): number {
  return Math.min(stopGracePeriodSeconds, preemptionDeadlineSeconds ?? stopGracePeriodSeconds);
}

export function workerPods(input: WorkerPodInput): V1Pod[] {
  return input.nodes.map((node, rank) => workerPod(input, node, rank));
}

function workerPod(input: WorkerPodInput, node: string, rank: number): V1Pod {
  const { experiment: exp, cls, cluster, attempt: a } = input;
  const n = names(exp, a);
  const ns = exp.metadata!.namespace!;
  const gpus = cls.spec.worker?.gpus ?? 0;
  const world = input.nodes.length;
  const storage = cluster.spec.checkpointStorage;
  const mountPath = storage?.mountPath ?? '/checkpoints';

  const resources: Record<string, string> = {};
  if (cls.spec.worker?.cpu !== undefined) resources.cpu = String(cls.spec.worker.cpu);
  if (cls.spec.worker?.memory !== undefined) resources.memory = String(cls.spec.worker.memory);
  if (cls.spec.worker?.ephemeralStorage !== undefined) resources['ephemeral-storage'] = String(cls.spec.worker.ephemeralStorage);
  if (gpus > 0) resources['nvidia.com/gpu'] = String(gpus);

  const tolerations: V1Toleration[] = [...((cls.spec.tolerations ?? []) as V1Toleration[])];
  if (gpus > 0) {
    const taint = cluster.spec.gpu?.taint;
    tolerations.push({ key: taint?.key ?? 'nvidia.com/gpu', operator: 'Exists', effect: taint?.effect ?? 'NoSchedule' });
  }

  const env: V1EnvVar[] = [
    { name: 'ARENA_EXPERIMENT', value: exp.metadata!.name! },
    { name: 'ARENA_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'ARENA_RUN', value: String(a.run) },
    { name: 'ARENA_ATTEMPT', value: String(a.attempt) },
    { name: 'ARENA_WORKER_RANK', value: String(rank) },
    { name: 'ARENA_MANIFEST', value: `${MANIFEST_MOUNT}/${MANIFEST_KEY}` },
    { name: 'ARENA_CHECKPOINT_DIR', value: `${mountPath}/${ns}/${exp.metadata!.name!}` },
    { name: 'ARENA_REPORT_URL', value: input.reportUrl },
    { name: 'ARENA_STOP_GRACE_SECONDS', value: String(runtimeStopGraceSeconds(stopPlanSeconds(exp.spec.stopGracePeriodSeconds ?? 120, input.preemptionDeadlineSeconds))) },
    { name: 'ARENA_RUN_TOKEN_FILE', value: RUN_TOKEN_FILE },
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    // torch.distributed rendezvous: rank 0 is the master, reached through the headless Service; a lone worker (no
    // Service) is its own master.
    { name: 'MASTER_ADDR', value: world > 1 ? `w0.${n.service}.${ns}.svc` : '127.0.0.1' },
    { name: 'MASTER_PORT', value: String(MASTER_PORT) },
    { name: 'WORLD_SIZE', value: String(world) },
    { name: 'RANK', value: String(rank) },
    // torchrun's view of the gang (AgileRL's LLM path): one node per worker pod, one process per GPU.
    { name: 'NNODES', value: String(world) },
    { name: 'NODE_RANK', value: String(rank) },
    { name: 'NPROC_PER_NODE', value: String(Math.max(1, gpus)) },
    { name: 'NCCL_PORT_RANGE', value: NCCL_PORT_RANGE },
    { name: 'NCCL_SOCKET_IFNAME', value: '^lo,docker' },
  ];
  if (input.reportCaConfigMap) env.push({ name: 'ARENA_REPORT_CA_FILE', value: REPORT_CA_FILE });
  if (input.resumeFrom) {
    env.push({ name: 'ARENA_RESUME_FROM', value: input.resumeFrom.location }, { name: 'ARENA_RESUME_STEP', value: String(input.resumeFrom.step) });
  }

  const volumes: V1Volume[] = [
    { name: 'manifest', secret: { secretName: n.secret, items: [{ key: MANIFEST_KEY, path: MANIFEST_KEY }], defaultMode: 0o444 } },
    // Only this worker's token: a worker cannot speak as another rank.
    { name: 'run-token', secret: { secretName: n.secret, items: [{ key: tokenKey(rank), path: 'token' }], defaultMode: 0o440 } },
    { name: 'tmp', emptyDir: {} },
    // NCCL moves data through shared memory; the container default of 64 MiB is far too small.
    { name: 'dshm', emptyDir: { medium: 'Memory' } },
  ];
  const mounts: V1VolumeMount[] = [
    { name: 'manifest', mountPath: MANIFEST_MOUNT, readOnly: true },
    { name: 'run-token', mountPath: RUN_TOKEN_DIR, readOnly: true },
    { name: 'tmp', mountPath: '/tmp' },
    { name: 'dshm', mountPath: '/dev/shm' },
  ];
  if (input.reportCaConfigMap) {
    // Read-only and refreshed in place by the kubelet: a CA rotation reaches a running worker without a restart.
    volumes.push({ name: 'report-ca', configMap: { name: input.reportCaConfigMap, items: [{ key: 'ca.crt', path: 'ca.crt' }] } });
    mounts.push({ name: 'report-ca', mountPath: REPORT_CA_DIR, readOnly: true });
  }
  if (storage?.persistentVolumeClaim) {
    volumes.push({ name: 'checkpoints', persistentVolumeClaim: { claimName: storage.persistentVolumeClaim.claimName } });
  } else if (storage?.hostPath) {
    volumes.push({ name: 'checkpoints', hostPath: { path: storage.hostPath.path, type: 'DirectoryOrCreate' } });
  }
  if (storage?.persistentVolumeClaim || storage?.hostPath) mounts.push(...checkpointMounts(exp, mountPath));

  const command = cluster.spec.setupBundle.runtimeCommand ?? ['arena-runtime', 'train'];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: n.pod(rank),
      namespace: ns,
      labels: {
        ...commonLabels(exp, 'worker', a.run),
        [labels.attempt]: String(a.attempt),
        [labels.rank]: String(rank),
      },
      annotations: { [annotations.experiment]: exp.metadata!.name!, [annotations.gangNodes]: input.nodes.join(',') },
      ownerReferences: [ownerRef(exp)],
    },
    spec: {
      hostname: `w${rank}`,
      ...(input.nodes.length > 1 ? { subdomain: n.service } : {}),
      // The gang is retried as a whole by the operator; a kubelet restart of one worker would desynchronise it.
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: exp.spec.stopGracePeriodSeconds ?? 120,
      enableServiceLinks: false,
      automountServiceAccountToken: false,
      ...(gpus > 0 && cluster.spec.gpu?.runtimeClassName !== '' ? { runtimeClassName: cluster.spec.gpu?.runtimeClassName ?? 'nvidia' } : {}),
      // Pinned to the node the admission planned, so the capacity the operator reserved is the capacity used;
      // kube-scheduler still binds the pod and re-checks that it fits.
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }],
          },
        },
      },
      tolerations,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        fsGroup: 1000,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: 'worker',
          image: cluster.spec.setupBundle.images.runtime,
          command: [...command],
          env,
          ports: [{ name: 'rendezvous', containerPort: MASTER_PORT }],
          resources: { requests: resources, limits: resources },
          volumeMounts: mounts,
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
          },
        },
      ],
      volumes,
    },
  };
}
