// The optional outbound link to the hosted platform: while a TrainingCluster sets spec.platform, a heartbeat carrying
// the cluster summary (the body of GET /api/v1/cluster) is POSTed to <url>/api/onprem/v1/heartbeat with the cluster
// token from the named Secret. Each cluster has its own timer loop; nothing here is awaited by a reconcile, every
// request has a timeout, and failures back off exponentially with jitter. The result is read back by the
// TrainingCluster reconciler as the PlatformConnected condition, and the reply's currentBundleVersion (reply.ts) as
// the platform's current setup bundle.
import type { Logger } from 'winston';
import type { TrainingCluster } from '../api/v1alpha1/trainingcluster.ts';
import { Backoff } from '../kube/informer.ts';
import { STATUS_API_VERSION } from '../status-api/schemas.ts';
import type { PlatformHealth } from '../controllers/trainingcluster/status.ts';
import type { PlatformBundleReport } from '../controllers/trainingcluster/bundle.ts';
import { parseCreditBalance, parseHeartbeatReply, type ReplyProblemKind } from './reply.ts';
import type { PlatformCredits } from '../controllers/trainingcluster/credits.ts';

/** Where heartbeats go, under spec.platform.url. */
export const HEARTBEAT_PATH = '/api/onprem/v1/heartbeat';

export interface SecretKeyRef {
  namespace: string;
  name: string;
  key: string;
}

export type HeartbeatResult = 'accepted' | 'rejected' | 'error' | 'unreachable' | 'no_token';

export type { PlatformHealth, PlatformBundleReport };

export interface PlatformLinkOptions {
  /** The cluster token; undefined when the Secret or key does not exist. Throws on other API errors. */
  readToken: (ref: SecretKeyRef) => Promise<string | undefined>;
  /** The body's status: the same summary GET /api/v1/cluster answers. */
  summary: () => unknown;
  /** A cluster's health or the platform's current bundle version changed: its reconciler should look again. */
  onHealthChange: (cluster: string) => void;
  logger: Logger;
  onResult?: (result: HeartbeatResult) => void;
  /** The cluster's status.credits.spent, sent with each heartbeat so the platform can count it into the balance it replies with. */
  creditsSpent?: (cluster: string) => number | undefined;
  /** Per request; default min(10 s, the heartbeat interval). */
  timeoutMs?: number;
  /** First retry delay after a failure, doubling up to maxBackoffMs; default 1 s and 5 min. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  fetch?: typeof fetch;
  random?: () => number;
}

interface Loop {
  config: string;
  abort: AbortController;
  timer?: NodeJS.Timeout;
  health?: PlatformHealth;
  bundle?: PlatformBundleReport;
  /** The last credit balance a reply named. */
  credits?: PlatformCredits;
  /** The kind of the latest reply's problem, so that a platform repeating the same bad answer is logged once. */
  problemKind?: ReplyProblemKind;
  /** The heartbeat in flight, if any. */
  inFlight?: Promise<void>;
}

/** The platform part of a TrainingCluster spec, after defaults. */
function configOf(tc: TrainingCluster) {
  const p = tc.spec.platform;
  if (!p) return undefined;
  return {
    url: p.url.replace(/\/+$/, ''),
    intervalMs: (p.heartbeatIntervalSeconds ?? 30) * 1000,
    token: { namespace: p.tokenSecretRef.namespace, name: p.tokenSecretRef.name, key: p.tokenSecretRef.key ?? 'token' },
  };
}

type Config = NonNullable<ReturnType<typeof configOf>>;

export class PlatformLink {
  private readonly loops = new Map<string, Loop>();
  private readonly fetch: typeof fetch;
  private stopped = false;

  constructor(private readonly o: PlatformLinkOptions) {
    this.fetch = o.fetch ?? globalThis.fetch;
  }

  /** Starts, restarts (the configuration changed) or stops the cluster's heartbeat loop. Returns at once. */
  sync(tc: TrainingCluster): void {
    const name = tc.metadata?.name;
    if (!name || this.stopped) return;
    const config = configOf(tc);
    const key = config ? JSON.stringify(config) : undefined;
    const loop = this.loops.get(name);
    if (loop?.config === key) return;
    if (loop) this.end(name, loop);
    if (!config || !key) return;
    const next: Loop = { config: key, abort: new AbortController() };
    this.loops.set(name, next);
    this.schedule(name, next, config, 0, new Backoff({ initialMs: this.o.initialBackoffMs ?? 1000, maxMs: this.o.maxBackoffMs ?? 300_000, random: this.o.random }));
  }

  forget(name: string): void {
    const loop = this.loops.get(name);
    if (loop) this.end(name, loop);
  }

  health(name: string): PlatformHealth | undefined {
    return this.loops.get(name)?.health;
  }

  /** What heartbeat replies said about the current setup bundle since the loop (re)started; undefined before any. */
  currentBundle(name: string): PlatformBundleReport | undefined {
    return this.loops.get(name)?.bundle;
  }

  /** The credit balance the platform's replies named since the loop (re)started; undefined before any. */
  credits(name: string): PlatformCredits | undefined {
    return this.loops.get(name)?.credits;
  }

  /** Stops every loop and waits for the heartbeats in flight to be abandoned. */
  async stop(): Promise<void> {
    this.stopped = true;
    const inFlight = [...this.loops.values()].map((l) => l.inFlight);
    for (const [name, loop] of this.loops) this.end(name, loop);
    await Promise.allSettled(inFlight);
  }

  private end(name: string, loop: Loop): void {
    clearTimeout(loop.timer);
    loop.abort.abort();
    this.loops.delete(name);
  }

  private schedule(name: string, loop: Loop, config: Config, delayMs: number, backoff: Backoff): void {
    if (loop.abort.signal.aborted) return;
    loop.timer = setTimeout(() => {
      loop.inFlight = this.beat(name, loop, config).then((ok) => {
        loop.inFlight = undefined;
        if (ok) backoff.reset();
        // ±10 % on the interval, so many clusters started together do not call the platform in lockstep.
        const random = this.o.random ?? Math.random;
        const next = ok ? config.intervalMs * (0.9 + 0.2 * random()) : backoff.next();
        this.schedule(name, loop, config, next, backoff);
      });
    }, delayMs);
    loop.timer.unref();
  }

  /** One heartbeat; resolves to whether it was accepted. Never rejects: a rejection would end the loop. */
  private async beat(name: string, loop: Loop, config: Config): Promise<boolean> {
    try {
      return await this.attempt(name, loop, config);
    } catch (err) {
      return this.record(name, loop, 'error', 'False', 'HeartbeatFailed', `The heartbeat could not be sent: ${(err as Error).message}`);
    }
  }

  private async attempt(name: string, loop: Loop, config: Config): Promise<boolean> {
    const log = this.o.logger.child({ kind: 'TrainingCluster', name });
    let token: string | undefined;
    try {
      token = await this.o.readToken(config.token);
    } catch (err) {
      return this.record(name, loop, 'no_token', 'False', 'TokenUnavailable', `Could not read Secret ${config.token.namespace}/${config.token.name}: ${(err as Error).message}`);
    }
    if (loop.abort.signal.aborted) return false;
    if (!token) {
      return this.record(
        name,
        loop,
        'no_token',
        'False',
        'TokenUnavailable',
        `Secret ${config.token.namespace}/${config.token.name} has no key ${config.token.key}: create it with the cluster token from the platform.`,
      );
    }
    const url = config.url + HEARTBEAT_PATH;
    const timeoutMs = this.o.timeoutMs ?? Math.min(10_000, config.intervalMs);
    const spent = this.o.creditsSpent?.(name);
    const body = JSON.stringify({
      apiVersion: STATUS_API_VERSION,
      kind: 'Heartbeat',
      trainingCluster: name,
      sentAt: new Date().toISOString(),
      ...(spent !== undefined ? { credits: { spent } } : {}),
      status: this.o.summary(),
    });
    try {
      const res = await this.fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.any([loop.abort.signal, AbortSignal.timeout(timeoutMs)]),
      });
      // Read whatever the status, so the connection can be reused; only an accepted reply's body means anything.
      const text = await res.text().catch(() => undefined);
      if (res.ok) {
        if (loop.abort.signal.aborted) return false;
        const bundleChanged = this.learn(name, loop, text);
        const creditsChanged = this.learnCredits(loop, text, spent ?? 0);
        if (creditsChanged) this.o.logger.info('platform reports the credit balance', { kind: 'TrainingCluster', name, balance: loop.credits?.balance });
        return this.record(name, loop, 'accepted', 'True', 'HeartbeatAccepted', `The platform at ${config.url} accepts heartbeats.`, bundleChanged || creditsChanged);
      }
      if (res.status === 401 || res.status === 403) {
        return this.record(name, loop, 'rejected', 'False', 'PlatformRejectedToken', `The platform answered ${res.status} to the cluster token: check Secret ${config.token.namespace}/${config.token.name}.`);
      }
      return this.record(name, loop, 'error', 'False', 'PlatformError', `The platform answered HTTP ${res.status} to the heartbeat.`);
    } catch (err) {
      if (loop.abort.signal.aborted) return false;
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
      log.debug('heartbeat failed', { url, error: why });
      return this.record(name, loop, 'unreachable', 'False', 'PlatformUnreachable', `Could not reach ${url}: ${why}.`);
    }
  }

  /**
   * Takes the current bundle version from an accepted reply. An unusable reply keeps the last known version (a
   * platform mid-deploy or an older one without the field must not flip every class to Unknown); the problem is kept
   * beside it for the status to show. Returns whether the report changed.
   */
  private learn(name: string, loop: Loop, text: string | undefined): boolean {
    const prev = loop.bundle;
    const reply = parseHeartbeatReply(text);
    const log = this.o.logger;
    if (reply.ok) {
      loop.problemKind = undefined;
      loop.bundle = { version: reply.currentBundleVersion };
      if (prev?.version !== reply.currentBundleVersion) {
        log.info('platform reports the current setup bundle', { kind: 'TrainingCluster', name, version: reply.currentBundleVersion, previous: prev?.version });
      }
    } else {
      if (loop.problemKind !== reply.kind) {
        log.warn('platform heartbeat reply has no usable currentBundleVersion; keeping the last known one', {
          kind: 'TrainingCluster',
          name,
          problem: reply.problem,
          kept: prev?.version,
        });
      }
      loop.problemKind = reply.kind;
      loop.bundle = { ...(prev?.version !== undefined ? { version: prev.version } : {}), problem: reply.problem };
    }
    return prev?.version !== loop.bundle.version || prev?.problem !== loop.bundle.problem;
  }

  /** Takes the credit balance from an accepted reply; returns whether it changed (a reply naming none keeps the last). */
  private learnCredits(loop: Loop, text: string | undefined, spentAtReport: number): boolean {
    const balance = parseCreditBalance(text);
    if (balance === undefined) return false;
    const prev = loop.credits;
    // The same answer to the same report is not news: keeping its time spares a status write per heartbeat.
    if (prev?.balance === balance && prev.spentAtReport === spentAtReport) return false;
    loop.credits = { balance, spentAtReport, receivedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
    return true;
  }

  private record(name: string, loop: Loop, result: HeartbeatResult, status: PlatformHealth['status'], reason: string, message: string, bundleChanged = false): boolean {
    if (loop.abort.signal.aborted) return false;
    this.o.onResult?.(result);
    const prev = loop.health;
    loop.health = { status, reason, message };
    const healthChanged = prev?.status !== status || prev.reason !== reason || prev.message !== message;
    if (healthChanged && status !== 'True') this.o.logger.warn('platform heartbeat failing', { kind: 'TrainingCluster', name, reason, error: message });
    if (healthChanged || bundleChanged) this.o.onHealthChange(name);
    return status === 'True';
  }
}
