// The part of the kubelet's HTTPS API that `kubectl logs` reaches: the API server proxies
// GET /containerLogs/{namespace}/{pod}/{container} to the node's InternalIP and daemonEndpoints port. It does not
// check the node's certificate unless started with --kubelet-certificate-authority, so a certificate from a CA
// made up at start is enough. Listens on 127.0.0.1 only.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { stat } from 'node:fs/promises';
import { createAuthority } from '../../operator/pki/certs.ts';
import { followLog, limitBytes, readLog, type LogQuery } from './log-file.ts';

export type LogLookup =
  | { path: string; running: () => boolean }
  | { status: number; message: string };

export interface KubeletServerOptions {
  nodeName: string;
  /** 0 picks a free port. */
  port?: number;
  /** Where a container's log is, or why there is none (the kubelet answers 400 for a container not started yet). */
  lookup: (namespace: string, pod: string, container: string, previous: boolean) => LogLookup;
}

export class KubeletServer {
  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly open: Set<AbortController>,
  ) {}

  static async start(opts: KubeletServerOptions): Promise<KubeletServer> {
    const ca = await createAuthority(`${opts.nodeName}-kubelet-ca`);
    const serving = await ca.issue({
      commonName: opts.nodeName,
      usage: 'server',
      dnsNames: [opts.nodeName, 'localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const open = new Set<AbortController>();
    const server = createServer({ cert: `${serving.certPem.trimEnd()}\n${ca.certPem.trimEnd()}\n`, key: serving.keyPem }, (req, res) => {
      const abort = new AbortController();
      open.add(abort);
      res.on('close', () => {
        abort.abort();
        open.delete(abort);
      });
      handle(req, res, opts, abort.signal).catch((err: unknown) => {
        if (!res.headersSent) reply(res, 500, (err as Error).message);
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('kubelet server has no port');
    return new KubeletServer(server, addr.port, open);
  }

  async stop(): Promise<void> {
    for (const a of this.open) a.abort();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function reply(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(`${message}\n`);
}

function intParam(v: string | null): number | undefined {
  if (v === null || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? Math.trunc(n) : undefined;
}

async function handle(req: IncomingMessage, res: ServerResponse, opts: KubeletServerOptions, signal: AbortSignal): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://localhost');
  if (req.method !== 'GET') return reply(res, 405, 'method not allowed');
  if (url.pathname === '/healthz') return reply(res, 200, 'ok');
  const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
  if (!m) return reply(res, 404, `${url.pathname} is not served by the local node (only /containerLogs and /healthz)`);
  const [namespace, pod, container] = [m[1]!, m[2]!, m[3]!].map(decodeURIComponent) as [string, string, string];
  const q = url.searchParams;
  const previous = q.get('previous') === 'true';
  const found = opts.lookup(namespace, pod, container, previous);
  if ('status' in found) return reply(res, found.status, found.message);
  if (!(await stat(found.path).catch(() => undefined))) return reply(res, 404, `no log file for ${namespace}/${pod}/${container}`);

  const sinceSeconds = intParam(q.get('sinceSeconds'));
  const sinceTimeText = q.get('sinceTime');
  const query: LogQuery = {
    stream: q.get('stream') ?? 'All',
    timestamps: q.get('timestamps') === 'true',
    tailLines: intParam(q.get('tailLines')),
    limitBytes: intParam(q.get('limitBytes')),
    sinceTime:
      sinceSeconds !== undefined ? new Date(Date.now() - sinceSeconds * 1000) : sinceTimeText ? new Date(sinceTimeText) : undefined,
  };

  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
  if (q.get('follow') !== 'true') {
    const { text } = await readLog(found.path, query);
    res.end(limitBytes(text, query.limitBytes));
    return;
  }
  let left = query.limitBytes ?? Infinity;
  for await (const text of followLog(found.path, query, found.running, signal)) {
    const out = limitBytes(text, Number.isFinite(left) ? left : undefined);
    res.write(out);
    left -= Buffer.byteLength(out);
    if (left <= 0) break;
  }
  res.end();
}
