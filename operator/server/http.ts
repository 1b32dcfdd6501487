// The operator's two HTTP servers. The API server carries the runtime report API (workers send their run tokens)
// and the status API (the platform sends its bearer tokens), so in a cluster it speaks TLS only; health and
// readiness are served there too. The ops server is plain HTTP on a port of its own, with health, readiness (the
// kubelet's probes) and /metrics: metric labels name namespaces, experiments and agents, so the chart's
// NetworkPolicy opens that port only to the monitoring namespace, and the API port never serves them.
import http from 'node:http';
import https from 'node:https';
import express, { type Express, type Router, type ErrorRequestHandler } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from 'winston';

export interface HttpServerOptions {
  host?: string;
  port: number;
  logger: Logger;
  /** Liveness: false only when the process should be restarted. */
  healthy: () => boolean;
  /** Readiness: caches synced (a standby replica is ready too: it can take over at once). */
  ready: () => { ready: boolean; reason?: string };
  routers?: { path: string; router: Router }[];
  /**
   * Serve HTTPS. The server starts without a certificate (every handshake fails) until setCertificate is called,
   * and swaps certificates in place, so a rotation needs no restart. Absent: plain HTTP, for an operator on
   * loopback in local development only (main.ts refuses it otherwise).
   */
  tls?: boolean;
}

export interface RunningServer {
  app: Express;
  server: http.Server | https.Server;
  /** The bound port (useful when started on port 0). */
  port: number;
  url: string;
  /** Serves this certificate to every new connection from now on (TLS servers only). */
  setCertificate(pair: { certPem: string; keyPem: string }): void;
  /** The certificate being served, if any. */
  certificate(): string | undefined;
  close(): Promise<void>;
}

function healthRoutes(app: Express, opts: Pick<HttpServerOptions, 'healthy' | 'ready'>): void {
  app.get('/healthz', (_req, res) => {
    if (opts.healthy()) res.type('text/plain').send('ok');
    else res.status(500).type('text/plain').send('unhealthy');
  });
  app.get('/readyz', (_req, res) => {
    const r = opts.ready();
    if (r.ready) res.type('text/plain').send('ok');
    else res.status(503).type('text/plain').send(r.reason ?? 'not ready');
  });
}

function finish(app: Express, logger: Logger, notFound: string): void {
  app.use((_req, res) => {
    res.status(404).json({ error: { code: 404, reason: 'NotFound', message: notFound } });
  });
  const onError: ErrorRequestHandler = (err: { status?: number; type?: string; message?: string }, _req, res, _next) => {
    // Body-parser errors carry a status (400 malformed JSON, 413 too large); anything else is our bug.
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) logger.error('request failed', { error: err.message });
    const reason = status === 413 ? 'PayloadTooLarge' : status === 400 ? 'BadRequest' : 'InternalError';
    res.status(status).json({ error: { code: status, reason, message: status === 500 ? 'internal error' : (err.message ?? reason) } });
  };
  app.use(onError);
}

async function listen(server: http.Server | https.Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : port;
}

function closer(server: http.Server | https.Server): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
}

const loopbackOf = (host: string) => (host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host);

export async function startHttpServer(opts: HttpServerOptions): Promise<RunningServer> {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  healthRoutes(app, opts);
  for (const r of opts.routers ?? []) app.use(r.path, r.router);
  finish(app, opts.logger, 'no such endpoint (metrics are served on the operator\'s metrics port, not here)');

  let served: string | undefined;
  let server: http.Server | https.Server;
  if (opts.tls) {
    const s = https.createServer({ minVersion: 'TLSv1.2' }, app);
    // A plain-HTTP request to the TLS port, or a client that does not trust the CA, ends in the handshake: no
    // request (and so no bearer token) is ever read from such a connection.
    s.on('tlsClientError', (err) => opts.logger.debug('TLS handshake failed', { error: err.message }));
    server = s;
  } else {
    server = http.createServer(app);
  }
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  const host = opts.host ?? '0.0.0.0';
  const port = await listen(server, opts.port, host);
  return {
    app,
    server,
    port,
    url: `${opts.tls ? 'https' : 'http'}://${loopbackOf(host)}:${port}`,
    setCertificate(pair) {
      if (!(server instanceof https.Server)) throw new Error('setCertificate: this server was started without tls');
      server.setSecureContext({ cert: pair.certPem, key: pair.keyPem, minVersion: 'TLSv1.2' });
      served = pair.certPem;
    },
    certificate: () => served,
    close: closer(server),
  };
}

export interface OpsServerOptions {
  host?: string;
  port: number;
  registry: Registry;
  logger: Logger;
  healthy: () => boolean;
  ready: () => { ready: boolean; reason?: string };
}

export interface OpsServer {
  server: http.Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Health, readiness and /metrics on plain HTTP: what the kubelet and Prometheus call. Nothing here takes a token. */
export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  healthRoutes(app, opts);
  app.get('/metrics', async (_req, res) => {
    res.type(opts.registry.contentType).send(await opts.registry.metrics());
  });
  finish(app, opts.logger, 'no such endpoint: GET /metrics, /healthz or /readyz');
  const server = http.createServer(app);
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  const host = opts.host ?? '0.0.0.0';
  const port = await listen(server, opts.port, host);
  return { server, port, url: `http://${loopbackOf(host)}:${port}`, close: closer(server) };
}
