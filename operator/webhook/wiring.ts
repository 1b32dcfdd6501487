// Wires the admission webhook into the operator: the HTTPS server on every replica, the serving-certificate Secret
// watched by every replica (each serves whatever the Secret holds, reloaded in place), and, on the leader only,
// the certificate controller that creates and rotates the Secret and keeps the webhook configurations' caBundle
// current. startOperator calls wireWebhook once when a webhook is configured.
import { X509Certificate } from 'node:crypto';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type HttpLibrary,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from 'winston';
import { GROUP, VERSION, kinds, type KindName } from '../api/v1alpha1/index.ts';
import type { Experiment } from '../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../api/v1alpha1/trainingcluster.ts';
import { Controller } from '../kube/controller.ts';
import { isNotFound } from '../kube/errors.ts';
import { Informer, type InformerMetrics } from '../kube/informer.ts';
import { TokenBucket } from '../kube/ratelimit.ts';
import { namedSecretInformer, type NamedSecret } from '../kube/named-secret.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { PlatformValidator } from '../api/platform/verdict.ts';
import type { ClusterView } from './admission.ts';
import { CertReconciler } from './cert-controller.ts';
import type { WebhookEndpoint } from './configurations.ts';
import { startWebhookServer, type WebhookServer } from './server.ts';
import { SECRET_KEYS, defaultPolicy, fingerprint, type CertPolicy } from './serving-cert.ts';

export interface WebhookConfig {
  /** HTTPS port of the webhook server. Default 9443. */
  port?: number;
  /** API reads per second that reviews may cause (a reference missing from the cache), and their burst. Default 5 and 20. */
  lookupQps?: number;
  lookupBurst?: number;
  host?: string;
  /** Namespace of the Service and the certificate Secret. Default $POD_NAMESPACE, else default. */
  namespace?: string;
  /** The Service in front of the webhook port (the apiserver calls <service>.<namespace>.svc). */
  serviceName?: string;
  /** The Service's port. Default 443. */
  servicePort?: number;
  /** Instead of a Service: the https base URL the apiserver dials (an operator outside the cluster, tests). */
  url?: string;
  /** Name of both webhook configurations. Default arena-operator. */
  configName?: string;
  /** The Secret holding the serving certificate and CAs. Default <serviceName>-tls, else arena-operator-webhook-tls. */
  secretName?: string;
  /** Extra names on the certificate. An IP or host in `url` is added by itself. */
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Rotation timing; see serving-cert.ts. */
  certificate?: Partial<Omit<CertPolicy, 'dnsNames' | 'ipAddresses'>>;
  /** false leaves the configurations to someone else (the Secret is still managed). Default true. */
  manageConfigurations?: boolean;
  bodyLimitBytes?: number;
}

export interface WebhookDeps {
  kc: KubeConfig;
  informerBase: { kc: KubeConfig; logger: Logger; transport?: HttpLibrary; metrics?: InformerMetrics };
  experiments: Informer<Experiment>;
  classes: Informer<ResourceClass>;
  clusters: Informer<TrainingCluster>;
  metrics: Metrics;
  registry: Registry;
  logger: Logger;
  manifestValidator?: PlatformValidator;
}

export interface WebhookParts {
  server: WebhookServer;
  /** The Secret and configuration informers; the operator starts, syncs and stops them with its own. */
  informers: { start(): Promise<void>; stop(): void; hasSynced(): boolean }[];
  /** The certificate Secret's namespace/name and the configurations' name. */
  secret: { namespace: string; name: string };
  configName: string;
  startLeading(): void;
  /** Asks the leader for a new CA and serving certificate now (a no-op on other replicas). */
  rotateNow(): void;
  stop(): Promise<void>;
}

type SecretLean = NamedSecret<{ cert?: string; key?: string }>;
type ConfigLean = { metadata: { name?: string; resourceVersion?: string } };

const LOOKUP_TIMEOUT_MS = 1500;

/** The names the certificate needs, from the endpoint and the extras asked for. */
export function certificateNames(config: WebhookConfig, namespace: string): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames = [...(config.dnsNames ?? [])];
  const ipAddresses = [...(config.ipAddresses ?? [])];
  if (config.serviceName) dnsNames.push(`${config.serviceName}.${namespace}.svc`, `${config.serviceName}.${namespace}.svc.cluster.local`);
  if (config.url) {
    const host = new URL(config.url).hostname.replace(/^\[|\]$/g, '');
    if (/^[\d.]+$/.test(host) || host.includes(':')) ipAddresses.push(host);
    else dnsNames.push(host);
  }
  return { dnsNames: [...new Set(dnsNames)], ipAddresses: [...new Set(ipAddresses)] };
}

export function endpointOf(config: WebhookConfig, namespace: string): WebhookEndpoint {
  if (config.url) {
    if (!config.url.startsWith('https://')) throw new Error(`webhook url must be https, got ${config.url}`);
    return { url: config.url };
  }
  if (!config.serviceName) throw new Error('a webhook needs serviceName (in a cluster) or url (outside one)');
  return { service: { namespace, name: config.serviceName, port: config.servicePort ?? 443 } };
}

export async function wireWebhook(d: WebhookDeps, config: WebhookConfig): Promise<WebhookParts> {
  const log = d.logger.child({ component: 'webhook' });
  const namespace = config.namespace ?? process.env.POD_NAMESPACE ?? 'default';
  const endpoint = endpointOf(config, namespace);
  const names = certificateNames(config, namespace);
  if (names.dnsNames.length + names.ipAddresses.length === 0) throw new Error('the webhook certificate needs at least one name');
  const secretRef = { namespace, name: config.secretName ?? `${config.serviceName ?? 'arena-operator-webhook'}-tls` };
  const configName = config.configName ?? 'arena-operator';
  const policy: CertPolicy = { ...defaultPolicy, ...config.certificate, ...names };

  const custom = d.kc.makeApiClient(CustomObjectsApi);
  const lookups = new TokenBucket({ qps: config.lookupQps ?? 5, burst: config.lookupBurst ?? 20 });
  const view: ClusterView = {
    async exists(kind: KindName, name: string, ns?: string) {
      const cache = kind === 'ResourceClass' ? d.classes : kind === 'TrainingCluster' ? d.clusters : kind === 'Experiment' ? d.experiments : undefined;
      if (cache?.get(ns ? `${ns}/${name}` : name)) return true;
      // A miss may be cache lag (GitOps applies the class and the experiment a moment apart): ask the API, within
      // a budget of its own, so that a flood of reviews naming missing objects cannot queue reads in front of the
      // operator's own work. Past the budget a synced cache answers alone; at worst that is a warning about an
      // object created a moment ago, and a warning never refuses anything.
      if (!lookups.tryTake()) return cache?.hasSynced() ? false : undefined;
      const base = { group: GROUP, version: VERSION, plural: kinds[kind].plural, name };
      const read = ns ? custom.getNamespacedCustomObject({ ...base, namespace: ns }) : custom.getClusterCustomObject(base);
      const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), LOOKUP_TIMEOUT_MS).unref());
      return Promise.race([
        read.then(
          () => true,
          (err: unknown) => (isNotFound(err) ? false : undefined),
        ),
        timeout,
      ]);
    },
    enabledResourceClasses() {
      if (!d.classes.hasSynced()) return undefined;
      return d.classes
        .list()
        .filter((c) => c.spec?.enabled !== false)
        .map((c) => c.metadata!.name!);
    },
  };

  const server = await startWebhookServer({ host: config.host, port: config.port ?? 9443, view, logger: d.logger, registry: d.registry, bodyLimitBytes: config.bodyLimitBytes, manifestValidator: d.manifestValidator });

  const expiry = new Gauge({
    name: 'arena_webhook_certificate_expiry_timestamp_seconds',
    help: 'When the serving certificate this replica presents expires (Unix time).',
    registers: [d.registry],
  });
  const rotations = new Counter({
    name: 'arena_webhook_certificate_rotations_total',
    help: 'Serving certificate steps taken by the leader, by action (issue, stage, promote, drop-previous) and reason.',
    labelNames: ['action', 'reason'],
    registers: [d.registry],
  });

  // Only the serving pair is kept in memory; the staged pair and CAs are the leader's business.
  const secrets = namedSecretInformer(d.informerBase, { namespace, name: secretRef.name }, (data) => {
    const text = (k: string) => (data?.[k] ? Buffer.from(data[k], 'base64').toString('utf8') : undefined);
    return { cert: text(SECRET_KEYS.cert), key: text(SECRET_KEYS.key) };
  });
  const load = (s: SecretLean) => {
    if (!s.cert || !s.key || s.cert === server.certificate()) return;
    try {
      server.setCertificate({ certPem: s.cert, keyPem: s.key });
      expiry.set(new Date(new X509Certificate(s.cert).validTo).getTime() / 1000);
      log.info('serving certificate loaded', { secret: `${secretRef.namespace}/${secretRef.name}`, fingerprint: fingerprint(s.cert) });
    } catch (err) {
      // A broken pair in the Secret: keep serving the last good one; the leader replaces what it cannot parse.
      log.error('serving certificate not loaded', { secret: `${secretRef.namespace}/${secretRef.name}`, error: (err as Error).message });
    }
  };

  const reconciler = new CertReconciler({
    core: d.kc.makeApiClient(CoreV1Api),
    admission: d.kc.makeApiClient(AdmissionregistrationV1Api),
    secret: secretRef,
    configName,
    endpoint,
    policy,
    commonName: config.serviceName ? `${config.serviceName}.${namespace}.svc` : names.dnsNames[0] ?? names.ipAddresses[0]!,
    manageConfigurations: config.manageConfigurations,
    logger: d.logger,
    onStep: (p) => rotations.inc({ action: p.action, reason: 'reason' in p ? p.reason : '' }),
  });
  const controller = new Controller({ name: 'webhook-certificate', reconciler, workers: 1, metrics: d.metrics, logger: d.logger });
  const key = `${secretRef.namespace}/${secretRef.name}`;
  const wake = () => controller.enqueue(key);
  secrets.on('add', (s) => (load(s), wake())).on('update', (s) => (load(s), wake())).on('delete', wake);

  // Someone else editing the configurations (a Helm upgrade resetting caBundle) wakes the leader to put them back.
  const configInformer = (plural: string) =>
    new Informer<ConfigLean>({
      ...d.informerBase,
      group: 'admissionregistration.k8s.io',
      version: 'v1',
      plural,
      fieldSelector: `metadata.name=${configName}`,
      transform: (o: KubernetesObject) => ({ metadata: { name: o.metadata?.name, resourceVersion: o.metadata?.resourceVersion } }),
    });
  const configInformers = config.manageConfigurations === false ? [] : [configInformer('validatingwebhookconfigurations'), configInformer('mutatingwebhookconfigurations')];
  for (const i of configInformers) i.on('add', wake).on('update', wake).on('delete', wake);

  let leading = false;
  return {
    server,
    informers: [secrets, ...configInformers],
    secret: secretRef,
    configName,
    startLeading() {
      leading = true;
      controller.start();
      wake();
    },
    rotateNow() {
      if (!leading) return;
      reconciler.requestRotation();
      wake();
    },
    async stop() {
      await controller.stop();
      await server.close();
    },
  };
}
