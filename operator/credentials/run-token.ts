// The token a worker pod sends with its reports. It names what it may speak for — one worker of one attempt of one
// run of one experiment — and the signing key it was made with, and an HMAC binds those claims to the experiment's
// uid. So the report API can authenticate a request from its header alone, before it reads a byte of the body,
// and a body that claims another worker, attempt or experiment than its token is refused.
//
//   art2.<base64url(JSON claims)>.<base64url(HMAC-SHA256)>
import { createHash } from 'node:crypto';
import { derive, sameSecret } from './derive.ts';

export interface RunTokenClaims {
  namespace: string;
  name: string;
  run: number;
  attempt: number;
  worker: number;
  /** Which signing key made the token (keyId), so a token of a replaced key is told apart from a forged one. */
  key: string;
}

const PREFIX = 'art2';
const PURPOSE = 'arena/run-token/v2';
/** Far above any real token (about 250 characters); a longer header is refused before it is decoded. */
export const MAX_RUN_TOKEN_LENGTH = 1024;

// Asked on every reconcile and every report; the key Buffer is the same object until the key is replaced.
const keyIds = new WeakMap<Buffer, string>();

/** A public name for a signing key: safe to store in objects and logs, useless for making tokens. */
export function keyId(key: Buffer): string {
  let id = keyIds.get(key);
  if (id === undefined) {
    id = createHash('sha256').update('arena/key-id/v1\0').update(key).digest('base64url').slice(0, 12);
    keyIds.set(key, id);
  }
  return id;
}

function mac(key: Buffer, uid: string, c: RunTokenClaims): string {
  return derive(key, PURPOSE, [uid, c.namespace, c.name, c.run, c.attempt, c.worker]);
}

export function issueRunToken(key: Buffer, experimentUid: string, claims: Omit<RunTokenClaims, 'key'>): string {
  const full: RunTokenClaims = { ...claims, key: keyId(key) };
  const body = Buffer.from(JSON.stringify([full.namespace, full.name, full.run, full.attempt, full.worker, full.key])).toString('base64url');
  return `${PREFIX}.${body}.${mac(key, experimentUid, full)}`;
}

const count = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const text = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/** The claims a token makes, unverified; undefined for anything that is not a well-formed token of this kind. */
export function readRunTokenClaims(token: string): RunTokenClaims | undefined {
  if (token.length > MAX_RUN_TOKEN_LENGTH) return undefined;
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(raw) || raw.length !== 6) return undefined;
  const [namespace, name, run, attempt, worker, key] = raw as unknown[];
  if (!text(namespace, 63) || !text(name, 253) || !count(run) || !count(attempt) || !count(worker) || !text(key, 64)) return undefined;
  return { namespace, name, run, attempt, worker, key };
}

export type RunTokenVerdict = 'valid' | 'invalid' | 'stale-key';

/**
 * Whether `token` makes `claims` for the experiment with `experimentUid` under `key`. 'stale-key' is a token whose
 * claims name another signing key: one made before the key was replaced, which the operator re-issues.
 */
export function verifyRunToken(key: Buffer, experimentUid: string, token: string, claims: RunTokenClaims): RunTokenVerdict {
  if (claims.key !== keyId(key)) return 'stale-key';
  const given = token.slice(token.lastIndexOf('.') + 1);
  return sameSecret(given, mac(key, experimentUid, claims)) ? 'valid' : 'invalid';
}

export type RunTokenCheck = { ok: true; claims: RunTokenClaims } | { ok: false; why: 'malformed' | 'invalid' | 'stale-key' | 'unavailable' };

/**
 * The report API's check: the token's claims, verified under the current key against the uid of the experiment
 * they name (`uidOf`, from the operator's cache). `key` is undefined while the signing key is not loaded.
 */
export function checkRunToken(token: string, key: Buffer | undefined, uidOf: (namespace: string, name: string) => string | undefined): RunTokenCheck {
  const claims = readRunTokenClaims(token);
  if (!claims) return { ok: false, why: 'malformed' };
  if (!key) return { ok: false, why: 'unavailable' };
  const uid = uidOf(claims.namespace, claims.name);
  if (!uid) return { ok: false, why: 'invalid' };
  const verdict = verifyRunToken(key, uid, token, claims);
  return verdict === 'valid' ? { ok: true, claims } : { ok: false, why: verdict };
}
