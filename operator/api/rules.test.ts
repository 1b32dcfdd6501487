// The CEL half of each rule runs only in the apiserver (the end-to-end suite sends the shared invalid table there);
// the TypeScript half runs here. These tests hold both halves to the same cases: every rule is refused by at
// least one case of the shared table and accepted by every valid sample, so the e2e run exercises each CEL rule
// on exactly the objects the TypeScript predicate is tested on.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isTransitionRule, rulesOf, type Rule } from './rules.ts';
import { validate } from './validate.ts';
import { invalidObjects, invalidUpdates } from './testdata/invalid-objects.ts';
import { experimentWithUnknownManifestKeys, llmExperiment, sampleStatuses, samples } from './testdata/samples.ts';
import { KIND_NAMES, kinds, type KindName } from './v1alpha1/index.ts';

interface Located {
  kind: KindName;
  path: string;
  rule: Rule<unknown>;
}

interface Node {
  properties?: Record<string, Node>;
  additionalProperties?: Node | boolean;
  items?: Node;
}

function collect(kind: KindName, node: Node, path: string, into: Located[]): Located[] {
  for (const rule of rulesOf(node)) into.push({ kind, path, rule });
  for (const [name, child] of Object.entries(node.properties ?? {})) collect(kind, child, path ? `${path}.${name}` : name, into);
  if (typeof node.additionalProperties === 'object') collect(kind, node.additionalProperties, `${path}{*}`, into);
  if (node.items) collect(kind, node.items, `${path}[*]`, into);
  return into;
}

const allRules = KIND_NAMES.flatMap((kind) => collect(kind, kinds[kind].schema as Node, '', []));

describe('every rule is written in both languages consistently', () => {
  test('there are rules to check', () => assert.ok(allRules.length > 15));

  for (const { kind, path, rule } of allRules) {
    test(`${kind} ${path || '<root>'}: ${rule.cel}`, () => {
      assert.ok(rule.message.length > 0);
      // A transition rule in CEL needs oldSelf in its predicate too, and a state rule must not look at it.
      assert.equal(rule.check.length === 2, isTransitionRule(rule), 'the predicate takes oldSelf exactly when the CEL does');
      if (rule.fieldPath) assert.match(rule.fieldPath, /^(\.[A-Za-z_][A-Za-z0-9_]*)+$/);
    });
  }
});

describe('the shared tables exercise every rule', () => {
  const refusals = new Set<string>();
  for (const c of invalidObjects) {
    const result = validate(c.kind, c.object);
    if (!result.ok) for (const e of result.errors) refusals.add(`${c.kind}\0${e.message}`);
  }
  for (const c of invalidUpdates) {
    const result = validate(c.kind, c.object, { old: c.old });
    if (!result.ok) for (const e of result.errors) refusals.add(`${c.kind}\0${e.message}`);
  }

  for (const { kind, path, rule } of allRules) {
    test(`${kind} ${path || '<root>'}: "${rule.message}" is refused by some case`, () => {
      assert.ok(refusals.has(`${kind}\0${rule.message}`), 'add a case to testdata/invalid-objects.ts that breaks this rule');
    });
  }
});

describe('no rule refuses a valid sample', () => {
  const valid: [KindName, unknown][] = [
    ...KIND_NAMES.map((k): [KindName, unknown] => [k, samples[k]]),
    ...KIND_NAMES.map((k): [KindName, unknown] => [k, { ...samples[k], status: sampleStatuses[k] }]),
    ['Experiment', llmExperiment],
    ['Experiment', experimentWithUnknownManifestKeys],
  ];
  valid.forEach(([kind, object], i) => {
    test(`${kind} #${i}, also as an update of itself`, () => {
      assert.deepEqual(validate(kind, object), { ok: true });
      assert.deepEqual(validate(kind, object, { old: object }), { ok: true });
    });
  });
});
