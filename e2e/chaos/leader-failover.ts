// Two operator replicas under load; the leader is frozen (SIGSTOP, as a long GC pause or a hung node would) in
// the middle of it. The standby must take over once the lease expires and carry the fleet to its end; the old
// leader, thawed, must step down, and the API server's audit log must show no write of the old leader landing
// after the new one took the lease. Each replica has its own client certificate, so the log tells them apart.
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { LocalCluster } from '../cluster/control-plane.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { emptyResult, type ChaosScenario } from './scenario.ts';
import { readAuditWrites, replicaKubeconfig, writeAuditPolicy } from './identities.ts';
import { prepareFleet, Workload } from './workload.ts';

const leaseName = 'arena-operator';

export const leaderFailover: ChaosScenario = {
  name: 'leader-failover',
  description: 'two replicas; the leader frozen mid-load: takeover time, and no write of the old leader after the new one leads',
  async run(o) {
    const result = emptyResult();
    const count = Math.max(10, Math.round(300 * o.scale));
    const auditLog = join(o.dir, 'audit.log');
    const cluster = await LocalCluster.start({
      name: `chaos-failover-${o.seed}`,
      extraArgs: { 'kube-apiserver': [`--audit-policy-file=${writeAuditPolicy(o.dir)}`, `--audit-log-path=${auditLog}`, '--audit-log-format=json'] },
    });
    const procs: OperatorProcess[] = [];
    try {
      const { kc } = await prepareFleet(cluster, { nodes: Math.ceil(count / 8) + 2 });
      const leases = kc.makeApiClient(CoordinationV1Api);
      const holder = async () => (await leases.readNamespacedLease({ namespace: 'default', name: leaseName }).catch(() => undefined))?.spec;
      const start = async (id: string) => {
        const p = await startOperatorProcess(cluster, { identity: id, extraEnv: { KUBECONFIG: await replicaKubeconfig(cluster, `arena-op-${id}`) } });
        procs.push(p);
        return p;
      };
      const a = await start('a');
      const b = await start('b');
      const first = (await holder())?.holderIdentity;
      const [leader, standby] = first === 'a' ? [a, b] : [b, a];
      if (first !== 'a' && first !== 'b') throw new Error(`no replica holds the lease (holder ${first})`);
      let current = leader;
      const work = new Workload({ kc, namespace: 'chaos', resourceClass: 'solo', count, seed: o.seed, operatorUrl: () => current.url });
      const creating = work.create();

      // Freeze the leader while the fleet is being created and admitted.
      await sleep(1500);
      const frozenAt = Date.now();
      process.kill(leader.child.pid!, 'SIGSTOP');
      let spec = await holder();
      while (spec?.holderIdentity !== standby.identity) {
        if (Date.now() - frozenAt > 60_000) throw new Error(`the standby did not take the lease in 60 s (holder ${spec?.holderIdentity})`);
        await sleep(100);
        spec = await holder();
      }
      const takeoverMs = Date.now() - frozenAt;
      const acquiredAt = Date.parse(String(spec.acquireTime ?? spec.renewTime));
      current = standby;
      o.log(`standby ${standby.identity} leads ${takeoverMs} ms after the freeze`);
      // The old leader thaws with its queues full, and must step down rather than act on them.
      await sleep(2000);
      process.kill(leader.child.pid!, 'SIGCONT');
      await creating;

      const deadline = Date.now() + 900_000 * Math.max(0.3, o.scale);
      let done = 0;
      let lastLog = 0;
      while (Date.now() < deadline) {
        const s = await work.step().catch(() => ({ done, phases: {} }));
        done = s.done;
        if (Date.now() - lastLog > 10_000) {
          o.log(`${done}/${count} at their end, phases ${JSON.stringify(s.phases)}`);
          lastLog = Date.now();
        }
        if (done === count) break;
        await sleep(500);
      }
      await sleep(5000);
      const audit = await work.audit();
      work.stop();
      Object.assign(result, { lost: audit.lost, duplicates: audit.duplicates, leaked: audit.leaked });
      result.failures.push(...audit.failures.slice(0, 20));

      const writes = readAuditWrites(auditLog);
      const oldUser = `arena-op-${leader.identity}`;
      const mine = writes.filter((w) => w.user === oldUser);
      const late = mine.filter((w) => w.receivedAt > acquiredAt);
      const landedLate = late.filter((w) => w.code >= 200 && w.code < 300);
      for (const w of landedLate.slice(0, 10)) result.failures.push(`the old leader's ${w.verb} ${w.uri} landed (${w.code}) after the new leader took the lease`);
      const lease = await holder();
      if (lease?.holderIdentity !== standby.identity) result.failures.push(`the lease went back to ${lease?.holderIdentity}`);
      const oldExited = leader.child.exitCode !== null || leader.child.signalCode !== null;
      result.figures = {
        experiments: count,
        takeoverMs,
        oldLeaderWrites: mine.length,
        oldLeaderWritesAfterTakeover: late.length,
        oldLeaderWritesLandedAfterTakeover: landedLate.length,
        newLeaderWrites: writes.filter((w) => w.user === `arena-op-${standby.identity}`).length,
        oldLeaderExited: oldExited ? 'yes' : 'no',
        leaseTransitions: lease?.leaseTransitions ?? 0,
        atTheirEnd: done,
      };
      return result;
    } finally {
      for (const p of procs) {
        try {
          process.kill(p.child.pid!, 'SIGCONT');
        } catch {
          // gone already
        }
        await p.kill('SIGKILL').catch(() => undefined);
      }
      await cluster.stop();
    }
  },
};
