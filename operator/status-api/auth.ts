// Bearer tokens of the status API. They live in a Secret (every non-empty data value is a valid token, so a new
// token can be added before the old one is removed: rotation without downtime) and are compared in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';

export type AuthResult =
  | { ok: true; /** A stable, non-secret name for the token, e.g. for per-client rate limits: the Secret key. */ client: string }
  | { ok: false; reason: 'Missing' | 'Invalid' };

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The token of an `Authorization: Bearer <token>` header; undefined when there is none or another scheme. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  return m?.[1];
}

export class TokenSet {
  private tokens: { client: string; digest: Buffer }[] = [];

  /** Replaces the accepted tokens: the Secret's data, key → token (already base64-decoded). */
  update(byKey: Readonly<Record<string, string>>): void {
    this.tokens = Object.entries(byKey)
      .map(([key, value]) => [key, value.trim()] as const)
      .filter(([, value]) => value.length > 0)
      .map(([key, value]) => ({ client: key, digest: digest(value) }));
  }

  get size(): number {
    return this.tokens.length;
  }

  /**
   * Checks a presented token against every accepted one. Digests make the inputs equal in length, and the loop
   * never stops early, so the time taken says nothing about how close a guess was or which token matched.
   */
  check(presented: string | undefined): AuthResult {
    if (presented === undefined) return { ok: false, reason: 'Missing' };
    const d = digest(presented);
    let match: string | undefined;
    for (const t of this.tokens) {
      if (timingSafeEqual(d, t.digest) && match === undefined) match = t.client;
    }
    return match === undefined ? { ok: false, reason: 'Invalid' } : { ok: true, client: match };
  }
}

/** Decodes a Secret's base64 data values. */
export function decodeSecretData(data: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  return out;
}
