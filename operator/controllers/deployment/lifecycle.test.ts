import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Deployment, DeploymentStatus } from '../../api/v1alpha1/deployment.ts';
import type { Condition } from '../../kube/conditions.ts';
import { AgentConditions, decide, type Action, type Observed } from './lifecycle.ts';
import type { PodView } from './pods.ts';
import type { HealthView } from './prober.ts';
import type { FrozenCheckpoint, SourceState } from './source.ts';

const now = new Date('2026-11-23T10:00:00Z');
const iso = (offsetS: number) => new Date(now.getTime() + offsetS * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
const checkpoint: FrozenCheckpoint = { experiment: 'exp', step: 3000, evaluationScore: 200, location: '/checkpoints/ns/exp/run-1/step-3000.json', resolvedAt: iso(-600) };
const frozen: SourceState = { ok: true, checkpoint, fresh: false };
const endpoint = { serviceURL: 'http://a-inference.ns.svc', inferencePath: 'get_action' as const, paths: ['/status', '/get_action'] };
const config = { failureThreshold: 3, unhealthyTimeoutMs: 300_000, deployTimeoutMs: 900_000, healthRefreshMs: 60_000 };

const cond = (type: string, status: Condition['status'], since: number, reason = 'R'): Condition => ({
  type,
  status,
  reason,
  message: 'm',
  lastTransitionTime: iso(since),
  observedGeneration: 2,
});

function agent(connected: boolean, status: DeploymentStatus = {}, generation = 2): Deployment {
  return {
    metadata: { name: 'a', namespace: 'ns', uid: 'uid-1', generation },
    spec: { source: { experiment: 'exp', checkpoint: 'best' }, connected, replicas: 1 },
    status,
  } as Deployment;
}

/** Status of an agent that is serving. */
const deployedStatus = (): DeploymentStatus => ({
  phase: 'Deployed',
  reason: 'Serving',
  observedGeneration: 2,
  checkpoint,
  endpoint,
  conditions: [cond(AgentConditions.Available, 'True', -120, 'Serving')],
});

/** Pending after it served, since `since` seconds ago. */
const recoveringStatus = (since: number): DeploymentStatus => ({
  phase: 'Pending',
  reason: 'HealthCheckFailing',
  observedGeneration: 2,
  checkpoint,
  endpoint,
  conditions: [cond(AgentConditions.Available, 'False', since, 'HealthCheckFailing')],
});

const startingStatus = (): DeploymentStatus => ({
  phase: 'Pending',
  reason: 'Starting',
  observedGeneration: 2,
  checkpoint,
  conditions: [cond(AgentConditions.Available, 'Unknown', -10, 'Starting')],
});

function pod(more: Partial<PodView> = {}): PodView {
  return { name: 'a-inference-x-1', ip: '127.200.0.5', current: true, deleting: false, ready: true, restarts: 0, createdAt: iso(-30), ...more };
}

const healthy: HealthView = { checks: 3, consecutiveFailures: 0, lastOk: true, lastCheckedAt: now, lastHealthyAt: now };
const failing = (n: number): HealthView => ({ checks: 10, consecutiveFailures: n, lastOk: false, lastCheckedAt: now, lastHealthyAt: new Date(now.getTime() - 30_000), lastError: 'p: GET /readyz gave no answer within 2000ms' });

function observe(d: Deployment, more: Partial<Observed> = {}): Observed {
  return {
    now,
    deployment: d,
    connected: d.spec.connected ?? false,
    replicas: 1,
    deploymentId: 'a-uid1',
    apiKey: { secretName: 'a-api-key-0', rotation: 0 },
    source: frozen,
    workload: { exists: true, deleting: false },
    pods: [pod()],
    endpoint,
    config,
    ...more,
  };
}

const kinds = (actions: Action[]) => actions.map((a) => a.type).filter((t) => t !== 'event');
const events = (actions: Action[]) => actions.flatMap((a) => (a.type === 'event' ? [a.reason] : []));

describe('agent lifecycle', () => {
  const cases: { name: string; o: Observed; phase: string; reason: string; actions?: string[]; events?: string[] }[] = [
    {
      name: 'a new agent not connected is Undeployed with its checkpoint frozen',
      o: observe(agent(false), { source: { ok: true, checkpoint, fresh: true }, workload: { exists: false, deleting: false }, pods: [] }),
      phase: 'Undeployed',
      reason: 'Disconnected',
      actions: ['unprobe'],
      events: ['CheckpointResolved'],
    },
    {
      name: 'not connected and no source yet: Undeployed, saying why the checkpoint is unknown',
      o: observe(agent(false), { source: { ok: false, reason: 'SourceNotFound', message: 'no exp' }, workload: { exists: false, deleting: false }, pods: [] }),
      phase: 'Undeployed',
      reason: 'SourceNotFound',
    },
    {
      name: 'connected to a source that does not exist waits Pending with SourceNotFound',
      o: observe(agent(true), { source: { ok: false, reason: 'SourceNotFound', message: 'no exp' }, workload: { exists: false, deleting: false }, pods: [] }),
      phase: 'Pending',
      reason: 'SourceNotFound',
      actions: ['unprobe'],
    },
    {
      name: 'connected to an experiment without checkpoints waits Pending with NoCheckpoints',
      o: observe(agent(true), { source: { ok: false, reason: 'NoCheckpoints', message: 'none yet' }, workload: { exists: false, deleting: false }, pods: [] }),
      phase: 'Pending',
      reason: 'NoCheckpoints',
    },
    {
      name: 'a specific step that does not exist waits Pending with CheckpointNotFound',
      o: observe(agent(true), { source: { ok: false, reason: 'CheckpointNotFound', message: 'no step 7' }, workload: { exists: false, deleting: false }, pods: [] }),
      phase: 'Pending',
      reason: 'CheckpointNotFound',
    },
    {
      name: 'connect creates the workload and waits for the pods',
      o: observe(agent(true, { phase: 'Undeployed', checkpoint, observedGeneration: 1 }), { workload: { exists: false, deleting: false }, pods: [] }),
      phase: 'Pending',
      reason: 'Starting',
      actions: ['applyWorkload', 'unprobe'],
      events: ['Connecting'],
    },
    {
      name: 'a pod that cannot be scheduled says so',
      o: observe(agent(true, startingStatus()), { pods: [pod({ ready: false, ip: undefined, unschedulable: '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.' })] }),
      phase: 'Pending',
      reason: 'Unschedulable',
    },
    {
      name: 'an image that cannot be pulled is named',
      o: observe(agent(true, startingStatus()), { pods: [pod({ ready: false, waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } })] }),
      phase: 'Pending',
      reason: 'ImagePullBackOff',
    },
    {
      name: 'ready pods are not enough: it waits for the operator\'s own check',
      o: observe(agent(true, startingStatus())),
      phase: 'Pending',
      reason: 'WaitingForHealthCheck',
      actions: ['applyWorkload', 'probe'],
    },
    {
      name: 'a failing first check keeps it Pending with the error',
      o: observe(agent(true, startingStatus()), { health: failing(1) }),
      phase: 'Pending',
      reason: 'WaitingForHealthCheck',
    },
    {
      name: 'ready pods and a passing check: Deployed',
      o: observe(agent(true, startingStatus()), { health: healthy }),
      phase: 'Deployed',
      reason: 'Serving',
      actions: ['applyWorkload', 'probe'],
      events: ['Deployed'],
    },
    {
      name: 'a server that cannot load its checkpoint fails the agent at once and removes the pods',
      o: observe(agent(true, startingStatus()), {
        pods: [pod({ ready: false, startFailure: { reason: 'CheckpointLoadFailed', message: 'the checkpoint /c/x.json cannot be loaded: Unexpected token' } })],
      }),
      phase: 'Failed',
      reason: 'CheckpointLoadFailed',
      actions: ['deleteWorkload', 'unprobe'],
      events: ['CheckpointLoadFailed'],
    },
    {
      name: 'Deployed with passing checks stays Deployed',
      o: observe(agent(true, deployedStatus()), { health: healthy }),
      phase: 'Deployed',
      reason: 'Serving',
      events: [],
    },
    {
      name: 'Deployed with fewer failures than the threshold stays Deployed',
      o: observe(agent(true, deployedStatus()), { health: failing(2) }),
      phase: 'Deployed',
      reason: 'Serving',
    },
    {
      name: 'Deployed whose checks fail the threshold goes back to Pending',
      o: observe(agent(true, deployedStatus()), { health: failing(3) }),
      phase: 'Pending',
      reason: 'HealthCheckFailing',
      actions: ['applyWorkload', 'probe'],
      events: ['HealthCheckFailing'],
    },
    {
      name: 'Deployed whose pods are not ready (a crash) goes back to Pending',
      o: observe(agent(true, deployedStatus()), { pods: [pod({ ready: false, restarts: 1 })] }),
      phase: 'Pending',
      reason: 'PodsNotReady',
      actions: ['applyWorkload', 'unprobe'],
      events: ['PodsNotReady'],
    },
    {
      name: 'recovering within the timeout stays Pending',
      o: observe(agent(true, recoveringStatus(-60)), { health: failing(9) }),
      phase: 'Pending',
      reason: 'HealthCheckFailing',
      events: [],
    },
    {
      name: 'a check that passes again recovers to Deployed',
      o: observe(agent(true, recoveringStatus(-60)), { health: healthy }),
      phase: 'Deployed',
      reason: 'Serving',
      events: ['Recovered'],
    },
    {
      name: 'not recovered within the unhealthy timeout: Failed (Unhealthy), pods removed',
      o: observe(agent(true, recoveringStatus(-301)), { health: failing(30) }),
      phase: 'Failed',
      reason: 'Unhealthy',
      actions: ['deleteWorkload', 'unprobe'],
    },
    {
      name: 'pods still not ready past the unhealthy timeout: Failed (Unhealthy)',
      o: observe(agent(true, recoveringStatus(-400)), { pods: [pod({ ready: false })] }),
      phase: 'Failed',
      reason: 'Unhealthy',
    },
    {
      name: 'pods not serving within the deploy timeout: Failed (DeployTimeout)',
      o: observe(agent(true, startingStatus()), { pods: [pod({ ready: false, createdAt: iso(-901) })] }),
      phase: 'Failed',
      reason: 'DeployTimeout',
      actions: ['deleteWorkload', 'unprobe'],
    },
    {
      name: 'Failed holds while the spec is unchanged',
      o: observe(agent(true, { ...startingStatus(), phase: 'Failed', reason: 'CheckpointLoadFailed' }), { workload: { exists: false, deleting: false }, pods: [] }),
      phase: 'Failed',
      reason: 'CheckpointLoadFailed',
      actions: ['unprobe'],
    },
    {
      name: 'a changed spec after Failed (disconnect and connect) starts again once the old pods are gone',
      o: observe(agent(true, { ...startingStatus(), phase: 'Failed', reason: 'CheckpointLoadFailed', observedGeneration: 1 }), { workload: { exists: false, deleting: false }, pods: [] }),
      phase: 'Pending',
      reason: 'Starting',
      actions: ['applyWorkload', 'unprobe'],
    },
    {
      name: 'a workload still being deleted is waited for before a new one',
      o: observe(agent(true, { phase: 'Undeployed', checkpoint, observedGeneration: 1 }), { workload: { exists: true, deleting: true }, pods: [pod({ deleting: true })] }),
      phase: 'Pending',
      reason: 'CleaningUp',
      actions: ['unprobe'],
    },
    {
      name: 'disconnect removes the workload and keeps the record',
      o: observe(agent(false, deployedStatus())),
      phase: 'Undeployed',
      reason: 'Disconnected',
      actions: ['deleteWorkload', 'unprobe'],
      events: ['Disconnected'],
    },
    {
      name: 'a new pod template (key rotation) rolls the pods out, not counted as a failure',
      o: observe(agent(true, deployedStatus()), { pods: [pod({ current: false })], health: healthy }),
      phase: 'Pending',
      reason: 'RollingOut',
      actions: ['applyWorkload', 'unprobe'],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = decide(c.o);
      assert.equal(d.status.phase, c.phase, `${d.status.reason}: ${d.status.message}`);
      assert.equal(d.status.reason, c.reason, d.status.message);
      if (c.actions) assert.deepEqual(kinds(d.actions), c.actions);
      if (c.events) assert.deepEqual(events(d.actions), c.events);
    });
  }

  test('the endpoint is published only while it serves or recovers', () => {
    const starting = decide(observe(agent(true, startingStatus())));
    assert.equal(starting.status.endpoint, undefined);
    const deployed = decide(observe(agent(true, startingStatus()), { health: healthy }));
    assert.deepEqual(deployed.status.endpoint, endpoint);
    const recovering = decide(observe(agent(true, deployedStatus()), { health: failing(3) }));
    assert.deepEqual(recovering.status.endpoint, endpoint, 'the URL does not change while it retries');
    const off = decide(observe(agent(false, deployedStatus())));
    assert.equal(off.status.endpoint, undefined);
    assert.equal(off.status.health, undefined);
  });

  test('Available and Healthy follow the phase; the unhealthy clock starts when it leaves Deployed', () => {
    const d = decide(observe(agent(true, deployedStatus()), { health: failing(3) }));
    const available = d.status.conditions!.find((c) => c.type === AgentConditions.Available)!;
    assert.equal(available.status, 'False');
    assert.equal(available.lastTransitionTime, iso(0));
    assert.equal(d.status.conditions!.find((c) => c.type === AgentConditions.Healthy)?.status, 'False');
    assert.equal(d.requeueAfterMs, config.unhealthyTimeoutMs, 'it looks again when the timeout is due');
    const up = decide(observe(agent(true, startingStatus()), { health: healthy }));
    assert.equal(up.status.conditions!.find((c) => c.type === AgentConditions.Available)!.status, 'True');
  });

  test('the frozen checkpoint, key Secret and deployment id are recorded; a frozen id is kept', () => {
    const d = decide(observe(agent(false), { source: { ok: true, checkpoint, fresh: true }, apiKey: { secretName: 'a-api-key-2', rotation: 2 }, pods: [] }));
    assert.deepEqual(d.status.checkpoint, checkpoint);
    assert.equal(d.status.apiKeySecretName, 'a-api-key-2');
    assert.equal(d.status.observedKeyRotation, 2);
    assert.equal(d.status.deploymentId, 'a-uid1');
    const kept = decide(observe(agent(false, { deploymentId: 'first-id' }), { pods: [] }));
    assert.equal(kept.status.deploymentId, 'first-id');
  });

  test('status.health is rewritten only when failures change or it is older than the refresh', () => {
    const stored = { ...deployedStatus(), health: { consecutiveFailures: 0, lastCheckedAt: iso(-30), lastHealthyAt: iso(-30) } };
    const quiet = decide(observe(agent(true, stored), { health: healthy }));
    assert.deepEqual(quiet.status.health, stored.health, 'a check 30 s later changes nothing');
    const old = { ...stored, health: { ...stored.health, lastCheckedAt: iso(-61) } };
    assert.equal(decide(observe(agent(true, old), { health: healthy })).status.health?.lastCheckedAt, iso(0));
    assert.equal(decide(observe(agent(true, stored), { health: failing(1) })).status.health?.consecutiveFailures, 1);
  });

  test('the Exposed condition follows the route, and disappears without one', () => {
    const withRoute = decide(observe(agent(true, deployedStatus()), { health: healthy, exposure: { status: 'False', reason: 'GatewayAPINotInstalled', message: 'install it' } }));
    assert.equal(withRoute.status.conditions!.find((c) => c.type === AgentConditions.Exposed)?.reason, 'GatewayAPINotInstalled');
    assert.equal(withRoute.status.phase, 'Deployed', 'a missing route does not fail the agent');
    const without = decide(observe(agent(true, withRoute.status), { health: healthy }));
    assert.equal(without.status.conditions!.find((c) => c.type === AgentConditions.Exposed), undefined);
  });

  test('a deciding step is idempotent: the same observation twice writes the same status', () => {
    const first = decide(observe(agent(true, startingStatus()), { health: healthy }));
    const second = decide(observe(agent(true, first.status), { health: healthy }));
    assert.deepEqual(second.status, first.status);
    assert.deepEqual(events(second.actions), []);
  });
});
