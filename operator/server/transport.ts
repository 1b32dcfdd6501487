// How the binary serves its API, decided from its flags: TLS with a certificate the workers can verify, or plain
// HTTP for an operator on loopback in local development, and nothing in between. Pure, so every refusal is tested.
import { isIP } from 'node:net';
import { DEFAULT_API_TLS_SECRET, DEFAULT_CA_CONFIGMAP, type ApiTlsConfig } from './api-tls.ts';

export interface TransportFlags {
  reportUrl?: string;
  insecurePlainHttp?: boolean;
  tlsSecret?: string;
  /** The Secret is an administrator's (cert-manager, a corporate CA): read it, never write it. */
  tlsSecretSupplied?: boolean;
  /** Extra names the made certificate carries (an Ingress backend name, say). */
  tlsDnsNames?: string[];
  caConfigMap?: string;
}

export type Transport = { ok: true; reportUrl: string; tls?: ApiTlsConfig } | { ok: false; error: string };

const EXAMPLE = 'https://arena-operator.arena-system.svc:8080';

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/** The names a certificate for this URL's host needs: the host, and the .cluster.local form of a Service name. */
export function certificateNamesFor(url: URL, extra: string[] = []): { dnsNames: string[]; ipAddresses: string[] } {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const dnsNames = [...extra];
  const ipAddresses: string[] = [];
  if (isIP(host)) ipAddresses.push(host);
  else {
    dnsNames.push(host);
    if (host.endsWith('.svc')) dnsNames.push(`${host}.cluster.local`);
  }
  return { dnsNames: [...new Set(dnsNames)], ipAddresses };
}

export function apiTransport(f: TransportFlags): Transport {
  if (!f.reportUrl) return { ok: false, error: `--report-url (or ARENA_REPORT_URL) is not set: give the https URL worker pods reach this operator at, e.g. ${EXAMPLE}` };
  let url: URL;
  try {
    url = new URL(f.reportUrl);
  } catch {
    return { ok: false, error: `--report-url ${JSON.stringify(f.reportUrl)} is not a URL; e.g. ${EXAMPLE}` };
  }
  if (f.insecurePlainHttp) {
    if (url.protocol !== 'http:' || !isLoopback(url.hostname)) {
      return {
        ok: false,
        error: `--insecure-plain-http sends run tokens unencrypted and is only for an operator on loopback in local development: --report-url must then be http://127.0.0.1:<port>, got ${f.reportUrl}; in a cluster drop --insecure-plain-http and serve TLS`,
      };
    }
    if (f.tlsSecret || f.tlsSecretSupplied) return { ok: false, error: '--insecure-plain-http and --api-tls-secret exclude each other: choose TLS (in a cluster) or plain HTTP on loopback (local development)' };
    return { ok: true, reportUrl: f.reportUrl };
  }
  if (url.protocol !== 'https:') {
    return {
      ok: false,
      error: `--report-url must be https, got ${f.reportUrl}: workers send their run tokens there, and the operator serves its API over TLS (e.g. ${EXAMPLE}); for an operator on loopback in local development pass --insecure-plain-http`,
    };
  }
  const names = certificateNamesFor(url, f.tlsDnsNames);
  return {
    ok: true,
    reportUrl: f.reportUrl,
    tls: {
      secretName: f.tlsSecret || DEFAULT_API_TLS_SECRET,
      manage: !f.tlsSecretSupplied,
      caConfigMapName: f.caConfigMap || DEFAULT_CA_CONFIGMAP,
      ...names,
    },
  };
}
