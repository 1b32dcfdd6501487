// How a worker reaches the operator's report API without handing its run token to the wrong party: over https,
// verifying the operator's certificate against the CA file the operator mounts (ARENA_REPORT_CA_FILE), or over
// plain http to loopback only (an operator in the same machine, in local development). The token is a header
// of the request, and the request is written only after the handshake verified the server, so a server that
// cannot be verified never sees it.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { isIP } from 'node:net';

/** Why a report URL is refused, or undefined when it may carry a run token. */
export function reportUrlProblem(reportUrl: string, caFile: string | undefined): string | undefined {
  let url: URL;
  try {
    url = new URL(reportUrl);
  } catch {
    return `ARENA_REPORT_URL must be an http(s) URL, got ${JSON.stringify(reportUrl)}`;
  }
  if (url.protocol === 'https:') return undefined;
  if (url.protocol !== 'http:') return `ARENA_REPORT_URL must be an http(s) URL, got ${JSON.stringify(reportUrl)}`;
  if (caFile) return `ARENA_REPORT_URL is plain http (${reportUrl}) but ARENA_REPORT_CA_FILE is set: the operator serves TLS; use its https URL`;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const loopback = host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
  if (!loopback) return `ARENA_REPORT_URL is plain http to ${url.host}: the run token would cross the network unencrypted; use the operator's https URL (plain http is only for an operator on loopback)`;
  return undefined;
}

/** Certificate errors from Node's TLS layer: the server is not who it says, or not one the CA vouches for. */
const VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export class ServerNotVerified extends Error {
  constructor(
    readonly code: string,
    detail: string,
  ) {
    super(`the operator's certificate does not verify against the CA file (${code}: ${detail}); the run token was not sent`);
    this.cause = { code };
  }
}

/**
 * A fetch for https that trusts only the CAs in `caFile`, read again for every request: the kubelet refreshes the
 * mounted ConfigMap when the operator rotates its CA, and the next report picks it up.
 */
export function verifyingFetch(caFile: string): typeof fetch {
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.protocol !== 'https:') throw new Error(`refusing ${url.protocol} with a CA file: the report API is https`);
    let ca: string;
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw Object.assign(new Error(`cannot read the operator's CA file ${caFile} (${(err as Error).message}); the run token was not sent`), { cause: { code: 'CA_FILE_UNREADABLE' } });
    }
    const headers = new Headers(init?.headers);
    const body = typeof init?.body === 'string' ? init.body : init?.body === undefined || init.body === null ? undefined : String(init.body);
    if (body !== undefined) headers.set('content-length', String(Buffer.byteLength(body)));
    return new Promise<Response>((resolve, reject) => {
      const req = https.request(
        url,
        { method: init?.method ?? 'GET', headers: Object.fromEntries(headers), ca, rejectUnauthorized: true, minVersion: 'TLSv1.2', signal: init?.signal ?? undefined },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const h = new Headers();
            for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
            const status = res.statusCode ?? 0;
            resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers: h }));
          });
        },
      );
      req.on('error', (err: Error & { code?: string }) => {
        if (err.code && VERIFY_CODES.has(err.code)) reject(new ServerNotVerified(err.code, err.message));
        else reject(Object.assign(err, { cause: { code: err.code } }));
      });
      req.end(body);
    });
  };
  return f as typeof fetch;
}
