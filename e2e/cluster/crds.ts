// Installs the generated CRDs from crds/ into a cluster and waits until the API server serves them.
import { join } from 'node:path';
import { ApiextensionsV1Api } from '@kubernetes/client-node';
import { readdirSync } from 'node:fs';
import { repoRoot, type LocalCluster } from './control-plane.ts';
import { waitFor } from './wait.ts';

export const crdDir = join(repoRoot, 'crds');

/**
 * Applies crds/ with kubectl (server-side apply). Not through client-node: its typed serializer knows the
 * CRD schema fields by their camelCase names and silently drops `x-kubernetes-*` keys written as YAML has them.
 */
export async function installCrds(cluster: LocalCluster): Promise<string[]> {
  cluster.kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=arena-e2e', '-f', crdDir]);
  const names = readdirSync(crdDir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.replace(/^arena\.agilerl\.com_(.*)\.yaml$/, '$1.arena.agilerl.com'));
  const ext = cluster.kubeConfig().makeApiClient(ApiextensionsV1Api);
  await waitFor(
    async () => {
      for (const name of names) {
        const crd = await ext.readCustomResourceDefinition({ name });
        if (!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return false;
      }
      return true;
    },
    { timeoutMs: 30_000, what: `CRDs ${names.join(', ')} to become Established` },
  );
  // kubectl explain reads the published OpenAPI document, which lags a moment behind Established.
  await waitFor(
    () => {
      const doc = JSON.parse(cluster.kubectl(['get', '--raw', '/openapi/v3'])) as { paths?: Record<string, unknown> };
      return Object.keys(doc.paths ?? {}).includes('apis/arena.agilerl.com/v1alpha1');
    },
    { timeoutMs: 30_000, what: 'the arena.agilerl.com OpenAPI document to be published' },
  );
  // `kubectl get arena` resolves the category through discovery, which is refreshed separately again.
  await waitFor(
    () => cluster.kubectl(['api-resources', '--categories=arena', '-o', 'name']).trim().split('\n').filter(Boolean).length >= names.length,
    { timeoutMs: 30_000, what: 'the arena category to appear in discovery' },
  );
  return names;
}
