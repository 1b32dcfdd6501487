// Events about pods from the node (source component "kubelet"), so `kubectl describe pod` shows Started,
// Killing, BackOff, Failed, FailedMount, Unhealthy as on a real node. Written fire-and-forget: an event is never
// worth failing a pod sync over. The same event for the same pod within a minute is written once.
import { CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import { toKubeError } from '../../operator/kube/errors.ts';
import type { Logger } from '../../operator/observability/log.ts';
import type { Pod } from './kube-types.ts';

const repeatWindowMs = 60_000;

export class PodEvents {
  private readonly core: CoreV1Api;
  private readonly recent = new Map<string, number>();

  constructor(
    kc: KubeConfig,
    private readonly nodeName: string,
    private readonly log: Logger,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  record(pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string, container?: string): void {
    const ns = pod.metadata?.namespace ?? 'default';
    const name = pod.metadata?.name ?? '';
    const key = `${pod.metadata?.uid}/${container ?? ''}/${reason}/${message}`;
    const now = Date.now();
    if ((this.recent.get(key) ?? 0) > now - repeatWindowMs) return;
    this.recent.set(key, now);
    if (this.recent.size > 2000) for (const [k, t] of this.recent) if (t < now - repeatWindowMs) this.recent.delete(k);
    const time = new Date();
    const body: CoreV1Event = {
      metadata: { generateName: `${name}.`, namespace: ns },
      involvedObject: {
        apiVersion: 'v1',
        kind: 'Pod',
        namespace: ns,
        name,
        uid: pod.metadata?.uid,
        fieldPath: container ? `spec.containers{${container}}` : undefined,
      },
      reason,
      message,
      type,
      source: { component: 'kubelet', host: this.nodeName },
      reportingComponent: 'kubelet',
      reportingInstance: this.nodeName,
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    };
    this.core.createNamespacedEvent({ namespace: ns, body }).catch((err: unknown) => {
      this.log.debug('event not written', { namespace: ns, name, reason, error: toKubeError(err).message });
    });
  }
}
