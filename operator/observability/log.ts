// Structured logs: one JSON object per line on stdout, the shape log collectors (Loki, Elasticsearch, Cloud
// Logging) parse without configuration, with the object's namespace/name on every line about it.
import winston from 'winston';
import type { Writable } from 'node:stream';

export type Logger = winston.Logger;

export interface LoggerOptions {
  /** Lowest level written; default $LOG_LEVEL, else info. */
  level?: string;
  /** Names the part of the operator that logs, e.g. 'experiment-controller'. */
  component?: string;
  /** Writes nothing (tests). */
  silent?: boolean;
  /** Where lines go; default stdout. */
  stream?: Writable;
}

const levels = Object.keys(winston.config.npm.levels);

// Error objects stringify to {}; keep what a reader needs. Stacks only for errors without a code, where the
// stack is the only clue (an API error's stack says nothing the message does not).
function plainError(err: Error): Record<string, unknown> {
  const code = (err as { code?: unknown }).code;
  return code === undefined ? { message: err.message, stack: err.stack } : { message: err.message, code };
}

// winston keeps the text in `message`; controller-runtime (zap) calls it `msg` and dashboards expect that. Fields
// are written in a fixed order so lines read well by eye too; undefined fields are left out.
const jsonLine = winston.format.printf((info) => {
  const { timestamp, level, message, component, ...fields } = info;
  return JSON.stringify({ timestamp, level, msg: message, component, ...fields }, (_key, value: unknown) => {
    if (value instanceof Error) return plainError(value);
    return typeof value === 'bigint' ? value.toString() : value;
  });
});

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = (opts.level ?? process.env.LOG_LEVEL ?? 'info').toLowerCase();
  if (!levels.includes(level)) throw new Error(`log level ${JSON.stringify(level)} is not one of ${levels.join(', ')}`);
  const transport = opts.stream
    ? new winston.transports.Stream({ stream: opts.stream })
    : new winston.transports.Console();
  return winston.createLogger({
    level,
    levels: winston.config.npm.levels,
    silent: opts.silent ?? false,
    defaultMeta: opts.component === undefined ? undefined : { component: opts.component },
    format: winston.format.combine(winston.format.timestamp(), jsonLine),
    transports: [transport],
  });
}

export interface ObjectRef {
  namespace?: string;
  name: string;
  kind?: string;
}

/** A child logger whose every line names the object it is about. */
export function forObject(logger: Logger, ref: ObjectRef): Logger {
  const meta: Record<string, string> = {};
  if (ref.kind) meta.kind = ref.kind;
  if (ref.namespace) meta.namespace = ref.namespace;
  meta.name = ref.name;
  return logger.child(meta);
}
