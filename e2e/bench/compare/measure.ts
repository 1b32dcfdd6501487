// What the side-by-side benchmark measures for either controller: per-gang timings from the benchmark's own pod
// watch, the controller process's memory and CPU from /proc, and its API requests from the API server's audit log.
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Samples a process's resident memory and CPU time twice a second. */
export class ProcessSampler {
  private timer: NodeJS.Timeout;
  peakRssBytes = 0;
  lastRssBytes = 0;
  private cpuStart: number;

  constructor(readonly pid: number) {
    this.cpuStart = cpuSeconds(pid);
    this.sample();
    this.timer = setInterval(() => this.sample(), 500);
  }

  private sample(): void {
    const rss = rssBytes(this.pid);
    if (rss === undefined) return;
    this.lastRssBytes = rss;
    this.peakRssBytes = Math.max(this.peakRssBytes, rss);
  }

  /** CPU seconds (user + system) the process used since the sampler started. */
  cpuSince(): number {
    return cpuSeconds(this.pid) - this.cpuStart;
  }

  stop(): void {
    this.sample();
    clearInterval(this.timer);
  }
}

export function rssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function cpuSeconds(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces, hence the last ')'): utime is the 12th, stime the 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/**
 * An audit policy that records, at Metadata level, every request of the named users and nothing else; the
 * request is recorded once, when its response completes (a watch still open at the end is not counted).
 */
export function writeUsersAuditPolicy(dir: string, users: string[]): string {
  const file = join(dir, 'audit-policy.yaml');
  writeFileSync(
    file,
    [
      'apiVersion: audit.k8s.io/v1',
      'kind: Policy',
      'omitStages: [RequestReceived, ResponseStarted]',
      'rules:',
      '  - level: Metadata',
      `    users: [${users.map((u) => JSON.stringify(u)).join(', ')}]`,
      '  - level: None',
      '',
    ].join('\n'),
  );
  return file;
}

export interface RequestCounts {
  total: number;
  writes: number;
  byVerbResource: Map<string, number>;
}

const writeVerbs = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/** The audit log from byte `from` on: requests per user, with writes and a verb+resource breakdown. */
export function auditCounts(file: string, from: number): Map<string, RequestCounts> {
  const size = statSync(file).size;
  const buf = Buffer.alloc(size - from);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, buf.length, from);
  } finally {
    closeSync(fd);
  }
  const out = new Map<string, RequestCounts>();
  for (const line of buf.toString('utf8').split('\n')) {
    if (!line) continue;
    let e: { verb?: string; user?: { username?: string }; objectRef?: { resource?: string; subresource?: string } };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      continue; // a line being written when the log was read
    }
    const user = e.user?.username ?? '';
    let c = out.get(user);
    if (!c) out.set(user, (c = { total: 0, writes: 0, byVerbResource: new Map() }));
    c.total++;
    if (writeVerbs.has(e.verb ?? '')) c.writes++;
    const res = `${e.objectRef?.resource ?? '?'}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}`;
    const k = `${e.verb} ${res}`;
    c.byVerbResource.set(k, (c.byVerbResource.get(k) ?? 0) + 1);
  }
  return out;
}

export function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
