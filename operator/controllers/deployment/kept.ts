// The Service and the frozen-manifest ConfigMap of each agent, kept without informers: the operator may not list
// Services or ConfigMaps cluster-wide (least privilege), and neither object changes once made — the Service is
// fixed by the agent's name and uid, the ConfigMap is immutable. What was made sure of is remembered per object
// and read again after a while, so a steady reconcile costs no request and a deleted object comes back.
import type { CoreV1Api, V1ConfigMap, V1Service } from '@kubernetes/client-node';
import { isAlreadyExists, isNotFound } from '../../kube/errors.ts';
import { agentLabels } from './objects.ts';

export interface FrozenManifest {
  annotations: Record<string, string>;
  data: Record<string, string>;
}

export type KeptResult = { ok: true } | { ok: false; reason: string; message: string };

export class KeptObjects {
  private readonly services = new Map<string, number>();
  private readonly manifests = new Map<string, { at: number; cm: FrozenManifest | undefined }>();

  constructor(
    private readonly core: CoreV1Api,
    /** How long a remembered answer is trusted. Default 10 min. */
    private readonly recheckMs = 10 * 60_000,
  ) {}

  /** Drops what is remembered of an agent's objects (it was deleted). */
  forget(namespace: string, names: string[]): void {
    for (const n of names) {
      this.services.delete(`${namespace}/${n}`);
      this.manifests.delete(`${namespace}/${n}`);
    }
  }

  async ensureService(body: V1Service): Promise<KeptResult> {
    const ns = body.metadata!.namespace!;
    const name = body.metadata!.name!;
    const key = `${ns}/${name}`;
    const at = this.services.get(key);
    if (at !== undefined && Date.now() - at < this.recheckMs) return { ok: true };
    try {
      await this.core.createNamespacedService({ namespace: ns, body });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const existing = await this.core.readNamespacedService({ namespace: ns, name });
      if (existing.metadata?.labels?.[agentLabels.agentUid] !== body.metadata!.labels![agentLabels.agentUid]) {
        return { ok: false, reason: 'ServiceNameTaken', message: `A Service named ${name} exists in ${ns} and does not belong to this agent: delete or rename it.` };
      }
    }
    this.services.set(key, Date.now());
    return { ok: true };
  }

  /** The agent's manifest ConfigMap, or undefined when there is none. */
  async manifest(namespace: string, name: string, agentUid: string): Promise<FrozenManifest | undefined> {
    const key = `${namespace}/${name}`;
    const known = this.manifests.get(key);
    if (known && Date.now() - known.at < this.recheckMs) return known.cm;
    let cm: FrozenManifest | undefined;
    try {
      const live = await this.core.readNamespacedConfigMap({ namespace, name });
      if (live.metadata?.labels?.[agentLabels.agentUid] === agentUid && !live.metadata.deletionTimestamp) {
        cm = { annotations: live.metadata.annotations ?? {}, data: live.data ?? {} };
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    this.manifests.set(key, { at: Date.now(), cm });
    return cm;
  }

  /** Replaces the manifest ConfigMap (immutable: delete, then create). */
  async replaceManifest(body: V1ConfigMap): Promise<FrozenManifest> {
    const ns = body.metadata!.namespace!;
    const name = body.metadata!.name!;
    this.manifests.delete(`${ns}/${name}`);
    try {
      await this.core.deleteNamespacedConfigMap({ namespace: ns, name });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      await this.core.createNamespacedConfigMap({ namespace: ns, body });
    } catch (err) {
      // The old one is still being deleted; the reconcile runs again.
      if (isAlreadyExists(err)) throw new Error(`ConfigMap ${ns}/${name} is still being replaced`, { cause: err });
      throw err;
    }
    const cm = { annotations: { ...body.metadata!.annotations }, data: { ...body.data } };
    this.manifests.set(`${ns}/${name}`, { at: Date.now(), cm });
    return cm;
  }
}
