import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig, type V1LeaseSpec } from '@kubernetes/client-node';
import { LeaderElector, decide, nextSpec, releasedSpec, renewAttemptTimeoutMs, type Decision } from './leader.ts';

const lease = (holderIdentity: string, more: Partial<V1LeaseSpec> = {}): V1LeaseSpec => ({
  holderIdentity,
  leaseDurationSeconds: 15,
  leaseTransitions: 3,
  ...more,
});

describe('decide', () => {
  const me = 'pod-a';
  const cases: Record<string, { spec?: V1LeaseSpec; leading?: boolean; observedForMs?: number; want: Decision }> = {
    'no Lease yet: create it': { want: { act: 'create' } },
    'a lease I hold while leading: renew': { spec: lease(me), leading: true, want: { act: 'write', via: 'renewed' } },
    'a lease in my name from before a restart: take it back': { spec: lease(me), want: { act: 'write', via: 'held' } },
    'a released lease: take it at once': { spec: lease(''), observedForMs: 0, want: { act: 'write', via: 'released' } },
    'a lease with no holder field: released': { spec: { leaseDurationSeconds: 1 }, want: { act: 'write', via: 'released' } },
    'another holder, record seen changing just now: wait': {
      spec: lease('pod-b'),
      observedForMs: 0,
      want: { act: 'wait', holder: 'pod-b' },
    },
    'another holder, unchanged for less than its duration: wait': {
      spec: lease('pod-b'),
      observedForMs: 14_999,
      want: { act: 'wait', holder: 'pod-b' },
    },
    'another holder, unchanged for its whole duration: expired': {
      spec: lease('pod-b'),
      observedForMs: 15_000,
      want: { act: 'write', via: 'expired' },
    },
    "the holder's own duration counts, not ours": {
      spec: lease('pod-b', { leaseDurationSeconds: 60 }),
      observedForMs: 30_000,
      want: { act: 'wait', holder: 'pod-b' },
    },
    'a record without a duration falls back to ours': {
      spec: lease('pod-b', { leaseDurationSeconds: undefined }),
      observedForMs: 20_000,
      want: { act: 'write', via: 'expired' },
    },
  };
  for (const [name, c] of Object.entries(cases)) {
    test(name, () => {
      const got = decide(c.spec, {
        identity: me,
        leading: c.leading ?? false,
        observedForMs: c.observedForMs ?? 0,
        defaultLeaseDurationMs: 15_000,
      });
      assert.deepEqual(got, c.want);
    });
  }
});

describe('nextSpec', () => {
  const now = new Date('2026-11-23T04:00:00.123Z');
  const acquired = '2026-11-23T03:00:00.000000Z';
  const old = lease('pod-b', { acquireTime: acquired as never, renewTime: acquired as never, leaseTransitions: 3 });

  const cases: Record<string, { old?: V1LeaseSpec; via: Parameters<typeof nextSpec>[1]['via']; transitions: number; keepsAcquire: boolean }> = {
    'create starts counting at zero': { via: 'created', transitions: 0, keepsAcquire: false },
    'renewing keeps acquireTime and transitions': { old: lease('pod-a', { acquireTime: acquired as never, leaseTransitions: 3 }), via: 'renewed', transitions: 3, keepsAcquire: true },
    'taking an expired lease is a transition': { old, via: 'expired', transitions: 4, keepsAcquire: false },
    'taking a released lease is a transition': { old: releasedSpec(old, now), via: 'released', transitions: 4, keepsAcquire: false },
  };
  for (const [name, c] of Object.entries(cases)) {
    test(name, () => {
      const spec = nextSpec(c.old, { identity: 'pod-a', via: c.via, leaseDurationSeconds: 15, now });
      assert.equal(spec.holderIdentity, 'pod-a');
      assert.equal(spec.leaseDurationSeconds, 15);
      assert.equal(spec.leaseTransitions, c.transitions);
      assert.equal(JSON.stringify(spec.renewTime), '"2026-11-23T04:00:00.123000Z"', 'MicroTime: six fractional digits');
      assert.equal(JSON.stringify(spec.acquireTime), JSON.stringify(c.keepsAcquire ? acquired : spec.renewTime));
    });
  }

  test('a released lease has no holder, a 1 s duration and the old transition count', () => {
    const spec = releasedSpec(old, now);
    assert.equal(spec.holderIdentity, '');
    assert.equal(spec.leaseDurationSeconds, 1);
    assert.equal(spec.leaseTransitions, 3);
  });
});

describe('LeaderElector options', () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const base = { kc, namespace: 'ns', name: 'lease', identity: 'a' };
  const cases: Record<string, { opts: Partial<ConstructorParameters<typeof LeaderElector>[0]>; error: RegExp }> = {
    'renew deadline must end before the lease does': { opts: { leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }, error: /leaseDurationMs must be greater/ },
    'a retry must fit in the renew deadline': { opts: { renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }, error: /renewDeadlineMs must be greater/ },
    'the lease duration is whole seconds': { opts: { leaseDurationMs: 15_500 }, error: /whole seconds/ },
    'an identity is required': { opts: { identity: '' }, error: /identity/ },
  };
  for (const [name, c] of Object.entries(cases)) {
    test(name, () => assert.throws(() => new LeaderElector({ ...base, ...c.opts }), c.error));
  }

  test('the client-go defaults are accepted', () => {
    assert.equal(new LeaderElector(base).isLeader(), false);
  });
});

test('a renewal waits at most half the renew deadline, so a hung one leaves time for a second try', () => {
  assert.equal(renewAttemptTimeoutMs(10_000, 10_000), 5_000, 'right after a renewal: half the deadline, not all of it');
  assert.equal(renewAttemptTimeoutMs(3_000, 10_000), 3_000, 'never past what is left of the deadline');
  assert.equal(renewAttemptTimeoutMs(-5, 10_000), 1, 'always a positive timeout');
});
