// TLS for the operator's API server (runtime reports, status API) and the CA bundle worker pods verify it with.
//
// The serving pair lives in a Secret in the operator's namespace. By default the leader makes and rotates it with
// the webhook's certificate policy (webhook/serving-cert.ts: a new CA per rotation, staged before it is served);
// with `manage: false` an administrator supplies it (cert-manager, a corporate CA) and the operator only reads it.
// Every replica serves what the Secret holds, reloaded in place.
//
// Workers run in tenant namespaces and can only mount ConfigMaps of their own namespace, so the leader keeps one
// ConfigMap (`ca.crt`, like kube-root-ca.crt) in each namespace where it runs workers, holding every CA the
// Secret says to trust. A staged CA is promoted only once every such namespace holds it, so a worker never meets
// a leaf it cannot verify; the runtime re-reads the file before each report, and the kubelet refreshes it in place.
import type { CoreV1Api, KubernetesObject, V1ConfigMap } from '@kubernetes/client-node';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'winston';
import { Controller } from '../kube/controller.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../kube/errors.ts';
import { Informer, type InformerOptions } from '../kube/informer.ts';
import { namedSecretInformer, type NamedSecret } from '../kube/named-secret.ts';
import type { Metrics } from '../observability/metrics.ts';
import { CertReconciler } from '../webhook/cert-controller.ts';
import { SECRET_KEYS, defaultPolicy, fingerprint, normalizePem, splitBundle, type CertPolicy } from '../webhook/serving-cert.ts';
import type { RunningServer } from './http.ts';

export interface ApiTlsConfig {
  /** The Secret (in the operator's namespace) with tls.crt, tls.key and ca.crt. Default arena-operator-api-tls. */
  secretName?: string;
  /** false: the Secret is supplied by an administrator and only read. Default true: the leader makes and rotates it. */
  manage?: boolean;
  /** Names the made certificate carries: the API Service's DNS names (report URL host), or a test's loopback IP. */
  dnsNames?: string[];
  ipAddresses?: string[];
  /** The ConfigMap kept in every namespace that runs workers, holding the CAs under ca.crt. Default arena-operator-ca. */
  caConfigMapName?: string;
  /** Rotation timing of a made certificate; see webhook/serving-cert.ts. */
  certificate?: Partial<Omit<CertPolicy, 'dnsNames' | 'ipAddresses'>>;
}

export const CA_CONFIGMAP_KEY = 'ca.crt';
export const DEFAULT_API_TLS_SECRET = 'arena-operator-api-tls';
export const DEFAULT_CA_CONFIGMAP = 'arena-operator-ca';
const COMPONENT = 'report-ca';

/**
 * How long a CA is published before its leaf is served: the kubelet refreshes a mounted ConfigMap within its sync
 * period plus its cache TTL (a minute each by default).
 */
const DEFAULT_PROPAGATION_MS = 3 * 60_000;

export interface ApiTlsDeps {
  core: CoreV1Api;
  informerBase: Pick<InformerOptions<never>, 'kc' | 'logger' | 'transport' | 'metrics'>;
  namespace: string;
  server: RunningServer;
  /** Namespaces that have worker pods now: every one must trust a CA before its leaf is served. */
  workerNamespaces: () => Iterable<string>;
  metrics: Metrics;
  registry: Registry;
  logger: Logger;
}

export interface ApiTlsParts {
  informers: { start(): Promise<void>; stop(): void; hasSynced(): boolean }[];
  secret: { namespace: string; name: string };
  caConfigMapName: string;
  /** Creates or updates the CA ConfigMap in `namespace`; called before each attempt's pods are created. */
  ensureCa(namespace: string): Promise<void>;
  startLeading(): void;
  stop(): Promise<void>;
}

type ServingLean = NamedSecret<{ cert?: string; key?: string; bundle?: string; hasCa: boolean }>;
type CaMapLean = { metadata: { name?: string; namespace?: string; resourceVersion?: string }; bundle?: string };

/** A clear refusal for a Secret that cannot serve: which key is missing and what to put there. */
export function servingSecretProblem(s: Pick<ServingLean, 'cert' | 'key' | 'hasCa'> | undefined, ref: string, managed: boolean): string | undefined {
  if (!s) return managed ? `Secret ${ref} is not made yet` : `Secret ${ref} does not exist: create it (type kubernetes.io/tls) with tls.crt, tls.key and ca.crt, or let the operator make it (chart value apiTls.existingSecret empty)`;
  const missing = [!s.cert && SECRET_KEYS.cert, !s.key && SECRET_KEYS.key, !s.hasCa && SECRET_KEYS.ca].filter(Boolean);
  if (missing.length === 0) return undefined;
  return `Secret ${ref} has no ${missing.join(', ')}: ${SECRET_KEYS.ca} must hold the CA that signed ${SECRET_KEYS.cert} (worker pods verify the operator with it)`;
}

export function wireApiTls(d: ApiTlsDeps, config: ApiTlsConfig): ApiTlsParts {
  const log = d.logger.child({ component: 'api-tls' });
  const ref = { namespace: d.namespace, name: config.secretName ?? DEFAULT_API_TLS_SECRET };
  const refText = `${ref.namespace}/${ref.name}`;
  const caName = config.caConfigMapName ?? DEFAULT_CA_CONFIGMAP;
  const managed = config.manage !== false;
  const names = { dnsNames: [...new Set(config.dnsNames ?? [])], ipAddresses: [...new Set(config.ipAddresses ?? [])] };
  if (managed && names.dnsNames.length + names.ipAddresses.length === 0) {
    throw new Error('api TLS: a certificate the operator makes needs at least one name (the report URL\'s host); set dnsNames or ipAddresses');
  }
  const caWrites = new Counter({ name: 'arena_api_ca_configmap_writes_total', help: 'CA ConfigMaps written in worker namespaces, by action.', labelNames: ['action'], registers: [d.registry] });

  const secrets = namedSecretInformer(d.informerBase, ref, (data) => {
    const text = (k: string) => (data?.[k] ? Buffer.from(data[k], 'base64').toString('utf8') : undefined);
    const ca = text(SECRET_KEYS.ca);
    // A made Secret lists every CA to trust (current, staged, previous); an administrator's has its one CA.
    return { cert: text(SECRET_KEYS.cert), key: text(SECRET_KEYS.key), bundle: text(SECRET_KEYS.bundle) ?? ca, hasCa: !!ca };
  });
  const caMaps = new Informer<CaMapLean>({
    ...d.informerBase,
    group: '',
    version: 'v1',
    plural: 'configmaps',
    // Matched by RBAC against resourceNames: the operator lists and watches this one name only.
    fieldSelector: `metadata.name=${caName}`,
    transform: (o: KubernetesObject) => {
      const cm = o as V1ConfigMap;
      return { metadata: { name: cm.metadata?.name, namespace: cm.metadata?.namespace, resourceVersion: cm.metadata?.resourceVersion }, bundle: cm.data?.[CA_CONFIGMAP_KEY] };
    },
  });

  const current = () => secrets.get(`${ref.namespace}/${ref.name}`);
  const bundle = (): string => {
    const s = current();
    const problem = servingSecretProblem(s, refText, managed);
    if (problem || !s?.bundle) throw new Error(`the report API's CA is not available: ${problem ?? 'no CA'}`);
    return splitBundle(s.bundle).join('');
  };

  const load = (s: ServingLean) => {
    const problem = servingSecretProblem(s, refText, managed);
    if (problem) {
      log.error('API serving certificate not loaded', { secret: refText, error: problem });
      return;
    }
    if (s.cert === d.server.certificate()) return;
    try {
      d.server.setCertificate({ certPem: s.cert!, keyPem: s.key! });
      log.info('API serving certificate loaded', { secret: refText, fingerprint: fingerprint(s.cert!) });
    } catch (err) {
      // Keep serving the last good pair; a made Secret is replaced by the leader, a supplied one by its owner.
      log.error('API serving certificate not loaded', { secret: refText, error: (err as Error).message });
    }
  };

  let leading = false;
  // What this process wrote last, per namespace: the watch may lag a write, and the next ensure must not write
  // again for nothing. An event from the watch for that namespace clears it, so the cache is the truth again.
  const written = new Map<string, string>();
  const ensureCa = async (namespace: string): Promise<void> => {
    const want = bundle();
    if (written.get(namespace) === want) return;
    let have: CaMapLean | undefined = caMaps.get(`${namespace}/${caName}`);
    for (let tries = 0; tries < 3; tries++) {
      if (have?.bundle === want) return;
      const body: V1ConfigMap = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: caName,
          namespace,
          labels: { 'app.kubernetes.io/managed-by': 'arena-operator', 'app.kubernetes.io/component': COMPONENT },
          annotations: { 'arena.agilerl.com/ca-source': refText },
          ...(have?.metadata.resourceVersion ? { resourceVersion: have.metadata.resourceVersion } : {}),
        },
        data: { [CA_CONFIGMAP_KEY]: want },
      };
      try {
        if (have) await d.core.replaceNamespacedConfigMap({ namespace, name: caName, body });
        else await d.core.createNamespacedConfigMap({ namespace, body });
        caWrites.inc({ action: have ? 'update' : 'create' });
        written.set(namespace, want);
        log.info('report API CA published', { namespace, configMap: caName, cas: splitBundle(want).length });
        return;
      } catch (err) {
        // Someone else's write in between (a stale cache, a user): read what is there now and decide again.
        if (!(isAlreadyExists(err) || isConflict(err) || isNotFound(err))) throw err;
        const fresh = await d.core.readNamespacedConfigMap({ namespace, name: caName }).catch((e: unknown) => {
          if (isNotFound(e)) return undefined;
          throw e;
        });
        have = fresh ? { metadata: { name: caName, namespace, resourceVersion: fresh.metadata?.resourceVersion }, bundle: fresh.data?.[CA_CONFIGMAP_KEY] } : undefined;
      }
    }
    throw new Error(`the CA ConfigMap ${namespace}/${caName} kept changing under the operator; retrying`);
  };

  // Re-publishing runs on the leader whenever the bundle changes or a ConfigMap it needs goes away or is edited.
  let resyncing: Promise<void> | undefined;
  let again = false;
  const resync = () => {
    if (!leading) return;
    if (resyncing) {
      again = true;
      return;
    }
    resyncing = (async () => {
      do {
        again = false;
        for (const ns of new Set(d.workerNamespaces())) {
          try {
            await ensureCa(ns);
          } catch (err) {
            log.warn('report API CA not published yet', { namespace: ns, configMap: caName, error: (err as Error).message });
            again = true;
            await new Promise((r) => setTimeout(r, 2000).unref());
          }
          if (!leading) return;
        }
      } while (again && leading);
    })().finally(() => (resyncing = undefined));
  };

  const published = (caPem: string): boolean => {
    const ca = normalizePem(caPem);
    for (const ns of new Set(d.workerNamespaces())) {
      const have = caMaps.get(`${ns}/${caName}`);
      if (!have?.bundle || !splitBundle(have.bundle).includes(ca)) return false;
    }
    return true;
  };

  const reconciler = managed
    ? new CertReconciler({
        core: d.core,
        // No webhook configurations to keep: trust is published through the CA ConfigMaps (`published`).
        manageConfigurations: false,
        secret: ref,
        configName: '',
        endpoint: { url: 'https://unused' },
        policy: { ...defaultPolicy, propagationMs: DEFAULT_PROPAGATION_MS, ...config.certificate, ...names },
        commonName: names.dnsNames[0] ?? names.ipAddresses[0]!,
        logger: d.logger,
        component: 'api',
        published,
      })
    : undefined;
  const controller = reconciler ? new Controller({ name: 'api-certificate', reconciler, workers: 1, metrics: d.metrics, logger: d.logger }) : undefined;
  const wake = () => controller?.enqueue(refText);
  secrets
    .on('add', (s) => (load(s), wake(), resync()))
    .on('update', (s, old) => (load(s), wake(), s.bundle !== old.bundle && resync()))
    .on('delete', () => (wake(), log.warn('API serving certificate Secret deleted; serving the last one loaded', { secret: refText })));
  const onCaMap = (cm: CaMapLean) => {
    written.delete(cm.metadata.namespace ?? '');
    resync();
  };
  caMaps.on('update', onCaMap).on('delete', onCaMap);

  return {
    informers: [secrets, caMaps],
    secret: ref,
    caConfigMapName: caName,
    ensureCa,
    startLeading() {
      leading = true;
      controller?.start();
      wake();
      resync();
    },
    async stop() {
      leading = false;
      await controller?.stop();
      await resyncing;
    },
  };
}
