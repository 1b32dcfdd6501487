// Kubernetes Events about the operator's objects, for `kubectl describe` and `kubectl events`.
//
// Written as events.k8s.io/v1 Events: the API client-go's newer recorder (tools/events) uses, with the reporting
// controller and instance as required fields and a `series` for repeats. They share storage with core/v1
// Events, so `kubectl describe` lists them like any other (and prints a series as "(xN over ...)").
// Repeats of the same (object, type, reason, action, note) within a window become one Event whose series count
// is updated at most once per flush interval, instead of one API object per occurrence.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import {
  PatchStrategy,
  V1MicroTime,
  setHeaderOptions,
  type EventsV1Api,
  type EventsV1Event,
  type KubernetesObject,
  type V1ObjectReference,
} from '@kubernetes/client-node';
import { realClock, type Clock } from './clock.ts';
import { isNotFound, toKubeError } from './errors.ts';
import { createLogger, type Logger } from '../observability/log.ts';
import type { Metrics } from '../observability/metrics.ts';

export const reportingController = 'arena.agilerl.com/operator';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorderOptions {
  client: EventsV1Api;
  /** This replica's name; default $POD_NAME (downward API), else the host name. */
  reportingInstance?: string;
  logger?: Logger;
  metrics?: Metrics;
  /** Repeats this close to the first occurrence join its series; default 6 minutes, as client-go. */
  seriesWindowMs?: number;
  /** How often a growing series count is written; default 10 s. */
  flushIntervalMs?: number;
  /** Series remembered at most; the oldest are forgotten first. Default 4096. */
  maxSeries?: number;
  clock?: Clock;
}

interface Series {
  namespace: string;
  /** The Event's name, once created. */
  name?: string;
  /** Occurrences seen, and how many of them the API object shows. */
  count: number;
  written: number;
  firstSeen: number;
  lastObserved: Date;
  /** This series' writes, one after another. */
  chain: Promise<void>;
}

const camelCase = /^[A-Z][A-Za-z0-9]*$/;
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Cuts `text` to at most `max` UTF-8 bytes without splitting a character. */
function truncateBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > max - 3) break;
    out += ch;
    bytes += n;
  }
  return `${out}...`;
}

// client-go's naming: the object's name, a dot and a hex timestamp (here with a random tail, since two replicas
// or two events in one millisecond must not collide). Cut to fit the 253 characters a name may have.
function eventName(objectName: string): string {
  const suffix = `.${Date.now().toString(16)}${randomBytes(4).toString('hex')}`;
  return objectName.slice(0, 253 - suffix.length) + suffix;
}

function referenceTo(obj: KubernetesObject): V1ObjectReference {
  const ref: V1ObjectReference = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata?.name };
  if (obj.metadata?.namespace) ref.namespace = obj.metadata.namespace;
  if (obj.metadata?.uid) ref.uid = obj.metadata.uid;
  if (obj.metadata?.resourceVersion) ref.resourceVersion = obj.metadata.resourceVersion;
  return ref;
}

export class EventRecorder {
  private readonly client: EventsV1Api;
  private readonly instance: string;
  private readonly log: Logger;
  private readonly metrics?: Metrics;
  private readonly windowMs: number;
  private readonly flushIntervalMs: number;
  private readonly maxSeries: number;
  private readonly clock: Clock;
  private readonly series = new Map<string, Series>();
  private cancelFlush?: () => void;

  constructor(opts: EventRecorderOptions) {
    this.client = opts.client;
    this.instance = truncateBytes(opts.reportingInstance ?? process.env.POD_NAME ?? hostname(), 128);
    this.log = opts.logger ?? createLogger({ component: 'events' });
    this.metrics = opts.metrics;
    this.windowMs = opts.seriesWindowMs ?? 6 * 60 * 1000;
    this.flushIntervalMs = opts.flushIntervalMs ?? 10 * 1000;
    this.maxSeries = opts.maxSeries ?? 4096;
    this.clock = opts.clock ?? realClock;
  }

  /**
   * Records that something happened to `regarding`. Returns at once and never throws: a failed write is logged
   * and counted, since an Event is never worth failing a reconcile over.
   */
  record(regarding: KubernetesObject, type: EventType, reason: string, note: string, action: string = reason): void {
    try {
      // List responses leave kind and apiVersion out of their items; without them no describe finds the event.
      if (!regarding.metadata?.name || !regarding.kind) throw new Error('the object has no kind or metadata.name');
      if (!camelCase.test(reason) || reason.length > 128) {
        throw new Error(`reason ${JSON.stringify(reason)} is not CamelCase`);
      }
      if (!action || action.length > 128) throw new Error(`action ${JSON.stringify(action)} is empty or too long`);
      const ref = referenceTo(regarding);
      const text = truncateBytes(note, 1024);
      const { uid, apiVersion, kind, namespace, name } = ref;
      const key = JSON.stringify([uid, apiVersion, kind, namespace, name, type, reason, action, text]);
      const now = this.clock.now();
      const known = this.series.get(key);
      if (known && now - known.firstSeen < this.windowMs) {
        known.count++;
        known.lastObserved = new Date();
        this.scheduleFlush();
        return;
      }
      const series: Series = {
        // Events about cluster-scoped objects live in 'default', as client-go puts them.
        namespace: ref.namespace ?? 'default',
        count: 1,
        written: 0,
        firstSeen: now,
        lastObserved: new Date(),
        chain: Promise.resolve(),
      };
      // The previous series of this key, if any, gets its last count written before it is let go.
      if (known) this.enqueue(known, () => this.writeSeries(key, known));
      this.series.delete(key);
      this.series.set(key, series);
      if (this.series.size > this.maxSeries) this.series.delete(this.series.keys().next().value!);
      const event: EventsV1Event = {
        metadata: { name: eventName(ref.name!), namespace: series.namespace },
        eventTime: new V1MicroTime(),
        reportingController,
        reportingInstance: this.instance,
        regarding: ref,
        type,
        reason,
        action,
        note: text,
      };
      this.enqueue(series, () => this.create(key, series, event));
    } catch (err) {
      this.failed(err, { reason, regarding: regarding?.metadata?.name });
    }
  }

  /** Writes every pending series count now and waits until all writes have finished. */
  async flush(): Promise<void> {
    this.cancelFlush?.();
    this.cancelFlush = undefined;
    const now = this.clock.now();
    const writes: Promise<void>[] = [];
    for (const [key, series] of this.series) {
      this.enqueue(series, () => this.writeSeries(key, series));
      writes.push(series.chain);
      // A closed window's series is complete once this write lands.
      if (now - series.firstSeen >= this.windowMs) this.series.delete(key);
    }
    await Promise.all(writes);
  }

  private scheduleFlush(): void {
    this.cancelFlush ??= this.clock.setTimer(this.flushIntervalMs, () => {
      this.cancelFlush = undefined;
      void this.flush();
    });
  }

  private enqueue(series: Series, write: () => Promise<void>): void {
    series.chain = series.chain.then(write).catch((err: unknown) => this.failed(err, { namespace: series.namespace }));
  }

  private async create(key: string, series: Series, event: EventsV1Event): Promise<void> {
    try {
      const created = await this.client.createNamespacedEvent({ namespace: series.namespace, body: event });
      series.name = created.metadata?.name;
      series.written = 1;
      this.metrics?.eventWrites.inc({ result: 'created' });
    } catch (err) {
      // Forget it so the next occurrence tries again with a fresh create.
      if (this.series.get(key) === series) this.series.delete(key);
      throw err;
    }
  }

  private async writeSeries(key: string, series: Series): Promise<void> {
    const count = series.count;
    if (!series.name || count <= series.written) return;
    const body = { series: { count, lastObservedTime: new V1MicroTime(series.lastObserved) } };
    try {
      await this.client.patchNamespacedEvent({ namespace: series.namespace, name: series.name, body }, mergePatch);
      series.written = count;
      this.metrics?.eventWrites.inc({ result: 'series' });
    } catch (err) {
      // The Event expired (the API server keeps them an hour); the next occurrence starts a new one.
      if (isNotFound(err)) {
        if (this.series.get(key) === series) this.series.delete(key);
        return;
      }
      throw err;
    }
  }

  private failed(err: unknown, fields: Record<string, unknown>): void {
    this.metrics?.eventWrites.inc({ result: 'failed' });
    const { reason, message } = toKubeError(err);
    this.log.warn('Could not record event', { ...fields, error: message, errorReason: reason });
  }
}
