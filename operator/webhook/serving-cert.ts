// The webhook's serving certificate and the CAs the apiserver must trust, as one state kept in a Secret, and the
// rotation policy over it. Every rotation makes a new CA and a new leaf, in two steps so that no moment exists in
// which a replica serves a certificate the apiserver does not trust:
//
//   stage:   the new pair is stored as `next`; the CA bundle (published in the webhook configurations) gains the
//            new CA while replicas keep serving the current leaf;
//   promote: once the configurations carry the new CA and it had time to reach the apiserver, `next` becomes
//            current; the old CA stays in the bundle as `previous` for an overlap, for replicas that have not yet
//            reloaded and for connections opened before the switch;
//   drop:    after the overlap the old CA leaves the bundle.
//
// `plan` is pure (the clock is an argument), so the policy is tested with any time; `carryOut` does the crypto.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createAuthority } from '../pki/certs.ts';

export interface CertPair {
  certPem: string;
  keyPem: string;
  /** The CA that signed certPem. */
  caPem: string;
}

export interface CertState {
  current?: CertPair;
  next?: CertPair & { stagedAt: Date };
  previousCa?: { caPem: string; until: Date };
}

export interface CertPolicy {
  /** Names the leaf must carry: <service>.<namespace>.svc and .svc.cluster.local, or what a test needs. */
  dnsNames: string[];
  ipAddresses: string[];
  /** Lifetime of each CA and leaf. Default 90 days. */
  validityMs: number;
  /** Rotate once this fraction of the lifetime has passed. Default 2/3. */
  rotateAt: number;
  /** How long a staged CA is published before its leaf is served: the apiserver's watch on the configurations. */
  propagationMs: number;
  /** How long the previous CA stays trusted after a promotion. */
  overlapMs: number;
}

const DAY = 86_400_000;

export const defaultPolicy: Omit<CertPolicy, 'dnsNames' | 'ipAddresses'> = {
  validityMs: 90 * DAY,
  rotateAt: 2 / 3,
  propagationMs: 10_000,
  overlapMs: 15 * 60_000,
};

export type RotationReason = 'missing' | 'invalid' | 'expired' | 'expiring' | 'names-changed' | 'forced';

/** One step of the policy; `none` carries when to look again. */
export type Plan =
  | { action: 'issue'; reason: RotationReason }
  | { action: 'stage'; reason: RotationReason }
  | { action: 'promote' }
  | { action: 'drop-previous' }
  | { action: 'wait'; until: Date; why: string }
  | { action: 'none'; recheckAt: Date };

export interface PlanInput {
  now: Date;
  policy: CertPolicy;
  /** Whether every webhook configuration's caBundle already trusts this CA. */
  published: (caPem: string) => boolean;
  /** A rotation asked for by hand (rotateNow), not yet staged. */
  forced?: boolean;
}

interface Facts {
  notBefore: Date;
  notAfter: Date;
  names: string[];
}

/** Validity and names of a pair that is internally sound (parses, key matches, signed by its CA), else undefined. */
export function inspect(pair: CertPair | undefined): Facts | undefined {
  if (!pair) return undefined;
  try {
    const cert = new X509Certificate(pair.certPem);
    const ca = new X509Certificate(pair.caPem);
    if (!cert.checkPrivateKey(createPrivateKey(pair.keyPem))) return undefined;
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return undefined;
    return { notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo), names: sanList(cert) };
  } catch {
    return undefined;
  }
}

function sanList(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter(Boolean)
    .map((s) => s.replace(/^DNS:/, '').replace(/^IP Address:/, ''))
    .sort();
}

function wantedNames(policy: CertPolicy): string[] {
  return [...new Set([...policy.dnsNames, ...policy.ipAddresses])].sort();
}

const sameNames = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** When a sound pair is due for rotation. */
export function rotationDue(f: Facts, policy: CertPolicy): Date {
  const life = f.notAfter.getTime() - f.notBefore.getTime();
  return new Date(f.notBefore.getTime() + life * policy.rotateAt);
}

/** The next step towards a trusted, fresh serving certificate with the wanted names. */
export function plan(state: CertState, input: PlanInput): Plan {
  const { now, policy } = input;
  const cur = inspect(state.current);
  // Nothing usable is served: there is no trust to keep, so replace it at once.
  if (!cur) return { action: 'issue', reason: state.current ? 'invalid' : 'missing' };
  if (cur.notAfter <= now) return { action: 'issue', reason: 'expired' };

  if (state.next) {
    const next = inspect(state.next);
    if (!next || next.notAfter <= now) return { action: 'stage', reason: 'invalid' };
    if (!sameNames(next.names, wantedNames(policy))) return { action: 'stage', reason: 'names-changed' };
    const ready = new Date(state.next.stagedAt.getTime() + policy.propagationMs);
    if (!input.published(state.next.caPem)) return { action: 'wait', until: new Date(now.getTime() + Math.min(policy.propagationMs, 1000)), why: 'the new CA is not in the webhook configurations yet' };
    if (now < ready) return { action: 'wait', until: ready, why: 'the new CA is reaching the apiserver' };
    return { action: 'promote' };
  }

  if (input.forced) return { action: 'stage', reason: 'forced' };
  if (!sameNames(cur.names, wantedNames(policy))) return { action: 'stage', reason: 'names-changed' };
  const due = rotationDue(cur, policy);
  if (now >= due) return { action: 'stage', reason: 'expiring' };
  if (state.previousCa && now >= state.previousCa.until) return { action: 'drop-previous' };
  const recheck = state.previousCa && state.previousCa.until < due ? state.previousCa.until : due;
  return { action: 'none', recheckAt: recheck };
}

/** Makes a new CA and a leaf it signed, valid from `now`. */
export type Mint = (policy: CertPolicy, commonName: string, now: Date) => Promise<CertPair>;

/** A fresh CA and a leaf it signed, for the policy's names (pki/certs.ts dates them by the real clock). */
export async function newPair(policy: CertPolicy, commonName: string): Promise<CertPair> {
  const validDays = policy.validityMs / DAY;
  const ca = await createAuthority(`${commonName}-ca-${Date.now().toString(36)}`, validDays);
  const leaf = await ca.issue({ commonName, usage: 'server', dnsNames: policy.dnsNames, ipAddresses: policy.ipAddresses, validDays });
  return { certPem: leaf.certPem, keyPem: leaf.keyPem, caPem: ca.certPem };
}

/** The state after a plan's action; undefined when the action changes nothing stored. */
export async function carryOut(
  state: CertState,
  p: Plan,
  { now, policy, commonName, mint = newPair }: { now: Date; policy: CertPolicy; commonName: string; mint?: Mint },
): Promise<CertState | undefined> {
  switch (p.action) {
    case 'issue': {
      // Keep trusting whatever CA was current, in case some replica still serves its leaf.
      const keep = inspect(state.current) && state.current ? { caPem: state.current.caPem, until: new Date(now.getTime() + policy.overlapMs) } : state.previousCa;
      return { current: await mint(policy, commonName, now), ...(keep ? { previousCa: keep } : {}) };
    }
    case 'stage':
      return { ...state, next: { ...(await mint(policy, commonName, now)), stagedAt: now } };
    case 'promote': {
      const { next, current } = state;
      if (!next) return undefined;
      const { stagedAt: _stagedAt, ...pair } = next;
      return { current: pair, ...(current ? { previousCa: { caPem: current.caPem, until: new Date(now.getTime() + policy.overlapMs) } } : {}) };
    }
    case 'drop-previous': {
      const { previousCa: _dropped, ...rest } = state;
      return rest;
    }
    case 'wait':
    case 'none':
      return undefined;
  }
}

/** The CAs the apiserver must trust for this state, current first, each once. */
export function caBundle(state: CertState): string {
  const pems = [state.current?.caPem, state.next?.caPem, state.previousCa?.caPem].filter((p): p is string => !!p).map(normalizePem);
  return [...new Set(pems)].join('');
}

export function normalizePem(pem: string): string {
  return `${pem.trim().replace(/\r\n/g, '\n')}\n`;
}

/** The PEM certificates in a bundle, normalized. */
export function splitBundle(bundle: string): string[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(normalizePem);
}

/** SHA-256 fingerprint of a PEM certificate, for logs and tests. */
export function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

// --- The Secret that holds the state (type kubernetes.io/tls, so tools that read tls.crt/tls.key work too). ---

export const SECRET_KEYS = {
  cert: 'tls.crt',
  key: 'tls.key',
  ca: 'ca.crt',
  bundle: 'ca-bundle.crt',
  nextCert: 'next.crt',
  nextKey: 'next.key',
  nextCa: 'next-ca.crt',
  previousCa: 'previous-ca.crt',
} as const;

export const ANNOTATIONS = {
  nextStagedAt: 'arena.agilerl.com/next-staged-at',
  previousCaUntil: 'arena.agilerl.com/previous-ca-until',
} as const;

/** Secret data (already base64-decoded) and annotations → state. Missing or partial parts read as absent. */
export function stateFromSecret(data: Record<string, string> | undefined, annotations: Record<string, string> | undefined): CertState {
  const d = data ?? {};
  const a = annotations ?? {};
  const state: CertState = {};
  const [cert, key, ca] = [d[SECRET_KEYS.cert], d[SECRET_KEYS.key], d[SECRET_KEYS.ca]];
  if (cert && key && ca) state.current = { certPem: cert, keyPem: key, caPem: ca };
  const [nextCert, nextKey, nextCa] = [d[SECRET_KEYS.nextCert], d[SECRET_KEYS.nextKey], d[SECRET_KEYS.nextCa]];
  const stagedAt = dateOf(a[ANNOTATIONS.nextStagedAt]);
  if (nextCert && nextKey && nextCa && stagedAt) state.next = { certPem: nextCert, keyPem: nextKey, caPem: nextCa, stagedAt };
  const previous = d[SECRET_KEYS.previousCa];
  const until = dateOf(a[ANNOTATIONS.previousCaUntil]);
  if (previous && until) state.previousCa = { caPem: previous, until };
  return state;
}

/** State → Secret data (plain text, to be base64-encoded) and the annotations that carry its times. */
export function secretFromState(state: CertState): { data: Record<string, string>; annotations: Record<string, string> } {
  const data: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  if (state.current) {
    data[SECRET_KEYS.cert] = state.current.certPem;
    data[SECRET_KEYS.key] = state.current.keyPem;
    data[SECRET_KEYS.ca] = state.current.caPem;
  }
  if (state.next) {
    data[SECRET_KEYS.nextCert] = state.next.certPem;
    data[SECRET_KEYS.nextKey] = state.next.keyPem;
    data[SECRET_KEYS.nextCa] = state.next.caPem;
    annotations[ANNOTATIONS.nextStagedAt] = state.next.stagedAt.toISOString();
  }
  if (state.previousCa) {
    data[SECRET_KEYS.previousCa] = state.previousCa.caPem;
    annotations[ANNOTATIONS.previousCaUntil] = state.previousCa.until.toISOString();
  }
  data[SECRET_KEYS.bundle] = caBundle(state);
  return { data, annotations };
}

function dateOf(s: string | undefined): Date | undefined {
  if (!s) return undefined;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
