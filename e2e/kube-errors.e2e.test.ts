// The error shapes that operator/kube/errors.test.ts is built from, produced live: each API failure the operator
// handles, as the real client and API server produce it, must normalise to the same answer.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, KubernetesObjectApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import { LocalCluster } from './cluster/control-plane.ts';
import { toKubeError, isAlreadyExists, isConflict, isInvalid, isNotFound } from '../operator/kube/errors.ts';

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('the call was expected to fail');
}

describe('Kubernetes API errors, normalised', () => {
  let cluster: LocalCluster;
  let kc: KubeConfig;
  let core: CoreV1Api;
  const namespace = 'default';

  before(async () => {
    cluster = await LocalCluster.start();
    kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'exists' }, data: { v: '1' } } });
  });
  after(async () => {
    await cluster?.stop();
  });

  test('404 on reading a missing object', async () => {
    const err = await caught(core.readNamespacedConfigMap({ namespace, name: 'missing' }));
    assert.deepEqual(toKubeError(err), {
      code: 404,
      reason: 'NotFound',
      message: 'configmaps "missing" not found',
      retryable: false,
    });
    assert.ok(isNotFound(err));
    // The generic client wraps the same answer differently.
    const generic = await caught(
      KubernetesObjectApi.makeApiClient(kc).read({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'missing', namespace } }),
    );
    assert.deepEqual(toKubeError(generic), toKubeError(err));
  });

  test('409 AlreadyExists on creating an object twice', async () => {
    const err = await caught(core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'exists' } } }));
    assert.deepEqual(toKubeError(err), {
      code: 409,
      reason: 'AlreadyExists',
      message: 'configmaps "exists" already exists',
      retryable: false,
    });
    assert.ok(isAlreadyExists(err) && !isConflict(err));
  });

  test('409 Conflict on updating from a stale resourceVersion', async () => {
    const stale = await core.readNamespacedConfigMap({ namespace, name: 'exists' });
    await core.replaceNamespacedConfigMap({ namespace, name: 'exists', body: { ...stale, data: { v: '2' } } });
    const err = await caught(core.replaceNamespacedConfigMap({ namespace, name: 'exists', body: { ...stale, data: { v: '3' } } }));
    assert.deepEqual(toKubeError(err), {
      code: 409,
      reason: 'Conflict',
      message:
        'Operation cannot be fulfilled on configmaps "exists": the object has been modified; please apply your changes to the latest version and try again',
      retryable: true,
    });
    assert.ok(isConflict(err) && !isAlreadyExists(err));
  });

  test('422 Invalid names the field', async () => {
    const err = await caught(core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'Bad_Name' } } }));
    const normalised = toKubeError(err);
    assert.equal(normalised.code, 422);
    assert.equal(normalised.reason, 'Invalid');
    assert.equal(normalised.retryable, false);
    assert.match(normalised.message, /^ConfigMap "Bad_Name" is invalid: metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);
    assert.equal(normalised.causes?.length, 1);
    assert.equal(normalised.causes?.[0]?.field, 'metadata.name');
    assert.match(normalised.causes?.[0]?.message ?? '', /^Invalid value: "Bad_Name"/);
    assert.ok(isInvalid(err));
  });

  test('a watch on a path the server does not serve', async () => {
    const err = await new Promise<unknown>((resolve) => {
      void new Watch(kc).watch('/apis/nothing.example.com/v1/things', {}, () => {}, resolve);
    });
    assert.deepEqual(toKubeError(err), { code: 404, reason: 'NotFound', message: 'Not Found', retryable: false });
  });

  test('the API server going away is a retryable network error', async () => {
    await cluster.stopComponent('kube-apiserver');
    const err = await caught(core.readNamespacedConfigMap({ namespace, name: 'exists' }));
    const normalised = toKubeError(err);
    assert.equal(normalised.reason, 'NetworkError');
    assert.equal(normalised.retryable, true);
    assert.equal(normalised.code, undefined);
    assert.match(normalised.message, /ECONNREFUSED 127\.0\.0\.1:\d+/);
  });
});
