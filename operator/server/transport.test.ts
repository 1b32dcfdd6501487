import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiTransport, certificateNamesFor, isLoopback } from './transport.ts';
import { servingSecretProblem } from './api-tls.ts';

const refusal = (t: ReturnType<typeof apiTransport>) => (t.ok ? '' : t.error);

test('the binary serves TLS unless plain HTTP on loopback is asked for explicitly', () => {
  const tls = apiTransport({ reportUrl: 'https://arena-operator.arena-system.svc:8080' });
  assert.ok(tls.ok);
  assert.deepEqual(tls.tls, {
    secretName: 'arena-operator-api-tls',
    manage: true,
    caConfigMapName: 'arena-operator-ca',
    dnsNames: ['arena-operator.arena-system.svc', 'arena-operator.arena-system.svc.cluster.local'],
    ipAddresses: [],
  });
  const supplied = apiTransport({ reportUrl: 'https://op.example:8443', tlsSecret: 'corp-cert', tlsSecretSupplied: true, tlsDnsNames: ['status.example'] });
  assert.ok(supplied.ok);
  assert.equal(supplied.tls?.manage, false);
  assert.equal(supplied.tls?.secretName, 'corp-cert');

  const dev = apiTransport({ reportUrl: 'http://127.0.0.1:8080', insecurePlainHttp: true });
  assert.ok(dev.ok);
  assert.equal(dev.tls, undefined);
});

test('every transport that could leak a token is refused, naming the flag and the fix', () => {
  assert.match(refusal(apiTransport({})), /--report-url \(or ARENA_REPORT_URL\) is not set: give the https URL/);
  assert.match(refusal(apiTransport({ reportUrl: 'not a url' })), /--report-url "not a url" is not a URL/);
  assert.match(refusal(apiTransport({ reportUrl: 'http://arena-operator.arena-system.svc:8080' })), /--report-url must be https, got http:\/\/arena-operator.*pass --insecure-plain-http/);
  assert.match(refusal(apiTransport({ reportUrl: 'http://arena-operator.arena-system.svc:8080', insecurePlainHttp: true })), /--insecure-plain-http .* only for an operator on loopback/);
  assert.match(refusal(apiTransport({ reportUrl: 'https://127.0.0.1:8080', insecurePlainHttp: true })), /--report-url must then be http:\/\/127.0.0.1/);
  assert.match(refusal(apiTransport({ reportUrl: 'http://127.0.0.1:8080', insecurePlainHttp: true, tlsSecret: 'x' })), /exclude each other/);
});

test('certificate names and loopback', () => {
  assert.deepEqual(certificateNamesFor(new URL('https://10.0.0.7:8080')), { dnsNames: [], ipAddresses: ['10.0.0.7'] });
  assert.deepEqual(certificateNamesFor(new URL('https://[::1]:8080')), { dnsNames: [], ipAddresses: ['::1'] });
  assert.deepEqual(certificateNamesFor(new URL('https://op.example'), ['b']), { dnsNames: ['b', 'op.example'], ipAddresses: [] });
  for (const h of ['127.0.0.1', '127.9.9.9', 'localhost', '[::1]']) assert.ok(isLoopback(h), h);
  for (const h of ['10.0.0.1', 'arena-operator.arena-system.svc', '128.0.0.1', '127.0.0.1.example']) assert.ok(!isLoopback(h), h);
});

test('a serving Secret that cannot serve is named with the key it lacks', () => {
  assert.equal(servingSecretProblem({ cert: 'c', key: 'k', hasCa: true }, 'ns/s', false), undefined);
  assert.match(servingSecretProblem(undefined, 'ns/s', false)!, /Secret ns\/s does not exist: create it \(type kubernetes.io\/tls\) with tls.crt, tls.key and ca.crt/);
  assert.match(servingSecretProblem({ cert: 'c', key: 'k', hasCa: false }, 'ns/s', false)!, /Secret ns\/s has no ca.crt: ca.crt must hold the CA that signed tls.crt/);
  assert.match(servingSecretProblem({ cert: undefined, key: undefined, hasCa: true }, 'ns/s', true)!, /has no tls.crt, tls.key/);
});
