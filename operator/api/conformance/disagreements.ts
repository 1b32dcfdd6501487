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

// JSON, as the Kubernetes API and JavaScript read it, has no integer beyond 64 bits (53 in JavaScript): the
// number reaches every API-side layer as a float, which the platform's integer field refuses. The platform reads
// the file itself with Python's unbounded integers. A batch size of 10^29 is no real run; the file-side layer
// (the plugin) agrees with the platform.
const bigInt = 'an integer beyond 64 bits travels through JSON (the Kubernetes API, JavaScript) as a float, which the platform\'s integer field refuses; read from the file, it is an integer';

export const DISAGREEMENTS: readonly Disagreement[] = [
  { id: 'yaml-big-int', layer: 'runtime', reason: bigInt },
  { id: 'yaml-big-int', layer: 'apiserver', reason: bigInt },
  { id: 'yaml-big-int', layer: 'webhook', reason: bigInt },
];
