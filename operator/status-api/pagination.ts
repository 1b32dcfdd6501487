// Keyset pagination over a cache that changes between pages: items are ordered by key ("namespace/name") and a
// continue token remembers the last key served, so a page never repeats an item and never skips one that existed
// throughout, whatever was added or removed meanwhile (unlike offsets). The token also pins the filters it was
// issued for, so it cannot be replayed against another query.
import { createHash } from 'node:crypto';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

interface TokenBody {
  v: 1;
  /** The last key served. */
  k: string;
  /** Digest of the filters. */
  f: string;
}

export class InvalidContinueToken extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidContinueToken';
  }
}

export function filtersDigest(filters: Readonly<Record<string, string | undefined>>): string {
  const canonical = Object.keys(filters)
    .filter((k) => filters[k] !== undefined)
    .sort()
    .map((k) => [k, filters[k]]);
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url').slice(0, 16);
}

export function encodeContinue(lastKey: string, filters: Readonly<Record<string, string | undefined>>): string {
  const body: TokenBody = { v: 1, k: lastKey, f: filtersDigest(filters) };
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

/** The key to continue after; throws InvalidContinueToken for a malformed token or one issued for other filters. */
export function decodeContinue(token: string, filters: Readonly<Record<string, string | undefined>>): string {
  let body: Partial<TokenBody>;
  try {
    body = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<TokenBody>;
  } catch {
    throw new InvalidContinueToken('the continue token is not one this API issued');
  }
  if (body?.v !== 1 || typeof body.k !== 'string' || typeof body.f !== 'string') {
    throw new InvalidContinueToken('the continue token is not one this API issued');
  }
  if (body.f !== filtersDigest(filters)) {
    throw new InvalidContinueToken('the continue token was issued for other filters: repeat the query with the same namespace, phase and class');
  }
  return body.k;
}

/** Index of the first key greater than `after` in an ascending array. */
export function firstAfter(sortedKeys: readonly string[], after: string): number {
  let lo = 0;
  let hi = sortedKeys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sortedKeys[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface Page<T> {
  items: T[];
  total: number;
  /** The last key of the page, when more matching items follow. */
  nextAfter?: string;
}

/** The index range [lo, hi) of the keys that start with `prefix` (a set sharing a prefix is contiguous). */
export function prefixRange(sortedKeys: readonly string[], prefix: string): [number, number] {
  let lo = 0;
  let hi = sortedKeys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sortedKeys[mid]! < prefix) lo = mid + 1;
    else hi = mid;
  }
  // U+FFFF sorts after every character a Kubernetes name can hold.
  return [lo, firstAfter(sortedKeys, `${prefix}\uffff`)];
}

/**
 * One page: the first `limit` items after `after` (in key order) that match, plus the number of matches overall.
 * Only keys in `range` are looked at (a namespace's keys, say); O(range) for the total, so the caller caches
 * whole answers per cache version.
 */
export function paginate<T>(
  sortedKeys: readonly string[],
  get: (key: string) => T | undefined,
  matches: (item: T) => boolean,
  limit: number,
  after?: string,
  range: [number, number] = [0, sortedKeys.length],
): Page<T> {
  const start = after === undefined ? 0 : firstAfter(sortedKeys, after);
  const items: T[] = [];
  let total = 0;
  let more = false;
  let lastKey: string | undefined;
  for (let i = range[0]; i < range[1]; i++) {
    const key = sortedKeys[i]!;
    const item = get(key);
    if (item === undefined || !matches(item)) continue;
    total++;
    if (i < start) continue;
    if (items.length < limit) {
      items.push(item);
      lastKey = key;
    } else {
      more = true;
    }
  }
  return { items, total, ...(more && lastKey !== undefined ? { nextAfter: lastKey } : {}) };
}
