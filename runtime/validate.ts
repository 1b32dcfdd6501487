// The runtime's pre-launch check: the Arena platform's own verdict on the manifest, the same one the webhook and
// the operator ask for (operator/api/platform/verdict.ts). It runs again here because a worker can be handed a
// manifest that never passed through this operator's webhook (an Experiment stored before an upgrade, a
// hand-made ConfigMap); refusing costs a second, while the same mistake found by the trainer costs a model load
// and shows up as a stack trace.
import { platformValidator, type PlatformValidator } from '../operator/api/platform/verdict.ts';
import type { Manifest } from '../operator/api/v1alpha1/manifest.ts';

export interface Refusal {
  /** Dotted path of the manifest field to change, e.g. training.pop_size. */
  field: string;
  message: string;
  /** What to change, in one line. */
  fix: string;
}

export type LaunchValidation = { ok: true; manifest: Manifest; payload: Record<string, unknown> } | { ok: false; refusals: Refusal[] };

/** Reads a dotted path from the manifest; undefined when any part is missing. */
export function setting(manifest: unknown, path: string): unknown {
  let cur: unknown = manifest;
  for (const key of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** The platform's verdict; every refusal names the field and what to do about it. */
export async function validateForLaunch(manifest: unknown, validator: PlatformValidator = platformValidator()): Promise<LaunchValidation> {
  const verdict = await validator.verdict(manifest);
  if (verdict.valid) return { ok: true, manifest: manifest as Manifest, payload: verdict.payload };
  return {
    ok: false,
    refusals: verdict.errors.map((e) => ({
      field: e.field,
      message: e.message,
      fix: `Correct ${e.field || 'the manifest'} in the Experiment's spec.manifest (kubectl arena manifest validate shows every error at once).`,
    })),
  };
}

/** One line for a status message: the refusals with their fields, as many as fit in half of status.message. */
export function formatRefusals(refusals: readonly Refusal[], budget = 2048): string {
  const lines = refusals.map((r) => (r.field && !r.message.includes(r.field) ? `${r.field}: ${r.message}` : r.message));
  let text = '';
  let shown = 0;
  for (const line of lines) {
    const next = text ? `${text}; ${line}` : line;
    if (shown > 0 && next.length > budget) break;
    text = next.length > budget ? `${next.slice(0, budget - 1)}…` : next;
    shown++;
  }
  return shown < lines.length ? `${text}; and ${lines.length - shown} more` : text;
}
