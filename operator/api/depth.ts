// How deep a JSON value nests, found without recursion. Objects reach the operator from users (the webhook, stored
// objects) nested as deep as the API server lets them, and every layer that walks them recursively (structuredClone,
// ajv, the platform's Python validator, whose recursion limit a few hundred levels of manifest exhaust) would fail
// on one nested a few thousand deep: a stack overflow answered as a 500, or a validator stuck until its timeout for
// every caller. A depth no real object comes near is refused first, with the path where it passes the limit.
import { childPath } from './field-errors.ts';

/** Far deeper than any training manifest or object of our kinds (about 8 levels), far below what breaks a walker. */
export const MAX_DEPTH = 64;

/** The field path of the first value nested deeper than `max` levels below `value`, or undefined when none is. */
export function tooDeep(value: unknown, base = '', max = MAX_DEPTH): string | undefined {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: base, depth: 0 }];
  while (stack.length > 0) {
    const { value: v, path, depth } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= max) return path;
    const entries: [string | number, unknown][] = Array.isArray(v) ? v.map((item, i) => [i, item]) : Object.entries(v);
    for (const [key, child] of entries) {
      if (typeof child === 'object' && child !== null) stack.push({ value: child, path: childPath(path, key), depth: depth + 1 });
    }
  }
  return undefined;
}

export const tooDeepMessage = (max = MAX_DEPTH) => `nested deeper than ${max} levels`;
