// Wires the cluster-status parts into the operator: the TrainingCluster and ResourceClass controllers, the platform
// status API, the platform heartbeat and the platform metrics, on top of the operator's informers and capacity
// model. startOperator (operator.ts) calls wireClusterStatus once and adds what it returns to its own lists.
import { randomBytes } from 'node:crypto';
import type { CoreV1Api, CustomObjectsApi, HttpLibrary, KubeConfig } from '@kubernetes/client-node';
import type { Router } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from 'winston';
import { GROUP, VERSION, kinds } from '../api/v1alpha1/index.ts';
import type { Deployment } from '../api/v1alpha1/deployment.ts';
import type { Experiment } from '../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../api/v1alpha1/trainingcluster.ts';
import { Controller, objectKey } from '../kube/controller.ts';
import { isAlreadyExists, isNotFound, toKubeError } from '../kube/errors.ts';
import { Informer, type Cacheable, type InformerMetrics, type LeanNode, type LeanPod } from '../kube/informer.ts';
import { namedSecretInformer, type NamedSecret } from '../kube/named-secret.ts';
import { updateStatusIfChanged } from '../kube/status.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { CapacityModel, NodeInfo } from '../scheduler/capacity.ts';
import { TrainingClusterReconciler } from '../controllers/trainingcluster/reconcile.ts';
import { selects } from '../controllers/trainingcluster/status.ts';
import { ResourceClassReconciler } from '../controllers/resourceclass/reconcile.ts';
import { PlatformLink, type PlatformLinkOptions } from '../platform-link/heartbeat.ts';
import { TokenSet, decodeSecretData } from './auth.ts';
import { ExperimentMetricsRecorder, platformMetrics, registerCacheGauges } from './metrics.ts';
import { STATUS_API_PATH, statusApiRouter, type Collection } from './router.ts';
import { clusterStatus } from './views.ts';

export interface ClusterStatusConfig {
  /** The Secret whose data values are the accepted bearer tokens. Default $POD_NAMESPACE (else default) / arena-status-api-tokens. */
  tokenSecret?: { namespace?: string; name?: string };
  /**
   * Whether the leader creates that Secret, with one random token under `platform`, when it does not exist
   * (default $ARENA_STATUS_API_CREATE_TOKEN == 'true'). The chart turns it on when it is given no tokens, so that a
   * GitOps sync, which renders without reading the cluster, never rotates the platform's token. It never changes
   * a Secret that exists.
   */
  createTokenSecret?: boolean;
  /** Per-client limit of the status API; false turns it off. Default 20 requests/s, burst 40. */
  rateLimit?: { qps: number; burst: number } | false;
  /** How long node, pod and experiment changes are gathered before statuses are recomputed. Default 1 s. */
  debounceMs?: number;
  /** How often a TrainingCluster that is spending credits debits its ledger at most. Default 30 s. */
  creditsDebitIntervalMs?: number;
  platformLink?: Pick<PlatformLinkOptions, 'timeoutMs' | 'initialBackoffMs' | 'maxBackoffMs'>;
}

type WorkerPod = LeanPod & { pin?: string };

export interface ClusterStatusDeps {
  informerBase: { kc: KubeConfig; logger: Logger; transport?: HttpLibrary; metrics?: InformerMetrics };
  custom: CustomObjectsApi;
  core: CoreV1Api;
  experiments: Informer<Experiment>;
  classes: Informer<ResourceClass>;
  clusters: Informer<TrainingCluster>;
  nodes: Informer<LeanNode>;
  pods: Informer<WorkerPod>;
  /** The agent controller's Deployment cache, when it has one to share; otherwise one is made (and returned in informers). */
  deployments?: Informer<Deployment>;
  capacity: CapacityModel;
  metrics: Metrics;
  registry: Registry;
  logger: Logger;
  isLeader: () => boolean;
}

/** What the operator does with an informer: start it with the others, wait for its sync, stop it. */
export interface CacheLifecycle {
  start(): Promise<void>;
  stop(): void;
  hasSynced(): boolean;
}

export interface ClusterStatusParts {
  /** Informers the parts add (the token Secret, deployments); the operator starts and stops them with its own. */
  informers: CacheLifecycle[];
  routers: { path: string; router: Router }[];
  startLeading(): void;
  stop(): Promise<void>;
  internals: { platformLink: PlatformLink; tokens: TokenSet; trainingClusters: Controller; resourceClasses: Controller };
}

export const DEFAULT_TOKEN_SECRET = 'arena-status-api-tokens';
const CLASS_INDEX = 'arena.status/class';

type TokenSecret = NamedSecret<{ tokens: Record<string, string> }>;

/** A Collection over an informer: its version moves with every event, its keys version with adds and deletes. */
function collectionOf<T extends Cacheable>(informer: Informer<T>): Collection<T> {
  let version = 0;
  let keysVersion = 0;
  const bump = () => void version++;
  const bumpBoth = () => void (version++, keysVersion++);
  informer.on('add', bumpBoth).on('update', bump).on('delete', bumpBoth);
  return { get: (k) => informer.get(k), list: () => informer.list(), version: () => version, keysVersion: () => keysVersion };
}

/** The node fields the statuses read: labels, readiness, schedulability, taints, allocatable. Not heartbeats. */
function nodeShape(n: LeanNode): string {
  const ready = n.status?.conditions?.find((c) => c.type === 'Ready')?.status;
  return JSON.stringify([n.metadata?.labels, ready, n.spec?.unschedulable, n.spec?.taints, n.status?.allocatable]);
}

/** Where a pod counts against capacity: its node (or planned node) while not finished. */
function placement(p: WorkerPod): string {
  const node = p.spec?.nodeName ?? p.pin ?? '';
  const phase = p.status?.phase;
  return node === '' || phase === 'Succeeded' || phase === 'Failed' ? '' : node;
}

export function wireClusterStatus(d: ClusterStatusDeps, config: ClusterStatusConfig = {}): ClusterStatusParts {
  const { experiments, classes, clusters, nodes, pods, capacity, logger } = d;
  const log = logger.child({ component: 'cluster-status' });
  const debounceMs = config.debounceMs ?? 1000;
  const pm = platformMetrics(d.registry);

  const ownDeployments = d.deployments ? undefined : new Informer<Deployment>({ ...d.informerBase, group: GROUP, version: VERSION, plural: kinds.Deployment.plural });
  const deployments = d.deployments ?? ownDeployments!;
  const tokenNamespace = config.tokenSecret?.namespace ?? process.env.ARENA_STATUS_API_TOKEN_NAMESPACE ?? process.env.POD_NAMESPACE ?? 'default';
  const tokenName = config.tokenSecret?.name ?? process.env.ARENA_STATUS_API_TOKEN_SECRET ?? DEFAULT_TOKEN_SECRET;
  // Only the decoded tokens are kept, never the rest of the Secret.
  const tokenSecrets = namedSecretInformer(d.informerBase, { namespace: tokenNamespace, name: tokenName }, (data) => ({ tokens: decodeSecretData(data) }));
  const tokens = new TokenSet();
  let loadedVersion: string | undefined;
  const reloadTokens = (s?: TokenSecret) => {
    tokens.update(s?.tokens ?? {});
    // Relists re-deliver the same Secret every few minutes; only a new version is worth a line.
    if (s?.metadata.resourceVersion !== loadedVersion || s === undefined) {
      loadedVersion = s?.metadata.resourceVersion;
      log.info('status API tokens loaded', { secret: `${tokenNamespace}/${tokenName}`, tokens: tokens.size });
    }
  };
  tokenSecrets.on('add', reloadTokens).on('update', reloadTokens).on('delete', () => reloadTokens(undefined));
  const createTokenSecret = config.createTokenSecret ?? process.env.ARENA_STATUS_API_CREATE_TOKEN === 'true';
  const ensureTokenSecret = async () => {
    if (!createTokenSecret || tokenSecrets.get(`${tokenNamespace}/${tokenName}`)) return;
    try {
      await d.core.createNamespacedSecret({
        namespace: tokenNamespace,
        body: {
          metadata: { name: tokenName, labels: { 'app.kubernetes.io/managed-by': 'arena-operator', 'app.kubernetes.io/component': 'status-api' } },
          type: 'Opaque',
          stringData: { platform: randomBytes(36).toString('base64url') },
        },
      });
      log.info('status API token created', { secret: `${tokenNamespace}/${tokenName}`, key: 'platform' });
    } catch (err) {
      if (!isAlreadyExists(err)) log.warn('cannot create the status API token Secret', { secret: `${tokenNamespace}/${tokenName}`, error: toKubeError(err).message });
    }
  };

  experiments.addIndex(CLASS_INDEX, (e) => (e.spec.resourceClass ? [e.spec.resourceClass] : []));

  const nodeInfos = function* (): Generator<NodeInfo> {
    for (const n of nodes.list()) {
      const info = capacity.node(n.metadata?.name ?? '');
      if (info) yield info;
    }
  };
  const summary = () => clusterStatus({ clusters: clusters.list(), classes: classes.list(), experiments: experiments.list(), deployments: deployments.list() });

  const platformLink = new PlatformLink({
    readToken: async (ref) => {
      try {
        const secret = await d.core.readNamespacedSecret({ namespace: ref.namespace, name: ref.name });
        const v = secret.data?.[ref.key];
        return v ? Buffer.from(v, 'base64').toString('utf8').trim() || undefined : undefined;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        // The chart lets the operator read Secrets of its own namespace by name only; say so rather than echo a 403.
        if (toKubeError(err).reason === 'Forbidden') {
          throw new Error('forbidden: the operator reads only the Secrets its RBAC names in its own namespace; put the token there (the chart value platform.existingSecret names it)');
        }
        throw err;
      }
    },
    summary,
    // Called from the heartbeat timers, long after tcController below exists.
    onHealthChange: (name) => tcController.enqueue(name),
    onResult: (result) => pm.heartbeats.inc({ result }),
    creditsSpent: (name) => clusters.get(name)?.status?.credits?.spent,
    logger: log,
    ...config.platformLink,
  });

  const statusResource = (kind: 'TrainingCluster' | 'ResourceClass') => ({ group: GROUP, version: VERSION, plural: kinds[kind].plural, kind, schema: kinds[kind].status });
  const tcController = new Controller({
    name: 'trainingcluster',
    workers: 1,
    metrics: d.metrics,
    logger,
    reconciler: new TrainingClusterReconciler({
      clusters,
      nodeInfos,
      capacity,
      platform: platformLink,
      experimentsOf: function* (cluster) {
        for (const cls of classes.list()) {
          if (cls.spec.trainingCluster !== cluster) continue;
          for (const experiment of experiments.byIndex(CLASS_INDEX, cls.metadata!.name!)) yield { experiment, cls };
        }
      },
      debitIntervalMs: config.creditsDebitIntervalMs,
      writeStatus: (tc, status) => updateStatusIfChanged(d.custom, statusResource('TrainingCluster'), tc, status as Record<string, unknown>, d.metrics),
      logger: log,
    }),
  });
  const rcController = new Controller({
    name: 'resourceclass',
    workers: 1,
    metrics: d.metrics,
    logger,
    reconciler: new ResourceClassReconciler({
      classes,
      clusters,
      experimentsOf: (name) => experiments.byIndex(CLASS_INDEX, name),
      nodeInfos,
      capacity,
      writeStatus: (rc, status) => updateStatusIfChanged(d.custom, statusResource('ResourceClass'), rc, status as Record<string, unknown>, d.metrics),
      logger: log,
    }),
  });

  // Node and pod churn is gathered for debounceMs, then every cluster and class is looked at once: a thousand pod
  // events make one pass, and statusEqual skips the writes that would change nothing.
  let capacityTimer: NodeJS.Timeout | undefined;
  const capacityChanged = () => {
    capacityTimer ??= setTimeout(() => {
      capacityTimer = undefined;
      for (const tc of clusters.list()) tcController.enqueue(objectKey(tc));
      for (const rc of classes.list()) rcController.enqueue(objectKey(rc));
    }, debounceMs);
  };
  nodes.on('add', capacityChanged);
  nodes.on('delete', capacityChanged);
  nodes.on('update', (n, old) => {
    if (nodeShape(n) !== nodeShape(old)) capacityChanged();
  });
  pods.on('add', (p) => {
    if (placement(p) !== '') capacityChanged();
  });
  pods.on('update', (p, old) => {
    if (placement(p) !== placement(old)) capacityChanged();
  });
  pods.on('delete', (p) => {
    if (placement(p) !== '') capacityChanged();
  });

  const enqueueClassesOf = (clusterName: string) => {
    for (const rc of classes.list()) if (rc.spec.trainingCluster === clusterName) rcController.enqueue(objectKey(rc));
  };
  const onCluster = (tc: TrainingCluster) => {
    tcController.enqueue(objectKey(tc));
    enqueueClassesOf(objectKey(tc));
  };
  clusters.on('add', onCluster).on('update', onCluster).on('delete', onCluster);
  const onClass = (rc: ResourceClass) => rcController.enqueue(objectKey(rc));
  classes.on('add', onClass).on('update', onClass).on('delete', onClass);

  const recorder = new ExperimentMetricsRecorder(pm, d.isLeader);
  const classChanged = (name: string | undefined) => {
    if (name) rcController.enqueueAfter(name, debounceMs);
  };
  experiments.on('add', (e) => {
    recorder.added(e, objectKey(e));
    classChanged(e.spec.resourceClass);
  });
  // The credit ledger's burn rate moves when an attempt starts or ends; a debit is due when one ends.
  const ledgerChanged = (e: Experiment) => {
    const tc = e.spec.resourceClass ? classes.get(e.spec.resourceClass)?.spec.trainingCluster : undefined;
    if (tc && clusters.get(tc)?.status?.credits) tcController.enqueueAfter(tc, debounceMs);
  };
  experiments.on('update', (e, old) => {
    recorder.updated(e, old, objectKey(e));
    if (e.status?.attemptStartedAt !== old.status?.attemptStartedAt || e.status?.usage?.credits !== old.status?.usage?.credits) ledgerChanged(e);
    if (e.status?.phase !== old.status?.phase || e.spec.resourceClass !== old.spec.resourceClass) {
      classChanged(e.spec.resourceClass);
      if (old.spec.resourceClass !== e.spec.resourceClass) classChanged(old.spec.resourceClass);
    }
  });
  experiments.on('delete', (e) => {
    recorder.deleted(objectKey(e));
    classChanged(e.spec.resourceClass);
  });

  // GPUs of the training clusters' worker nodes (all nodes while no TrainingCluster exists).
  const isWorker = (n: NodeInfo) => {
    const all = clusters.list();
    return all.length === 0 || all.some((tc) => selects(tc.spec.workerNodeSelector, n.labels));
  };
  registerCacheGauges(d.registry, {
    experiments: () => experiments.list(),
    deployments: () => deployments.list(),
    gpus: () => capacity.summary(isWorker).gpus,
  });

  const router = statusApiRouter({
    sources: { clusters: collectionOf(clusters), classes: collectionOf(classes), experiments: collectionOf(experiments), deployments: collectionOf(deployments) },
    tokens,
    rateLimit: config.rateLimit,
    logger: log,
    metrics: pm,
  });

  return {
    informers: ownDeployments ? [ownDeployments, tokenSecrets] : [tokenSecrets],
    routers: [{ path: STATUS_API_PATH, router }],
    startLeading() {
      void ensureTokenSecret();
      tcController.start();
      rcController.start();
      for (const tc of clusters.list()) tcController.enqueue(objectKey(tc));
      for (const rc of classes.list()) rcController.enqueue(objectKey(rc));
    },
    async stop() {
      clearTimeout(capacityTimer);
      await platformLink.stop();
      await Promise.all([tcController.stop(), rcController.stop()]);
    },
    internals: { platformLink, tokens, trainingClusters: tcController, resourceClasses: rcController },
  };
}
