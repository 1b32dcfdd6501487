// Benchmark: what the supervisor costs on top of training, and what the AgileRL trainer learns under it.
//
//   node --import tsx runtime/bench/supervisor-overhead.bench.ts [--events 1000] [--progress 10000] [--steps 8000] [--quick]
//
// 1. Event pipeline in-process: parse a trainer event line, map it to a report event, validate, number and append it
//    to the buffer (no HTTP): CPU per 1,000 events.
// 2. End to end: the real Supervisor (in this process) runs a synthetic trainer that writes N checkpoint events and M
//    progress events as fast as it can; the operator stand-in runs in its own process. Reports the supervisor's CPU
//    per 1,000 events, requests sent, and the delay from the supervisor receiving a checkpoint to the operator
//    receiving it.
// 3. The AgileRL trainer under the supervisor with its DQN CartPole benchmark manifest (trainers/agilerl/bench/
//    solve_dqn.json, cut to --steps per member; --quick: its tiny test manifest): the evaluation score per
//    checkpoint, the wall time, and the supervisor's CPU over the whole run.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { createLogger } from '../../operator/observability/log.ts';
import type { Manifest } from '../../operator/api/v1alpha1/manifest.ts';
import type { WorkerEnv } from '../env.ts';
import { checkpointReport, parseTrainerEvent, type TrainerCheckpoint } from '../events.ts';
import { Reporter } from '../reporter.ts';
import { Supervisor } from '../supervisor.ts';
import { tinyDqnManifest } from '../testing/agilerl.ts';

const { values: args } = parseArgs({
  options: { events: { type: 'string', default: '1000' }, progress: { type: 'string', default: '10000' }, steps: { type: 'string', default: '8000' }, quick: { type: 'boolean', default: false } },
});
const N = Number(args.events);
const M = Number(args.progress);
const dir = mkdtempSync(join(tmpdir(), 'supervisor-bench-'));
const logger = createLogger({ silent: true });
const devNull = () => new Writable({ write: (_c, _e, cb) => cb() });
const cpuMs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

function env(run: number, manifestPath: string, reportUrl?: string): WorkerEnv {
  return {
    experiment: 'bench',
    namespace: 'ml',
    run,
    attempt: 1,
    rank: 0,
    manifestPath,
    checkpointDir: join(dir, 'checkpoints'),
    reportUrl,
    runToken: 'run-token',
    stopGraceSeconds: 25,
    progressIntervalSeconds: 1,
    flushTimeoutSeconds: 60,
  };
}

/** The operator stand-in in its own process, so its CPU is not counted as the supervisor's. */
async function startOperator(): Promise<{ url: string; stop: () => Promise<{ requests: number; accepted: number; checkpointDelaysMs: number[] }> }> {
  const code = `
    const { FakeOperator } = await import(${JSON.stringify(new URL('../testing/fake-operator.ts', import.meta.url).href)});
    const op = new FakeOperator();
    const delays = [];
    const handle = op.handle.bind(op);
    op.handle = async (req, res) => { const at = Date.now(); await handle(req, res); for (const e of op.requests.at(-1).events) if (e.type === 'checkpoint') delays.push(at - Date.parse(e.at)); };
    await op.start();
    console.log(op.url);
    process.on('SIGTERM', () => { console.log(JSON.stringify({ requests: op.requests.length, accepted: op.accepted.length, checkpointDelaysMs: delays })); process.exit(0); });
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const url = await new Promise<string>((resolve) =>
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n')[0]!;
      if (out.includes('\n')) resolve(line.trim());
    }),
  );
  return {
    url,
    stop: async () => {
      out = '';
      const done = new Promise<void>((resolve) => child.on('close', () => resolve()));
      child.kill('SIGTERM');
      await done;
      return JSON.parse(out.trim().split('\n').at(-1)!) as { requests: number; accepted: number; checkpointDelaysMs: number[] };
    },
  };
}

async function pipelineCost(): Promise<void> {
  const reporter = Reporter.open({ identity: { experiment: { namespace: 'ml', name: 'bench' }, run: 1, attempt: 1, worker: 0 }, bufferPath: join(dir, 'pipeline.jsonl'), logger });
  const lines = Array.from({ length: N }, (_, i) => JSON.stringify({ event: 'checkpoint', step: i, path: `/checkpoints/ml/bench/run-1/step-${i}.json`, evaluation_score: i / 3, training_score: i / 4, size_bytes: 7156 }));
  const start = process.cpuUsage();
  const t0 = performance.now();
  for (const line of lines) {
    const parsed = parseTrainerEvent(line);
    if (!parsed.ok) throw new Error(parsed.error);
    reporter.report(checkpointReport(parsed.event as TrainerCheckpoint, new Date().toISOString(), 7156));
  }
  const cpu = cpuMs(start);
  const wall = performance.now() - t0;
  await reporter.close();
  console.log(`1. event pipeline, in-process, ${N} checkpoint events (parse, map, validate, number, fsync'd append):`);
  console.log(`   ${((cpu / N) * 1000).toFixed(1)} ms CPU and ${((wall / N) * 1000).toFixed(1)} ms wall per 1,000 events`);
}

async function endToEnd(): Promise<void> {
  const op = await startOperator();
  const trainer = `
    const fs = require('node:fs');
    const fd = Number(process.env.ARENA_EVENTS_FD);
    const w = (e) => fs.writeSync(fd, JSON.stringify(e) + '\\n');
    for (let i = 0; i < ${M}; i++) { w({ event: 'progress', step: i, max_steps: ${M}, evaluation_score: i / 10 }); if (i % ${Math.max(1, Math.floor(M / N))} === 0) w({ event: 'checkpoint', step: i, path: '/checkpoints/ml/bench/step-' + i + '.json', evaluation_score: i / 10, size_bytes: 7156 }); }
    w({ event: 'finished', step: ${M} });`;
  const manifestPath = join(dir, 'manifest-e2e.json');
  writeFileSync(manifestPath, JSON.stringify(tinyDqnManifest()));
  const supervisor = new Supervisor({
    env: env(2, manifestPath, op.url),
    logger,
    trainer: { name: 'synthetic', command: process.execPath, args: ['-e', trainer] },
    probe: async () => ({ cpu: { brand: 'bench', cores: 1, available: 1 }, memory: { totalBytes: 1 }, os: { platform: 'linux', release: '', arch: 'x64' }, gpu: { gpus: [] }, source: 'node:os' }),
    stdout: devNull(),
    stderr: devNull(),
  });
  const start = process.cpuUsage();
  const t0 = performance.now();
  const result = await supervisor.run();
  const wall = performance.now() - t0;
  const cpu = cpuMs(start);
  const stats = await op.stop();
  const events = M + Math.ceil(M / Math.max(1, Math.floor(M / N))) + 1;
  console.log(`2. end to end: a trainer writing ${events} events (${M} progress, ${Math.ceil(M / Math.max(1, Math.floor(M / N)))} checkpoints) as fast as it can:`);
  console.log(`   outcome ${result.outcome}, ${stats.accepted} events acknowledged in ${stats.requests} requests, ${(wall / 1000).toFixed(2)} s wall`);
  console.log(`   supervisor CPU ${cpu.toFixed(0)} ms in all = ${((cpu / events) * 1000).toFixed(1)} ms per 1,000 trainer events (progress throttled to 1/s)`);
  const d = stats.checkpointDelaysMs;
  console.log(`   checkpoint delay, supervisor receipt -> operator receipt: p50 ${pct(d, 50)} ms, p99 ${pct(d, 99)} ms, max ${Math.max(...d)} ms`);
}

/** The AgileRL trainer's DQN CartPole benchmark manifest with `maxSteps` per member. */
function solveDqn(maxSteps: number): Manifest {
  const m = JSON.parse(readFileSync(new URL('../trainers/agilerl/bench/solve_dqn.json', import.meta.url), 'utf8')) as Manifest;
  return { ...m, training: { ...m.training, max_steps: maxSteps } };
}

async function scoreCurve(): Promise<void> {
  const op = await startOperator();
  const manifest = args.quick ? tinyDqnManifest() : solveDqn(Number(args.steps));
  const manifestPath = join(dir, 'manifest-curve.json');
  writeFileSync(manifestPath, JSON.stringify(manifest));
  const curve: { step: number; evaluation: number | null; training: number | null; at: number }[] = [];
  const t0 = performance.now();
  // No trainer given: the supervisor picks AgileRL's for the manifest, as in a worker pod.
  const supervisor = new Supervisor({ env: env(3, manifestPath, op.url), logger, stdout: devNull(), stderr: devNull() });
  const start = process.cpuUsage();
  const result = await supervisor.run();
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuMs(start);
  await op.stop();
  // The trainer's checkpoints, read back from the folders the supervisor reported (what the operator stores).
  const folder = join(dir, 'checkpoints', 'run-3');
  for (const f of readdirSync(folder).filter((x) => /^step-\d+/.test(x))) {
    const ck = JSON.parse(readFileSync(join(folder, f, 'arena-checkpoint.json'), 'utf8')) as { step: number; evaluation_score: number | null; training_score: number | null; created_at: string };
    curve.push({ step: ck.step, evaluation: ck.evaluation_score, training: ck.training_score, at: Date.parse(ck.created_at) });
  }
  curve.sort((a, b) => a.step - b.step);
  const first = curve[0]?.at ?? 0;
  const score = (x: number | null) => (x === null ? '-' : x.toFixed(1));
  console.log(`3. AgileRL trainer (${args.quick ? 'tiny test' : 'bench/solve_dqn.json'} manifest: pop ${manifest.training?.pop_size}, ${manifest.environment.num_envs} envs, ${manifest.training?.max_steps} steps per agent), outcome ${result.outcome}:`);
  console.log('   step   evaluation  training   seconds after the first checkpoint (whole seconds)');
  for (const c of curve) console.log(`   ${String(c.step).padStart(6)} ${score(c.evaluation).padStart(10)} ${score(c.training).padStart(9)} ${((c.at - first) / 1000).toFixed(0).padStart(9)}`);
  const over150 = curve.find((c) => (c.evaluation ?? 0) > 150);
  console.log(`   wall ${wall.toFixed(1)} s (process start to exit); first evaluation > 150 at step ${over150?.step ?? 'never'}`);
  console.log(`   supervisor CPU over the run: ${cpu.toFixed(0)} ms (${((cpu / 1000 / wall) * 100).toFixed(2)}% of one core)`);
}

try {
  await pipelineCost();
  await endToEnd();
  await scoreCurve();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
