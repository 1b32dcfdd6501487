// The network between the workers and the operator partitioned for longer than the runtime's report backoff
// (30 s at most between tries), while every worker keeps writing checkpoints. Each worker sends through the
// runtime's own Reporter (runtime/reporter.ts: the durable buffer, sequence numbers, retries, acknowledgements)
// over a loopback relay that holds every byte while partitioned and lets it through on heal, as TCP does once a
// partition ends; requests that gave up meanwhile are sent again. After the heal every checkpoint a worker wrote
// must be in its experiment's status exactly once, and nothing else.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { LocalCluster } from '../cluster/control-plane.ts';
import { finishPod } from '../cluster/gpu-nodes.ts';
import { experiment } from '../support/fixtures.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { Reporter } from '../../runtime/reporter.ts';
import { labels } from '../../operator/controllers/experiment/workers.ts';
import { emptyResult, type ChaosScenario } from './scenario.ts';
import { TcpRelay } from './relay.ts';
import { prepareFleet } from './workload.ts';

/** Longer than the report backoff's 30 s ceiling, so every worker's retries run out of backoff inside it. */
const partitionMs = 45_000;
const checkpointEveryMs = 2000;

export const reportPartition: ChaosScenario = {
  name: 'report-partition',
  description: 'workers cut off from the operator for longer than the report backoff: every checkpoint delivered after the heal, none lost or doubled',
  async run(o) {
    const result = emptyResult();
    const count = Math.max(4, Math.round(20 * o.scale));
    const cluster = await LocalCluster.start({ name: `chaos-partition-${o.seed}` });
    let op: OperatorProcess | undefined;
    let relay: TcpRelay | undefined;
    const reporters: Reporter[] = [];
    try {
      const { kc, arena } = await prepareFleet(cluster, { nodes: Math.ceil(count / 8) + 1 });
      const core = kc.makeApiClient(CoreV1Api);
      op = await startOperatorProcess(cluster, { identity: 'op' });
      const r = (relay = await TcpRelay.start({ host: '127.0.0.1', port: Number(new URL(op.url).port) }));
      await arena.namespace('part');
      for (let i = 0; i < count; i++) await arena.apply(experiment('part', `w-${i}`, 'solo'));

      // Each experiment's worker 0, as the runtime runs it: its own buffer file, the run token of its attempt.
      const written = new Map<string, number[]>();
      const running = await Promise.all(Array.from({ length: count }, (_, i) => arena.waitPhase('part', `w-${i}`, 'Running', 300_000)));
      for (let i = 0; i < count; i++) {
        const name = `w-${i}`;
        const e = running[i]!;
        reporters.push(
          Reporter.open({
            baseUrl: `http://${r.url}`,
            token: await arena.runToken('part', e),
            identity: { experiment: { namespace: 'part', name }, run: e.status!.run!, attempt: e.status!.attempt!, worker: 0 },
            bufferPath: join(o.dir, 'reports', `${name}.jsonl`),
            progressIntervalMs: 1000,
          }),
        );
        written.set(name, []);
      }

      let writing = true;
      let step = 0;
      const writer = (async () => {
        while (writing) {
          step += 100;
          reporters.forEach((rep, i) => {
            const name = `w-${i}`;
            const at = new Date().toISOString();
            rep.report({ type: 'progress', at, step, maxSteps: 1_000_000 });
            rep.report({ type: 'checkpoint', at, step, sizeBytes: 1024, location: `run-1/step-${step}`, evaluationScore: step / 100 });
            written.get(name)!.push(step);
          });
          await sleep(checkpointEveryMs);
        }
      })();

      await sleep(8000);
      const partitionedAt = Date.now();
      r.partition();
      o.log(`partitioned the workers from the operator for ${partitionMs} ms`);
      await sleep(partitionMs);
      const pendingAtHeal = reporters.reduce((n, rep) => n + rep.pending, 0);
      const healedAt = Date.now();
      // What was numbered before the heal is what the partition held back: the time until all of it is acknowledged.
      const heldBack = reporters.map((rep) => rep.sequence - 1);
      r.heal();
      o.log(`healed with ${pendingAtHeal} reports pending`);
      const drained = (async () => {
        while (reporters.some((rep, i) => rep.acknowledged < heldBack[i]!)) {
          if (Date.now() - healedAt > 180_000) return NaN;
          await sleep(100);
        }
        return Date.now() - healedAt;
      })();
      await sleep(8000);
      writing = false;
      await writer;

      // Delivered: every reporter has nothing left unacknowledged.
      const flushed = await Promise.all(reporters.map((rep) => rep.flush(180_000)));
      const deliveredAfterHealMs = await drained;
      if (!flushed.every(Boolean)) result.failures.push(`${flushed.filter((f) => !f).length} workers still have reports unacknowledged 180 s after the heal`);

      let checkpoints = 0;
      for (let i = 0; i < count; i++) {
        const name = `w-${i}`;
        const e = await arena.getExperiment('part', name);
        const listed = (e.status?.checkpoints ?? []).filter((c) => c.run === 1).map((c) => c.step);
        const mine = written.get(name)!;
        checkpoints += mine.length;
        const missing = mine.filter((s) => !listed.includes(s));
        const doubled = listed.length - new Set(listed).size;
        const phantom = listed.filter((s) => !mine.includes(s));
        result.lost += missing.length;
        result.duplicates += doubled + phantom.length;
        if (missing.length) result.failures.push(`${name}: written checkpoints ${missing.slice(0, 10).join(', ')} are not in its status`);
        if (doubled || phantom.length) result.failures.push(`${name}: status lists ${doubled} steps twice and ${phantom.length} never written (${phantom.join(', ')})`);
      }

      // The runs then finish; nothing of theirs may be left running.
      const pods = (await core.listNamespacedPod({ namespace: 'part' })).items;
      await Promise.all(pods.map((p) => finishPod(kc, 'part', p.metadata!.name!, 'Succeeded')));
      for (let i = 0; i < count; i++) await arena.waitPhase('part', `w-${i}`, 'Succeeded', 120_000).catch((err: Error) => result.failures.push(err.message));
      await sleep(3000);
      const left = (await core.listNamespacedPod({ namespace: 'part' })).items.filter(
        (p) => p.metadata?.labels?.[labels.experimentUid] && (p.status?.phase === 'Pending' || p.status?.phase === 'Running'),
      );
      result.leaked = left.length;

      const stats = reporters.map((rep) => rep.stats);
      result.figures = {
        workers: count,
        partitionMs,
        checkpoints,
        pendingAtHeal,
        deliveredAfterHealMs,
        requests: stats.reduce((n, s) => n + s.requests, 0),
        failedRequests: stats.reduce((n, s) => n + s.failedRequests, 0),
        eventsAcknowledged: stats.reduce((n, s) => n + s.eventsAcknowledged, 0),
        connectionsHeld: r.accepted.filter((t) => t >= partitionedAt && t < healedAt).length,
      };
      return result;
    } finally {
      for (const rep of reporters) await rep.close().catch(() => undefined);
      await relay?.stop();
      await op?.kill('SIGKILL').catch(() => undefined);
      await cluster.stop();
    }
  },
};
