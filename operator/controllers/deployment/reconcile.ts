// reconcile(key) for agents (arena Deployments): make sure of what every agent keeps (its Service, its API key
// Secret, its frozen manifest, its route), read the inference workload, its pods and the health checks from the
// caches, let the pure lifecycle decide the phase and the actions, carry them out, and write status only when it
// changed.
import type { AppsV1Api, CoreV1Api, V1ObjectMeta } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import { withDefaults } from '../../api/validate.ts';
import type { Deployment, DeploymentStatus } from '../../api/v1alpha1/deployment.ts';
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import { ALGORITHM_NAMES, type AlgorithmName, type Manifest } from '../../api/v1alpha1/manifest.ts';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import { statusEqual } from '../../kube/conditions.ts';
import type { ReconcileResult } from '../../kube/controller.ts';
import { isAlreadyExists, isNotFound } from '../../kube/errors.ts';
import type { Wire } from '../../kube/informer.ts';
import { forObject } from '../../observability/log.ts';
import type { Cache } from '../experiment/reconcile.ts';
import type { ExposureManager } from './exposure.ts';
import type { KeptObjects } from './kept.ts';
import { decide, type Action, type DecideConfig, type Observed, type WorkloadView } from './lifecycle.ts';
import {
  INFERENCE_PORT,
  agentAnnotations,
  agentNames,
  apiKeySecret,
  checkpointTag,
  desiredRoute,
  endpointFor,
  inferenceService,
  inferenceWorkload,
  manifestConfigMap,
  newDeploymentId,
  type DesiredWorkload,
} from './objects.ts';
import { podView, type InferencePod } from './pods.ts';
import type { EndpointProber } from './prober.ts';
import { sourceState, type FrozenCheckpoint } from './source.ts';

/** Metadata the caches keep of the agent's objects. */
export type LeanMeta = Pick<Wire<V1ObjectMeta>, 'name' | 'namespace' | 'uid' | 'labels' | 'annotations' | 'resourceVersion' | 'creationTimestamp' | 'deletionTimestamp'>;
export interface LeanObject {
  metadata: LeanMeta;
}
export interface LeanWorkload extends LeanObject {
  spec: { replicas?: number };
  status: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

/** The agent's own objects in the caches, found by its uid. */
export interface OwnedObjects {
  workloads(agentUid: string): LeanWorkload[];
  pods(agentUid: string): InferencePod[];
}

export interface DeploymentReconcilerDeps {
  core: CoreV1Api;
  apps: AppsV1Api;
  deployments: Cache<Deployment>;
  experiments: Cache<Experiment>;
  classes: Cache<ResourceClass>;
  clusters: Cache<TrainingCluster>;
  owned: OwnedObjects;
  /** The API key of an agent's key rotation (derived from the operator's signing key). */
  apiKey: (deploymentUid: string, rotation: number) => Promise<string>;
  kept: KeptObjects;
  prober: EndpointProber;
  exposure: ExposureManager;
  /** Writes status when it differs; returns the object as written, or undefined when nothing was written. */
  writeStatus: (d: Deployment, status: DeploymentStatus) => Promise<Deployment | undefined>;
  recordEvent: (d: Deployment, type: 'Normal' | 'Warning', reason: string, note: string) => void;
  config: DecideConfig;
  /** See WorkloadInput.bindHost. */
  bindHost?: string;
  logger: Logger;
  now?: () => Date;
}

const live = <T extends LeanObject>(list: T[], name: string) => list.find((o) => o.metadata.name === name && !o.metadata.deletionTimestamp);

export class DeploymentReconciler {
  /**
   * The last status write per agent and the resourceVersion it was made on. Events wake a reconcile before the
   * cache shows that write; while the cache still holds the version written over, the written object is the
   * newer one, and using it saves a write that could only fail with Conflict.
   */
  private readonly written = new Map<string, { over: string; object: Deployment }>();
  /** Likewise for workload replacements: the spec written over a resourceVersion the cache may still show. */
  private readonly replaced = new Map<string, { over: string; specHash: string }>();

  constructor(private readonly d: DeploymentReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const d = this.d;
    let stored = d.deployments.get(key);
    const mine = this.written.get(key);
    if (stored && mine && stored.metadata?.resourceVersion === mine.over) stored = mine.object;
    else this.written.delete(key);
    if (!stored || stored.metadata?.deletionTimestamp) {
      // Gone or going: its workload, pods, Service, Secret, ConfigMap and route go with it through owner references.
      d.prober.untrack(key);
      d.exposure.forget(key);
      this.replaced.delete(key);
      const [namespace, name] = key.split('/');
      const names = agentNames({ metadata: { name } } as Deployment);
      d.kept.forget(namespace!, [names.service, names.manifest]);
      return;
    }
    const dep = withDefaults('Deployment', structuredClone(stored));
    const uid = dep.metadata!.uid!;
    const ns = dep.metadata!.namespace!;
    const names = agentNames(dep);
    const now = d.now?.() ?? new Date();
    const deploymentId = stored.status?.deploymentId ?? newDeploymentId(dep);

    const service = await d.kept.ensureService(inferenceService(dep));
    const apiKey = await this.ensureApiKey(dep, d.owned.pods(uid));

    const experiment = d.experiments.get(`${ns}/${dep.spec.source.experiment}`);
    const source = sourceState(dep, experiment, now);
    let blocker: Observed['blocker'] = service.ok ? undefined : service;
    let cluster: TrainingCluster | undefined;
    let algorithm: AlgorithmName | undefined;
    if (source.ok) {
      const frozen = await this.frozenManifest(dep, source.checkpoint, experiment);
      if (!frozen.ok) blocker ??= frozen;
      else {
        cluster = d.clusters.get(frozen.cluster);
        algorithm = frozen.algorithm;
        if (!cluster) blocker ??= { reason: 'TrainingClusterNotFound', message: `TrainingCluster ${frozen.cluster}, whose storage holds the checkpoint, does not exist.` };
      }
    }

    let requeueRoute: number | undefined;
    let host: string | undefined;
    let exposure: Observed['exposure'];
    if (cluster) {
      const r = await d.exposure.ensure(key, dep, desiredRoute(dep, deploymentId, cluster));
      exposure = r.condition;
      host = r.host;
      requeueRoute = r.recheckInMs;
    }

    let desired: DesiredWorkload | undefined;
    if (source.ok && cluster && algorithm) {
      desired = inferenceWorkload({
        deployment: dep,
        deploymentId,
        cluster,
        algorithm,
        checkpointLocation: source.checkpoint.location,
        apiKey: { name: apiKey.secretName },
        replicas: dep.spec.replicas ?? 1,
        bindHost: d.bindHost,
      });
    }
    const workload = live(d.owned.workloads(uid), names.workload) ?? d.owned.workloads(uid).find((w) => w.metadata.name === names.workload);
    const workloadView: WorkloadView = {
      exists: workload !== undefined,
      deleting: workload?.metadata.deletionTimestamp !== undefined,
    };
    const replicaFailure = workload?.status.conditions?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
    if (replicaFailure) workloadView.replicaFailure = replicaFailure.message ?? replicaFailure.reason ?? 'unknown';

    const decision = decide({
      now,
      deployment: stored,
      connected: dep.spec.connected ?? false,
      replicas: dep.spec.replicas ?? 1,
      deploymentId,
      apiKey: { secretName: apiKey.secretName, rotation: apiKey.rotation },
      source,
      blocker: blocker ?? (source.ok && !desired ? { reason: 'InvalidManifest', message: 'The frozen manifest cannot be served.' } : undefined),
      workload: workloadView,
      pods: d.owned.pods(uid).map((p) => podView(p, desired?.templateHash)),
      health: d.prober.view(key),
      endpoint: algorithm ? endpointFor(dep, algorithm, host) : undefined,
      exposure,
      config: d.config,
    });

    for (const action of decision.actions) await this.act(action, dep, key, desired, workload);
    if (!statusEqual(stored.status, decision.status)) {
      const written = await d.writeStatus(stored, decision.status);
      if (written?.metadata?.resourceVersion && stored.metadata?.resourceVersion) this.written.set(key, { over: stored.metadata.resourceVersion, object: written });
    }
    const waits = [decision.requeueAfterMs, requeueRoute].filter((x): x is number => x !== undefined && x > 0);
    return waits.length ? { requeueAfterMs: Math.min(...waits) } : undefined;
  }

  /**
   * The key for spec.keyRotation: one immutable Secret per rotation, its key derived from the agent's uid and the
   * rotation. A new rotation creates the next Secret and deletes the one before; the pods mount it by name, so
   * they are replaced too. The operator never reads key Secrets (it has no read access to Secrets outside its
   * namespace): it creates the Secret when its status does not show it issued yet, and again while inference pods
   * are not ready, in case someone deleted it (the same key comes back, so running servers are unaffected).
   */
  private async ensureApiKey(dep: Deployment, pods: InferencePod[]): Promise<{ secretName: string; rotation: number }> {
    const d = this.d;
    const ns = dep.metadata!.namespace!;
    const rotation = dep.spec.keyRotation ?? 0;
    const names = agentNames(dep);
    const name = names.apiKey(rotation);
    const issued = dep.status?.apiKeySecretName;
    const waiting = pods.some((p) => !p.metadata.deletionTimestamp && !p.status?.containerStatuses?.every((c) => c.ready));
    if (issued !== name || waiting) {
      const key = await d.apiKey(dep.metadata!.uid!, rotation);
      try {
        await d.core.createNamespacedSecret({ namespace: ns, body: apiKeySecret(dep, rotation, key) });
        if (issued && issued !== name) d.recordEvent(dep, 'Normal', 'KeyRotated', `Issued API key ${rotation} in Secret ${name}; the previous key is refused from now on.`);
        else if (!issued) d.recordEvent(dep, 'Normal', 'KeyIssued', `Issued the API key in Secret ${name}.`);
      } catch (err) {
        // Created by an earlier reconcile whose status write did not land, or still there: it holds this same key.
        if (!isAlreadyExists(err)) throw err;
      }
    }
    // On a rotation: the key recorded in status, and the one before this rotation (issued by a reconcile whose
    // status write was lost). Status only records the new key once both deletes went through.
    if (issued !== undefined && issued !== name) {
      for (const old of new Set([issued, rotation > 0 ? names.apiKey(rotation - 1) : issued])) {
        if (old !== name) await ignoreNotFound(d.core.deleteNamespacedSecret({ namespace: ns, name: old }));
      }
    }
    return { secretName: name, rotation };
  }

  /**
   * The manifest and training cluster the checkpoint was frozen with, from the agent's ConfigMap; written when the
   * checkpoint is (re)chosen, from the source experiment.
   */
  private async frozenManifest(
    dep: Deployment,
    checkpoint: FrozenCheckpoint,
    experiment: Experiment | undefined,
  ): Promise<{ ok: true; cluster: string; algorithm: AlgorithmName } | { ok: false; reason: string; message: string }> {
    const d = this.d;
    const uid = dep.metadata!.uid!;
    const ns = dep.metadata!.namespace!;
    const name = agentNames(dep).manifest;
    const tag = checkpointTag(checkpoint);
    let cm = await d.kept.manifest(ns, name, uid);
    if (cm?.annotations[agentAnnotations.checkpoint] !== tag) {
      if (!experiment) {
        return { ok: false, reason: 'ManifestMissing', message: `The manifest frozen with the checkpoint is gone and experiment ${checkpoint.experiment} no longer exists to copy it from.` };
      }
      const cls = experiment.spec.resourceClass ? d.classes.get(experiment.spec.resourceClass) : undefined;
      const all = d.clusters.list();
      const clusterName = cls?.spec.trainingCluster ?? (all.length === 1 ? all[0]!.metadata!.name! : undefined);
      if (!clusterName) {
        return { ok: false, reason: 'TrainingClusterNotFound', message: `Cannot tell which TrainingCluster holds the checkpoints of experiment ${experiment.metadata!.name}: its ResourceClass is gone.` };
      }
      cm = await d.kept.replaceManifest(manifestConfigMap(dep, experiment.spec.manifest as Manifest, clusterName, checkpoint));
    }
    const clusterName = cm.annotations[agentAnnotations.trainingCluster] ?? '';
    let algorithm: string | undefined;
    try {
      algorithm = (JSON.parse(cm.data['manifest.json'] ?? '{}') as Partial<Manifest>).algorithm?.name;
    } catch {
      algorithm = undefined;
    }
    if (!algorithm || !(ALGORITHM_NAMES as readonly string[]).includes(algorithm)) {
      return { ok: false, reason: 'InvalidManifest', message: `The frozen manifest names no algorithm this operator knows (${algorithm ?? 'none'}).` };
    }
    return { ok: true, cluster: clusterName, algorithm: algorithm as AlgorithmName };
  }

  private async act(action: Action, dep: Deployment, key: string, desired: DesiredWorkload | undefined, workload: LeanWorkload | undefined): Promise<void> {
    const d = this.d;
    const ns = dep.metadata!.namespace!;
    const name = agentNames(dep).workload;
    switch (action.type) {
      case 'applyWorkload': {
        if (!desired) return;
        if (!workload) {
          await ignoreExists(d.apps.createNamespacedDeployment({ namespace: ns, body: desired.workload }));
          return;
        }
        const same = workload.metadata.annotations?.[agentAnnotations.specHash] === desired.specHash && workload.spec.replicas === desired.workload.spec!.replicas;
        if (same || workload.metadata.deletionTimestamp) return;
        const pending = this.replaced.get(key);
        if (pending && pending.over === workload.metadata.resourceVersion && pending.specHash === desired.specHash) return;
        // A stale resourceVersion fails with Conflict and the reconcile runs again on the fresh object.
        await d.apps.replaceNamespacedDeployment({
          namespace: ns,
          name,
          body: { ...desired.workload, metadata: { ...desired.workload.metadata, resourceVersion: workload.metadata.resourceVersion } },
        });
        if (workload.metadata.resourceVersion) this.replaced.set(key, { over: workload.metadata.resourceVersion, specHash: desired.specHash });
        return;
      }
      case 'deleteWorkload':
        // Foreground: the workload stays visible (deleting) until its pods are gone, so a reconnect never
        // counts pods of the previous connection as its own.
        await ignoreNotFound(d.apps.deleteNamespacedDeployment({ namespace: ns, name, propagationPolicy: 'Foreground' }));
        return;
      case 'probe':
        d.prober.track(
          key,
          action.pods.map((p) => ({ pod: p.name, ip: p.ip, port: INFERENCE_PORT })),
        );
        return;
      case 'unprobe':
        d.prober.untrack(key);
        return;
      case 'event':
        d.recordEvent(dep, action.eventType, action.reason, action.note);
        forObject(d.logger, { namespace: ns, name: dep.metadata!.name!, kind: 'Deployment' }).info(action.note, { reason: action.reason, type: action.eventType });
        return;
    }
  }
}

async function ignoreExists<T>(p: Promise<T>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

async function ignoreNotFound<T>(p: Promise<T>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
