// The external route of an agent (HTTPRoute or Ingress on inference-<id>.<domain>), kept in line with the
// training cluster's exposure. Routes are not cached by an informer (the HTTPRoute kind may not exist, and an
// agent has at most one route): what was last made sure of is remembered per agent and checked again against the
// API after a while, so a steady reconcile costs no request. Whether the Gateway API is served is asked of
// discovery and remembered briefly, so installing its CRDs later is noticed.
import type { CustomObjectsApi, NetworkingV1Api, V1Ingress } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import type { Deployment } from '../../api/v1alpha1/deployment.ts';
import { isAlreadyExists, isNotFound, toKubeError } from '../../kube/errors.ts';
import { HTTPROUTE, agentAnnotations, agentNames, agentLabels, type DesiredRoute, type HttpRoute } from './objects.ts';

export interface ExposureResult {
  /** The Exposed condition; absent when the agent needs no route. */
  condition?: { status: 'True' | 'False'; reason: string; message: string };
  /** The external host, once its route exists. */
  host?: string;
  /** Look again after this long (the Gateway API may be installed meanwhile). */
  recheckInMs?: number;
}

export interface ExposureManagerOptions {
  custom: CustomObjectsApi;
  networking: NetworkingV1Api;
  logger: Logger;
  /** How long a discovery answer about the Gateway API is trusted. Default 60 s. */
  discoveryTtlMs?: number;
  /** How long a route made sure of is trusted before it is read again. Default 10 min. */
  recheckMs?: number;
}

type Memo = { tag: string; at: number };

export class ExposureManager {
  private readonly memo = new Map<string, Memo>();
  private gateway?: { available: boolean; at: number };
  private readonly discoveryTtlMs: number;
  private readonly recheckMs: number;

  constructor(private readonly o: ExposureManagerOptions) {
    this.discoveryTtlMs = o.discoveryTtlMs ?? 60_000;
    this.recheckMs = o.recheckMs ?? 10 * 60_000;
  }

  forget(key: string): void {
    this.memo.delete(key);
  }

  async ensure(key: string, d: Deployment, route: DesiredRoute | undefined): Promise<ExposureResult> {
    const ns = d.metadata!.namespace!;
    const name = agentNames(d).route;
    const uid = d.metadata!.uid!;
    if (!route) {
      if (!this.trusted(key, 'none')) {
        await this.deleteIngress(ns, name, uid);
        if (await this.gatewayAvailable()) await this.deleteHttpRoute(ns, name, uid);
        this.remember(key, 'none');
      }
      return {};
    }
    if (route.kind === 'HTTPRoute' && !(await this.gatewayAvailable())) {
      await this.deleteIngress(ns, name, uid);
      this.forget(key);
      return {
        condition: {
          status: 'False',
          reason: 'GatewayAPINotInstalled',
          message: `The training cluster exposes agents through a Gateway, but this cluster does not serve ${HTTPROUTE.group}/${HTTPROUTE.version} HTTPRoute: install the Gateway API CRDs, or use exposure.ingressClassName. The agent is reachable in-cluster through its Service.`,
        },
        recheckInMs: this.discoveryTtlMs,
      };
    }
    const hash = route.object.metadata!.annotations![agentAnnotations.specHash]!;
    const tag = `${route.kind}:${hash}`;
    if (!this.trusted(key, tag)) {
      try {
        if (route.kind === 'HTTPRoute') {
          await this.applyHttpRoute(route.object);
          await this.deleteIngress(ns, name, uid);
        } else {
          await this.applyIngress(route.object);
          if (await this.gatewayAvailable()) await this.deleteHttpRoute(ns, name, uid);
        }
      } catch (err) {
        const e = toKubeError(err);
        if (e.retryable) throw err;
        this.forget(key);
        return { condition: { status: 'False', reason: 'RouteRefused', message: `The API refused the ${route.kind}: ${e.message}` }, recheckInMs: this.recheckMs };
      }
      this.remember(key, tag);
    }
    return {
      condition: { status: 'True', reason: 'RouteCreated', message: `${route.kind} ${name} routes ${route.host} to Service ${agentNames(d).service}.` },
      host: route.host,
    };
  }

  private trusted(key: string, tag: string): boolean {
    const m = this.memo.get(key);
    return m?.tag === tag && Date.now() - m.at < this.recheckMs;
  }

  private remember(key: string, tag: string): void {
    this.memo.set(key, { tag, at: Date.now() });
  }

  private async gatewayAvailable(): Promise<boolean> {
    if (this.gateway && Date.now() - this.gateway.at < this.discoveryTtlMs) return this.gateway.available;
    let available: boolean;
    try {
      const list = await this.o.custom.getAPIResources({ group: HTTPROUTE.group, version: HTTPROUTE.version });
      available = list.resources.some((r) => r.name === HTTPROUTE.plural);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      available = false;
    }
    if (this.gateway?.available !== available) this.o.logger.info('Gateway API HTTPRoute', { available });
    this.gateway = { available, at: Date.now() };
    return available;
  }

  private async applyHttpRoute(obj: HttpRoute): Promise<void> {
    const { custom } = this.o;
    const ref = { group: HTTPROUTE.group, version: HTTPROUTE.version, plural: HTTPROUTE.plural, namespace: obj.metadata.namespace, name: obj.metadata.name };
    let live: HttpRoute | undefined;
    try {
      live = (await custom.getNamespacedCustomObject(ref)) as HttpRoute;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (!live) {
      try {
        await custom.createNamespacedCustomObject({ ...ref, body: obj });
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
      return;
    }
    if (!ours(live.metadata, obj.metadata.labels[agentLabels.agentUid]!)) throw notOurs('HTTPRoute', obj.metadata.name);
    if (live.metadata.annotations?.[agentAnnotations.specHash] === obj.metadata.annotations[agentAnnotations.specHash]) return;
    await custom.replaceNamespacedCustomObject({ ...ref, body: { ...obj, metadata: { ...obj.metadata, resourceVersion: live.metadata.resourceVersion } } });
  }

  private async applyIngress(obj: V1Ingress): Promise<void> {
    const { networking } = this.o;
    const namespace = obj.metadata!.namespace!;
    const name = obj.metadata!.name!;
    let live: V1Ingress | undefined;
    try {
      live = await networking.readNamespacedIngress({ namespace, name });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (!live) {
      try {
        await networking.createNamespacedIngress({ namespace, body: obj });
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
      return;
    }
    if (!ours(live.metadata ?? {}, obj.metadata!.labels![agentLabels.agentUid]!)) throw notOurs('Ingress', name);
    if (live.metadata?.annotations?.[agentAnnotations.specHash] === obj.metadata!.annotations![agentAnnotations.specHash]) return;
    await networking.replaceNamespacedIngress({ namespace, name, body: { ...obj, metadata: { ...obj.metadata, resourceVersion: live.metadata?.resourceVersion } } });
  }

  /** Deletes the agent's Ingress, if it has one; someone else's object of that name is left alone. */
  private async deleteIngress(namespace: string, name: string, uid: string): Promise<void> {
    try {
      const live = await this.o.networking.readNamespacedIngress({ namespace, name });
      if (!ours(live.metadata ?? {}, uid)) return;
      await this.o.networking.deleteNamespacedIngress({ namespace, name });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async deleteHttpRoute(namespace: string, name: string, uid: string): Promise<void> {
    const ref = { group: HTTPROUTE.group, version: HTTPROUTE.version, plural: HTTPROUTE.plural, namespace, name };
    try {
      const live = (await this.o.custom.getNamespacedCustomObject(ref)) as HttpRoute;
      if (!ours(live.metadata, uid)) return;
      await this.o.custom.deleteNamespacedCustomObject(ref);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

function ours(meta: { labels?: Record<string, string> }, uid: string): boolean {
  return meta.labels?.[agentLabels.agentUid] === uid;
}

/** A non-retryable refusal, in the shape toKubeError reads, so the Exposed condition says what is wrong. */
function notOurs(kind: string, name: string) {
  return { reason: 'AlreadyExists' as const, message: `a ${kind} named ${name} exists and does not belong to this agent`, retryable: false };
}
