// The one place that understands how @kubernetes/client-node 2.x reports failures. Everything else asks
// toKubeError(err) (or a predicate) and gets the Status reason, a short message and whether to retry.
//
// Shapes handled (see errors.test.ts for the real ones, captured from a kube-apiserver):
// - ApiException from generated and KubernetesObjectApi calls: `code` is the HTTP status, `body` the raw
//   response text (a JSON V1Status, or plain text such as "404 page not found"), `headers` the response headers;
//   its `message` is a multi-line dump of all of that and is never shown.
// - Watch failures: a plain Error with `statusCode`, or a V1Status object delivered as a watch ERROR event.
// - Transport failures from undici: TypeError('fetch failed') with a `cause` carrying ECONNREFUSED etc.,
//   and DOMException AbortError / TimeoutError (whose numeric `code` is not an HTTP status).

export type KubeReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'UnsupportedMediaType'
  | 'Invalid'
  | 'TooManyRequests'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'ServerTimeout'
  | 'NetworkError'
  | 'Unknown';

export interface KubeErrorCause {
  field?: string;
  message: string;
}

export interface KubeError {
  /** HTTP status, when the server answered. */
  code?: number;
  reason: KubeReason;
  /** One human line: the Status message, never the whole response dump. */
  message: string;
  /** Whether the same request may succeed later without changing it (after a re-read, for Conflict/Gone). */
  retryable: boolean;
  /** What the server asked for (Retry-After header or Status details). */
  retryAfterSeconds?: number;
  /** Field-level causes of an Invalid (422) answer. */
  causes?: KubeErrorCause[];
}

interface StatusLike {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
  details?: { causes?: { field?: string; message?: string; reason?: string }[]; retryAfterSeconds?: number };
}

const reasonByCode: Record<number, KubeReason> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Gone',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  502: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'ServerTimeout',
};

// Status reasons this module reports as they are; they are spelled as the API server spells them.
const knownReasons: ReadonlySet<string> = new Set<KubeReason>([
  ...Object.values(reasonByCode),
  'AlreadyExists',
  'ServerTimeout',
  'NetworkError',
]);
// Server reasons folded into one of ours: 410 for a too-old resourceVersion is Expired, and means relist just
// as Gone does; Timeout is the 504 flavour of ServerTimeout.
const reasonAliases: Record<string, KubeReason> = { Expired: 'Gone', Timeout: 'ServerTimeout' };

function reasonOf(statusReason: string | undefined): KubeReason | undefined {
  if (!statusReason) return undefined;
  return knownReasons.has(statusReason) ? (statusReason as KubeReason) : reasonAliases[statusReason];
}

const retryableReasons = new Set<KubeReason>([
  'Conflict',
  'Gone',
  'TooManyRequests',
  'InternalError',
  'ServiceUnavailable',
  'ServerTimeout',
  'NetworkError',
]);

const networkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_ABORTED',
]);

// Status messages are one sentence, sometimes quoting a long validation rule; the cap only guards against bodies
// that are not Status at all (an HTML error page from a proxy).
const maxMessage = 1024;

function short(text: string): string {
  const line = text.trim();
  return line.length > maxMessage ? `${line.slice(0, maxMessage - 1)}…` : line;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function parseStatus(body: unknown): StatusLike | undefined {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  return isObject(value) && (value.kind === 'Status' || typeof value.reason === 'string')
    ? (value as StatusLike)
    : undefined;
}

function retryAfterHeader(headers: unknown): number | undefined {
  if (!isObject(headers)) return undefined;
  const value = headers['retry-after'] ?? headers['Retry-After'];
  const seconds = typeof value === 'string' ? Number(value) : undefined;
  return seconds !== undefined && Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

function fromStatus(code: number | undefined, status: StatusLike | undefined, fallback?: string, headers?: unknown) {
  const httpCode = code ?? status?.code;
  const reason =
    reasonOf(status?.reason) ??
    (httpCode !== undefined ? reasonByCode[httpCode] : undefined) ??
    (httpCode !== undefined && httpCode >= 500 ? 'InternalError' : 'Unknown');
  const result: KubeError = {
    reason,
    message: short(status?.message || fallback || (httpCode !== undefined ? `${reason} (HTTP ${httpCode})` : reason)),
    retryable: retryableReasons.has(reason),
  };
  if (httpCode !== undefined) result.code = httpCode;
  const retryAfter = retryAfterHeader(headers) ?? status?.details?.retryAfterSeconds;
  if (retryAfter !== undefined) result.retryAfterSeconds = retryAfter;
  const causes = status?.details?.causes?.map((c) => {
    const cause: KubeErrorCause = { message: c.message ?? c.reason ?? '' };
    if (c.field) cause.field = c.field;
    return cause;
  });
  if (causes?.length) result.causes = causes;
  return result;
}

function networkCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; isObject(e) && depth < 4; e = e.cause, depth++) {
    if (typeof e.code === 'string' && networkCodes.has(e.code)) return e.code;
  }
  return undefined;
}

function network(message: string): KubeError {
  return { reason: 'NetworkError', message: short(message), retryable: true };
}

function isKubeError(v: Record<string, unknown>): v is Record<string, unknown> & KubeError {
  const reason = v.reason as string;
  const known = knownReasons.has(reason) || reason === 'Unknown';
  return known && typeof v.retryable === 'boolean' && typeof v.message === 'string';
}

export function toKubeError(err: unknown): KubeError {
  if (!isObject(err)) return { reason: 'Unknown', message: short(String(err)), retryable: false };
  if (isKubeError(err)) return err;

  // ApiException (generated clients and KubernetesObjectApi).
  if (typeof err.code === 'number' && 'body' in err) {
    const firstLine = typeof err.body === 'string' ? err.body.split('\n')[0] : undefined;
    return fromStatus(err.code, parseStatus(err.body), firstLine, err.headers);
  }
  // A Status object itself, e.g. the object of a watch ERROR event.
  const status = parseStatus(err);
  if (status && !(err instanceof Error)) return fromStatus(status.code, status);
  // A watch that the server refused.
  if (typeof err.statusCode === 'number') {
    return fromStatus(err.statusCode, undefined, typeof err.message === 'string' ? err.message : undefined);
  }

  const message = typeof err.message === 'string' ? err.message : String(err);
  if (err.name === 'AbortError' || err.name === 'TimeoutError') return network(message);
  const code = networkCode(err);
  if (code) {
    const cause = isObject(err.cause) && typeof err.cause.message === 'string' ? err.cause.message : message;
    return network(cause.includes(code) ? cause : `${code}: ${cause}`);
  }
  if (err instanceof TypeError && message === 'fetch failed') return network(message);
  return { reason: 'Unknown', message: short(message), retryable: false };
}

export const isNotFound = (err: unknown): boolean => toKubeError(err).reason === 'NotFound';
export const isConflict = (err: unknown): boolean => toKubeError(err).reason === 'Conflict';
export const isAlreadyExists = (err: unknown): boolean => toKubeError(err).reason === 'AlreadyExists';
export const isGone = (err: unknown): boolean => toKubeError(err).reason === 'Gone';
export const isInvalid = (err: unknown): boolean => toKubeError(err).reason === 'Invalid';
