// TrainingCluster reconciler: reads the cluster, the node ledgers and the capacity model from memory, writes the
// status only when it changed, and keeps the platform heartbeat in step with spec.platform.
import type { Logger } from 'winston';
import type { TrainingCluster, TrainingClusterStatus } from '../../api/v1alpha1/trainingcluster.ts';
import type { Reconciler } from '../../kube/controller.ts';
import { forObject } from '../../observability/log.ts';
import type { CapacityModel, NodeInfo } from '../../scheduler/capacity.ts';
import { desiredTrainingClusterStatus, selects, type PlatformHealth } from './status.ts';
import type { PlatformBundleReport } from './bundle.ts';
import { computeLedger, type PlatformCredits } from './credits.ts';
import { computeBudgets } from './budgets.ts';
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { ReconcileResult } from '../../kube/controller.ts';

/** What the reconciler needs of the platform link (operator/platform-link). */
export interface PlatformLinkControl {
  /** Starts, reconfigures or stops the cluster's heartbeat to match spec.platform; returns at once. */
  sync(cluster: TrainingCluster): void;
  /** The cluster is gone: stop its heartbeat. */
  forget(name: string): void;
  health(name: string): PlatformHealth | undefined;
  /** The current setup-bundle version the platform's replies named, and what was wrong with the latest one. */
  currentBundle(name: string): PlatformBundleReport | undefined;
  /** The credit balance the platform's replies named, with what the heartbeat reported as spent. */
  credits?(name: string): PlatformCredits | undefined;
}

export interface TrainingClusterReconcilerOptions {
  clusters: { get(key: string): TrainingCluster | undefined };
  /** Every node the capacity model knows. */
  nodeInfos: () => Iterable<NodeInfo>;
  capacity: CapacityModel;
  platform?: PlatformLinkControl;
  /** The experiments of the classes on this cluster, with their class: what the credit ledger debits. */
  experimentsOf?: (cluster: string) => Iterable<{ experiment: Experiment; cls: ResourceClass | undefined }>;
  /** How often a spending cluster debits its ledger at most (credits.ts); default 30 s. */
  debitIntervalMs?: number;
  writeStatus: (cluster: TrainingCluster, status: TrainingClusterStatus) => Promise<unknown>;
  logger: Logger;
  now?: () => Date;
}

export class TrainingClusterReconciler implements Reconciler {
  constructor(private readonly o: TrainingClusterReconcilerOptions) {}

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const cluster = this.o.clusters.get(key);
    if (!cluster) {
      this.o.platform?.forget(key);
      return;
    }
    this.o.platform?.sync(cluster);
    const selector = cluster.spec.workerNodeSelector;
    const now = this.o.now?.() ?? new Date();
    const experiments = [...(this.o.experimentsOf?.(key) ?? [])];
    const ledger = computeLedger({
      cluster,
      experiments,
      platform: this.o.platform?.credits?.(key),
      now,
      debitIntervalMs: this.o.debitIntervalMs,
    });
    const budgets = computeBudgets({ cluster, experiments, now, debitIntervalMs: this.o.debitIntervalMs });
    const status = desiredTrainingClusterStatus({
      cluster,
      nodes: this.o.nodeInfos(),
      capacity: this.o.capacity.summary((n) => selects(selector, n.labels)),
      platform: this.o.platform?.health(key),
      platformBundle: this.o.platform?.currentBundle(key),
      ledger,
      ...(budgets.budgets ? { budgets: budgets.budgets } : {}),
      now,
    });
    const written = await this.o.writeStatus(cluster, status);
    if (written) {
      forObject(this.o.logger, { kind: 'TrainingCluster', name: key }).debug('status written', {
        workersReady: status.workers?.ready,
        gpusFree: status.gpus?.free,
        bundle: status.bundle?.state,
        currentBundleVersion: status.bundle?.currentVersion,
        credits: status.credits?.balance,
      });
    }
    const requeueAfterMs = Math.min(ledger.requeueAfterMs ?? Infinity, budgets.requeueAfterMs ?? Infinity);
    return Number.isFinite(requeueAfterMs) ? { requeueAfterMs } : undefined;
  }
}
