// The platform status API: read-only JSON under /api/v1 for the hosted platform to poll. Every answer is built
// from in-memory caches (never an API-server call per request), carries an ETag, and is kept serialised per cache
// version, so a poll that changes nothing costs a lookup. Bearer tokens and a per-client rate limit guard it.
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger } from 'winston';
import { EXPERIMENT_PHASES, type Experiment } from '../api/v1alpha1/experiment.ts';
import { DEPLOYMENT_PHASES, type Deployment } from '../api/v1alpha1/deployment.ts';
import type { ResourceClass } from '../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../api/v1alpha1/trainingcluster.ts';
import { objectKey } from '../kube/controller.ts';
import { computeUsage, hours, round6, totalsByDayAndClass } from '../usage/usage.ts';
import { usageCsv } from '../usage/csv.ts';
import { bearerToken, type TokenSet } from './auth.ts';
import { ClientLimiter } from './client-limiter.ts';
import { AnswerCache, etagOf, ifNoneMatch } from './http-cache.ts';
import type { PlatformMetrics } from './metrics.ts';
import { openApiDocument } from './openapi.ts';
import { DEFAULT_LIMIT, MAX_LIMIT, decodeContinue, encodeContinue, InvalidContinueToken, paginate, prefixRange } from './pagination.ts';
import { STATUS_API_VERSION, type Usage } from './schemas.ts';
import { clusterStatus, deploymentItem, deploymentPhase, experimentDetail, experimentItem, experimentPhase, compareByName, resourceClassSummary } from './views.ts';

/** A read-only view of a cache. `version()` must change whenever the content does. */
export interface Collection<T> {
  get(key: string): T | undefined;
  list(): readonly T[];
  version(): number;
  /** Changes whenever an object is added or removed (not on updates); version() when absent. */
  keysVersion?(): number;
}

export interface StatusSources {
  clusters: Collection<TrainingCluster>;
  classes: Collection<ResourceClass>;
  experiments: Collection<Experiment>;
  deployments: Collection<Deployment>;
}

export interface StatusApiOptions {
  sources: StatusSources;
  tokens: TokenSet;
  /** Per client (token, or IP address for requests without a valid one); false turns it off. Default 20/s, burst 40. */
  rateLimit?: { qps: number; burst: number } | false;
  logger: Logger;
  metrics?: Pick<PlatformMetrics, 'statusApiRequests' | 'statusApiDuration'>;
  now?: () => number;
}

/** The path prefix the router is mounted under. */
export const STATUS_API_PATH = '/api/v1';

const DAY_MS = 86_400_000;
const MAX_USAGE_WINDOW_DAYS = 400;

class BadRequest extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

function fail(res: Response, code: number, reason: string, message: string): void {
  res.status(code).type('application/json').send(JSON.stringify({ error: { code, reason, message } }));
}

/** A single-valued query parameter; repeating it is an error rather than a guess. */
function param(req: Request, name: string): string | undefined {
  const v = (req.query as Record<string, unknown>)[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new BadRequest('InvalidParameter', `query parameter ${name} must be given once, as a plain value`);
  return v;
}

function limitOf(req: Request): number {
  const raw = param(req, 'limit');
  if (raw === undefined) return DEFAULT_LIMIT;
  const n = Number(raw);
  if (!/^[0-9]+$/.test(raw) || n < 1 || n > MAX_LIMIT) throw new BadRequest('InvalidParameter', `limit must be a whole number from 1 to ${MAX_LIMIT}`);
  return n;
}

function phasesOf(req: Request, allowed: readonly string[]): Set<string> | undefined {
  const raw = param(req, 'phase');
  if (raw === undefined || raw === '') return undefined;
  const phases = raw.split(',').map((p) => p.trim());
  const unknown = phases.filter((p) => !allowed.includes(p));
  if (unknown.length > 0) throw new BadRequest('InvalidParameter', `unknown phase ${unknown.join(', ')}: use ${allowed.join(', ')}`);
  return new Set(phases);
}

/** A date (YYYY-MM-DD, UTC midnight; `endOfDay` moves it to the next midnight) or an RFC 3339 time. */
function timeParam(req: Request, name: string, endOfDay: boolean): number | undefined {
  const raw = param(req, name);
  if (raw === undefined || raw === '') return undefined;
  if (/^\d{4}-\d{2}-\d{2}$/.test(raw)) {
    const ms = Date.parse(`${raw}T00:00:00Z`);
    if (Number.isFinite(ms)) return endOfDay ? ms + DAY_MS : ms;
  } else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(raw)) {
    const ms = Date.parse(raw);
    if (Number.isFinite(ms)) return ms;
  }
  throw new BadRequest('InvalidParameter', `${name} must be a date (YYYY-MM-DD) or an RFC 3339 time, got ${JSON.stringify(raw)}`);
}

/** Keys of a collection in order, rebuilt only when its version moves. */
class SortedKeys<T extends { metadata?: { namespace?: string; name?: string } }> {
  private version = -1;
  private keys: string[] = [];

  constructor(private readonly col: Collection<T>) {}

  get(): readonly string[] {
    // Most events are status updates, which leave the set of keys alone: no re-sort for those.
    const v = this.col.keysVersion ? this.col.keysVersion() : this.col.version();
    if (v !== this.version) {
      this.keys = this.col.list().map((o) => objectKey(o)).sort();
      this.version = v;
    }
    return this.keys;
  }
}

function routeName(path: string): string {
  const first = path.split('/')[1] ?? '';
  if (first === 'experiments' && path.split('/').length > 2) return 'experiment';
  return ['cluster', 'resourceclasses', 'experiments', 'deployments', 'usage', 'openapi.json'].includes(first) ? first.replace('.json', '') : 'other';
}

export function statusApiRouter(opts: StatusApiOptions): Router {
  const { sources: src, tokens } = opts;
  const now = opts.now ?? Date.now;
  const router = express.Router();
  const cache = new AnswerCache();
  const limiter = opts.rateLimit === false ? undefined : new ClientLimiter(opts.rateLimit ?? { qps: 20, burst: 40 });
  const experimentKeys = new SortedKeys(src.experiments);
  const deploymentKeys = new SortedKeys(src.deployments);
  const v = (...cols: Collection<unknown>[]) => cols.map((c) => c.version()).join('.');

  router.use((req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    const route = routeName(req.path);
    res.on('finish', () => {
      opts.metrics?.statusApiRequests.inc({ route, code: String(res.statusCode) });
      opts.metrics?.statusApiDuration.observe({ route }, (performance.now() - started) / 1000);
    });
    const auth = tokens.check(bearerToken(req.get('authorization')));
    // Limited before the token is judged, so guessing tokens is as slow as polling.
    if (limiter) {
      const taken = limiter.take(auth.ok ? `token:${auth.client}` : `ip:${req.ip ?? req.socket.remoteAddress ?? ''}`);
      if (!taken.ok) {
        res.set('Retry-After', String(Math.max(1, Math.ceil(taken.retryAfterMs / 1000))));
        fail(res, 429, 'TooManyRequests', 'Too many requests from this client: wait for Retry-After seconds.');
        return;
      }
    }
    if (!auth.ok) {
      if (auth.reason === 'Missing') {
        res.set('WWW-Authenticate', 'Bearer realm="arena-status"');
        fail(res, 401, 'Unauthorized', 'Send a status-API token as Authorization: Bearer <token>.');
      } else {
        fail(res, 403, 'Forbidden', 'Authorization: the bearer token is not accepted: use a token from the operator\'s status-API token Secret.');
      }
      return;
    }
    next();
  });

  /** Serves the answer for (key, version), building and keeping it when it is not kept yet. */
  const answer = (req: Request, res: Response, key: string, version: string, build: () => unknown, contentType = 'application/json'): void => {
    let a = cache.get(key, version);
    if (!a) {
      const built = build();
      const body = typeof built === 'string' ? built : JSON.stringify(built);
      a = { body, etag: etagOf(body), contentType };
      cache.set(key, version, a);
    }
    res.set('ETag', a.etag);
    // Pollers may keep it but must ask again each time; If-None-Match makes asking cheap.
    res.set('Cache-Control', 'private, no-cache');
    if (ifNoneMatch(req.get('if-none-match'), a.etag)) {
      res.status(304).end();
      return;
    }
    res.type(a.contentType).send(a.body);
  };

  /** Query parameters in a canonical order, as part of a cache key. */
  const queryKey = (req: Request) =>
    Object.keys(req.query)
      .sort()
      .map((k) => `${k}=${String((req.query as Record<string, unknown>)[k])}`)
      .join('&');

  const handle = (fn: (req: Request, res: Response) => void) => (req: Request, res: Response) => {
    try {
      fn(req, res);
    } catch (err) {
      if (err instanceof BadRequest) fail(res, 400, err.reason, err.message);
      else if (err instanceof InvalidContinueToken) fail(res, 400, 'InvalidContinueToken', `${err.message}; start again without continue`);
      else throw err;
    }
  };

  router.get(
    '/cluster',
    handle((req, res) =>
      answer(req, res, 'cluster', v(src.clusters, src.classes, src.experiments, src.deployments), () =>
        clusterStatus({ clusters: src.clusters.list(), classes: src.classes.list(), experiments: src.experiments.list(), deployments: src.deployments.list() }),
      ),
    ),
  );

  router.get(
    '/resourceclasses',
    handle((req, res) =>
      answer(req, res, 'resourceclasses', v(src.classes), () => ({
        apiVersion: STATUS_API_VERSION,
        kind: 'ResourceClassList',
        items: [...src.classes.list()].sort(compareByName).map(resourceClassSummary),
      })),
    ),
  );

  router.get(
    '/experiments',
    handle((req, res) => {
      const namespace = param(req, 'namespace') || undefined;
      const cls = param(req, 'class') || undefined;
      const phases = phasesOf(req, EXPERIMENT_PHASES);
      const limit = limitOf(req);
      const filters = { namespace, class: cls, phase: phases ? [...phases].sort().join(',') : undefined };
      const token = param(req, 'continue') || undefined;
      const after = token === undefined ? undefined : decodeContinue(token, filters);
      answer(req, res, `experiments?${queryKey(req)}`, v(src.experiments), () => {
        const keys = experimentKeys.get();
        const page = paginate(
          keys,
          (k) => src.experiments.get(k),
          (e) => (cls === undefined || e.spec.resourceClass === cls) && (phases === undefined || phases.has(experimentPhase(e))),
          limit,
          after,
          namespace === undefined ? undefined : prefixRange(keys, `${namespace}/`),
        );
        return {
          apiVersion: STATUS_API_VERSION,
          kind: 'ExperimentList',
          metadata: { total: page.total, ...(page.nextAfter !== undefined ? { continue: encodeContinue(page.nextAfter, filters) } : {}) },
          items: page.items.map(experimentItem),
        };
      });
    }),
  );

  router.get(
    '/experiments/:namespace/:name',
    handle((req, res) => {
      const key = `${String(req.params.namespace)}/${String(req.params.name)}`;
      const e = src.experiments.get(key);
      if (!e) {
        fail(res, 404, 'NotFound', `experiment ${key} does not exist`);
        return;
      }
      answer(req, res, `experiment:${key}`, `${e.metadata?.uid}/${e.metadata?.resourceVersion}`, () => ({
        apiVersion: STATUS_API_VERSION,
        kind: 'Experiment',
        experiment: experimentDetail(e),
      }));
    }),
  );

  router.get(
    '/deployments',
    handle((req, res) => {
      const namespace = param(req, 'namespace') || undefined;
      const phases = phasesOf(req, DEPLOYMENT_PHASES);
      const limit = limitOf(req);
      const filters = { namespace, phase: phases ? [...phases].sort().join(',') : undefined };
      const token = param(req, 'continue') || undefined;
      const after = token === undefined ? undefined : decodeContinue(token, filters);
      answer(req, res, `deployments?${queryKey(req)}`, v(src.deployments), () => {
        const keys = deploymentKeys.get();
        const page = paginate(
          keys,
          (k) => src.deployments.get(k),
          (d) => phases === undefined || phases.has(deploymentPhase(d)),
          limit,
          after,
          namespace === undefined ? undefined : prefixRange(keys, `${namespace}/`),
        );
        return {
          apiVersion: STATUS_API_VERSION,
          kind: 'DeploymentList',
          metadata: { total: page.total, ...(page.nextAfter !== undefined ? { continue: encodeContinue(page.nextAfter, filters) } : {}) },
          items: page.items.map(deploymentItem),
        };
      });
    }),
  );

  router.get(
    '/usage',
    handle((req, res) => {
      const format = param(req, 'format') ?? 'json';
      if (format !== 'json' && format !== 'csv') throw new BadRequest('InvalidParameter', 'format must be json or csv');
      const namespace = param(req, 'namespace') || undefined;
      // Running attempts count up to now. Answers are kept for the rest of the second they were computed in, so a
      // burst of polls costs one computation and an answer is at most a second old.
      const nowMs = now();
      const toMs = timeParam(req, 'to', true) ?? nowMs;
      const fromMs = timeParam(req, 'from', false) ?? toMs - 30 * DAY_MS;
      if (fromMs >= toMs) throw new BadRequest('InvalidParameter', 'from must be before to');
      if (toMs - fromMs > MAX_USAGE_WINDOW_DAYS * DAY_MS) throw new BadRequest('InvalidParameter', `from, to: the window may span at most ${MAX_USAGE_WINDOW_DAYS} days`);
      if (format === 'csv') {
        const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
        res.set('Content-Disposition', `attachment; filename="arena-usage-${day(fromMs)}-${day(toMs - 1)}.csv"`);
      }
      answer(
        req,
        res,
        `usage?${queryKey(req)}`,
        `${v(src.experiments, src.classes)}@${Math.floor(nowMs / 1000)}`,
        () => {
          const result = computeUsage(src.experiments.list(), { window: { fromMs, toMs }, namespace, nowMs, classOf: (n) => src.classes.get(n) });
          if (format === 'csv') return usageCsv(result.daily);
          const body: Usage = {
            apiVersion: STATUS_API_VERSION,
            kind: 'Usage',
            from: new Date(fromMs).toISOString(),
            to: new Date(toMs).toISOString(),
            ...(namespace !== undefined ? { namespace } : {}),
            generatedAt: new Date(nowMs).toISOString(),
            totals: { nodeHours: hours(result.totals.nodeSeconds), gpuHours: hours(result.totals.gpuSeconds), credits: round6(result.totals.credits) },
            daily: totalsByDayAndClass(result.daily).map((d) => ({
              date: d.date,
              namespace: d.namespace,
              class: d.class,
              experiments: d.experiments,
              nodeHours: hours(d.nodeSeconds),
              gpuHours: hours(d.gpuSeconds),
              credits: round6(d.credits),
            })),
            experiments: result.experiments.map((e) => ({
              namespace: e.namespace,
              name: e.name,
              class: e.class,
              phase: e.phase,
              nodeHours: hours(e.nodeSeconds),
              gpuHours: hours(e.gpuSeconds),
              credits: round6(e.credits),
              liveNodeHours: hours(e.liveNodeSeconds),
            })),
          };
          return body;
        },
        format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json',
      );
    }),
  );

  router.get(
    '/openapi.json',
    handle((req, res) => answer(req, res, 'openapi', '1', () => openApiDocument())),
  );

  router.use((req: Request, res: Response) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.set('Allow', 'GET, HEAD');
      fail(res, 405, 'MethodNotAllowed', `method ${req.method} is not allowed on ${STATUS_API_PATH}${req.path}: the status API is read-only, use GET or HEAD`);
      return;
    }
    fail(res, 404, 'NotFound', `no such endpoint ${STATUS_API_PATH}${req.path}`);
  });

  opts.logger.debug('status API ready', { tokens: tokens.size });
  return router;
}
