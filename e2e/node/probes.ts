// Container probes as the kubelet runs them: httpGet and tcpSocket against the pod IP, exec inside the
// container's namespaces (nsenter), with initialDelaySeconds, periodSeconds, timeoutSeconds and the success and
// failure thresholds. A worker reports each change of its result; the pod's reconcile decides what follows.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { spawn } from 'node:child_process';
import type { Container, Probe } from './kube-types.ts';

export type ProbeKind = 'startup' | 'readiness' | 'liveness';
export type ProbeOutcome = { ok: true } | { ok: false; message: string };

export interface ProbeTarget {
  podIP: string;
  container: Container;
  /** pid of the container's process, for exec probes (nsenter --target). */
  pid: number;
  env: Record<string, string>;
  nsenter?: string;
}

function resolvePort(port: number | string | undefined, container: Container): number {
  if (typeof port === 'number') return port;
  const named = container.ports?.find((p) => p.name === port);
  if (named) return named.containerPort;
  const n = Number(port);
  if (Number.isInteger(n) && n > 0) return n;
  throw new Error(`port ${JSON.stringify(port)} is not a number or a named container port`);
}

function httpProbe(probe: NonNullable<Probe['httpGet']>, t: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let port: number;
    try {
      port = resolvePort(probe.port, t.container);
    } catch (err) {
      return resolve({ ok: false, message: (err as Error).message });
    }
    const https = probe.scheme === 'HTTPS';
    const headers: Record<string, string> = { 'User-Agent': 'kube-probe/arena-local', Accept: '*/*' };
    for (const h of probe.httpHeaders ?? []) headers[h.name] = h.value;
    const host = probe.host || t.podIP;
    const path = probe.path || '/';
    const req = (https ? httpsRequest : httpRequest)(
      { host, port, path, method: 'GET', headers, timeout: timeoutMs, ...(https ? { rejectUnauthorized: false } : {}) },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve(code >= 200 && code < 400 ? { ok: true } : { ok: false, message: `HTTP probe failed with statuscode: ${code}` });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`context deadline exceeded (Client.Timeout after ${timeoutMs}ms)`)));
    req.on('error', (err) => resolve({ ok: false, message: `Get "${https ? 'https' : 'http'}://${host}:${port}${path}": ${err.message}` }));
    req.end();
  });
}

function tcpProbe(probe: NonNullable<Probe['tcpSocket']>, t: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let port: number;
    try {
      port = resolvePort(probe.port, t.container);
    } catch (err) {
      return resolve({ ok: false, message: (err as Error).message });
    }
    const host = probe.host || t.podIP;
    const sock = connect({ host, port, timeout: timeoutMs });
    sock.once('connect', () => {
      sock.destroy();
      resolve({ ok: true });
    });
    sock.once('timeout', () => {
      sock.destroy();
      resolve({ ok: false, message: `dial tcp ${host}:${port}: i/o timeout` });
    });
    sock.once('error', (err) => resolve({ ok: false, message: `dial tcp ${host}:${port}: ${err.message}` }));
  });
}

function execProbe(probe: NonNullable<Probe['exec']>, t: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const command = probe.command ?? [];
    if (!t.nsenter) return resolve({ ok: false, message: 'exec probes need nsenter (util-linux)' });
    if (command.length === 0) return resolve({ ok: false, message: 'exec probe has no command' });
    // --root/--wd take the container's root and working directory, so a chrooted container is entered too.
    const child = spawn(t.nsenter, ['--target', String(t.pid), '--mount', '--uts', '--root', '--wd', '--', ...command], {
      env: t.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    let output = '';
    const keep = (c: Buffer) => {
      if (output.length < 1024) output += c.toString();
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', (err) => resolve({ ok: false, message: err.message }));
    child.once('close', (code, signal) => {
      if (code === 0) resolve({ ok: true });
      else if (signal) resolve({ ok: false, message: `command timed out after ${timeoutMs}ms` });
      else resolve({ ok: false, message: `command exited ${code}: ${output.trim().slice(0, 512)}` });
    });
  });
}

export function runProbe(probe: Probe, t: ProbeTarget): Promise<ProbeOutcome> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet) return httpProbe(probe.httpGet, t, timeoutMs);
  if (probe.tcpSocket) return tcpProbe(probe.tcpSocket, t, timeoutMs);
  if (probe.exec) return execProbe(probe.exec, t, timeoutMs);
  return Promise.resolve({ ok: false, message: 'grpc probes are not supported by the local node' });
}

/**
 * Runs one probe of one container run periodically. `result` starts undefined (not yet known), becomes true after
 * successThreshold successes in a row and false after failureThreshold failures in a row; `onChange` fires on
 * every change.
 */
export class ProbeWorker {
  result: boolean | undefined;
  lastMessage = '';
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private successes = 0;
  private failures = 0;

  constructor(
    readonly kind: ProbeKind,
    private readonly probe: Probe,
    private readonly target: () => ProbeTarget,
    private readonly onChange: (worker: ProbeWorker) => void,
    private readonly active: () => boolean = () => true,
  ) {}

  start(): void {
    this.schedule((this.probe.initialDelaySeconds ?? 0) * 1000);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    // Liveness and readiness wait for the startup probe; their clock starts when it succeeds.
    if (this.active()) {
      const outcome = await runProbe(this.probe, this.target());
      if (this.stopped) return;
      const before = this.result;
      if (outcome.ok) {
        this.failures = 0;
        if (++this.successes >= (this.probe.successThreshold ?? 1)) this.result = true;
      } else {
        this.successes = 0;
        this.lastMessage = outcome.message;
        if (++this.failures >= (this.probe.failureThreshold ?? 3)) this.result = false;
      }
      if (before !== this.result) this.onChange(this);
    }
    this.schedule((this.probe.periodSeconds ?? 10) * 1000);
  }
}
