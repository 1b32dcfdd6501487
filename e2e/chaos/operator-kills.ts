// The operator SIGKILLed again and again, at seeded random moments, while a fleet of experiments is created,
// admitted, run, stopped and resumed on simulated GPU nodes. Each kill is followed by a fresh operator process
// (the same identity, as a restarted pod keeps its name). Every experiment must end in the phase its plan asks
// for, with every acknowledged checkpoint kept, no rank ever given two pods, and no pod left behind.
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalCluster } from '../cluster/control-plane.ts';
import { installCrds } from '../cluster/crds.ts';
import { createGpuNodes, gpuProducts } from '../cluster/gpu-nodes.ts';
import { Arena, resourceClass, trainingCluster } from '../support/fixtures.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { emptyResult, percentile, seeded, type ChaosScenario } from './scenario.ts';
import { Workload, auditInto } from './workload.ts';

export const operatorKills: ChaosScenario = {
  name: 'operator-kills',
  description: 'the operator SIGKILLed 10 times at random moments while 500 experiments are admitted, run, stopped and resumed',
  async run(o) {
    const result = emptyResult();
    const count = Math.max(10, Math.round(500 * o.scale));
    const kills = Math.max(2, Math.round(10 * Math.min(1, o.scale * 2)));
    const cluster = await LocalCluster.start({ name: `chaos-kills-${o.seed}` });
    const procs: OperatorProcess[] = [];
    try {
      await installCrds(cluster);
      const kc = cluster.kubeConfig();
      const arena = new Arena(kc);
      await createGpuNodes(kc, { prefix: 'gpu', count: Math.ceil(count / 8) + 2, gpus: 8, gpu: gpuProducts.H100 });
      await arena.apply(trainingCluster('onprem'));
      await arena.apply(resourceClass('solo', 'onprem', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 1 } }));
      let op = await startOperatorProcess(cluster, { identity: 'op' });
      procs.push(op);
      const work = new Workload({ kc, namespace: 'chaos', resourceClass: 'solo', count, seed: o.seed, operatorUrl: () => op.url });

      const started = Date.now();
      const restartMs: number[] = [];
      let killed = 0;
      let lastKillAt = started;
      let finished = false;
      const rand = seeded(o.seed + 1);
      // Kills at 2–8 s apart from the first second on: during creation, admission, running, stops and resumes.
      const killer = (async () => {
        await sleep(1000 + rand() * 2000);
        while (killed < kills && !finished) {
          await op.kill('SIGKILL');
          killed++;
          lastKillAt = Date.now();
          op = await startOperatorProcess(cluster, { identity: 'op' });
          procs.push(op);
          restartMs.push(Date.now() - lastKillAt);
          o.log(`kill ${killed}/${kills}: operator back in ${restartMs.at(-1)} ms`);
          await sleep(2000 + rand() * 6000);
        }
      })();

      await work.create();
      const createdMs = Date.now() - started;
      const deadline = Date.now() + 900_000 * Math.max(0.3, o.scale);
      let lastLog = 0;
      let done = 0;
      while (Date.now() < deadline) {
        const step = await work.step().catch((err: Error) => (o.log(`step failed (retrying): ${err.message}`), { done, phases: {} }));
        done = step.done;
        if (Date.now() - lastLog > 10_000) {
          o.log(`${done}/${count} at their end, phases ${JSON.stringify(step.phases)}`);
          lastLog = Date.now();
        }
        if (done === count && killed === kills) break;
        await sleep(500);
      }
      finished = true;
      await killer;
      const allDoneAt = Date.now();
      // The operator removes finished attempts' pods on its next reconcile; auditInto gives it that moment.
      await auditInto(work, result);
      if (killed < kills) result.failures.push(`only ${killed} of ${kills} kills happened`);
      result.figures = {
        experiments: count,
        kills: killed,
        createdMs,
        restartP50Ms: percentile(restartMs, 50),
        restartMaxMs: Math.max(...restartMs),
        settledAfterLastKillMs: allDoneAt - lastKillAt,
        atTheirEnd: done,
        reports: work.reportsSent,
        reportsRetried: work.reportsRefused,
        // e.g. 0:120,503:40 (0: no answer, the operator was down)
        retriedBy: [...work.refusedBy].sort((a, b) => a[0] - b[0]).map(([code, n]) => `${code}:${n}`).join(',') || 'none',
        podsCreated: [...work.podsByRank.values()].reduce((n, s) => n + s.size, 0),
      };
      return result;
    } finally {
      for (const p of procs) await p.kill('SIGKILL').catch(() => undefined);
      await cluster.stop();
    }
  },
};
