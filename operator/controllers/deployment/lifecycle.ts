// The agent's state machine, as a pure function: from what the reconciler observed (the frozen checkpoint, the
// inference workload and its pods, the operator's own health checks), the next status and the actions that move
// the world one step toward the spec. No I/O, so every transition is covered by table-driven tests.
//
// Phases (Arena's):
//   Undeployed  not connected (never, or disconnected): no pods; the record, its key and its checkpoint stay.
//   Pending     connected and starting (Available Unknown), or recovering after it served (Available False).
//   Deployed    the kubelet calls the pods ready AND the operator's own check of /readyz on them passed.
//   Failed      the server refused to start (e.g. the checkpoint cannot be loaded), it did not start within the
//               deploy timeout, or it did not recover within the unhealthy timeout. The pods are removed. It
//               holds until the spec changes: Disconnect → Connect (or any edit) tries again.
// A checkpoint that cannot be chosen yet (no experiment, no checkpoints, no such step) keeps a connected agent
// Pending with that reason: each of these can come right without touching the agent.
import type { Deployment, DeploymentPhase, DeploymentStatus } from '../../api/v1alpha1/deployment.ts';
import { DeploymentConditions } from '../../api/v1alpha1/deployment.ts';
import { findCondition, removeCondition, rfc3339, setCondition, type ConditionStatus, type ConditionUpdate } from '../../kube/conditions.ts';
import type { PodView } from './pods.ts';
import type { HealthView } from './prober.ts';
import type { SourceState } from './source.ts';

export const AgentConditions = {
  ...DeploymentConditions,
  /** spec.source resolved to a checkpoint (frozen in status.checkpoint). */
  CheckpointResolved: 'CheckpointResolved',
  /** The external route (HTTPRoute or Ingress) exists, when the training cluster asks for one. */
  Exposed: 'Exposed',
} as const;

export interface DecideConfig {
  /** Failed health checks in a row after which a Deployed agent goes back to Pending. */
  failureThreshold: number;
  /** How long a Deployed agent may stay Pending while it recovers before it is Failed. */
  unhealthyTimeoutMs: number;
  /** How long the pods of a connect may take to be ready and pass the health check before it is Failed. */
  deployTimeoutMs: number;
  /** status.health is rewritten at most this often while nothing changes. */
  healthRefreshMs: number;
}

export const defaultDecideConfig: DecideConfig = {
  failureThreshold: 3,
  unhealthyTimeoutMs: 5 * 60_000,
  // Large LLM checkpoints take minutes to load.
  deployTimeoutMs: 15 * 60_000,
  healthRefreshMs: 60_000,
};

export interface WorkloadView {
  exists: boolean;
  /** Being deleted (foreground: it goes once its pods are gone). */
  deleting: boolean;
  /** The ReplicaSet could not create pods (quota, admission), from the workload's ReplicaFailure condition. */
  replicaFailure?: string;
}

export type Endpoint = NonNullable<DeploymentStatus['endpoint']>;

export interface Observed {
  now: Date;
  /** As stored (status and generation). */
  deployment: Deployment;
  connected: boolean;
  replicas: number;
  deploymentId: string;
  /** The key Secret the reconciler made sure of, and the rotation it was issued for. */
  apiKey: { secretName: string; rotation: number };
  source: SourceState;
  /** Why the pods cannot be built although the checkpoint is known (no training cluster, no frozen manifest). */
  blocker?: { reason: string; message: string };
  workload: WorkloadView;
  pods: PodView[];
  health?: HealthView;
  /** What status.endpoint says once Deployed. */
  endpoint?: Endpoint;
  /** The Exposed condition, when the agent has a route to keep. */
  exposure?: Omit<ConditionUpdate, 'type'>;
  config: DecideConfig;
}

export type Action =
  | { type: 'applyWorkload' }
  | { type: 'deleteWorkload' }
  | { type: 'probe'; pods: { name: string; ip: string }[] }
  | { type: 'unprobe' }
  | { type: 'event'; eventType: 'Normal' | 'Warning'; reason: string; note: string };

export interface Decision {
  status: DeploymentStatus;
  actions: Action[];
  requeueAfterMs?: number;
}

export function decide(o: Observed): Decision {
  return new Step(o).run();
}

const camelCase = /^[A-Z][A-Za-z0-9]*$/;
const sentence = (text: string) => (/[.!?]$/.test(text.trim()) ? text.trim() : `${text.trim()}.`);

class Step {
  private readonly s: DeploymentStatus;
  private readonly stored: DeploymentStatus;
  private readonly actions: Action[] = [];
  private requeueAfterMs?: number;
  private readonly generation: number;

  constructor(private readonly o: Observed) {
    this.stored = o.deployment.status ?? {};
    this.s = structuredClone(this.stored);
    this.generation = o.deployment.metadata?.generation ?? 0;
  }

  run(): Decision {
    const o = this.o;
    this.s.deploymentId ??= o.deploymentId;
    this.s.apiKeySecretName = o.apiKey.secretName;
    this.s.observedKeyRotation = o.apiKey.rotation;
    if (o.exposure) this.condition(AgentConditions.Exposed, o.exposure.status, o.exposure.reason, o.exposure.message);
    else this.s.conditions = removeCondition(this.s.conditions, AgentConditions.Exposed);

    if (this.stored.phase === 'Failed' && this.stored.observedGeneration === this.generation && o.connected) {
      // Failed holds until the spec changes: the same pods would only fail again.
      this.deleteWorkload();
      this.actions.push({ type: 'unprobe' });
      return this.done();
    }
    this.s.observedGeneration = this.generation;

    if (o.source.ok) {
      const c = o.source.checkpoint;
      this.s.checkpoint = c;
      this.condition(AgentConditions.CheckpointResolved, 'True', 'Resolved', `Step ${c.step} of experiment ${c.experiment}, chosen at ${c.resolvedAt}.`);
      if (o.source.fresh) this.event('Normal', 'CheckpointResolved', `Serving step ${c.step} of experiment ${c.experiment} (${o.deployment.spec.source.checkpoint ?? 'best'}).`);
    } else {
      this.condition(AgentConditions.CheckpointResolved, 'False', o.source.reason, o.source.message);
    }

    if (!o.connected) {
      if (o.source.ok) this.undeployed('Disconnected', 'Not connected: set spec.connected to true to serve.');
      else this.undeployed(o.source.reason, o.source.message);
      return this.done();
    }
    if (!o.source.ok) {
      // An endpoint for an earlier source is not what the spec asks for any more.
      this.deleteWorkload();
      this.actions.push({ type: 'unprobe' });
      this.starting(o.source.reason, o.source.message, false);
      return this.done();
    }
    if (o.blocker) {
      this.actions.push({ type: 'unprobe' });
      this.starting(o.blocker.reason, o.blocker.message, false);
      return this.done();
    }
    if (o.workload.deleting) {
      this.actions.push({ type: 'unprobe' });
      this.starting('CleaningUp', 'Waiting for the previous inference pods to stop.', false);
      this.requeue(2000);
      return this.done();
    }
    this.actions.push({ type: 'applyWorkload' });
    this.connected();
    return this.done();
  }

  private connected(): void {
    const o = this.o;
    const current = o.pods.filter((p) => p.current && !p.deleting);
    const stale = o.pods.filter((p) => !p.current);
    const failed = current.find((p) => p.startFailure);
    if (failed) {
      this.fail(failed.startFailure!.reason, `Pod ${failed.name}: ${failed.startFailure!.message}`);
      return;
    }
    const wasServing = this.stored.phase === 'Deployed' || (this.stored.phase === 'Pending' && this.available() === 'False');
    if (stale.length > 0) {
      // The pod template changed (a new key, checkpoint or image): the old pods go before the new ones start.
      this.actions.push({ type: 'unprobe' });
      this.starting('RollingOut', `Replacing ${stale.length} inference pod(s) of an earlier key, checkpoint or image.`, true);
      return;
    }
    const ready = current.filter((p): p is PodView & { ip: string } => p.ready && p.ip !== undefined);
    if (ready.length === 0) {
      this.actions.push({ type: 'unprobe' });
      if (wasServing) this.recovering('PodsNotReady', `No inference pod is ready. ${this.podsDetail(current)}`.trim());
      else this.starting(...this.startingReason(current), true);
      return;
    }
    this.actions.push({ type: 'probe', pods: ready.map((p) => ({ name: p.name, ip: p.ip })) });
    const h = o.health;
    const threshold = o.config.failureThreshold;
    if (this.stored.phase === 'Deployed') {
      if (h && h.consecutiveFailures >= threshold) {
        this.recovering('HealthCheckFailing', `${h.consecutiveFailures} health checks in a row failed: ${h.lastError ?? 'no answer'}.`);
      } else {
        this.deployed(ready.length);
      }
      return;
    }
    if (h?.lastOk) {
      this.deployed(ready.length);
      return;
    }
    if (wasServing) {
      const failing = h && h.consecutiveFailures > 0;
      this.recovering(failing ? 'HealthCheckFailing' : 'Recovering', failing ? `Health checks fail: ${h.lastError ?? 'no answer'}.` : 'The pods are ready again; waiting for a health check to pass.');
      return;
    }
    this.starting(
      'WaitingForHealthCheck',
      h?.lastError ? `The pods are ready but the operator's health check fails: ${h.lastError}.` : "The pods are ready; waiting for the operator's first health check.",
      true,
    );
  }

  // --- phases --------------------------------------------------------------------------------------------------

  private deployed(readyPods: number): void {
    const o = this.o;
    const was = this.stored.phase;
    const c = this.s.checkpoint!;
    this.setPhase('Deployed', 'Serving', `Serving step ${c.step} of experiment ${c.experiment} from ${readyPods} of ${o.replicas} pod(s).`);
    this.condition(AgentConditions.Available, 'True', 'Serving', this.s.message!);
    this.condition(AgentConditions.Healthy, 'True', 'HealthCheckPassing', 'The latest health check passed.');
    if (o.endpoint) this.s.endpoint = o.endpoint;
    this.health();
    if (was !== 'Deployed') {
      const recovered = was === 'Pending' && this.stored.conditions?.find((x) => x.type === AgentConditions.Available)?.status === 'False';
      this.event('Normal', recovered ? 'Recovered' : 'Deployed', `The endpoint serves ${o.endpoint?.inferencePath ?? 'requests'}.`);
    }
    this.requeue(o.config.healthRefreshMs);
  }

  /** Pending after it served: the endpoint is kept; it fails if it does not come back in time. */
  private recovering(reason: string, message: string): void {
    const o = this.o;
    if (this.stored.phase === 'Deployed') this.event('Warning', reason, message);
    this.setPhase('Pending', reason, message);
    this.condition(AgentConditions.Available, 'False', reason, message);
    if (reason === 'HealthCheckFailing') this.condition(AgentConditions.Healthy, 'False', reason, message);
    this.health();
    const since = Date.parse(findCondition(this.s.conditions, AgentConditions.Available)!.lastTransitionTime);
    const deadline = since + o.config.unhealthyTimeoutMs;
    if (o.now.getTime() >= deadline) {
      this.fail('Unhealthy', `The endpoint did not recover within ${Math.round(o.config.unhealthyTimeoutMs / 1000)}s: ${message}`);
      return;
    }
    this.requeue(deadline - o.now.getTime());
  }

  /**
   * Pending on the way up: no endpoint yet. `podsStarting` says pods are being started (not waiting on the source
   * or on cleanup); it applies the deploy timeout from their creation.
   */
  private starting(reason: string, message: string, podsStarting: boolean): void {
    const o = this.o;
    const was = this.stored.phase;
    if (was === 'Deployed') this.event('Normal', reason, message);
    else if (!podsStarting) {
      if (this.stored.reason !== reason) this.event('Normal', reason, message);
    } else if (!o.workload.exists) this.event('Normal', 'Connecting', `Starting ${o.replicas} inference pod(s).`);
    this.setPhase('Pending', reason, message);
    this.condition(AgentConditions.Available, 'Unknown', reason, message);
    this.s.conditions = removeCondition(this.s.conditions, AgentConditions.Healthy);
    delete this.s.endpoint;
    delete this.s.health;
    if (!podsStarting) return;
    const created = o.pods.filter((p) => p.current && !p.deleting && p.createdAt).map((p) => Date.parse(p.createdAt!));
    if (created.length === 0) return;
    const deadline = Math.min(...created) + o.config.deployTimeoutMs;
    if (o.now.getTime() >= deadline) {
      this.fail('DeployTimeout', `The endpoint was not up within ${Math.round(o.config.deployTimeoutMs / 1000)}s: ${message}`);
      return;
    }
    this.requeue(deadline - o.now.getTime());
  }

  private undeployed(reason: string, message: string): void {
    const was = this.stored.phase;
    if (was && was !== 'Undeployed') this.event('Normal', 'Disconnected', 'The endpoint is off; the agent, its key and its checkpoint are kept.');
    this.setPhase('Undeployed', reason, message);
    this.condition(AgentConditions.Available, 'False', 'Disconnected', 'Not connected.');
    this.s.conditions = removeCondition(this.s.conditions, AgentConditions.Healthy);
    delete this.s.endpoint;
    delete this.s.health;
    this.deleteWorkload();
    this.actions.push({ type: 'unprobe' });
  }

  private fail(reason: string, message: string): void {
    if (this.stored.phase !== 'Failed') this.event('Warning', reason, `${sentence(message)} Disconnect and connect to try again.`);
    this.setPhase('Failed', reason, message);
    this.condition(AgentConditions.Available, 'False', reason, message);
    this.s.conditions = removeCondition(this.s.conditions, AgentConditions.Healthy);
    delete this.s.endpoint;
    delete this.s.health;
    // What this step queued for a running endpoint no longer holds.
    for (let i = this.actions.length - 1; i >= 0; i--) {
      const t = this.actions[i]!.type;
      if (t === 'probe' || t === 'unprobe' || t === 'applyWorkload' || t === 'deleteWorkload') this.actions.splice(i, 1);
    }
    this.deleteWorkload();
    this.actions.push({ type: 'unprobe' });
    this.requeueAfterMs = undefined;
  }

  // --- helpers -------------------------------------------------------------------------------------------------

  private startingReason(current: PodView[]): [string, string] {
    const o = this.o;
    if (o.workload.replicaFailure) return ['ReplicaFailure', `The inference pods cannot be created: ${o.workload.replicaFailure}`];
    const unscheduled = current.find((p) => p.unschedulable);
    if (unscheduled) return ['Unschedulable', `Pod ${unscheduled.name} cannot be scheduled: ${unscheduled.unschedulable}`];
    const waiting = current.find((p) => p.waiting && p.waiting.reason !== 'ContainerCreating' && p.waiting.reason !== 'PodInitializing');
    if (waiting) {
      const r = waiting.waiting!.reason;
      return [camelCase.test(r) ? r : 'ContainerWaiting', `Pod ${waiting.name}: ${r}${waiting.waiting!.message ? `: ${waiting.waiting!.message}` : ''}`];
    }
    const ready = current.filter((p) => p.ready).length;
    return ['Starting', `${ready} of ${o.replicas} inference pod(s) ready; the server loads the checkpoint.`];
  }

  private podsDetail(current: PodView[]): string {
    if (current.length === 0) return 'The inference pods are being recreated.';
    const restarting = current.find((p) => p.waiting);
    if (restarting) return `Pod ${restarting.name}: ${restarting.waiting!.reason}${restarting.waiting!.message ? `: ${restarting.waiting!.message}` : ''}.`;
    return `${current.length} pod(s) running, none ready (restarts: ${current.map((p) => p.restarts).join(', ')}).`;
  }

  /** status.health from the prober's view, rewritten only when it changed or is older than the refresh. */
  private health(): void {
    const h = this.o.health;
    if (!h?.lastCheckedAt) return;
    const prev = this.stored.health;
    const fresh = prev?.lastCheckedAt !== undefined && h.lastCheckedAt.getTime() - Date.parse(prev.lastCheckedAt) < this.o.config.healthRefreshMs;
    if (prev && prev.consecutiveFailures === h.consecutiveFailures && fresh) {
      this.s.health = prev;
      return;
    }
    this.s.health = {
      consecutiveFailures: h.consecutiveFailures,
      lastCheckedAt: rfc3339(h.lastCheckedAt),
      ...(h.lastHealthyAt ? { lastHealthyAt: rfc3339(h.lastHealthyAt) } : prev?.lastHealthyAt ? { lastHealthyAt: prev.lastHealthyAt } : {}),
    };
  }

  private available(): ConditionStatus | undefined {
    return findCondition(this.stored.conditions, AgentConditions.Available)?.status;
  }

  private deleteWorkload(): void {
    if (this.o.workload.exists && !this.o.workload.deleting) this.actions.push({ type: 'deleteWorkload' });
  }

  private setPhase(phase: DeploymentPhase, reason: string, message: string): void {
    this.s.phase = phase;
    this.s.reason = reason;
    this.s.message = message;
  }

  private condition(type: string, status: ConditionStatus, reason: string, message: string): void {
    this.s.conditions = setCondition(this.s.conditions, { type, status, reason, message }, this.generation, this.o.now);
  }

  private event(eventType: 'Normal' | 'Warning', reason: string, note: string): void {
    this.actions.push({ type: 'event', eventType, reason, note });
  }

  private requeue(ms: number): void {
    const v = Math.max(1, Math.ceil(ms));
    this.requeueAfterMs = this.requeueAfterMs === undefined ? v : Math.min(this.requeueAfterMs, v);
  }

  private done(): Decision {
    return { status: this.s, actions: this.actions, requeueAfterMs: this.requeueAfterMs };
  }
}
