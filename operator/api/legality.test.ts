import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCrd, type JsonObject } from './crd.ts';
import { schemaViolations } from './legality.ts';
import { kinds } from './v1alpha1/index.ts';

describe('generated schemas are legal CRD schemas', () => {
  for (const def of Object.values(kinds)) {
    test(def.kind, () => {
      assert.deepEqual(schemaViolations(buildCrd(def).spec.versions[0]!.schema.openAPIV3Schema), []);
    });
  }
});

// The lint is only worth something if it catches what the apiserver refuses; each case is one such mistake.
const root = (spec: JsonObject): JsonObject => ({ type: 'object', properties: { metadata: { type: 'object' }, spec } });
const field = (schema: JsonObject): JsonObject => root({ type: 'object', description: 'd', properties: { f: { description: 'f', ...schema } } });

const illegal: Record<string, { schema: JsonObject; finds: RegExp }> = {
  '$ref': { schema: field({ $ref: '#/definitions/x' }), finds: /spec\.f: \$ref/ },
  'const': { schema: field({ type: 'string', const: 'a' }), finds: /spec\.f: const/ },
  'patternProperties': { schema: field({ type: 'object', patternProperties: { '.*': { type: 'string' } } }), finds: /patternProperties/ },
  'typed anyOf branch': { schema: field({ anyOf: [{ type: 'string', maxLength: 1 }, { type: 'integer' }] }), finds: /type is not allowed inside anyOf/ },
  'described oneOf branch': { schema: field({ type: 'string', maxLength: 3, oneOf: [{ description: 'x' }] }), finds: /description is not allowed inside oneOf/ },
  'defaulted anyOf branch': { schema: field({ type: 'integer', anyOf: [{ default: 1 }] }), finds: /default is not allowed inside anyOf/ },
  'additionalProperties false': { schema: field({ type: 'object', properties: { a: { type: 'integer', description: 'a' } }, additionalProperties: false }), finds: /additionalProperties: false/ },
  'additionalProperties with properties': {
    schema: field({ type: 'object', maxProperties: 1, properties: { a: { type: 'integer', description: 'a' } }, additionalProperties: { type: 'integer' } }),
    finds: /properties and additionalProperties cannot be combined/,
  },
  'uniqueItems': { schema: field({ type: 'array', maxItems: 2, uniqueItems: true, items: { type: 'integer' } }), finds: /uniqueItems/ },
  'numeric exclusiveMinimum': { schema: field({ type: 'number', exclusiveMinimum: 0 }), finds: /exclusiveMinimum/ },
  'untyped node': { schema: field({ maxLength: 3 }), finds: /every node needs a type/ },
  'undescribed property': { schema: root({ type: 'object', description: 'd', properties: { f: { type: 'integer' } } }), finds: /spec\.f: every field needs a description/ },
  'unbounded string': { schema: field({ type: 'string' }), finds: /strings need maxLength/ },
  'unbounded array': { schema: field({ type: 'array', items: { type: 'integer' } }), finds: /arrays need maxItems/ },
  'unbounded map': { schema: field({ type: 'object', additionalProperties: { type: 'integer' } }), finds: /maps need maxProperties/ },
  'list-map key not required': {
    schema: field({
      type: 'array',
      maxItems: 2,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['k'],
      items: { type: 'object', properties: { k: { type: 'string', maxLength: 3, description: 'k' } } },
    }),
    finds: /list-map key k must be a required field/,
  },
  'fieldPath to an undeclared field': {
    schema: field({ type: 'object', properties: {}, 'x-kubernetes-validations': [{ rule: 'true', message: 'm', fieldPath: '.nope' }] }),
    finds: /fieldPath \.nope does not name a declared field/,
  },
  'described metadata': {
    schema: { type: 'object', properties: { metadata: { type: 'object', description: 'meta' } } },
    finds: /metadata: must be exactly/,
  },
  'default on a required field': {
    schema: root({ type: 'object', description: 'd', required: ['f'], properties: { f: { type: 'integer', description: 'f', default: 1 } } }),
    finds: /should not be required/,
  },
};

describe('the lint refuses what the apiserver refuses', () => {
  for (const [name, { schema, finds }] of Object.entries(illegal)) {
    test(name, () => {
      const problems = schemaViolations(schema);
      assert.ok(problems.some((p) => finds.test(p)), `expected ${finds} in:\n${problems.join('\n')}`);
    });
  }

  test('the int-or-string anyOf is the one allowed', () => {
    const intOrString = field({ 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }], maxLength: 8 });
    assert.deepEqual(schemaViolations(intOrString), []);
  });
});
