// End to end: `arena-runtime serve` as its own process with a DQN checkpoint trained here by the AgileRL trainer,
// playing Gymnasium CartPole-v1 through HTTP /get_action with the platform's own client (play_cartpole.py).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { encodeBase64 } from '../npy/npy.ts';
import { trainAgileRl, type TrainedCheckpoint } from '../testing/agilerl.ts';
import { call, playCartpole, rowsB64, tempDir, writeKey } from './testing.ts';

const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url));
const tmp = tempDir('serve-cartpole-');
const keyFile = join(tmp.dir, 'api-key');
const KEY = 'cartpole-key';
writeKey(keyFile, KEY);

interface Served {
  child: ChildProcess;
  url: string;
  exit: Promise<number | null>;
  log: string[];
}

/** Starts the CLI; resolves with its URL once it logs that it serves, or with its exit code if it ends first. */
function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Served | { exitCode: number | null; log: string[] }> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI, ...args], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
  return new Promise((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      log.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'Serving' && entry.url) resolve({ child, url: entry.url, exit, log });
      } catch {
        // not a log line
      }
    });
    void exit.then((exitCode) => resolve({ exitCode, log }));
  });
}

// A random policy keeps CartPole up for about 22 steps; the checkpoint served must clearly know better.
const RANDOM_SCALE = 22;
let checkpoint: TrainedCheckpoint;
let served: Served;

type Started = Awaited<ReturnType<typeof startCli>>;
/** Checkpoints the CLI cannot serve, and the reason its termination message must give. */
const UNSERVABLE = [
  { name: 'a missing path', checkpoint: join(tmp.dir, 'missing'), reason: /^the checkpoint .*missing cannot be loaded: it is not an AgileRL checkpoint \(it does not exist\); expected a folder with arena-checkpoint\.json/ },
  // Past the path check: the model process tries AgileRL's load, and the pod ends with what it said.
  { name: 'a .pt that is not a torch file', checkpoint: join(tmp.dir, 'broken.pt'), reason: /^the checkpoint .*broken\.pt cannot be loaded: UnpicklingError: / },
];
let unservable: Promise<{ started: Started; termination: string }>[] = [];

before(async () => {
  // The trainer's tiny DQN run (pop 2, 2,000 steps per member); its best-evaluated checkpoint is served.
  const checkpoints = await trainAgileRl(tmp.dir, 'serve');
  checkpoint = checkpoints.reduce((a, b) => ((b.evaluationScore ?? -Infinity) > (a.evaluationScore ?? -Infinity) ? b : a));
  assert.ok((checkpoint.evaluationScore ?? 0) > 4 * RANDOM_SCALE, `evaluation scores ${checkpoints.map((c) => `${c.step}: ${c.evaluationScore}`).join(', ')}`);
  // The failing starts load AgileRL while the served one does, rather than one after another (their test reads them).
  writeFileSync(join(tmp.dir, 'broken.pt'), 'not a torch file');
  unservable = UNSERVABLE.map((c, i) => {
    const termination = join(tmp.dir, `termination-log-${i}`);
    return startCli(['--port', '0', '--checkpoint', c.checkpoint, '--api-key-file', keyFile], { ARENA_TERMINATION_LOG: termination }).then((started) => ({ started, termination }));
  });
  const s = await startCli(['--host', '127.0.0.1', '--port', '0', '--checkpoint', checkpoint.path, '--api-key-file', keyFile], { ARENA_DEPLOYMENT_ID: 'cartpole-1', POD_NAME: 'cartpole-pod' });
  assert.ok('url' in s, `the server did not start: ${s.log.join('\n')}`);
  served = s;
});

after(async () => {
  if (served && served.child.exitCode === null) served.child.kill('SIGKILL');
  tmp.remove();
});

test('/status describes the deployment', async () => {
  const r = await call(served.url, 'GET', '/status');
  assert.deepEqual(r.json, {
    success: true,
    deployment_id: 'cartpole-1',
    instance_id: 'cartpole-pod',
    agent: { algo: 'DQN', multi_agent: false, llm: false, recurrent: false, supervised: false },
  });
  assert.equal((await call(served.url, 'GET', '/readyz')).status, 200);
});

test('the trained checkpoint, played through HTTP by the platform client, clearly beats a random policy', async (t) => {
  const [trained, random] = await Promise.all([playCartpole({ url: served.url, key: KEY, episodes: 10, seed: 31 }), playCartpole({ episodes: 10, seed: 31, random: true })]);
  t.diagnostic(`mean episode length over 10 episodes: trained ${trained.mean_length} (${trained.requests} batched requests, evaluation ${checkpoint.evaluationScore} at step ${checkpoint.step}), random ${random.mean_length}`);
  assert.equal(trained.lengths.length, 10);
  assert.equal(trained.requests, Math.max(...trained.lengths), 'one batched request per step while any episode runs');
  assert.equal(random.requests, 0);
  assert.ok(random.mean_length < 2 * RANDOM_SCALE, `random mean length ${random.mean_length}`);
  // Twice random's, not more: the tiny run's best checkpoint evaluated at 173-500 over eight runs, and played 137-500.
  assert.ok(trained.mean_length > 2 * random.mean_length, `trained ${trained.mean_length}, random ${random.mean_length}`);
});

test('malformed .npy, wrong shapes and oversized bodies get 400/413, and the server keeps serving', async () => {
  const post = (body: unknown) => call(served.url, 'POST', '/get_action', { key: KEY, body });
  const shape = await post({ obs: rowsB64([[0, 0, 0]]), batch_size: 1 });
  assert.equal(shape.status, 400);
  assert.equal(shape.json.error.message, 'obs: expected shape (N, 4), got (N, 3)');
  const npy = await post({ obs: encodeBase64(new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 4, 0, 0x7b, 0x7d, 0x20, 0x0a])) });
  assert.equal(npy.status, 400);
  assert.match(npy.json.error.message, /^obs: header must have exactly the keys/);
  const big = await post({ obs: 'A'.repeat(9 * 1024 * 1024) });
  assert.equal(big.status, 413);
  const ok = await post({ obs: rowsB64([[0, 0, 0.01, 0]]), batch_size: 1 });
  assert.equal(ok.status, 200);
  const metrics = await call(served.url, 'GET', '/metrics');
  assert.match(metrics.text, /arena_inference_errors_total\{path="\/get_action",reason="PayloadTooLarge"\} 1/);
});

test('SIGTERM stops the server with exit status 0', async () => {
  served.child.kill('SIGTERM');
  assert.equal(await served.exit, 0);
  assert.ok(served.log.some((l) => l.includes('"msg":"Stopped"')));
});

test('a checkpoint that cannot be served ends the process at once with status 1 and the reason', async () => {
  const results = await Promise.all(unservable);
  assert.equal(results.length, UNSERVABLE.length);
  for (const [i, { started, termination }] of results.entries()) {
    const c = UNSERVABLE[i]!;
    assert.ok('exitCode' in started, `${c.name}: it served`);
    assert.equal(started.exitCode, 1, c.name);
    assert.match(readFileSync(termination, 'utf8'), c.reason, c.name);
    assert.ok(started.log.some((l) => l.includes('Cannot serve')), c.name);
  }
  const refused = await startCli(['--port', '0', '--checkpoint', checkpoint.path]);
  assert.ok('exitCode' in refused);
  assert.equal(refused.exitCode, 2, 'no API key file and no --no-auth');
});
