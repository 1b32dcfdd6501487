import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { Registry } from 'prom-client';
import { startWebhookServer, type WebhookServer } from './server.ts';
import { defaultPolicy, newPair, type CertPair } from './serving-cert.ts';
import type { ClusterView } from './admission.ts';
import { GROUP, VERSION } from '../api/v1alpha1/index.ts';
import { sample } from '../api/testdata/samples.ts';
import { createLogger } from '../observability/log.ts';

const policy = { ...defaultPolicy, dnsNames: [], ipAddresses: ['127.0.0.1'] };

interface Reply {
  status: number;
  body: Record<string, unknown>;
  peerFingerprint: string;
}

/** One POST on a fresh connection that trusts `ca`. */
function post(server: WebhookServer, path: string, body: string | Buffer, ca: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: server.port, path, method: 'POST', ca, agent: false, headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode!, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, peerFingerprint: (res.socket as TLSSocket).getPeerCertificate().fingerprint256 });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const review = (request: Record<string, unknown>) => JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
const createExperiment = (object: unknown) => ({ uid: 'u-1', kind: { group: GROUP, version: VERSION, kind: 'Experiment' }, operation: 'CREATE', namespace: 'default', object });

describe('webhook HTTPS server', () => {
  let server: WebhookServer;
  let pair: CertPair;
  let broken = false;
  const registry = new Registry();
  const view: ClusterView = {
    exists: () => Promise.resolve(true),
    enabledResourceClasses: () => {
      if (broken) throw new Error('boom');
      return ['a100-x2'];
    },
  };

  before(async () => {
    pair = await newPair(policy, 'webhook-test');
    server = await startWebhookServer({ host: '127.0.0.1', port: 0, view, logger: createLogger({ silent: true }), registry, bodyLimitBytes: 64 * 1024 });
  });
  after(async () => {
    await server?.close();
  });

  test('refuses handshakes until it has a certificate', async () => {
    await assert.rejects(post(server, '/validate', review(createExperiment(sample('Experiment'))), pair.caPem));
    server.setCertificate(pair);
  });

  const cases: { name: string; path: string; body: string | Buffer; status: number; check?: (b: Record<string, unknown>) => void; headers?: Record<string, string> }[] = [
    {
      name: 'a valid object is allowed',
      path: '/validate',
      body: review(createExperiment(sample('Experiment'))),
      status: 200,
      check: (b) => assert.deepEqual(b.response, { uid: 'u-1', allowed: true }),
    },
    {
      name: 'an invalid object is denied with the field and the fix',
      path: '/validate',
      body: review(createExperiment({ ...sample('Experiment'), spec: { ...sample('Experiment').spec, maxRetries: 99 } })),
      status: 200,
      check: (b) => {
        const r = b.response as { allowed: boolean; status: { code: number; message: string } };
        assert.equal(r.allowed, false);
        assert.equal(r.status.code, 422);
        assert.match(r.status.message, /spec\.maxRetries: must be <= 20/);
      },
    },
    {
      name: 'a mutation comes back as a base64 JSONPatch',
      path: '/mutate',
      body: review(createExperiment({ ...sample('Experiment'), spec: { ...sample('Experiment').spec, resourceClass: undefined } })),
      status: 200,
      check: (b) => {
        const r = b.response as { patch: string; patchType: string };
        assert.equal(r.patchType, 'JSONPatch');
        assert.deepEqual(JSON.parse(Buffer.from(r.patch, 'base64').toString()), [{ op: 'add', path: '/spec/resourceClass', value: 'a100-x2' }]);
      },
    },
    { name: 'JSON that does not parse is a 400', path: '/validate', body: '{"apiVersion":', status: 400 },
    { name: 'a review without a request is a 400', path: '/validate', body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), status: 400 },
    { name: 'a v1beta1 review is a 400', path: '/mutate', body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }), status: 400 },
    { name: 'a request without uid is a 400', path: '/validate', body: review({ ...createExperiment({}), uid: undefined }), status: 400 },
    { name: 'a body that is not JSON content is a 400', path: '/validate', body: 'hello', status: 400, headers: { 'content-type': 'text/plain' } },
    { name: 'a body over the limit is a 413', path: '/validate', body: Buffer.alloc(100 * 1024, 'a'), status: 413 },
    { name: 'another path is a 404', path: '/convert', body: '{}', status: 404 },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const r = await post(server, c.path, c.body, pair.caPem, c.headers);
      assert.equal(r.status, c.status, JSON.stringify(r.body));
      c.check?.(r.body);
    });
  }

  test('a failure inside the handler is a 500, and the server keeps serving', async () => {
    broken = true;
    const r = await post(server, '/mutate', review(createExperiment({ ...sample('Experiment'), spec: { ...sample('Experiment').spec, resourceClass: undefined } })), pair.caPem);
    broken = false;
    assert.equal(r.status, 500);
    assert.equal((await post(server, '/mutate', review(createExperiment(sample('Experiment'))), pair.caPem)).status, 200);
  });

  test('a new certificate is served to new connections without a restart', async () => {
    const next = await newPair(policy, 'webhook-test');
    server.setCertificate(next);
    const r = await post(server, '/validate', review(createExperiment(sample('Experiment'))), next.caPem);
    assert.equal(r.peerFingerprint, new X509Certificate(next.certPem).fingerprint256);
    await assert.rejects(post(server, '/validate', review(createExperiment(sample('Experiment'))), pair.caPem), 'the old CA no longer verifies it');
  });

  test('requests are counted as controller-runtime counts them', async () => {
    const text = await registry.metrics();
    assert.match(text, /controller_runtime_webhook_requests_total\{webhook="\/validate",code="200"\} [1-9]/);
    assert.match(text, /controller_runtime_webhook_requests_total\{webhook="\/validate",code="400"\} [1-9]/);
    assert.match(text, /arena_webhook_admission_decisions_total\{webhook="\/validate",kind="Experiment",operation="CREATE",outcome="denied"\} 1/);
  });
});
