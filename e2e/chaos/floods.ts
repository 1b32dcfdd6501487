// A report flood, a webhook flood and a status-API flood at once, against the leader of two replicas. The leader
// must keep its lease throughout (renewals on time, no handover to the standby), answer each flood with work or
// a refusal (429), never a crash, and still admit an experiment right after.
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { LocalCluster } from '../cluster/control-plane.ts';
import { freePorts } from '../cluster/net.ts';
import { FakeRuntime, experiment } from '../support/fixtures.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { GROUP, VERSION } from '../../operator/api/v1alpha1/common.ts';
import { emptyResult, type ChaosScenario } from './scenario.ts';
import { prepareFleet } from './workload.ts';

const token = 'flood-status-token';

export const floods: ChaosScenario = {
  name: 'floods',
  description: 'report, webhook and status-API floods at once: the leader keeps its lease and still admits work',
  async run(o) {
    const result = emptyResult();
    const floodMs = Math.max(10_000, Math.round(30_000 * o.scale));
    const running = Math.max(4, Math.round(20 * o.scale));
    const cluster = await LocalCluster.start({ name: `chaos-floods-${o.seed}` });
    const procs: OperatorProcess[] = [];
    try {
      const { kc, arena } = await prepareFleet(cluster, { nodes: Math.ceil(running / 8) + 1 });
      const core = kc.makeApiClient(CoreV1Api);
      const custom = kc.makeApiClient(CustomObjectsApi);
      const leases = kc.makeApiClient(CoordinationV1Api);
      await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'arena-status-api-tokens' }, stringData: { platform: token } } });
      const [webhookPort] = await freePorts(1);
      // The leader serves the admission webhook the API server calls for every Experiment write.
      const leader = await startOperatorProcess(cluster, {
        identity: 'a',
        extraArgs: [`--webhook-url=https://127.0.0.1:${webhookPort}`, `--webhook-port=${webhookPort}`, '--webhook-namespace=default'],
      });
      procs.push(leader);
      procs.push(await startOperatorProcess(cluster, { identity: 'b' }));
      const lease = async () => (await leases.readNamespacedLease({ namespace: 'default', name: 'arena-operator' })).spec!;
      const before = await lease();
      if (before.holderIdentity !== 'a') throw new Error(`replica a should lead, the lease names ${before.holderIdentity}`);

      await arena.namespace('flood');
      for (let i = 0; i < running; i++) await arena.apply(experiment('flood', `run-${i}`, 'solo'));
      const runtimes: FakeRuntime[] = [];
      for (let i = 0; i < running; i++) {
        const e = await arena.waitPhase('flood', `run-${i}`, 'Running', 120_000);
        runtimes.push(new FakeRuntime(leader.url, e, await arena.runToken('flood', e)));
      }

      const counts = { reports: new Map<number, number>(), reviews: new Map<string, number>(), status: new Map<number, number>() };
      const bump = <K>(m: Map<K, number>, k: K) => m.set(k, (m.get(k) ?? 0) + 1);
      const end = Date.now() + floodMs;
      const loops: Promise<void>[] = [];
      let step = 0;
      // Reports: every worker sends progress as fast as its connection allows, four at a time.
      for (const rt of runtimes) {
        for (let k = 0; k < 4; k++) {
          loops.push(
            (async () => {
              while (Date.now() < end) bump(counts.reports, (await rt.progress(++step, 1_000_000).catch(() => ({ status: 0 }))).status);
            })(),
          );
        }
      }
      // Webhook reviews: server-side dry-run creates, each one a validating and a mutating review.
      for (let k = 0; k < 6; k++) {
        loops.push(
          (async () => {
            let n = 0;
            while (Date.now() < end) {
              const body = experiment('flood', `dry-${k}-${n++}`, 'solo');
              try {
                await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'experiments', namespace: 'flood', body, dryRun: 'All' });
                bump(counts.reviews, 'allowed');
              } catch (err) {
                bump(counts.reviews, /denied|invalid/i.test(String((err as Error).message)) ? 'refused' : 'error');
              }
            }
          })(),
        );
      }
      // Status API: the platform's poll, without its pause.
      for (let k = 0; k < 6; k++) {
        loops.push(
          (async () => {
            while (Date.now() < end) {
              const r = await fetch(`${leader.url}/api/v1/cluster`, { headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
              await r?.arrayBuffer().catch(() => undefined);
              bump(counts.status, r?.status ?? 0);
            }
          })(),
        );
      }
      // The lease, seen from outside: every renewal, and who holds it.
      const renewals: number[] = [];
      const holders = new Set<string>();
      const monitor = (async () => {
        let last = '';
        while (Date.now() < end + 1000) {
          const s = await lease().catch(() => undefined);
          if (s) {
            holders.add(String(s.holderIdentity));
            const r = String(s.renewTime);
            if (r !== last) {
              renewals.push(Date.now());
              last = r;
            }
          }
          await sleep(100);
        }
      })();
      await Promise.all(loops);
      await monitor;
      const after = await lease();
      const gaps = renewals.slice(1).map((t, i) => t - renewals[i]!);
      const maxGapMs = gaps.length ? Math.max(...gaps) : floodMs;

      // Still working: a new experiment is admitted after the floods.
      const t = Date.now();
      await arena.apply(experiment('flood', 'after', 'solo'));
      await arena.waitPhase('flood', 'after', 'Running', 60_000).catch((err: Error) => result.failures.push(`after the floods: ${err.message}`));
      const admitAfterMs = Date.now() - t;

      if (after.holderIdentity !== 'a' || holders.size !== 1) result.failures.push(`the lease changed hands: holders seen ${[...holders].join(', ')}`);
      if ((after.leaseTransitions ?? 0) !== (before.leaseTransitions ?? 0)) result.failures.push(`lease transitions ${before.leaseTransitions} → ${after.leaseTransitions}`);
      if (maxGapMs >= 3000) result.failures.push(`a renewal came ${maxGapMs} ms after the one before, at or past the 3 s lease`);
      const errors = (counts.reports.get(0) ?? 0) + (counts.status.get(0) ?? 0) + (counts.reviews.get('error') ?? 0);
      if (errors > 0) result.failures.push(`${errors} requests got no answer or an error other than a refusal`);
      if (leader.child.exitCode !== null) result.failures.push('the leader exited');
      const sum = (m: Map<unknown, number>) => [...m.values()].reduce((a, b) => a + b, 0);
      result.figures = {
        floodMs,
        reports: sum(counts.reports),
        reportsAccepted: counts.reports.get(200) ?? 0,
        reportsThrottled: counts.reports.get(429) ?? 0,
        reviews: sum(counts.reviews),
        statusRequests: sum(counts.status),
        statusOk: counts.status.get(200) ?? 0,
        statusThrottled: counts.status.get(429) ?? 0,
        renewals: renewals.length,
        maxRenewGapMs: maxGapMs,
        admitAfterMs,
      };
      return result;
    } finally {
      for (const p of procs) await p.kill('SIGKILL').catch(() => undefined);
      await cluster.stop();
    }
  },
};
