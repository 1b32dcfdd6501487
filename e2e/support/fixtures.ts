// Small builders and helpers for the operator's end-to-end tests: objects of our kinds, typed API access, and a
// stand-in for the runtime that posts reports with a run's real token.
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, GROUP, VERSION, kinds } from '../../operator/api/v1alpha1/index.ts';
import type { Experiment, ExperimentStatus } from '../../operator/api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../../operator/api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../operator/api/v1alpha1/trainingcluster.ts';
import { names, tokenKey } from '../../operator/controllers/experiment/workers.ts';
import { REPORTS_PATH, type CheckpointEvent, type Report, type ReportEvent } from '../../operator/runtime-api/protocol.ts';
import { waitFor } from '../cluster/wait.ts';
import { cartpoleDqn } from './manifests.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export function trainingCluster(name: string, spec: Partial<TrainingCluster['spec']> = {}): TrainingCluster {
  return {
    apiVersion: API_VERSION,
    kind: 'TrainingCluster',
    metadata: { name },
    spec: {
      setupBundle: { version: '1.0.0', images: { runtime: 'registry.local/arena-runtime:1.0.0' } },
      checkpointStorage: { hostPath: { path: '/var/lib/arena/checkpoints' } },
      ...spec,
    },
  };
}

export function resourceClass(name: string, cluster: string, spec: Partial<ResourceClass['spec']> = {}): ResourceClass {
  return {
    apiVersion: API_VERSION,
    kind: 'ResourceClass',
    metadata: { name },
    spec: { trainingCluster: cluster, nodes: 2, worker: { cpu: '4', memory: '16Gi', gpus: 4 }, creditsPerNodeHour: 3.6, ...spec },
  };
}

export function experiment(namespace: string, name: string, cls: string, spec: Partial<Experiment['spec']> = {}): Experiment {
  return {
    apiVersion: API_VERSION,
    kind: 'Experiment',
    metadata: { name, namespace },
    spec: {
      action: 'Train',
      resourceClass: cls,
      partialGangTimeoutSeconds: 30,
      maxRetries: 2,
      stopGracePeriodSeconds: 5,
      manifest: cartpoleDqn(),
      ...spec,
    },
  };
}

export class Arena {
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;

  constructor(readonly kc: KubeConfig) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async namespace(name: string): Promise<void> {
    await this.core.createNamespace({ body: { metadata: { name } } });
    await waitFor(async () => !!(await this.core.readNamespacedServiceAccount({ namespace: name, name: 'default' })), {
      timeoutMs: 30_000,
      what: `the default service account of ${name}`,
    });
  }

  async apply(obj: TrainingCluster | ResourceClass | Experiment): Promise<void> {
    const kind = kinds[obj.kind as keyof typeof kinds];
    const base = { group: GROUP, version: VERSION, plural: kind.plural };
    if (kind.scope === 'Cluster') await this.custom.createClusterCustomObject({ ...base, body: obj });
    else await this.custom.createNamespacedCustomObject({ ...base, namespace: obj.metadata!.namespace!, body: obj });
  }

  async patchCluster(name: string, spec: Partial<TrainingCluster['spec']>): Promise<void> {
    await this.custom.patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'trainingclusters', name, body: { spec } }, mergePatch);
  }

  async patchClass(name: string, spec: Partial<ResourceClass['spec']>): Promise<void> {
    await this.custom.patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'resourceclasses', name, body: { spec } }, mergePatch);
  }

  async patchExperiment(ns: string, name: string, spec: Partial<Experiment['spec']>): Promise<void> {
    await this.custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'experiments', namespace: ns, name, body: { spec } }, mergePatch);
  }

  async listExperiments(ns: string): Promise<Experiment[]> {
    const list = (await this.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'experiments', namespace: ns })) as { items: Experiment[] };
    return list.items;
  }

  async getExperiment(ns: string, name: string): Promise<Experiment> {
    return (await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'experiments', namespace: ns, name })) as Experiment;
  }

  async deleteExperiment(ns: string, name: string): Promise<void> {
    await this.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'experiments', namespace: ns, name });
  }

  /** Waits until the experiment's status satisfies `pred`; the error shows the last status seen. */
  async waitExperiment(ns: string, name: string, pred: (s: ExperimentStatus) => boolean, what: string, timeoutMs = 30_000): Promise<Experiment> {
    let last: Experiment | undefined;
    try {
      await waitFor(
        async () => {
          last = await this.getExperiment(ns, name);
          return pred(last.status ?? {});
        },
        { timeoutMs, what: `${ns}/${name}: ${what}` },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\nlast status: ${JSON.stringify(last?.status, null, 1)}`);
    }
    return last!;
  }

  waitPhase(ns: string, name: string, phase: string, timeoutMs?: number): Promise<Experiment> {
    return this.waitExperiment(ns, name, (s) => s.phase === phase, `phase ${phase}`, timeoutMs);
  }

  async workerPods(ns: string, exp: Experiment) {
    const list = await this.core.listNamespacedPod({ namespace: ns, labelSelector: `arena.agilerl.com/experiment-uid=${exp.metadata!.uid}` });
    return list.items;
  }

  /** The run token the operator issued to worker `worker` of the experiment's current attempt. */
  async runToken(ns: string, exp: Experiment, worker = 0): Promise<string> {
    const secret = await this.core.readNamespacedSecret({ namespace: ns, name: names(exp, { run: exp.status!.run!, attempt: exp.status!.attempt ?? 1 }).secret });
    return Buffer.from(secret.data![tokenKey(worker)]!, 'base64').toString('utf8');
  }
}

/** A report event before the reporter stamps its sequence number and time. */
type Unstamped = { [K in ReportEvent['type']]: Omit<Extract<ReportEvent, { type: K }>, 'seq' | 'at'> }[ReportEvent['type']];

/** Plays a worker's runtime: posts reports for the experiment's current run and attempt. */
export class FakeRuntime {
  private seq = 0;

  constructor(
    private operatorUrl: string,
    private readonly exp: Experiment,
    private readonly token: string,
    private readonly worker = 0,
  ) {}

  /** Sends to another operator from now on (a restarted one), keeping the sequence, as the runtime's journal does. */
  retarget(operatorUrl: string): this {
    this.operatorUrl = operatorUrl;
    return this;
  }

  async post(events: Unstamped[], token = this.token): Promise<{ status: number; body: unknown }> {
    const report: Report = {
      experiment: { namespace: this.exp.metadata!.namespace!, name: this.exp.metadata!.name! },
      run: this.exp.status!.run!,
      attempt: this.exp.status!.attempt!,
      worker: this.worker,
      events: events.map((e) => ({ ...e, seq: ++this.seq, at: new Date().toISOString() }) as ReportEvent),
    };
    const res = await fetch(`${this.operatorUrl}${REPORTS_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(report),
    });
    return { status: res.status, body: await res.json().catch(() => undefined) };
  }

  checkpoint(step: number, evaluationScore?: number, extra: Partial<Pick<CheckpointEvent, 'final' | 'recovered'>> = {}) {
    return this.post([
      {
        type: 'checkpoint',
        step,
        sizeBytes: 1024,
        location: `run-${this.exp.status!.run}/step-${step}`,
        ...(evaluationScore !== undefined ? { evaluationScore, trainingScore: evaluationScore - 1 } : {}),
        ...extra,
      },
    ]);
  }

  progress(step: number, maxSteps: number) {
    return this.post([{ type: 'progress', step, maxSteps, stepsPerSecond: 100 }]);
  }
}

// --- Agents (arena Deployments) ------------------------------------------------------------------------------

import type { Deployment, DeploymentStatus } from '../../operator/api/v1alpha1/deployment.ts';

/** An agent serving a checkpoint of `experiment`; spec.source fields given in `spec` are merged in. */
export function deployment(namespace: string, name: string, experiment: string, spec: Partial<Deployment['spec']> = {}): Deployment {
  return {
    apiVersion: API_VERSION,
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: { ...spec, source: { experiment, ...spec.source } },
  };
}

/** Typed access to agents, next to Arena's for the other kinds. */
export class Agents {
  private readonly ref = { group: GROUP, version: VERSION, plural: 'deployments' } as const;

  constructor(readonly arena: Arena) {}

  async create(d: Deployment): Promise<Deployment> {
    return (await this.arena.custom.createNamespacedCustomObject({ ...this.ref, namespace: d.metadata!.namespace!, body: d })) as Deployment;
  }

  async get(ns: string, name: string): Promise<Deployment> {
    return (await this.arena.custom.getNamespacedCustomObject({ ...this.ref, namespace: ns, name })) as Deployment;
  }

  /** A merge patch of the spec; null removes a field. */
  async patch(ns: string, name: string, spec: Record<string, unknown>): Promise<Deployment> {
    return (await this.arena.custom.patchNamespacedCustomObject({ ...this.ref, namespace: ns, name, body: { spec } }, mergePatch)) as Deployment;
  }

  async delete(ns: string, name: string): Promise<void> {
    await this.arena.custom.deleteNamespacedCustomObject({ ...this.ref, namespace: ns, name });
  }

  /** Waits until the agent's status satisfies `pred`; the error shows the last status seen. */
  async wait(ns: string, name: string, pred: (s: DeploymentStatus, d: Deployment) => boolean, what: string, timeoutMs = 60_000): Promise<Deployment> {
    let last: Deployment | undefined;
    try {
      await waitFor(
        async () => {
          last = await this.get(ns, name);
          return pred(last.status ?? {}, last);
        },
        { timeoutMs, what: `agent ${ns}/${name}: ${what}` },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\nlast status: ${JSON.stringify(last?.status, null, 1)}`);
    }
    return last!;
  }

  waitPhase(ns: string, name: string, phase: string, timeoutMs?: number): Promise<Deployment> {
    return this.wait(ns, name, (s) => s.phase === phase, `phase ${phase}`, timeoutMs);
  }

  /** The agent's current API key, read from the Secret its status names. */
  async apiKey(ns: string, d: Deployment): Promise<string> {
    const secret = await this.arena.core.readNamespacedSecret({ namespace: ns, name: d.status!.apiKeySecretName! });
    return Buffer.from(secret.data!.key!, 'base64').toString('utf8');
  }

  /** The agent's inference pods (any template). */
  async pods(ns: string, d: Deployment) {
    const list = await this.arena.core.listNamespacedPod({ namespace: ns, labelSelector: `arena.agilerl.com/agent-uid=${d.metadata!.uid},app.kubernetes.io/component=inference` });
    return list.items;
  }
}
