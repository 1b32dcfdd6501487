import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import express from 'express';
import { Registry } from 'prom-client';
import { createLogger } from '../observability/log.ts';
import { createAuthority } from '../pki/certs.ts';
import { startHttpServer, startOpsServer } from './http.ts';

const logger = createLogger({ silent: true });

function request(url: string, opts: https.RequestOptions = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? https : http).request(u, { timeout: 3000, ...opts }, (res) => {
      let text = '';
      res.on('data', (c) => (text += String(c)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Raw bytes of a plain-HTTP request with a bearer token, and whatever comes back before the server hangs up. */
function plainBytes(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('POST /runtime/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret-token\r\nContent-Length: 0\r\n\r\n'));
    let got = '';
    s.on('data', (c) => (got += c.toString('latin1')));
    s.on('close', () => resolve(got));
    s.on('error', () => resolve(got));
    s.setTimeout(3000, () => s.destroy());
  });
}

test('the API server speaks TLS only: no certificate, no handshake; plain HTTP reaches no handler; metrics are not on it', async () => {
  let seen = 0;
  const router = express.Router();
  router.post('/reports', (_req, res) => {
    seen++;
    res.json({ acknowledged: 0 });
  });
  const api = await startHttpServer({ host: '127.0.0.1', port: 0, tls: true, logger, healthy: () => true, ready: () => ({ ready: true }), routers: [{ path: '/runtime/v1', router }] });
  try {
    assert.match(api.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = await createAuthority('test-ca');
    await assert.rejects(request(`${api.url}/healthz`, { ca: ca.certPem }), 'before a certificate is set every handshake fails');

    const leaf = await ca.issue({ commonName: '127.0.0.1', usage: 'server', ipAddresses: ['127.0.0.1'] });
    api.setCertificate(leaf);
    assert.equal(api.certificate(), leaf.certPem);
    assert.equal((await request(`${api.url}/healthz`, { ca: ca.certPem })).status, 200);
    assert.equal((await request(`${api.url}/runtime/v1/reports`, { ca: ca.certPem, method: 'POST' })).status, 200);
    assert.equal(seen, 1);
    const metrics = await request(`${api.url}/metrics`, { ca: ca.certPem });
    assert.equal(metrics.status, 404);
    assert.match(metrics.text, /metrics are served on the operator's metrics port/);

    const reply = await plainBytes(api.port);
    assert.doesNotMatch(reply, /^HTTP\/1\.1 200/, 'a plain-HTTP request is not answered as one');
    assert.equal(seen, 1, 'the plain-HTTP request with a token reached no handler');
    const other = await createAuthority('other-ca');
    await assert.rejects(request(`${api.url}/runtime/v1/reports`, { ca: other.certPem, method: 'POST' }), /self-signed|unable to verify|certificate/i);
    assert.equal(seen, 1, 'a client that does not trust the server sent nothing');
  } finally {
    await api.close();
  }
});

test('the ops server serves /metrics, /healthz and /readyz on plain HTTP and nothing else', async () => {
  const registry = new Registry();
  registry.setDefaultLabels({});
  const ops = await startOpsServer({ host: '127.0.0.1', port: 0, registry, logger, healthy: () => true, ready: () => ({ ready: false, reason: 'caches' }) });
  try {
    assert.equal((await request(`${ops.url}/metrics`)).status, 200);
    assert.equal((await request(`${ops.url}/healthz`)).status, 200);
    assert.deepEqual(await request(`${ops.url}/readyz`), { status: 503, text: 'caches' });
    assert.equal((await request(`${ops.url}/api/v1/cluster`)).status, 404);
  } finally {
    await ops.close();
  }
});

test('a plain server refuses setCertificate', async () => {
  const s = await startHttpServer({ host: '127.0.0.1', port: 0, logger, healthy: () => true, ready: () => ({ ready: true }) });
  try {
    assert.throws(() => s.setCertificate({ certPem: '', keyPem: '' }), /started without tls/);
  } finally {
    await s.close();
  }
});
