// The API server restarted, then etcd restarted, in the middle of a fleet's run. The operator must catch up on
// its own (its watches end; it lists again and carries on): an experiment created right after each restart is
// admitted, and every experiment of the fleet still ends where its plan says, so no transition was missed while
// the API was gone.
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalCluster } from '../cluster/control-plane.ts';
import { experiment } from '../support/fixtures.ts';
import { startOperatorProcess } from '../support/operator-process.ts';
import { emptyResult, type ChaosScenario } from './scenario.ts';
import { SupervisedOperator, Workload, drive, prepareFleet, settleFleet } from './workload.ts';

const downMs = 5000;

export const controlPlaneRestarts: ChaosScenario = {
  name: 'control-plane-restarts',
  description: 'kube-apiserver restarted, then etcd restarted, mid-run: time to catch up, and no transition missed',
  async run(o) {
    const result = emptyResult();
    const count = Math.max(10, Math.round(200 * o.scale));
    const cluster = await LocalCluster.start({ name: `chaos-restarts-${o.seed}` });
    let op: SupervisedOperator | undefined;
    try {
      const { kc, arena } = await prepareFleet(cluster, { nodes: Math.ceil(count / 8) + 3 });
      await arena.namespace('probe');
      const supervised = (op = await SupervisedOperator.start(() => startOperatorProcess(cluster, { identity: 'op' }), o.log));
      const work = new Workload({ kc, namespace: 'chaos', resourceClass: 'solo', count, seed: o.seed, operatorUrl: () => supervised.url });
      await work.create();
      const driver = drive(work);

      /** Stops a component, starts it again, and times until a new experiment is admitted (pods created). */
      const bounce = async (component: 'kube-apiserver' | 'etcd', probe: string): Promise<{ restartMs: number; catchUpMs: number }> => {
        await sleep(3000);
        await cluster.stopComponent(component);
        o.log(`${component} stopped`);
        await sleep(downMs);
        const t = Date.now();
        await cluster.startComponent(component);
        const healthyAt = Date.now();
        o.log(`${component} healthy again after ${healthyAt - t} ms`);
        // The API answers writes again once etcd is back; retry the create until it does.
        for (;;) {
          try {
            await arena.apply(experiment('probe', probe, 'solo'));
            break;
          } catch {
            if (Date.now() - healthyAt > 60_000) throw new Error(`cannot create ${probe} 60 s after ${component} came back`);
            await sleep(250);
          }
        }
        const deadline = Date.now() + 180_000;
        for (;;) {
          const e = await arena.getExperiment('probe', probe).catch(() => undefined);
          if (e?.status?.phase === 'Running') break;
          if (Date.now() > deadline) throw new Error(`${probe} not Running 180 s after ${component} came back: ${JSON.stringify(e?.status)}`);
          await sleep(100);
        }
        return { restartMs: healthyAt - t, catchUpMs: Date.now() - healthyAt };
      };
      const api = await bounce('kube-apiserver', 'after-apiserver');
      const etcd = await bounce('etcd', 'after-etcd');

      const done = await settleFleet(work, driver, count, o.scale, result);
      result.figures = {
        experiments: count,
        downMs,
        apiserverRestartMs: api.restartMs,
        apiserverCatchUpMs: api.catchUpMs,
        etcdRestartMs: etcd.restartMs,
        etcdCatchUpMs: etcd.catchUpMs,
        operatorRestarts: supervised.restarts,
        atTheirEnd: done,
      };
      return result;
    } finally {
      await op?.stop();
      await cluster.stop();
    }
  },
};
