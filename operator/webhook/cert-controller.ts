// The leader's side of the serving certificate: keeps the Secret moving through serving-cert.ts's policy and the
// webhook configurations trusting the Secret's CA bundle. It reads both from the API, not from caches, so a
// step never repeats on a stale view (it runs a few times a day, on events and on its own timer). Replicas do not
// run it; they only watch the Secret and serve what it holds (wiring.ts).
import {
  type AdmissionregistrationV1Api,
  type CoreV1Api,
  type V1MutatingWebhookConfiguration,
  type V1Secret,
  type V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Reconciler, ReconcileResult } from '../kube/controller.ts';
import { isNotFound } from '../kube/errors.ts';
import { covers, desiredConfigurations, trusts, type WebhookEndpoint } from './configurations.ts';
import { caBundle, carryOut, fingerprint, plan, secretFromState, stateFromSecret, type CertPolicy, type CertState, type Mint, type Plan } from './serving-cert.ts';

export interface CertReconcilerOptions {
  core: CoreV1Api;
  /** Needed only when the reconciler keeps the webhook configurations (manageConfigurations). */
  admission?: AdmissionregistrationV1Api;
  secret: { namespace: string; name: string };
  /** Name of both webhook configurations. */
  configName: string;
  endpoint: WebhookEndpoint;
  policy: CertPolicy;
  /** Common name of the leaf, e.g. the Service's DNS name. */
  commonName: string;
  /** Keep the configurations' caBundle and rules current (default true). */
  manageConfigurations?: boolean;
  logger: Logger;
  now?: () => Date;
  /** Makes new pairs; default serving-cert.ts's newPair. */
  mint?: Mint;
  /** Called after each carried-out step, for metrics. */
  onStep?: (p: Plan, state: CertState) => void;
  /**
   * Whether the other parties that must trust a staged CA already hold it (for the report API: the CA ConfigMaps
   * worker pods mount). Checked besides the webhook configurations; default: nobody else.
   */
  published?: (caPem: string) => boolean;
  /** app.kubernetes.io/component of the Secret; default webhook. */
  component?: string;
}

const labelsFor = (component: string) => ({ 'app.kubernetes.io/managed-by': 'arena-operator', 'app.kubernetes.io/component': component });
// Long timers drift and the policy only needs to look again well before anything expires.
const MAX_RECHECK_MS = 60 * 60_000;
// More steps than any rotation takes in one go (issue → none, or stage → wait); a bound against a policy bug.
const MAX_STEPS = 4;

function decode(data: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

function withoutServerFields<T extends { metadata?: { managedFields?: unknown } }>(o: T): T {
  const copy = { ...o, metadata: { ...o.metadata } };
  delete copy.metadata.managedFields;
  return copy;
}

export class CertReconciler implements Reconciler {
  private forced = false;
  private readonly log: Logger;
  private readonly now: () => Date;

  constructor(private readonly opts: CertReconcilerOptions) {
    this.log = opts.logger.child({ controller: `${opts.component ?? 'webhook'}-certificate`, namespace: opts.secret.namespace, name: opts.secret.name });
    this.now = opts.now ?? (() => new Date());
  }

  /** The next reconcile stages a new CA and leaf, whatever their age. */
  requestRotation(): void {
    this.forced = true;
  }

  async reconcile(): Promise<ReconcileResult> {
    const { core, secret: ref } = this.opts;
    let secret = await core.readNamespacedSecret(ref).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    let state = stateFromSecret(decode(secret?.data), secret?.metadata?.annotations);
    let configs = await this.readConfigurations();
    const published = (ca: string) =>
      (!this.managesConfigurations() || (trusts(configs.validating, ca) && trusts(configs.mutating, ca))) && (this.opts.published?.(ca) ?? true);

    for (let step = 0; step < MAX_STEPS; step++) {
      const now = this.now();
      const p = plan(state, { now, policy: this.opts.policy, published, forced: this.forced });
      const next = await carryOut(state, p, { now, policy: this.opts.policy, commonName: this.opts.commonName, mint: this.opts.mint });
      if (!next) {
        const before = configs;
        configs = await this.ensureConfigurations(state, configs);
        if (p.action === 'wait' && configs !== before) continue; // the bundle was just published: plan again with it
        const at = p.action === 'wait' ? p.until : p.action === 'none' ? p.recheckAt : now;
        return { requeueAfterMs: Math.min(MAX_RECHECK_MS, Math.max(1, at.getTime() - this.now().getTime())) };
      }
      secret = await this.writeSecret(secret, next);
      // Any new pair answers a request to rotate, whatever else asked for it.
      if (p.action === 'stage' || p.action === 'issue') this.forced = false;
      state = next;
      this.log.info('serving certificate step', {
        action: p.action,
        reason: 'reason' in p ? p.reason : undefined,
        serving: state.current ? fingerprint(state.current.certPem) : undefined,
        staged: state.next ? fingerprint(state.next.certPem) : undefined,
        trustedCas: caBundle(state).match(/BEGIN CERTIFICATE/g)?.length ?? 0,
      });
      this.opts.onStep?.(p, state);
      configs = await this.ensureConfigurations(state, configs);
    }
    return { requeueAfterMs: 1000 };
  }

  private managesConfigurations(): boolean {
    return this.opts.manageConfigurations !== false;
  }

  private admission(): AdmissionregistrationV1Api {
    if (!this.opts.admission) throw new Error('CertReconciler: manageConfigurations needs the admissionregistration client');
    return this.opts.admission;
  }

  private async writeSecret(existing: V1Secret | undefined, state: CertState): Promise<V1Secret> {
    const { data, annotations } = secretFromState(state);
    const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
    const { core, secret: ref } = this.opts;
    if (!existing) {
      return core.createNamespacedSecret({
        namespace: ref.namespace,
        body: { metadata: { name: ref.name, namespace: ref.namespace, labels: labelsFor(this.opts.component ?? 'webhook'), annotations }, type: 'kubernetes.io/tls', data: encoded },
      });
    }
    const keptAnnotations = Object.fromEntries(Object.entries(existing.metadata?.annotations ?? {}).filter(([k]) => !k.startsWith('arena.agilerl.com/')));
    const body: V1Secret = {
      ...withoutServerFields(existing),
      metadata: {
        ...withoutServerFields(existing).metadata,
        labels: { ...existing.metadata?.labels, ...labelsFor(this.opts.component ?? 'webhook') },
        annotations: { ...keptAnnotations, ...annotations },
      },
      // A Secret's type cannot change; one created by hand as Opaque stays Opaque.
      type: existing.type ?? 'kubernetes.io/tls',
      data: encoded,
    };
    // Replaced at the resourceVersion read: a concurrent writer makes this a 409, and the retry re-reads.
    return core.replaceNamespacedSecret({ ...ref, body });
  }

  private async readConfigurations(): Promise<{ validating?: V1ValidatingWebhookConfiguration; mutating?: V1MutatingWebhookConfiguration }> {
    if (!this.managesConfigurations()) return {};
    const { configName: name } = this.opts;
    const admission = this.admission();
    const orUndefined = (err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    };
    const [validating, mutating] = await Promise.all([
      admission.readValidatingWebhookConfiguration({ name }).catch(orUndefined),
      admission.readMutatingWebhookConfiguration({ name }).catch(orUndefined),
    ]);
    return { validating, mutating };
  }

  private async ensureConfigurations(
    state: CertState,
    actual: { validating?: V1ValidatingWebhookConfiguration; mutating?: V1MutatingWebhookConfiguration },
  ): Promise<{ validating?: V1ValidatingWebhookConfiguration; mutating?: V1MutatingWebhookConfiguration }> {
    if (!this.managesConfigurations()) return actual;
    const bundle = caBundle(state);
    if (!bundle) return actual;
    const desired = desiredConfigurations(this.opts.configName, this.opts.endpoint, bundle);
    const admission = this.admission();
    const merge = <T extends V1ValidatingWebhookConfiguration | V1MutatingWebhookConfiguration>(have: T, want: T): T => {
      const base = withoutServerFields(have);
      return { ...base, metadata: { ...base.metadata, labels: { ...have.metadata?.labels, ...want.metadata?.labels } }, webhooks: want.webhooks } as T;
    };
    let { validating, mutating } = actual;
    const unchanged = validating && covers(validating, desired.validating) && mutating && covers(mutating, desired.mutating);
    if (unchanged) return actual;
    if (!validating) validating = await admission.createValidatingWebhookConfiguration({ body: desired.validating });
    else if (!covers(validating, desired.validating)) {
      validating = await admission.replaceValidatingWebhookConfiguration({ name: this.opts.configName, body: merge(validating, desired.validating) });
      this.log.info('webhook configuration updated', { kind: 'ValidatingWebhookConfiguration', configuration: this.opts.configName });
    }
    if (!mutating) mutating = await admission.createMutatingWebhookConfiguration({ body: desired.mutating });
    else if (!covers(mutating, desired.mutating)) {
      mutating = await admission.replaceMutatingWebhookConfiguration({ name: this.opts.configName, body: merge(mutating, desired.mutating) });
      this.log.info('webhook configuration updated', { kind: 'MutatingWebhookConfiguration', configuration: this.opts.configName });
    }
    return { validating, mutating };
  }
}
