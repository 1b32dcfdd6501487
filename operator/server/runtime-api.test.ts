import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { runtimeApiRouter, type RuntimeApiDeps } from './runtime-api.ts';
import { createLogger } from '../observability/log.ts';

const report = { experiment: { namespace: 'ns', name: 'exp' }, run: 2, attempt: 1, worker: 0, events: [{ type: 'progress', seq: 1, at: '2026-11-23T07:00:00Z', step: 5 }] };

/** Serves the router on a free loopback port for one call. */
async function post(deps: Partial<RuntimeApiDeps>, headers: Record<string, string>): Promise<{ status: number; retryAfter: string | null; body: unknown }> {
  const app = express();
  app.use(
    '/runtime/v1',
    runtimeApiRouter({ isLeader: () => true, checkToken: () => 'valid', accept: async () => 1, logger: createLogger({ silent: true }), ...deps }),
  );
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/runtime/v1/reports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(report),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
  } finally {
    server.close();
  }
}

const bearer = { authorization: 'Bearer tok' };
const cases: { name: string; deps: Partial<RuntimeApiDeps>; headers: Record<string, string>; status: number; retry?: boolean; reason: string }[] = [
  { name: 'a valid token is accepted', deps: {}, headers: bearer, status: 200, reason: '' },
  { name: 'no bearer token is 401', deps: {}, headers: {}, status: 401, reason: 'Unauthorized' },
  { name: 'a token of another run is 403', deps: { checkToken: () => 'invalid' }, headers: bearer, status: 403, reason: 'Forbidden' },
  { name: 'before the signing key is loaded: 503, retry', deps: { checkToken: () => 'unavailable' }, headers: bearer, status: 503, retry: true, reason: 'Unavailable' },
  { name: 'a standby replica: 503, retry', deps: { isLeader: () => false }, headers: bearer, status: 503, retry: true, reason: 'NotLeader' },
];

for (const c of cases) {
  test(c.name, async () => {
    const r = await post(c.deps, c.headers);
    assert.equal(r.status, c.status);
    assert.equal(r.retryAfter !== null, c.retry ?? false, 'Retry-After');
    if (c.status === 200) assert.deepEqual(r.body, { acknowledged: 1 });
    else assert.equal((r.body as { error: { reason: string } }).error.reason, c.reason);
  });
}

test('the token is checked against the run the report names', async () => {
  const seen: unknown[] = [];
  await post({ checkToken: (...args) => (seen.push(args), 'valid') }, bearer);
  assert.deepEqual(seen, [['ns', 'exp', 2, 'tok']]);
});
