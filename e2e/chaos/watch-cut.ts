// The operator's connections to the API server cut silently in the middle of a fleet's run: its watches, its
// kept-alive request connections and its lease client all go through a loopback relay, which at a seeded moment
// drops every open connection without a FIN or RST (and, for a few seconds, every new one too). Nothing tells the
// operator: it has to notice by itself (request deadlines, the watch's inactivity limit), dial afresh and catch
// up. An experiment created right after the cut must be admitted, the leader should keep its lease, and every
// experiment of the fleet must still end where its plan says.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { LocalCluster } from '../cluster/control-plane.ts';
import { experiment } from '../support/fixtures.ts';
import { startOperatorProcess } from '../support/operator-process.ts';
import { emptyResult, seeded, type ChaosScenario } from './scenario.ts';
import { TcpRelay } from './relay.ts';
import { SupervisedOperator, Workload, drive, prepareFleet, settleFleet } from './workload.ts';

/** New connections also go nowhere for this long after the cut, as while a route converges. */
const blackoutMs = 3000;

/** A copy of the cluster's kubeconfig whose server is the relay. */
function relayedKubeconfig(cluster: LocalCluster, relay: TcpRelay): string {
  const file = join(cluster.dir, 'operator-via-relay.kubeconfig');
  const text = readFileSync(cluster.kubeconfigPath, 'utf8');
  if (!text.includes(cluster.server)) throw new Error(`${cluster.kubeconfigPath} does not name ${cluster.server}`);
  writeFileSync(file, text.split(cluster.server).join(`https://${relay.url}`), { mode: 0o600 });
  return file;
}

export const watchCut: ChaosScenario = {
  name: 'watch-cut',
  description: "the operator's watches and connections cut silently mid-run (they hang, no error): time to notice and recover",
  async run(o) {
    const result = emptyResult();
    const count = Math.max(10, Math.round(100 * o.scale));
    const cluster = await LocalCluster.start({ name: `chaos-cut-${o.seed}` });
    let op: SupervisedOperator | undefined;
    let relay: TcpRelay | undefined;
    try {
      const { kc, arena } = await prepareFleet(cluster, { nodes: Math.ceil(count / 8) + 3 });
      const leases = kc.makeApiClient(CoordinationV1Api);
      await arena.namespace('probe');
      const api = new URL(cluster.server);
      const r = (relay = await TcpRelay.start({ host: api.hostname, port: Number(api.port) }));
      const kubeconfig = relayedKubeconfig(cluster, r);
      // The lease the binary gets by default (15 s), so a cut renewal has room to be retried before its deadline.
      const supervised = (op = await SupervisedOperator.start(
        () => startOperatorProcess(cluster, { identity: 'op', leaseDurationMs: 15_000, extraEnv: { KUBECONFIG: kubeconfig } }),
        o.log,
      ));
      const work = new Workload({ kc, namespace: 'chaos', resourceClass: 'solo', count, seed: o.seed, operatorUrl: () => supervised.url });
      await work.create();
      const driver = drive(work);

      // The cut, at a seeded moment while the fleet is being admitted, run and stopped.
      const rand = seeded(o.seed + 3);
      await sleep(3000 + rand() * 4000);
      const transitionsBefore = (await leases.readNamespacedLease({ namespace: 'default', name: 'arena-operator' })).spec?.leaseTransitions ?? 0;
      const cutAt = Date.now();
      const connectionsCut = r.cut(blackoutMs);
      o.log(`cut ${connectionsCut} connections silently (${driver.done()}/${count} at their end)`);

      // Noticed: the operator gave up on a dead connection and dialled a fresh one that the relay carries.
      const notice = (async () => {
        while (Date.now() - cutAt < 300_000) {
          const fresh = r.accepted.find((t) => t >= cutAt + blackoutMs);
          if (fresh !== undefined) return fresh - cutAt;
          await sleep(100);
        }
        return NaN;
      })();
      // Recovered: an experiment created after the cut is admitted, which needs the experiment watch, the pod
      // watch and request connections working again.
      await sleep(1000);
      await arena.apply(experiment('probe', 'after-cut', 'solo'));
      let recoverMs = NaN;
      for (;;) {
        const e = await arena.getExperiment('probe', 'after-cut').catch(() => undefined);
        if (e?.status?.phase === 'Running') {
          recoverMs = Date.now() - cutAt;
          break;
        }
        if (Date.now() - cutAt > 300_000) {
          result.failures.push(`the experiment created after the cut is not Running 300 s later: ${JSON.stringify(e?.status)}`);
          break;
        }
        await sleep(100);
      }
      const noticeMs = await notice;
      o.log(`noticed after ${noticeMs} ms, recovered after ${recoverMs} ms`);

      const done = await settleFleet(work, driver, count, o.scale, result);
      const lease = (await leases.readNamespacedLease({ namespace: 'default', name: 'arena-operator' })).spec;
      const log = readFileSync(supervised.current.logFile, 'utf8');
      result.figures = {
        experiments: count,
        connectionsCut,
        blackoutMs,
        noticeMs,
        recoverMs,
        deadlineHits: (log.match(/no answer within its deadline/g) ?? []).length,
        watchesSilent: (log.match(/a watch went silent/g) ?? []).length,
        operatorRestarts: supervised.restarts,
        leaseTransitions: (lease?.leaseTransitions ?? 0) - transitionsBefore,
        atTheirEnd: done,
      };
      return result;
    } finally {
      await op?.stop();
      await relay?.stop();
      await cluster.stop();
    }
  },
};
