// Status writes for custom resources: JSON merge patches on the status subresource, and only when the status
// really changed, so that a reconcile which finds nothing new writes nothing (and does not wake itself again).
import { PatchStrategy, setHeaderOptions, type CustomObjectsApi, type KubernetesObject } from '@kubernetes/client-node';
import type { TSchema } from '@sinclair/typebox';
import { statusEqual } from './conditions.ts';
import { fitToSchema } from '../api/fit.ts';
import type { Metrics } from '../observability/metrics.ts';

export interface CustomResourceRef {
  group: string;
  version: string;
  plural: string;
  /** Omit for cluster-scoped resources. */
  namespace?: string;
  name: string;
}

export interface StatusObject extends KubernetesObject {
  status?: unknown;
}

// Generated patch methods send the first media type they know, application/json-patch+json; a merge patch
// must say so itself.
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/**
 * Merge-patches `status` into the object's status subresource: fields given are set (null removes one), fields
 * not given are left alone, arrays are replaced whole. With `resourceVersion` the write fails with 409 Conflict
 * if the object changed since that version.
 */
export async function patchStatus(
  client: CustomObjectsApi,
  ref: CustomResourceRef,
  status: Record<string, unknown>,
  opts: { resourceVersion?: string } = {},
): Promise<StatusObject> {
  const body: Record<string, unknown> = { status };
  if (opts.resourceVersion) body.metadata = { resourceVersion: opts.resourceVersion };
  const { group, version, plural, name, namespace } = ref;
  const written = namespace
    ? await client.patchNamespacedCustomObjectStatus({ group, version, plural, namespace, name, body }, mergePatch)
    : await client.patchClusterCustomObjectStatus({ group, version, plural, name, body }, mergePatch);
  return written as StatusObject;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/**
 * The RFC 7386 merge patch that turns `from` into `to`: changed fields, null for removed ones, nested objects
 * diffed, arrays and scalars sent whole.
 */
export function mergePatchFor(from: Record<string, unknown>, to: Record<string, unknown>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(from)) {
    if (v !== undefined && to[k] === undefined) patch[k] = null;
  }
  for (const [k, v] of Object.entries(to)) {
    if (v === undefined || statusEqual(from[k], v)) continue;
    patch[k] = isPlainObject(v) && isPlainObject(from[k]) ? mergePatchFor(from[k], v) : v;
  }
  return patch;
}

export interface StatusResource {
  group: string;
  version: string;
  plural: string;
  /** The kind, for the arena_status_writes_total label. */
  kind: string;
  /**
   * The kind's status schema. Text over its limits is cut before the write: one oversized message (a worker's
   * failure text, say) would otherwise make the API server refuse every status write of the object.
   */
  schema?: TSchema;
}

/**
 * Makes the object's status equal `desired`, writing only what differs from `current.status` and nothing when
 * they are equal. The patch is computed against `current`, so it carries current's resourceVersion: if the object
 * changed meanwhile the write fails with Conflict and the caller reconciles again from a fresh read.
 * Returns the written object, or undefined when the write was skipped.
 */
export async function updateStatusIfChanged(
  client: CustomObjectsApi,
  resource: StatusResource,
  current: StatusObject,
  desired: Record<string, unknown>,
  metrics?: Metrics,
): Promise<StatusObject | undefined> {
  const from = isPlainObject(current.status) ? current.status : {};
  if (resource.schema) desired = fitToSchema(resource.schema, desired);
  if (current.status !== undefined && statusEqual(from, desired)) {
    metrics?.statusWrites.inc({ kind: resource.kind, result: 'skipped' });
    return undefined;
  }
  const name = current.metadata?.name;
  if (!name) throw new Error('updateStatusIfChanged: object has no metadata.name');
  const ref = { ...resource, name, namespace: current.metadata?.namespace };
  const written = await patchStatus(client, ref, mergePatchFor(from, desired), {
    resourceVersion: current.metadata?.resourceVersion,
  });
  metrics?.statusWrites.inc({ kind: resource.kind, result: 'written' });
  return written;
}
