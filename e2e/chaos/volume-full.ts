// The checkpoint volume fills up under real training: a size-limited tmpfs is the TrainingCluster's checkpoint
// storage, a local node runs the worker pods as real runtime processes with AgileRL's trainer, and once both
// experiments have written a checkpoint the scenario fills the volume to the last byte. Each run must fail with a
// reason that says so (VolumeFull, naming the volume and its free space) — the report of it must get out although
// the runtime's report buffer lives on that volume — and the one allowed to retry must recover once space returns,
// continuing from its latest checkpoint. No checkpoint may be recorded that is not complete on disk.
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { LocalCluster } from '../cluster/control-plane.ts';
import { installCrds } from '../cluster/crds.ts';
import type { LocalNode } from '../node/local-node.ts';
import { runtimeImage, startLocalOperator, startRuntimeNode } from '../support/runtime-node.ts';
import { Arena, experiment, resourceClass, trainingCluster } from '../support/fixtures.ts';
import { quickDqn } from '../support/manifests.ts';
import { labels } from '../../operator/controllers/experiment/workers.ts';
import type { RunningOperator } from '../../operator/operator.ts';
import type { Experiment } from '../../operator/api/v1alpha1/experiment.ts';
import { emptyResult, type ChaosScenario } from './scenario.ts';

const volumeSize = '64m';
const ns = 'full';
/** Ends Failed at the first failure; the other may retry twice, and must recover once space returns. */
const plans = { 'no-retry': 0, retry: 2 } as const;

/** Writes a filler file until the kernel answers ENOSPC; returns its size. */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  let bytes = 0;
  try {
    for (let chunk = 1 << 20; chunk >= 1; ) {
      try {
        bytes += writeSync(fd, Buffer.alloc(chunk, 7));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        chunk = Math.floor(chunk / 2);
      }
    }
  } finally {
    closeSync(fd);
  }
  return bytes;
}

export const volumeFull: ChaosScenario = {
  name: 'volume-full',
  description: 'the checkpoint volume fills up under real training: the runs fail with VolumeFull, one recovers when space returns, no checkpoint recorded that was not written',
  async run(o) {
    const result = emptyResult();
    const volume = join(o.dir, 'checkpoints');
    mkdirSync(volume, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${volumeSize}`, 'arena-chaos-checkpoints', volume]);
    const cluster = await LocalCluster.start({ name: `chaos-full-${o.seed}`, without: ['kwok'] });
    let node: LocalNode | undefined;
    let op: RunningOperator | undefined;
    try {
      await installCrds(cluster);
      const kc = cluster.kubeConfig();
      const arena = new Arena(kc);
      const core = kc.makeApiClient(CoreV1Api);
      // The runtime image's Python for AgileRL's trainer: the caller's ARENA_PYTHON, as an image sets it.
      const python = process.env.ARENA_PYTHON ? { ARENA_PYTHON: process.env.ARENA_PYTHON } : undefined;
      node = await startRuntimeNode(kc, { dataDir: join(cluster.dir, 'node'), labels: { pool: 'local' }, imageMap: [runtimeImage('registry.local/arena-runtime', python)] });
      op = await startLocalOperator(kc, { progressIntervalMs: 1000 });
      const storage = { mountPath: '/checkpoints', hostPath: { path: volume } };
      await arena.apply(trainingCluster('local', { setupBundle: { version: '1.0.0', images: { runtime: 'registry.local/arena-runtime:1.0.0' } }, checkpointStorage: storage }));
      await arena.apply(resourceClass('cpu', 'local', { nodes: 1, worker: { cpu: '1', memory: '2Gi', gpus: 0 }, nodeSelector: { pool: 'local' } }));
      await arena.namespace(ns);
      for (const [name, maxRetries] of Object.entries(plans)) {
        await arena.apply(experiment(ns, name, 'cpu', { manifest: quickDqn(8000, { evo_steps: 500, learning_delay: 500 }), maxRetries }));
      }
      const get = (name: string) => arena.getExperiment(ns, name);
      const until = async (name: string, ok: (e: Experiment) => boolean, what: string, timeoutMs: number): Promise<Experiment> => {
        const end = Date.now() + timeoutMs;
        for (;;) {
          const e = await get(name).catch(() => undefined);
          if (e && ok(e)) return e;
          if (Date.now() > end) throw new Error(`${name}: not ${what} after ${timeoutMs / 1000} s: ${JSON.stringify(e?.status && { phase: e.status.phase, reason: e.status.reason, message: e.status.message, lastFailure: e.status.lastFailure })}`);
          await sleep(200);
        }
      };

      for (const name of Object.keys(plans)) await until(name, (e) => (e.status?.checkpoints?.length ?? 0) >= 1, 'with a checkpoint', 600_000);
      const filledAt = Date.now();
      const filler = join(volume, 'filler');
      const fillerBytes = fill(filler);
      const freeAfterFill = statfsSync(volume).bavail * statfsSync(volume).bsize;
      o.log(`filled the checkpoint volume with ${fillerBytes} bytes (${freeAfterFill} free)`);

      const failed = await until('no-retry', (e) => e.status?.phase === 'Failed' || e.status?.phase === 'Succeeded', 'ended', 300_000);
      const failMs = Date.now() - filledAt;
      const retried = await until('retry', (e) => e.status?.lastFailure !== undefined || e.status?.phase === 'Succeeded' || e.status?.phase === 'Failed', 'failed once', 300_000);
      const retryFailedMs = Date.now() - filledAt;
      rmSync(filler);
      const freedAt = Date.now();
      o.log(`space returned; no-retry is ${failed.status?.phase} (${failed.status?.reason}), retry failed with ${retried.status?.lastFailure?.reason}`);

      const volumeSays = new RegExp(`checkpoint volume at /checkpoints\\S* is full \\([\\d.]+ [KMGT]?i?B free of [\\d.]+ [KMGT]?i?B\\)`);
      if (failed.status?.phase !== 'Failed' || failed.status.reason !== 'VolumeFull') {
        result.failures.push(`no-retry ended ${failed.status?.phase} (${failed.status?.reason}: ${failed.status?.message}), not Failed with VolumeFull`);
      } else if (!volumeSays.test(failed.status.message ?? '')) {
        result.failures.push(`no-retry's message does not name the volume and its free space: ${failed.status.message}`);
      }
      const firstFailure = retried.status?.lastFailure;
      if (firstFailure?.reason !== 'VolumeFull') result.failures.push(`retry failed with ${firstFailure?.reason}: ${firstFailure?.message}, not VolumeFull`);

      const done = await until('retry', (e) => e.status?.phase === 'Succeeded' || e.status?.phase === 'Failed', 'ended', 900_000);
      const recoverMs = Date.now() - freedAt;
      if (done.status?.phase !== 'Succeeded') result.failures.push(`retry ended ${done.status?.phase} (${done.status?.reason}: ${done.status?.message}) after space returned, not Succeeded`);

      // Every checkpoint in status is complete on disk, and every complete one on disk is in status.
      let recorded = 0;
      let onDisk = 0;
      for (const name of Object.keys(plans)) {
        const e = await get(name);
        const listed = e.status?.checkpoints ?? [];
        recorded += listed.length;
        for (const c of listed) {
          const folder = join(volume, c.location.replace(/^\/checkpoints\/?/, ''));
          if (!existsSync(join(folder, 'arena-checkpoint.json'))) result.failures.push(`${name}: status records ${c.location}, which is not a complete checkpoint on disk`);
        }
        const runDir = join(volume, ns, name, 'run-1');
        const complete = existsSync(runDir) ? readdirSync(runDir).filter((d) => d.startsWith('step-') && existsSync(join(runDir, d, 'arena-checkpoint.json'))) : [];
        onDisk += complete.length;
        const kept = new Set(listed.map((c) => c.location.split('/').at(-1)));
        const missing = complete.filter((d) => !kept.has(d));
        result.lost += missing.length;
        if (missing.length) result.failures.push(`${name}: checkpoints written to disk but not in status: ${missing.join(', ')}`);
      }
      await sleep(3000);
      const pods = (await core.listNamespacedPod({ namespace: ns })).items;
      const left = pods.filter((p) => p.metadata?.labels?.[labels.experimentUid] && (p.status?.phase === 'Pending' || p.status?.phase === 'Running'));
      result.leaked = left.length;
      if (left.length) result.failures.push(`pods still running: ${left.map((p) => p.metadata!.name).join(', ')}`);
      result.figures = {
        volume: volumeSize,
        fillerBytes,
        failMs,
        retryFailedMs,
        recoverMs,
        noRetry: `${failed.status?.phase}/${failed.status?.reason}`,
        retry: `${firstFailure?.reason}->${done.status?.phase}`,
        attempts: done.status?.attempt ?? 0,
        checkpointsRecorded: recorded,
        checkpointsOnDisk: onDisk,
      };
      return result;
    } finally {
      await op?.stop();
      await node?.stop();
      await cluster.stop();
      execFileSync('umount', ['-l', volume]);
    }
  },
};
