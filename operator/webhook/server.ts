// The webhook's HTTPS server, on its own port (9443 by default) beside the plain-HTTP server of health, metrics and
// the APIs: /validate and /mutate take AdmissionReviews. It starts without a certificate (handshakes fail until
// one is set) and swaps certificates in place with setSecureContext, so a rotation needs no restart and open
// connections finish on the certificate they began with.
import https from 'node:https';
import express, { type ErrorRequestHandler, type Request, type Response } from 'express';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from 'winston';
import type { PlatformValidator } from '../api/platform/verdict.ts';
import { mutateRequest, validateRequest, type ClusterView } from './admission.ts';
import { WEBHOOK_PATHS } from './configurations.ts';
import { MalformedReview, parseReview, reviewResponse, type AdmissionDecision, type AdmissionRequest } from './review.ts';

/** An AdmissionReview holds the object and the old object; etcd takes objects up to 1.5 MiB. controller-runtime's limit. */
export const DEFAULT_BODY_LIMIT = 7 * 1024 * 1024;

export interface WebhookServerOptions {
  host?: string;
  port: number;
  view: ClusterView;
  logger: Logger;
  registry?: Registry;
  bodyLimitBytes?: number;
  /** The Arena platform's validator for Experiment manifests; default the process-wide one. */
  manifestValidator?: PlatformValidator;
}

export interface WebhookServer {
  server: https.Server;
  /** The bound port (useful when started on port 0). */
  port: number;
  url: string;
  /** Serves this certificate to every new connection from now on. */
  setCertificate(pair: { certPem: string; keyPem: string }): void;
  /** The certificate being served, if any. */
  certificate(): string | undefined;
  close(): Promise<void>;
}

type Hook = keyof typeof WEBHOOK_PATHS;

function webhookMetrics(registry?: Registry) {
  const registers = registry ? [registry] : [];
  return {
    // controller-runtime's webhook metrics, labelled by path as it does.
    requests: new Counter({ name: 'controller_runtime_webhook_requests_total', help: 'Admission requests by HTTP status code.', labelNames: ['webhook', 'code'], registers }),
    latency: new Histogram({ name: 'controller_runtime_webhook_latency_seconds', help: 'How long admission requests take to answer.', labelNames: ['webhook'], registers }),
    inFlight: new Gauge({ name: 'controller_runtime_webhook_requests_in_flight', help: 'Admission requests being answered.', labelNames: ['webhook'], registers }),
    decisions: new Counter({
      name: 'arena_webhook_admission_decisions_total',
      help: 'Admission answers by webhook, kind, operation and outcome (allowed, denied, warned, patched).',
      labelNames: ['webhook', 'kind', 'operation', 'outcome'],
      registers,
    }),
  };
}

function outcome(d: AdmissionDecision): string {
  if (!d.allowed) return 'denied';
  if (d.patch?.length) return 'patched';
  if (d.warnings?.length) return 'warned';
  return 'allowed';
}

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const log = opts.logger.child({ component: 'webhook' });
  const m = webhookMetrics(opts.registry);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(express.json({ limit: opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT }));

  const handle = (hook: Hook, decide: (req: AdmissionRequest) => AdmissionDecision | Promise<AdmissionDecision>) => async (req: Request, res: Response) => {
    const path = WEBHOOK_PATHS[hook];
    const end = m.latency.startTimer({ webhook: path });
    m.inFlight.inc({ webhook: path });
    const reply = (code: number, body: unknown) => {
      m.requests.inc({ webhook: path, code: String(code) });
      res.status(code).json(body);
    };
    try {
      let request: AdmissionRequest;
      try {
        request = parseReview(req.body);
      } catch (err) {
        if (!(err instanceof MalformedReview)) throw err;
        reply(400, { error: { code: 400, reason: 'BadRequest', message: `malformed AdmissionReview: ${err.message}` } });
        return;
      }
      const decision = await decide(request);
      const name = (request.object as { metadata?: { name?: string } } | undefined)?.metadata?.name ?? request.name;
      const fields = { webhook: path, kind: request.kind.kind, namespace: request.namespace, name, operation: request.operation, uid: request.uid };
      if (!decision.allowed) log.info('admission denied', { ...fields, message: decision.status?.message });
      else if (decision.warnings?.length || decision.patch?.length) log.debug('admission allowed', { ...fields, warnings: decision.warnings, patch: decision.patch });
      m.decisions.inc({ webhook: path, kind: request.kind.kind, operation: request.operation, outcome: outcome(decision) });
      reply(200, reviewResponse(request.uid, decision));
    } catch (err) {
      // The apiserver treats a 500 as a failed call and applies the failure policy; the process carries on.
      log.error('admission review failed', { webhook: path, error: (err as Error).message, stack: (err as Error).stack });
      reply(500, { error: { code: 500, reason: 'InternalError', message: 'internal error' } });
    } finally {
      m.inFlight.dec({ webhook: path });
      end();
    }
  };

  app.post(WEBHOOK_PATHS.validate, handle('validate', (r) => validateRequest(r, opts.view, opts.manifestValidator)));
  app.post(WEBHOOK_PATHS.mutate, handle('mutate', (r) => mutateRequest(r, opts.view, opts.manifestValidator)));
  app.use((_req, res) => {
    res.status(404).json({ error: { code: 404, reason: 'NotFound', message: `no such endpoint: POST ${WEBHOOK_PATHS.validate} or ${WEBHOOK_PATHS.mutate}` } });
  });
  const bodyLimit = opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT;
  const onError: ErrorRequestHandler = (err: { status?: number; type?: string; message?: string }, req, res, _next) => {
    // Body-parser errors carry their status: 400 for JSON that does not parse, 413 over the limit.
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) log.error('webhook request failed', { path: req.path, error: err.message });
    m.requests.inc({ webhook: req.path, code: String(status) });
    const reason = status === 413 ? 'RequestEntityTooLarge' : status === 500 ? 'InternalError' : 'BadRequest';
    const what =
      err.type === 'entity.too.large'
        ? `body: larger than the ${bodyLimit} byte limit`
        : err.type === 'entity.parse.failed'
          ? `body: not valid JSON (${err.message ?? 'parse error'})`
          : `body: ${err.message ?? reason}`;
    res.status(status).json({ error: { code: status, reason, message: status === 500 ? 'internal error' : `malformed AdmissionReview: ${what}` } });
  };
  app.use(onError);

  let served: string | undefined;
  // Without cert and key every handshake fails ("no certificate"), which is what should happen until the first
  // certificate arrives: the apiserver then applies the failure policy.
  const server = https.createServer({ minVersion: 'TLSv1.2' }, app);
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.on('tlsClientError', (err) => log.debug('TLS handshake failed', { error: err.message }));
  const host = opts.host ?? '0.0.0.0';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    server,
    port,
    url: `https://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    setCertificate(pair) {
      server.setSecureContext({ cert: pair.certPem, key: pair.keyPem, minVersion: 'TLSv1.2' });
      served = pair.certPem;
    },
    certificate: () => served,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
