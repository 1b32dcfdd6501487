// Where a layer of ours reaches another verdict than the Arena platform on a corpus manifest, on purpose. The
// conformance suite (e2e/conformance.e2e.test.ts) fails on any disagreement not listed here, and on a listed one
// that no longer happens, so this list is always exactly what differs. Keep it short: each entry is a promise that
// the difference is right for users, with the reason.
export type Layer = 'plugin' | 'runtime' | 'apiserver' | 'webhook';
export type Verdict = 'valid' | 'invalid' | 'unreadable';

export interface Disagreement {
  /** The corpus case. */
  id: string;
  layer: Layer;
  reason: string;
}

export const DISAGREEMENTS: readonly Disagreement[] = [];
