import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { runtimeApiRouter, type RuntimeApiDeps } from './runtime-api.ts';
import { createLogger } from '../observability/log.ts';
import type { RunTokenCheck, RunTokenClaims } from '../credentials/run-token.ts';

const claims: RunTokenClaims = { namespace: 'ns', name: 'exp', run: 2, attempt: 1, worker: 0, key: 'k' };
const progress = { type: 'progress', seq: 1, at: '2026-11-23T07:00:00Z', step: 5 };
const checkpoint = (seq: number) => ({ type: 'checkpoint', seq, at: '2026-11-23T07:00:00Z', step: seq, sizeBytes: 1, location: `/c/${seq}` });
const report = (over: Record<string, unknown> = {}) => ({ experiment: { namespace: 'ns', name: 'exp' }, run: 2, attempt: 1, worker: 0, events: [progress], ...over });
const valid = (): RunTokenCheck => ({ ok: true, claims });

/** Serves the router on a free loopback port for a few calls. */
async function serve(deps: Partial<RuntimeApiDeps>) {
  const app = express();
  app.use('/runtime/v1', runtimeApiRouter({ isLeader: () => true, checkToken: valid, accept: async () => 1, logger: createLogger({ silent: true }), ...deps }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/runtime/v1/reports`;
  const post = async (body: unknown = report(), headers: Record<string, string> = bearer) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { acknowledged?: number; error?: { reason: string; message: string } } };
  };
  return { post, close: () => server.close() };
}

const bearer = { authorization: 'Bearer tok' };
const cases: { name: string; deps?: Partial<RuntimeApiDeps>; body?: unknown; headers?: Record<string, string>; status: number; retry?: boolean; reason: string; message?: RegExp }[] = [
  { name: 'a valid token is accepted', status: 200, reason: '' },
  { name: 'no bearer token is 401', headers: {}, status: 401, reason: 'Unauthorized' },
  { name: 'a bearer value that is no run token is 401', deps: { checkToken: () => ({ ok: false, why: 'malformed' }) }, status: 401, reason: 'Unauthorized' },
  { name: 'a forged or foreign token is 403', deps: { checkToken: () => ({ ok: false, why: 'invalid' }) }, status: 403, reason: 'Forbidden' },
  { name: 'a token of a replaced signing key is 403 StaleToken, telling the worker to re-read it', deps: { checkToken: () => ({ ok: false, why: 'stale-key' }) }, status: 403, reason: 'StaleToken', message: /read the token file again/ },
  { name: 'before the signing key is loaded: 503, retry', deps: { checkToken: () => ({ ok: false, why: 'unavailable' }) }, status: 503, retry: true, reason: 'Unavailable' },
  { name: 'a standby replica: 503, retry', deps: { isLeader: () => false }, status: 503, retry: true, reason: 'NotLeader' },
  { name: 'a body claiming another worker than its token', body: report({ worker: 1 }), status: 403, reason: 'Forbidden', message: /worker: the token is for worker 0/ },
  { name: 'a body claiming another attempt', body: report({ attempt: 2 }), status: 403, reason: 'Forbidden', message: /attempt: the token is for attempt 1/ },
  { name: 'a body claiming another run', body: report({ run: 1 }), status: 403, reason: 'Forbidden', message: /run: the token is for run 2/ },
  { name: 'a body claiming another experiment', body: report({ experiment: { namespace: 'ns', name: 'other' } }), status: 403, reason: 'Forbidden', message: /experiment: the token is for ns\/exp/ },
  { name: 'a malformed report with a valid token is 400 naming the field', body: report({ events: [{ type: 'constructor', seq: 1e300 }] }), status: 400, reason: 'BadRequest', message: /events\.0\.type/ },
];

for (const c of cases) {
  test(c.name, async () => {
    const s = await serve(c.deps ?? {});
    try {
      const r = await s.post(c.body, c.headers);
      assert.equal(r.status, c.status, JSON.stringify(r.body));
      assert.equal(r.retryAfter !== null, c.retry ?? false, 'Retry-After');
      if (c.status === 200) assert.deepEqual(r.body, { acknowledged: 1 });
      else assert.equal(r.body.error?.reason, c.reason);
      if (c.message) assert.match(r.body.error?.message ?? '', c.message);
    } finally {
      s.close();
    }
  });
}

test('the token is checked before the body is read: an unauthenticated request never reaches the parser', async () => {
  let parsedBodies = 0;
  const s = await serve({ checkToken: () => ({ ok: false, why: 'invalid' }), accept: async () => (parsedBodies++, 1) });
  try {
    // Not even JSON: a parser running first would answer 400.
    const r = await s.post('{"not json', bearer);
    assert.equal(r.status, 403);
    assert.equal(parsedBodies, 0);
  } finally {
    s.close();
  }
});

test('each run has a request budget: past it, 429 with Retry-After, and other runs are unaffected', async () => {
  let other = false;
  const s = await serve({ budget: { requestsPerSecond: 3, checkpointsPerMinute: 100 }, checkToken: () => ({ ok: true, claims: other ? { ...claims, run: 3 } : claims }) });
  try {
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await s.post()).status);
    assert.deepEqual(codes, [200, 200, 200, 429, 429]);
    const limited = await s.post();
    assert.equal(limited.body.error?.reason, 'TooManyRequests');
    assert.ok(Number(limited.retryAfter) >= 1);
    other = true;
    assert.equal((await s.post(report({ run: 3 }))).status, 200, 'another run has its own budget');
  } finally {
    s.close();
  }
});

test('checkpoints are throttled per run: a report past the budget is 429 TooManyCheckpoints and not filed', async () => {
  const filed: number[] = [];
  const s = await serve({ budget: { requestsPerSecond: 100, checkpointsPerMinute: 4 }, accept: async (r) => (filed.push(r.events.length), 1) });
  try {
    assert.equal((await s.post(report({ events: [checkpoint(1), checkpoint(2), checkpoint(3)] }))).status, 200);
    const r = await s.post(report({ events: [checkpoint(4), checkpoint(5)] }));
    assert.equal(r.status, 429);
    assert.equal(r.body.error?.reason, 'TooManyCheckpoints');
    assert.ok(r.retryAfter !== null);
    assert.equal((await s.post()).status, 200, 'progress still gets through');
    assert.deepEqual(filed, [3, 1]);
  } finally {
    s.close();
  }
});
