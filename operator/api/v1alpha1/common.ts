// Shapes shared by more than one arena.agilerl.com/v1alpha1 kind.
import { Type, type Static } from '@sinclair/typebox';
import { Int, Name, Obj, Str, StringEnum, patterns } from '../schema.ts';
import { withRules, type Rule } from '../rules.ts';

export const GROUP = 'arena.agilerl.com';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
/** `kubectl get arena` lists every kind in this category. */
export const CATEGORY = 'arena';

export const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;

export const Description = (what: string) => Str(`Free text for people: ${what}.`, { maxLength: 1024 });

export const ObservedGeneration = () =>
  Int('The metadata.generation this status was computed from; behind metadata.generation means the operator has not caught up yet.', {
    minimum: 0,
  });

export const Reason = (what: string) => Str(`A CamelCase machine-readable reason for ${what}.`, { maxLength: 128, pattern: patterns.camelCase });

export const Message = (what: string) => Str(`A human-readable explanation of ${what}, with what to do when something is wrong.`, { maxLength: 4096 });

/** The core/v1 Toleration shape, with the apiserver's own cross-field checks as rules. */
export const Toleration = withRules(
  Obj('A taint the pods tolerate, in the core/v1 Toleration shape.', {
    key: Type.Optional(Str('The taint key to tolerate; empty with operator Exists tolerates every taint.', { maxLength: 316, pattern: patterns.qualifiedName })),
    operator: Type.Optional(StringEnum('Equal (the default) matches key and value; Exists matches any value of the key.', ['Exists', 'Equal'])),
    value: Type.Optional(Str('The taint value to match with operator Equal.', { maxLength: 63 })),
    effect: Type.Optional(StringEnum('The taint effect to tolerate; empty tolerates every effect.', TAINT_EFFECTS)),
    tolerationSeconds: Type.Optional(
      Int('With effect NoExecute: how long the pod stays bound after the taint appears; unset means forever.', { minimum: 0 }),
    ),
  }),
  [
    {
      cel: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
      message: 'value must be empty when operator is Exists',
      fieldPath: '.value',
      reason: 'FieldValueForbidden',
      check: (t) => t.operator !== 'Exists' || !t.value,
    },
    {
      cel: "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
      message: 'operator must be Exists when key is empty',
      fieldPath: '.operator',
      check: (t) => !!t.key || t.operator === 'Exists',
    },
    {
      cel: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
      message: 'tolerationSeconds only applies to effect NoExecute',
      fieldPath: '.tolerationSeconds',
      reason: 'FieldValueForbidden',
      check: (t) => t.tolerationSeconds === undefined || t.effect === 'NoExecute',
    },
  ],
);
export type Toleration = Static<typeof Toleration>;

export const SecretKeyReference = (what: string) =>
  Obj(`The Secret key that holds ${what}.`, {
    name: Name('Name of the Secret.'),
    namespace: Str('Namespace of the Secret.', { minLength: 1, maxLength: 63, pattern: patterns.dnsLabel }),
    key: Type.Optional(Str('Key inside the Secret.', { minLength: 1, maxLength: 253, default: 'token', pattern: patterns.secretKey })),
  });

/**
 * The two rules of a checkpoint choice with a `step` field: the step is needed exactly when the choice says
 * "this step". Two rules rather than one `==` so each refusal says which way it is wrong.
 */
export function stepChoiceRules(choice: string): Rule<{ checkpoint?: string; step?: number }>[] {
  return [
    {
      cel: `!has(self.checkpoint) || self.checkpoint != '${choice}' || has(self.step)`,
      message: `step is required when checkpoint is ${choice}`,
      fieldPath: '.step',
      reason: 'FieldValueRequired',
      check: (s) => s.checkpoint !== choice || s.step !== undefined,
    },
    {
      cel: `!has(self.step) || (has(self.checkpoint) && self.checkpoint == '${choice}')`,
      message: `step only applies when checkpoint is ${choice}: remove it or set checkpoint: ${choice}`,
      fieldPath: '.step',
      reason: 'FieldValueForbidden',
      check: (s) => s.step === undefined || s.checkpoint === choice,
    },
  ];
}
