// Run tokens (run-token.ts) and per-rotation agent API keys are derived from one operator signing key with
// HMAC-SHA256 instead of being minted at random and read back. The operator can then check a worker's token, or
// recreate a deleted key Secret with the same key, without ever reading Secrets outside its own namespace: its
// RBAC needs create/delete on Secrets there, never get/list/watch.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Shortest signing key accepted: 256 bits, the HMAC-SHA256 block of security. */
export const MIN_SIGNING_KEY_BYTES = 32;

// The purpose and a version are part of every message, so a run token can never be replayed as an API key and a
// later change of derivation does not collide with tokens already handed out.
const purposes = { agentApiKey: 'arena/agent-api-key/v1' } as const;

export function derive(key: Buffer, purpose: string, parts: readonly (string | number)[]): string {
  if (key.length < MIN_SIGNING_KEY_BYTES) throw new Error(`signing key has ${key.length} bytes; at least ${MIN_SIGNING_KEY_BYTES} are needed`);
  const h = createHmac('sha256', key).update(purpose);
  // A separator that cannot appear in a uid or a number keeps ('a', 'b1') apart from ('ab', '1').
  for (const p of parts) h.update('\0').update(String(p));
  return h.digest('base64url');
}

/** The API key of one rotation of one agent (arena Deployment, by uid). */
export function agentApiKey(key: Buffer, deploymentUid: string, rotation: number): string {
  return derive(key, purposes.agentApiKey, [deploymentUid, rotation]);
}

/** Constant-time equality whatever the lengths: both sides are hashed first. */
export function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}
