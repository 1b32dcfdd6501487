// POST /runtime/v1/reports: workers report progress, checkpoints, completion and failure (protocol.ts). A report
// is accepted only with the token of the run it claims to belong to, compared in constant time (derive.ts).
import express, { type Router } from 'express';
import type { Logger } from 'winston';
import type { Counter } from 'prom-client';
import { MAX_REPORT_BYTES, parseReport, type Report } from '../runtime-api/protocol.ts';
import { StaleReportError } from '../controllers/experiment/reports.ts';

export interface RuntimeApiDeps {
  /**
   * Whether token is the one of run `run` of the experiment; 'unavailable' while the key tokens derive from is not
   * loaded (a worker retries then rather than giving up).
   */
  checkToken: (namespace: string, experiment: string, run: number, token: string) => 'valid' | 'invalid' | 'unavailable';
  /** Files the report with the experiment's reconciler; resolves to the acknowledged sequence number. */
  accept: (report: Report) => Promise<number>;
  /** Only the leader takes reports: it alone writes status. */
  isLeader: () => boolean;
  logger: Logger;
  reportsTotal?: Counter<'result'>;
}

export function runtimeApiRouter(deps: RuntimeApiDeps): Router {
  const router = express.Router();
  const fail = (res: express.Response, code: number, reason: string, message: string) => {
    deps.reportsTotal?.inc({ result: reason });
    res.status(code).json({ error: { code, reason, message } });
  };

  router.post('/reports', express.json({ limit: MAX_REPORT_BYTES }), async (req, res) => {
    if (!deps.isLeader()) {
      res.setHeader('Retry-After', '2');
      return fail(res, 503, 'NotLeader', 'this replica is on standby; retry');
    }
    const auth = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(auth);
    if (!match) return fail(res, 401, 'Unauthorized', 'send the run token as Authorization: Bearer <token>');
    const parsed = parseReport(req.body);
    if (!parsed.ok) return fail(res, 400, 'BadRequest', parsed.error);
    const r = parsed.report;
    const verdict = deps.checkToken(r.experiment.namespace, r.experiment.name, r.run, match[1]!);
    if (verdict === 'unavailable') {
      res.setHeader('Retry-After', '2');
      return fail(res, 503, 'Unavailable', 'the operator has not loaded the key run tokens are checked with yet; retry');
    }
    if (verdict === 'invalid') {
      return fail(res, 403, 'Forbidden', `the token is not valid for run ${r.run} of ${r.experiment.namespace}/${r.experiment.name}`);
    }
    try {
      const acknowledged = await deps.accept(r);
      deps.reportsTotal?.inc({ result: 'accepted' });
      res.json({ acknowledged });
    } catch (err) {
      if (err instanceof StaleReportError) return fail(res, 409, 'Conflict', err.message);
      deps.logger.warn('report not stored yet', { namespace: r.experiment.namespace, name: r.experiment.name, error: (err as Error).message });
      res.setHeader('Retry-After', '1');
      return fail(res, 503, 'Unavailable', (err as Error).message);
    }
  });
  return router;
}
