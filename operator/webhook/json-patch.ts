// RFC 6902 JSON Patch between two JSON documents, the form a mutating webhook answers in. Only what a defaulter
// needs: objects are compared key by key, anything else (arrays included) is replaced whole when it differs.
import { isDeepStrictEqual } from 'node:util';

export type JsonPatchOp = { op: 'add'; path: string; value: unknown } | { op: 'replace'; path: string; value: unknown } | { op: 'remove'; path: string };

/** One JSON Pointer segment (RFC 6901): `~` and `/` are escaped, in that order. */
export function pointerSegment(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The operations that turn `before` into `after`; none when they are equal. */
export function diff(before: unknown, after: unknown, path = ''): JsonPatchOp[] {
  if (isDeepStrictEqual(before, after)) return [];
  if (!isObject(before) || !isObject(after)) return [{ op: 'replace', path, value: after }];
  const ops: JsonPatchOp[] = [];
  for (const key of Object.keys(before)) {
    if (!Object.hasOwn(after, key)) ops.push({ op: 'remove', path: `${path}/${pointerSegment(key)}` });
  }
  for (const [key, value] of Object.entries(after)) {
    const child = `${path}/${pointerSegment(key)}`;
    if (!Object.hasOwn(before, key)) ops.push({ op: 'add', path: child, value });
    else ops.push(...diff(before[key], value, child));
  }
  return ops;
}

/** Applies `ops` to a copy of `doc`; for tests and for checking a patch before it is sent. */
export function applyPatch(doc: unknown, ops: readonly JsonPatchOp[]): unknown {
  let root = structuredClone(doc);
  for (const op of ops) {
    if (op.path === '') {
      if (op.op === 'remove') throw new Error('cannot remove the document root');
      root = structuredClone(op.value);
      continue;
    }
    const segments = op.path
      .slice(1)
      .split('/')
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = segments.pop()!;
    let parent: unknown = root;
    for (const s of segments) {
      if (!isObject(parent) || !Object.hasOwn(parent, s)) throw new Error(`path ${op.path} does not exist`);
      parent = parent[s];
    }
    if (!isObject(parent)) throw new Error(`path ${op.path}: parent is not an object`);
    if (op.op !== 'add' && !Object.hasOwn(parent, last)) throw new Error(`path ${op.path} does not exist`);
    if (op.op === 'remove') delete parent[last];
    else parent[last] = structuredClone(op.value);
  }
  return root;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
