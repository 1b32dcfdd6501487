// The platform's answer to a heartbeat. Two fields are read: {"currentBundleVersion": "<semver>"}, the setup-bundle
// version the platform offers for download now, and {"credits": {"balance": <number>}}, the cluster's credit balance. Everything else in the body is ignored so the platform can add fields
// without a new operator. Pure; the link decides what to keep when a reply is unusable.
import { isSemver } from '../controllers/trainingcluster/bundle.ts';

/** Beyond this the reply is not parsed: a heartbeat answer is a few hundred bytes, anything bigger is a wrong endpoint. */
export const REPLY_LIMIT_BYTES = 64 * 1024;

export type ReplyProblemKind = 'Unreadable' | 'TooLarge' | 'NotJson' | 'NotObject' | 'MissingField' | 'NotSemver';

export type HeartbeatReply = { ok: true; currentBundleVersion: string } | { ok: false; kind: ReplyProblemKind; problem: string };

const problem = (kind: ReplyProblemKind, text: string): HeartbeatReply => ({ ok: false, kind, problem: text });

/** Reads an accepted (2xx) reply's body; `text` undefined means the body could not be read. */
export function parseHeartbeatReply(text: string | undefined): HeartbeatReply {
  if (text === undefined) return problem('Unreadable', 'could not be read');
  if (Buffer.byteLength(text) > REPLY_LIMIT_BYTES) return problem('TooLarge', `is larger than ${REPLY_LIMIT_BYTES} bytes`);
  if (text.trim() === '') return problem('MissingField', 'was empty, so it names no currentBundleVersion');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return problem('NotJson', 'is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return problem('NotObject', 'is not a JSON object');
  if (!Object.hasOwn(body, 'currentBundleVersion')) return problem('MissingField', 'has no currentBundleVersion');
  const v = (body as { currentBundleVersion: unknown }).currentBundleVersion;
  if (!isSemver(v)) {
    // Quoted and cut short: the value goes into a condition message and a log line.
    const shown = JSON.stringify(v) ?? String(v);
    return problem('NotSemver', `has currentBundleVersion ${shown.length > 40 ? `${shown.slice(0, 40)}…` : shown}, which is not a semantic version`);
  }
  return { ok: true, currentBundleVersion: v };
}

/**
 * The credit balance an accepted reply names, as {"credits": {"balance": <number>}}: the platform's balance for
 * this cluster, having counted the `credits.spent` the heartbeat reported. Undefined when the reply names none or
 * names something that is not a finite number (the last known balance is kept then).
 */
export function parseCreditBalance(text: string | undefined): number | undefined {
  if (text === undefined || Buffer.byteLength(text) > REPLY_LIMIT_BYTES) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  const credits = typeof body === 'object' && body !== null ? (body as { credits?: unknown }).credits : undefined;
  const balance = typeof credits === 'object' && credits !== null ? (credits as { balance?: unknown }).balance : undefined;
  return typeof balance === 'number' && Number.isFinite(balance) && Math.abs(balance) <= 1e12 ? balance : undefined;
}
