// The operator's own health checks of inference endpoints, off the reconcile path: each tracked agent's ready
// pods are checked every interval (HTTP GET /readyz, short timeout); the results are kept here, and the agent's
// reconcile is woken only when they change in a way its phase can depend on. Reconcile reads view(); it never
// waits on the network.
//
// Addresses come only from pod status (podIP), never from a spec or a URL anyone can write, and are checked against
// an allow-list of networks before they are dialled.
import { BlockList, isIP } from 'node:net';
import { request } from 'node:http';
import type { Logger } from 'winston';

export interface ProbeTarget {
  /** A pod IP, from pod status. */
  ip: string;
  port: number;
  pod: string;
}

export type ProbeFailureKind = 'timeout' | 'connection' | 'status' | 'forbidden_address';

export interface HealthView {
  /** Checks made since the targets last changed. */
  checks: number;
  consecutiveFailures: number;
  /** The outcome of the latest check; undefined before the first. */
  lastOk?: boolean;
  lastCheckedAt?: Date;
  lastHealthyAt?: Date;
  lastError?: string;
}

export interface EndpointProberOptions {
  /** Between checks of one agent. Default 10 s. */
  intervalMs?: number;
  /** Per request. Default 2 s. */
  timeoutMs?: number;
  path?: string;
  /** Failures after which reconcile acts; beyond it failures are counted without waking it each time. Default 3. */
  failureThreshold?: number;
  /** CIDRs the checks may dial; default any pod IP. */
  allowedCidrs?: string[];
  wake: (key: string) => void;
  /** One call per failed check of an agent (with how each failing pod failed), for the failures metric. */
  onFailure?: (key: string, kinds: ProbeFailureKind[]) => void;
  logger?: Logger;
}

type Outcome = { ok: true } | { ok: false; kind: ProbeFailureKind; error: string };

interface Entry {
  signature: string;
  targets: ProbeTarget[];
  view: HealthView;
  timer?: NodeJS.Timeout;
  /** Bumped when the targets change, so a check of the old ones does not count for the new. */
  epoch: number;
}

/** The allow-list as a predicate; undefined or empty allows every IP literal. */
export function addressFilter(cidrs: string[] | undefined): (ip: string) => boolean {
  if (!cidrs || cidrs.length === 0) return (ip) => isIP(ip) !== 0;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [net, bits] = cidr.split('/');
    const family = isIP(net ?? '');
    if (!family || bits === undefined || !/^\d+$/.test(bits)) throw new Error(`not a CIDR: ${JSON.stringify(cidr)}`);
    list.addSubnet(net!, Number(bits), family === 6 ? 'ipv6' : 'ipv4');
  }
  return (ip) => {
    const family = isIP(ip);
    return family !== 0 && list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
  };
}

export class EndpointProber {
  private readonly entries = new Map<string, Entry>();
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly path: string;
  private readonly threshold: number;
  private readonly allowed: (ip: string) => boolean;
  private stopped = false;

  constructor(private readonly o: EndpointProberOptions) {
    this.intervalMs = o.intervalMs ?? 10_000;
    this.timeoutMs = o.timeoutMs ?? 2000;
    this.path = o.path ?? '/readyz';
    this.threshold = o.failureThreshold ?? 3;
    this.allowed = addressFilter(o.allowedCidrs);
  }

  /** Checks these targets from now on; new or changed targets are checked at once, with a fresh record. */
  track(key: string, targets: ProbeTarget[]): void {
    if (this.stopped) return;
    const sorted = [...targets].sort((a, b) => `${a.ip}:${a.port}`.localeCompare(`${b.ip}:${b.port}`));
    const signature = sorted.map((t) => `${t.pod}@${t.ip}:${t.port}`).join(',');
    const known = this.entries.get(key);
    if (known?.signature === signature) return;
    if (known) clearTimeout(known.timer);
    const entry: Entry = { signature, targets: sorted, view: { checks: 0, consecutiveFailures: 0 }, epoch: (known?.epoch ?? 0) + 1 };
    this.entries.set(key, entry);
    this.schedule(key, entry, 0);
  }

  untrack(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    clearTimeout(e.timer);
    this.entries.delete(key);
  }

  view(key: string): HealthView | undefined {
    const v = this.entries.get(key)?.view;
    return v && { ...v };
  }

  tracked(): string[] {
    return [...this.entries.keys()];
  }

  stop(): void {
    this.stopped = true;
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.entries.clear();
  }

  private schedule(key: string, entry: Entry, ms: number): void {
    if (this.stopped) return;
    entry.timer = setTimeout(() => void this.check(key, entry), ms);
    entry.timer.unref();
  }

  private async check(key: string, entry: Entry): Promise<void> {
    const epoch = entry.epoch;
    const outcomes = await Promise.all(entry.targets.map((t) => this.probe(t)));
    // Replaced or dropped while the requests were out: the result describes targets no longer asked about.
    if (this.stopped || this.entries.get(key) !== entry || entry.epoch !== epoch) return;
    const failed = outcomes.map((o, i) => ({ o, t: entry.targets[i]! })).filter((x): x is { o: Extract<Outcome, { ok: false }>; t: ProbeTarget } => !x.o.ok);
    const ok = entry.targets.length > 0 && failed.length === 0;
    const v = entry.view;
    const wasOk = v.lastOk;
    v.checks++;
    v.lastCheckedAt = new Date();
    v.lastOk = ok;
    if (ok) {
      v.consecutiveFailures = 0;
      v.lastHealthyAt = v.lastCheckedAt;
      delete v.lastError;
    } else {
      v.consecutiveFailures++;
      v.lastError = failed.length ? failed.map((f) => `${f.t.pod}: ${f.o.error}`).join('; ') : 'no pod to check';
      this.o.onFailure?.(key, failed.map((f) => f.o.kind));
      this.o.logger?.debug('health check failed', { key, failures: v.consecutiveFailures, error: v.lastError });
    }
    if (wasOk !== ok || (!ok && v.consecutiveFailures <= this.threshold)) this.o.wake(key);
    // ±10 % so that many agents connected together do not check in lockstep.
    this.schedule(key, entry, Math.round(this.intervalMs * (0.9 + 0.2 * Math.random())));
  }

  private probe(t: ProbeTarget): Promise<Outcome> {
    if (!this.allowed(t.ip)) {
      return Promise.resolve({ ok: false, kind: 'forbidden_address', error: `${t.ip} is outside the networks health checks may dial` });
    }
    return new Promise((resolve) => {
      let settled = false;
      const done = (o: Outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        resolve(o);
      };
      // A fresh connection per check, as the kubelet's probes: a pooled socket could hide a server that no
      // longer accepts connections.
      const req = request({ host: t.ip, port: t.port, path: this.path, method: 'GET', agent: false, headers: { 'user-agent': 'arena-operator-health-check' } }, (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        done(code >= 200 && code < 400 ? { ok: true } : { ok: false, kind: 'status', error: `GET ${this.path} answered ${code}` });
      });
      const deadline = setTimeout(() => {
        req.destroy();
        done({ ok: false, kind: 'timeout', error: `GET ${this.path} gave no answer within ${this.timeoutMs}ms` });
      }, this.timeoutMs);
      req.on('error', (err) => done({ ok: false, kind: 'connection', error: `GET ${this.path}: ${(err as NodeJS.ErrnoException).code ?? err.message}` }));
      req.end();
    });
  }
}
