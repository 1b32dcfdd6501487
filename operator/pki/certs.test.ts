import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { createAuthority, createSigningKey, certificateNotAfter } from './certs.ts';

test('a leaf certificate chains to its authority and carries the requested names', async () => {
  const ca = await createAuthority('test-ca');
  const leaf = await ca.issue({
    commonName: 'webhook',
    usage: 'server',
    dnsNames: ['arena-webhook.arena-system.svc'],
    ipAddresses: ['127.0.0.1'],
    validDays: 30,
  });
  const caCert = new X509Certificate(ca.certPem);
  const cert = new X509Certificate(leaf.certPem);
  assert.ok(caCert.ca, 'the authority is a CA');
  assert.ok(!cert.ca, 'the leaf is not a CA');
  assert.ok(cert.checkIssued(caCert));
  assert.ok(cert.verify(caCert.publicKey));
  assert.equal(cert.checkHost('arena-webhook.arena-system.svc'), 'arena-webhook.arena-system.svc');
  assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(cert.checkHost('other.example'), undefined);
  const days = (certificateNotAfter(leaf.certPem).getTime() - Date.now()) / 86_400_000;
  assert.ok(days > 29 && days <= 30, `valid for about 30 days, got ${days}`);
  // The private key matches the certificate.
  const sig = sign('sha256', Buffer.from('x'), createPrivateKey(leaf.keyPem));
  assert.ok(verify('sha256', Buffer.from('x'), cert.publicKey, sig));
});

test('client certificates carry organizations as Kubernetes groups', async () => {
  const ca = await createAuthority('test-ca');
  const leaf = await ca.issue({ commonName: 'alice', organizations: ['system:masters', 'team-a'], usage: 'client' });
  const subject = new X509Certificate(leaf.certPem).subject;
  assert.match(subject, /CN=alice/);
  assert.match(subject, /O=system:masters/);
  assert.match(subject, /O=team-a/);
});

test('signing keys come as a matching PEM pair', async () => {
  const { publicKeyPem, privateKeyPem } = await createSigningKey();
  const sig = sign('sha256', Buffer.from('token'), createPrivateKey(privateKeyPem));
  assert.ok(verify('sha256', Buffer.from('token'), createPublicKey(publicKeyPem), sig));
});
