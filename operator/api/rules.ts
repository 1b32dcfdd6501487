// Cross-field rules, written once in two languages. The apiserver runs the CEL (as x-kubernetes-validations on the
// schema node the rule is attached to); the TypeScript validator runs `check`, because ajv cannot evaluate CEL.
// Keeping both in one object keeps them side by side in review, and the tests hold them to the same cases.
import type { Static, TSchema } from '@sinclair/typebox';

/** The reasons the apiserver accepts on a rule; each picks the wording of the refusal ("Required value", …). */
export type RuleReason = 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueForbidden' | 'FieldValueDuplicate';

export interface Rule<Self = unknown> {
  /** CEL with `self` bound to the node's value; a rule that mentions `oldSelf` only runs on updates. */
  readonly cel: string;
  /** Says what to change; the apiserver prints it after the field path. */
  readonly message: string;
  /** JSONPath from the node to the field the error names (".step"); the apiserver checks that it exists. */
  readonly fieldPath?: string;
  readonly reason?: RuleReason;
  /** The same predicate as `cel`. For a transition rule `oldSelf` is the stored value; otherwise ignore it. */
  readonly check: (self: Self, oldSelf: Self) => boolean;
}

/** The x-kubernetes-validations entry a CRD carries for a rule. */
export interface CrdValidation {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: RuleReason;
}

const rulesKey = Symbol('arena.api.rules');

type WithRules = { [rulesKey]?: readonly Rule<never>[] };

/** Attaches rules to a schema node: CEL for the CRD, predicates for the TypeScript validator. */
export function withRules<T extends TSchema>(schema: T, rules: readonly Rule<Static<T>>[]): T {
  return {
    ...schema,
    'x-kubernetes-validations': rules.map(toCrdValidation),
    [rulesKey]: rules,
  };
}

/** The rules attached to a schema node by withRules (a symbol key, so JSON and YAML output never see them). */
export function rulesOf(schema: object): readonly Rule<unknown>[] {
  return ((schema as WithRules)[rulesKey] ?? []) as readonly Rule<unknown>[];
}

/** The apiserver treats a rule that refers to oldSelf as a transition rule, evaluated only when an old value exists. */
export function isTransitionRule(rule: Pick<Rule, 'cel'>): boolean {
  return /\boldSelf\b/.test(rule.cel);
}

function toCrdValidation(rule: Rule<never>): CrdValidation {
  return {
    rule: rule.cel,
    message: rule.message,
    ...(rule.fieldPath ? { fieldPath: rule.fieldPath } : {}),
    ...(rule.reason ? { reason: rule.reason } : {}),
  };
}
