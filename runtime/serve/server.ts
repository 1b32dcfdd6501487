// The Arena inference API of one deployment: GET /status, and the route of its algorithm family: POST /get_action
// (classic RL), POST /predict (Supervised, LatentPPO) or POST /generate, /generate_stream and /sessions (LLMs,
// proxied to the image's inference engine). Arrays travel as base64 .npy with a leading batch axis (runtime/npy).
// /status, /healthz, /readyz and /metrics are public; everything else needs Authorization: Bearer <API key>.
import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import type { Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from 'winston';
import type { InferencePath } from '../../operator/api/v1alpha1/manifest.ts';
import { formatShape } from '../npy/npy.ts';
import { WireError, decodeTree, encodeTree, leaves, type NpyTree } from '../npy/tree.ts';
import type { ApiKeyFile } from './api-keys.ts';
import { EngineFailed, EngineUnavailable, type EngineClient, type SamplingParams } from './engine.ts';
import { HttpError, badRequest, errorBody } from './errors.ts';
import { createServeMetrics, routeLabel, type ServeMetrics } from './metrics.ts';
import type { ActionModel, AgentInfo, Predictor } from './models.ts';
import { limitConnections, type ConnectionLimits } from './connection-limits.ts';
import { SESSION_ID, SessionStore } from './sessions.ts';

export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
export const MAX_PROMPTS = 256;
export const MAX_NEW_TOKENS = 32_768;
/** Rows per request: a bigger batch would hold the event loop (and /healthz) for seconds. */
export const MAX_BATCH = 65_536;

export interface InferenceServerOptions {
  /** Default 0.0.0.0. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** The inference route this deployment serves; the other inference routes answer 400. */
  route: InferencePath;
  /** /status's agent; left out of /status when unknown. */
  agent?: AgentInfo;
  deploymentId: string;
  instanceId: string;
  /** For route get_action. */
  actions?: ActionModel;
  /** For route predict; without one /predict answers 501. */
  predictor?: Predictor;
  /** For route generate. The server polls its health from start until close. */
  engine?: EngineClient;
  /** The API key file, or 'disabled' to serve without authentication (local use only). */
  apiKeys: ApiKeyFile | 'disabled';
  logger: Logger;
  /** Default: a new registry with the process's default metrics. */
  registry?: Registry;
  /** Largest request body; default 8 MiB. */
  maxBodyBytes?: number;
  sessions?: SessionStore;
  /** Caps on open connections, in all and per client address (connection-limits.ts). */
  connections?: ConnectionLimits;
}

export interface RunningInferenceServer {
  server: Server;
  port: number;
  url: string;
  metrics: ServeMetrics;
  sessions: SessionStore;
  ready(): { ready: true } | { ready: false; reason: string };
  /** Stops accepting, finishes in-flight requests (cut after `graceMs`, default 10 s) and stops engine polling. */
  close(graceMs?: number): Promise<void>;
}

type Json = Record<string, unknown>;

function requireObject(body: unknown): Json {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('body', 'expected a JSON object (Content-Type: application/json)');
  }
  return body as Json;
}

function optionalTree(body: Json, field: string): NpyTree | undefined {
  const v = body[field];
  return v === undefined ? undefined : decodeTree(v, field);
}

/**
 * The batch size: the request's batch_size (or, without one, the first array's leading axis), which every array
 * of the checked fields must have as its leading axis.
 */
function batchSize(body: Json, checked: { field: string; tree: NpyTree | undefined }[]): number {
  const first = checked[0]!;
  const firstLeaves = first.tree == null ? [] : leaves(first.tree, first.field);
  if (firstLeaves.length === 0) throw badRequest(first.field, 'holds no array');
  let n: number;
  const given = body.batch_size;
  if (given === undefined || given === null) {
    const lead = firstLeaves[0]!.array.shape[0];
    if (lead === undefined) throw badRequest(firstLeaves[0]!.path, 'expected a leading batch axis, got a 0-d array');
    n = lead;
  } else {
    if (typeof given !== 'number' || !Number.isSafeInteger(given) || given < 0) throw badRequest('batch_size', `expected a non-negative integer, got ${JSON.stringify(given)}`);
    n = given;
  }
  if (n > MAX_BATCH) throw badRequest('batch_size', `at most ${MAX_BATCH} rows per request, got ${n}: split the batch`);
  for (const c of checked) {
    for (const leaf of c.tree == null ? [] : leaves(c.tree, c.field)) {
      if (leaf.array.shape[0] !== n) {
        throw badRequest(leaf.path, `expected a leading batch axis of ${n} (batch_size), got shape ${formatShape(leaf.array.shape)}`);
      }
    }
  }
  return n;
}

function samplingParams(v: unknown): SamplingParams {
  const p = v === undefined || v === null ? {} : v;
  if (typeof p !== 'object' || Array.isArray(p)) throw badRequest('params', 'expected an object');
  const o = p as Json;
  const num = (key: string, dflt: number, ok: (x: number) => boolean, want: string): number => {
    const x = o[key] ?? dflt;
    if (typeof x !== 'number' || !Number.isFinite(x) || !ok(x)) throw badRequest(`params.${key}`, `expected ${want}, got ${JSON.stringify(x)}`);
    return x;
  };
  const maxNew = num('max_new_tokens', 100, (x) => Number.isInteger(x) && x >= 1 && x <= MAX_NEW_TOKENS, `an integer from 1 to ${MAX_NEW_TOKENS}`);
  const temperature = num('temperature', 0.7, (x) => x >= 0 && x <= 100, 'a number from 0 to 100');
  const topP = num('top_p', 0.9, (x) => x > 0 && x <= 1, 'a number in (0, 1]');
  const doSample = o.do_sample ?? true;
  if (typeof doSample !== 'boolean') throw badRequest('params.do_sample', `expected true or false, got ${JSON.stringify(doSample)}`);
  // Greedy decoding is temperature 0 to SGLang and vLLM.
  return { max_new_tokens: maxNew, temperature: doSample ? temperature : 0, top_p: doSample ? topP : 1 };
}

function sessionId(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !SESSION_ID.test(v)) throw badRequest('session_id', 'expected 1 to 128 letters, digits, ".", "_", ":" or "-"');
  return v;
}

function promptText(v: unknown, field: string): string {
  if (typeof v !== 'string') throw badRequest(field, `expected a string, got ${v === null ? 'null' : typeof v}`);
  return v;
}

/**
 * A /generate_stream failure as the platform's client reads it: a piece of its own starting "\n[ERROR:", which
 * the client raises as ArenaInferenceError. The status the error would have had leads the text.
 */
export function streamError(status: number, reason: string, message: string): string {
  return `\n[ERROR: ${status} ${reason}: ${message}]`;
}

const ms = (start: number) => Math.round((performance.now() - start) * 1000) / 1000;

export async function startInferenceServer(opts: InferenceServerOptions): Promise<RunningInferenceServer> {
  const log = opts.logger;
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const sessions = opts.sessions ?? new SessionStore();
  const algo = opts.agent?.algo ?? 'this model';

  const ready = (): { ready: true } | { ready: false; reason: string } => {
    if (opts.apiKeys !== 'disabled') {
      const k = opts.apiKeys.state();
      if (!k.ready) return k;
    }
    switch (opts.route) {
      case 'get_action':
        return opts.actions ? { ready: true } : { ready: false, reason: 'no model is loaded' };
      case 'predict':
        return opts.predictor ? { ready: true } : { ready: false, reason: `this runtime image has no predictor for ${algo}: /predict answers 501` };
      case 'generate':
        return opts.engine ? opts.engine.state() : { ready: false, reason: 'no inference engine is configured' };
    }
  };
  const metrics = createServeMetrics(() => ready().ready, opts.registry);

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', false);

  const fail = (res: Response, status: number, reason: string, message: string) => {
    res.locals.errorReason = reason;
    if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
    // The platform's client reads a /generate_stream answer only as a stream: any other status than 200, 401 and
    // 403 reaches its caller as a body it cannot read. So the error travels the way a failure mid-stream does.
    if (res.req.path === '/generate_stream' && status !== 401 && status !== 403) {
      res.status(200).type('text/plain; charset=utf-8').send(streamError(status, reason, message));
      return;
    }
    res.status(status).json(errorBody(status, reason, message));
  };

  // Metrics first, so that refused and failed requests are counted too.
  app.use((req, res, next) => {
    const start = performance.now();
    res.on('close', () => {
      const path = routeLabel(req.path);
      const code = res.statusCode;
      metrics.requests.inc({ path, method: req.method, code: String(code) });
      metrics.duration.observe({ path }, (performance.now() - start) / 1000);
      // An error /generate_stream answers in its body (status 200) is still an error.
      if (code >= 400 || res.locals.errorReason !== undefined) metrics.errors.inc({ path, reason: (res.locals.errorReason as string | undefined) ?? String(code) });
      // Access lines only at debug: get_action runs thousands of times a second. Never with headers (the key).
      if (log.isDebugEnabled()) log.debug('request', { method: req.method, path, code, ms: ms(start), reason: res.locals.errorReason });
    });
    next();
  });

  // Public.
  app.get('/status', (_req, res) => {
    res.json({ success: true, deployment_id: opts.deploymentId, instance_id: opts.instanceId, ...(opts.agent ? { agent: opts.agent } : {}) });
  });
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });
  app.get('/readyz', (_req, res) => {
    const r = ready();
    if (r.ready) res.type('text/plain').send('ok');
    else res.status(503).type('text/plain').send(r.reason);
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  // Everything below needs the API key, checked before the body is read.
  if (opts.apiKeys !== 'disabled') {
    const keys = opts.apiKeys;
    app.use((req, res, next) => {
      const auth = keys.check(req.headers.authorization);
      if (auth.ok) return next();
      fail(res, auth.status, auth.reason, auth.message);
    });
  }
  // Any content type is read as JSON: clients that forget the header still get an answer about their payload.
  app.use(express.json({ limit: maxBody, type: () => true }));

  // The platform's client expects 400 from a route of another deployment type.
  const only = (route: InferencePath, path: string, handler: RequestHandler): RequestHandler =>
    route === opts.route
      ? handler
      : () => {
          throw new HttpError(400, 'WrongRoute', `${path} is not served by this deployment: ${algo} serves /${opts.route}`);
        };

  app.post('/get_action', only('get_action', '/get_action', async (req: Request, res: Response) => {
    const model = opts.actions;
    if (!model) throw new HttpError(503, 'NotReady', 'no model is loaded');
    const body = requireObject(req.body);
    if (body.obs === undefined || body.obs === null) throw badRequest('obs', 'required');
    const obs = decodeTree(body.obs, 'obs');
    const actionMask = optionalTree(body, 'action_mask');
    const n = batchSize(body, [
      { field: 'obs', tree: obs },
      { field: 'action_mask', tree: actionMask },
    ]);
    metrics.batchSize.observe({ path: '/get_action' }, n);
    const result = await model.getAction({
      obs,
      batchSize: n,
      hiddenState: optionalTree(body, 'hidden_state'),
      actionMask,
      envDefinedActions: optionalTree(body, 'env_defined_actions'),
    });
    res.json({ action: encodeTree(result.action), ...(result.hiddenState !== undefined ? { hidden_state: encodeTree(result.hiddenState) } : {}), success: true });
  }));

  app.post('/predict', only('predict', '/predict', async (req: Request, res: Response) => {
    const predictor = opts.predictor;
    if (!predictor) {
      throw new HttpError(501, 'NotImplemented', `this runtime image has no predictor for ${algo}: build an image that plugs one in to serve /predict`);
    }
    const body = requireObject(req.body);
    if (body.inputs === undefined || body.inputs === null) throw badRequest('inputs', 'required');
    const inputs = decodeTree(body.inputs, 'inputs');
    const n = batchSize(body, [{ field: 'inputs', tree: inputs }]);
    metrics.batchSize.observe({ path: '/predict' }, n);
    const start = performance.now();
    const results = await predictor.predict(inputs, n);
    res.json({ results: encodeTree(results), batch_size: n, inference_time_ms: ms(start), success: true });
  }));

  const engine = (): EngineClient => {
    if (!opts.engine) throw new HttpError(503, 'EngineUnavailable', 'no inference engine is configured');
    const s = opts.engine.state();
    if (!s.ready) throw new EngineUnavailable(s.reason);
    return opts.engine;
  };

  app.post('/generate', only('generate', '/generate', async (req: Request, res: Response) => {
    const body = requireObject(req.body);
    const prompts = body.prompts;
    if (!Array.isArray(prompts) || prompts.length === 0) throw badRequest('prompts', 'expected a non-empty list of strings');
    if (prompts.length > MAX_PROMPTS) throw badRequest('prompts', `at most ${MAX_PROMPTS} prompts per request, got ${prompts.length}`);
    const texts = prompts.map((p, i) => promptText(p, `prompts[${i}]`));
    const sampling = samplingParams(body.params);
    const session = sessionId(body.session_id);
    if (session !== undefined && texts.length !== 1) throw badRequest('session_id', `a session continues one conversation: send one prompt, not ${texts.length}`);
    const e = engine();
    metrics.batchSize.observe({ path: '/generate' }, texts.length);
    const start = performance.now();
    const gen = await e.generate(
      texts.map((t) => sessions.prompt(session, t)),
      sampling,
    );
    const elapsed = ms(start);
    if (session !== undefined) sessions.append(session, texts[0]!, gen.completions[0]!);
    // Without the engine's token counts, about four characters per token.
    const tokens = gen.completionTokens ?? gen.completions.reduce((a, c) => a + Math.ceil(c.length / 4), 0);
    res.json({
      results: texts.map((prompt, i) => ({ prompt, completion: gen.completions[i] })),
      batch_size: texts.length,
      inference_time_ms: elapsed,
      tokens_per_second: elapsed > 0 ? Math.round((tokens / (elapsed / 1000)) * 100) / 100 : 0,
      // Exactly the platform's LLMResults: its client refuses any other field (session_id included).
      success: true,
    });
  }));

  app.post('/generate_stream', only('generate', '/generate_stream', async (req: Request, res: Response) => {
    const body = requireObject(req.body);
    const prompt = promptText(body.prompt, 'prompt');
    const sampling = samplingParams(body.params);
    const session = sessionId(body.session_id);
    const e = engine();
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const stream = e.generateStream(sessions.prompt(session, prompt), sampling, abort.signal);
    // The first piece is awaited before the status line, so that an engine that refuses at once gets a status.
    const first = await stream.next();
    res.status(200).setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('X-Accel-Buffering', 'no');
    let completion = '';
    try {
      for (let r = first; !r.done; r = await stream.next()) {
        completion += r.value;
        res.write(r.value);
      }
      if (session !== undefined) sessions.append(session, prompt, completion);
    } catch (err) {
      if (abort.signal.aborted) return;
      const message = err instanceof Error ? err.message : String(err);
      const unavailable = err instanceof EngineUnavailable;
      res.locals.errorReason = unavailable ? 'EngineUnavailable' : 'EngineFailed';
      log.warn('generate_stream failed after the response started', { error: message });
      // Its own write, so it arrives as its own chunk: the client looks for the marker at a chunk's start.
      res.write(streamError(unavailable ? 503 : 502, res.locals.errorReason as string, message));
    }
    res.end();
  }));

  app.get('/sessions', only('generate', '/sessions', (_req: Request, res: Response) => {
    res.json({ sessions: sessions.list(), success: true });
  }));
  app.get('/sessions/:id', only('generate', '/sessions', (req: Request, res: Response) => {
    const s = sessions.get(String(req.params.id));
    if (!s) return fail(res, 404, 'NotFound', `session ${JSON.stringify(req.params.id)} not found`);
    res.json({ ...s, success: true });
  }));
  app.delete('/sessions/:id', only('generate', '/sessions', (req: Request, res: Response) => {
    if (!sessions.delete(String(req.params.id))) return fail(res, 404, 'NotFound', `session ${JSON.stringify(req.params.id)} not found`);
    res.json({ session_id: req.params.id, success: true });
  }));

  app.use((req, res) => fail(res, 404, 'NotFound', `no route ${req.method} ${req.path}`));

  const onError: ErrorRequestHandler = (err: unknown, req, res, _next) => {
    if (res.headersSent) {
      res.end();
      return;
    }
    if (err instanceof HttpError) return fail(res, err.status, err.reason, err.message);
    if (err instanceof WireError) return fail(res, 400, 'BadRequest', err.message);
    if (err instanceof EngineUnavailable) return fail(res, 503, 'EngineUnavailable', err.message);
    if (err instanceof EngineFailed) return fail(res, 502, 'EngineFailed', err.message);
    // body-parser's errors carry a type and a 4xx status.
    const e = err as { type?: string; status?: number; message?: string };
    switch (e.type) {
      case 'entity.too.large':
        return fail(res, 413, 'PayloadTooLarge', `body: larger than the ${maxBody} byte limit`);
      case 'entity.parse.failed':
        return fail(res, 400, 'BadRequest', `body: not valid JSON (${e.message ?? 'parse error'})`);
      case 'encoding.unsupported':
      case 'charset.unsupported':
        return fail(res, 415, 'UnsupportedMediaType', `body: ${e.message ?? 'unsupported encoding'}`);
    }
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) return fail(res, e.status, 'BadRequest', `body: ${e.message ?? 'cannot be read'}`);
    log.error('Inference request failed', { path: req.path, error: err instanceof Error ? err : String(err) });
    fail(res, 500, 'InternalError', 'internal error: see the server log');
  };
  app.use(onError);

  const host = opts.host ?? '0.0.0.0';
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(opts.port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  // Idle keep-alive connections outlive a proxy's idle timeout (Envoy and most load balancers: 60 s), so the proxy,
  // not this server, closes them: otherwise a request the proxy sends as the server closes is lost. Headers must
  // arrive sooner than that, and a body within two minutes.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 70_000;
  server.requestTimeout = 120_000;
  limitConnections(server, opts.connections ?? {}, (cap) => metrics.refusedConnections.inc({ cap }));
  if (opts.engine) void opts.engine.start();
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    server,
    port,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host}:${port}`,
    metrics,
    sessions,
    ready,
    close: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        opts.engine?.stop();
        const cut = setTimeout(() => server.closeAllConnections(), graceMs);
        cut.unref();
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
