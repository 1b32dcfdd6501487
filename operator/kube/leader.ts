// Leader election on a coordination.k8s.io/v1 Lease with client-go's semantics, so that of the operator's
// replicas exactly one reconciles:
// - every write carries the resourceVersion that was read; a 409 means another candidate won the race;
// - a candidate takes a lease over only after watching its record stay unchanged for leaseDuration on its own
//   monotonic clock (client-go's observedTime), never by comparing renewTime with its own wall clock;
// - a leader that cannot renew for renewDeadline stops leading (the operator then exits, as controller-runtime
//   does), which it does before its lease can expire because renewDeadline < leaseDuration;
// - stop() releases the lease (client-go's ReleaseOnCancel), so a standby takes over on its next try.
import { setTimeout as delay } from 'node:timers/promises';
import {
  CoordinationV1Api,
  Observable,
  V1MicroTime,
  type ConfigurationOptions,
  type KubeConfig,
  type RequestContext,
  type ResponseContext,
  type V1Lease,
  type V1LeaseSpec,
} from '@kubernetes/client-node';
import { toKubeError } from './errors.ts';
import { createLogger, type Logger } from '../observability/log.ts';

/** How a candidate came to lead: it created the Lease, found it released, found it expired, or already held it. */
export type AcquiredVia = 'created' | 'released' | 'expired' | 'held';
/** Why a leader stopped: stop() released the lease, renewing failed past renewDeadline, or another holder appeared. */
export type StoppedReason = 'released' | 'deadline' | 'superseded';

export type LeaderElectionEvent =
  | { type: 'started'; name: string; identity: string; via: AcquiredVia }
  | { type: 'stopped'; name: string; identity: string; reason: StoppedReason }
  | { type: 'renewFailed'; name: string; identity: string; error: unknown };

export interface LeaderElectorOptions {
  kc: KubeConfig;
  namespace: string;
  /** The Lease's name. */
  name: string;
  /** Unique per replica, e.g. the pod name. */
  identity: string;
  /** How long a lease stays valid without renewal. Default 15 s. */
  leaseDurationMs?: number;
  /** How long a leader keeps retrying a failed renewal before it stops leading. Default 10 s. */
  renewDeadlineMs?: number;
  /** Time between tries, to acquire (with jitter) or to renew. Default 2 s. */
  retryPeriodMs?: number;
  logger?: Logger;
  /** For leader_election_master_status and friends. */
  onMetrics?: (event: LeaderElectionEvent) => void;
}

export interface LeaderCallbacks {
  /** Starts the leader's work; `signal` aborts when leadership ends. Not awaited. */
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  /** Leadership ended, by stop() or by losing the lease; `reason` says which. */
  onStoppedLeading(reason: StoppedReason): void;
  /** Whoever holds the lease changed (including to this candidate). */
  onNewLeader?(identity: string): void;
}

export type Decision =
  | { act: 'create' }
  | { act: 'write'; via: AcquiredVia | 'renewed' }
  | { act: 'wait'; holder: string };

/**
 * What a candidate may do with the lease it just read. `observedForMs` is how long, by the candidate's own
 * clock, the record has looked exactly like this; `leading` whether the candidate believes it is the leader.
 */
export function decide(
  spec: V1LeaseSpec | undefined,
  opts: { identity: string; leading: boolean; observedForMs: number; defaultLeaseDurationMs: number },
): Decision {
  if (!spec) return { act: 'create' };
  const holder = spec.holderIdentity ?? '';
  if (holder === opts.identity) return { act: 'write', via: opts.leading ? 'renewed' : 'held' };
  if (holder === '') return { act: 'write', via: 'released' };
  // The holder's own leaseDurationSeconds counts: it promised to renew within that, not within ours.
  const durationMs = spec.leaseDurationSeconds ? spec.leaseDurationSeconds * 1000 : opts.defaultLeaseDurationMs;
  return opts.observedForMs < durationMs ? { act: 'wait', holder } : { act: 'write', via: 'expired' };
}

/** The spec a candidate writes to take or keep the lease. */
export function nextSpec(
  old: V1LeaseSpec | undefined,
  opts: { identity: string; via: AcquiredVia | 'renewed'; leaseDurationSeconds: number; now: Date },
): V1LeaseSpec {
  const now = new V1MicroTime(opts.now.getTime());
  const keeps = opts.via === 'renewed' || opts.via === 'held';
  return {
    holderIdentity: opts.identity,
    leaseDurationSeconds: opts.leaseDurationSeconds,
    acquireTime: keeps && old?.acquireTime ? old.acquireTime : now,
    renewTime: now,
    leaseTransitions: opts.via === 'created' ? 0 : (old?.leaseTransitions ?? 0) + (keeps ? 0 : 1),
  };
}

/** The spec a leader writes on graceful shutdown: no holder, so any candidate may take it at once. */
export function releasedSpec(old: V1LeaseSpec | undefined, now: Date): V1LeaseSpec {
  const t = new V1MicroTime(now.getTime());
  return {
    holderIdentity: '',
    leaseDurationSeconds: 1,
    acquireTime: t,
    renewTime: t,
    leaseTransitions: old?.leaseTransitions ?? 0,
  };
}

// client-node 2.0.1 hands MicroTime fields back as the strings it received (V1MicroTime is not in its type map),
// while a spec built here holds V1MicroTime dates; both compare by their text.
function stamp(t: unknown): string {
  return t instanceof Date ? t.toISOString() : String(t ?? '');
}

function fingerprint(spec: V1LeaseSpec | undefined): string {
  if (!spec) return '';
  return [
    spec.holderIdentity ?? '',
    spec.leaseDurationSeconds ?? '',
    stamp(spec.acquireTime),
    stamp(spec.renewTime),
    spec.leaseTransitions ?? '',
  ].join('|');
}

/** Per-call options that abort the request with `signal`. */
function abortWith(signal: AbortSignal): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (ctx: RequestContext) => {
          ctx.setSignal(signal);
          return new Observable(Promise.resolve(ctx));
        },
        post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

/**
 * How long one renewal may wait for the API server: at most half the renew deadline, and never past what is left
 * of it. A renewal stuck on a connection that was cut silently then fails in time for a second try, on a fresh
 * connection (the transport drops the hung one), before the deadline ends the leadership.
 */
export function renewAttemptTimeoutMs(remainingMs: number, renewDeadlineMs: number): number {
  return Math.max(1, Math.ceil(Math.min(remainingMs, renewDeadlineMs / 2)));
}

type Attempt = { ok: true; via: AcquiredVia | 'renewed' } | { ok: false; holder?: string };

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly log: Logger;
  private readonly stopping = new AbortController();
  private observed: { fingerprint: string; at: number; lease?: V1Lease } = { fingerprint: '', at: 0 };
  private leading = false;
  /** When the lease was last acquired or renewed (performance.now()). */
  private renewedAt = -Infinity;
  private running: Promise<void> | undefined;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    // client-go's own sanity checks: a leader must give up before its lease can expire, and retry in time.
    const rules: [boolean, string][] = [
      [this.leaseDurationMs > this.renewDeadlineMs, 'leaseDurationMs must be greater than renewDeadlineMs'],
      [this.renewDeadlineMs > 1.2 * this.retryPeriodMs, 'renewDeadlineMs must be greater than 1.2 × retryPeriodMs'],
      [this.leaseDurationMs % 1000 === 0, 'leaseDurationMs must be whole seconds (the Lease counts in seconds)'],
      [opts.identity !== '', 'identity must not be empty'],
    ];
    const broken = rules.find(([ok]) => !ok);
    if (broken) throw new Error(`leader election for ${opts.namespace}/${opts.name}: ${broken[1]}`);
    this.api = opts.kc.makeApiClient(CoordinationV1Api);
    this.log = (opts.logger ?? createLogger({ component: 'leader-election' })).child({
      lease: `${opts.namespace}/${opts.name}`,
      identity: opts.identity,
    });
  }

  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Leading, and the last renewal is younger than the renew deadline: within it no other replica can have taken the
   * lease (leaseDuration > renewDeadline). A replica that was paused past it answers false at once, before its renew
   * loop has even run again, so nothing it queued earlier is written.
   */
  holdsLease(): boolean {
    return this.leading && performance.now() - this.renewedAt < this.renewDeadlineMs;
  }

  /** Campaigns until it leads, leads until stop() or until it loses the lease; resolves when that is over. */
  run(callbacks: LeaderCallbacks): Promise<void> {
    if (this.running) throw new Error('LeaderElector.run may be called once');
    this.running = this.campaign(callbacks);
    return this.running;
  }

  /** Stops campaigning or leading; a leader releases the lease first. Resolves when run() has finished. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
  }

  private async campaign(callbacks: LeaderCallbacks): Promise<void> {
    const stop = this.stopping.signal;
    let via: AcquiredVia | undefined;
    while (!stop.aborted) {
      const attempt = await this.tryAcquireOrRenew(callbacks);
      if (attempt.ok) {
        via = attempt.via === 'renewed' ? 'held' : attempt.via; // 'renewed' needs leading, which we are not yet
        break;
      }
      // client-go's JitterUntil with factor 1.2, so standbys do not all knock at once.
      await this.sleep(this.retryPeriodMs * (1 + 1.2 * Math.random()));
    }
    if (!via) return;

    this.renewedAt = performance.now();
    this.leading = true;
    const leadership = new AbortController();
    this.log.info('started leading', { via });
    this.emitMetrics({ type: 'started', via });
    this.guard('onStartedLeading', () => callbacks.onStartedLeading(leadership.signal));

    const reason = await this.renewUntilStoppedOrLost(callbacks);
    this.leading = false;
    leadership.abort();
    if (reason === 'released') await this.release();
    this.log[reason === 'released' ? 'info' : 'error']('stopped leading', { reason });
    this.emitMetrics({ type: 'stopped', reason });
    this.guard('onStoppedLeading', () => callbacks.onStoppedLeading(reason));
  }

  private async renewUntilStoppedOrLost(callbacks: LeaderCallbacks): Promise<StoppedReason> {
    const stop = this.stopping.signal;
    let failed = false;
    for (;;) {
      // After a failed renewal the next try comes sooner: what is left of the renew deadline is all it has.
      await this.sleep(failed ? this.retryPeriodMs / 2 : this.retryPeriodMs);
      if (stop.aborted) return 'released';
      const remaining = this.renewDeadlineMs - (performance.now() - this.renewedAt);
      const attempt = await this.tryAcquireOrRenew(callbacks, renewAttemptTimeoutMs(remaining, this.renewDeadlineMs));
      if (stop.aborted) return 'released';
      failed = !attempt.ok;
      if (attempt.ok) {
        this.renewedAt = performance.now();
        continue;
      }
      // Someone else holds a lease we thought was ours: whatever happened, two leaders must not overlap.
      if (attempt.holder) return 'superseded';
      if (performance.now() - this.renewedAt >= this.renewDeadlineMs) return 'deadline';
    }
  }

  private async tryAcquireOrRenew(callbacks: LeaderCallbacks, timeoutMs = this.renewDeadlineMs): Promise<Attempt> {
    const { namespace, name, identity } = this.opts;
    const options = abortWith(AbortSignal.any([this.stopping.signal, AbortSignal.timeout(timeoutMs)]));
    const leaseDurationSeconds = this.leaseDurationMs / 1000;
    try {
      let lease: V1Lease | undefined;
      try {
        lease = await this.api.readNamespacedLease({ namespace, name }, options);
      } catch (err) {
        if (toKubeError(err).reason !== 'NotFound') throw err;
      }
      this.observe(lease, callbacks);
      const decision = decide(lease?.spec, {
        identity,
        leading: this.leading,
        observedForMs: performance.now() - this.observed.at,
        defaultLeaseDurationMs: this.leaseDurationMs,
      });
      if (decision.act === 'wait') return { ok: false, holder: decision.holder };

      const now = new Date();
      const spec = nextSpec(lease?.spec, {
        identity,
        via: decision.act === 'create' ? 'created' : decision.via,
        leaseDurationSeconds,
        now,
      });
      const written =
        decision.act === 'create'
          ? await this.api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec } }, options)
          : // lease.metadata.resourceVersion makes this a compare-and-swap: a 409 means another candidate wrote first.
            await this.api.replaceNamespacedLease({ namespace, name, body: { ...lease!, spec } }, options);
      this.observe(written, callbacks);
      return { ok: true, via: decision.act === 'create' ? 'created' : decision.via };
    } catch (err) {
      const e = toKubeError(err);
      const lostRace = e.reason === 'Conflict' || e.reason === 'AlreadyExists';
      if (this.leading) {
        this.log.warn('renewing the lease failed', { error: e.message, code: e.code });
        this.emitMetrics({ type: 'renewFailed', error: err });
      } else if (!lostRace && !this.stopping.signal.aborted) {
        this.log.warn('acquiring the lease failed', { error: e.message, code: e.code });
      }
      return { ok: false };
    }
  }

  private observe(lease: V1Lease | undefined, callbacks: LeaderCallbacks): void {
    const fp = fingerprint(lease?.spec);
    if (fp === this.observed.fingerprint && lease) {
      this.observed.lease = lease;
      return;
    }
    const before = this.observed.lease?.spec?.holderIdentity ?? '';
    this.observed = { fingerprint: fp, at: performance.now(), lease };
    const holder = lease?.spec?.holderIdentity ?? '';
    if (holder && holder !== before) {
      this.log.info('new leader observed', { leader: holder });
      if (callbacks.onNewLeader) this.guard('onNewLeader', () => callbacks.onNewLeader!(holder));
    }
  }

  private async release(): Promise<void> {
    const { namespace, name, identity } = this.opts;
    const options = abortWith(AbortSignal.timeout(this.renewDeadlineMs));
    try {
      // Read afresh: a renewal cut short by stop() may still have been written.
      const lease = await this.api.readNamespacedLease({ namespace, name }, options);
      if (lease.spec?.holderIdentity !== identity) return;
      const body = { ...lease, spec: releasedSpec(lease.spec, new Date()) };
      await this.api.replaceNamespacedLease({ namespace, name, body }, options);
    } catch (err) {
      // The standby then takes over when the lease expires instead of at once.
      this.log.warn('releasing the lease failed', { error: toKubeError(err).message });
    }
  }

  private sleep(ms: number): Promise<void> {
    return delay(ms, undefined, { signal: this.stopping.signal }).catch(() => undefined);
  }

  private guard(what: string, fn: () => unknown): void {
    try {
      const result = fn();
      if (result instanceof Promise) result.catch((err: unknown) => this.log.error(`${what} failed`, { error: err }));
    } catch (err) {
      this.log.error(`${what} threw`, { error: err });
    }
  }

  private emitMetrics(event: DistributiveOmit<LeaderElectionEvent, 'name' | 'identity'>): void {
    try {
      this.opts.onMetrics?.({ ...event, name: this.opts.name, identity: this.opts.identity } as LeaderElectionEvent);
    } catch (err) {
      this.log.error('onMetrics threw', { error: err });
    }
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
