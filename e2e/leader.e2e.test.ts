// Leader election on a real Lease: one leader among candidates, a fast handover when the leader shuts down, and a
// takeover after expiry when the leader is a frozen process that can neither renew nor release.
//
// The frozen leader is this same file run as a child process (LEADER_CHILD set), so SIGSTOP freezes a real
// elector in another process, as a hung or partitioned replica would be.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CoordinationV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1LeaseSpec } from '@kubernetes/client-node';
import { FencedError, RateLimitedKubeConfig } from '../operator/kube/ratelimit.ts';
import { LocalCluster, repoRoot } from './cluster/control-plane.ts';
import { waitFor } from './cluster/wait.ts';
import { LeaderElector, type LeaderElectionEvent, type LeaderElectorOptions, type StoppedReason } from '../operator/kube/leader.ts';
import { createLogger } from '../operator/observability/log.ts';

const logger = createLogger({ silent: !process.env.LOG_LEVEL });
// The short durations the brief asks for: a lease of 3 s, renewed within 2 s, retried every 0.5 s.
const timing = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };
const namespace = 'default';

/** A candidate whose every callback lands in `events`, with a way to await one. */
class Candidate {
  readonly events: { type: string; at: number; detail?: string }[] = [];
  readonly elector: LeaderElector;
  readonly done: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(kc: KubeConfig, name: string, readonly identity: string) {
    const metrics = (e: LeaderElectionEvent) => {
      if (e.type === 'started') this.push('via', e.via);
    };
    this.elector = new LeaderElector({ kc, namespace, name, identity, logger, onMetrics: metrics, ...timing });
    this.done = this.elector.run({
      onStartedLeading: () => this.push('started'),
      onStoppedLeading: (reason) => this.push('stopped', reason),
      onNewLeader: (who) => this.push('leader', who),
    });
  }

  private push(type: string, detail?: string): void {
    this.events.push({ type, at: performance.now(), detail });
    for (const w of this.waiters.splice(0)) w();
  }

  find(type: string, detail?: string) {
    return this.events.find((e) => e.type === type && (detail === undefined || e.detail === detail));
  }

  async next(type: string, detail?: string, timeoutMs = 30_000): Promise<{ at: number; detail?: string }> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const e = this.find(type, detail);
      if (e) return e;
      if (performance.now() > end) throw new Error(`${this.identity}: no ${type} ${detail ?? ''}; saw ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200).unref();
      });
    }
  }
}

async function leaseSpec(kc: KubeConfig, name: string): Promise<V1LeaseSpec> {
  return (await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace, name })).spec!;
}

if (process.env.LEADER_CHILD) {
  // Child mode: one candidate that reports on stdout, for the parent to freeze.
  const kc = new KubeConfig();
  kc.loadFromFile(process.env.KUBECONFIG!);
  const opts: LeaderElectorOptions = { kc, namespace, name: process.env.LEADER_CHILD, identity: 'frozen', logger, ...timing };
  const say = (event: string, detail?: string) => {
    process.stdout.write(`${JSON.stringify({ event, detail })}\n`);
  };
  const elector = new LeaderElector(opts);
  let led = false;
  void elector.run({
    onStartedLeading: () => {
      led = true;
      say('started');
    },
    onStoppedLeading: (reason: StoppedReason) => say('stopped', reason),
  });
  // As the operator wires it (operator.ts): every write of this client passes the leader's fence. A writer keeps
  // patching a ConfigMap, so when the process is frozen it has writes due that fire the moment it thaws.
  const fencedCore = new RateLimitedKubeConfig(kc, { mayWrite: () => elector.holdsLease() }).makeApiClient(CoreV1Api);
  const cm = `writes-${process.env.LEADER_CHILD}`;
  let seq = 0;
  let fenced = 0;
  // Once it has led it keeps writing, as controllers with work queued do: only the fence stands in the way.
  const write = async () => {
    if (!led) return;
    seq++;
    try {
      await fencedCore.patchNamespacedConfigMap(
        { namespace, name: cm, body: { data: { seq: String(seq), writer: 'frozen' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (err instanceof FencedError) say('fenced', String(++fenced));
      else say('write-error', (err as Error).message);
    }
  };
  setInterval(() => void write(), 50);
} else {
  describe('leader election on a real Lease', () => {
    let cluster: LocalCluster;
    let kc: KubeConfig;
    const candidates: Candidate[] = [];
    let child: ChildProcess | undefined;

    before(async () => {
      cluster = await LocalCluster.start({ without: ['kube-controller-manager', 'kube-scheduler', 'kwok'] });
      kc = cluster.kubeConfig();
    });
    after(async () => {
      child?.kill('SIGKILL');
      await Promise.all(candidates.map((c) => c.elector.stop()));
      await cluster?.stop();
    });

    const candidate = (name: string, identity: string) => {
      const c = new Candidate(kc, name, identity);
      candidates.push(c);
      return c;
    };

    test('of two candidates exactly one leads; stopping it hands over at once, well before the lease would expire', async () => {
      const a = candidate('graceful', 'a');
      await a.next('started');
      const b = candidate('graceful', 'b');
      await b.next('leader', 'a'); // b has read the lease and stands by
      assert.equal(a.elector.isLeader(), true);
      assert.equal(b.elector.isLeader(), false);
      const before = await leaseSpec(kc, 'graceful');
      assert.equal(before.holderIdentity, 'a');
      assert.equal(before.leaseDurationSeconds, 3);

      const stoppedAt = performance.now();
      await a.elector.stop();
      assert.equal(a.find('stopped')?.detail, 'released');
      assert.equal(a.elector.isLeader(), false);
      const started = await b.next('started');
      assert.equal(b.find('via')?.detail, 'released');
      const handoverMs = started.at - stoppedAt;
      assert.ok(handoverMs < timing.leaseDurationMs, `handover took ${Math.round(handoverMs)} ms`);

      const after = await leaseSpec(kc, 'graceful');
      assert.equal(after.holderIdentity, 'b');
      assert.equal(after.leaseTransitions, (before.leaseTransitions ?? 0) + 1);
    });

    test('a frozen leader loses the lease once it expires, steps down when it thaws, and none of its due writes land', async () => {
      const core = kc.makeApiClient(CoreV1Api);
      await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'writes-frozen' }, data: { seq: '0' } } });
      child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
        cwd: repoRoot,
        env: { ...process.env, LEADER_CHILD: 'frozen', KUBECONFIG: cluster.kubeconfigPath },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const said: { event: string; detail?: string }[] = [];
      createInterface(child.stdout!).on('line', (line) => said.push(JSON.parse(line) as { event: string; detail?: string }));
      await waitFor(() => said.some((s) => s.event === 'started'), { timeoutMs: 60_000, what: 'the child to lead' });
      const standby = candidate('frozen', 'standby');
      await standby.next('leader', 'frozen');
      const before = await leaseSpec(kc, 'frozen');

      await waitFor(async () => Number((await core.readNamespacedConfigMap({ namespace, name: 'writes-frozen' })).data?.seq) > 0, {
        timeoutMs: 10_000,
        what: 'the leading child to write',
      });
      process.kill(child.pid!, 'SIGSTOP');
      const frozenAt = performance.now();
      let atTakeover = '';
      try {
        const started = await standby.next('started');
        atTakeover = (await core.readNamespacedConfigMap({ namespace, name: 'writes-frozen' })).metadata!.resourceVersion!;
        assert.equal(standby.find('via')?.detail, 'expired');
        // It waited out the lease, by its own clock, from the last renewal it saw (at most a retry or so before the
        // freeze), instead of taking over as soon as renewals stopped.
        assert.ok(started.at - frozenAt >= timing.leaseDurationMs - 2 * timing.retryPeriodMs, `took over after ${Math.round(started.at - frozenAt)} ms`);
        const after = await leaseSpec(kc, 'frozen');
        assert.equal(after.holderIdentity, 'standby');
        assert.equal(after.leaseTransitions, (before.leaseTransitions ?? 0) + 1);
      } finally {
        process.kill(child.pid!, 'SIGCONT');
      }
      await waitFor(() => said.some((s) => s.event === 'stopped'), { timeoutMs: 30_000, what: 'the thawed child to step down' });
      const stopped = said.find((s) => s.event === 'stopped')!;
      assert.ok(stopped.detail === 'deadline' || stopped.detail === 'superseded', `stopped: ${stopped.detail}`);
      assert.equal((await leaseSpec(kc, 'frozen')).holderIdentity, 'standby', 'the thawed leader did not take it back');
      // The writes it had due when it thawed were refused in the process, never sent: the ConfigMap is as it was
      // when the new leader took over.
      await new Promise((resolve) => setTimeout(resolve, 500)); // ten more of its writes come due
      const cm = await core.readNamespacedConfigMap({ namespace, name: 'writes-frozen' });
      assert.ok(Number(cm.data?.seq) > 0, 'the child wrote while it led');
      assert.equal(cm.metadata!.resourceVersion, atTakeover, `a write of the old leader landed after the new one led: ${JSON.stringify(cm.data)}`);
      await waitFor(() => said.some((s) => s.event === 'fenced'), { timeoutMs: 10_000, what: 'the thawed child to have a write refused by its fence' });
      assert.deepEqual(said.filter((s) => s.event === 'write-error'), []);
    });
  });
}

