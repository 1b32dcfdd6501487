// A stand-in for the operator's runtime report endpoint (POST /runtime/v1/reports) for tests and benchmarks of
// the runtime: it checks bodies with the real protocol parser and the bearer token, acknowledges what it accepts,
// and can be told to answer the next requests with an error status (503, 409, ...).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { REPORTS_PATH, parseReport, type Report, type ReportEvent } from '../../operator/runtime-api/protocol.ts';

export interface ScriptedAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface ReceivedRequest {
  status: number;
  events: ReportEvent[];
}

export class FakeOperator {
  /** Events of requests answered 200, in arrival order (resends of acknowledged events would appear twice). */
  readonly accepted: (ReportEvent & { worker: number })[] = [];
  /** Every request with its answer. */
  readonly requests: ReceivedRequest[] = [];
  private readonly script: ScriptedAnswer[] = [];
  private readonly top = new Map<string, number>();
  private waiters: { predicate: () => boolean; resolve: () => void }[] = [];
  private server: Server | undefined;
  port = 0;

  constructor(readonly token = 'run-token') {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Answers the next requests with these, in order, before taking reports again. */
  answerNext(...answers: ScriptedAnswer[]): void {
    this.script.push(...answers);
  }

  /** Starts listening (on the same port as before after a stop, to look like a restarted operator). */
  async start(port = this.port): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Stops like a crashed operator: connections are cut and what was received but not acknowledged is forgotten. */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
    this.top.clear();
  }

  /** Resolves once the predicate holds (checked after every request). */
  until(predicate: () => boolean, timeoutMs = 60_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fake operator: condition not met within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        predicate,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  eventsOfType<T extends ReportEvent['type']>(type: T): Extract<ReportEvent, { type: T }>[] {
    return this.accepted.filter((e): e is Extract<ReportEvent, { type: T }> & { worker: number } => e.type === type);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let events: ReportEvent[] = [];
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      this.requests.push({ status, events });
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
      this.waiters = this.waiters.filter((w) => !(w.predicate() && (w.resolve(), true)));
    };
    if (req.method !== 'POST' || req.url !== REPORTS_PATH) return answer(404, { error: 'not found' });
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return answer(400, { error: { reason: 'BadRequest', message: 'not JSON' } });
    }
    events = ((body as Partial<Report>).events ?? []) as ReportEvent[];
    const scripted = this.script.shift();
    if (scripted) return answer(scripted.status, scripted.body ?? { error: { code: scripted.status } }, scripted.headers);
    if (req.headers.authorization !== `Bearer ${this.token}`) return answer(req.headers.authorization ? 403 : 401, { error: { reason: 'Forbidden' } });
    const parsed = parseReport(body);
    if (!parsed.ok) return answer(400, { error: { reason: 'BadRequest', message: parsed.error } });
    const { worker, run, attempt, experiment } = parsed.report;
    // Sequence numbers are per worker of one attempt, as the operator keeps them.
    const key = `${experiment.namespace}/${experiment.name}/${run}/${attempt}/${worker}`;
    let top = this.top.get(key) ?? -1;
    for (const ev of parsed.report.events) {
      if (ev.seq <= top) continue; // a resend after a lost acknowledgement, as the operator treats it
      top = ev.seq;
      this.accepted.push({ ...ev, worker });
    }
    this.top.set(key, top);
    return answer(200, { acknowledged: top });
  }
}
