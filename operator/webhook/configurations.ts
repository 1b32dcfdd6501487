// The ValidatingWebhookConfiguration and MutatingWebhookConfiguration the operator keeps for itself: which requests
// the apiserver sends, where, and which CAs it trusts on the way.
import type { V1MutatingWebhookConfiguration, V1ValidatingWebhookConfiguration, AdmissionregistrationV1WebhookClientConfig } from '@kubernetes/client-node';
import { GROUP, VERSION, KIND_NAMES, kinds } from '../api/v1alpha1/index.ts';
import { splitBundle, normalizePem } from './serving-cert.ts';

export const WEBHOOK_PATHS = { validate: '/validate', mutate: '/mutate' } as const;
export const WEBHOOK_NAMES = { validate: `validate.${GROUP}`, mutate: `default.${GROUP}` } as const;

/** Where the apiserver reaches the webhook. */
export type WebhookEndpoint =
  /** In a cluster: the Service in front of the operator pods' webhook port. */
  | { service: { namespace: string; name: string; port: number } }
  /** Outside one (development, tests): the https base URL the apiserver dials, e.g. https://127.0.0.1:9443. */
  | { url: string };

/**
 * Ignore, on purpose. Every rule the webhook can refuse is also in the CRD (schema and CEL) that the apiserver
 * enforces itself, and the controllers validate again and report problems in status; the webhook adds warnings,
 * defaults and a guard against an outdated CRD. Fail would turn an operator outage (a rollout, a crash loop, a
 * certificate problem) into "nobody can write or finalize Arena objects", which blocks GitOps syncs and even
 * deletions waiting for finalizers to be removed, for no rule that is not already enforced elsewhere.
 */
export const FAILURE_POLICY = 'Ignore';
export const TIMEOUT_SECONDS = 5;

const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'arena-operator', 'app.kubernetes.io/component': 'webhook' };

function clientConfig(endpoint: WebhookEndpoint, path: string, caBundlePem: string): AdmissionregistrationV1WebhookClientConfig {
  const caBundle = Buffer.from(caBundlePem).toString('base64');
  if ('url' in endpoint) return { url: `${endpoint.url.replace(/\/+$/, '')}${path}`, caBundle };
  return { service: { ...endpoint.service, path }, caBundle };
}

const rules = [
  {
    apiGroups: [GROUP],
    // With matchPolicy Equivalent a request for another version of these resources is converted to this one,
    // the only version the operator's validator knows.
    apiVersions: [VERSION],
    operations: ['CREATE', 'UPDATE'],
    resources: KIND_NAMES.map((k) => kinds[k].plural),
    scope: '*',
  },
];

export interface Configurations {
  validating: V1ValidatingWebhookConfiguration;
  mutating: V1MutatingWebhookConfiguration;
}

export function desiredConfigurations(name: string, endpoint: WebhookEndpoint, caBundlePem: string): Configurations {
  const common = {
    rules,
    matchPolicy: 'Equivalent',
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    timeoutSeconds: TIMEOUT_SECONDS,
    failurePolicy: FAILURE_POLICY,
  };
  return {
    validating: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name, labels: { ...MANAGED_BY } },
      webhooks: [{ name: WEBHOOK_NAMES.validate, clientConfig: clientConfig(endpoint, WEBHOOK_PATHS.validate, caBundlePem), ...common }],
    },
    mutating: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name, labels: { ...MANAGED_BY } },
      webhooks: [
        {
          name: WEBHOOK_NAMES.mutate,
          clientConfig: clientConfig(endpoint, WEBHOOK_PATHS.mutate, caBundlePem),
          ...common,
          reinvocationPolicy: 'Never',
        },
      ],
    },
  };
}

/**
 * Whether `actual` already says everything `desired` says. Fields the apiserver fills in (namespaceSelector,
 * objectSelector, …) are not ours to compare; labels others add are kept.
 */
export function covers(actual: unknown, desired: unknown): boolean {
  if (Array.isArray(desired)) {
    return Array.isArray(actual) && actual.length === desired.length && desired.every((d, i) => covers(actual[i], d));
  }
  if (typeof desired === 'object' && desired !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return false;
    return Object.entries(desired).every(([k, v]) => v === undefined || covers((actual as Record<string, unknown>)[k], v));
  }
  return actual === desired;
}

type AnyConfiguration = { webhooks?: { clientConfig?: { caBundle?: string } }[] };

/** The CA certificates a configuration's webhooks all trust (the intersection), as normalized PEM. */
export function trustedCas(config: AnyConfiguration | undefined): string[] {
  const hooks = config?.webhooks ?? [];
  if (hooks.length === 0) return [];
  const sets = hooks.map((h) => new Set(splitBundle(Buffer.from(h.clientConfig?.caBundle ?? '', 'base64').toString('utf8'))));
  return [...sets[0]!].filter((pem) => sets.every((s) => s.has(pem)));
}

export function trusts(config: AnyConfiguration | undefined, caPem: string): boolean {
  return trustedCas(config).includes(normalizePem(caPem));
}
