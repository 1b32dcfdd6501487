// A list+watch cache of one resource that keeps itself correct through API trouble: it retries every failure with
// backoff, relists on 410 Gone, restarts a watch that went silent, relists periodically against silent drift, and
// after every relist re-emits each object so a level-based controller looks at everything again.
//
// Built on client-node's `Watch` rather than its `ListWatch`, which (2.0.1) gives up for good on any error other
// than 410 or a client timeout, lists in one request, sends neither allowWatchBookmarks nor timeoutSeconds, keeps
// whole objects, gives update handlers no old object, has no indexes, and mixes typed list results (Date
// objects) with raw watch objects (strings). Lists go through client-node's own transport and authentication
// but are parsed as plain JSON, so listed and watched objects have the same shape.
import { setTimeout as delay } from 'node:timers/promises';
import {
  ApiException,
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  RequestContext,
  Watch,
  type HttpLibrary,
  type KubeConfig,
  type KubernetesObject,
  type V1ContainerStatus,
  type V1Node,
  type V1NodeStatus,
  type V1ObjectMeta,
  type V1Pod,
  type V1PodStatus,
  type V1Taint,
} from '@kubernetes/client-node';
import { objectKey } from './controller.ts';
import { toKubeError } from './errors.ts';
import { createLogger, type Logger } from '../observability/log.ts';

/** What the informer needs of a cached object: its name, namespace and resourceVersion. */
export interface Cacheable {
  metadata?: Pick<V1ObjectMeta, 'name' | 'namespace' | 'resourceVersion'>;
}

/** Why a full list ran. */
export type ListReason = 'initial' | 'resync' | 'expired' | 'watchdog';
/** Why the list/watch cycle was torn down and retried after a backoff. */
export type RestartReason = 'error' | 'expired' | 'watchdog';

/**
 * Callbacks for metrics such as arena_informer_restarts_total{resource}; `resource` is the plural, qualified by
 * the group outside the core group: 'pods', 'experiments.arena.agilerl.com'.
 */
export interface InformerMetrics {
  relisted?(resource: string, reason: ListReason): void;
  restarted?(resource: string, reason: RestartReason): void;
  watchEvent?(resource: string, type: string): void;
}

export interface InformerOptions<T extends Cacheable> {
  kc: KubeConfig;
  /** API group; '' for the core group. */
  group: string;
  version: string;
  plural: string;
  /** Watch one namespace; all namespaces when omitted (and for cluster-scoped resources). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Keeps only what the operator reads; the default drops metadata.managedFields. */
  transform?: (obj: KubernetesObject) => T;
  /** Full relist this often, against drift no watch event reports. Default 10 min. */
  resyncIntervalMs?: number;
  /** Restart when neither a list page nor a watch event (bookmarks included) arrives for this long. Default 5 min. */
  watchdogMs?: number;
  /** Objects per list page. Default 500. */
  pageSize?: number;
  logger?: Logger;
  /** Called with every failure that restarts the cycle, after it is logged. */
  onError?: (err: unknown) => void;
  metrics?: InformerMetrics;
  /** Backoff between restarts; default 200 ms doubling to 30 s with ±20 % jitter. */
  backoff?: Backoff;
  /** Sends list requests, e.g. ratelimit.ts's rateLimitedTransport; client-node's undici fetch by default. */
  transport?: HttpLibrary;
  /**
   * A watch went silent past client-node's inactivity limit or the watchdog, `sentAt` (performance.now()) being
   * when it was opened: the connection it used is presumed dead, and the caller may drop the connections it shares
   * (ratelimit.ts RateLimitedKubeConfig.dropConnections) so the next watch and list dial fresh ones.
   */
  onWatchHung?: (sentAt: number) => void;
}

export interface InformerEvents<T> {
  add: (obj: T) => void;
  /** Also fires after every relist for objects that did not change, with `old` holding the same state. */
  update: (obj: T, old: T) => void;
  /** `obj` is the last state the cache held. */
  delete: (obj: T) => void;
  /** After every complete list has been applied to the cache and its object events emitted. */
  synced: (reason: ListReason) => void;
  /** After every complete list except the first: the cache was replaced and every object re-emitted. */
  resynced: (reason: ListReason) => void;
}

type Handlers<T> = { [E in keyof InformerEvents<T>]: InformerEvents<T>[E][] };

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Each delay is scaled by a random 1 ± jitter. Default 0.2. */
  jitter?: number;
  random?: () => number;
}

/** Exponential backoff with jitter: initial, initial·factor, … capped at max. */
export class Backoff {
  private attempt = 0;

  constructor(private readonly opts: BackoffOptions = { initialMs: 200, maxMs: 30_000 }) {}

  next(): number {
    const { initialMs, maxMs, factor = 2, jitter = 0.2, random = Math.random } = this.opts;
    const base = Math.min(maxMs, initialMs * factor ** this.attempt);
    this.attempt++;
    return Math.round(Math.min(maxMs, base * (1 - jitter + 2 * jitter * random())));
  }

  reset(): void {
    this.attempt = 0;
  }
}

export interface RelistDiff<T> {
  added: T[];
  /** [new, old]; includes objects whose resourceVersion did not change. */
  updated: [T, T][];
  deleted: T[];
}

/** What a full list means for a cache: every listed object is added or updated, every other cached one deleted. */
export function diffRelist<T extends Cacheable>(cached: ReadonlyMap<string, T>, listed: readonly T[]): RelistDiff<T> {
  const diff: RelistDiff<T> = { added: [], updated: [], deleted: [] };
  const seen = new Set<string>();
  for (const obj of listed) {
    const key = objectKey(obj);
    seen.add(key);
    const old = cached.get(key);
    if (old) diff.updated.push([obj, old]);
    else diff.added.push(obj);
  }
  for (const [key, old] of cached) if (!seen.has(key)) diff.deleted.push(old);
  return diff;
}

/** Objects by key, with secondary indexes kept up to date on every write. */
export class Store<T extends Cacheable> {
  private readonly objects = new Map<string, T>();
  private readonly indexes = new Map<string, { fn: (obj: T) => string[]; keys: Map<string, Set<string>> }>();

  get size(): number {
    return this.objects.size;
  }

  entries(): ReadonlyMap<string, T> {
    return this.objects;
  }

  get(key: string): T | undefined {
    return this.objects.get(key);
  }

  list(namespace?: string): T[] {
    const all = [...this.objects.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  set(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.objects.get(key);
    if (old) this.unindex(key, old);
    this.objects.set(key, obj);
    this.index(key, obj);
    return old;
  }

  delete(key: string): T | undefined {
    const old = this.objects.get(key);
    if (!old) return undefined;
    this.unindex(key, old);
    this.objects.delete(key);
    return old;
  }

  addIndex(name: string, fn: (obj: T) => string[]): void {
    if (this.indexes.has(name)) throw new Error(`index ${name} already exists`);
    this.indexes.set(name, { fn, keys: new Map() });
    for (const [key, obj] of this.objects) this.index(key, obj, name);
  }

  byIndex(name: string, value: string): T[] {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`no index named ${name}`);
    return [...(index.keys.get(value) ?? [])].map((key) => this.objects.get(key)!);
  }

  private index(key: string, obj: T, only?: string): void {
    for (const [name, index] of this.indexes) {
      if (only !== undefined && name !== only) continue;
      for (const value of index.fn(obj)) {
        let keys = index.keys.get(value);
        if (!keys) index.keys.set(value, (keys = new Set()));
        keys.add(key);
      }
    }
  }

  private unindex(key: string, obj: T): void {
    for (const index of this.indexes.values()) {
      for (const value of index.fn(obj)) {
        const keys = index.keys.get(value);
        keys?.delete(key);
        if (keys?.size === 0) index.keys.delete(value);
      }
    }
  }
}

// client-node's Watch aborts a request that has received nothing for 30 s (its private requestTimeoutMs). Asking
// the server to end each watch well before that, with a bookmark shortly before the end when it has one to give,
// keeps quiet watches ending cleanly (the connection is reused) instead of being torn down by the client.
const clientWatchInactivityMs = 30_000;

/** The timeoutSeconds for one watch: a jittered half to four fifths of min(watchdog, client inactivity limit). */
export function watchTimeoutSeconds(watchdogMs: number, random: () => number = Math.random): number {
  const windowS = Math.min(watchdogMs, clientWatchInactivityMs) / 1000;
  return Math.max(1, Math.floor(windowS * (0.5 + 0.3 * random())));
}

class WatchdogTimeout extends Error {
  constructor(ms: number) {
    super(`nothing received for ${ms} ms`);
    this.name = 'WatchdogTimeout';
  }
}

class RelistDue extends Error {
  constructor(reason: ListReason) {
    super(`relist (${reason})`);
    this.name = 'RelistDue';
  }
}

class StoppedError extends Error {
  constructor() {
    super('informer stopped');
    this.name = 'StoppedError';
  }
}

type WatchStatus = { kind?: string; code?: number; reason?: string; message?: string };

/** One start()…stop(): its stop signal, the list or watch in flight, and the resync timer. */
interface Run {
  stop: AbortController;
  attempt?: AbortController;
  resync?: NodeJS.Timeout;
}

export class Informer<T extends Cacheable = KubernetesObject> {
  /** Names the resource in logs and metrics: 'pods', 'experiments.arena.agilerl.com'. */
  readonly resource: string;
  private readonly path: string;
  private readonly store = new Store<T>();
  private readonly handlers: Handlers<T> = { add: [], update: [], delete: [], synced: [], resynced: [] };
  private readonly transform: (obj: KubernetesObject) => T;
  private readonly resyncIntervalMs: number;
  private readonly watchdogMs: number;
  private readonly pageSize: number;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly watch: Watch;
  private readonly http: HttpLibrary;

  private resourceVersion = '';
  private synced = false;
  private listsDone = 0;
  private pendingList: ListReason | undefined = 'initial';
  private running: Run | undefined;
  private firstSync: { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } | undefined;

  constructor(private readonly opts: InformerOptions<T>) {
    const base = opts.group ? `/apis/${opts.group}/${opts.version}` : `/api/${opts.version}`;
    this.path = `${base}${opts.namespace ? `/namespaces/${opts.namespace}` : ''}/${opts.plural}`;
    this.resource = opts.group ? `${opts.plural}.${opts.group}` : opts.plural;
    this.transform = opts.transform ?? (stripManagedFields as (obj: KubernetesObject) => T);
    this.resyncIntervalMs = opts.resyncIntervalMs ?? 10 * 60_000;
    this.watchdogMs = opts.watchdogMs ?? 5 * 60_000;
    this.pageSize = opts.pageSize ?? 500;
    this.log = (opts.logger ?? createLogger({ component: 'informer' })).child(
      opts.namespace ? { resource: this.resource, namespace: opts.namespace } : { resource: this.resource },
    );
    this.backoff = opts.backoff ?? new Backoff();
    this.watch = new Watch(opts.kc);
    this.http = opts.transport ?? new IsomorphicFetchHttpLibrary();
  }

  on<E extends keyof InformerEvents<T>>(event: E, handler: InformerEvents<T>[E]): this {
    this.handlers[event].push(handler);
    return this;
  }

  off<E extends keyof InformerEvents<T>>(event: E, handler: InformerEvents<T>[E]): this {
    const list = this.handlers[event];
    const i = list.indexOf(handler);
    if (i >= 0) list.splice(i, 1);
    return this;
  }

  /** Starts listing and watching; resolves once the first full list is in the cache. */
  start(): Promise<void> {
    if (this.running) return this.firstSync!.promise;
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined); // a caller that does not await start() must not see an unhandled rejection
    this.firstSync = { promise, resolve, reject };
    this.running = { stop: new AbortController() };
    this.pendingList = 'initial';
    void this.run(this.running);
    return promise;
  }

  /** Ends the watch and every retry; the cache keeps its last contents. start() may be called again. */
  stop(): void {
    if (!this.running) return;
    clearTimeout(this.running.resync);
    this.running.stop.abort(new StoppedError());
    this.running = undefined;
    this.synced = false;
    this.firstSync?.reject(new Error(`informer for ${this.resource} stopped before it synced`));
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** By key: 'namespace/name', or 'name' for cluster-scoped objects. */
  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(namespace?: string): T[] {
    return this.store.list(namespace);
  }

  size(): number {
    return this.store.size;
  }

  /** Adds a secondary index; `fn` returns the values an object is found under (none, one or many). */
  addIndex(name: string, fn: (obj: T) => string[]): void {
    this.store.addIndex(name, fn);
  }

  byIndex(name: string, value: string): T[] {
    return this.store.byIndex(name, value);
  }

  /** The resourceVersion of the last list, event or bookmark: where the next watch resumes. */
  lastSyncResourceVersion(): string {
    return this.resourceVersion;
  }

  private async run(run: Run): Promise<void> {
    const stop = run.stop.signal;
    while (!stop.aborted) {
      const attempt = new AbortController();
      const onStop = () => attempt.abort(stop.reason);
      stop.addEventListener('abort', onStop, { once: true });
      run.attempt = attempt;
      const watchdog = setTimeout(() => attempt.abort(new WatchdogTimeout(this.watchdogMs)), this.watchdogMs);
      watchdog.unref();
      try {
        if (this.pendingList) await this.relist(run, this.pendingList, attempt.signal, watchdog);
        await this.watchOnce(attempt.signal, watchdog);
      } catch (err) {
        if (stop.aborted) return;
        const cause = attempt.signal.aborted ? attempt.signal.reason : err;
        if (cause instanceof RelistDue) continue;
        await this.restart(cause, stop);
      } finally {
        clearTimeout(watchdog);
        stop.removeEventListener('abort', onStop);
      }
    }
  }

  private async restart(cause: unknown, stop: AbortSignal): Promise<void> {
    const kubeError = toKubeError(cause);
    const reason: RestartReason =
      cause instanceof WatchdogTimeout ? 'watchdog' : kubeError.reason === 'Gone' ? 'expired' : 'error';
    // Other failures (refused connections, 5xx, 401/403 while RBAC settles) resume the watch from the last
    // resourceVersion, as client-go does; a resume from a version the server no longer has answers 410.
    if (reason !== 'error') {
      this.resourceVersion = '';
      this.pendingList = reason;
    }
    // A 410 is a healthy server's answer, so the relist it asks for starts a fresh backoff instead of waiting out
    // one escalated by the outage before it (right after an API server restart its watch cache answers 410 to
    // resourceVersions it has not seen yet, once or twice).
    if (reason === 'expired') this.backoff.reset();
    const delayMs = this.backoff.next();
    this.log.warn('list/watch failed; retrying', {
      reason,
      error: kubeError.message,
      code: kubeError.code,
      retryInMs: delayMs,
    });
    this.opts.metrics?.restarted?.(this.resource, reason);
    try {
      this.opts.onError?.(cause);
    } catch (err) {
      this.log.error('onError handler threw', { error: err });
    }
    await delay(delayMs, undefined, { signal: stop }).catch(() => undefined);
  }

  private async relist(run: Run, reason: ListReason, signal: AbortSignal, watchdog: NodeJS.Timeout): Promise<void> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.listPage(cont, signal);
      watchdog.refresh();
      for (const raw of page.items ?? []) {
        const obj = this.safeTransform(raw);
        if (obj) items.push(obj);
      }
      cont = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion ?? '';
    } while (cont);
    signal.throwIfAborted(); // a list that completes as stop() is called must not touch the cache any more

    const diff = diffRelist(this.store.entries(), items);
    for (const obj of items) this.store.set(obj);
    for (const obj of diff.deleted) this.store.delete(objectKey(obj));
    this.resourceVersion = resourceVersion;
    this.pendingList = undefined;
    this.backoff.reset();
    this.scheduleResync(run);
    this.log.debug('listed', {
      reason,
      resourceVersion,
      objects: items.length,
      added: diff.added.length,
      deleted: diff.deleted.length,
    });
    this.opts.metrics?.relisted?.(this.resource, reason);

    for (const obj of diff.added) this.emit('add', obj);
    for (const [obj, old] of diff.updated) this.emit('update', obj, old);
    for (const obj of diff.deleted) this.emit('delete', obj);
    const first = this.listsDone++ === 0;
    if (!this.synced) {
      this.synced = true;
      this.firstSync?.resolve();
    }
    this.emit('synced', reason);
    if (!first) this.emit('resynced', reason);
  }

  private async listPage(cont: string | undefined, signal: AbortSignal): Promise<ListPage> {
    const server = this.opts.kc.getCurrentCluster()?.server;
    if (!server) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(server + this.path);
    url.searchParams.set('limit', String(this.pageSize));
    if (cont) url.searchParams.set('continue', cont);
    if (this.opts.labelSelector) url.searchParams.set('labelSelector', this.opts.labelSelector);
    if (this.opts.fieldSelector) url.searchParams.set('fieldSelector', this.opts.fieldSelector);
    const ctx = new RequestContext(url.toString(), HttpMethod.GET);
    ctx.setHeaderParam('Accept', 'application/json');
    await this.opts.kc.applySecurityAuthentication(ctx);
    ctx.setSignal(signal);
    const res = await this.http.send(ctx).toPromise();
    const body = await res.body.text();
    // The same error type the generated clients throw, so toKubeError reads it the same way.
    if (res.httpStatusCode < 200 || res.httpStatusCode > 299) {
      throw new ApiException(res.httpStatusCode, `list ${this.resource}`, body, res.headers);
    }
    return JSON.parse(body) as ListPage;
  }

  private scheduleResync(run: Run): void {
    clearTimeout(run.resync);
    run.resync = setTimeout(() => {
      // A list already due (or running) is as good as a resync; during a backoff the flag makes the next try list.
      if (this.pendingList) return;
      this.pendingList = 'resync';
      run.attempt?.abort(new RelistDue('resync'));
    }, this.resyncIntervalMs);
    run.resync.unref();
  }

  /** One watch from the current resourceVersion; resolves when the server ends it, rejects on any failure. */
  private watchOnce(signal: AbortSignal, watchdog: NodeJS.Timeout): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    const timeoutSeconds = watchTimeoutSeconds(this.watchdogMs);
    const startedAt = performance.now();
    this.log.debug('watching', { resourceVersion: this.resourceVersion, timeoutSeconds });
    let events = 0;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let request: AbortController | undefined;
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        request?.abort();
        if (err instanceof WatchdogTimeout || (err instanceof Error && err.name === 'TimeoutError')) {
          try {
            this.opts.onWatchHung?.(startedAt);
          } catch (hookErr) {
            this.log.error('onWatchHung handler threw', { error: hookErr });
          }
        }
        if (err) reject(err);
        // A server that ends watches at once would otherwise have us reconnecting in a tight loop.
        else if (events === 0 && performance.now() - startedAt < (timeoutSeconds * 1000) / 2) {
          reject(new Error('watch ended without events before its timeout'));
        } else {
          this.backoff.reset();
          resolve();
        }
      };
      const onAbort = () => finish(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });

      const onEvent = (type: string, obj: KubernetesObject & WatchStatus) => {
        if (settled) return;
        events++;
        watchdog.refresh();
        this.opts.metrics?.watchEvent?.(this.resource, type);
        if (type === 'ERROR') return finish(obj); // a Status; 410 means the resourceVersion is gone
        this.backoff.reset();
        this.applyEvent(type, obj);
        if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
      };
      this.watch
        .watch(
          this.path,
          {
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds,
            labelSelector: this.opts.labelSelector,
            fieldSelector: this.opts.fieldSelector,
          },
          onEvent,
          (err: unknown) => finish(err ?? undefined),
        )
        .then(
          (controller) => {
            request = controller;
            if (settled) controller.abort();
          },
          (err: unknown) => finish(err),
        );
    });
  }

  private applyEvent(type: string, raw: KubernetesObject): void {
    if (type === 'BOOKMARK') return;
    const obj = this.safeTransform(raw);
    if (!obj) return;
    const key = objectKey(obj);
    if (type === 'DELETED') {
      const old = this.store.delete(key);
      this.emit('delete', old ?? obj);
      return;
    }
    const old = this.store.set(obj);
    if (!old) this.emit('add', obj);
    else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('update', obj, old);
  }

  private safeTransform(raw: KubernetesObject): T | undefined {
    try {
      return this.transform(raw);
    } catch (err) {
      this.log.error('transform failed; object skipped', {
        namespace: raw.metadata?.namespace,
        name: raw.metadata?.name,
        error: err,
      });
      return undefined;
    }
  }

  private emit<E extends keyof InformerEvents<T>>(event: E, ...args: Parameters<InformerEvents<T>[E]>): void {
    for (const handler of [...this.handlers[event]]) {
      try {
        const result = (handler as (...a: unknown[]) => unknown)(...args);
        if (result instanceof Promise) result.catch((err: unknown) => this.handlerFailed(event, err));
      } catch (err) {
        this.handlerFailed(event, err);
      }
    }
  }

  private handlerFailed(event: string, err: unknown): void {
    this.log.error('event handler threw', { event, error: err });
  }
}

interface ListPage {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: KubernetesObject[];
}

/** JSON as it travels: the model classes type timestamps as Date, but list and watch bodies carry strings. */
export type Wire<T> = T extends Date
  ? string
  : T extends (infer U)[]
    ? Wire<U>[]
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

/** The default transform: managed fields are large and of no use to a controller (client-go drops them too). */
export function stripManagedFields<T extends KubernetesObject>(obj: T): T {
  if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
  return obj;
}

// Lean objects keep the API's own field paths, so code written against the full type reads them unchanged.

export interface LeanPod {
  metadata: Pick<
    Wire<V1ObjectMeta>,
    'name' | 'namespace' | 'uid' | 'labels' | 'ownerReferences' | 'resourceVersion' | 'deletionTimestamp'
  > & {
    /** Only the annotations in LEAN_POD_ANNOTATIONS: most pods carry none of them, and the rest are not read. */
    annotations?: Record<string, string>;
  };
  /**
   * Everything a pod's effective request is made of (scheduler/from-kube.ts podRequests): containers, init
   * containers (sidecars have restartPolicy Always), pod-level requests and the RuntimeClass overhead.
   */
  spec: {
    nodeName?: string;
    containers: LeanContainer[];
    initContainers?: (LeanContainer & { restartPolicy?: string })[];
    resources?: { requests?: Record<string, string> };
    overhead?: Record<string, string>;
  };
  status: Pick<Wire<V1PodStatus>, 'phase' | 'conditions'> & {
    containerStatuses?: Pick<
      Wire<V1ContainerStatus>,
      'name' | 'ready' | 'restartCount' | 'started' | 'state' | 'lastState'
    >[];
  };
}

type LeanContainer = { name: string; resources: { requests?: Record<string, string> } };

/** The annotations a lean pod keeps: a worker pod's gang plan (controllers/experiment/workers.ts). */
export const LEAN_POD_ANNOTATIONS: readonly string[] = ['arena.agilerl.com/gang-nodes'];

function keptAnnotations(all: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!all) return undefined;
  const kept = LEAN_POD_ANNOTATIONS.filter((k) => all[k] !== undefined).map((k) => [k, all[k]!] as const);
  return kept.length ? Object.fromEntries(kept) : undefined;
}

export function leanPod(obj: KubernetesObject): LeanPod {
  const pod = obj as Wire<V1Pod>;
  const m = pod.metadata ?? {};
  return {
    metadata: defined({
      annotations: keptAnnotations(m.annotations),
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      labels: m.labels,
      ownerReferences: m.ownerReferences,
      resourceVersion: m.resourceVersion,
      deletionTimestamp: m.deletionTimestamp,
    }),
    spec: defined({
      nodeName: pod.spec?.nodeName,
      containers: (pod.spec?.containers ?? []).map((c) => ({
        name: c.name,
        resources: defined({ requests: c.resources?.requests }),
      })),
      initContainers: pod.spec?.initContainers?.map((c) =>
        defined({ name: c.name, restartPolicy: c.restartPolicy, resources: defined({ requests: c.resources?.requests }) }),
      ),
      resources: pod.spec?.resources?.requests ? { requests: pod.spec.resources.requests } : undefined,
      overhead: pod.spec?.overhead,
    }),
    status: defined({
      phase: pod.status?.phase,
      conditions: pod.status?.conditions,
      containerStatuses: pod.status?.containerStatuses?.map((s) =>
        defined({
          name: s.name,
          ready: s.ready,
          restartCount: s.restartCount,
          started: s.started,
          state: s.state,
          lastState: s.lastState,
        }),
      ),
    }),
  };
}

export interface LeanNode {
  metadata: Pick<Wire<V1ObjectMeta>, 'name' | 'uid' | 'labels' | 'resourceVersion' | 'deletionTimestamp'>;
  spec: { taints?: Wire<V1Taint>[]; unschedulable?: boolean };
  /** `conditions` holds the Ready condition only. */
  status: Pick<Wire<V1NodeStatus>, 'allocatable' | 'conditions'>;
}

export function leanNode(obj: KubernetesObject): LeanNode {
  const node = obj as Wire<V1Node>;
  const m = node.metadata ?? {};
  const ready = node.status?.conditions?.filter((c) => c.type === 'Ready');
  return {
    metadata: defined({
      name: m.name,
      uid: m.uid,
      labels: m.labels,
      resourceVersion: m.resourceVersion,
      deletionTimestamp: m.deletionTimestamp,
    }),
    spec: defined({ taints: node.spec?.taints, unschedulable: node.spec?.unschedulable }),
    status: defined({ allocatable: node.status?.allocatable, conditions: ready?.length ? ready : undefined }),
  };
}

/** Drops undefined fields, so lean objects hold only what the API object had. */
function defined<O extends object>(o: O): O {
  for (const k of Object.keys(o) as (keyof O)[]) if (o[k] === undefined) delete o[k];
  return o;
}
