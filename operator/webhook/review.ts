// The admission.k8s.io/v1 AdmissionReview wire format: what the apiserver sends a webhook and what it must get
// back. client-node has no types for it (the group is never served), so the fields the operator reads are here.
import { GROUP, KIND_NAMES, VERSION, isKindName } from '../api/v1alpha1/index.ts';
import type { JsonPatchOp } from './json-patch.ts';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: Operation;
  userInfo?: { username?: string; groups?: string[] };
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface StatusCause {
  type: string;
  field: string;
  message: string;
}

/** A metav1.Status, as a denial carries it; the apiserver hands it to the client with its own prefix. */
export interface AdmissionStatus {
  code: number;
  reason: string;
  message: string;
  details?: { name?: string; group?: string; kind?: string; causes?: StatusCause[] };
}

/** A webhook's answer, before it is wrapped into the AdmissionReview response. */
export interface AdmissionDecision {
  allowed: boolean;
  status?: AdmissionStatus;
  /** Shown to the client as `Warning:` headers (kubectl prints them); at most a line each. */
  warnings?: string[];
  /** Mutations; sent only when non-empty. */
  patch?: JsonPatchOp[];
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    status?: AdmissionStatus & { status: 'Failure' };
    warnings?: string[];
    patch?: string;
    patchType?: 'JSONPatch';
  };
}

export class MalformedReview extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedReview';
  }
}

const OPERATIONS: readonly string[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'];

/** Checks the parts of an AdmissionReview the webhook relies on; anything else is left as sent. */
export function parseReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) throw new MalformedReview('body must be a JSON AdmissionReview object');
  if (body.kind !== 'AdmissionReview') throw new MalformedReview('kind must be AdmissionReview');
  if (body.apiVersion !== ADMISSION_API_VERSION) throw new MalformedReview(`apiVersion must be ${ADMISSION_API_VERSION} (admissionReviewVersions: [v1])`);
  const req = body.request;
  if (!isObject(req)) throw new MalformedReview('request is missing');
  if (typeof req.uid !== 'string' || req.uid === '') throw new MalformedReview('request.uid is missing');
  if (typeof req.operation !== 'string' || !OPERATIONS.includes(req.operation)) throw new MalformedReview('request.operation is missing or unknown');
  const kind = req.kind;
  if (!isObject(kind) || typeof kind.group !== 'string' || typeof kind.version !== 'string' || typeof kind.kind !== 'string') {
    throw new MalformedReview('request.kind must have group, version and kind');
  }
  // Reviews of other groups, of DELETE or of a subresource are not this webhook's to judge and are allowed as they
  // come. One that claims our group but no kind or version of it, or a CREATE or UPDATE of our kind without the
  // object to judge, no apiserver sends: answering it as allowed would hide a broken caller behind a success.
  if (kind.group === GROUP) {
    if (kind.version !== VERSION) throw new MalformedReview(`request.kind.version: ${JSON.stringify(kind.version)} is not a version this webhook judges: ${GROUP}/${VERSION}`);
    if (!isKindName(kind.kind)) throw new MalformedReview(`request.kind.kind: ${JSON.stringify(kind.kind)} is not a kind of ${GROUP}: use ${KIND_NAMES.join(', ')}`);
    const judged = (req.operation === 'CREATE' || req.operation === 'UPDATE') && (req.subResource === undefined || req.subResource === '');
    if (judged && !isObject(req.object)) throw new MalformedReview(`request.object: a ${req.operation} of a ${kind.kind} must carry the object as a JSON object`);
    if (judged && req.operation === 'UPDATE' && !isObject(req.oldObject)) throw new MalformedReview(`request.oldObject: an UPDATE of a ${kind.kind} must carry the stored object as a JSON object`);
  }
  return req as unknown as AdmissionRequest;
}

/** Wraps a decision for the apiserver; the patch travels base64-encoded. */
export function reviewResponse(uid: string, d: AdmissionDecision): AdmissionReviewResponse {
  const response: AdmissionReviewResponse['response'] = { uid, allowed: d.allowed };
  if (!d.allowed && d.status) response.status = { ...d.status, status: 'Failure' };
  if (d.warnings?.length) response.warnings = d.warnings;
  if (d.allowed && d.patch?.length) {
    response.patch = Buffer.from(JSON.stringify(d.patch)).toString('base64');
    response.patchType = 'JSONPatch';
  }
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
