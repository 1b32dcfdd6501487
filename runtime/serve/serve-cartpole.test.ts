// End to end: `arena-runtime serve` as its own process with a DQN checkpoint trained here by the reference
// trainer, playing CartPole through HTTP /get_action.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { decodeNpyBase64, encodeBase64, encodeNpy, ndarray } from '../npy/npy.ts';
import { CartPole, OBSERVATION_SIZE } from '../trainers/dqn-cartpole/cartpole.ts';
import { dqnConfig } from '../trainers/dqn-cartpole/config.ts';
import { loadPolicy } from '../trainers/dqn-cartpole/policy.ts';
import { Rng } from '../trainers/dqn-cartpole/rng.ts';
import { trainDqn } from '../trainers/dqn-cartpole/trainer.ts';
import { SMALL } from '../trainers/dqn-cartpole/testdata/manifests.ts';
import { call, rowsB64, tempDir, writeKey } from './testing.ts';

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

let checkpoint: string;
let served: Served;

before(async () => {
  const result = await trainDqn(dqnConfig(SMALL), { checkpointDir: tmp.dir, run: 'serve', emit: () => undefined, stopRequested: () => false });
  checkpoint = result.checkpoints.reduce((a, b) => (b.evaluationScore > a.evaluationScore ? b : a)).path;
  const s = await startCli(['--host', '127.0.0.1', '--port', '0', '--checkpoint', checkpoint, '--api-key-file', keyFile], { ARENA_DEPLOYMENT_ID: 'cartpole-1', POD_NAME: 'cartpole-pod' });
  assert.ok('url' in s, `the server did not start: ${s.log.join('\n')}`);
  served = s;
});

after(async () => {
  if (served && served.child.exitCode === null) served.child.kill('SIGKILL');
  tmp.remove();
});

/** Mean return of `episodes` CartPole episodes played side by side, one batched decision per step. */
async function play(episodes: number, seed: number, decide: (obs: Float32Array, count: number) => Promise<number[]>): Promise<number> {
  const rng = new Rng(seed);
  const envs = Array.from({ length: episodes }, () => new CartPole(rng));
  const returns = new Array<number>(episodes).fill(0);
  let active = envs.map((_, i) => i);
  while (active.length > 0) {
    const obs = new Float32Array(active.length * OBSERVATION_SIZE);
    active.forEach((e, k) => envs[e]!.observe(obs, k * OBSERVATION_SIZE));
    const acts = await decide(obs, active.length);
    active = active.filter((e, k) => {
      const r = envs[e]!.step(acts[k]!);
      returns[e]! += r.reward;
      return !(r.terminated || r.truncated);
    });
  }
  return returns.reduce((a, b) => a + b, 0) / episodes;
}

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

test('the trained checkpoint, played through HTTP, clearly beats a random policy', async (t) => {
  const local = loadPolicy(checkpoint);
  let requests = 0;
  let disagreements = 0;
  const trained = await play(10, 31, async (obs, count) => {
    requests++;
    const r = await call(served.url, 'POST', '/get_action', { key: KEY, body: { obs: encodeBase64(encodeNpy(ndarray('f4', [count, 4], obs))), batch_size: count } });
    assert.equal(r.status, 200, r.text);
    const a = decodeNpyBase64(r.json.action);
    assert.deepEqual(a.shape, [count]);
    const acts = [...a.data].map(Number);
    const expected = local.actBatch(obs, count);
    acts.forEach((x, k) => (disagreements += x === expected[k] ? 0 : 1));
    return acts;
  });
  const coin = new Rng(5);
  const random = await play(10, 31, async (_obs, count) => Array.from({ length: count }, () => coin.int(2)));
  t.diagnostic(`mean return over 10 episodes: trained ${trained} (${requests} batched requests), random ${random}`);
  assert.equal(disagreements, 0, 'HTTP answers are the greedy actions of the checkpoint');
  assert.ok(trained > 2 * random, `trained mean return ${trained} over ${requests} requests, random ${random}`);
  assert.ok(trained >= 100, `trained mean return ${trained}`);
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

test('a checkpoint that cannot be loaded ends the process at once with status 1 and the reason', async () => {
  const termination = join(tmp.dir, 'termination-log');
  const r = await startCli(['--port', '0', '--checkpoint', join(tmp.dir, 'missing.json'), '--api-key-file', keyFile], { ARENA_TERMINATION_LOG: termination });
  assert.ok('exitCode' in r);
  assert.equal(r.exitCode, 1);
  assert.match(readFileSync(termination, 'utf8'), /^the checkpoint .*missing\.json cannot be loaded: ENOENT/);
  assert.ok(r.log.some((l) => l.includes('Cannot serve')));
  const refused = await startCli(['--port', '0', '--checkpoint', checkpoint]);
  assert.ok('exitCode' in refused);
  assert.equal(refused.exitCode, 2, 'no API key file and no --no-auth');
});
