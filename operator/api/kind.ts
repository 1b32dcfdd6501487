// What every custom resource kind declares once: its names, scope, printer columns and root schema. The CRD
// generator, the validator and the controllers all read these definitions, so a kind exists in exactly one place.
import { Type, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { Obj, Str } from './schema.ts';
import { withRules, type Rule } from './rules.ts';

/** The object shape every kind shares: the usual envelope around a spec and a status. */
export interface Resource<Spec, Status> {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  spec: Spec;
  status?: Status;
}

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description: string;
  /** 0 shows in `kubectl get`; 1 only with `-o wide`. */
  priority?: 0 | 1;
}

export interface KindDefinition<Spec extends TSchema = TSchema, Status extends TSchema = TSchema> {
  kind: string;
  plural: string;
  singular: string;
  listKind: string;
  scope: 'Cluster' | 'Namespaced';
  shortNames: readonly string[];
  /** The root openAPIV3Schema: envelope, spec and status. */
  schema: TUnsafe<Resource<Static<Spec>, Static<Status>>>;
  spec: Spec;
  status: Status;
  printerColumns: readonly PrinterColumn[];
}

export interface KindInput<Spec extends TSchema, Status extends TSchema> {
  kind: string;
  plural: string;
  scope: 'Cluster' | 'Namespaced';
  shortNames: readonly string[];
  /** Shown by `kubectl explain <kind>`: what the object is and who writes it. */
  description: string;
  spec: Spec;
  status: Status;
  printerColumns: readonly PrinterColumn[];
  /** Rules that need the whole object, e.g. to compare a field with metadata.name. */
  rules?: readonly Rule<Resource<Static<Spec>, Static<Status>>>[];
}

export function defineKind<Spec extends TSchema, Status extends TSchema>(input: KindInput<Spec, Status>): KindDefinition<Spec, Status> {
  const envelope = Obj(input.description, {
    apiVersion: Type.Optional(Str('The versioned schema of this representation of the object.', { maxLength: 253 })),
    kind: Type.Optional(Str('The REST resource this object represents, in CamelCase.', { maxLength: 63 })),
    // The apiserver validates metadata itself; a CRD may say nothing else about it, not even a description.
    metadata: Type.Optional(Type.Unsafe<V1ObjectMeta>({ type: 'object' })),
    spec: input.spec,
    status: Type.Optional(input.status),
  });
  const root = Type.Unsafe<Resource<Static<Spec>, Static<Status>>>(envelope);
  return {
    kind: input.kind,
    plural: input.plural,
    singular: input.kind.toLowerCase(),
    listKind: `${input.kind}List`,
    scope: input.scope,
    shortNames: input.shortNames,
    schema: input.rules?.length ? withRules(root, input.rules) : root,
    spec: input.spec,
    status: input.status,
    printerColumns: input.printerColumns,
  };
}

export const ageColumn: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since the object was created.',
};
