import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs it before it loads
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  caBundle,
  carryOut,
  defaultPolicy,
  inspect,
  newPair,
  plan,
  secretFromState,
  splitBundle,
  stateFromSecret,
  normalizePem,
  type CertPair,
  type CertPolicy,
  type CertState,
  type Mint,
} from './serving-cert.ts';

const DAY = 86_400_000;
const policy: CertPolicy = { ...defaultPolicy, dnsNames: ['arena-webhook.arena-system.svc', 'arena-webhook.arena-system.svc.cluster.local'], ipAddresses: [] };
const T0 = new Date('2030-01-01T00:00:00Z');
const at = (days: number) => new Date(T0.getTime() + days * DAY);

// pki/certs.ts dates certificates by the real clock; a fake clock needs certificates dated by it, so this mint
// makes the same CA + leaf shape with @peculiar/x509 (already set up on WebCrypto by pki/certs.ts).
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
let serial = 1;
const fakeMint: Mint = async (p, cn, now) => {
  const notAfter = new Date(now.getTime() + p.validityMs);
  const caKeys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: (serial++).toString(16).padStart(2, '0'),
    name: `CN=${cn}-ca`,
    notBefore: now,
    notAfter,
    signingAlgorithm: alg,
    keys: caKeys,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16).padStart(2, '0'),
    subject: `CN=${cn}`,
    issuer: ca.subject,
    notBefore: now,
    notAfter,
    signingAlgorithm: alg,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.SubjectAlternativeNameExtension([...p.dnsNames.map((value) => ({ type: 'dns' as const, value })), ...p.ipAddresses.map((value) => ({ type: 'ip' as const, value }))]),
    ],
  });
  const keyPem = x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  return { certPem: leaf.toString('pem'), keyPem, caPem: ca.toString('pem') };
};

const step = async (state: CertState, now: Date, published: (ca: string) => boolean = () => true, forced = false, pol = policy) => {
  const p = plan(state, { now, policy: pol, published, forced });
  const next = await carryOut(state, p, { now, policy: pol, commonName: 'arena-webhook', mint: fakeMint });
  return { p, state: next ?? state };
};

describe('serving certificate policy', () => {
  test('the real mint makes a sound pair with the wanted names and lifetime', async () => {
    const pair = await newPair({ ...policy, ipAddresses: ['127.0.0.1'] }, 'arena-webhook');
    const facts = inspect(pair)!;
    assert.ok(facts, 'sound');
    assert.deepEqual(facts.names, ['127.0.0.1', ...policy.dnsNames].sort());
    const days = (facts.notAfter.getTime() - Date.now()) / DAY;
    assert.ok(days > 89.9 && days <= 90, `90 days, got ${days}`);
    assert.ok(new X509Certificate(pair.caPem).ca);
  });

  test('unsound pairs are refused: wrong key, wrong CA, not PEM', async () => {
    const a = await fakeMint(policy, 'a', T0);
    const b = await fakeMint(policy, 'b', T0);
    assert.equal(inspect({ ...a, keyPem: b.keyPem }), undefined);
    assert.equal(inspect({ ...a, caPem: b.caPem }), undefined);
    assert.equal(inspect({ ...a, certPem: 'garbage' }), undefined);
  });

  const cases: { name: string; state: () => Promise<CertState>; now: Date; published?: boolean; forced?: boolean; pol?: CertPolicy; want: Record<string, unknown> }[] = [
    { name: 'nothing stored: issue', state: async () => ({}), now: T0, want: { action: 'issue', reason: 'missing' } },
    { name: 'garbage stored: issue', state: async () => ({ current: { certPem: 'x', keyPem: 'y', caPem: 'z' } }), now: T0, want: { action: 'issue', reason: 'invalid' } },
    { name: 'expired: issue at once', state: async () => ({ current: await fakeMint(policy, 'w', T0) }), now: at(91), want: { action: 'issue', reason: 'expired' } },
    { name: 'fresh: nothing until 2/3 of its life', state: async () => ({ current: await fakeMint(policy, 'w', T0) }), now: at(1), want: { action: 'none', recheckAt: at(60) } },
    { name: 'at 2/3 of its life: stage', state: async () => ({ current: await fakeMint(policy, 'w', T0) }), now: at(60), want: { action: 'stage', reason: 'expiring' } },
    { name: 'forced: stage', state: async () => ({ current: await fakeMint(policy, 'w', T0) }), now: at(1), forced: true, want: { action: 'stage', reason: 'forced' } },
    {
      name: 'names changed: stage',
      state: async () => ({ current: await fakeMint(policy, 'w', T0) }),
      now: at(1),
      pol: { ...policy, ipAddresses: ['10.0.0.9'] },
      want: { action: 'stage', reason: 'names-changed' },
    },
    {
      name: 'staged but not published: wait',
      state: async () => ({ current: await fakeMint(policy, 'w', T0), next: { ...(await fakeMint(policy, 'n', at(60))), stagedAt: at(60) } }),
      now: at(60),
      published: false,
      want: { action: 'wait' },
    },
    {
      name: 'staged and published: wait for it to reach the apiserver',
      state: async () => ({ current: await fakeMint(policy, 'w', T0), next: { ...(await fakeMint(policy, 'n', at(60))), stagedAt: at(60) } }),
      now: at(60),
      want: { action: 'wait', until: new Date(at(60).getTime() + policy.propagationMs) },
    },
    {
      name: 'staged, published and propagated: promote',
      state: async () => ({ current: await fakeMint(policy, 'w', T0), next: { ...(await fakeMint(policy, 'n', at(60))), stagedAt: at(60) } }),
      now: new Date(at(60).getTime() + policy.propagationMs),
      want: { action: 'promote' },
    },
    {
      name: 'a forced rotation while one is staged does not stage twice',
      state: async () => ({ current: await fakeMint(policy, 'w', T0), next: { ...(await fakeMint(policy, 'n', at(60))), stagedAt: at(60) } }),
      now: new Date(at(60).getTime() + policy.propagationMs),
      forced: true,
      want: { action: 'promote' },
    },
    {
      name: 'a broken staged pair is staged again',
      state: async () => ({ current: await fakeMint(policy, 'w', T0), next: { certPem: 'x', keyPem: 'y', caPem: 'z', stagedAt: at(60) } }),
      now: at(60),
      want: { action: 'stage', reason: 'invalid' },
    },
    {
      name: 'overlap over: drop the previous CA',
      state: async () => ({ current: await fakeMint(policy, 'w', T0), previousCa: { caPem: (await fakeMint(policy, 'o', T0)).caPem, until: at(1) } }),
      now: at(1),
      want: { action: 'drop-previous' },
    },
    {
      name: 'during the overlap: look again when it ends',
      state: async () => ({ current: await fakeMint(policy, 'w', T0), previousCa: { caPem: (await fakeMint(policy, 'o', T0)).caPem, until: at(1) } }),
      now: at(0.5),
      want: { action: 'none', recheckAt: at(1) },
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const p = plan(await c.state(), { now: c.now, policy: c.pol ?? policy, published: () => c.published ?? true, forced: c.forced });
      for (const [k, v] of Object.entries(c.want)) assert.deepEqual((p as Record<string, unknown>)[k], v, `${k} of ${JSON.stringify(p)}`);
    });
  }

  test('a rotation: stage adds the new CA, promote serves it and keeps the old CA for the overlap, then drops it', async () => {
    let s: CertState = { current: await fakeMint(policy, 'w', T0) };
    const first = s.current!;
    ({ state: s } = await step(s, at(60)));
    assert.equal(s.current, first, 'staging keeps serving the current leaf');
    assert.deepEqual(splitBundle(caBundle(s)), [first.caPem, s.next!.caPem].map(normalizePem));
    const staged = s.next!;
    ({ state: s } = await step(s, new Date(at(60).getTime() + policy.propagationMs)));
    assert.equal(s.current!.certPem, staged.certPem, 'promoted');
    assert.equal(s.next, undefined);
    assert.deepEqual(splitBundle(caBundle(s)), [staged.caPem, first.caPem].map(normalizePem), 'both CAs trusted during the overlap');
    const { p, state: after } = await step(s, new Date(at(60).getTime() + policy.propagationMs + policy.overlapMs));
    assert.equal(p.action, 'drop-previous');
    assert.deepEqual(splitBundle(caBundle(after)), [normalizePem(staged.caPem)]);
  });

  test('a year on a fake clock: the served leaf is always valid and trusted by what was published before it', async () => {
    // "published" is the bundle the configurations carry; the controller writes it after every step.
    let published: string[] = [];
    let s: CertState = {};
    let now = T0;
    const actions: string[] = [];
    const isPublished = (ca: string) => published.includes(normalizePem(ca));
    while (now < at(365)) {
      const { p, state } = await step(s, now, isPublished);
      if (state !== s && p.action !== 'issue' && p.action !== 'drop-previous') {
        // The leaf served after this step must already be trusted by the configurations written before it.
        assert.ok(isPublished(state.current!.caPem), `${p.action} at ${now.toISOString()} serves a leaf whose CA was not yet published`);
      }
      if (state !== s) actions.push(p.action);
      s = state;
      published = splitBundle(caBundle(s));
      const facts = inspect(s.current)!;
      assert.ok(facts.notBefore <= now && now < facts.notAfter, `served leaf valid at ${now.toISOString()}`);
      const next = p.action === 'none' ? p.recheckAt : p.action === 'wait' ? p.until : now;
      now = new Date(Math.max(next.getTime(), now.getTime() + 1000));
    }
    const rotations = actions.filter((a) => a === 'promote').length;
    assert.equal(actions[0], 'issue');
    assert.ok(rotations >= 5 && rotations <= 7, `about every 60 days over a year: ${actions.join(' ')}`);
    assert.equal(actions.filter((a) => a === 'issue').length, 1, 'never a cold replacement after the first');
  });

  test('the state survives the Secret, and a Secret with parts missing reads as the parts that are there', async () => {
    const state: CertState = {
      current: await fakeMint(policy, 'c', T0),
      next: { ...(await fakeMint(policy, 'n', at(60))), stagedAt: at(60) },
      previousCa: { caPem: (await fakeMint(policy, 'p', T0)).caPem, until: at(61) },
    };
    const { data, annotations } = secretFromState(state);
    assert.equal(data['ca-bundle.crt'], caBundle(state));
    assert.deepEqual(stateFromSecret(data, annotations), state);
    const { 'next.key': _k, ...partial } = data;
    assert.deepEqual(stateFromSecret(partial, annotations), { current: state.current, previousCa: state.previousCa });
    assert.deepEqual(stateFromSecret(undefined, undefined), {});
  });

  test('issuing over a sound but expired pair keeps trusting its CA for the overlap', async () => {
    const old: CertPair = await fakeMint(policy, 'w', T0);
    const { p, state } = await step({ current: old }, at(91));
    assert.equal(p.action, 'issue');
    assert.equal(state.previousCa?.caPem, old.caPem);
  });
});
