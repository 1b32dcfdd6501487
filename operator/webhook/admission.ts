// What the webhook decides about one AdmissionRequest, apart from HTTP and TLS: validation with the operator's own
// validator (validate.ts, the same one the controllers use), warnings for references to objects that do not exist,
// and defaulting as a JSON Patch.
//
// Through a current CRD the apiserver has already pruned unknown fields, applied schema defaults and run every CEL
// rule before a validating webhook is called, so a denial here means the installed CRD is older than this operator
// (Helm never upgrades CRDs) or lacks a rule the operator knows. References are only warned about: GitOps tools
// apply objects in any order, and the controllers report a missing reference in status until it appears.
import { validate, validateExperiment, withDefaults, formatErrors, type FieldError } from '../api/validate.ts';
import { platformValidator, type PlatformValidator } from '../api/platform/verdict.ts';
import { canonicalScalars } from './canonical.ts';
import { GROUP, VERSION, isKindName, type KindName, type ResourceByKind } from '../api/v1alpha1/index.ts';
import type { Experiment } from '../api/v1alpha1/experiment.ts';
import { diff } from './json-patch.ts';
import { isObject, type AdmissionDecision, type AdmissionRequest } from './review.ts';

/** What the webhook may know of the cluster, from the operator's caches. */
export interface ClusterView {
  /** Whether the named object exists; undefined when that cannot be told now (then nothing is said). */
  exists(kind: KindName, name: string, namespace?: string): Promise<boolean | undefined>;
  /** Names of the ResourceClasses with spec.enabled true (the default); undefined while the cache is not synced. */
  enabledResourceClasses(): string[] | undefined;
}

/** A reference from one of our objects to another, and what happens while the target is missing. */
export interface Reference {
  field: string;
  kind: KindName;
  name: string;
  namespace?: string;
  whileMissing: string;
}

/** The requests this webhook has an opinion on: CREATE and UPDATE of our four kinds, in our version. */
function ourKind(req: AdmissionRequest): KindName | undefined {
  if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return undefined;
  if (req.kind.group !== GROUP || req.kind.version !== VERSION || !isKindName(req.kind.kind)) return undefined;
  if (req.subResource) return undefined;
  return isObject(req.object) ? req.kind.kind : undefined;
}

export function referencesOf(kind: KindName, object: unknown, namespace?: string): Reference[] {
  const spec = isObject(object) && isObject(object.spec) ? object.spec : {};
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const refs: Reference[] = [];
  switch (kind) {
    case 'Experiment': {
      const cls = str(spec.resourceClass);
      if (cls) refs.push({ field: 'spec.resourceClass', kind: 'ResourceClass', name: cls, whileMissing: 'a Train waits in Pending until it is created' });
      const from = isObject(spec.resumeFrom) ? str(spec.resumeFrom.experiment) : undefined;
      if (from) refs.push({ field: 'spec.resumeFrom.experiment', kind: 'Experiment', name: from, namespace, whileMissing: 'the run cannot start until it exists' });
      break;
    }
    case 'ResourceClass': {
      const tc = str(spec.trainingCluster);
      if (tc) refs.push({ field: 'spec.trainingCluster', kind: 'TrainingCluster', name: tc, whileMissing: 'the class is unavailable until it is created' });
      break;
    }
    case 'Deployment': {
      const from = isObject(spec.source) ? str(spec.source.experiment) : undefined;
      if (from) refs.push({ field: 'spec.source.experiment', kind: 'Experiment', name: from, namespace, whileMissing: 'the agent stays Pending until it exists' });
      break;
    }
    case 'TrainingCluster':
      break;
  }
  return refs;
}

function missingWarning(r: Reference): string {
  const where = r.namespace ? ` in namespace ${r.namespace}` : '';
  return `${r.field}: ${r.kind} "${r.name}" not found${where}; ${r.whileMissing}`;
}

/** Reference warnings, looked up concurrently; a lookup that fails says nothing. */
export async function referenceWarnings(kind: KindName, object: unknown, namespace: string | undefined, view: ClusterView): Promise<string[]> {
  const refs = referencesOf(kind, object, namespace);
  const found = await Promise.all(refs.map((r) => view.exists(r.kind, r.name, r.namespace).catch(() => undefined)));
  return refs.filter((_, i) => found[i] === false).map(missingWarning);
}

function objectName(req: AdmissionRequest): string {
  const meta = isObject(req.object) && isObject(req.object.metadata) ? req.object.metadata : {};
  if (typeof meta.name === 'string' && meta.name) return meta.name;
  if (typeof meta.generateName === 'string' && meta.generateName) return `${meta.generateName}*`;
  return req.name ?? '';
}

const errorKey = (e: FieldError) => `${e.field}\u0000${e.message}`;

/**
 * The errors the request introduces. On UPDATE an error the stored object already had is let through, as the
 * apiserver's validation ratcheting does: an object stored under older rules can still get its finalizers removed,
 * its labels edited or its action set to Stop without first fixing every field a newer operator dislikes.
 */
export async function newErrors(kind: KindName, req: AdmissionRequest, validator: PlatformValidator = platformValidator()): Promise<FieldError[]> {
  const old = req.operation === 'UPDATE' && isObject(req.oldObject) ? req.oldObject : undefined;
  // An Experiment's manifest is judged by the Arena platform's own validator; the other kinds are ours alone.
  const check = (object: unknown, options: { old?: unknown }) =>
    kind === 'Experiment' ? validateExperiment(object, { ...options, validator }) : Promise.resolve(validate(kind, object, options));
  const result = await check(req.object, { old });
  if (result.ok) return [];
  if (!old) return result.errors;
  const before = await check(old, {});
  const had = new Set(before.ok ? [] : before.errors.map(errorKey));
  return result.errors.filter((e) => !had.has(errorKey(e)));
}

/** Errors a denial lists; an object with thousands (a manifest of 100,000 unknown keys) is told the first ones and the count. */
export const MAX_DENIAL_ERRORS = 20;

/** A 422 Invalid, in the shape the apiserver's own validation answers with, so clients print it the same way. */
export function denial(kind: KindName, name: string, errors: readonly FieldError[]): AdmissionDecision {
  const shown = errors.slice(0, MAX_DENIAL_ERRORS);
  const more = errors.length - shown.length;
  return {
    allowed: false,
    status: {
      code: 422,
      reason: 'Invalid',
      message: `${kind} "${name}" is invalid: ${formatErrors(shown)}${more > 0 ? `; and ${more} more errors` : ''}`,
      details: {
        name,
        group: GROUP,
        kind,
        causes: shown.map((e) => ({ type: 'FieldValueInvalid', field: e.field, message: e.hint ? `${e.message} (${e.hint})` : e.message })),
      },
    },
  };
}

export async function validateRequest(req: AdmissionRequest, view: ClusterView, validator: PlatformValidator = platformValidator()): Promise<AdmissionDecision> {
  const kind = ourKind(req);
  if (!kind) return { allowed: true };
  const errors = await newErrors(kind, req, validator);
  if (errors.length) return denial(kind, objectName(req), errors);
  return { allowed: true, warnings: await referenceWarnings(kind, req.object, req.namespace, view) };
}

/**
 * Schema defaults (what the apiserver applies itself through a current CRD), plus two no schema can express: an
 * Experiment that asks to Train without a resourceClass gets the only enabled ResourceClass, when exactly one
 * exists; and a manifest value the platform reads by coercion ("64" for an integer, "yes" for a boolean) is
 * written as the value the platform reads it as (canonical.ts), so what is stored means one thing to every reader.
 * An invalid manifest is left alone: validation says what is wrong with what the user wrote.
 */
export async function mutateRequest(
  req: AdmissionRequest,
  view: Pick<ClusterView, 'enabledResourceClasses'>,
  validator: PlatformValidator = platformValidator(),
): Promise<AdmissionDecision> {
  const kind = ourKind(req);
  if (!kind) return { allowed: true };
  const original = req.object as ResourceByKind[KindName];
  let mutated: ResourceByKind[KindName];
  try {
    mutated = withDefaults(kind, original);
  } catch {
    return { allowed: true };
  }
  const warnings: string[] = [];
  if (kind === 'Experiment') {
    const spec = (mutated as Experiment).spec as Experiment['spec'] | undefined;
    if (isObject(spec) && spec.action === 'Train' && !spec.resourceClass) {
      const enabled = view.enabledResourceClasses();
      if (enabled?.length === 1) {
        spec.resourceClass = enabled[0];
        warnings.push(`spec.resourceClass: set to ${enabled[0]}, the only enabled ResourceClass`);
      }
    }
    if (isObject(spec) && isObject(spec.manifest)) {
      const verdict = await validator.verdict(spec.manifest);
      if (verdict.valid) {
        const { value, changes } = canonicalScalars(spec.manifest, verdict.payload);
        spec.manifest = value as typeof spec.manifest;
        for (const c of changes) warnings.push(`spec.manifest.${c.field}: ${JSON.stringify(c.from)} stored as ${JSON.stringify(c.to)}, the value the Arena platform reads it as`);
      }
    }
  }
  // Status is not the user's to write through this request (the status subresource owns it); metadata is the
  // apiserver's. Only spec and the envelope are patched.
  const patch = diff(strip(original), strip(mutated));
  return { allowed: true, ...(patch.length ? { patch } : {}), ...(warnings.length ? { warnings } : {}) };
}

function strip(obj: unknown): Record<string, unknown> {
  if (!isObject(obj)) return {};
  const { status: _status, metadata: _metadata, ...rest } = obj;
  return rest;
}
