// The Arena platform's validator is pydantic in lax mode: it reads "64" as the integer 64, "0.001" as a float and
// "yes", "on" or 1 as true. We store what the platform reads rather than what was typed, deliberately: a value in
// etcd then means the same to the operator, the trainer, `kubectl get -o yaml` and a CEL rule, and a manifest copied
// back to Arena carries the platform's own canonical form. Only a scalar whose JSON type differs from the
// platform's resolved value at the same path is replaced; renamed, nested or defaulted keys are left as written.
export interface Change {
  /** Dotted path inside the manifest. */
  field: string;
  from: unknown;
  to: unknown;
}

export function canonicalScalars(document: unknown, payload: unknown): { value: unknown; changes: Change[] } {
  const changes: Change[] = [];
  const value = walk(document, payload, '', changes);
  return { value, changes };
}

function walk(doc: unknown, resolved: unknown, path: string, changes: Change[]): unknown {
  if (isRecord(doc) && isRecord(resolved)) {
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(doc)) {
      out[key] = key in resolved ? walk(child, resolved[key], path ? `${path}.${key}` : key, changes) : child;
    }
    return out;
  }
  if (Array.isArray(doc) && Array.isArray(resolved) && doc.length === resolved.length) {
    return doc.map((item, i) => walk(item, resolved[i], `${path}[${i}]`, changes));
  }
  if (isScalar(doc) && isScalar(resolved) && typeof doc !== typeof resolved) {
    changes.push({ field: path, from: doc, to: resolved });
    return resolved;
  }
  return doc;
}

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
