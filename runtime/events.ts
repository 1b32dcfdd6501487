// The trainer event protocol (runtime/PROTOCOL.md): the JSON lines a trainer writes on its event channel, how the
// supervisor parses them, and how they become the operator's report events (operator/runtime-api/protocol.ts).
import { writeSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import type { CheckpointEvent, CompletedEvent, FailedEvent, ProgressEvent } from '../operator/runtime-api/protocol.ts';

/** The file descriptor of the event channel in the trainer process. */
export const EVENTS_FD = 3;
/** Names the channel's descriptor in the trainer's environment. */
export const EVENTS_FD_ENV = 'ARENA_EVENTS_FD';
/** Longest event line the supervisor accepts; longer lines are dropped with a warning. */
export const MAX_EVENT_LINE_BYTES = 64 * 1024;

const step = Type.Integer({ minimum: 0 });
const score = Type.Number();
const reason = Type.String({ pattern: '^[A-Z][A-Za-z0-9]*$', maxLength: 128 });

export const TrainerProgress = Type.Object(
  {
    event: Type.Literal('progress'),
    step,
    max_steps: Type.Optional(Type.Integer({ minimum: 1 })),
    training_score: Type.Optional(score),
    evaluation_score: Type.Optional(score),
    steps_per_second: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: true },
);

export const TrainerMetrics = Type.Object(
  { event: Type.Literal('metrics'), step: Type.Optional(step), values: Type.Record(Type.String(), Type.Number()) },
  { additionalProperties: true },
);

export const TrainerCheckpoint = Type.Object(
  {
    event: Type.Literal('checkpoint'),
    step,
    path: Type.String({ minLength: 1, maxLength: 1024 }),
    training_score: Type.Optional(score),
    evaluation_score: Type.Optional(score),
    size_bytes: Type.Optional(Type.Integer({ minimum: 0 })),
    final: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: true },
);

export const TrainerFinished = Type.Object({ event: Type.Literal('finished'), step: Type.Optional(step) }, { additionalProperties: true });

export const TrainerError = Type.Object(
  {
    event: Type.Literal('error'),
    message: Type.String({ minLength: 1 }),
    reason: Type.Optional(reason),
    hint: Type.Optional(Type.String()),
    retryable: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: true },
);

export type TrainerProgress = Static<typeof TrainerProgress>;
export type TrainerMetrics = Static<typeof TrainerMetrics>;
export type TrainerCheckpoint = Static<typeof TrainerCheckpoint>;
export type TrainerFinished = Static<typeof TrainerFinished>;
export type TrainerError = Static<typeof TrainerError>;
export type TrainerEvent = TrainerProgress | TrainerMetrics | TrainerCheckpoint | TrainerFinished | TrainerError;

// Unknown keys are allowed so trainers can add fields without breaking older supervisors.
const ajv = new Ajv({ strict: true, allErrors: false });
const validators = {
  progress: ajv.compile(TrainerProgress),
  metrics: ajv.compile(TrainerMetrics),
  checkpoint: ajv.compile(TrainerCheckpoint),
  finished: ajv.compile(TrainerFinished),
  error: ajv.compile(TrainerError),
};

export type ParsedLine = { ok: true; event: TrainerEvent } | { ok: false; error: string };

/** Parses one line of the event channel. */
export function parseTrainerEvent(line: string): ParsedLine {
  if (Buffer.byteLength(line) > MAX_EVENT_LINE_BYTES) return { ok: false, error: `line longer than ${MAX_EVENT_LINE_BYTES} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  const kind = (value as { event?: unknown } | null)?.event;
  const validate = typeof kind === 'string' ? validators[kind as keyof typeof validators] : undefined;
  if (!validate) return { ok: false, error: `"event" must be one of ${Object.keys(validators).join(', ')}` };
  if (!validate(value)) {
    const e = validate.errors![0]!;
    const where = [e.instancePath.replace(/^\//, '').replace(/\//g, '.'), e.params.missingProperty].filter(Boolean).join('.');
    return { ok: false, error: `${kind}${where ? `.${where}` : ''}: ${e.message}` };
  }
  return { ok: true, event: value as TrainerEvent };
}

type WithoutSeq<T> = T extends unknown ? Omit<T, 'seq'> : never;
/** A report event before the reporter numbers it. */
export type UnnumberedEvent = WithoutSeq<ProgressEvent | CheckpointEvent | CompletedEvent | FailedEvent>;

const defined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

export function progressReport(e: TrainerProgress, at: string): WithoutSeq<ProgressEvent> {
  return defined({
    type: 'progress' as const,
    at,
    step: e.step,
    maxSteps: e.max_steps,
    trainingScore: e.training_score,
    evaluationScore: e.evaluation_score,
    stepsPerSecond: e.steps_per_second,
  });
}

export function checkpointReport(e: TrainerCheckpoint, at: string, sizeBytes: number): WithoutSeq<CheckpointEvent> {
  return defined({
    type: 'checkpoint' as const,
    at,
    step: e.step,
    trainingScore: e.training_score,
    evaluationScore: e.evaluation_score,
    sizeBytes,
    location: e.path,
    final: e.final,
  });
}

/** Writes events on the channel from inside a trainer written in TypeScript. */
export class TrainerEventWriter {
  private constructor(private readonly fd: number | undefined) {}

  /** The channel named by $ARENA_EVENTS_FD; without it (a trainer run by hand) events are printed to stdout. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): TrainerEventWriter {
    const fd = env[EVENTS_FD_ENV] === undefined ? undefined : Number(env[EVENTS_FD_ENV]);
    return new TrainerEventWriter(fd !== undefined && Number.isInteger(fd) && fd >= 0 ? fd : undefined);
  }

  emit(event: TrainerEvent): void {
    const line = `${JSON.stringify(event)}\n`;
    if (this.fd === undefined) {
      process.stdout.write(line);
      return;
    }
    const bytes = Buffer.from(line);
    let written = 0;
    while (written < bytes.length) {
      try {
        written += writeSync(this.fd, bytes, written);
      } catch (err) {
        // The supervisor reads continuously; a full pipe only means a short wait.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      }
    }
  }
}
