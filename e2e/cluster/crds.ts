// Installs the generated CRDs from crds/ into a cluster and waits until the API server serves them.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import {
  ApiextensionsV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  type KubeConfig,
  type KubernetesObject,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { repoRoot } from './control-plane.ts';
import { waitFor } from './wait.ts';

export function crdManifests(dir = join(repoRoot, 'crds')): V1CustomResourceDefinition[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as V1CustomResourceDefinition))
    .filter((d) => d?.kind === 'CustomResourceDefinition');
}

export async function installCrds(kc: KubeConfig, crds = crdManifests()): Promise<string[]> {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  for (const crd of crds) {
    await objects.patch(crd as KubernetesObject, undefined, undefined, 'arena-e2e', true, PatchStrategy.ServerSideApply);
  }
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const names = crds.map((c) => c.metadata!.name!);
  await waitFor(
    async () => {
      for (const name of names) {
        const crd = await ext.readCustomResourceDefinition({ name });
        const established = crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
        if (!established) return false;
      }
      return true;
    },
    { timeoutMs: 30_000, what: `CRDs ${names.join(', ')} to become Established` },
  );
  return names;
}
