// Assembles the operator: lean informer caches, the capacity model and admission service, the experiment
// controller, the runtime report API and the HTTP server, under leader election. `startOperator` is what the
// binary (main.ts), the end-to-end tests and the demo run.
import os from 'node:os';
import { CoreV1Api, CustomObjectsApi, EventsV1Api, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { Counter, Gauge, Registry } from 'prom-client';
import { GROUP, VERSION, kinds } from './api/v1alpha1/index.ts';
import type { Experiment, ExperimentStatus } from './api/v1alpha1/experiment.ts';
import type { ResourceClass } from './api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from './api/v1alpha1/trainingcluster.ts';
import { Informer, leanNode, leanPod, type LeanNode, type LeanPod } from './kube/informer.ts';
import { Controller, objectKey } from './kube/controller.ts';
import { EventRecorder } from './kube/events.ts';
import { updateStatusIfChanged } from './kube/status.ts';
import { RateLimitedKubeConfig, TokenBucket } from './kube/ratelimit.ts';
import { LeaderElector } from './kube/leader.ts';
import { createLogger, type Logger } from './observability/log.ts';
import { createMetrics } from './observability/metrics.ts';
import { CapacityModel } from './scheduler/capacity.ts';
import { nodeInfoFromNode, podUsageFromPod } from './scheduler/from-kube.ts';
import { AdmissionService } from './controllers/experiment/admission-service.ts';
import { ExperimentReconciler } from './controllers/experiment/reconcile.ts';
import { creditsVerdict } from './controllers/trainingcluster/credits.ts';
import { ReportInbox } from './controllers/experiment/reports.ts';
import { labels } from './controllers/experiment/workers.ts';
import { SigningKey } from './credentials/signing-key.ts';
import { agentApiKey } from './credentials/derive.ts';
import { checkRunToken, issueRunToken, keyId } from './credentials/run-token.ts';
import { startHttpServer, startOpsServer, type OpsServer, type RunningServer } from './server/http.ts';
import { DEFAULT_CA_CONFIGMAP, wireApiTls, type ApiTlsConfig, type ApiTlsParts } from './server/api-tls.ts';
import { runtimeApiRouter } from './server/runtime-api.ts';
import { wireClusterStatus, type ClusterStatusConfig } from './status-api/wiring.ts';
import { manifestErrors } from './api/validate.ts';
import { PlatformValidator } from './api/platform/verdict.ts';
import { wireWebhook, type WebhookConfig, type WebhookParts } from './webhook/wiring.ts';
import { wireDeployments, type DeploymentControllerConfig, type DeploymentParts } from './controllers/deployment/wiring.ts';
import type { V1Node, V1Pod } from '@kubernetes/client-node';

export interface OperatorOptions {
  kc: KubeConfig;
  /** This replica's identity in the leader Lease; default $POD_NAME or the host name plus pid. */
  identity?: string;
  /** Where the Lease lives. */
  leaseNamespace?: string;
  leaseName?: string;
  leaderElection?: { leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  /** false runs without a Lease, for a single replica (like controller-runtime's --leader-elect=false). */
  leaderElect?: boolean;
  /** Where worker pods reach the runtime report API (the operator's Service URL in a cluster). */
  reportUrl?: string;
  /**
   * The API server (runtime reports, status API, health). `tls` serves it over HTTPS with a certificate from a
   * Secret (server/api-tls.ts) and hands worker pods the CA; without it the API is plain HTTP, which main.ts allows
   * only on loopback for local development.
   */
  http?: { host?: string; port?: number; tls?: ApiTlsConfig };
  /** The plain-HTTP ops server: /metrics, /healthz, /readyz. Default a free port (the binary's is 8081); host as http's. */
  ops?: { host?: string; port?: number };
  /** Client-side API rate limit. */
  qps?: number;
  burst?: number;
  workers?: number;
  progressIntervalMs?: number;
  starvationMs?: number;
  /** How long a worker's node may be NotReady before its gang is retried elsewhere; default 60 s. */
  nodeLostAfterMs?: number;
  logger?: Logger;
  registry?: Registry;
  /** Called when leadership is lost; the binary exits so a fresh process starts clean. Default: stop. */
  onLostLeadership?: () => void;
  /** TrainingCluster/ResourceClass status, the platform status API, heartbeat and metrics (status-api/wiring.ts). */
  clusterStatus?: ClusterStatusConfig;
  /** The admission webhook on its own HTTPS port (webhook/wiring.ts); off when absent. */
  webhook?: WebhookConfig;
  /** The Secret holding the key run tokens and agent API keys derive from. Default: the Lease's namespace, arena-operator-signing-key. */
  signingKey?: { namespace?: string; name?: string };
  /** The agent (arena Deployment) controller: health checks, timeouts, bind address (controllers/deployment/wiring.ts). */
  deployments?: DeploymentControllerConfig;
  /** The Arena platform's manifest validator; default: one of this operator's own, run with $ARENA_PYTHON or the project's .venv. */
  manifestValidator?: PlatformValidator;
}

export interface RunningOperator {
  http: RunningServer;
  /** /metrics, /healthz and /readyz, plain HTTP on a port of their own. */
  ops: OpsServer;
  /** The API server's certificate Secret and the workers' CA ConfigMap, when TLS is on. */
  apiTls?: ApiTlsParts;
  isLeader(): boolean;
  stop(): Promise<void>;
  /** For tests and benchmarks. */
  internals: { admission: AdmissionService; inbox: ReportInbox; capacity: CapacityModel; controller: Controller };
  /** The admission webhook, when configured. */
  webhook?: WebhookParts;
  /** The agent controller, its caches and its endpoint prober. */
  deployments: DeploymentParts;
}

type WorkerPod = LeanPod & { pin?: string };

/** The node a worker pod is pinned to by required node affinity on metadata.name, if any. */
function pinnedNode(obj: V1Pod): string | undefined {
  const terms = obj.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  const f = terms[0]?.matchFields?.find((m) => m.key === 'metadata.name' && m.operator === 'In');
  return f?.values?.length === 1 ? f.values[0] : undefined;
}

export async function startOperator(opts: OperatorOptions): Promise<RunningOperator> {
  const logger = opts.logger ?? createLogger({ component: 'operator' });
  const registry = opts.registry ?? new Registry();
  const metrics = createMetrics(registry);
  const limiter = new TokenBucket({ qps: opts.qps ?? 50, burst: opts.burst ?? 100 });
  // Every write goes through the leader's fence once there is an election: a replica that is not the leader, or
  // that was paused past its renew deadline, sends nothing that changes the cluster.
  let mayWrite = () => true;
  const kc = new RateLimitedKubeConfig(opts.kc, {
    limiter,
    metrics,
    mayWrite: () => mayWrite(),
    onHung: () => logger.warn('a request to the API server got no answer within its deadline: its connections are dropped and dialled afresh'),
  });
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const identity = opts.identity ?? process.env.POD_NAME ?? `${os.hostname()}-${process.pid}`;
  const recorder = new EventRecorder({ client: kc.makeApiClient(EventsV1Api), reportingInstance: identity, logger, metrics });

  // The platform's validator decides every manifest: an operator that cannot run it must not start and guess.
  // Started now, awaited once the HTTP port is bound: the interpreter's start-up overlaps the rest of the wiring.
  const manifestValidator = opts.manifestValidator ?? new PlatformValidator();
  const platformHello = manifestValidator.hello().then(
    (platform) => ({ platform }),
    (error: unknown) => ({ error: error as Error }),
  );

  const reportsTotal = new Counter({ name: 'arena_runtime_reports_total', help: 'Runtime reports received, by result.', labelNames: ['result'], registers: [registry] });
  const cycleSeconds = new Gauge({ name: 'arena_admission_cycle_seconds', help: 'Duration of the last admission cycle.', registers: [registry] });

  const informerRestarts = new Counter({ name: 'arena_informer_restarts_total', help: 'Informer list/watch restarts, by resource and reason.', labelNames: ['resource', 'reason'], registers: [registry] });
  const informerRelists = new Counter({ name: 'arena_informer_relists_total', help: 'Full informer lists, by resource and reason.', labelNames: ['resource', 'reason'], registers: [registry] });
  const informerEvents = new Counter({ name: 'arena_informer_watch_events_total', help: 'Watch events received, by resource and type.', labelNames: ['resource', 'type'], registers: [registry] });
  const informerBase = {
    kc,
    logger,
    transport: kc.transport,
    // A watch that went silent leaves its connection, and the kept-alive ones beside it, presumed dead.
    onWatchHung: (sentAt: number) => {
      if (kc.dropConnections(sentAt)) logger.warn('a watch went silent: dropped the connections to the API server', { connectionsDropped: kc.connectionsDropped });
    },
    metrics: {
      restarted: (resource: string, reason: string) => informerRestarts.inc({ resource, reason }),
      relisted: (resource: string, reason: string) => informerRelists.inc({ resource, reason }),
      watchEvent: (resource: string, type: string) => informerEvents.inc({ resource, type }),
    },
  };
  const experiments = new Informer<Experiment>({ ...informerBase, group: GROUP, version: VERSION, plural: kinds.Experiment.plural });
  const classes = new Informer<ResourceClass>({ ...informerBase, group: GROUP, version: VERSION, plural: kinds.ResourceClass.plural });
  const clusters = new Informer<TrainingCluster>({ ...informerBase, group: GROUP, version: VERSION, plural: kinds.TrainingCluster.plural });
  // Every pod counts against its node's capacity, so the pod cache spans the cluster, cut to what admission needs.
  const pods = new Informer<WorkerPod>({
    ...informerBase,
    group: '',
    version: 'v1',
    plural: 'pods',
    transform: (o: KubernetesObject) => {
      const lean: WorkerPod = leanPod(o);
      const pin = pinnedNode(o as V1Pod);
      if (pin) lean.pin = pin;
      return lean;
    },
  });
  const nodes = new Informer<LeanNode>({ ...informerBase, group: '', version: 'v1', plural: 'nodes', transform: leanNode });
  // Run tokens are derived from this key, never read back from the Secrets handed to workers: the operator needs
  // no read access to Secrets outside its own namespace.
  const operatorNamespace = opts.leaseNamespace ?? process.env.POD_NAMESPACE ?? 'default';
  const signingKey = new SigningKey({ informerBase, core, namespace: opts.signingKey?.namespace ?? operatorNamespace, name: opts.signingKey?.name, logger });
  pods.addIndex('experiment', (p) => {
    const uid = p.metadata?.labels?.[labels.experimentUid];
    return uid ? [uid] : [];
  });
  pods.addIndex('node', (p) => {
    const n = p.spec?.nodeName ?? p.pin;
    return n ? [n] : [];
  });

  // Capacity: kept incrementally from node and pod events.
  const capacity = new CapacityModel();
  // A worker pod's gang is its owning Experiment; the reservation of an admitted gang is kept under that key.
  const gangOf = (p: WorkerPod) => {
    if (p.metadata?.labels?.[labels.component] !== 'worker') return undefined;
    const owner = p.metadata.ownerReferences?.find((r) => r.kind === 'Experiment' && r.apiVersion === `${GROUP}/${VERSION}`);
    return owner ? `${p.metadata.namespace}/${owner.name}` : undefined;
  };
  const countPod = (p: WorkerPod) => {
    const usage = podUsageFromPod(p as unknown as V1Pod);
    // A worker pinned to its planned node holds that node's capacity from creation, before it is bound.
    if (usage.node === '' && p.pin) usage.node = p.pin;
    capacity.upsertPod(objectKey(p), usage, gangOf(p));
  };
  const countNode = (n: LeanNode) => {
    try {
      capacity.upsertNode(nodeInfoFromNode(n as unknown as V1Node));
    } catch (err) {
      logger.warn('node skipped', { name: n.metadata?.name, error: (err as Error).message });
    }
  };

  const inbox = new ReportInbox({ wake: (key) => controller.enqueue(key), progressIntervalMs: opts.progressIntervalMs });
  const admission = new AdmissionService({
    capacity,
    logger,
    starvationMs: opts.starvationMs,
    wake: (keys) => keys.forEach((k) => controller.enqueue(k)),
    onCycle: (s) => cycleSeconds.set(s.durationMs / 1000),
  });
  const readyCondition = (name: string) => nodes.get(name)?.status?.conditions?.find((c) => c.type === 'Ready');
  const nodeState = (name: string): 'ready' | 'notReady' | 'missing' => {
    if (!nodes.get(name)) return 'missing';
    return readyCondition(name)?.status === 'True' ? 'ready' : 'notReady';
  };
  const nodeNotReadySince = (name: string): Date | undefined => {
    const ready = readyCondition(name);
    if (!ready || ready.status === 'True' || !ready.lastTransitionTime) return undefined;
    const ms = Date.parse(String(ready.lastTransitionTime));
    return Number.isFinite(ms) ? new Date(ms) : undefined;
  };
  const reconciler = new ExperimentReconciler({
    core,
    experiments,
    classes,
    clusters,
    workerPods: (uid) => pods.byIndex('experiment', uid) as unknown as V1Pod[],
    nodeState,
    nodeNotReadySince,
    nodeLostAfterMs: opts.nodeLostAfterMs,
    admission,
    inbox,
    runTokens: async (exp, a, workers) => {
      const key = await signingKey.ensure();
      const claims = { namespace: exp.metadata!.namespace!, name: exp.metadata!.name!, run: a.run, attempt: a.attempt };
      return { key: keyId(key), tokens: Array.from({ length: workers }, (_, worker) => issueRunToken(key, exp.metadata!.uid!, { ...claims, worker })) };
    },
    runTokenKey: () => {
      const key = signingKey.current();
      return key ? keyId(key) : undefined;
    },
    writeStatus: async (exp, status) => {
      await updateStatusIfChanged(
        custom,
        { group: GROUP, version: VERSION, plural: kinds.Experiment.plural, kind: 'Experiment', schema: kinds.Experiment.status },
        exp,
        status as Record<string, unknown>,
        metrics,
      );
    },
    // Cached objects come from lists, which carry no kind or apiVersion; events need both to name the object.
    recordEvent: (exp, type, reason, note) => recorder.record({ ...exp, apiVersion: `${GROUP}/${VERSION}`, kind: 'Experiment' }, type, reason, note),
    reportUrl: opts.reportUrl ?? 'http://arena-operator.arena-system.svc:8080',
    reportCa: opts.http?.tls ? { configMap: opts.http.tls.caConfigMapName ?? DEFAULT_CA_CONFIGMAP, ensure: (ns) => apiTls!.ensureCa(ns) } : undefined,
    logger,
    manifestErrors: (manifest) => manifestErrors(manifest, { at: 'spec.manifest', validator: manifestValidator }),
  });
  // Reconciles spend most of their time waiting on the API server; enough workers keep admission from queueing
  // behind those round trips (one key is still never reconciled twice at once). 64 rather than 16 took 300
  // admissions from 24 s to 17 s in e2e/bench/operator-admission.bench.ts.
  const controller = new Controller({ name: 'experiment', reconciler, workers: opts.workers ?? 64, metrics, logger });

  // Event wiring: every handler only enqueues keys; reconcile reads the caches.
  const enqueueExp = (o: Experiment) => controller.enqueue(objectKey(o));
  experiments.on('add', enqueueExp);
  experiments.on('update', enqueueExp);
  experiments.on('delete', enqueueExp);
  const enqueueOwner = (p: WorkerPod) => {
    const gang = gangOf(p);
    if (gang) controller.enqueue(gang);
  };
  pods.on('add', (p) => (countPod(p), enqueueOwner(p), admission.trigger()));
  pods.on('update', (p) => (countPod(p), enqueueOwner(p), admission.trigger()));
  pods.on('delete', (p) => {
    capacity.removePod(objectKey(p));
    const gang = gangOf(p);
    if (gang) reconciler.podGone(gang, p.metadata!.name!);
    enqueueOwner(p);
    admission.trigger();
  });
  const onNode = (n: LeanNode) => {
    for (const p of pods.byIndex('node', n.metadata!.name!)) enqueueOwner(p);
    admission.trigger();
  };
  nodes.on('add', (n) => (countNode(n), onNode(n)));
  nodes.on('update', (n, old) => {
    countNode(n);
    if (JSON.stringify(n.status?.conditions) !== JSON.stringify(old.status?.conditions) || n.metadata?.resourceVersion !== old.metadata?.resourceVersion) onNode(n);
  });
  nodes.on('delete', (n) => (capacity.removeNode(n.metadata!.name!), onNode(n)));
  const byClass = (className: string) => experiments.list().filter((e) => e.spec.resourceClass === className).forEach(enqueueExp);
  const onClass = (c: ResourceClass) => byClass(c.metadata!.name!);
  classes.on('add', onClass);
  // Status writes (the class controller's) do not change what experiments see; only spec changes do.
  classes.on('update', (c, old) => c.metadata?.generation !== old.metadata?.generation && onClass(c));
  classes.on('delete', onClass);
  const creditsState = (tc: TrainingCluster) => {
    const v = creditsVerdict(tc);
    return v === undefined ? 'unlimited' : v.exhausted ? 'exhausted' : 'available';
  };
  const onCluster = (tc: TrainingCluster) =>
    classes.list().filter((c) => c.spec.trainingCluster === tc.metadata!.name).forEach(onClass);
  clusters.on('add', onCluster);
  // Besides spec changes, the credit ledger running out or being topped up (a status write) changes what
  // experiments may do.
  clusters.on('update', (tc, old) => (tc.metadata?.generation !== old.metadata?.generation || creditsState(tc) !== creditsState(old)) && onCluster(tc));
  clusters.on('delete', onCluster);

  const clusterStatus = wireClusterStatus(
    { informerBase, custom, core, experiments, classes, clusters, nodes, pods, capacity, metrics, registry, logger, isLeader: () => leading },
    opts.clusterStatus,
  );
  const webhook = opts.webhook
    ? await wireWebhook({ kc, informerBase, experiments, classes, clusters, metrics, registry, logger, manifestValidator }, opts.webhook)
    : undefined;
  const deployments = wireDeployments(
    {
      kc,
      informerBase,
      core,
      custom,
      experiments,
      classes,
      clusters,
      recorder,
      apiKey: async (uid, rotation) => agentApiKey(await signingKey.ensure(), uid, rotation),
      metrics,
      registry,
      logger,
    },
    opts.deployments,
  );
  let leading = false;
  let stopped = false;
  let ready = (): { ready: boolean; reason?: string } => ({ ready: false, reason: 'starting' });
  const http = await startHttpServer({
    host: opts.http?.host,
    port: opts.http?.port ?? 8080,
    tls: !!opts.http?.tls,
    logger,
    healthy: () => !stopped,
    ready: () => ready(),
    routers: [
      {
        path: '/runtime/v1',
        router: runtimeApiRouter({
          isLeader: () => leading,
          logger,
          reportsTotal,
          checkToken: (token) => checkRunToken(token, signingKey.current(), (ns, name) => experiments.get(`${ns}/${name}`)?.metadata?.uid),
          accept: (report) => {
            const key = `${report.experiment.namespace}/${report.experiment.name}`;
            const exp = experiments.get(key);
            return inbox.accept(key, { run: exp?.status?.run ?? 0, attempt: exp?.status?.attempt ?? 0 }, report);
          },
        }),
      },
      ...clusterStatus.routers,
    ],
  });
  const workerNamespaces = function* () {
    for (const p of pods.list()) if (p.metadata?.labels?.[labels.component] === 'worker' && p.metadata.namespace) yield p.metadata.namespace;
  };
  const apiTls = opts.http?.tls
    ? wireApiTls({ core, informerBase, namespace: operatorNamespace, server: http, workerNamespaces, metrics, registry, logger }, opts.http.tls)
    : undefined;
  const informers = [experiments, classes, clusters, pods, nodes, signingKey.informer, ...clusterStatus.informers, ...(webhook?.informers ?? []), ...deployments.informers, ...(apiTls?.informers ?? [])];
  ready = () => {
    const pending = informers.filter((i) => !i.hasSynced()).length;
    if (pending > 0) return { ready: false, reason: `${pending} cache(s) not synced yet` };
    // A replica that cannot complete a handshake must not get traffic from the Service.
    if (apiTls && !http.certificate()) return { ready: false, reason: `no serving certificate loaded from Secret ${apiTls.secret.namespace}/${apiTls.secret.name} yet` };
    return { ready: true };
  };
  const ops = await startOpsServer({ host: opts.ops?.host ?? opts.http?.host, port: opts.ops?.port ?? 0, registry, logger, healthy: () => !stopped, ready: () => ready() }).catch(async (err: unknown) => {
    await http.close();
    throw err;
  });
  const hello = await platformHello;
  if ('error' in hello) {
    // The platform's validator decides every manifest: an operator that cannot run it must not start and guess.
    await http.close();
    await ops.close();
    await webhook?.stop();
    if (!opts.manifestValidator) manifestValidator.close();
    throw hello.error;
  }
  logger.info('Manifests are checked by the Arena platform\'s own validator', { agilerlArena: hello.platform.manifestVersion, manifestApiVersion: hello.platform.apiVersion });

  await Promise.all(informers.map((i) => i.start()));
  logger.info('caches synced', { experiments: experiments.size(), pods: pods.size(), nodes: nodes.size() });

  const startLeading = () => {
    leading = true;
    metrics.leaderElectionMasterStatus.set({ name: 'arena-operator' }, 1);
    logger.info('leading', { identity });
    // Made now rather than at the first admission, so the first gang does not wait on it; failures are retried there.
    signingKey.ensure().catch((err: unknown) => logger.warn('signing key not ready', { secret: signingKey.ref, error: (err as Error).message }));
    admission.start();
    controller.start();
    for (const e of experiments.list()) enqueueExp(e);
    clusterStatus.startLeading();
    webhook?.startLeading();
    deployments.startLeading();
    apiTls?.startLeading();
  };
  const elector =
    opts.leaderElect === false
      ? undefined
      : new LeaderElector({
          // Its own client and budget, as controller-runtime gives the lease: a renewal never waits behind a burst
          // of reconciles or webhook lookups, which could make the leader miss its deadline and hand the same
          // backlog to the standby.
          kc: new RateLimitedKubeConfig(opts.kc, { limiter: new TokenBucket({ qps: 5, burst: 10 }), metrics }),
          namespace: operatorNamespace,
          name: opts.leaseName ?? 'arena-operator',
          identity,
          logger,
          ...opts.leaderElection,
        });
  if (elector) {
    mayWrite = () => elector.holdsLease();
    void elector.run({
      onStartedLeading: startLeading,
      onStoppedLeading: () => {
        const was = leading;
        leading = false;
        metrics.leaderElectionMasterStatus.set({ name: 'arena-operator' }, 0);
        if (was && !stopped) {
          logger.warn('lost leadership', { identity });
          (opts.onLostLeadership ?? (() => void stop()))();
        }
      },
    });
  } else {
    startLeading();
  }

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    admission.stop();
    await controller.stop();
    await clusterStatus.stop();
    await webhook?.stop();
    if (!opts.manifestValidator) manifestValidator.close();
    await deployments.stop();
    await apiTls?.stop();
    await elector?.stop();
    for (const i of informers) i.stop();
    await recorder.flush?.();
    await http.close();
    await ops.close();
  };

  return { http, ops, apiTls, isLeader: () => leading, stop, internals: { admission, inbox, capacity, controller }, webhook, deployments };
}

export type { ExperimentStatus };
