// The nesting of the inference wire (the platform client's pytree): an array travels as a base64 .npy string,
// null as null, a dict as a JSON object with the same keys and a tuple or list as a JSON array.
import { NdArray, NpyError, decodeNpyBase64, encodeNpyBase64 } from './npy.ts';

export type NpyTree = NdArray | null | readonly NpyTree[] | { readonly [key: string]: NpyTree };

/** A payload field that cannot be read; `field` is its path in the request, e.g. obs.agent_0[1]. */
export class WireError extends Error {
  override name = 'WireError';
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
  }
}

// Deep enough for any observation space (dict of tuples of dicts ...), shallow enough that a hostile payload of
// nested arrays cannot exhaust the stack.
export const MAX_DEPTH = 32;

export function isNdArray(tree: NpyTree | undefined): tree is NdArray {
  return tree instanceof NdArray;
}

export function isTreeDict(tree: NpyTree | undefined): tree is { readonly [key: string]: NpyTree } {
  return typeof tree === 'object' && tree !== null && !Array.isArray(tree) && !(tree instanceof NdArray);
}

export function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** Reads a JSON value of the wire into arrays; throws WireError naming the offending field. */
export function decodeTree(value: unknown, path: string, depth = 0): NpyTree {
  if (depth > MAX_DEPTH) throw new WireError(path, `nested deeper than ${MAX_DEPTH} levels`);
  if (value === null) return null;
  if (typeof value === 'string') {
    try {
      return decodeNpyBase64(value);
    } catch (err) {
      if (err instanceof NpyError) throw new WireError(path, err.message);
      throw err;
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => decodeTree(v, childPath(path, i), depth + 1));
  if (typeof value === 'object') {
    // No prototype: a key named __proto__ stays a key instead of replacing the prototype.
    const out: Record<string, NpyTree> = Object.create(null) as Record<string, NpyTree>;
    for (const [k, v] of Object.entries(value)) out[k] = decodeTree(v, childPath(path, k), depth + 1);
    return out;
  }
  throw new WireError(path, `expected a base64 .npy string, an object, an array or null, got ${typeof value === 'number' ? 'a number' : typeof value}`);
}

/** The JSON value of a tree for the wire. */
export function encodeTree(tree: NpyTree): unknown {
  if (tree === null) return null;
  if (tree instanceof NdArray) return encodeNpyBase64(tree);
  if (Array.isArray(tree)) return tree.map(encodeTree);
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [k, v] of Object.entries(tree)) out[k] = encodeTree(v);
  return out;
}

/** Every array of a tree with its path, depth first in key order. */
export function leaves(tree: NpyTree, path: string): { path: string; array: NdArray }[] {
  if (tree === null) return [];
  if (tree instanceof NdArray) return [{ path, array: tree }];
  if (Array.isArray(tree)) return tree.flatMap((t: NpyTree, i: number) => leaves(t, childPath(path, i)));
  return Object.entries(tree).flatMap(([k, t]) => leaves(t, childPath(path, k)));
}
