// ResourceClass reconciler: availability, gang fit on the class's eligible nodes, and queue counts, from caches.
import type { Logger } from 'winston';
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import type { ResourceClass, ResourceClassStatus } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import type { Reconciler } from '../../kube/controller.ts';
import { forObject } from '../../observability/log.ts';
import { classFit } from '../../scheduler/admission.ts';
import type { CapacityModel, NodeInfo, Resources } from '../../scheduler/capacity.ts';
import { classEligibility, DEFAULT_GPU_TAINT_KEY, ineligibilityBreakdown } from '../../scheduler/eligibility.ts';
import { parseCpuMilli, parseMemoryBytes } from '../../scheduler/quantity.ts';
import { desiredResourceClassStatus, teamStatuses, type ClassFit } from './status.ts';

export interface ResourceClassReconcilerOptions {
  classes: { get(key: string): ResourceClass | undefined };
  clusters: { get(key: string): TrainingCluster | undefined };
  /** Experiments whose spec.resourceClass names the class. */
  experimentsOf: (className: string) => Iterable<Experiment>;
  nodeInfos: () => Iterable<NodeInfo>;
  capacity: CapacityModel;
  writeStatus: (cls: ResourceClass, status: ResourceClassStatus) => Promise<unknown>;
  logger: Logger;
  now?: () => Date;
}

/** Pending experiments wait in the class queue; Running and Stopping ones hold its capacity. */
export function queueCounts(experiments: Iterable<Experiment>): { queued: number; running: number } {
  let queued = 0;
  let running = 0;
  for (const e of experiments) {
    const phase = e.status?.phase;
    if (phase === 'Pending') queued++;
    else if (phase === 'Running' || phase === 'Stopping') running++;
  }
  return { queued, running };
}

/** What one worker of the class requests, as the admission scheduler reads it. */
export function perWorker(cls: ResourceClass): Resources {
  const w = cls.spec.worker ?? {};
  return {
    cpuMilli: w.cpu === undefined ? 0 : parseCpuMilli(w.cpu, 'spec.worker.cpu'),
    memoryBytes: w.memory === undefined ? 0 : parseMemoryBytes(w.memory, 'spec.worker.memory'),
    gpus: w.gpus ?? 0,
  };
}

export class ResourceClassReconciler implements Reconciler {
  constructor(private readonly o: ResourceClassReconcilerOptions) {}

  async reconcile(key: string): Promise<void> {
    const cls = this.o.classes.get(key);
    if (!cls) return;
    const cluster = this.o.clusters.get(cls.spec.trainingCluster);
    let fit: ClassFit | undefined;
    let ineligible: string | undefined;
    let specError: string | undefined;
    if (cluster) {
      try {
        const request = perWorker(cls);
        const filter = classEligibility(
          {
            workerNodeSelector: cluster.spec.workerNodeSelector,
            nodeSelector: cls.spec.nodeSelector,
            gpuProduct: cls.spec.worker?.gpuProduct,
            gpus: request.gpus,
            tolerations: cls.spec.tolerations,
          },
          cluster.spec.gpu?.taint?.key ?? DEFAULT_GPU_TAINT_KEY,
        );
        fit = classFit(this.o.capacity, filter.eligible, cls.spec.nodes, request);
        if (fit.eligibleNodes === 0) ineligible = ineligibilityBreakdown(this.o.nodeInfos(), filter.explain) || 'the cluster has no nodes';
      } catch (err) {
        specError = (err as Error).message;
      }
    }
    const experiments = [...this.o.experimentsOf(key)];
    const teams = teamStatuses(cls, experiments);
    const status = desiredResourceClassStatus({
      cls,
      cluster,
      fit,
      ineligible,
      specError,
      ...queueCounts(experiments),
      ...(teams ? { teams } : {}),
      now: this.o.now?.() ?? new Date(),
    });
    const written = await this.o.writeStatus(cls, status);
    if (written) {
      forObject(this.o.logger, { kind: 'ResourceClass', name: key }).debug('status written', {
        available: status.available,
        reason: status.reason,
        fitNow: status.fitNow,
      });
    }
  }
}
