// A kubeconfig of its own for each operator replica, so the API server's audit log says which replica made each
// request (both would otherwise be the same admin user).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalCluster } from '../cluster/control-plane.ts';
import { kubeconfigYaml } from '../cluster/pki.ts';
import { loadAuthority } from '../../operator/pki/certs.ts';

/** Writes `<cluster>/<user>.kubeconfig` for a client certificate of `user` in system:masters; returns its path. */
export async function replicaKubeconfig(cluster: LocalCluster, user: string): Promise<string> {
  const ca = await loadAuthority(readFileSync(join(cluster.dir, 'ca.crt'), 'utf8'), readFileSync(join(cluster.dir, 'ca.key'), 'utf8'));
  const client = await ca.issue({ commonName: user, organizations: ['system:masters'], usage: 'client' });
  const file = join(cluster.dir, `${user}.kubeconfig`);
  writeFileSync(file, kubeconfigYaml({ name: user, server: cluster.server, caPem: ca.certPem, client }), { mode: 0o600 });
  return file;
}

/** An audit policy that records every write (who, what, when, the answer) and nothing else. */
export function writeAuditPolicy(dir: string): string {
  const file = join(dir, 'audit-policy.yaml');
  writeFileSync(
    file,
    [
      'apiVersion: audit.k8s.io/v1',
      'kind: Policy',
      'omitStages: [RequestReceived]',
      'rules:',
      '  - level: Metadata',
      '    verbs: [create, update, patch, delete, deletecollection]',
      '  - level: None',
      '',
    ].join('\n'),
  );
  return file;
}

export interface AuditWrite {
  user: string;
  verb: string;
  uri: string;
  code: number;
  receivedAt: number;
}

/** The writes in a JSON audit log. */
export function readAuditWrites(file: string): AuditWrite[] {
  const out: AuditWrite[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const e = JSON.parse(line) as {
      stage?: string;
      verb?: string;
      requestURI?: string;
      user?: { username?: string };
      responseStatus?: { code?: number };
      requestReceivedTimestamp?: string;
    };
    if (e.stage !== 'ResponseComplete') continue;
    out.push({
      user: e.user?.username ?? '',
      verb: e.verb ?? '',
      uri: e.requestURI ?? '',
      code: e.responseStatus?.code ?? 0,
      receivedAt: Date.parse(e.requestReceivedTimestamp ?? ''),
    });
  }
  return out;
}
