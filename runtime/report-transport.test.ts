import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuthority } from '../operator/pki/certs.ts';
import { ServerNotVerified, reportUrlProblem, verifyingFetch } from './report-transport.ts';

async function server(names: { ipAddresses?: string[]; dnsNames?: string[] }) {
  const ca = await createAuthority('operator-ca');
  const leaf = await ca.issue({ commonName: 'op', usage: 'server', ...names });
  const tokens: string[] = [];
  const s = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    tokens.push(req.headers.authorization ?? '');
    res.setHeader('content-type', 'application/json');
    res.end('{"acknowledged":3}');
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  return { ca, tokens, url: `https://127.0.0.1:${port}`, close: () => new Promise<void>((r) => s.close(() => r())) };
}

const dir = mkdtempSync(join(tmpdir(), 'report-ca-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const post = (f: typeof fetch, url: string) => f(`${url}/runtime/v1/reports`, { method: 'POST', headers: { authorization: 'Bearer the-run-token', 'content-type': 'application/json' }, body: '{}' });

test('a worker sends its token to a server that verifies against the CA file, and to no other', async () => {
  const op = await server({ ipAddresses: ['127.0.0.1'] });
  try {
    const good = file('good.crt', op.ca.certPem);
    const res = await post(verifyingFetch(good), op.url);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { acknowledged: 3 });
    assert.deepEqual(op.tokens, ['Bearer the-run-token']);

    const impostorCa = await createAuthority('someone-else');
    const bad = file('bad.crt', impostorCa.certPem);
    const err = await post(verifyingFetch(bad), op.url).then(
      () => assert.fail('an unverifiable server was trusted'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ServerNotVerified, String(err));
    assert.match(err.message, /does not verify against the CA file .*the run token was not sent/);
    await assert.rejects(post(verifyingFetch(join(dir, 'missing.crt')), op.url), /cannot read the operator's CA file .*the run token was not sent/);
    assert.equal(op.tokens.length, 1, 'neither the impostor-CA request nor the unreadable-CA one reached the server');
  } finally {
    await op.close();
  }
});

test('a certificate for another name is refused, though its CA is trusted', async () => {
  const op = await server({ dnsNames: ['arena-operator.arena-system.svc'] });
  try {
    const err = await post(verifyingFetch(file('ca.crt', op.ca.certPem)), op.url).catch((e: unknown) => e);
    assert.ok(err instanceof ServerNotVerified, String(err));
    assert.equal(err.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    assert.equal(op.tokens.length, 0);
  } finally {
    await op.close();
  }
});

test('report URLs: https always; plain http to loopback only and never with a CA file', () => {
  assert.equal(reportUrlProblem('https://op.arena-system.svc:8080', '/ca'), undefined);
  assert.equal(reportUrlProblem('http://127.0.0.1:1', undefined), undefined);
  assert.match(reportUrlProblem('http://10.1.2.3:8080', undefined)!, /plain http to 10.1.2.3:8080: the run token would cross the network unencrypted/);
  assert.match(reportUrlProblem('http://localhost:1', '/ca')!, /ARENA_REPORT_CA_FILE is set/);
  assert.match(reportUrlProblem('op:8080', undefined)!, /must be an http\(s\) URL/);
});
