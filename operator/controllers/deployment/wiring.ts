// Wires the agent (arena Deployment) controller into the operator: the Deployment informer, lean caches of what
// agents own and may change under them (inference workloads and pods, key Secrets; label-selected, so only the
// operator's own objects are held), the endpoint prober, and the controller. startOperator calls
// wireDeployments once and starts, syncs and stops the informers with its own; the controller and the prober run
// on the leader only.
import { AppsV1Api, NetworkingV1Api, type CoreV1Api, type CustomObjectsApi, type HttpLibrary, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { Logger } from 'winston';
import { GROUP, VERSION, kinds } from '../../api/v1alpha1/index.ts';
import type { Deployment } from '../../api/v1alpha1/deployment.ts';
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import { Controller, objectKey, splitKey } from '../../kube/controller.ts';
import type { EventRecorder } from '../../kube/events.ts';
import { Informer, type InformerMetrics } from '../../kube/informer.ts';
import { updateStatusIfChanged } from '../../kube/status.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { platformMetrics } from '../../status-api/metrics.ts';
import { MANAGED_BY } from '../experiment/workers.ts';
import { ExposureManager } from './exposure.ts';
import { defaultDecideConfig, type DecideConfig } from './lifecycle.ts';
import { agentLabels, components } from './objects.ts';
import { leanInferencePod, type InferencePod } from './pods.ts';
import { EndpointProber } from './prober.ts';
import { KeptObjects } from './kept.ts';
import { DeploymentReconciler, type LeanMeta, type LeanObject, type LeanWorkload } from './reconcile.ts';

export interface DeploymentControllerConfig {
  /** Concurrent reconciles. Default 4. */
  workers?: number;
  health?: {
    /** Between checks of one agent. Default 10 s. */
    intervalMs?: number;
    /** Per request. Default 2 s. */
    timeoutMs?: number;
    /** Failed checks in a row that send a Deployed agent back to Pending. Default 3. */
    failureThreshold?: number;
    /** Networks the checks may dial (pod IPs only, never a URL). Default: any pod IP. */
    allowedCidrs?: string[];
  };
  /** Pending-after-Deployed longer than this is Failed (Unhealthy). Default 5 min. */
  unhealthyTimeoutMs?: number;
  /** A connect whose pods are not serving after this long is Failed (DeployTimeout). Default 15 min. */
  deployTimeoutMs?: number;
  /** status.health is rewritten at most this often while nothing changes. Default 60 s. */
  healthRefreshMs?: number;
  /** The address the inference server listens on in its pod. Default 0.0.0.0; `$(POD_IP)` for nodes without pod networks. */
  bindHost?: string;
  /** How long the answer "is the Gateway API installed" is trusted. Default 60 s. */
  discoveryTtlMs?: number;
}

export interface DeploymentDeps {
  kc: KubeConfig;
  informerBase: { kc: KubeConfig; logger: Logger; transport?: HttpLibrary; metrics?: InformerMetrics };
  core: CoreV1Api;
  custom: CustomObjectsApi;
  experiments: Informer<Experiment>;
  classes: Informer<ResourceClass>;
  clusters: Informer<TrainingCluster>;
  recorder: EventRecorder;
  /** The API key of an agent's key rotation (derived from the operator's signing key). */
  apiKey: (deploymentUid: string, rotation: number) => Promise<string>;
  metrics: Metrics;
  registry: Registry;
  logger: Logger;
}

export interface DeploymentParts {
  /** The operator starts, syncs and stops these with its own. */
  informers: { start(): Promise<void>; stop(): void; hasSynced(): boolean }[];
  controller: Controller;
  prober: EndpointProber;
  deployments: Informer<Deployment>;
  startLeading(): void;
  stop(): Promise<void>;
}

const BY_AGENT = 'arena.agent-uid';
const BY_UID = 'arena.uid';
const BY_SOURCE = 'arena.source';

function leanMeta(o: KubernetesObject): LeanMeta {
  const m = o.metadata ?? {};
  const meta: LeanMeta = { name: m.name, namespace: m.namespace, uid: m.uid, labels: m.labels, annotations: m.annotations, resourceVersion: m.resourceVersion };
  if (m.creationTimestamp) meta.creationTimestamp = m.creationTimestamp as unknown as string;
  if (m.deletionTimestamp) meta.deletionTimestamp = m.deletionTimestamp as unknown as string;
  return meta;
}

export function wireDeployments(d: DeploymentDeps, config: DeploymentControllerConfig = {}): DeploymentParts {
  const log = d.logger.child({ component: 'deployment-controller' });
  const apps = d.kc.makeApiClient(AppsV1Api);
  const networking = d.kc.makeApiClient(NetworkingV1Api);
  const base = { ...d.informerBase, logger: log };
  const owned = `${agentLabels.managedBy}=${MANAGED_BY},${agentLabels.agentUid}`;
  const ofComponent = (c: string) => `${owned},${agentLabels.component}=${c}`;

  const deployments = new Informer<Deployment>({ ...base, group: GROUP, version: VERSION, plural: kinds.Deployment.plural });
  const workloads = new Informer<LeanWorkload>({
    ...base,
    group: 'apps',
    version: 'v1',
    plural: 'deployments',
    labelSelector: ofComponent(components.inference),
    transform: (o) => {
      const w = o as KubernetesObject & { spec?: { replicas?: number }; status?: LeanWorkload['status'] };
      return { metadata: leanMeta(o), spec: { replicas: w.spec?.replicas }, status: { conditions: w.status?.conditions } };
    },
  });
  const pods = new Informer<InferencePod>({ ...base, group: '', version: 'v1', plural: 'pods', labelSelector: ofComponent(components.inference), transform: leanInferencePod });
  // Key Secrets are not watched: the operator has no read access to Secrets outside its namespace (see ensureApiKey).
  // Both keep the metadata the index and the owner lookup read.
  const ownedInformers = [workloads, pods] as unknown as Informer<LeanObject>[];
  for (const inf of ownedInformers) {
    inf.addIndex(BY_AGENT, (o) => {
      const uid = o.metadata?.labels?.[agentLabels.agentUid];
      return uid ? [uid] : [];
    });
  }
  deployments.addIndex(BY_UID, (o) => (o.metadata?.uid ? [o.metadata.uid] : []));
  deployments.addIndex(BY_SOURCE, (o) => [`${o.metadata?.namespace}/${o.spec?.source?.experiment}`]);

  const decideConfig: DecideConfig = {
    failureThreshold: config.health?.failureThreshold ?? defaultDecideConfig.failureThreshold,
    unhealthyTimeoutMs: config.unhealthyTimeoutMs ?? defaultDecideConfig.unhealthyTimeoutMs,
    deployTimeoutMs: config.deployTimeoutMs ?? defaultDecideConfig.deployTimeoutMs,
    healthRefreshMs: config.healthRefreshMs ?? defaultDecideConfig.healthRefreshMs,
  };
  const failures = platformMetrics(d.registry).deploymentHealthCheckFailures;
  const prober = new EndpointProber({
    intervalMs: config.health?.intervalMs,
    timeoutMs: config.health?.timeoutMs,
    failureThreshold: decideConfig.failureThreshold,
    allowedCidrs: config.health?.allowedCidrs,
    // Checks run only once the controller leads, so it exists by then.
    wake: (key) => controller.enqueue(key),
    onFailure: (key) => {
      const { namespace, name } = splitKey(key);
      failures.inc({ namespace: namespace ?? '', deployment: name });
    },
    logger: log,
  });
  const exposure = new ExposureManager({ custom: d.custom, networking, logger: log, discoveryTtlMs: config.discoveryTtlMs });
  const byAgent = <T extends LeanObject | InferencePod>(inf: Informer<T>) => (uid: string) => inf.byIndex(BY_AGENT, uid);

  const reconciler = new DeploymentReconciler({
    core: d.core,
    apps,
    deployments,
    experiments: d.experiments,
    classes: d.classes,
    clusters: d.clusters,
    owned: {
      workloads: byAgent(workloads),
      pods: byAgent(pods),
    },
    apiKey: d.apiKey,
    kept: new KeptObjects(d.core),
    prober,
    exposure,
    writeStatus: async (dep, status) =>
      (await updateStatusIfChanged(d.custom, { group: GROUP, version: VERSION, plural: kinds.Deployment.plural, kind: 'Deployment', schema: kinds.Deployment.status }, dep, status as Record<string, unknown>, d.metrics)) as
        | Deployment
        | undefined,
    // Cached objects come from lists, which carry no kind or apiVersion; events need both to name the object.
    recordEvent: (dep, type, reason, note) => d.recorder.record({ ...dep, apiVersion: `${GROUP}/${VERSION}`, kind: 'Deployment' }, type, reason, note),
    config: decideConfig,
    bindHost: config.bindHost,
    logger: log,
  });
  const controller = new Controller({ name: 'deployment', reconciler, workers: config.workers ?? 4, metrics: d.metrics, logger: d.logger });
  const c = controller;

  // Handlers only enqueue keys; reconcile reads the caches.
  const enqueue = (o: Deployment) => c.enqueue(objectKey(o));
  deployments.on('add', enqueue).on('update', enqueue).on('delete', enqueue);
  const toOwner = (o: { metadata?: { labels?: Record<string, string> } }) => {
    const uid = o.metadata?.labels?.[agentLabels.agentUid];
    if (!uid) return;
    for (const dep of deployments.byIndex(BY_UID, uid)) enqueue(dep);
  };
  for (const inf of ownedInformers) inf.on('add', toOwner).on('update', toOwner).on('delete', toOwner);
  // A source experiment matters until its checkpoint is frozen (or when the source names it anew).
  const onExperiment = (e: Experiment) => {
    for (const dep of deployments.byIndex(BY_SOURCE, objectKey(e))) {
      const frozen = dep.status?.checkpoint;
      if (!frozen || frozen.experiment !== dep.spec.source.experiment || dep.status?.phase === 'Pending') enqueue(dep);
    }
  };
  d.experiments.on('add', onExperiment).on('update', onExperiment).on('delete', onExperiment);
  // Images, storage, node selection and exposure come from the training cluster.
  const all = () => deployments.list().forEach(enqueue);
  d.clusters.on('add', all).on('update', (n, o) => {
    if (JSON.stringify(n.spec) !== JSON.stringify(o.spec)) all();
  });
  d.clusters.on('delete', all);

  return {
    informers: [deployments, ...ownedInformers],
    controller: c,
    prober,
    deployments,
    startLeading() {
      c.start();
      all();
    },
    async stop() {
      prober.stop();
      await c.stop();
    },
  };
}
