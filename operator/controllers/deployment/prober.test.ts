import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { EndpointProber, addressFilter, type ProbeFailureKind } from './prober.ts';

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

/** A prober whose wakes and failures are recorded, with a promise for the next wake. */
function harness(opts: { intervalMs?: number; timeoutMs?: number; allowedCidrs?: string[] } = {}) {
  const wakes: string[] = [];
  const failures: ProbeFailureKind[][] = [];
  let notify: (() => void) | undefined;
  const prober = new EndpointProber({
    intervalMs: opts.intervalMs ?? 50,
    timeoutMs: opts.timeoutMs ?? 300,
    failureThreshold: 3,
    allowedCidrs: opts.allowedCidrs ?? ['127.0.0.0/8'],
    wake: (k) => {
      wakes.push(k);
      notify?.();
    },
    onFailure: (_k, kinds) => failures.push(kinds),
  });
  const woken = () => new Promise<void>((resolve) => (notify = resolve));
  return { prober, wakes, failures, woken };
}

describe('endpoint prober', () => {
  let ok: { server: Server; port: number };
  let unready: { server: Server; port: number };
  let silent: { server: Server; port: number };
  before(async () => {
    ok = await listen((req, res) => res.writeHead(req.url === '/readyz' ? 200 : 404).end());
    unready = await listen((_req, res) => res.writeHead(503).end());
    // Accepts connections and never answers, like a frozen process.
    silent = await listen(() => undefined);
  });
  after(() => {
    for (const s of [ok, unready, silent]) s.server.closeAllConnections();
    for (const s of [ok, unready, silent]) s.server.close();
  });

  test('a ready server passes at once and wakes the reconcile once', async () => {
    const h = harness();
    const w = h.woken();
    h.prober.track('ns/a', [{ ip: '127.0.0.1', port: ok.port, pod: 'p' }]);
    await w;
    const v = h.prober.view('ns/a')!;
    assert.equal(v.lastOk, true);
    assert.equal(v.consecutiveFailures, 0);
    assert.ok(v.lastHealthyAt);
    // Later passing checks change nothing the reconcile reads: no more wakes.
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(h.prober.view('ns/a')!.checks >= 3);
    assert.deepEqual(h.wakes, ['ns/a']);
    h.prober.stop();
  });

  test('failures count up, wake the reconcile up to the threshold, and are reported with their kind', async () => {
    const h = harness();
    h.prober.track('ns/b', [{ ip: '127.0.0.1', port: unready.port, pod: 'p' }]);
    const deadline = Date.now() + 10_000;
    while (h.prober.view('ns/b')!.consecutiveFailures < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    assert.equal(h.prober.view('ns/b')!.lastOk, false);
    assert.match(h.prober.view('ns/b')!.lastError!, /answered 503/);
    assert.equal(h.wakes.length, 3, 'woken for failures 1 to 3, not after');
    assert.deepEqual(h.failures[0], ['status']);
    h.prober.stop();
  });

  test('a server that accepts but never answers fails by timeout; a closed port by connection', async () => {
    const h = harness({ timeoutMs: 150 });
    const w = h.woken();
    h.prober.track('ns/c', [
      { ip: '127.0.0.1', port: silent.port, pod: 'frozen' },
      { ip: '127.0.0.1', port: 1, pod: 'gone' },
    ]);
    await w;
    const v = h.prober.view('ns/c')!;
    assert.equal(v.lastOk, false);
    assert.match(v.lastError!, /frozen: GET \/readyz gave no answer within 150ms/);
    assert.match(v.lastError!, /gone: GET \/readyz: ECONNREFUSED/);
    assert.deepEqual(h.failures[0]!.sort(), ['connection', 'timeout']);
    h.prober.stop();
  });

  test('an address outside the allowed networks is never dialled', async () => {
    const h = harness();
    const w = h.woken();
    h.prober.track('ns/d', [{ ip: '10.96.0.10', port: 80, pod: 'p' }]);
    await w;
    assert.match(h.prober.view('ns/d')!.lastError!, /outside the networks/);
    assert.deepEqual(h.failures[0], ['forbidden_address']);
    h.prober.stop();
  });

  test('new targets start a fresh record; untrack stops the checks', async () => {
    const h = harness();
    let w = h.woken();
    h.prober.track('ns/e', [{ ip: '127.0.0.1', port: unready.port, pod: 'old' }]);
    await w;
    assert.equal(h.prober.view('ns/e')!.lastOk, false);
    w = h.woken();
    h.prober.track('ns/e', [{ ip: '127.0.0.1', port: ok.port, pod: 'new' }]);
    assert.equal(h.prober.view('ns/e')!.checks, 0);
    await w;
    assert.equal(h.prober.view('ns/e')!.lastOk, true);
    h.prober.untrack('ns/e');
    assert.equal(h.prober.view('ns/e'), undefined);
    assert.deepEqual(h.prober.tracked(), []);
    h.prober.stop();
  });

  test('the address filter takes CIDRs of both families and refuses names', () => {
    const loop = addressFilter(['127.0.0.0/8', '::1/128']);
    assert.equal(loop('127.200.0.3'), true);
    assert.equal(loop('127.64.1.2'), true);
    assert.equal(loop('::1'), true);
    assert.equal(loop('10.0.0.1'), false);
    assert.equal(loop('localhost'), false);
    assert.equal(addressFilter(undefined)('10.0.0.1'), true);
    assert.equal(addressFilter(undefined)('example.com'), false);
    assert.throws(() => addressFilter(['127.0.0.1']), /not a CIDR/);
  });
});
