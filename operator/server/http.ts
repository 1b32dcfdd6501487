// The operator's HTTP server: health, readiness and metrics for Kubernetes and Prometheus, and the routers other
// parts mount (the runtime report API now; the platform status API and the admission webhook later).
import express, { type Express, type Router, type ErrorRequestHandler } from 'express';
import type { Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from 'winston';

export interface HttpServerOptions {
  host?: string;
  port: number;
  registry: Registry;
  logger: Logger;
  /** Liveness: false only when the process should be restarted. */
  healthy: () => boolean;
  /** Readiness: caches synced (a standby replica is ready too: it can take over at once). */
  ready: () => { ready: boolean; reason?: string };
  routers?: { path: string; router: Router }[];
}

export interface RunningServer {
  app: Express;
  server: Server;
  /** The bound port (useful when started on port 0). */
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startHttpServer(opts: HttpServerOptions): Promise<RunningServer> {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/healthz', (_req, res) => {
    if (opts.healthy()) res.type('text/plain').send('ok');
    else res.status(500).type('text/plain').send('unhealthy');
  });
  app.get('/readyz', (_req, res) => {
    const r = opts.ready();
    if (r.ready) res.type('text/plain').send('ok');
    else res.status(503).type('text/plain').send(r.reason ?? 'not ready');
  });
  app.get('/metrics', async (_req, res) => {
    res.type(opts.registry.contentType).send(await opts.registry.metrics());
  });
  for (const r of opts.routers ?? []) app.use(r.path, r.router);

  app.use((_req, res) => {
    res.status(404).json({ error: { code: 404, reason: 'NotFound', message: 'no such endpoint' } });
  });
  const onError: ErrorRequestHandler = (err: { status?: number; type?: string; message?: string }, _req, res, _next) => {
    // Body-parser errors carry a status (400 malformed JSON, 413 too large); anything else is our bug.
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) opts.logger.error('request failed', { error: err.message });
    const reason = status === 413 ? 'PayloadTooLarge' : status === 400 ? 'BadRequest' : 'InternalError';
    res.status(status).json({ error: { code: status, reason, message: status === 500 ? 'internal error' : (err.message ?? reason) } });
  };
  app.use(onError);

  const host = opts.host ?? '0.0.0.0';
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(opts.port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    app,
    server,
    port,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
