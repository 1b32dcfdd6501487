// Turns ajv's errors into errors a user can act on: a dotted field path as kubectl prints it
// (spec.tolerations[0].key) and a message that says what the value must be.
import type { ErrorObject } from 'ajv';
import { patternMeaning } from './schema.ts';

export interface FieldError {
  /** Dotted path from the validated object's root, e.g. spec.manifest.training.max_steps. */
  field: string;
  /** What the value must be, e.g. "must be >= 1". */
  message: string;
  /** Extra help: an example, the closest valid spelling, or what the field is for. */
  hint?: string;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Appends a key the way Kubernetes field paths do: `.name` for fields, `[key]` for other map keys. */
export function childPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (!IDENTIFIER.test(key)) return `${parent}[${key}]`;
  return parent ? `${parent}.${key}` : key;
}

/** Resolves a rule's relative JSONPath (".spec.resumeFrom.step") against the path of the node it sits on. */
export function joinFieldPath(parent: string, fieldPath: string | undefined): string {
  if (!fieldPath) return parent;
  return fieldPath
    .slice(1)
    .split('.')
    .reduce((path, segment) => childPath(path, segment), parent);
}

/** The field path of an ajv instancePath, reading the data to tell list indexes from map keys. */
function fieldOf(base: string, instancePath: string, data: unknown): string {
  let path = base;
  let current: unknown = data;
  for (const raw of instancePath.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(current)) {
      path = childPath(path, Number(segment));
      current = current[Number(segment)];
    } else {
      path = childPath(path, segment);
      current = (current as Record<string, unknown> | undefined)?.[segment];
    }
  }
  return path;
}

type Schema = { description?: string; properties?: Record<string, { description?: string }>; 'x-kubernetes-int-or-string'?: boolean; pattern?: string };

export function fromAjv(errors: readonly ErrorObject[], data: unknown, base: string): FieldError[] {
  // The int-or-string anyOf reports one type error per branch and then the anyOf; the anyOf alone says it all.
  const relevant = errors.filter((e) => !(e.keyword === 'type' && e.schemaPath.includes('/anyOf/')));
  return relevant.map((e) => describe(e, fieldOf(base, e.instancePath, data)));
}

function describe(e: ErrorObject, field: string): FieldError {
  const parent = e.parentSchema as Schema | undefined;
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required': {
      const missing = String(params.missingProperty);
      return withHint({ field: childPath(field, missing), message: 'is required' }, parent?.properties?.[missing]?.description);
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map(String);
      return withHint({ field, message: `must be one of: ${allowed.join(', ')}` }, closest(String(e.data), allowed));
    }
    case 'anyOf':
      if (parent?.['x-kubernetes-int-or-string']) {
        const meaning = parent.pattern ? patternMeaning(parent.pattern) : undefined;
        return withHint({ field, message: 'must be an integer or a string' }, meaning && `for example ${meaning.example}`);
      }
      return { field, message: e.message ?? 'is not valid' };
    case 'type':
      return { field, message: `must be ${article(String(params.type))} ${params.type}` };
    case 'pattern': {
      const meaning = patternMeaning(String(params.pattern));
      return meaning ? { field, message: `must be ${meaning.means}`, hint: `for example ${meaning.example}` } : { field, message: `must match ${String(params.pattern)}` };
    }
    case 'format':
      return params.format === 'date-time'
        ? { field, message: 'must be an RFC 3339 time', hint: 'for example 2026-01-02T15:04:05Z' }
        : { field, message: `must be a valid ${String(params.format)}` };
    case 'minLength':
      return { field, message: params.limit === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters long` };
    case 'maxLength':
      return { field, message: `must be at most ${String(params.limit)} characters long` };
    case 'minItems':
      return { field, message: `must have at least ${String(params.limit)} item${params.limit === 1 ? '' : 's'}` };
    case 'maxItems':
      return { field, message: `must have at most ${String(params.limit)} items` };
    case 'maxProperties':
      return { field, message: `must have at most ${String(params.limit)} entries` };
    default:
      // minimum and maximum read well as ajv writes them: "must be >= 1".
      return { field, message: e.message ?? 'is not valid' };
  }
}

function withHint(error: FieldError, hint: string | undefined): FieldError {
  return hint ? { ...error, hint } : error;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? 'an' : 'a';
}

/** The candidate a user most likely meant (same spelling ignoring case, or at most two edits away). */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  const exactIgnoringCase = candidates.find((c) => c.toLowerCase() === input.toLowerCase());
  if (exactIgnoringCase) return `did you mean ${exactIgnoringCase}?`;
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(input.toLowerCase(), candidate.toLowerCase());
    if (distance <= 2 && (!best || distance < best.distance)) best = { candidate, distance };
  }
  return best && `did you mean ${best.candidate}?`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
