// The operator binary: configuration from flags and environment, then startOperator until SIGTERM.
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { startOperator } from './operator.ts';
import type { WebhookConfig } from './webhook/wiring.ts';
import { createLogger } from './observability/log.ts';
import { apiTransport } from './server/transport.ts';

const usage = `arena-operator [options]

Runs the Arena on-prem operator against the cluster of $KUBECONFIG (or in-cluster credentials).

  --port N                  HTTPS port of the runtime report API, the status API and health (default 8080,
                            env ARENA_HTTP_PORT)
  --metrics-port N          plain-HTTP port of /metrics, /healthz and /readyz (default 8081, env ARENA_METRICS_PORT)
  --host ADDR               address to listen on (default 0.0.0.0)
  --report-url URL          https URL worker pods use to reach this operator (env ARENA_REPORT_URL); the made
                            certificate carries its host (and <host>.cluster.local for a .svc name)
  --api-tls-secret N        Secret (in the Lease's namespace) with the API's tls.crt, tls.key and ca.crt
                            (env ARENA_API_TLS_SECRET, default arena-operator-api-tls); the leader makes and
                            rotates it unless --api-tls-secret-supplied
  --api-tls-secret-supplied the Secret is an administrator's (cert-manager, a corporate CA): only read it
  --api-tls-dns-name NAME   another name for the made certificate (repeatable)
  --ca-configmap N          ConfigMap with the API's CAs the operator keeps in each worker namespace (env
                            ARENA_CA_CONFIGMAP, default arena-operator-ca)
  --insecure-plain-http     serve the API over plain HTTP; only with an http://127.0.0.1 --report-url, for an
                            operator on loopback in local development
  --lease-namespace NS      namespace of the leader-election Lease (env POD_NAMESPACE, default default)
  --lease-name NAME         name of the Lease (env ARENA_LEASE_NAME, default arena-operator; one per release)
  --lease-duration-ms N     leader lease duration (default 15000)
  --qps N --burst N         client-side API rate limit (default 50 / 100)
  --workers N               concurrent experiment reconciles (default 64)
  --node-lost-after-seconds N
                            how long a worker's node may be NotReady before its gang is retried on other nodes
                            (default 60; a deleted node counts at once)
  --preemption-min-run-seconds N
                            a running experiment may be preempted for a higher-priority one only after its
                            attempt has run this long (default 300)
  --preemption-deadline-seconds N
                            the time a preempted experiment's workers get to write a checkpoint and exit
                            (default 120, or its stopGracePeriodSeconds when lower)
  --no-preemption           never preempt: higher priority only goes first in the queue
  --signing-key-secret N    Secret (in the Lease's namespace) holding the key run tokens and agent API keys
                            derive from; created on first use (env ARENA_SIGNING_KEY_SECRET,
                            default arena-operator-signing-key)
  --webhook-service-name S  turns the admission webhook on: the Service in front of --webhook-port
                            (env ARENA_WEBHOOK_SERVICE_NAME)
  --webhook-url URL         turns it on for an operator outside the cluster: the https URL the apiserver dials
  --webhook-port N          HTTPS port of the webhook (default 9443)
  --webhook-namespace NS    namespace of the Service and the certificate Secret (default POD_NAMESPACE)
  --webhook-config-name N   name of the webhook configurations (default arena-operator)
  --webhook-secret-name N   the serving-certificate Secret (default <service>-tls)
  -h, --help                this text
`;

function intOption(values: Record<string, unknown>, name: string, env?: string): number | undefined {
  const raw = (values[name] as string | undefined) ?? (env ? process.env[env] : undefined);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a whole number, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

/** The webhook is on only when told where the apiserver reaches it: a Service name or a URL. */
function webhookOptions(values: Record<string, unknown>): WebhookConfig | undefined {
  const serviceName = (values['webhook-service-name'] as string | undefined) ?? process.env.ARENA_WEBHOOK_SERVICE_NAME;
  const url = values['webhook-url'] as string | undefined;
  if (!serviceName && !url) return undefined;
  return {
    serviceName,
    url,
    // Same address as the HTTP server, so replicas sharing a host (tests, the local node) do not collide.
    host: values.host as string | undefined,
    port: intOption(values, 'webhook-port') ?? 9443,
    namespace: values['webhook-namespace'] as string | undefined,
    configName: values['webhook-config-name'] as string | undefined,
    secretName: values['webhook-secret-name'] as string | undefined,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'report-url': { type: 'string' },
      'metrics-port': { type: 'string' },
      'api-tls-secret': { type: 'string' },
      'api-tls-secret-supplied': { type: 'boolean' },
      'api-tls-dns-name': { type: 'string', multiple: true },
      'ca-configmap': { type: 'string' },
      'insecure-plain-http': { type: 'boolean' },
      'lease-namespace': { type: 'string' },
      'lease-name': { type: 'string' },
      'lease-duration-ms': { type: 'string' },
      qps: { type: 'string' },
      burst: { type: 'string' },
      workers: { type: 'string' },
      'node-lost-after-seconds': { type: 'string' },
      'preemption-min-run-seconds': { type: 'string' },
      'preemption-deadline-seconds': { type: 'string' },
      'no-preemption': { type: 'boolean' },
      'signing-key-secret': { type: 'string' },
      'webhook-service-name': { type: 'string' },
      'webhook-url': { type: 'string' },
      'webhook-port': { type: 'string' },
      'webhook-namespace': { type: 'string' },
      'webhook-config-name': { type: 'string' },
      'webhook-secret-name': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  const logger = createLogger({ component: 'operator' });
  const transport = apiTransport({
    reportUrl: values['report-url'] ?? process.env.ARENA_REPORT_URL,
    insecurePlainHttp: values['insecure-plain-http'],
    tlsSecret: values['api-tls-secret'] ?? process.env.ARENA_API_TLS_SECRET,
    tlsSecretSupplied: values['api-tls-secret-supplied'],
    tlsDnsNames: values['api-tls-dns-name'],
    caConfigMap: values['ca-configmap'] ?? process.env.ARENA_CA_CONFIGMAP,
  });
  if (!transport.ok) {
    console.error(transport.error);
    process.exit(2);
  }
  if (!transport.tls) logger.warn('serving the API over plain HTTP on loopback: for local development only', { reportUrl: transport.reportUrl });
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const leaseDurationMs = intOption(values, 'lease-duration-ms');
  const nodeLostAfterSeconds = intOption(values, 'node-lost-after-seconds');
  const op = await startOperator({
    kc,
    logger,
    http: { host: values.host, port: intOption(values, 'port', 'ARENA_HTTP_PORT') ?? 8080, tls: transport.tls },
    ops: { host: values.host, port: intOption(values, 'metrics-port', 'ARENA_METRICS_PORT') ?? 8081 },
    reportUrl: transport.reportUrl,
    leaseNamespace: values['lease-namespace'],
    leaseName: values['lease-name'] ?? process.env.ARENA_LEASE_NAME,
    leaderElection: leaseDurationMs
      ? { leaseDurationMs, renewDeadlineMs: Math.round(leaseDurationMs * 0.66), retryPeriodMs: Math.max(200, Math.round(leaseDurationMs / 7)) }
      : undefined,
    qps: intOption(values, 'qps'),
    burst: intOption(values, 'burst'),
    workers: intOption(values, 'workers'),
    nodeLostAfterMs: nodeLostAfterSeconds === undefined ? undefined : nodeLostAfterSeconds * 1000,
    preemption: {
      enabled: values['no-preemption'] !== true,
      minRunTimeSeconds: intOption(values, 'preemption-min-run-seconds'),
      checkpointDeadlineSeconds: intOption(values, 'preemption-deadline-seconds'),
    },
    webhook: webhookOptions(values),
    signingKey: { name: values['signing-key-secret'] ?? process.env.ARENA_SIGNING_KEY_SECRET },
    // A replica that lost the lease exits; its restart starts from clean caches as a standby.
    onLostLeadership: () => process.exit(1),
  });
  logger.info('operator started', { url: op.http.url, metrics: op.ops.url, tls: !!transport.tls });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    op.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('shutdown failed', { error: (err as Error).message });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  console.error(JSON.stringify({ level: 'error', msg: 'operator failed to start', error: err instanceof Error ? err.message : String(err) }));
  process.exit(1);
});
