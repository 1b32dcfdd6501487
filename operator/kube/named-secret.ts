// A cache of exactly one Secret, watched by name: the shape every Secret the operator reads in its own namespace
// has (signing key, status API tokens, webhook certificate). The metadata.name field selector is what RBAC matches
// against resourceNames for list and watch, so the chart can grant these by name. Only what `keep` returns is held
// in memory, never the rest of the Secret.
import type { KubernetesObject } from '@kubernetes/client-node';
import { Informer, type InformerOptions } from './informer.ts';

export type NamedSecret<T> = { metadata: { name?: string; namespace?: string; resourceVersion?: string } } & T;

export function namedSecretInformer<T extends object>(
  base: Pick<InformerOptions<NamedSecret<T>>, 'kc' | 'logger' | 'transport' | 'metrics'>,
  ref: { namespace: string; name: string },
  keep: (data: Record<string, string> | undefined) => T,
): Informer<NamedSecret<T>> {
  return new Informer<NamedSecret<T>>({
    ...base,
    group: '',
    version: 'v1',
    plural: 'secrets',
    namespace: ref.namespace,
    fieldSelector: `metadata.name=${ref.name}`,
    transform: (o: KubernetesObject) => {
      const s = o as KubernetesObject & { data?: Record<string, string> };
      return { metadata: { name: s.metadata?.name, namespace: s.metadata?.namespace, resourceVersion: s.metadata?.resourceVersion }, ...keep(s.data) };
    },
  });
}
