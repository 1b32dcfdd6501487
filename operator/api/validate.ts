// The TypeScript validator: the same schemas the CRDs carry, compiled by ajv, plus the TypeScript side of every
// CEL rule. It answers what the apiserver would (so the webhook, the controllers and the runtime refuse the same
// things), applies schema defaults as the apiserver does, and also reports unknown fields, as `kubectl apply`'s
// strict field validation does, where a non-strict apiserver client would silently lose them.
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsPlugin from 'ajv-formats';
import type { TSchema } from '@sinclair/typebox';
import { closest, childPath, fromAjv, joinFieldPath, type FieldError } from './field-errors.ts';
import { tooDeep, tooDeepMessage } from './depth.ts';
import { isTransitionRule, rulesOf } from './rules.ts';
import { API_VERSION, Manifest, kinds, type KindName, type ResourceByKind } from './v1alpha1/index.ts';
import { platformValidator, type PlatformValidator } from './platform/verdict.ts';
import { legacyHint } from './platform/legacy.ts';

export type { FieldError } from './field-errors.ts';

export type ValidationResult = { ok: true } | { ok: false; errors: FieldError[] };

export interface ValidateOptions {
  /** The stored object, for an update: transition rules (immutable fields, values that only grow) need it. */
  old?: unknown;
}

// ajv-formats is CommonJS with a default export, which NodeNext types as the module namespace.
const addFormats = addFormatsPlugin as unknown as (ajv: Ajv, formats: string[]) => Ajv;

const ajv = new Ajv({
  strict: true,
  // An int-or-string node puts `pattern` next to an anyOf of types, the one shape a structural schema allows;
  // strictTypes cannot see through the anyOf and would refuse it. Every other strict check stays on.
  strictTypes: false,
  allErrors: true,
  useDefaults: true,
  verbose: true,
});
addFormats(ajv, ['date-time']);
ajv.addVocabulary([
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-int-or-string',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-validations',
]);

const compiled = new Map<TSchema, ValidateFunction>();

function compile(schema: TSchema): ValidateFunction {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(schema);
    compiled.set(schema, fn);
  }
  return fn;
}

/**
 * Validates a whole object of a kind (apiVersion, kind, metadata, spec and status if present), after applying
 * the schema defaults to a copy, as the apiserver does before it validates.
 */
export function validate(kind: KindName, object: unknown, options: ValidateOptions = {}): ValidationResult {
  const errors = envelopeErrors(kind, object);
  errors.push(...check(kinds[kind].schema, object, options.old, ''));
  return result(errors);
}

/**
 * The structural part of an Arena training manifest that the CRD holds (sections are objects, a registered
 * algorithm name). Field paths are relative to the manifest unless `at` names where it sits, e.g. "spec.manifest".
 * The manifest's verdict is the platform's: see manifestErrors.
 */
export function validateManifest(manifest: unknown, options: { at?: string } = {}): ValidationResult {
  return result(check(Manifest, manifest, undefined, options.at ?? ''));
}

/**
 * The Arena platform's own verdict on a training manifest, as field errors under `at` (e.g. "spec.manifest").
 * Throws PlatformValidatorUnavailable when the platform's validator cannot be run: no caller may guess then.
 */
export async function manifestErrors(manifest: unknown, options: { at?: string; validator?: PlatformValidator } = {}): Promise<FieldError[]> {
  const verdict = await (options.validator ?? platformValidator()).verdict(manifest);
  if (verdict.valid) return [];
  const at = options.at ?? '';
  return verdict.errors.map((e) => {
    const hint = legacyHint(e.field, manifest);
    return { field: e.field ? (at ? `${at}.${e.field}` : e.field) : at, message: e.message, ...(hint ? { hint } : {}) };
  });
}

/** validate() for an Experiment, plus the platform's verdict on its manifest. */
export async function validateExperiment(object: unknown, options: ValidateOptions & { validator?: PlatformValidator } = {}): Promise<ValidationResult> {
  const structural = validate('Experiment', object, options);
  const errors = structural.ok ? [] : [...structural.errors];
  const manifest = isObject(object) && isObject(object.spec) ? object.spec.manifest : undefined;
  // A manifest the structure already refuses gets no second opinion: its first error is the one to fix.
  if (manifest !== undefined && !errors.some((e) => e.field.startsWith('spec.manifest'))) {
    errors.push(...(await manifestErrors(manifest, { at: 'spec.manifest', validator: options.validator })));
  }
  return result(errors);
}

/** A copy of the object with every schema default filled in, as the apiserver stores it. */
export function withDefaults<K extends KindName>(kind: K, object: ResourceByKind[K]): ResourceByKind[K] {
  const copy = structuredClone(object);
  compile(kinds[kind].schema)(copy);
  return copy;
}

/** One line per error, for status messages and logs. */
export function formatErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.field || '<object>'}: ${e.message}${e.hint ? ` (${e.hint})` : ''}`).join('; ');
}

function result(errors: FieldError[]): ValidationResult {
  return errors.length ? { ok: false, errors } : { ok: true };
}

function envelopeErrors(kind: KindName, object: unknown): FieldError[] {
  if (!isObject(object)) return [{ field: '', message: `must be a ${kind} object` }];
  const errors: FieldError[] = [];
  if (object.apiVersion !== API_VERSION) errors.push({ field: 'apiVersion', message: `must be ${API_VERSION}` });
  if (object.kind !== kind) errors.push({ field: 'kind', message: `must be ${kind}` });
  return errors;
}

function check(schema: TSchema, value: unknown, old: unknown, base: string): FieldError[] {
  const deep = tooDeep(value, base);
  if (deep !== undefined) return [{ field: deep, message: tooDeepMessage() }];
  const data = structuredClone(value);
  const validateFn = compile(schema);
  const schemaErrors = validateFn(data) ? [] : fromAjv(validateFn.errors ?? [], data, base);
  let oldData: unknown;
  if (old !== undefined) {
    oldData = structuredClone(old);
    validateFn(oldData); // for its defaults: the apiserver compares against the stored, defaulted object
  }
  const walkErrors: FieldError[] = [];
  walk(schema as SchemaNode, data, oldData, base, walkErrors);
  return dedupe([...schemaErrors, ...walkErrors]);
}

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

/** Runs the rules attached to each schema node present in the data, and reports fields the schema does not know. */
function walk(node: SchemaNode, value: unknown, old: unknown, path: string, errors: FieldError[]): void {
  if (value === undefined || value === null) return;
  for (const rule of rulesOf(node)) {
    if (isTransitionRule(rule) && (old === undefined || old === null)) continue;
    if (!passes(() => rule.check(value, old))) errors.push({ field: joinFieldPath(path, rule.fieldPath), message: rule.message });
  }
  if (Array.isArray(value)) {
    if (node.items) value.forEach((item, i) => walk(node.items!, item, undefined, childPath(path, i), errors));
    return;
  }
  if (!isObject(value)) return;
  const oldObject = isObject(old) ? old : undefined;
  const { properties, additionalProperties } = node;
  for (const [key, child] of Object.entries(value)) {
    const schema = properties?.[key] ?? (typeof additionalProperties === 'object' ? additionalProperties : undefined);
    if (schema) {
      walk(schema, child, oldObject?.[key], childPath(path, key), errors);
    } else if (properties && !node['x-kubernetes-preserve-unknown-fields']) {
      const hint = closest(key, Object.keys(properties)) ?? `known fields: ${Object.keys(properties).join(', ')}`;
      errors.push({ field: childPath(path, key), message: 'unknown field', hint });
    }
  }
}

// A predicate meets data of the wrong type only when ajv has already reported it; a throw then is not news.
function passes(predicate: () => boolean): boolean {
  try {
    return predicate();
  } catch {
    return true;
  }
}

/** One error per field: the schema's (listed first) is the more basic one. */
function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => !seen.has(e.field) && seen.add(e.field));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
