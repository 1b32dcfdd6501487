// The control plane's PKI: one CA, the API server's serving certificate, a client certificate per component
// (each with the identity Kubernetes' default RBAC expects) and the service-account signing key.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAuthority, createSigningKey, type KeyPairPem } from '../../operator/pki/certs.ts';

export interface ClusterPki {
  caCertFile: string;
  caKeyFile: string;
  caPem: string;
  apiserver: { certFile: string; keyFile: string };
  /** What the API server presents to kubelets (logs, exec): a real kubelet authenticates it against the CA. */
  kubeletClient: { certFile: string; keyFile: string };
  saPublicKeyFile: string;
  saPrivateKeyFile: string;
  /** Client credentials by component; `admin` is in system:masters. */
  clients: Record<ClientName, KeyPairPem>;
}

export type ClientName = 'admin' | 'controller-manager' | 'scheduler' | 'kwok';

const identities: Record<ClientName, { cn: string; orgs: string[] }> = {
  admin: { cn: 'arena-admin', orgs: ['system:masters'] },
  'controller-manager': { cn: 'system:kube-controller-manager', orgs: [] },
  scheduler: { cn: 'system:kube-scheduler', orgs: [] },
  // kwok stands in for every kubelet at once; the Node authorizer only lets a kubelet touch its own node,
  // so the simulator runs with cluster-admin rights.
  kwok: { cn: 'kwok-controller', orgs: ['system:masters'] },
};

export async function createClusterPki(dir: string): Promise<ClusterPki> {
  const ca = await createAuthority('arena-local-cluster-ca');
  const serving = await ca.issue({
    commonName: 'kube-apiserver',
    usage: 'server',
    dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
    ipAddresses: ['127.0.0.1', '10.96.0.1'],
  });
  const clients = {} as Record<ClientName, KeyPairPem>;
  await Promise.all(
    (Object.keys(identities) as ClientName[]).map(async (name) => {
      const id = identities[name];
      clients[name] = await ca.issue({ commonName: id.cn, organizations: id.orgs, usage: 'client' });
    }),
  );
  // kubeadm's identity for the API server's calls to kubelets; system:masters lets the kubelet's webhook
  // authorizer allow nodes/log, nodes/proxy and exec for it.
  const kubeletClient = await ca.issue({
    commonName: 'kube-apiserver-kubelet-client',
    organizations: ['system:masters'],
    usage: 'client',
  });
  const sa = await createSigningKey();

  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };
  return {
    caCertFile: file('ca.crt', ca.certPem),
    caKeyFile: file('ca.key', ca.keyPem),
    caPem: ca.certPem,
    apiserver: { certFile: file('apiserver.crt', serving.certPem), keyFile: file('apiserver.key', serving.keyPem) },
    kubeletClient: {
      certFile: file('apiserver-kubelet-client.crt', kubeletClient.certPem),
      keyFile: file('apiserver-kubelet-client.key', kubeletClient.keyPem),
    },
    saPublicKeyFile: file('sa.pub', sa.publicKeyPem),
    saPrivateKeyFile: file('sa.key', sa.privateKeyPem),
    clients,
  };
}

/**
 * A kubeconfig with the credentials embedded, so the file works from any directory. `tlsServerName` is the name
 * checked against the API server's certificate when `server` is an address the certificate does not list (a real
 * node reaches the API server through a forwarder on its own link).
 */
export function kubeconfigYaml(opts: {
  name: string;
  server: string;
  caPem: string;
  client: KeyPairPem;
  tlsServerName?: string;
}): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${opts.name}`,
    '  cluster:',
    `    server: ${opts.server}`,
    `    certificate-authority-data: ${b64(opts.caPem)}`,
    ...(opts.tlsServerName ? [`    tls-server-name: ${opts.tlsServerName}`] : []),
    'users:',
    `- name: ${opts.name}-user`,
    '  user:',
    `    client-certificate-data: ${b64(opts.client.certPem)}`,
    `    client-key-data: ${b64(opts.client.keyPem)}`,
    'contexts:',
    `- name: ${opts.name}`,
    '  context:',
    `    cluster: ${opts.name}`,
    `    user: ${opts.name}-user`,
    `current-context: ${opts.name}`,
    '',
  ].join('\n');
}
