// Builders for the one schema source of every custom resource. TypeBox's own builders can emit JSON Schema that a
// CustomResourceDefinition refuses (const, patternProperties, typed anyOf branches), so the kinds use only these
// builders. Each one takes the description first: `kubectl explain` is the API's manual, and a field without text
// teaches nothing. Strings, lists and maps always carry an upper bound because the apiserver estimates the cost of
// every CEL rule from those bounds and refuses rules over unbounded data.
import {
  Type,
  type Static,
  type TArray,
  type TBoolean,
  type TInteger,
  type TNumber,
  type TObject,
  type TProperties,
  type TSchema,
  type TString,
  type TUnsafe,
} from '@sinclair/typebox';
import { withRules } from './rules.ts';
import { parseCpuMilli, parseMemoryBytes, QuantityError } from '../scheduler/quantity.ts';

/** A regular expression that is valid both in Go's RE2 (the apiserver) and in JavaScript's `u` mode (ajv). */
export interface Pattern {
  readonly regex: string;
  /** Completes "must be …" in an error message. */
  readonly means: string;
  readonly example: string;
}

function pattern(regex: string, means: string, example: string): Pattern {
  return { regex, means, example };
}

const dnsLabel = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';

export const patterns = {
  dnsSubdomain: pattern(`^${dnsLabel}(\\.${dnsLabel})*$`, 'a lowercase DNS name (a-z, 0-9, "-" and ".", starting and ending with a letter or digit)', 'nvidia-a100'),
  dnsLabel: pattern(`^${dnsLabel}$`, 'a lowercase DNS label (a-z, 0-9 and "-", starting and ending with a letter or digit)', 'gpu-pool'),
  qualifiedName: pattern(
    `^(${dnsLabel}(\\.${dnsLabel})*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`,
    'a Kubernetes qualified name (an optional DNS prefix and "/", then letters, digits, "-", "_" and ".")',
    'nvidia.com/gpu',
  ),
  semver: pattern(
    '^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?$',
    'a semantic version MAJOR.MINOR.PATCH without a leading "v"',
    '1.4.0',
  ),
  quantity: pattern(
    '^(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$',
    'a non-negative Kubernetes quantity',
    '500m, 4, 16Gi',
  ),
  secretKey: pattern('^[-._a-zA-Z0-9]+$', 'a Secret key (letters, digits, "-", "_" and ".")', 'token'),
  labelValue: pattern('^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$', 'a label value (letters, digits, "-", "_" and ".", starting and ending with a letter or digit)', 'NVIDIA-A100-SXM4-80GB'),
  camelCase: pattern('^[A-Z][A-Za-z0-9]*$', 'a CamelCase word', 'InsufficientGpus'),
  conditionType: pattern(
    `^(${dnsLabel}(\\.${dnsLabel})*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`,
    'a condition type (CamelCase, optionally prefixed with a DNS name and "/")',
    'Ready',
  ),
  absolutePath: pattern('^/.*$', 'an absolute path', '/checkpoints'),
  httpUrl: pattern('^https?://[^\\s]+$', 'an http:// or https:// URL', 'https://arena.agilerl.com'),
  imageReference: pattern('^[^\\s]+$', 'a container image reference without spaces', 'ghcr.io/agilerl/arena-runtime:1.4.0'),
  computeCapability: pattern('^[0-9]+\\.[0-9]+$', 'a CUDA compute capability MAJOR.MINOR', '8.6'),
  utcDate: pattern('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', 'a date YYYY-MM-DD', '2026-11-23'),
} as const satisfies Record<string, Pattern>;

const patternByRegex = new Map<string, Pattern>(Object.values(patterns).map((p) => [p.regex, p]));

/** The human meaning of a regex used by these builders, for error messages. */
export function patternMeaning(regex: string): Pattern | undefined {
  return patternByRegex.get(regex);
}

/** Bounds for strings that hold Kubernetes object names (DNS subdomains). */
export const NAME_MAX = 253;

export interface StringOptions {
  maxLength: number;
  minLength?: number;
  pattern?: Pattern;
  default?: string;
}

export function Str(description: string, options: StringOptions): TString {
  const { pattern: p, ...rest } = options;
  return Type.String({ description, ...rest, ...(p ? { pattern: p.regex } : {}) });
}

/** The name of a Kubernetes object that the field refers to. */
export function Name(description: string, options: { default?: string } = {}): TString {
  return Str(description, { minLength: 1, maxLength: NAME_MAX, pattern: patterns.dnsSubdomain, ...options });
}

/** An RFC 3339 timestamp, as metav1.Time serializes. */
export function Timestamp(description: string): TString {
  return Type.String({ description, format: 'date-time', maxLength: 64 });
}

export interface IntOptions {
  minimum?: number;
  maximum?: number;
  default?: number;
}

export interface NumberOptions extends IntOptions {
  exclusiveMinimum?: number;
}

export function Int(description: string, options: IntOptions = {}): TInteger {
  return Type.Integer({ description, ...options });
}

/**
 * A floating-point number. `exclusiveMinimum` is a boolean in the CRD's OpenAPI v3 dialect but a number in ajv's
 * JSON Schema, so no single keyword serves both; a strict lower bound becomes `minimum` plus a rule instead.
 */
export function Num(description: string, options: NumberOptions = {}): TNumber {
  const { exclusiveMinimum, ...rest } = options;
  if (exclusiveMinimum === undefined) return Type.Number({ description, ...rest });
  return withRules(Type.Number({ description, ...rest, minimum: exclusiveMinimum }), [
    {
      cel: `self > ${celDouble(exclusiveMinimum)}`,
      message: `must be greater than ${exclusiveMinimum}`,
      check: (n) => n > exclusiveMinimum,
    },
  ]);
}

/** A number as a CEL double literal: CEL arithmetic does not mix int and double, so `0.4 + 0` fails to compile. */
export function celDouble(n: number): string {
  return Number.isInteger(n) ? `${n}.0` : `${n}`;
}

export function Bool(description: string, options: { default?: boolean } = {}): TBoolean {
  return Type.Boolean({ description, ...options });
}

/** A string restricted to a fixed set: `type: string` + `enum`, the only enum shape a CRD accepts. */
export function StringEnum<const V extends readonly [string, ...string[]]>(
  description: string,
  values: V,
  options: { default?: V[number] } = {},
): TUnsafe<V[number]> {
  return Type.Unsafe<V[number]>({ type: 'string', description, enum: [...values], ...options });
}

export interface ObjectOptions {
  /** Only for an object whose every field has a default, so the nested defaults apply when it is left out. */
  default?: Record<string, never>;
  /** Keep keys that the schema does not declare (they are otherwise pruned by the apiserver). */
  preserveUnknownFields?: boolean;
}

export function Obj<P extends TProperties>(description: string, properties: P, options: ObjectOptions = {}): TObject<P> {
  const { preserveUnknownFields, ...rest } = options;
  return Type.Object(properties, {
    description,
    ...rest,
    ...(preserveUnknownFields ? { 'x-kubernetes-preserve-unknown-fields': true } : {}),
  });
}

/**
 * An object that keeps every key, declared or not. The declared properties are still validated; the rest travel
 * untouched (the training manifest is the main user: the trainer knows keys this API does not).
 */
export function OpenObj<P extends TProperties>(description: string, properties: P): TUnsafe<Static<TObject<P>> & Record<string, unknown>> {
  return Type.Unsafe<Static<TObject<P>> & Record<string, unknown>>(Obj(description, properties, { preserveUnknownFields: true }));
}

/** An object with no declared shape whose content is kept as written. */
export function PreserveUnknownObject(description: string): TUnsafe<Record<string, unknown>> {
  return Type.Unsafe<Record<string, unknown>>({ type: 'object', description, 'x-kubernetes-preserve-unknown-fields': true });
}

export interface ListOptions<T extends TSchema> {
  maxItems: number;
  default?: Static<T>[];
  minItems?: number;
  /** `atomic` (the default) replaces the whole list on server-side apply; `set` needs scalar items. */
  listType?: 'atomic' | 'set';
}

export function List<T extends TSchema>(description: string, items: T, options: ListOptions<T>): TArray<T> {
  const { listType, ...rest } = options;
  return Type.Array(items, { description, ...rest, ...(listType ? { 'x-kubernetes-list-type': listType } : {}) });
}

/**
 * A list whose items are identified by key fields: the apiserver refuses two items with the same keys and
 * server-side apply merges items by key. Keys must be required scalar fields of the item.
 */
export function ListMap<T extends TObject>(description: string, items: T, options: { keys: readonly (keyof T['properties'] & string)[]; maxItems: number }): TArray<T> {
  return Type.Array(items, {
    description,
    maxItems: options.maxItems,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': [...options.keys],
  });
}

/** A string-to-string map (labels, node selectors): `additionalProperties`, never `patternProperties`. */
export function StringMap(description: string, options: { maxProperties: number; maxValueLength: number }): TUnsafe<Record<string, string>> {
  return Type.Unsafe<Record<string, string>>({
    type: 'object',
    description,
    maxProperties: options.maxProperties,
    additionalProperties: { type: 'string', maxLength: options.maxValueLength },
  });
}

/** A map from free-form keys to values of one schema. */
export function MapOf<T extends TSchema>(description: string, values: T, options: { maxProperties: number }): TUnsafe<Record<string, Static<T>>> {
  return Type.Unsafe<Record<string, Static<T>>>({ type: 'object', description, maxProperties: options.maxProperties, additionalProperties: values });
}

// The one anyOf a structural schema allows: exactly these two branches, with nothing else in them.
const intOrStringBranches = () => [{ type: 'integer' }, { type: 'string' }];

/**
 * A resource amount (`500m`, `4`, `16Gi`): integer or string, as resource.Quantity accepts, and at most `max`.
 * The pattern alone lets through amounts like `1e15` CPUs that no node has and that the scheduler cannot count
 * exactly; the bound refuses them at the API (CEL's quantity library; the same check in TypeScript).
 */
export function Quantity(description: string, bound: { max: string; unit: 'cpu' | 'bytes' }): TUnsafe<string | number> {
  const parse = bound.unit === 'cpu' ? parseCpuMilli : parseMemoryBytes;
  const limit = parse(bound.max);
  const schema = Type.Unsafe<string | number>({
    description: `${description} At most ${bound.max}.`,
    'x-kubernetes-int-or-string': true,
    anyOf: intOrStringBranches(),
    pattern: patterns.quantity.regex,
    maxLength: 64,
  });
  return withRules(schema, [
    {
      cel: `!isQuantity(string(self)) || quantity(string(self)).compareTo(quantity('${bound.max}')) <= 0`,
      message: `must be at most ${bound.max}`,
      check: (self) => {
        try {
          return parse(self) <= limit;
        } catch (err) {
          // Too large to count is over the bound; anything else the pattern refuses already.
          return !(err instanceof QuantityError && /too large|larger/i.test(err.message));
        }
      },
    },
  ]);
}

/** A value that may be written as an integer or a string (e.g. a version `3` or `v3`). */
export function IntOrString(description: string, options: { maxLength: number }): TUnsafe<string | number> {
  return Type.Unsafe<string | number>({ description, 'x-kubernetes-int-or-string': true, anyOf: intOrStringBranches(), maxLength: options.maxLength });
}

/** The metav1.Condition shape, so generic Kubernetes tooling (kubectl wait, kstatus) understands our status. */
export const Condition = Obj('One aspect of the object\'s state, in the standard Kubernetes condition shape.', {
  type: Str('The aspect this condition describes, in CamelCase (for example Ready).', {
    minLength: 1,
    maxLength: 316,
    pattern: patterns.conditionType,
  }),
  status: StringEnum('Whether the condition holds: True, False or Unknown.', ['True', 'False', 'Unknown']),
  observedGeneration: Type.Optional(
    Int('The metadata.generation of the object when this condition was last set; older than the current generation means stale.', {
      minimum: 0,
    }),
  ),
  lastTransitionTime: Timestamp('When status last changed from one value to another (not when the condition was last checked).'),
  reason: Str('A CamelCase machine-readable cause of the last transition.', { minLength: 1, maxLength: 128, pattern: patterns.camelCase }),
  message: Str('A human-readable explanation of the last transition, with what to do about it when something is wrong.', {
    maxLength: 32768,
  }),
});
export type Condition = Static<typeof Condition>;

/** Conditions as a list-map keyed by type, so each type appears once and server-side apply merges them by type. */
export function Conditions(description: string): TArray<typeof Condition> {
  return ListMap(description, Condition, { keys: ['type'], maxItems: 16 });
}
