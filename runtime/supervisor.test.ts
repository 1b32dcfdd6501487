// The supervisor as it runs in a worker pod: `arena-runtime train` as a real process, with the real AgileRL trainer
// as its child (its tiny DQN CartPole run), reporting to a local stand-in for the operator's report endpoint. The
// supervisor's own mechanics (409s, the buffer, failure paths, a trainer that ignores SIGTERM) run small scripted
// trainers instead: they need situations a real run takes long to reach, or never does.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Manifest } from '../operator/api/v1alpha1/manifest.ts';
import type { FailedEvent } from '../operator/runtime-api/protocol.ts';
import { Writable } from 'node:stream';
import { createLogger } from '../operator/observability/log.ts';
import type { WorkerEnv } from './env.ts';
import type { GpuInfo } from './gpu/probe.ts';
import type { MemoryCgroup } from './oom.ts';
import { EXIT_CODES, Supervisor } from './supervisor.ts';
import { tinyDqnManifest } from './testing/agilerl.ts';
import { FakeOperator } from './testing/fake-operator.ts';
import { grpoGsm8k } from '../e2e/support/manifests.ts';
import { runtimeStopGraceSeconds } from '../operator/controllers/experiment/workers.ts';

const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'supervisor-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let runs = 0;

interface Run {
  child: ChildProcess;
  exited: Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>;
}

/** Starts `arena-runtime train` with the pod environment the operator would give it. */
function startWorker(op: FakeOperator, manifest: unknown, env: Record<string, string> = {}): Run {
  const n = ++runs;
  const manifestPath = join(dir, `manifest-${n}.json`);
  writeFileSync(manifestPath, JSON.stringify(manifest));
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'train'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ARENA_EXPERIMENT: 'cartpole',
      ARENA_NAMESPACE: 'ml',
      ARENA_RUN: String(n),
      ARENA_ATTEMPT: '1',
      ARENA_WORKER_RANK: '0',
      ARENA_MANIFEST: manifestPath,
      ARENA_CHECKPOINT_DIR: join(dir, 'checkpoints'),
      ARENA_REPORT_URL: op.url,
      ARENA_RUN_TOKEN: op.token,
      ARENA_PROGRESS_INTERVAL_SECONDS: '0.2',
      ARENA_FLUSH_TIMEOUT_SECONDS: '10',
      // The AgileRL trainer's Python: the caller's ARENA_PYTHON, as an image sets it, else the checkout's .venv.
      ...(process.env.ARENA_PYTHON ? { ARENA_PYTHON: process.env.ARENA_PYTHON } : {}),
      ...env,
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started })),
  );
  return { child, exited };
}

async function withOperator(fn: (op: FakeOperator) => Promise<void>): Promise<void> {
  const op = new FakeOperator();
  await op.start();
  try {
    await fn(op);
  } finally {
    await op.stop();
  }
}

const seqsAccepted = (op: FakeOperator) => op.requests.filter((r) => r.status === 200).flatMap((r) => r.events.map((e) => e.seq));
const TINY = tinyDqnManifest();
const withMaxSteps = (m: Manifest, maxSteps: number): Manifest => ({ ...m, training: { ...m.training, max_steps: maxSteps } });

// A scripted trainer's emit(event): one line on the event channel (fd 3, runtime/PROTOCOL.md).
const EMIT = "const fs = require('node:fs'); const emit = (e) => fs.writeSync(3, JSON.stringify(e) + '\\n');";
/** The argv (for ARENA_TRAINER_COMMAND) of a Node trainer that runs `body` with emit(). */
const scripted = (body: string) => JSON.stringify([process.execPath, '-e', `${EMIT}\n${body}`]);

test('trains, reports the trainer\'s checkpoints and scores and completes; a 503 is resent without loss or duplicates', () =>
  withOperator(async (op) => {
    op.answerNext({ status: 503, body: { error: { reason: 'NotLeader' } } });
    const { code, stdout } = await startWorker(op, TINY).exited;
    assert.equal(code, 0, stdout.slice(-2000));
    const checkpoints = op.eventsOfType('checkpoint');
    // One per evolution step (500 steps per member), the last at max_steps.
    assert.deepEqual(checkpoints.map((c) => c.step), [500, 1000, 1500, 2000]);
    for (const c of checkpoints) {
      assert.ok(existsSync(c.location) && c.sizeBytes > 0, c.location);
      const meta = JSON.parse(readFileSync(join(c.location, 'arena-checkpoint.json'), 'utf8')) as { step: number; evaluation_score: number | null };
      assert.deepEqual([c.step, c.evaluationScore ?? null], [meta.step, meta.evaluation_score], 'the report carries what the trainer wrote');
    }
    const best = Math.max(...checkpoints.map((c) => c.evaluationScore ?? 0));
    assert.ok(best > 100, `it learns: the best evaluation ${best} is far above a random policy's ~22`);
    assert.ok(op.eventsOfType('progress').length >= 1);
    assert.equal(op.accepted.at(-1)!.type, 'completed');

    const seqs = seqsAccepted(op);
    assert.deepEqual(seqs, seqs.map((_, i) => i), 'every sequence number once, in order');
    const refused = op.requests.filter((r) => r.status === 503);
    assert.equal(refused.length, 1);
    assert.ok(refused[0]!.events.length > 0 && refused[0]!.events.every((e) => seqs.includes(e.seq)), 'the refused events were delivered later');

    assert.match(stdout, /arena-agilerl: finished at step 2000/, 'trainer output is passed through to the pod log');
    assert.match(stdout, /"msg":"Checkpoint written".*"namespace":"ml","name":"cartpole"/);
  }));

test('SIGTERM mid-run: a final checkpoint, exit 0; a new run resumes from it', () =>
  withOperator(async (op) => {
    const worker = startWorker(op, withMaxSteps(TINY, 1_000_000));
    await op.until(() => op.eventsOfType('checkpoint').length >= 1, 180_000);
    worker.child.kill('SIGTERM');
    const { code, stdout } = await worker.exited;
    assert.equal(code, EXIT_CODES.ok, stdout.slice(-2000));
    const checkpoints = op.eventsOfType('checkpoint');
    const final = checkpoints.at(-1)!;
    assert.equal(final.final, true);
    assert.ok(final.step >= checkpoints[0]!.step);
    const meta = JSON.parse(readFileSync(join(final.location, 'arena-checkpoint.json'), 'utf8')) as { final: boolean; step: number };
    assert.deepEqual([meta.final, meta.step], [true, final.step]);
    assert.match(stdout, /arena-agilerl: stopped at step \d+; final checkpoint /);
    assert.equal(op.eventsOfType('completed').length + op.eventsOfType('failed').length, 0, 'a stop is neither completion nor failure');

    const resumed = new FakeOperator();
    await resumed.start();
    try {
      const target = final.step + 500;
      const next = await startWorker(resumed, withMaxSteps(TINY, target), { ARENA_RESUME_FROM: final.location, ARENA_RESUME_STEP: String(final.step) }).exited;
      assert.equal(next.code, 0, next.stdout.slice(-2000));
      assert.ok(next.stdout.includes(`arena-agilerl: resumed 2 agents from ${final.location} at step ${final.step}`), next.stdout.slice(-2000));
      // The step count carries on from the checkpoint's, to the new max_steps, rather than starting again at 0.
      const steps = resumed.eventsOfType('checkpoint').map((c) => c.step);
      assert.ok(steps.length >= 1 && steps.every((s) => s > final.step), `resumed checkpoints at ${steps.join(', ')} after step ${final.step}`);
      assert.equal(steps.at(-1), target);
      assert.equal(resumed.accepted.at(-1)!.type, 'completed');
    } finally {
      await resumed.stop();
    }
  }));

test('a trainer that runs out of GPU memory is reported as failed with the reason and a hint', () =>
  withOperator(async (op) => {
    const crash = `
      console.log('step 1200: generating rollouts done, training policy');
      console.error([
        'Traceback (most recent call last):',
        '  File "/app/skyrl_train/workers/worker.py", line 402, in ppo_train',
        '    loss.backward()',
        'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.15 GiB of which 1.06 GiB is free.',
      ].join('\\n'));
      process.exit(1);`;
    const { code, stderr } = await startWorker(op, TINY, { ARENA_TRAINER_COMMAND: JSON.stringify([process.execPath, '-e', crash]) }).exited;
    assert.equal(code, EXIT_CODES.failed);
    const [failed] = op.eventsOfType('failed') as FailedEvent[];
    assert.equal(failed?.reason, 'CudaOutOfMemoryDuringTraining');
    assert.match(failed!.hint!, /micro_train_batch_size_per_gpu/);
    assert.equal(failed!.retryable, true);
    assert.match(stderr, /torch\.OutOfMemoryError/, 'the traceback reaches the pod log');
  }));

test('refused before launch: an invalid manifest, and an LLM algorithm without a GPU', () =>
  withOperator(async (op) => {
    const grpo = grpoGsm8k({ group_size: 8 });
    // Another trainer's generator settings: not a section of the Arena manifest.
    const invalid = await startWorker(op, { ...grpo, generator: { backend: 'sglang', enable_http_endpoint: true } }).exited;
    assert.equal(invalid.code, EXIT_CODES.refused);
    const noGpu = await startWorker(op, grpo, { PATH: dir }).exited; // no nvidia-smi on this PATH: no GPUs
    assert.equal(noGpu.code, EXIT_CODES.refused);
    const [first, second] = op.eventsOfType('failed');
    assert.equal(first?.reason, 'InvalidManifest');
    assert.match(first!.message, /generator: Extra inputs are not permitted/);
    assert.match(first!.hint!, /Correct generator in the Experiment's spec\.manifest/);
    assert.equal(first!.retryable, false);
    assert.equal(second?.reason, 'NoGpu');
    assert.equal(second!.retryable, false);
  }));

test('409 from the operator stops the worker', () =>
  withOperator(async (op) => {
    op.answerNext(...Array.from({ length: 5 }, () => ({ status: 409, body: { error: { reason: 'Conflict' } } })));
    // A trainer that would report progress forever: only the 409 can end the run.
    const forever = scripted("let step = 0; setInterval(() => emit({ event: 'progress', step: step += 10, max_steps: 1e9 }), 50);");
    const { code, ms } = await startWorker(op, TINY, { ARENA_TRAINER_COMMAND: forever }).exited;
    assert.equal(code, EXIT_CODES.superseded);
    assert.ok(ms < 30_000, `stopped after ${ms} ms`);
    assert.equal(op.accepted.length, 0);
  }));

test('the buffer file keeps what the operator has not acknowledged', () =>
  withOperator(async (op) => {
    await op.stop(); // the operator is down for the whole run
    const file = join(dir, 'buffered-checkpoint.bin');
    writeFileSync(file, Buffer.alloc(100));
    const trainer = scripted(`emit({ event: 'progress', step: 250, max_steps: 500 }); emit({ event: 'checkpoint', step: 500, path: ${JSON.stringify(file)} }); emit({ event: 'finished', step: 500 });`);
    const { code } = await startWorker(op, TINY, { ARENA_FLUSH_TIMEOUT_SECONDS: '0.5', ARENA_TRAINER_COMMAND: trainer }).exited;
    assert.equal(code, 0);
    const buffer = join(dir, 'checkpoints', `run-${runs}`, 'reports', 'attempt-1-worker-0.jsonl');
    const kept = readFileSync(buffer, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event?: { type: string; seq: number } });
    const types = kept.flatMap((l) => (l.event ? [l.event.type] : []));
    assert.deepEqual(types, ['progress', 'checkpoint', 'completed'], 'every event is kept, in order');
    assert.deepEqual(kept[0], { ack: -1 }, 'none acknowledged');
  }));

// The supervisor in-process with small scripted trainers: the paths a real trainer rarely takes.
function inProcess(
  op: FakeOperator,
  script: string | undefined,
  opts: { gpus?: GpuInfo[]; env?: Partial<WorkerEnv>; processEnv?: NodeJS.ProcessEnv; command?: string[]; memory?: () => MemoryCgroup } = {},
) {
  const n = ++runs;
  const manifestPath = join(dir, `manifest-${n}.json`);
  writeFileSync(manifestPath, JSON.stringify(TINY));
  let stdout = '';
  const supervisor = new Supervisor({
    env: {
      experiment: 'cartpole',
      namespace: 'ml',
      run: n,
      attempt: 1,
      rank: 0,
      manifestPath,
      checkpointDir: join(dir, 'checkpoints'),
      reportUrl: op.url,
      runToken: op.token,
      stopGraceSeconds: 25,
      progressIntervalSeconds: 1,
      flushTimeoutSeconds: 10,
      ...opts.env,
    },
    logger: createLogger({ silent: true }),
    // This machine's own cgroup counts every OOM kill on it: the tests say what the container's would.
    memory: opts.memory ?? (() => ({ oomKills: 0, limitBytes: undefined })),
    processEnv: { PATH: process.env.PATH, ARENA_RUN_TOKEN: 'must-not-leak', ...opts.processEnv },
    ...(script !== undefined || opts.command ? { trainer: { name: 'scripted', command: opts.command?.[0] ?? process.execPath, args: opts.command?.slice(1) ?? ['-e', script!] } } : {}),
    probe: async () => ({ cpu: { brand: 'test', cores: 1, available: 1 }, memory: { totalBytes: 1 }, os: { platform: 'linux', release: '', arch: 'x64' }, gpu: { gpus: opts.gpus ?? [] }, source: 'node:os' }),
    stdout: new Writable({ write: (c: Buffer, _e, cb) => ((stdout += c.toString()), cb()) }),
    stderr: new Writable({ write: (_c, _e, cb) => cb() }),
  });
  return { supervisor, output: () => stdout };
}

test('the trainer gets the attention backend for its GPUs and never the run token', () =>
  withOperator(async (op) => {
    const { supervisor, output } = inProcess(op, `${EMIT}
      console.log(JSON.stringify({ backend: process.env.ARENA_ATTENTION_BACKEND, cc: process.env.ARENA_GPU_COMPUTE_CAPABILITY, token: process.env.ARENA_RUN_TOKEN ?? null, url: process.env.ARENA_REPORT_URL ?? null, resume: process.env.ARENA_RESUME_FROM, fd: process.env.ARENA_EVENTS_FD }));
      emit({ event: 'finished' });`,
      { gpus: [{ index: 0, name: 'NVIDIA L4', computeCapability: { major: 8, minor: 9 } }], env: { resumeFrom: '/ck/run-1/step-500.json', resumeStep: 500, checkpointDir: join(dir, 'no-earlier-runs') } },
    );
    const result = await supervisor.run();
    assert.equal(result.outcome, 'completed');
    assert.deepEqual(JSON.parse(output().trim()), { backend: 'flashinfer', cc: '8.9', token: null, url: null, resume: '/ck/run-1/step-500.json', fd: '3' });
  }));

test('the failure paths of a trainer process', () =>
  withOperator(async (op) => {
    /** The container's cgroup as the kernel's OOM killer leaves it: one kill more at each reading. */
    let kills = 0;
    const oomEachRead = () => ({ oomKills: kills++, limitBytes: 256 * 1024 * 1024 });
    const cases: {
      name: string;
      script?: string;
      command?: string[];
      processEnv?: NodeJS.ProcessEnv;
      memory?: () => MemoryCgroup;
      exitCode: number;
      reason: string;
      message?: RegExp;
      hint?: RegExp;
      retryable?: boolean;
    }[] = [
      { name: 'exit 0 without finished', script: 'process.exit(0)', exitCode: 1, reason: 'TrainerExitedEarly' },
      {
        name: "the trainer's own error wins; the log fills in the hint",
        script: `${EMIT} emit({ event: 'error', reason: 'RewardServiceDown', message: 'the reward model did not answer' }); console.error('ConnectionRefusedError: Connection refused on port 8000'); process.exit(3);`,
        exitCode: 1,
        reason: 'RewardServiceDown',
        message: /reward model/,
        hint: /http_port/,
        retryable: true,
      },
      { name: 'a command that does not exist', command: [join(dir, 'no-such-trainer')], exitCode: 2, reason: 'TrainerStartFailed', retryable: false },
      { name: 'a malformed ARENA_TRAINER_COMMAND', processEnv: { ARENA_TRAINER_COMMAND: 'python -m trainer' }, exitCode: 2, reason: 'TrainerUnavailable', message: /JSON array/ },
      { name: 'killed by a signal', script: "process.kill(process.pid, 'SIGKILL')", exitCode: 1, reason: 'TrainerKilled', hint: /memory/ },
      {
        name: 'killed while the cgroup counted an OOM kill',
        script: "console.log('allocating'); process.kill(process.pid, 'SIGKILL')",
        memory: oomEachRead,
        exitCode: 1,
        reason: 'OOMKilled',
        message: /out-of-memory killer: the worker went over its memory limit of 256 MiB; its last output: allocating/,
        hint: /memory per worker/,
      },
    ];
    for (const c of cases) {
      const { supervisor } = inProcess(op, c.script, { command: c.command, processEnv: c.processEnv, memory: c.memory });
      const result = await supervisor.run();
      assert.equal(result.exitCode, c.exitCode, c.name);
      const failed = op.eventsOfType('failed').at(-1)!;
      assert.equal(failed.reason, c.reason, c.name);
      if (c.message) assert.match(failed.message, c.message, c.name);
      if (c.hint) assert.match(failed.hint ?? '', c.hint, c.name);
      if (c.retryable !== undefined) assert.equal(failed.retryable, c.retryable, c.name);
    }
  }));

test('a trainer that ignores SIGTERM is killed within the grace period; without a final checkpoint the exit is 1', () =>
  withOperator(async (op) => {
    const file = join(dir, 'stubborn-checkpoint.bin');
    writeFileSync(file, Buffer.alloc(1234));
    const { supervisor } = inProcess(op, `${EMIT}
      process.on('SIGTERM', () => {});
      emit({ event: 'checkpoint', step: 10, path: ${JSON.stringify(file)} });
      setInterval(() => {}, 1000);`, { env: { stopGraceSeconds: 1 } });
    const running = supervisor.run();
    await op.until(() => op.eventsOfType('checkpoint').length === 1);
    const stopped = Date.now();
    supervisor.stop();
    const result = await running;
    assert.equal(result.outcome, 'stopped');
    assert.equal(result.exitCode, EXIT_CODES.failed);
    assert.equal(result.finalCheckpoint, false);
    assert.ok(Date.now() - stopped < 10_000, `took ${Date.now() - stopped} ms (the kill comes at 0.8 s)`);
    const [checkpoint] = op.eventsOfType('checkpoint');
    assert.equal(checkpoint!.sizeBytes, 1234, 'without size_bytes the supervisor measures the file');
  }));

test('a trainer that needs 1.5 s after SIGTERM for its final checkpoint writes it within the budget a 5 s pod grace gives', () =>
  withOperator(async (op) => {
    // What the operator's pods carry for the test fixtures' stopGracePeriodSeconds of 5 (operator/controllers/
    // experiment/workers.ts); 1.5 s is how long the AgileRL trainer took on a loaded node (1.2 s measured).
    const stopGraceSeconds = runtimeStopGraceSeconds(5);
    const file = join(dir, 'slow-final-checkpoint.bin');
    const { supervisor } = inProcess(op, `${EMIT}
      process.on('SIGTERM', () => setTimeout(() => {
        fs.writeFileSync(${JSON.stringify(file)}, Buffer.alloc(64));
        emit({ event: 'checkpoint', step: 20, path: ${JSON.stringify(file)}, final: true });
        process.exit(0);
      }, 1500));
      emit({ event: 'progress', step: 10 });
      setInterval(() => {}, 1000);`, { env: { stopGraceSeconds } });
    const running = supervisor.run();
    await op.until(() => op.eventsOfType('progress').length === 1);
    const stopped = Date.now();
    supervisor.stop();
    const result = await running;
    assert.equal(result.outcome, 'stopped');
    assert.equal(result.finalCheckpoint, true, `the trainer was killed before its final checkpoint (stop budget ${stopGraceSeconds} s)`);
    assert.equal(result.exitCode, EXIT_CODES.ok);
    assert.deepEqual(op.eventsOfType('checkpoint').map((c) => [c.step, c.final]), [[20, true]], 'the final checkpoint reached the operator');
    assert.ok(Date.now() - stopped < 5_000, `the supervisor ended ${Date.now() - stopped} ms after SIGTERM, inside the pod's 5 s`);
  }));

interface FailureLine {
  name: string;
  source: string;
  line: string;
  reason: string;
  message?: string;
  hint?: string;
}
const LLM_FAILURE_LINES = (JSON.parse(readFileSync(new URL('./testing/llm-failure-lines.json', import.meta.url), 'utf8')) as { lines: FailureLine[] }).lines;

test('an LLM worker\'s failure lines, as the libraries print them, become the status reason with the guide\'s fix', () =>
  withOperator(async (op) => {
    for (const c of LLM_FAILURE_LINES) {
      // The way a Python trainer dies: a traceback on stderr, the exception line last, exit 1.
      const crash = `console.log('arena-agilerl: GRPO on gsm8k, population 1'); console.error(${JSON.stringify(
        ['Traceback (most recent call last):', '  File "/app/arena_agilerl/llm.py", line 120, in train', '    self.trainer.train()', c.line].join('\n'),
      )}); process.exit(1);`;
      const { supervisor } = inProcess(op, crash);
      const result = await supervisor.run();
      assert.equal(result.exitCode, EXIT_CODES.failed, c.name);
      const failed = op.eventsOfType('failed').at(-1)!;
      assert.equal(failed.reason, c.reason, `${c.name}: ${c.line}`);
      assert.ok(failed.hint && !failed.hint.includes('\n'), `${c.name}: a one-line hint`);
      if (c.hint) assert.ok(failed.hint.includes(c.hint), `${c.name}: hint ${failed.hint}`);
      if (c.message) assert.ok(failed.message.includes(c.message), `${c.name}: message ${failed.message}`);
    }
  }));

test('the AgileRL trainer\'s catch-all reason gives way to the known signature its message carries', () =>
  withOperator(async (op) => {
    const fromAgileRl = LLM_FAILURE_LINES.filter((c) => c.source.startsWith('agilerl/'));
    assert.ok(fromAgileRl.length >= 5);
    for (const c of fromAgileRl) {
      const message = `AgileRL could not build the run from the manifest: ${c.line}`;
      const script = `${EMIT} emit({ event: 'error', reason: 'InvalidHyperparameter', message: ${JSON.stringify(message)}, hint: 'Check the algorithm settings.', retryable: false }); process.exit(1);`;
      const { supervisor } = inProcess(op, script);
      await supervisor.run();
      const failed = op.eventsOfType('failed').at(-1)!;
      assert.equal(failed.reason, c.reason, c.name);
      assert.equal(failed.message, message, `${c.name}: the trainer's own message is kept`);
      if (c.hint) assert.ok(failed.hint?.includes(c.hint), `${c.name}: hint ${failed.hint}`);
    }
    // A specific reason of the trainer's own stays, whatever its message says.
    const { supervisor } = inProcess(op, `${EMIT} emit({ event: 'error', reason: 'CudaOutOfMemoryDuringTraining', message: 'CUDA out of memory in loss.backward()', retryable: true }); process.exit(1);`);
    await supervisor.run();
    assert.equal(op.eventsOfType('failed').at(-1)!.reason, 'CudaOutOfMemoryDuringTraining');
  }));

test('a checkpoint the trainer names but that is not on disk, or is empty, is never reported', () =>
  withOperator(async (op) => {
    const real = join(dir, 'real-checkpoint.bin');
    writeFileSync(real, Buffer.alloc(321));
    const empty = join(dir, 'empty-checkpoint.bin');
    writeFileSync(empty, '');
    const { supervisor } = inProcess(op, `${EMIT}
      emit({ event: 'checkpoint', step: 10, path: ${JSON.stringify(join(dir, 'never-written'))}, size_bytes: 999 });
      emit({ event: 'checkpoint', step: 20, path: ${JSON.stringify(empty)} });
      emit({ event: 'checkpoint', step: 30, path: ${JSON.stringify(real)} });
      emit({ event: 'finished' });`);
    const result = await supervisor.run();
    assert.equal(result.exitCode, EXIT_CODES.ok);
    assert.deepEqual(op.eventsOfType('checkpoint').map((c) => [c.step, c.sizeBytes]), [[30, 321]], 'only the checkpoint on disk is recorded');
  }));

test('a final checkpoint whose report never got through is reported by the next attempt, which resumes from it rather than from the one the operator knew', async () => {
  // Its own folder: the next attempt reads every earlier attempt's report buffer there.
  const checkpoints = join(dir, 'cut-off');
  const run = String(++runs + 1000);
  const first = new FakeOperator();
  await first.start();
  let known: { location: string; step: number };
  let final: { location: string; step: number };
  try {
    const worker = startWorker(first, withMaxSteps(TINY, 1_000_000), { ARENA_RUN: run, ARENA_CHECKPOINT_DIR: checkpoints, ARENA_STOP_GRACE_SECONDS: '8' });
    await first.until(() => first.eventsOfType('checkpoint').length >= 1, 180_000);
    known = first.eventsOfType('checkpoint')[0]!;
    // The operator is cut off from the worker from here on; the worker trains on to its next checkpoint, which
    // only its buffer holds, then is told to stop.
    await first.stop();
    const buffer = join(checkpoints, `run-${run}`, 'reports', 'attempt-1-worker-0.jsonl');
    const buffered = () => (existsSync(buffer) ? readFileSync(buffer, 'utf8').split('"type":"checkpoint"').length - 1 : 0);
    for (const started = Date.now(); buffered() < 2; ) {
      assert.ok(Date.now() - started < 180_000, 'a second checkpoint within 180 s');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    worker.child.kill('SIGTERM');
    const { code, stdout } = await worker.exited;
    assert.equal(code, EXIT_CODES.ok, stdout.slice(-2000));
    const written = /arena-agilerl: stopped at step (\d+); final checkpoint (\S+)/.exec(stdout);
    assert.ok(written, stdout.slice(-2000));
    final = { step: Number(written[1]), location: written[2]! };
    assert.ok(final.step > known.step, `the final checkpoint (step ${final.step}) is newer than the one reported (${known.step})`);
    assert.match(stdout, /Final reports not acknowledged within the grace period/);
  } finally {
    await first.stop();
  }

  await withOperator(async (op) => {
    const target = final.step + 500;
    // The operator resumes the retry from the newest checkpoint it knows of.
    const { code, stdout } = await startWorker(op, withMaxSteps(TINY, target), {
      ARENA_RUN: run,
      ARENA_ATTEMPT: '2',
      ARENA_CHECKPOINT_DIR: checkpoints,
      ARENA_RESUME_FROM: known.location,
      ARENA_RESUME_STEP: String(known.step),
    }).exited;
    assert.equal(code, 0, stdout.slice(-2000));
    assert.ok(stdout.includes(`arena-agilerl: resumed 2 agents from ${final.location} at step ${final.step}`), stdout.slice(-3000));
    const reported = op.eventsOfType('checkpoint');
    const late = reported.filter((c) => c.recovered !== undefined);
    assert.ok(late.length >= 1, 'the lost reports are delivered');
    assert.deepEqual(late.at(-1), { ...late.at(-1)!, step: final.step, location: final.location, final: true, recovered: { run: Number(run), attempt: 1 } });
    assert.ok(late.every((c) => c.step > known.step), 'what the operator acknowledged is not reported again');
    const own = reported.filter((c) => c.recovered === undefined).map((c) => c.step);
    assert.ok(own.length >= 1 && own.every((s) => s > final.step), `the retry's own checkpoints (${own.join(', ')}) carry on after step ${final.step}`);
    assert.equal(op.accepted.at(-1)!.type, 'completed');
  });

  // Handed over: a third attempt has nothing more to report.
  await withOperator(async (op) => {
    const { code } = await startWorker(op, withMaxSteps(TINY, final.step + 500), { ARENA_RUN: run, ARENA_ATTEMPT: '3', ARENA_CHECKPOINT_DIR: checkpoints, ARENA_TRAINER_COMMAND: scripted("emit({ event: 'finished' });") }).exited;
    assert.equal(code, 0);
    assert.deepEqual(op.eventsOfType('checkpoint'), []);
  });
});

test('a trainer that ran out of disk space fails with VolumeFull, naming the checkpoint volume and its free space', () =>
  withOperator(async (op) => {
    const { supervisor } = inProcess(op, `
      console.error('Traceback (most recent call last):');
      console.error('  File "checkpoints.py", line 80, in write_population_checkpoint');
      console.error("OSError: [Errno 28] No space left on device: '/checkpoints/ml/cartpole/run-1/.step-500.tmp/agent_0.pt'");
      process.exit(1);`);
    const result = await supervisor.run();
    assert.equal(result.exitCode, EXIT_CODES.failed);
    const [failed] = op.eventsOfType('failed') as FailedEvent[];
    assert.equal(failed?.reason, 'VolumeFull');
    assert.match(failed!.message, new RegExp(`checkpoint volume at ${join(dir, 'checkpoints').replace(/[/.]/g, '\\$&')} is full \\([\\d.]+ [KMGT]?i?B free of [\\d.]+ [KMGT]?i?B\\)`));
    assert.match(failed!.message, /Errno 28/);
    assert.match(failed!.hint ?? '', /larger volume/);
    assert.equal(failed!.retryable, true);
  }));
