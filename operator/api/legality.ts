// A lint for generated openAPIV3Schemas: what the apiserver refuses in a CRD (non-structural schemas, fields that
// JSONSchemaProps does not have) plus this project's own rules (every property described, every string, list and
// map bounded so CEL cost estimates stay within limits). The generator refuses to write a CRD that fails it.
import { isDeepStrictEqual } from 'node:util';
import type { JsonObject } from './crd.ts';

const SCHEMA_FIELDS = new Set([
  'description',
  'type',
  'format',
  'title',
  'default',
  'maximum',
  'minimum',
  'maxLength',
  'minLength',
  'pattern',
  'maxItems',
  'minItems',
  'multipleOf',
  'enum',
  'maxProperties',
  'minProperties',
  'required',
  'items',
  'allOf',
  'oneOf',
  'anyOf',
  'not',
  'properties',
  'additionalProperties',
  'nullable',
  'example',
  'externalDocs',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-int-or-string',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-list-type',
  'x-kubernetes-map-type',
  'x-kubernetes-validations',
]);

const WHY_NOT: Record<string, string> = {
  $ref: 'CRD schemas cannot reference definitions; inline the schema',
  const: 'not a CRD schema field; use a one-value enum',
  patternProperties: 'not allowed in CRDs; use additionalProperties',
  uniqueItems: 'refused by the apiserver (quadratic cost); use x-kubernetes-list-type: set',
  exclusiveMinimum: 'a boolean in the CRD dialect but a number for ajv; use minimum plus a rule',
  exclusiveMaximum: 'a boolean in the CRD dialect but a number for ajv; use maximum plus a rule',
};

// The only typed anyOf a structural schema allows, on an x-kubernetes-int-or-string node.
const INT_OR_STRING_ANY_OF = [{ type: 'integer' }, { type: 'string' }];
const FORBIDDEN_IN_JUNCTORS = ['type', 'description', 'default', 'nullable', 'additionalProperties'];

/** Every problem found, as "path: problem"; empty when the schema is legal. */
export function schemaViolations(root: JsonObject): string[] {
  const problems: string[] = [];
  const report = (path: string, problem: string) => problems.push(`${path || '<root>'}: ${problem}`);
  if (root.type !== 'object') report('', 'the root must be type object');
  if ('additionalProperties' in root) report('', 'additionalProperties is not allowed at the root');
  const metadata = (root.properties as JsonObject | undefined)?.metadata as JsonObject | undefined;
  if (metadata && !isDeepStrictEqual(metadata, { type: 'object' })) report('metadata', 'must be exactly {type: object}: the apiserver owns its schema');
  visit(root, '', report);
  return problems;
}

type Report = (path: string, problem: string) => void;

function visit(node: JsonObject, path: string, report: Report): void {
  for (const key of Object.keys(node)) {
    if (!SCHEMA_FIELDS.has(key)) report(path, `${key}: ${WHY_NOT[key] ?? 'not a field of a CRD schema'}`);
  }
  const intOrString = node['x-kubernetes-int-or-string'] === true;
  const preserveUnknown = node['x-kubernetes-preserve-unknown-fields'] === true;

  if (node['x-kubernetes-preserve-unknown-fields'] === false) report(path, 'x-kubernetes-preserve-unknown-fields: false is refused; leave it out');
  if (!('type' in node) && !intOrString && !preserveUnknown) report(path, 'every node needs a type');
  checkJunctors(node, path, intOrString, report);

  if (node.type === 'string' || intOrString) {
    if (!('maxLength' in node) && !('enum' in node)) report(path, 'strings need maxLength or enum (CEL cost and etcd size)');
  }
  if (node.type === 'array') checkArray(node, path, report);
  if (node.type === 'object') checkObject(node, path, report);
  checkRules(node, path, report);
}

function checkJunctors(node: JsonObject, path: string, intOrString: boolean, report: Report): void {
  for (const junctor of ['anyOf', 'oneOf', 'allOf'] as const) {
    const branches = node[junctor] as JsonObject[] | undefined;
    if (!branches) continue;
    if (junctor === 'anyOf' && intOrString && isDeepStrictEqual(branches, INT_OR_STRING_ANY_OF)) continue;
    branches.forEach((branch, i) => {
      for (const key of FORBIDDEN_IN_JUNCTORS) {
        if (key in branch) report(`${path}.${junctor}[${i}]`, `${key} is not allowed inside ${junctor}`);
      }
    });
  }
  const not = node.not as JsonObject | undefined;
  for (const key of FORBIDDEN_IN_JUNCTORS) {
    if (not && key in not) report(`${path}.not`, `${key} is not allowed inside not`);
  }
}

function checkArray(node: JsonObject, path: string, report: Report): void {
  if (!('maxItems' in node)) report(path, 'arrays need maxItems (CEL cost and etcd size)');
  const items = node.items;
  if (!items || typeof items !== 'object' || Array.isArray(items)) {
    report(path, 'arrays need one items schema (no tuples)');
    return;
  }
  if (node['x-kubernetes-list-type'] === 'map') checkListMap(node, items as JsonObject, path, report);
  visit(items as JsonObject, `${path}[*]`, report);
}

function checkListMap(node: JsonObject, items: JsonObject, path: string, report: Report): void {
  const keys = node['x-kubernetes-list-map-keys'] as string[] | undefined;
  if (!keys?.length) {
    report(path, 'a list-type map needs x-kubernetes-list-map-keys');
    return;
  }
  const required = new Set((items.required as string[] | undefined) ?? []);
  const properties = (items.properties as JsonObject | undefined) ?? {};
  for (const key of keys) {
    const type = (properties[key] as JsonObject | undefined)?.type;
    if (!required.has(key)) report(path, `list-map key ${key} must be a required field of the items`);
    if (type !== 'string' && type !== 'integer' && type !== 'boolean') report(path, `list-map key ${key} must be a scalar`);
  }
}

function checkObject(node: JsonObject, path: string, report: Report): void {
  const properties = node.properties as JsonObject | undefined;
  const additional = node.additionalProperties;
  if (additional === false) report(path, 'additionalProperties: false is refused in CRDs (unknown fields are pruned anyway)');
  if (additional === true) report(path, 'additionalProperties: true is refused; use x-kubernetes-preserve-unknown-fields');
  if (additional !== undefined && properties) report(path, 'properties and additionalProperties cannot be combined');
  if (typeof additional === 'object' && additional !== null) {
    if (!('maxProperties' in node)) report(path, 'maps need maxProperties (CEL cost and etcd size)');
    visit(additional as JsonObject, `${path}{*}`, report);
  }
  const required = (node.required as string[] | undefined) ?? [];
  for (const name of required) {
    if (!properties || !(name in properties)) report(path, `required field ${name} is not declared`);
  }
  for (const [name, child] of Object.entries(properties ?? {})) {
    const childPath = path ? `${path}.${name}` : name;
    const schema = child as JsonObject;
    const isRootMetadata = path === '' && name === 'metadata';
    if (!isRootMetadata && (typeof schema.description !== 'string' || schema.description.trim() === '')) report(childPath, 'every field needs a description');
    if (required.includes(name) && 'default' in schema) report(childPath, 'a field with a default should not be required (kubectl explain would call it required)');
    visit(schema, childPath, report);
  }
}

function checkRules(node: JsonObject, path: string, report: Report): void {
  const rules = node['x-kubernetes-validations'] as JsonObject[] | undefined;
  for (const rule of rules ?? []) {
    if (typeof rule.rule !== 'string' || typeof rule.message !== 'string') report(path, 'each validation needs a rule and a message');
    const fieldPath = rule.fieldPath;
    if (typeof fieldPath === 'string' && !resolves(node, fieldPath)) report(path, `fieldPath ${fieldPath} does not name a declared field`);
  }
}

/** Whether a simple JSONPath such as ".spec.resumeFrom.step" follows declared properties from node. */
function resolves(node: JsonObject, fieldPath: string): boolean {
  if (!/^(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(fieldPath)) return false;
  let current: JsonObject | undefined = node;
  for (const segment of fieldPath.slice(1).split('.')) {
    current = (current?.properties as JsonObject | undefined)?.[segment] as JsonObject | undefined;
    if (!current) return false;
  }
  return true;
}
