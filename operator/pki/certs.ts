// Small certificate authority on WebCrypto: the local control plane uses it for its PKI, and the operator for
// its own webhook serving certificate. ECDSA P-256 keeps generation fast on small machines.
import 'reflect-metadata'; // tsyringe, used inside @peculiar/x509, needs the Reflect metadata polyfill
import * as x509 from '@peculiar/x509';
import { webcrypto, randomBytes } from 'node:crypto';

type Key = webcrypto.CryptoKey;
type KeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export interface Authority extends KeyPairPem {
  /** Signs a leaf certificate with this authority. */
  issue(request: LeafRequest): Promise<KeyPairPem>;
}

export interface LeafRequest {
  commonName: string;
  /** Subject organizations; Kubernetes reads them as the client's groups. */
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  usage: 'server' | 'client' | 'both';
  validDays?: number;
}

const day = 24 * 60 * 60 * 1000;

function serial(): string {
  // Positive 16-byte serial: clear the top bit so DER does not read it as negative.
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

function subject(cn: string, orgs: string[] = []): string {
  const esc = (v: string) => v.replace(/([,+"\\<>;=])/g, '\\$1');
  return [`CN=${esc(cn)}`, ...orgs.map((o) => `O=${esc(o)}`)].join(', ');
}

async function generateKeys(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as KeyPair;
}

async function privateKeyPem(key: Key): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function publicKeyPem(key: Key): Promise<string> {
  const der = await webcrypto.subtle.exportKey('spki', key);
  return x509.PemConverter.encode(der, 'PUBLIC KEY');
}

/** Creates a new self-signed certificate authority. */
export async function createAuthority(commonName: string, validDays = 3650): Promise<Authority> {
  const keys = await generateKeys();
  const notBefore = new Date(Date.now() - 5 * 60 * 1000); // tolerate small clock skew
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: subject(commonName),
    notBefore,
    notAfter: new Date(notBefore.getTime() + validDays * day),
    signingAlgorithm: algorithm,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPem = cert.toString('pem');
  const keyPem = await privateKeyPem(keys.privateKey);
  return {
    certPem,
    keyPem,
    issue: (request) => issueLeaf(cert, keys.privateKey, request),
  };
}

/**
 * An authority made earlier, from its PEM files: a harness component that joins a running cluster (a real node)
 * issues its own client certificates from the cluster's CA.
 */
export async function loadAuthority(certPem: string, keyPem: string): Promise<Authority> {
  const cert = new x509.X509Certificate(certPem);
  const der = x509.PemConverter.decode(keyPem)[0];
  if (!der) throw new Error('the CA key file holds no PEM block');
  const key = await webcrypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign']);
  return { certPem, keyPem, issue: (request) => issueLeaf(cert, key, request) };
}

async function issueLeaf(caCert: x509.X509Certificate, caKey: Key, req: LeafRequest): Promise<KeyPairPem> {
  const keys = await generateKeys();
  const notBefore = new Date(Date.now() - 5 * 60 * 1000);
  const usages: string[] = [];
  if (req.usage !== 'client') usages.push(x509.ExtendedKeyUsage.serverAuth);
  if (req.usage !== 'server') usages.push(x509.ExtendedKeyUsage.clientAuth);
  const altNames: x509.JsonGeneralName[] = [
    ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(req.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(usages, false),
    await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
  ];
  if (altNames.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(altNames, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: subject(req.commonName, req.organizations),
    issuer: caCert.subject,
    notBefore,
    notAfter: new Date(notBefore.getTime() + (req.validDays ?? 365) * day),
    signingAlgorithm: algorithm,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

/** A bare key pair, as the API server uses to sign and verify service-account tokens. */
export async function createSigningKey(): Promise<{ publicKeyPem: string; privateKeyPem: string }> {
  const keys = await generateKeys();
  return { publicKeyPem: await publicKeyPem(keys.publicKey), privateKeyPem: await privateKeyPem(keys.privateKey) };
}

/** When the certificate in `certPem` stops being valid. */
export function certificateNotAfter(certPem: string): Date {
  return new x509.X509Certificate(certPem).notAfter;
}
