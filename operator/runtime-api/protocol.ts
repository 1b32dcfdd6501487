// The runtime report protocol: what a worker pod's runtime tells the operator about its run. Defined once here;
// the operator's HTTP handler and the runtime's reporter both import it.
//
//   POST /runtime/v1/reports
//   Authorization: Bearer <the worker's run token, read from the file ARENA_RUN_TOKEN_FILE names>
//   Content-Type: application/json
//   { "experiment": {"namespace": "ml", "name": "cartpole"}, "run": 1, "attempt": 2, "worker": 0,
//     "events": [ { "seq": 7, "type": "checkpoint", "at": "...", "step": 4000, ... }, ... ] }
//
// Events carry a per-worker sequence number; the runtime buffers them locally and resends until acknowledged,
// so the operator treats a repeated (worker, seq) as already seen. The answer is 200 with
// `{ "acknowledged": <highest seq now durable> }` once checkpoint, completion and failure events are stored in
// the Experiment's status (progress is acknowledged on receipt: the next progress report supersedes it).
// The token names the one worker of the one attempt it speaks for (operator/credentials/run-token.ts) and is
// checked before the body is read. 401: no run token. 403 Forbidden: a token that is not valid, or a body that
// claims another experiment, run, attempt or worker than its token. 403 StaleToken: a token of a signing key that
// has been replaced; the operator re-issues the attempt's tokens, so read the token file again and retry.
// 409: the run or attempt is no longer current (the worker should stop). 400: a malformed body, with the field.
// 429: the run's budget of requests or checkpoints is spent; retry after Retry-After. 503: not the leader or not
// ready; retry.
import { Type, type Static } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';

export const REPORTS_PATH = '/runtime/v1/reports';
export const MAX_EVENTS_PER_REPORT = 500;
export const MAX_REPORT_BYTES = 1024 * 1024;
/** Ranks of a gang; a ResourceClass cannot ask for more nodes. */
export const MAX_WORKERS = 1024;

// Every count is a safe integer: JSON's 1e300 is an integer to JSON Schema, and one such sequence number would
// make every later event of that worker look already acknowledged.
const count = (description?: string, minimum = 0) => Type.Integer({ minimum, maximum: Number.MAX_SAFE_INTEGER, ...(description ? { description } : {}) });
const seq = count('Per-worker sequence number, increasing by one per event.');
const at = Type.String({ format: 'date-time', description: 'When the event happened, RFC 3339.' });
const score = Type.Number({ description: 'A score; absent when no metric exists yet.' });

export const ProgressEvent = Type.Object(
  {
    type: Type.Literal('progress'),
    seq,
    at,
    step: count(),
    maxSteps: Type.Optional(count(undefined, 1)),
    trainingScore: Type.Optional(score),
    evaluationScore: Type.Optional(score),
    stepsPerSecond: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
);

export const CheckpointEvent = Type.Object(
  {
    type: Type.Literal('checkpoint'),
    seq,
    at,
    step: count(),
    trainingScore: Type.Optional(score),
    evaluationScore: Type.Optional(score),
    sizeBytes: count(),
    location: Type.String({ minLength: 1, maxLength: 1024 }),
    /** True for the checkpoint written because of a stop request. */
    final: Type.Optional(Type.Boolean()),
    /**
     * Set when a later attempt reports a checkpoint that an earlier attempt wrote but whose report was never
     * acknowledged (the worker was cut off from the operator until it ended): the run and attempt that wrote it.
     */
    recovered: Type.Optional(Type.Object({ run: count(undefined, 1), attempt: count(undefined, 1) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

export const CompletedEvent = Type.Object({ type: Type.Literal('completed'), seq, at }, { additionalProperties: false });

export const FailedEvent = Type.Object(
  {
    type: Type.Literal('failed'),
    seq,
    at,
    reason: Type.String({ pattern: '^[A-Z][A-Za-z0-9]*$', maxLength: 128 }),
    message: Type.String({ maxLength: 4096 }),
    hint: Type.Optional(Type.String({ maxLength: 1024 })),
    /** False when a retry cannot help (an invalid manifest, an unsupported GPU). */
    retryable: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const ReportEvent = Type.Union([ProgressEvent, CheckpointEvent, CompletedEvent, FailedEvent]);

export const Report = Type.Object(
  {
    experiment: Type.Object(
      { namespace: Type.String({ minLength: 1, maxLength: 63 }), name: Type.String({ minLength: 1, maxLength: 253 }) },
      { additionalProperties: false },
    ),
    run: count(undefined, 1),
    attempt: count(undefined, 1),
    worker: Type.Integer({ minimum: 0, maximum: MAX_WORKERS - 1 }),
    events: Type.Array(ReportEvent, { minItems: 1, maxItems: MAX_EVENTS_PER_REPORT }),
  },
  { additionalProperties: false },
);

export type ProgressEvent = Static<typeof ProgressEvent>;
export type CheckpointEvent = Static<typeof CheckpointEvent>;
export type CompletedEvent = Static<typeof CompletedEvent>;
export type FailedEvent = Static<typeof FailedEvent>;
export type ReportEvent = Static<typeof ReportEvent>;
export type Report = Static<typeof Report>;

export interface ReportAck {
  acknowledged: number;
}

const ajv = new Ajv({ allErrors: false, strict: true });
addFormats.default(ajv);
// The envelope is checked first with events as opaque objects, then each event against the schema its `type`
// names, so an error points at the field that is wrong rather than at the first union branch that failed.
const validateEnvelope = ajv.compile(
  Type.Object({ ...Report.properties, events: Type.Array(Type.Object({ type: Type.String() }), { minItems: 1, maxItems: MAX_EVENTS_PER_REPORT }) }, { additionalProperties: false }),
);
// A Map, not an object literal: a lookup of `constructor` or `__proto__` on a plain object finds a function of
// Object.prototype, which would pass any event as valid.
const eventValidators = new Map([
  ['progress', ajv.compile(ProgressEvent)],
  ['checkpoint', ajv.compile(CheckpointEvent)],
  ['completed', ajv.compile(CompletedEvent)],
  ['failed', ajv.compile(FailedEvent)],
] as const);

function fieldOf(prefix: string, instancePath: string, missing?: unknown): string {
  const parts = [prefix, ...instancePath.split('/').filter(Boolean)];
  if (typeof missing === 'string') parts.push(missing);
  return parts.filter(Boolean).join('.') || '(body)';
}

/** Parses a report body; on failure names the offending field. */
export function parseReport(body: unknown): { ok: true; report: Report } | { ok: false; error: string } {
  if (!validateEnvelope(body)) {
    const e = validateEnvelope.errors![0]!;
    // An unknown key is the field at fault: named, not its parent.
    return { ok: false, error: `${fieldOf('', e.instancePath, e.params.missingProperty ?? e.params.additionalProperty)}: ${e.message}` };
  }
  const events = (body as { events: { type: string }[] }).events;
  for (const [i, ev] of events.entries()) {
    const validate = eventValidators.get(ev.type as 'progress');
    if (!validate) return { ok: false, error: `events.${i}.type: must be one of ${[...eventValidators.keys()].join(', ')}` };
    if (!validate(ev)) {
      const e = validate.errors![0]!;
      const extra = e.keyword === 'additionalProperties' ? ` (${String(e.params.additionalProperty)})` : '';
      return { ok: false, error: `${fieldOf(`events.${i}`, e.instancePath, e.params.missingProperty)}: ${e.message}${extra}` };
    }
    const from = (ev as CheckpointEvent).recovered;
    const report = body as Report;
    if (from && (from.run > report.run || (from.run === report.run && from.attempt >= report.attempt))) {
      return { ok: false, error: `events.${i}.recovered: must name a run and attempt before this report's (run ${report.run} attempt ${report.attempt})` };
    }
  }
  return { ok: true, report: body as Report };
}
