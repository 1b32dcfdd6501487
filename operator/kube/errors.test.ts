// Error shapes as @kubernetes/client-node 2.0.1 produced them against kube-apiserver v1.37 (captured once with
// the local control plane; e2e/kube-errors.e2e.test.ts checks the live ones still normalise the same way).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiException } from '@kubernetes/client-node';
import { isAlreadyExists, isConflict, isGone, isInvalid, isNotFound, toKubeError, type KubeError } from './errors.ts';

const json = { 'content-type': 'application/json' };

function apiException(code: number, body: unknown, headers: Record<string, string> = json, message?: string) {
  return new ApiException(code, message ?? 'Unknown API Status Code!', body, headers);
}

function status(code: number, reason: string, message: string, details: object = {}): string {
  return `${JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, details, code })}\n`;
}

function fetchFailed(code: string, message: string): TypeError {
  return new TypeError('fetch failed', { cause: Object.assign(new Error(message), { code }) });
}

const invalidName =
  'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, ' +
  "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for " +
  "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

const cases: Record<string, { err: unknown; want: KubeError }> = {
  'read of a missing object (404, body is Status JSON text)': {
    err: apiException(404, status(404, 'NotFound', 'configmaps "missing" not found', { name: 'missing', kind: 'configmaps' })),
    want: { code: 404, reason: 'NotFound', message: 'configmaps "missing" not found', retryable: false },
  },
  'create of an existing object (409 AlreadyExists)': {
    err: apiException(409, status(409, 'AlreadyExists', 'configmaps "a" already exists', { name: 'a', kind: 'configmaps' })),
    want: { code: 409, reason: 'AlreadyExists', message: 'configmaps "a" already exists', retryable: false },
  },
  'update with a stale resourceVersion (409 Conflict)': {
    err: apiException(
      409,
      status(
        409,
        'Conflict',
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; please apply your changes to the latest version and try again',
        { name: 'a', kind: 'configmaps' },
      ),
    ),
    want: {
      code: 409,
      reason: 'Conflict',
      message:
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; please apply your changes to the latest version and try again',
      retryable: true,
    },
  },
  'invalid object (422 with field causes)': {
    err: apiException(
      422,
      status(422, 'Invalid', `ConfigMap "Bad_Name" is invalid: metadata.name: ${invalidName}`, {
        name: 'Bad_Name',
        kind: 'ConfigMap',
        causes: [{ reason: 'FieldValueInvalid', message: invalidName, field: 'metadata.name' }],
      }),
    ),
    want: {
      code: 422,
      reason: 'Invalid',
      message: `ConfigMap "Bad_Name" is invalid: metadata.name: ${invalidName}`,
      retryable: false,
      causes: [{ field: 'metadata.name', message: invalidName }],
    },
  },
  'KubernetesObjectApi 404 (same body, different wrapper message)': {
    err: apiException(404, status(404, 'NotFound', 'configmaps "missing" not found'), json, 'Unsuccessful HTTP Request'),
    want: { code: 404, reason: 'NotFound', message: 'configmaps "missing" not found', retryable: false },
  },
  'unknown resource path (404 with a plain-text body)': {
    err: apiException(404, '404 page not found\n', { 'content-type': 'text/plain; charset=utf-8' }),
    want: { code: 404, reason: 'NotFound', message: '404 page not found', retryable: false },
  },
  'Status body already parsed into an object': {
    err: apiException(403, {
      kind: 'Status',
      code: 403,
      reason: 'Forbidden',
      message: 'pods is forbidden: User "system:serviceaccount:arena:operator" cannot list resource "pods"',
    }),
    want: {
      code: 403,
      reason: 'Forbidden',
      message: 'pods is forbidden: User "system:serviceaccount:arena:operator" cannot list resource "pods"',
      retryable: false,
    },
  },
  '401 from a generated client (no body at all)': {
    err: apiException(401, undefined, json, 'Unauthorized'),
    want: { code: 401, reason: 'Unauthorized', message: 'Unauthorized (HTTP 401)', retryable: false },
  },
  'throttled, with Retry-After': {
    err: apiException(429, status(429, 'TooManyRequests', 'Too many requests, please try again later.', { retryAfterSeconds: 1 }), {
      ...json,
      'retry-after': '3',
    }),
    want: {
      code: 429,
      reason: 'TooManyRequests',
      message: 'Too many requests, please try again later.',
      retryable: true,
      retryAfterSeconds: 3,
    },
  },
  'apiserver shutting down (503 with a Status)': {
    err: apiException(503, status(503, 'ServiceUnavailable', 'apiserver is shutting down')),
    want: { code: 503, reason: 'ServiceUnavailable', message: 'apiserver is shutting down', retryable: true },
  },
  'request timeout (504 Timeout)': {
    err: apiException(504, status(504, 'Timeout', 'Timeout: request did not complete within requested timeout')),
    want: {
      code: 504,
      reason: 'ServerTimeout',
      message: 'Timeout: request did not complete within requested timeout',
      retryable: true,
    },
  },
  'merge patch sent as the wrong media type (415)': {
    err: apiException(415, status(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format')),
    want: {
      code: 415,
      reason: 'UnsupportedMediaType',
      message: 'the body of the request was in an unknown format',
      retryable: false,
    },
  },
  'watch ERROR event: resourceVersion too old (410 Expired)': {
    err: {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'too old resource version: 1 (52)',
      reason: 'Expired',
      code: 410,
    },
    want: { code: 410, reason: 'Gone', message: 'too old resource version: 1 (52)', retryable: true },
  },
  'watch refused by the server (Error with statusCode)': {
    err: Object.assign(new Error('Not Found'), { statusCode: 404 }),
    want: { code: 404, reason: 'NotFound', message: 'Not Found', retryable: false },
  },
  'watch refused with 410': {
    err: Object.assign(new Error('Gone'), { statusCode: 410 }),
    want: { code: 410, reason: 'Gone', message: 'Gone', retryable: true },
  },
  'API server down (fetch failed, cause ECONNREFUSED)': {
    err: fetchFailed('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:43287'),
    want: { reason: 'NetworkError', message: 'connect ECONNREFUSED 127.0.0.1:43287', retryable: true },
  },
  'connection reset mid-request': {
    err: fetchFailed('ECONNRESET', 'read ECONNRESET'),
    want: { reason: 'NetworkError', message: 'read ECONNRESET', retryable: true },
  },
  'undici connect timeout (code not in the message)': {
    err: fetchFailed('UND_ERR_CONNECT_TIMEOUT', 'Connect Timeout Error'),
    want: { reason: 'NetworkError', message: 'UND_ERR_CONNECT_TIMEOUT: Connect Timeout Error', retryable: true },
  },
  "watch client timeout (DOMException TimeoutError, whose code 23 is no HTTP status)": {
    err: new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
    want: { reason: 'NetworkError', message: 'The operation was aborted due to timeout', retryable: true },
  },
  'aborted request': {
    err: new DOMException('This operation was aborted', 'AbortError'),
    want: { reason: 'NetworkError', message: 'This operation was aborted', retryable: true },
  },
  'a bug, not an API error': {
    err: new TypeError("Cannot read properties of undefined (reading 'spec')"),
    want: { reason: 'Unknown', message: "Cannot read properties of undefined (reading 'spec')", retryable: false },
  },
  'something thrown that is not an Error': {
    err: 'plain string',
    want: { reason: 'Unknown', message: 'plain string', retryable: false },
  },
};

for (const [name, { err, want }] of Object.entries(cases)) {
  test(`toKubeError: ${name}`, () => {
    const got = toKubeError(err);
    assert.deepEqual(got, want);
    assert.equal(toKubeError(got), got, 'normalising twice changes nothing');
  });
}

test('the message is never the ApiException dump', () => {
  const err = cases['read of a missing object (404, body is Status JSON text)']!.err as Error;
  assert.match(err.message, /^HTTP-Code: 404\nMessage: .*\nBody: .*\nHeaders: /s);
  assert.doesNotMatch(toKubeError(err).message, /HTTP-Code|Headers|\n/);
});

test('predicates', () => {
  const is = (err: unknown) =>
    [isNotFound, isConflict, isAlreadyExists, isGone, isInvalid].filter((p) => p(err)).map((p) => p.name);
  assert.deepEqual(is(cases['read of a missing object (404, body is Status JSON text)']!.err), ['isNotFound']);
  assert.deepEqual(is(cases['update with a stale resourceVersion (409 Conflict)']!.err), ['isConflict']);
  assert.deepEqual(is(cases['create of an existing object (409 AlreadyExists)']!.err), ['isAlreadyExists']);
  assert.deepEqual(is(cases['watch ERROR event: resourceVersion too old (410 Expired)']!.err), ['isGone']);
  assert.deepEqual(is(cases['invalid object (422 with field causes)']!.err), ['isInvalid']);
  assert.deepEqual(is(new Error('x')), []);
});

test('a body that is not a Status is cut to a short line', () => {
  const html = `<html><body>${'x'.repeat(5000)}</body></html>`;
  const { message, reason, code } = toKubeError(apiException(502, html, { 'content-type': 'text/html' }));
  assert.equal(code, 502);
  assert.equal(reason, 'InternalError');
  assert.ok(message.length <= 1024, `message has ${message.length} characters`);
});
