// Loopback helpers: free ports and health polling. Everything the harness starts listens on 127.0.0.1 only.
import { createServer, type Server } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** Asks the kernel for `count` distinct free ports on 127.0.0.1. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<Server>((resolve, reject) => {
        const s = createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve(s));
      }),
    ),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export interface ProbeTls {
  ca?: string;
  cert?: string;
  key?: string;
  /** Components that serve a self-signed certificate of their own (controller-manager, scheduler). */
  insecure?: boolean;
}

/** One GET; resolves to the status code and body, or rejects on a connection error. */
export function get(url: string, tls: ProbeTls = {}, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const fn = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = fn(
      u,
      {
        method: 'GET',
        timeout: timeoutMs,
        ...(u.protocol === 'https:'
          ? { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecure }
          : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Polls `url` until it answers 200 or `deadlineMs` passes. `alive` lets the caller stop early when the process
 * behind the URL has died, so a broken component fails fast with its own log instead of a timeout.
 */
export async function waitHealthy(
  url: string,
  opts: { tls?: ProbeTls; deadlineMs: number; alive?: () => boolean; what: string },
): Promise<void> {
  const end = Date.now() + opts.deadlineMs;
  let last = 'no answer';
  while (Date.now() < end) {
    if (opts.alive && !opts.alive()) throw new Error(`${opts.what} exited before it became healthy`);
    try {
      const res = await get(url, opts.tls);
      if (res.status === 200) return;
      last = `HTTP ${res.status}: ${res.body.slice(0, 300)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`${opts.what} did not become healthy at ${url} within ${opts.deadlineMs}ms (last: ${last})`);
}
