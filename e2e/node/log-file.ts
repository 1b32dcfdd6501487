// Container logs in the CRI format the kubelet reads (`<RFC3339Nano time> <stdout|stderr> <F|P> <text>`), one
// file per container run, and the reader behind /containerLogs: stream filter, sinceTime, tailLines,
// limitBytes and timestamps, as kubectl logs asks for them.
import { closeSync, createWriteStream, fstatSync, openSync, readSync, type WriteStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';

export type LogStream = 'stdout' | 'stderr';

// A line longer than this is written as partial ('P') records, as containerd does, so one runaway line does not
// grow a buffer without bound.
const maxLine = 16 * 1024;

/** RFC3339Nano, nanoseconds filled with zeros (the clock here has milliseconds). */
function criTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}

export class ContainerLogWriter {
  private readonly out: WriteStream;
  private readonly pending: Record<LogStream, string> = { stdout: '', stderr: '' };

  constructor(readonly path: string) {
    this.out = createWriteStream(path, { flags: 'a' });
    this.out.on('error', () => undefined); // a full disk must not take the node down; the lines are lost
  }

  write(stream: LogStream, chunk: Buffer | string): void {
    let text = this.pending[stream] + chunk.toString();
    const now = criTime(new Date());
    let nl: number;
    while ((nl = text.indexOf('\n')) >= 0) {
      let line = text.slice(0, nl);
      text = text.slice(nl + 1);
      for (; line.length > maxLine; line = line.slice(maxLine)) this.out.write(`${now} ${stream} P ${line.slice(0, maxLine)}\n`);
      this.out.write(`${now} ${stream} F ${line}\n`);
    }
    for (; text.length > maxLine; text = text.slice(maxLine)) this.out.write(`${now} ${stream} P ${text.slice(0, maxLine)}\n`);
    this.pending[stream] = text;
  }

  /** Writes what is left of unterminated lines and closes the file. */
  close(): Promise<void> {
    const now = criTime(new Date());
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.pending[stream]) this.out.write(`${now} ${stream} F ${this.pending[stream]}\n`);
      this.pending[stream] = '';
    }
    return new Promise((resolve) => this.out.end(resolve));
  }
}

export interface LogRecord {
  time: string;
  stream: LogStream;
  partial: boolean;
  text: string;
}

export function parseRecord(line: string): LogRecord | undefined {
  const a = line.indexOf(' ');
  const b = line.indexOf(' ', a + 1);
  const c = line.indexOf(' ', b + 1);
  if (a < 0 || b < 0) return undefined;
  const stream = line.slice(a + 1, b);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  const tag = c < 0 ? line.slice(b + 1) : line.slice(b + 1, c);
  return { time: line.slice(0, a), stream, partial: tag === 'P', text: c < 0 ? '' : line.slice(c + 1) };
}

export interface LogQuery {
  /** 'All' (default), 'Stdout' or 'Stderr'. */
  stream?: string;
  timestamps?: boolean;
  sinceTime?: Date;
  tailLines?: number;
  limitBytes?: number;
}

/** Joins partial records into whole lines (the time is that of the first part) and applies the stream filter. */
export class LineAssembler {
  private partial: Partial<Record<LogStream, { time: string; text: string }>> = {};

  constructor(private readonly query: LogQuery) {}

  push(rec: LogRecord): { time: string; text: string } | undefined {
    const want = (this.query.stream ?? 'All').toLowerCase();
    if (want !== 'all' && want !== rec.stream) return undefined;
    const held = this.partial[rec.stream];
    const time = held?.time ?? rec.time;
    const text = (held?.text ?? '') + rec.text;
    if (rec.partial) {
      this.partial[rec.stream] = { time, text };
      return undefined;
    }
    delete this.partial[rec.stream];
    if (this.query.sinceTime && new Date(time) < this.query.sinceTime) return undefined;
    return { time, text };
  }
}

export function formatLine(line: { time: string; text: string }, timestamps: boolean | undefined): string {
  return timestamps ? `${line.time} ${line.text}\n` : `${line.text}\n`;
}

function render(buf: Buffer, assembler: LineAssembler, query: LogQuery): string[] {
  const lines: string[] = [];
  for (const l of buf.toString('utf8').split('\n')) {
    if (!l) continue;
    const rec = parseRecord(l);
    const line = rec && assembler.push(rec);
    if (line) lines.push(formatLine(line, query.timestamps));
  }
  return lines;
}

/** The lines a non-follow request returns. */
export async function readLog(path: string, query: LogQuery): Promise<{ text: string }> {
  const buf = await readFile(path);
  let lines = render(buf.subarray(0, buf.lastIndexOf(0x0a) + 1), new LineAssembler(query), query);
  if (query.tailLines !== undefined && query.tailLines >= 0) lines = query.tailLines === 0 ? [] : lines.slice(-query.tailLines);
  return { text: lines.join('') };
}

/**
 * The log as it is, then whatever the container writes until it has exited (`running` turns false) and the file
 * has been read to its end, or `signal` aborts (the client went away). The file stays open throughout, so a pod
 * deleted meanwhile (its directory removed) still has its last lines delivered.
 */
export async function* followLog(
  path: string,
  query: LogQuery,
  running: () => boolean,
  signal: AbortSignal,
  pollMs = 200,
): AsyncGenerator<string> {
  const fh = await open(path, 'r');
  try {
    const assembler = new LineAssembler(query);
    let offset = 0;
    let rest = Buffer.alloc(0);
    let first = true;
    while (!signal.aborted) {
      // Checked before the read: whatever the container wrote before it exited is then in the file.
      const wasRunning = running();
      const size = (await fh.stat()).size;
      const chunk = Buffer.alloc(Math.max(0, size - offset));
      if (chunk.length > 0) await fh.read(chunk, 0, chunk.length, offset);
      offset += chunk.length;
      const buf = Buffer.concat([rest, chunk]);
      const end = buf.lastIndexOf(0x0a) + 1;
      rest = buf.subarray(end);
      let lines = render(buf.subarray(0, end), assembler, query);
      if (first && query.tailLines !== undefined && query.tailLines >= 0) lines = query.tailLines === 0 ? [] : lines.slice(-query.tailLines);
      first = false;
      if (lines.length > 0) yield lines.join('');
      if (!wasRunning) return;
      await delay(pollMs, undefined, { signal }).catch(() => undefined);
    }
  } finally {
    await fh.close();
  }
}

/** Cuts `text` to at most `limit` bytes (kubectl logs --limit-bytes). */
export function limitBytes(text: string, limit: number | undefined): string {
  if (limit === undefined) return text;
  const buf = Buffer.from(text);
  return buf.length <= limit ? text : buf.subarray(0, Math.max(0, limit)).toString('utf8');
}

/**
 * The end of a container's output (at most `maxLines` lines and `maxBytes` bytes), read from the last 64 KiB of
 * the file: the kubelet's termination message for terminationMessagePolicy FallbackToLogsOnError.
 */
export function logTail(path: string, maxLines = 80, maxBytes = 2048): string {
  let buf: Buffer;
  let start: number;
  try {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      start = Math.max(0, size - 64 * 1024);
      buf = Buffer.alloc(size - start);
      readSync(fd, buf, 0, buf.length, start);
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
  // Read from the middle of the file, the first record is cut: skip it.
  const from = start > 0 ? buf.indexOf(0x0a) + 1 : 0;
  const lines = render(buf.subarray(from), new LineAssembler({}), {}).slice(-maxLines);
  const text = Buffer.from(lines.join(''));
  return text.subarray(Math.max(0, text.length - maxBytes)).toString('utf8');
}
