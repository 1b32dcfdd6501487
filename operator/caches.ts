// The informer caches the operator's parts share: experiments, resource classes and training clusters as
// written, and pods and nodes cut to what admission and status need. One list+watch per resource for the whole
// process; each part reads from these and never lists on its own.
import type { HttpLibrary, KubeConfig, KubernetesObject, V1Pod } from '@kubernetes/client-node';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'winston';
import { GROUP, VERSION, kinds } from './api/v1alpha1/index.ts';
import type { Experiment } from './api/v1alpha1/experiment.ts';
import type { ResourceClass } from './api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from './api/v1alpha1/trainingcluster.ts';
import { Informer, leanNode, leanPod, type InformerMetrics, type LeanNode, type LeanPod } from './kube/informer.ts';
import type { RateLimitedKubeConfig } from './kube/ratelimit.ts';
import { labels } from './controllers/experiment/workers.ts';

/** What every informer of the process is made with: the rate-limited client, its transport and the metrics. */
export interface InformerBase {
  kc: KubeConfig;
  logger: Logger;
  transport?: HttpLibrary;
  onWatchHung?: (sentAt: number) => void;
  metrics: InformerMetrics;
}

/** A cached pod, with the node a worker is pinned to before it is bound. */
export type WorkerPod = LeanPod & { pin?: string };

export interface SharedCaches {
  experiments: Informer<Experiment>;
  classes: Informer<ResourceClass>;
  clusters: Informer<TrainingCluster>;
  /** Every pod of the cluster (each counts against its node), indexed by `experiment` uid and by `node`. */
  pods: Informer<WorkerPod>;
  nodes: Informer<LeanNode>;
  /** scheduling.k8s.io PriorityClasses: the value of an experiment's spec.priorityClassName. */
  priorityClasses: Informer<KubernetesObject & { value?: number }>;
}

export function informerBase(kc: RateLimitedKubeConfig, logger: Logger, registry: Registry): InformerBase {
  const restarts = new Counter({ name: 'arena_informer_restarts_total', help: 'Informer list/watch restarts, by resource and reason.', labelNames: ['resource', 'reason'], registers: [registry] });
  const relists = new Counter({ name: 'arena_informer_relists_total', help: 'Full informer lists, by resource and reason.', labelNames: ['resource', 'reason'], registers: [registry] });
  const events = new Counter({ name: 'arena_informer_watch_events_total', help: 'Watch events received, by resource and type.', labelNames: ['resource', 'type'], registers: [registry] });
  return {
    kc,
    logger,
    transport: kc.transport,
    // A watch that went silent leaves its connection, and the kept-alive ones beside it, presumed dead.
    onWatchHung: (sentAt: number) => {
      if (kc.dropConnections(sentAt)) logger.warn('a watch went silent: dropped the connections to the API server', { connectionsDropped: kc.connectionsDropped });
    },
    metrics: {
      restarted: (resource: string, reason: string) => restarts.inc({ resource, reason }),
      relisted: (resource: string, reason: string) => relists.inc({ resource, reason }),
      watchEvent: (resource: string, type: string) => events.inc({ resource, type }),
    },
  };
}

/** The node a worker pod is pinned to by required node affinity on metadata.name, if any. */
function pinnedNode(obj: V1Pod): string | undefined {
  const terms = obj.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  const f = terms[0]?.matchFields?.find((m) => m.key === 'metadata.name' && m.operator === 'In');
  return f?.values?.length === 1 ? f.values[0] : undefined;
}

export function sharedCaches(base: InformerBase): SharedCaches {
  const experiments = new Informer<Experiment>({ ...base, group: GROUP, version: VERSION, plural: kinds.Experiment.plural });
  const classes = new Informer<ResourceClass>({ ...base, group: GROUP, version: VERSION, plural: kinds.ResourceClass.plural });
  const clusters = new Informer<TrainingCluster>({ ...base, group: GROUP, version: VERSION, plural: kinds.TrainingCluster.plural });
  const pods = new Informer<WorkerPod>({
    ...base,
    group: '',
    version: 'v1',
    plural: 'pods',
    transform: (o: KubernetesObject) => {
      const lean: WorkerPod = leanPod(o);
      const pin = pinnedNode(o as V1Pod);
      if (pin) lean.pin = pin;
      return lean;
    },
  });
  pods.addIndex('experiment', (p) => {
    const uid = p.metadata?.labels?.[labels.experimentUid];
    return uid ? [uid] : [];
  });
  pods.addIndex('node', (p) => {
    const n = p.spec?.nodeName ?? p.pin;
    return n ? [n] : [];
  });
  const nodes = new Informer<LeanNode>({ ...base, group: '', version: 'v1', plural: 'nodes', transform: leanNode });
  const priorityClasses = new Informer<KubernetesObject & { value?: number }>({ ...base, group: 'scheduling.k8s.io', version: 'v1', plural: 'priorityclasses' });
  return { experiments, classes, clusters, pods, nodes, priorityClasses };
}
