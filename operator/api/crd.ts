// Turns a kind definition into its CustomResourceDefinition, as plain JSON ready to serialize.
import type { KindDefinition } from './kind.ts';
import { CATEGORY, GROUP, VERSION } from './v1alpha1/common.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[]; categories: string[] };
    scope: 'Cluster' | 'Namespaced';
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: JsonObject };
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: { name: string; type: string; jsonPath: string; description: string; priority?: number }[];
    }[];
  };
}

export function crdName(def: Pick<KindDefinition, 'plural'>): string {
  return `${def.plural}.${GROUP}`;
}

export function buildCrd(def: KindDefinition): CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: crdName(def), labels: { 'app.kubernetes.io/part-of': 'arena-operator' } },
    spec: {
      group: GROUP,
      names: {
        kind: def.kind,
        listKind: def.listKind,
        plural: def.plural,
        singular: def.singular,
        shortNames: [...def.shortNames],
        categories: [CATEGORY],
      },
      scope: def.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: openApiSchema(def.schema) },
          subresources: { status: {} },
          additionalPrinterColumns: def.printerColumns.map((c) => ({
            name: c.name,
            type: c.type,
            jsonPath: c.jsonPath,
            description: c.description,
            ...(c.priority ? { priority: c.priority } : {}),
          })),
        },
      ],
    },
  };
}

/**
 * The schema as the CRD carries it: plain JSON (the TypeBox kind markers and rule predicates live under symbol keys
 * and vanish), with no shared object references (which YAML would turn into anchors), and with keywords sorted so
 * that refactoring a builder does not reorder the generated file. Property order is kept: it is the order
 * `kubectl explain` prints.
 */
export function openApiSchema(schema: object): JsonObject {
  return canonical(JSON.parse(JSON.stringify(schema)) as JsonObject);
}

function canonical(node: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const key of Object.keys(node).sort()) {
    const value = node[key] as Json;
    if (key === 'properties') {
      out[key] = Object.fromEntries(Object.entries(value as JsonObject).map(([name, child]) => [name, canonical(child as JsonObject)]));
    } else if ((key === 'items' || key === 'additionalProperties' || key === 'not') && isObject(value)) {
      out[key] = canonical(value);
    } else if (key === 'anyOf' || key === 'allOf' || key === 'oneOf') {
      out[key] = (value as JsonObject[]).map(canonical);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function isObject(value: Json): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
