import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { podPhase, podStatus, shouldRestart, statusUpToDate, type ContainerView, type PodView } from './pod-status.ts';
import type { ContainerState, Pod } from './kube-types.ts';

const running: ContainerState = { running: { startedAt: '2026-01-01T00:00:00Z' } };
const exited = (exitCode: number): ContainerState => ({
  terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:00:05Z' },
});
const waiting = (reason: string): ContainerState => ({ waiting: { reason } });

function container(name: string, state: ContainerState, more: Partial<ContainerView> = {}): ContainerView {
  return { name, image: 'node:24', imageID: 'x', restartCount: 0, state, ready: Boolean(state.running), started: Boolean(state.running), ...more };
}

function pod(restartPolicy: string, more: Partial<NonNullable<Pod['spec']>> = {}, conditions: NonNullable<Pod['status']>['conditions'] = []): Pod {
  return { metadata: { name: 'p', namespace: 'ns' }, spec: { restartPolicy, containers: [{ name: 'a' }], ...more }, status: { conditions } };
}

function view(containers: ContainerView[], more: Partial<PodView> = {}): PodView {
  return { hostIP: '127.0.0.1', podIP: '127.200.0.1', sandboxReady: true, init: [], containers, initDone: true, deleting: false, ...more };
}

describe('podPhase', () => {
  const cases: Record<string, { policy: string; view: PodView; want: string }> = {
    'not started yet': { policy: 'Never', view: view([container('a', waiting('ContainerCreating'))]), want: 'Pending' },
    'running': { policy: 'Never', view: view([container('a', running)]), want: 'Running' },
    'Never, exit 0': { policy: 'Never', view: view([container('a', exited(0))]), want: 'Succeeded' },
    'Never, exit 3': { policy: 'Never', view: view([container('a', exited(3))]), want: 'Failed' },
    'OnFailure, exit 1 (will restart)': { policy: 'OnFailure', view: view([container('a', exited(1))]), want: 'Running' },
    'OnFailure, exit 0': { policy: 'OnFailure', view: view([container('a', exited(0))]), want: 'Succeeded' },
    'Always, exit 0 (will restart)': { policy: 'Always', view: view([container('a', exited(0))]), want: 'Running' },
    'in crash-loop backoff': {
      policy: 'Always',
      view: view([container('a', waiting('CrashLoopBackOff'), { lastState: exited(1) })]),
      want: 'Running',
    },
    'one done, one running': { policy: 'Never', view: view([container('a', exited(0)), container('b', running)]), want: 'Running' },
    'deleted, Always, exited on SIGTERM with 0': { policy: 'Always', view: view([container('a', exited(0))], { deleting: true }), want: 'Succeeded' },
    'deleted, Always, killed': { policy: 'Always', view: view([container('a', exited(137))], { deleting: true }), want: 'Failed' },
    'deleted before it ever ran': { policy: 'Never', view: view([container('a', waiting('ErrImageNeverPull'))], { deleting: true }), want: 'Failed' },
    'rejected by the node': { policy: 'Always', view: view([container('a', waiting('ContainerCreating'))], { rejected: { reason: 'OutOfnvidia.com/gpu', message: 'm' } }), want: 'Failed' },
    'init container running': {
      policy: 'Never',
      view: view([container('a', waiting('PodInitializing'))], { init: [container('i', running)], initDone: false }),
      want: 'Pending',
    },
    'init container failed, Never': {
      policy: 'Never',
      view: view([container('a', waiting('PodInitializing'))], { init: [container('i', exited(2))], initDone: false }),
      want: 'Failed',
    },
    'init container failed, OnFailure (will retry)': {
      policy: 'OnFailure',
      view: view([container('a', waiting('PodInitializing'))], { init: [container('i', exited(2))], initDone: false }),
      want: 'Pending',
    },
  };
  for (const [name, c] of Object.entries(cases)) {
    test(name, () => assert.equal(podPhase(pod(c.policy), c.view), c.want));
  }
});

describe('shouldRestart', () => {
  const cases: [string, number, boolean][] = [
    ['Always', 0, true],
    ['Always', 1, true],
    ['OnFailure', 0, false],
    ['OnFailure', 1, true],
    ['Never', 1, false],
  ];
  for (const [policy, code, want] of cases) test(`${policy}, exit ${code}`, () => assert.equal(shouldRestart(policy, code), want));
});

describe('podStatus', () => {
  const now = '2026-01-01T00:01:00Z';
  const cond = (s: ReturnType<typeof podStatus>, type: string) => s.conditions?.find((c) => c.type === type);

  test('a running, ready pod is Ready with its IPs', () => {
    const s = podStatus(pod('Always'), view([container('a', running)]), now);
    assert.equal(s.phase, 'Running');
    assert.equal(cond(s, 'Ready')?.status, 'True');
    assert.equal(cond(s, 'ContainersReady')?.status, 'True');
    assert.equal(cond(s, 'Initialized')?.status, 'True');
    assert.equal(cond(s, 'PodReadyToStartContainers')?.status, 'True');
    assert.equal(cond(s, 'PodScheduled')?.status, 'True');
    assert.equal(s.podIP, '127.200.0.1');
    assert.deepEqual(s.podIPs, [{ ip: '127.200.0.1' }]);
    assert.deepEqual(s.hostIPs, [{ ip: '127.0.0.1' }]);
  });

  test('an unready container names itself in the Ready condition', () => {
    const s = podStatus(pod('Always'), view([container('a', running, { ready: false })]), now);
    assert.equal(cond(s, 'Ready')?.status, 'False');
    assert.equal(cond(s, 'Ready')?.reason, 'ContainersNotReady');
    assert.equal(cond(s, 'Ready')?.message, 'containers with unready status: [a]');
  });

  test('a completed pod is not Ready, with reason PodCompleted', () => {
    const s = podStatus(pod('Never'), view([container('a', exited(0))]), now);
    assert.equal(cond(s, 'Ready')?.reason, 'PodCompleted');
  });

  test('a readiness gate that is not True keeps the pod unready', () => {
    const p = pod('Always', { readinessGates: [{ conditionType: 'example.com/lb' }] }, [{ type: 'example.com/lb', status: 'False' }]);
    const s = podStatus(p, view([container('a', running)]), now);
    assert.equal(cond(s, 'ContainersReady')?.status, 'True');
    assert.equal(cond(s, 'Ready')?.reason, 'ReadinessGatesNotReady');
    assert.ok(cond(s, 'example.com/lb'), 'conditions of others are kept');
  });

  test('keeps lastTransitionTime while a condition keeps its status', () => {
    const p = pod('Always', {}, [{ type: 'Ready', status: 'True', lastTransitionTime: '2025-12-31T00:00:00Z' }]);
    assert.equal(cond(podStatus(p, view([container('a', running)]), now), 'Ready')?.lastTransitionTime, '2025-12-31T00:00:00Z');
    assert.equal(cond(podStatus(p, view([container('a', running, { ready: false })]), now), 'Ready')?.lastTransitionTime, now);
  });

  test('a rejected pod carries the reason and message', () => {
    const s = podStatus(pod('Always'), view([container('a', waiting('ContainerCreating'))], { rejected: { reason: 'OutOfnvidia.com/gpu', message: 'too many' } }), now);
    assert.equal(s.phase, 'Failed');
    assert.equal(s.reason, 'OutOfnvidia.com/gpu');
    assert.equal(s.message, 'too many');
  });
});

describe('statusUpToDate', () => {
  const desired = podStatus(pod('Always'), view([container('a', running)]), '2026-01-01T00:00:00Z');
  test('equal once the server dropped empty values', () => {
    const fromServer = JSON.parse(JSON.stringify(desired)) as typeof desired;
    fromServer.containerStatuses![0]!.lastState = undefined;
    assert.equal(statusUpToDate({ ...fromServer, qosClass: 'BestEffort' }, desired), true);
  });
  test('not equal when a field differs', () => {
    assert.equal(statusUpToDate({ ...desired, phase: 'Pending' }, desired), false);
    assert.equal(statusUpToDate(undefined, desired), false);
  });
});
