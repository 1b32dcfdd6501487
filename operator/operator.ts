// Assembles the operator from its parts: the shared caches (caches.ts), the experiment controller with its
// capacity model and admission (controllers/experiment/wiring.ts), the cluster status, webhook, agent and TLS
// parts (each a wire* of its own folder), the runtime report API and the HTTP servers, under leader election.
// `startOperator` is what the binary (main.ts), the end-to-end tests and the demo run.
import os from 'node:os';
import { CoreV1Api, CustomObjectsApi, EventsV1Api, type KubeConfig } from '@kubernetes/client-node';
import { Counter, Registry } from 'prom-client';
import type { ExperimentStatus } from './api/v1alpha1/experiment.ts';
import { informerBase, sharedCaches, type SharedCaches } from './caches.ts';
import type { Controller } from './kube/controller.ts';
import { EventRecorder } from './kube/events.ts';
import { RateLimitedKubeConfig, TokenBucket } from './kube/ratelimit.ts';
import { LeaderElector } from './kube/leader.ts';
import { createLogger, type Logger } from './observability/log.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import type { CapacityModel } from './scheduler/capacity.ts';
import type { AdmissionService } from './controllers/experiment/admission-service.ts';
import type { ReportInbox } from './controllers/experiment/reports.ts';
import { wireExperiments, type ExperimentControllerConfig, type ExperimentDeps } from './controllers/experiment/wiring.ts';
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
  /** Checkpoint-aware preemption (controllers/experiment/wiring.ts). */
  preemption?: ExperimentControllerConfig['preemption'];
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

export async function startOperator(opts: OperatorOptions): Promise<RunningOperator> {
  const logger = opts.logger ?? createLogger({ component: 'operator' });
  const registry = opts.registry ?? new Registry();
  const metrics = createMetrics(registry);
  // Every write goes through the leader's fence once there is an election: a replica that is not the leader, or
  // that was paused past its renew deadline, sends nothing that changes the cluster.
  let mayWrite = () => true;
  const kc = new RateLimitedKubeConfig(opts.kc, {
    limiter: new TokenBucket({ qps: opts.qps ?? 50, burst: opts.burst ?? 100 }),
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

  const base = informerBase(kc, logger, registry);
  const caches = sharedCaches(base);
  const { experiments, classes, clusters, pods, nodes } = caches;
  // Run tokens are derived from this key, never read back from the Secrets handed to workers: the operator needs
  // no read access to Secrets outside its own namespace.
  const operatorNamespace = opts.leaseNamespace ?? process.env.POD_NAMESPACE ?? 'default';
  const signingKey = new SigningKey({ informerBase: base, core, namespace: opts.signingKey?.namespace ?? operatorNamespace, name: opts.signingKey?.name, logger });

  const state = { leading: false, stopped: false };
  const isLeader = () => state.leading;
  const exps = wireExperiments(
    {
      core,
      custom,
      caches,
      recorder,
      metrics,
      registry,
      logger,
      ...runTokenIssuer(signingKey),
      reportUrl: opts.reportUrl ?? 'http://arena-operator.arena-system.svc:8080',
      reportCa: opts.http?.tls ? { configMap: opts.http.tls.caConfigMapName ?? DEFAULT_CA_CONFIGMAP, ensure: (ns) => apiTls!.ensureCa(ns) } : undefined,
      manifestErrors: (manifest) => manifestErrors(manifest, { at: 'spec.manifest', validator: manifestValidator }),
    },
    { workers: opts.workers, progressIntervalMs: opts.progressIntervalMs, starvationMs: opts.starvationMs, nodeLostAfterMs: opts.nodeLostAfterMs, preemption: opts.preemption },
  );
  const clusterStatus = wireClusterStatus({ informerBase: base, custom, core, experiments, classes, clusters, nodes, pods, capacity: exps.capacity, metrics, registry, logger, isLeader }, opts.clusterStatus);
  const webhook = opts.webhook ? await wireWebhook({ kc, informerBase: base, experiments, classes, clusters, metrics, registry, logger, manifestValidator }, opts.webhook) : undefined;
  const apiKey = async (uid: string, rotation: number) => agentApiKey(await signingKey.ensure(), uid, rotation);
  const deployments = wireDeployments({ kc, informerBase: base, core, custom, experiments, classes, clusters, recorder, apiKey, metrics, registry, logger }, opts.deployments);

  const health = { healthy: () => !state.stopped, ready: (): Readiness => ({ ready: false, reason: 'starting' }) };
  const reports = reportRouter({ isLeader, logger, registry, signingKey, experiments, inbox: exps.inbox });
  const { http, ops } = await startServers(opts, logger, registry, health, [reports, ...clusterStatus.routers]);
  const workerNamespaces = function* () {
    for (const p of pods.list()) if (p.metadata?.labels?.[labels.component] === 'worker' && p.metadata.namespace) yield p.metadata.namespace;
  };
  const apiTls = opts.http?.tls ? wireApiTls({ core, informerBase: base, namespace: operatorNamespace, server: http, workerNamespaces, metrics, registry, logger }, opts.http.tls) : undefined;
  const informers = [experiments, classes, clusters, pods, nodes, caches.priorityClasses, signingKey.informer, ...clusterStatus.informers, ...(webhook?.informers ?? []), ...deployments.informers, ...(apiTls?.informers ?? [])];
  health.ready = () => {
    const pending = informers.filter((i) => !i.hasSynced()).length;
    if (pending > 0) return { ready: false, reason: `${pending} cache(s) not synced yet` };
    // A replica that cannot complete a handshake must not get traffic from the Service.
    if (apiTls && !http.certificate()) return { ready: false, reason: `no serving certificate loaded from Secret ${apiTls.secret.namespace}/${apiTls.secret.name} yet` };
    return { ready: true };
  };
  const hello = await platformHello;
  if ('error' in hello) {
    await Promise.all([http.close(), ops.close(), webhook?.stop()]);
    if (!opts.manifestValidator) manifestValidator.close();
    throw hello.error;
  }
  logger.info('Manifests are checked by the Arena platform\'s own validator', { agilerlArena: hello.platform.manifestVersion, manifestApiVersion: hello.platform.apiVersion });

  await Promise.all(informers.map((i) => i.start()));
  logger.info('caches synced', { experiments: experiments.size(), pods: pods.size(), nodes: nodes.size() });

  const parts = [exps, clusterStatus, ...(webhook ? [webhook] : []), deployments, ...(apiTls ? [apiTls] : [])];
  const startLeading = () => {
    state.leading = true;
    metrics.leaderElectionMasterStatus.set({ name: 'arena-operator' }, 1);
    logger.info('leading', { identity });
    // Made now rather than at the first admission, so the first gang does not wait on it; failures are retried there.
    signingKey.ensure().catch((err: unknown) => logger.warn('signing key not ready', { secret: signingKey.ref, error: (err as Error).message }));
    for (const part of parts) part.startLeading();
  };
  const stop = async () => {
    if (state.stopped) return;
    state.stopped = true;
    for (const part of parts) await part.stop();
    if (!opts.manifestValidator) manifestValidator.close();
    await elector?.stop();
    for (const i of informers) i.stop();
    await recorder.flush?.();
    await http.close();
    await ops.close();
  };
  const elector = opts.leaderElect === false ? undefined : leaderElector(opts, operatorNamespace, identity, metrics, logger);
  if (elector) {
    mayWrite = () => elector.holdsLease();
    void elector.run({
      onStartedLeading: startLeading,
      onStoppedLeading: () => {
        const was = state.leading;
        state.leading = false;
        metrics.leaderElectionMasterStatus.set({ name: 'arena-operator' }, 0);
        if (was && !state.stopped) {
          logger.warn('lost leadership', { identity });
          (opts.onLostLeadership ?? (() => void stop()))();
        }
      },
    });
  } else {
    startLeading();
  }

  const { admission, inbox, capacity, controller } = exps;
  return { http, ops, apiTls, isLeader, stop, internals: { admission, inbox, capacity, controller }, webhook, deployments };
}

type Readiness = { ready: boolean; reason?: string };

/** How the experiment controller gets run tokens: derived from the signing key, one per rank of an attempt. */
function runTokenIssuer(signingKey: SigningKey): Pick<ExperimentDeps, 'runTokens' | 'runTokenKey'> {
  return {
    runTokens: async (exp, a, workers) => {
      const key = await signingKey.ensure();
      const claims = { namespace: exp.metadata!.namespace!, name: exp.metadata!.name!, run: a.run, attempt: a.attempt };
      return { key: keyId(key), tokens: Array.from({ length: workers }, (_, worker) => issueRunToken(key, exp.metadata!.uid!, { ...claims, worker })) };
    },
    runTokenKey: () => {
      const key = signingKey.current();
      return key ? keyId(key) : undefined;
    },
  };
}

/** The runtime report API: workers' reports, checked against their run token, into the experiment's inbox. */
function reportRouter(d: { isLeader: () => boolean; logger: Logger; registry: Registry; signingKey: SigningKey; experiments: SharedCaches['experiments']; inbox: ReportInbox }) {
  const reportsTotal = new Counter({ name: 'arena_runtime_reports_total', help: 'Runtime reports received, by result.', labelNames: ['result'], registers: [d.registry] });
  return {
    path: '/runtime/v1',
    router: runtimeApiRouter({
      isLeader: d.isLeader,
      logger: d.logger,
      reportsTotal,
      checkToken: (token) => checkRunToken(token, d.signingKey.current(), (ns, name) => d.experiments.get(`${ns}/${name}`)?.metadata?.uid),
      accept: (report) => {
        const key = `${report.experiment.namespace}/${report.experiment.name}`;
        const exp = d.experiments.get(key);
        return d.inbox.accept(key, { run: exp?.status?.run ?? 0, attempt: exp?.status?.attempt ?? 0 }, report);
      },
    }),
  };
}

/** The API server (reports, status API; TLS when configured) and the plain ops server (health, metrics). */
async function startServers(
  opts: OperatorOptions,
  logger: Logger,
  registry: Registry,
  health: { healthy: () => boolean; ready: () => Readiness },
  routers: NonNullable<Parameters<typeof startHttpServer>[0]['routers']>,
): Promise<{ http: RunningServer; ops: OpsServer }> {
  const ready = () => health.ready();
  const http = await startHttpServer({ host: opts.http?.host, port: opts.http?.port ?? 8080, tls: !!opts.http?.tls, logger, healthy: health.healthy, ready, routers });
  const ops = await startOpsServer({ host: opts.ops?.host ?? opts.http?.host, port: opts.ops?.port ?? 0, registry, logger, healthy: health.healthy, ready }).catch(async (err: unknown) => {
    await http.close();
    throw err;
  });
  return { http, ops };
}

function leaderElector(opts: OperatorOptions, namespace: string, identity: string, metrics: Metrics, logger: Logger): LeaderElector {
  return new LeaderElector({
    // Its own client and budget, as controller-runtime gives the lease: a renewal never waits behind a burst of
    // reconciles or webhook lookups, which could make the leader miss its deadline and hand the same backlog to
    // the standby.
    kc: new RateLimitedKubeConfig(opts.kc, { limiter: new TokenBucket({ qps: 5, burst: 10 }), metrics }),
    namespace,
    name: opts.leaseName ?? 'arena-operator',
    identity,
    logger,
    ...opts.leaderElection,
  });
}

export type { ExperimentStatus };
