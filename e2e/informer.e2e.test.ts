// The informer against a real control plane, through the trouble it exists for: an API server that restarts,
// one that freezes, a resourceVersion the server no longer has, and a continue token that expired mid-list.
import { describe, test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { join } from 'node:path';
import {
  CoreV1Api,
  IsomorphicFetchHttpLibrary,
  type HttpLibrary,
  type KubeConfig,
  type KubernetesObject,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import { LocalCluster } from './cluster/control-plane.ts';
import { signal } from './cluster/processes.ts';
import { waitFor } from './cluster/wait.ts';
import { Informer, type InformerEvents, type InformerOptions, type ListReason, type RestartReason } from '../operator/kube/informer.ts';
import { createLogger } from '../operator/observability/log.ts';

const logger = createLogger({ silent: !process.env.LOG_LEVEL });

/** Everything an informer reported, and a way to await the next report that matches. */
class Recorder {
  readonly events: { type: string; name?: string; detail?: string }[] = [];
  readonly relists: ListReason[] = [];
  readonly restarts: RestartReason[] = [];
  private waiters: { match: (e: Recorder['events'][number]) => boolean; resolve: () => void }[] = [];

  attach(inf: Informer<V1ConfigMap>): void {
    const push = (type: string, name?: string, detail?: string) => {
      const e = { type, name, detail };
      this.events.push(e);
      this.waiters = this.waiters.filter((w) => !(w.match(e) && (w.resolve(), true)));
    };
    const handlers: Partial<InformerEvents<V1ConfigMap>> = {
      add: (o) => push('add', o.metadata?.name),
      update: (o, old) => push('update', o.metadata?.name, `${old.data?.v}->${o.data?.v}`),
      delete: (o) => push('delete', o.metadata?.name),
      synced: (r) => push('synced', undefined, r),
      resynced: (r) => push('resynced', undefined, r),
    };
    for (const [event, handler] of Object.entries(handlers)) inf.on(event as 'add', handler as never);
  }

  metrics = {
    relisted: (_r: string, reason: ListReason) => this.relists.push(reason),
    restarted: (_r: string, reason: RestartReason) => this.restarts.push(reason),
  };

  /** Resolves on the first event (already seen after `since`, or still to come) that matches. */
  next(type: string, opts: { name?: string; detail?: string; since?: number; timeoutMs?: number } = {}): Promise<void> {
    const match = (e: Recorder['events'][number]) =>
      e.type === type && (opts.name === undefined || e.name === opts.name) && (opts.detail === undefined || e.detail === opts.detail);
    if (this.events.slice(opts.since ?? 0).some(match)) return Promise.resolve();
    const timeoutMs = opts.timeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${type} ${opts.name ?? ''} ${opts.detail ?? ''} within ${timeoutMs} ms; saw ${JSON.stringify(this.events.slice(-20))}`)),
        timeoutMs,
      );
      this.waiters.push({ match, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  mark(): number {
    return this.events.length;
  }
}

/** Direct access to the cluster's etcd (its v3 JSON gateway), to change what the API server cannot see change. */
class Etcd {
  readonly url: string;
  constructor(cluster: LocalCluster) {
    // The harness keeps its ports in state.json; the etcd URL is not otherwise exposed.
    const state = JSON.parse(readFileSync(join(cluster.dir, 'state.json'), 'utf8')) as { ports: { etcd: number } };
    this.url = `http://127.0.0.1:${state.ports.etcd}`;
  }

  private async call(path: string, body: object): Promise<{ header: { revision: string } }> {
    const res = await fetch(`${this.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as { header: { revision: string } };
  }

  async deleteKey(key: string): Promise<string> {
    return (await this.call('/v3/kv/deleterange', { key: btoa(key) })).header.revision;
  }

  async compact(revision: string): Promise<void> {
    await this.call('/v3/kv/compaction', { revision, physical: true });
  }

  /** Writes an unrelated key and compacts up to it, blocking the event loop (for use inside a transform). */
  bumpAndCompactSync(): void {
    execFileSync(process.execPath, [
      '-e',
      `const u=${JSON.stringify(this.url)};
       const post=(p,b)=>fetch(u+p,{method:'POST',body:JSON.stringify(b)}).then(r=>r.json());
       post('/v3/kv/put',{key:btoa('/arena-e2e/bump'),value:btoa('x')})
         .then(r=>post('/v3/kv/compaction',{revision:r.header.revision,physical:true}))
         .then(r=>{ if(!r.header) { console.error(JSON.stringify(r)); process.exit(1); } });`,
    ]);
  }
}

function configMap(name: string, v: string, labels: Record<string, string> = {}): V1ConfigMap {
  return { metadata: { name, labels }, data: { v } };
}

describe('informer against a real control plane', () => {
  let cluster: LocalCluster;
  let kc: KubeConfig;
  let core: CoreV1Api;
  let etcd: Etcd;

  // With the snapshot-based list cache off, continued list pages are read from etcd, as before Kubernetes 1.34 and
  // whenever the cache cannot serve them, so an etcd compaction can expire a continue token.
  before(async () => {
    cluster = await LocalCluster.start({ extraArgs: { 'kube-apiserver': ['--feature-gates=ListFromCacheSnapshot=false'] } });
    kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    etcd = new Etcd(cluster);
  });
  after(async () => {
    await cluster?.stop();
  });

  async function namespace(name: string, objects: V1ConfigMap[] = []): Promise<void> {
    await core.createNamespace({ body: { metadata: { name } } });
    for (const body of objects) await core.createNamespacedConfigMap({ namespace: name, body });
  }

  function informer(
    t: TestContext,
    ns: string,
    rec: Recorder,
    opts: Partial<InformerOptions<V1ConfigMap>> = {},
  ): Informer<V1ConfigMap> {
    const inf = new Informer<V1ConfigMap>({
      kc,
      group: '',
      version: 'v1',
      plural: 'configmaps',
      namespace: ns,
      fieldSelector: 'metadata.name!=kube-root-ca.crt',
      logger,
      metrics: rec.metrics,
      ...opts,
    });
    rec.attach(inf);
    t.after(() => inf.stop());
    return inf;
  }

  test('lists in pages, then follows adds, updates and deletes; a throwing handler harms nothing', async (t) => {
    const ns = 'inf-basic';
    await namespace(ns, Array.from({ length: 7 }, (_, i) => configMap(`cm-${i}`, '1', { team: i % 2 ? 'odd' : 'even' })));
    let listRequests = 0;
    const inner = new IsomorphicFetchHttpLibrary();
    const counting: HttpLibrary = { send: (ctx) => (listRequests++, inner.send(ctx)) };
    const rec = new Recorder();
    const inf = informer(t, ns, rec, { pageSize: 2, transport: counting });
    inf.on('add', () => {
      throw new Error('handler bug');
    });
    inf.addIndex('team', (o) => [o.metadata?.labels?.team ?? '']);

    await inf.start();
    assert.equal(inf.hasSynced(), true);
    assert.equal(listRequests, 4, '7 objects in pages of 2');
    assert.equal(inf.size(), 7);
    assert.deepEqual(rec.relists, ['initial']);
    assert.deepEqual(
      inf.byIndex('team', 'odd').map((o) => o.metadata?.name).sort(),
      ['cm-1', 'cm-3', 'cm-5'],
    );
    assert.equal(inf.get(`${ns}/cm-0`)?.data?.v, '1');
    assert.equal(inf.list(ns).length, 7);
    assert.equal(inf.list('elsewhere').length, 0);
    assert.equal(inf.get(`${ns}/cm-0`)?.metadata?.managedFields, undefined, 'default transform drops managedFields');

    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('cm-new', '1', { team: 'odd' }) });
    await rec.next('add', { name: 'cm-new' });
    const cm1 = await core.readNamespacedConfigMap({ namespace: ns, name: 'cm-1' });
    await core.replaceNamespacedConfigMap({ namespace: ns, name: 'cm-1', body: { ...cm1, data: { v: '2' } } });
    await rec.next('update', { name: 'cm-1', detail: '1->2' });
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'cm-3' });
    await rec.next('delete', { name: 'cm-3' });

    assert.equal(inf.get(`${ns}/cm-1`)?.data?.v, '2');
    assert.equal(inf.get(`${ns}/cm-3`), undefined);
    assert.deepEqual(
      inf.byIndex('team', 'odd').map((o) => o.metadata?.name).sort(),
      ['cm-1', 'cm-5', 'cm-new'],
    );
    assert.equal(inf.lastSyncResourceVersion() !== '', true);
    assert.deepEqual(rec.restarts, []);
  });

  test('a periodic resync relists and re-emits every object without counting as trouble', async (t) => {
    const ns = 'inf-resync';
    await namespace(ns, [configMap('a', '1'), configMap('b', '1')]);
    const rec = new Recorder();
    const inf = informer(t, ns, rec, { resyncIntervalMs: 1_000 });
    await inf.start();
    const since = rec.mark();
    await rec.next('resynced', { detail: 'resync', since });
    await rec.next('update', { name: 'a', detail: '1->1', since });
    await rec.next('update', { name: 'b', detail: '1->1', since });
    assert.deepEqual(rec.restarts, []);
    assert.equal(rec.relists[0], 'initial');
    assert.ok(rec.relists.slice(1).every((r) => r === 'resync'), `relists: ${rec.relists.join(', ')}`);
  });

  test('a continue token that expires mid-list restarts the list, which then completes', async (t) => {
    const ns = 'inf-expired-continue';
    await namespace(ns, Array.from({ length: 7 }, (_, i) => configMap(`cm-${i}`, '1')));
    const rec = new Recorder();
    let compacted = false;
    const inf = informer(t, ns, rec, {
      pageSize: 2,
      // Runs while the first page is being taken in, before the second page is asked for.
      transform: (obj: KubernetesObject) => {
        if (!compacted) {
          compacted = true;
          etcd.bumpAndCompactSync();
        }
        return obj as V1ConfigMap;
      },
    });
    await inf.start();
    assert.deepEqual(rec.restarts, ['expired']);
    assert.deepEqual(rec.relists, ['expired']);
    assert.equal(inf.size(), 7);
  });

  test('a frozen API server trips the watchdog; after it thaws the informer relists and follows again', async (t) => {
    const ns = 'inf-watchdog';
    await namespace(ns, [configMap('a', '1')]);
    const rec = new Recorder();
    const inf = informer(t, ns, rec, { watchdogMs: 2_000 });
    await inf.start();
    // A quiet but healthy watch is not a stalled one: the server ends each watch before the watchdog could fire.
    await delay(3 * 2_000);
    assert.deepEqual(rec.restarts, []);

    const apiserver = cluster.process('kube-apiserver')!;
    signal(apiserver, 'SIGSTOP');
    try {
      await waitFor(() => rec.restarts.includes('watchdog'), { timeoutMs: 30_000, what: 'a watchdog restart' });
    } finally {
      signal(apiserver, 'SIGCONT');
    }
    const since = rec.mark();
    await rec.next('resynced', { detail: 'watchdog', since });
    await rec.next('update', { name: 'a', detail: '1->1', since }); // re-emitted so controllers look again

    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('b', '1') });
    await rec.next('add', { name: 'b', since });
    assert.equal(inf.size(), 2);
  });

  test('after an API server restart with changes it never saw, a 410 relist converges the cache', async (t) => {
    const ns = 'inf-restart';
    await namespace(ns, [configMap('a', '1'), configMap('b', '1'), configMap('c', '1')]);
    const rec = new Recorder();
    const inf = informer(t, ns, rec);
    await inf.start();
    const since = rec.mark();

    await cluster.stopComponent('kube-apiserver');
    // While the API server is down, b disappears (as if another API server of an HA control plane had deleted it)
    // and etcd compacts its history, so the informer's resourceVersion is gone when it comes back.
    const revision = await etcd.deleteKey(`/registry/configmaps/${ns}/b`);
    await etcd.compact(revision);
    await cluster.startComponent('kube-apiserver');

    await rec.next('delete', { name: 'b', since, timeoutMs: 90_000 });
    await rec.next('resynced', { detail: 'expired', since });
    assert.ok(rec.restarts.includes('expired'), `restarts: ${rec.restarts.join(', ')}`);
    await rec.next('update', { name: 'a', detail: '1->1', since });
    await rec.next('update', { name: 'c', detail: '1->1', since });

    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('d', '1') });
    await rec.next('add', { name: 'd', since });
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'a' });
    await rec.next('delete', { name: 'a', since });
    assert.deepEqual(inf.list().map((o) => o.metadata?.name).sort(), ['c', 'd']);
  });
});
