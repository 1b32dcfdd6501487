// What this process wrote for an experiment and its caches do not show yet. A reconcile that ran before the
// watch delivered its own last writes would decide from the old state: its status patch, guarded by the old
// resourceVersion, would fail with 409 Conflict and be retried; and a gang whose pods are not in the pod cache yet
// would look unplaced, so its reservation would be dropped and it would be queued again. Like the ReplicaSet
// controller's expectations, a reconcile waits until the caches show the writes (a pod seen deleted counts as
// shown): the watch events that carry them wake it. The wait is bounded by the ReplicaSet controller's five
// minutes, after which it goes ahead from the caches as they are. Not less: watch events arrive seconds late when
// the API server or this process is overloaded, exactly when a gang created twice hurts most.

export interface CacheView {
  /** The resourceVersion of the experiment in the cache. */
  resourceVersion?: string;
  /** Whether the pod cache holds a pod of this name in the experiment's namespace. */
  hasPod(name: string): boolean;
}

interface Expected {
  /** The resourceVersion the last status write replaced: while the cache still shows it, the cache is behind. */
  replacedVersion?: string;
  pods: Set<string>;
  until: number;
}

export class Expectations {
  private readonly byKey = new Map<string, Expected>();

  constructor(
    private readonly opts: {
      ttlMs?: number;
      now?: () => number;
      /** Called when a wait ends unmet: what the caches still did not show. */
      onExpired?: (key: string, unmet: { status: boolean; pods: string[] }) => void;
    } = {},
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** A status write that replaced `version` succeeded. */
  wroteStatus(key: string, version: string | undefined): void {
    if (!version) return;
    this.entry(key).replacedVersion = version;
  }

  /** These worker pods were created (or already existed). */
  createdPods(key: string, podNames: string[]): void {
    const e = this.entry(key);
    for (const n of podNames) e.pods.add(n);
  }

  /** The pod was seen deleted: whether or not its creation was ever seen, it is no longer waited for. */
  podGone(key: string, podName: string): void {
    this.byKey.get(key)?.pods.delete(podName);
  }

  /** Milliseconds to wait for the caches to show this process's writes; 0 when they do (or waited long enough). */
  waitMs(key: string, cache: CacheView): number {
    const e = this.byKey.get(key);
    if (!e) return 0;
    const left = e.until - this.now();
    if (e.replacedVersion !== undefined && cache.resourceVersion !== e.replacedVersion) e.replacedVersion = undefined;
    for (const n of e.pods) if (cache.hasPod(n)) e.pods.delete(n);
    const met = e.replacedVersion === undefined && e.pods.size === 0;
    if (left <= 0 || met) {
      this.byKey.delete(key);
      if (!met) this.opts.onExpired?.(key, { status: e.replacedVersion !== undefined, pods: [...e.pods] });
      return 0;
    }
    return left;
  }

  forget(key: string): void {
    this.byKey.delete(key);
  }

  /** Keys with writes not yet seen, for tests and metrics. */
  size(): number {
    return this.byKey.size;
  }

  private entry(key: string): Expected {
    let e = this.byKey.get(key);
    if (!e) this.byKey.set(key, (e = { pods: new Set(), until: 0 }));
    e.until = this.now() + (this.opts.ttlMs ?? 5 * 60_000);
    return e;
  }
}
