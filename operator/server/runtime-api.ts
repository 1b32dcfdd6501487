// POST /runtime/v1/reports: workers report progress, checkpoints, completion and failure (protocol.ts). The run
// token (credentials/run-token.ts) is checked from the header before the body is read, and it names the one worker
// of the one attempt it may speak for: a body that claims anything else is refused. Each run has a budget of
// requests and of checkpoints, so one worker's token cannot flood the operator or the experiment's status.
import express, { type ErrorRequestHandler, type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger } from 'winston';
import type { Counter } from 'prom-client';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { MAX_REPORT_BYTES, REPORTS_PATH, parseReport, type Report } from '../runtime-api/protocol.ts';
import { StaleReportError } from '../controllers/experiment/reports.ts';
import type { RunTokenCheck, RunTokenClaims } from '../credentials/run-token.ts';

export interface ReportBudget {
  /** Report requests per run per second (bursts up to this many). */
  requestsPerSecond: number;
  /** Checkpoint events per run per minute. */
  checkpointsPerMinute: number;
}

/** Far above what a run sends (a report every second or so per worker, a checkpoint per evolution step). */
export const DEFAULT_REPORT_BUDGET: ReportBudget = { requestsPerSecond: 50, checkpointsPerMinute: 120 };

export interface RuntimeApiDeps {
  /** Checks a bearer token and returns what it may claim; 'unavailable' while the signing key is not loaded. */
  checkToken: (token: string) => RunTokenCheck;
  /** Files the report with the experiment's reconciler; resolves to the acknowledged sequence number. */
  accept: (report: Report) => Promise<number>;
  /** Only the leader takes reports: it alone writes status. */
  isLeader: () => boolean;
  logger: Logger;
  reportsTotal?: Counter<'result'>;
  budget?: ReportBudget;
}

const claimKey = (c: RunTokenClaims) => `${c.namespace}/${c.name}/${c.run}`;

/** The first field of the body that claims something its token does not allow, or undefined. */
function overclaim(r: Report, c: RunTokenClaims): string | undefined {
  if (r.experiment.namespace !== c.namespace || r.experiment.name !== c.name) return `experiment: the token is for ${c.namespace}/${c.name}`;
  if (r.run !== c.run) return `run: the token is for run ${c.run}`;
  if (r.attempt !== c.attempt) return `attempt: the token is for attempt ${c.attempt}`;
  if (r.worker !== c.worker) return `worker: the token is for worker ${c.worker}`;
  return undefined;
}

export function runtimeApiRouter(deps: RuntimeApiDeps): Router {
  const router = express.Router();
  const budget = deps.budget ?? DEFAULT_REPORT_BUDGET;
  const requests = new RateLimiterMemory({ points: budget.requestsPerSecond, duration: 1 });
  const checkpoints = new RateLimiterMemory({ points: budget.checkpointsPerMinute, duration: 60 });
  const fail = (res: Response, code: number, reason: string, message: string, retryAfterSeconds?: number) => {
    deps.reportsTotal?.inc({ result: reason });
    if (retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(retryAfterSeconds))));
    res.status(code).json({ error: { code, reason, message } });
  };
  /** A spent budget answers 429 with when to come back; the worker keeps its events and resends them then. */
  const spend = async (limiter: RateLimiterMemory, key: string, points: number): Promise<number | undefined> => {
    try {
      await limiter.consume(key, points);
      return undefined;
    } catch (err) {
      if (err instanceof RateLimiterRes) return err.msBeforeNext / 1000;
      throw err;
    }
  };

  // Before the body is read: who is asking, and may they.
  const authenticate = async (req: Request, res: Response, next: NextFunction) => {
    if (!deps.isLeader()) return fail(res, 503, 'NotLeader', 'this replica is on standby; retry', 2);
    const match = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
    if (!match) return fail(res, 401, 'Unauthorized', 'send the run token as Authorization: Bearer <token>');
    const check = deps.checkToken(match[1]!);
    if (!check.ok) {
      switch (check.why) {
        case 'unavailable':
          return fail(res, 503, 'Unavailable', 'the operator has not loaded the key run tokens are checked with yet; retry', 2);
        case 'stale-key':
          return fail(res, 403, 'StaleToken', 'the token was made with a signing key that has been replaced; the operator re-issues it: read the token file again and retry');
        case 'malformed':
          return fail(res, 401, 'Unauthorized', 'the bearer token is not a run token');
        case 'invalid':
          return fail(res, 403, 'Forbidden', 'the token is not valid for the experiment, run, attempt and worker it names');
      }
    }
    const wait = await spend(requests, claimKey(check.claims), 1);
    if (wait !== undefined) return fail(res, 429, 'TooManyRequests', `run ${check.claims.run} of ${check.claims.namespace}/${check.claims.name} sends more than ${budget.requestsPerSecond} reports a second; retry later`, wait);
    res.locals.claims = check.claims;
    next();
  };

  router.post('/reports', authenticate, express.json({ limit: MAX_REPORT_BYTES }), async (req, res) => {
    const claims = res.locals.claims as RunTokenClaims;
    const parsed = parseReport(req.body);
    if (!parsed.ok) return fail(res, 400, 'BadRequest', parsed.error);
    const r = parsed.report;
    const wrong = overclaim(r, claims);
    if (wrong) return fail(res, 403, 'Forbidden', `the report claims more than its token allows: ${wrong}`);
    const newCheckpoints = r.events.filter((e) => e.type === 'checkpoint').length;
    if (newCheckpoints > 0) {
      const wait = await spend(checkpoints, claimKey(claims), newCheckpoints);
      if (wait !== undefined) return fail(res, 429, 'TooManyCheckpoints', `run ${r.run} reports more than ${budget.checkpointsPerMinute} checkpoints a minute; retry later`, wait);
    }
    try {
      const acknowledged = await deps.accept(r);
      deps.reportsTotal?.inc({ result: 'accepted' });
      res.json({ acknowledged });
    } catch (err) {
      if (err instanceof StaleReportError) return fail(res, 409, 'Conflict', err.message);
      deps.logger.warn('report not stored yet', { namespace: r.experiment.namespace, name: r.experiment.name, error: (err as Error).message });
      return fail(res, 503, 'Unavailable', (err as Error).message, 1);
    }
  });
  router.all('/reports', (req, res) => {
    res.setHeader('Allow', 'POST');
    fail(res, 405, 'MethodNotAllowed', `method ${req.method} is not allowed on ${REPORTS_PATH}: send reports with POST`);
  });
  // Errors of the body parser (JSON that does not parse, a body over the limit) are answered here rather than by
  // the server's catch-all, so the worker reads what is wrong with its body in the protocol's own error shape.
  const onBodyError: ErrorRequestHandler = (err: { type?: string; message?: string }, _req, res, next) => {
    if (err.type === 'entity.too.large') return fail(res, 413, 'PayloadTooLarge', `body: larger than the ${MAX_REPORT_BYTES} byte limit: send fewer events per report`);
    if (err.type === 'entity.parse.failed') return fail(res, 400, 'BadRequest', `body: not valid JSON (${err.message ?? 'parse error'})`);
    if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported') return fail(res, 415, 'UnsupportedMediaType', `body: ${err.message ?? 'unsupported encoding'}`);
    next(err);
  };
  router.use(onBodyError);
  return router;
}
