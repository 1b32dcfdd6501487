// The operator's Kubernetes plumbing against a real API server: client-side rate limiting and its metrics,
// status subresource writes on a throwaway CRD, Events as `kubectl describe` shows them, and the signing key.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import {
  ApiextensionsV1Api,
  PatchStrategy,
  setHeaderOptions,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubernetesObjectApi,
  type KubeConfig,
  type V1ConfigMap,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { LocalCluster } from './cluster/control-plane.ts';
import { waitFor } from './cluster/wait.ts';
import { RateLimitedKubeConfig, TokenBucket } from '../operator/kube/ratelimit.ts';
import { patchStatus, updateStatusIfChanged, type StatusObject } from '../operator/kube/status.ts';
import { setCondition } from '../operator/kube/conditions.ts';
import { EventRecorder, reportingController } from '../operator/kube/events.ts';
import { isConflict } from '../operator/kube/errors.ts';
import { deletePodSeen } from '../operator/kube/delete.ts';
import { Controller, splitKey } from '../operator/kube/controller.ts';
import { ExponentialFailureRateLimiter } from '../operator/kube/workqueue.ts';
import { createMetrics, type Metrics } from '../operator/observability/metrics.ts';
import { createLogger } from '../operator/observability/log.ts';
import { FakeClock } from '../operator/kube/clock.ts';
import { SigningKey } from '../operator/credentials/signing-key.ts';
import { issueRunToken } from '../operator/credentials/run-token.ts';

const group = 'plumbing.test.arena.agilerl.com';

function crd(plural: string, kind: string, scope: 'Namespaced' | 'Cluster'): V1CustomResourceDefinition {
  const open = { type: 'object', x_kubernetes_preserve_unknown_fields: true };
  return {
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope,
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: { openAPIV3Schema: { type: 'object', properties: { spec: open, status: open } } },
        },
      ],
    },
  };
}

async function value(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const { values } = await metrics.registry.getSingleMetric(name)!.get();
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
}

describe('Kubernetes plumbing', () => {
  let cluster: LocalCluster;
  let kc: KubeConfig;
  let core: CoreV1Api;

  before(async () => {
    cluster = await LocalCluster.start();
    kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
  });
  after(async () => {
    await cluster?.stop();
  });

  describe('client-side rate limiting', () => {
    test('20 calls at 10 qps with a burst of 1 take about 2 s, and every call is counted', async () => {
      const metrics = createMetrics();
      const limited = new RateLimitedKubeConfig(kc, { limiter: new TokenBucket({ qps: 10, burst: 1 }), metrics });
      const limitedCore = limited.makeApiClient(CoreV1Api);
      const objects = KubernetesObjectApi.makeApiClient(limited);
      const start = performance.now();
      await Promise.all([
        ...Array.from({ length: 18 }, () => limitedCore.readNamespace({ name: 'default' })),
        limitedCore.readNamespace({ name: 'missing' }).catch(() => undefined),
        objects.read({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }),
      ]);
      const seconds = (performance.now() - start) / 1000;
      // The first call is free, each later one waits its 100 ms in turn. A loose bound, not a benchmark.
      assert.ok(seconds >= 1.5, `20 calls took only ${seconds.toFixed(2)} s`);

      const host = new URL(cluster.server).host;
      // 18 reads, the generic read, and the resource discovery the generic client does before it.
      const ok = await value(metrics, 'rest_client_requests_total', { code: '200', method: 'GET', host });
      assert.equal(ok, 20);
      assert.equal(await value(metrics, 'rest_client_requests_total', { code: '404', method: 'GET', host }), 1);
      const text = await metrics.registry.metrics();
      const timed = new RegExp(`rest_client_request_duration_seconds_count\\{verb="GET",host="${host}"\\} (\\d+)`).exec(text);
      assert.equal(Number(timed?.[1]), ok + 1, 'every request timed');
      const waited = /rest_client_rate_limiter_duration_seconds_sum\{[^}]*\} ([\d.]+)/.exec(text);
      // 0 + 0.1 + ... + 2.0 s for 21 requests queued at once.
      assert.ok(Number(waited?.[1]) > 10, `callers waited ${waited?.[1]} s in total for the limiter`);
    });
  });

  describe('controller', () => {
    test('a reconcile that fails on a missing object retries with backoff until the object appears', async () => {
      const metrics = createMetrics();
      const stream = new PassThrough();
      const lines: Record<string, unknown>[] = [];
      stream.on('data', (c: Buffer) => c.toString().split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l))));
      const client = new RateLimitedKubeConfig(kc, { metrics }).makeApiClient(CoreV1Api);
      const controller = new Controller({
        name: 'configmap-labeler',
        metrics,
        logger: createLogger({ stream }),
        rateLimiter: new ExponentialFailureRateLimiter(20, 200),
        reconciler: {
          async reconcile(key) {
            const { namespace, name } = splitKey(key);
            const cm = await client.readNamespacedConfigMap({ namespace: namespace!, name });
            if (cm.metadata?.labels?.reconciled) return;
            const body = { metadata: { labels: { reconciled: 'true' } } };
            const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
            await client.patchNamespacedConfigMap({ namespace: namespace!, name, body }, mergePatch);
          },
        },
      });
      const errors = () => value(metrics, 'controller_runtime_reconcile_errors_total', { controller: 'configmap-labeler' });
      controller.start();
      controller.enqueue('default/late');
      await waitFor(async () => (await errors()) >= 2, { timeoutMs: 10_000, what: 'two failed reconciles' });
      await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'late' } } });
      await waitFor(
        async () => {
          const cm = await core.readNamespacedConfigMap({ namespace: 'default', name: 'late' });
          return cm.metadata?.labels?.reconciled === 'true';
        },
        { timeoutMs: 10_000, what: 'the label written by the controller' },
      );
      await controller.stop();
      assert.equal(controller.queue.numRequeues('default/late'), 0);
      const failure = lines.find((l) => l.msg === 'Reconciler error');
      assert.equal(failure?.reason, 'NotFound');
      assert.equal(failure?.error, 'configmaps "late" not found');
      assert.equal(failure?.namespace, 'default');
      assert.equal(failure?.name, 'late');
      const successes = { controller: 'configmap-labeler', result: 'success' };
      assert.ok((await value(metrics, 'controller_runtime_reconcile_total', successes)) >= 1);
    });
  });

  describe('status subresource writes', () => {
    let custom: CustomObjectsApi;
    const widgets = { group, version: 'v1', plural: 'widgets', kind: 'Widget' };
    const namespace = 'default';

    before(async () => {
      const ext = kc.makeApiClient(ApiextensionsV1Api);
      for (const def of [crd('widgets', 'Widget', 'Namespaced'), crd('gizmos', 'Gizmo', 'Cluster')]) {
        await ext.createCustomResourceDefinition({ body: def });
      }
      await waitFor(
        async () => {
          const list = await ext.listCustomResourceDefinition();
          const established = list.items.filter((d) =>
            d.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'),
          );
          return established.length === 2;
        },
        { timeoutMs: 30_000, what: 'test CRDs established' },
      );
      custom = kc.makeApiClient(CustomObjectsApi);
      // Discovery of a new group can lag Established by a moment.
      await waitFor(
        async () => {
          await custom.listNamespacedCustomObject({ group, version: 'v1', plural: 'widgets', namespace });
          return true;
        },
        { timeoutMs: 30_000, what: 'widgets served' },
      );
    });

    async function createWidget(name: string): Promise<StatusObject> {
      const body = { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name, namespace }, spec: { size: 3 } };
      const created = await custom.createNamespacedCustomObject({ group, version: 'v1', plural: 'widgets', namespace, body });
      return created as StatusObject;
    }
    const read = async (name: string) =>
      (await custom.getNamespacedCustomObject({ group, version: 'v1', plural: 'widgets', namespace, name })) as StatusObject & {
        spec: unknown;
      };

    test('patchStatus merges only the fields given and leaves spec alone', async () => {
      await createWidget('merge');
      const ref = { group, version: 'v1', plural: 'widgets', namespace, name: 'merge' };
      await patchStatus(custom, ref, { phase: 'Pending', reason: 'NoGPUs' });
      await patchStatus(custom, ref, { progress: { step: 10 } });
      await patchStatus(custom, ref, { reason: null, phase: 'Running' });
      const widget = await read('merge');
      assert.deepEqual(widget.status, { phase: 'Running', progress: { step: 10 } });
      assert.deepEqual(widget.spec, { size: 3 });
    });

    test('patchStatus with a stale resourceVersion is a Conflict', async () => {
      const created = await createWidget('stale');
      const ref = { group, version: 'v1', plural: 'widgets', namespace, name: 'stale' };
      await patchStatus(custom, ref, { phase: 'Pending' });
      await assert.rejects(
        patchStatus(custom, ref, { phase: 'Running' }, { resourceVersion: created.metadata!.resourceVersion }),
        (err) => isConflict(err),
      );
      assert.deepEqual((await read('stale')).status, { phase: 'Pending' });
    });

    test('patchStatus on a cluster-scoped resource', async () => {
      await custom.createClusterCustomObject({
        group,
        version: 'v1',
        plural: 'gizmos',
        body: { apiVersion: `${group}/v1`, kind: 'Gizmo', metadata: { name: 'g' } },
      });
      await patchStatus(custom, { group, version: 'v1', plural: 'gizmos', name: 'g' }, { ready: true });
      const gizmo = (await custom.getClusterCustomObject({ group, version: 'v1', plural: 'gizmos', name: 'g' })) as StatusObject;
      assert.deepEqual(gizmo.status, { ready: true });
    });

    test('updateStatusIfChanged writes a changed status exactly and skips an unchanged one', async () => {
      const metrics = createMetrics();
      const t0 = new Date('2026-11-20T10:00:00Z');
      let widget = await createWidget('level');
      const first = {
        phase: 'Pending',
        waitingFor: 'gpus',
        conditions: setCondition(undefined, { type: 'Ready', status: 'False', reason: 'NoGPUs', message: '0 of 8 free' }, 1, t0),
      };
      widget = (await updateStatusIfChanged(custom, widgets, widget, first, metrics))!;
      assert.deepEqual(widget.status, first);

      // The same desired status, recomputed a minute later: nothing to write.
      const again = {
        waitingFor: 'gpus',
        phase: 'Pending',
        conditions: setCondition(first.conditions, { type: 'Ready', status: 'False', reason: 'NoGPUs', message: '0 of 8 free' }, 1),
      };
      const before = (await read('level')).metadata!.resourceVersion;
      assert.equal(await updateStatusIfChanged(custom, widgets, widget, again, metrics), undefined);
      assert.equal((await read('level')).metadata!.resourceVersion, before, 'no write reached the server');

      // A field dropped from the desired status is removed from the object.
      const running = {
        phase: 'Running',
        conditions: setCondition(again.conditions, { type: 'Ready', status: 'True', reason: 'Running', message: '' }, 1),
      };
      widget = (await updateStatusIfChanged(custom, widgets, widget, running, metrics))!;
      assert.deepEqual((await read('level')).status, running);

      assert.equal(await value(metrics, 'arena_status_writes_total', { kind: 'Widget', result: 'written' }), 2);
      assert.equal(await value(metrics, 'arena_status_writes_total', { kind: 'Widget', result: 'skipped' }), 1);

      // A status computed from an outdated copy is refused rather than written over newer data.
      const outdated = { ...widget, metadata: { ...widget.metadata, resourceVersion: before } };
      await assert.rejects(updateStatusIfChanged(custom, widgets, outdated, first), (err) => isConflict(err));
    });
  });

  describe('events', () => {
    const namespace = 'default';
    let events: EventsV1Api;
    let cm: V1ConfigMap;

    before(async () => {
      events = kc.makeApiClient(EventsV1Api);
      cm = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'described' } } });
      cm = { ...cm, apiVersion: 'v1', kind: 'ConfigMap' }; // typed reads leave these out
    });

    function recorder(metrics: Metrics, stream?: PassThrough) {
      // Without a stream of its own a failure shows on stderr, next to the test that caused it.
      const logger = createLogger({ stream: stream ?? process.stderr, level: 'debug' });
      return new EventRecorder({ client: events, reportingInstance: 'operator-0', metrics, logger });
    }

    async function eventsAbout(name: string) {
      const list = await events.listNamespacedEvent({ namespace, fieldSelector: `regarding.name=${name},regarding.kind=ConfigMap` });
      return list.items;
    }

    test('an event shows up in kubectl describe, from the operator', async () => {
      const metrics = createMetrics();
      const rec = recorder(metrics);
      rec.record(cm, 'Warning', 'ManifestInvalid', 'spec.manifest.algo: must be one of PPO, DQN');
      await rec.flush();
      const [event, ...more] = await eventsAbout('described');
      assert.equal(more.length, 0);
      assert.equal(event!.reportingController, reportingController);
      assert.equal(event!.reportingInstance, 'operator-0');
      assert.equal(event!.type, 'Warning');
      assert.equal(event!.reason, 'ManifestInvalid');
      assert.equal(event!.regarding?.uid, cm.metadata!.uid);

      // kubectl describe selects core/v1 events on involvedObject; the same objects answer there.
      const coreList = await core.listNamespacedEvent({
        namespace,
        fieldSelector: `involvedObject.name=described,involvedObject.kind=ConfigMap,involvedObject.uid=${cm.metadata!.uid}`,
      });
      assert.equal(coreList.items.length, 1);
      const described = cluster.kubectl(['describe', 'configmap', 'described', '-n', namespace]);
      assert.match(described, /Warning\s+ManifestInvalid\s+.*spec\.manifest\.algo: must be one of PPO, DQN/);
      assert.equal(await value(metrics, 'arena_event_writes_total', { result: 'created' }), 1);
    });

    test('50 identical events become one Event with a series count of 50', async () => {
      const metrics = createMetrics();
      const rec = recorder(metrics);
      const created = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'repeated' } } });
      const repeated = { ...created, apiVersion: 'v1', kind: 'ConfigMap' };
      for (let i = 0; i < 50; i++) rec.record(repeated, 'Normal', 'Synced', 'workers are up to date');
      rec.record(repeated, 'Normal', 'Synced', 'a different note is a different event');
      await rec.flush();
      const list = await eventsAbout('repeated');
      assert.equal(list.length, 2);
      const synced = list.find((e) => e.note === 'workers are up to date')!;
      assert.equal(synced.series?.count, 50);
      assert.ok(synced.series?.lastObservedTime, 'the series says when it was last seen');
      assert.equal(list.find((e) => e.note !== synced.note)?.series, undefined);
      assert.equal(await value(metrics, 'arena_event_writes_total', { result: 'created' }), 2);
      assert.equal(await value(metrics, 'arena_event_writes_total', { result: 'series' }), 1);
      assert.match(cluster.kubectl(['describe', 'configmap', 'repeated', '-n', namespace]), /\(x50 over .*\)/);
    });

    test('a series is written on its own after the flush interval; after the window a new Event starts', async () => {
      const clock = new FakeClock();
      const rec = new EventRecorder({
        client: events,
        reportingInstance: 'operator-0',
        logger: createLogger({ stream: process.stderr }),
        clock,
        flushIntervalMs: 10_000,
        seriesWindowMs: 60_000,
      });
      const created = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'windowed' } } });
      const obj = { ...created, apiVersion: 'v1', kind: 'ConfigMap' };
      for (let i = 0; i < 3; i++) rec.record(obj, 'Warning', 'WorkerRestarted', 'worker 0 restarted');
      await waitFor(async () => (await eventsAbout('windowed')).length === 1, { timeoutMs: 10_000, what: 'the first event' });
      assert.equal((await eventsAbout('windowed'))[0]!.series, undefined, 'repeats wait for the flush interval');
      await clock.advance(10_000);
      await waitFor(async () => (await eventsAbout('windowed'))[0]?.series?.count === 3, {
        timeoutMs: 10_000,
        what: 'the series count written by the flush timer',
      });
      await clock.advance(60_000);
      rec.record(obj, 'Warning', 'WorkerRestarted', 'worker 0 restarted');
      await rec.flush();
      assert.equal((await eventsAbout('windowed')).length, 2);
    });

    test('recording never throws into the caller: bad input and failed writes are logged and counted', async () => {
      const metrics = createMetrics();
      const stream = new PassThrough();
      const lines: string[] = [];
      stream.on('data', (c: Buffer) => lines.push(c.toString()));
      const rec = recorder(metrics, stream);
      rec.record(cm, 'Normal', 'not camel case', 'x');
      rec.record({ kind: 'ConfigMap', metadata: {} }, 'Normal', 'Synced', 'no name');
      const elsewhere = { ...cm, metadata: { ...cm.metadata, namespace: 'no-such-namespace' } };
      rec.record(elsewhere, 'Normal', 'Synced', 'the namespace does not exist');
      await rec.flush();
      assert.equal(await value(metrics, 'arena_event_writes_total', { result: 'failed' }), 3);
      const logged = lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(logged.length, 3);
      assert.ok(logged.every((l) => l.msg === 'Could not record event' && l.level === 'warn'));
      assert.equal(logged[2]!.errorReason, 'NotFound');
      assert.equal(logged[2]!.error, 'namespaces "no-such-namespace" not found');
    });
  });

  describe('deletes by what was seen', () => {
    const ns = 'default';
    const podBody = (name: string) => ({ metadata: { name }, spec: { containers: [{ name: 'c', image: 'registry.local/none:1' }] } });

    test('a pod replaced by one of the same name survives a delete of the one seen; the one seen is deleted', async () => {
      const seen = await core.createNamespacedPod({ namespace: ns, body: podBody('worker-0') });
      // Unscheduled, so the delete is immediate; then a newer pod takes the name (another attempt, a new leader).
      await core.deleteNamespacedPod({ namespace: ns, name: 'worker-0', gracePeriodSeconds: 0 });
      await waitFor(() => core.readNamespacedPod({ namespace: ns, name: 'worker-0' }).then(() => false, () => true), { timeoutMs: 30_000, what: 'worker-0 gone' });
      const newer = await core.createNamespacedPod({ namespace: ns, body: podBody('worker-0') });
      assert.equal(await deletePodSeen(core, seen, 0), false);
      assert.equal((await core.readNamespacedPod({ namespace: ns, name: 'worker-0' })).metadata!.uid, newer.metadata!.uid);
      assert.equal(await deletePodSeen(core, newer, 0), true);
      await waitFor(() => core.readNamespacedPod({ namespace: ns, name: 'worker-0' }).then(() => false, () => true), { timeoutMs: 30_000, what: 'worker-0 deleted' });
      assert.equal(await deletePodSeen(core, newer, 0), false, 'a pod already gone is not an error');
    });
  });

  describe('signing key', () => {
    const quiet = createLogger({ silent: true });
    const replica = (name: string) => new SigningKey({ informerBase: { kc, logger: quiet }, core, namespace: 'default', name, logger: quiet });

    test('the first replica creates an immutable 32-byte key; another replica gets the same one, cached or not', async () => {
      const a = replica('key-shared');
      const b = replica('key-shared');
      await b.informer.start();
      try {
        assert.equal(a.current(), undefined, 'nothing before the Secret exists');
        const key = await a.ensure();
        assert.equal(key.length, 32);
        const stored = await core.readNamespacedSecret({ namespace: 'default', name: 'key-shared' });
        assert.equal(stored.immutable, true);
        assert.deepEqual(Buffer.from(stored.data!.key!, 'base64'), key);
        // b watches the Secret; a fresh replica that has not seen it yet finds it taken and reads it.
        await waitFor(() => b.current()?.equals(key) ?? false, { timeoutMs: 10_000, what: 'the other replica to see the key' });
        assert.deepEqual(await replica('key-shared').ensure(), key);
        // Many reconciles asking at once on a replica that has not seen it: one answer for all.
        const fresh = replica('key-shared');
        const all = await Promise.all(Array.from({ length: 8 }, () => fresh.ensure()));
        assert.ok(all.every((k) => k.equals(key)));
        const claims = { namespace: 'ml', name: 'e', run: 1, attempt: 1, worker: 0 };
        assert.equal(issueRunToken(key, 'uid-1', claims), issueRunToken(b.current()!, 'uid-1', claims), 'both replicas derive the same token');
      } finally {
        b.informer.stop();
      }
    });

    test('a Secret with too short a key is reported and never overwritten', async () => {
      await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'key-short' }, data: { key: Buffer.alloc(8, 1).toString('base64') } } });
      const k = replica('key-short');
      await k.informer.start();
      try {
        await assert.rejects(k.ensure(), /Secret default\/key-short must hold at least 32 random bytes under data\.key; delete it/);
        assert.equal(k.current(), undefined);
        const stored = await core.readNamespacedSecret({ namespace: 'default', name: 'key-short' });
        assert.equal(Buffer.from(stored.data!.key!, 'base64').length, 8, 'left as the admin wrote it');
      } finally {
        k.informer.stop();
      }
    });

    test('a deleted key is forgotten and the next ensure makes a new one', async () => {
      const k = replica('key-deleted');
      await k.informer.start();
      try {
        const first = await k.ensure();
        await core.deleteNamespacedSecret({ namespace: 'default', name: 'key-deleted' });
        await waitFor(() => k.current() === undefined, { timeoutMs: 10_000, what: 'the deletion to be seen' });
        const second = await k.ensure();
        assert.notDeepEqual(second, first);
      } finally {
        k.informer.stop();
      }
    });
  });
});
