// AgileRL checkpoints through `arena-runtime serve`: a tiny run of the real AgileRL trainer (python -m
// arena_agilerl), served by the real HTTP server, answers /get_action with exactly what AgileRL's own get_action
// returns for the same checkpoint, computed in a separate Python process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeNpyBase64, encodeNpyBase64, ndarray, type NdArray } from '../npy/npy.ts';
import { trainAgileRl } from '../testing/agilerl.ts';
import { Rng } from '../testing/rng.ts';
import { AgileRlActionModel, isAgileRlCheckpoint, notAgileRlCheckpoint } from './agilerl-model.ts';
import { parseServeArgs, type ServeConfig } from './config.ts';
import { startInferenceServer, type RunningInferenceServer } from './server.ts';
import { setupServeReady } from './setup.ts';
import { agilerlActions, call, quietLogger, tempDir } from './testing.ts';

const tmp = tempDir('serve-agilerl-');

/** One run of the real trainer; the newest checkpoint folder it wrote. */
const train = async (name: string, manifest?: unknown) => (await trainAgileRl(tmp.dir, name, manifest)).at(-1)!.path;

/** AgileRL's actions for `obs`: one get_action for the whole batch, or one per row ('rows'). */
const reference = (folder: string, mode: 'batch' | 'rows', obs: NdArray, mask?: NdArray) => agilerlActions(folder, obs, { mode, ...(mask ? { mask } : {}) });

const config = (over: Partial<ServeConfig>): ServeConfig => {
  const parsed = parseServeArgs([], {});
  assert.ok(parsed.ok && !parsed.help);
  return { ...parsed.config, noAuth: true, host: '127.0.0.1', port: 0, ...over };
};

interface Served {
  server: RunningInferenceServer;
  model: AgileRlActionModel;
}

async function serve(checkpoint: string): Promise<Served> {
  const r = await setupServeReady(config({ checkpoint }), quietLogger(), { onModelExit: (reason) => assert.fail(`the model process ended: ${reason}`) });
  assert.ok(r.ok, r.ok ? '' : r.reason);
  assert.ok(r.options.actions instanceof AgileRlActionModel);
  return { server: await startInferenceServer(r.options), model: r.options.actions };
}

const post = (s: Served, body: unknown) => call(s.server.url, 'POST', '/get_action', { body });

/** `count` CartPole-like observations spread wider than the trainer saw, so both actions come up. */
function observations(count: number, width: number, scale: number[], seed: number): NdArray {
  const rng = new Rng(seed);
  const values: number[] = [];
  for (let i = 0; i < count; i++) for (let j = 0; j < width; j++) values.push((rng.next() * 2 - 1) * scale[j]!);
  return ndarray('f4', [count, width], values);
}

let dqn: Served;
let dqnFolder: string;
let td3: Served;
let td3Folder: string;

before(async () => {
  dqnFolder = await train('dqn');
  td3Folder = await train('td3', {
    algorithm: { name: 'TD3', batch_size: 64, lr_actor: 0.001, lr_critic: 0.001, learn_step: 1, gamma: 0.99, tau: 0.005 },
    environment: { name: 'Pendulum-v1', num_envs: 4 },
    training: { max_steps: 1000, evo_steps: 500, pop_size: 2, eval_loop: 1, learning_delay: 200 },
    network: { arch: 'mlp', latent_dim: 32, encoder_config: { hidden_size: [32] }, head_config: { hidden_size: [32] } },
    replay_buffer: { max_size: 10000 },
  });
  [dqn, td3] = await Promise.all([serve(dqnFolder), serve(td3Folder)]);
});

after(async () => {
  for (const s of [dqn, td3]) {
    if (!s) continue;
    await s.server.close();
    await s.model.close();
  }
  tmp.remove();
});

test('what the trainer writes is an AgileRL checkpoint; anything else says why not', () => {
  assert.equal(isAgileRlCheckpoint(dqnFolder), true);
  const pt = readdirSync(dqnFolder).find((f) => f.endsWith('.pt'))!;
  assert.equal(isAgileRlCheckpoint(join(dqnFolder, pt)), true);
  const runDir = join(dqnFolder, '..');
  assert.equal(isAgileRlCheckpoint(runDir), false, 'a run folder holds checkpoint folders, not member files');
  assert.equal(notAgileRlCheckpoint(runDir), 'the folder holds no arena-checkpoint.json and no .pt file');
  assert.equal(notAgileRlCheckpoint(join(dqnFolder, 'arena-checkpoint.json')), 'it is a file whose name does not end in .pt');
  assert.equal(notAgileRlCheckpoint(join(tmp.dir, 'nope')), 'it does not exist');
});

test('/status describes the loaded agent', async () => {
  const r = await call(dqn.server.url, 'GET', '/status');
  assert.deepEqual(r.json.agent, { algo: 'DQN', multi_agent: false, llm: false, recurrent: false, supervised: false });
  assert.equal((await call(td3.server.url, 'GET', '/status')).json.agent.algo, 'TD3');
  const meta = JSON.parse(readFileSync(join(dqnFolder, 'arena-checkpoint.json'), 'utf8')) as { elite: string };
  assert.match(dqn.model.description, new RegExp(`^AgileRL DQN CartPole-v1, step \\d+, member \\d+ \\(fitness [\\d.]+\\), ${meta.elite} on cpu$`));
});

test('DQN: /get_action equals AgileRL get_action on 200 observations, batched and one by one, with and without masks', async (t) => {
  const n = 200;
  const obs = observations(n, 4, [2.4, 2, 0.21, 2], 7);
  const rng = new Rng(11);
  const maskValues: number[] = [];
  for (let i = 0; i < n; i++) {
    const allowed = rng.int(3); // 0: left only, 1: right only, 2: both
    maskValues.push(allowed === 1 ? 0 : 1, allowed === 0 ? 0 : 1);
  }
  const mask = ndarray('i1', [n, 2], maskValues);
  const [expected, expectedMasked, expectedRows] = await Promise.all([
    reference(dqnFolder, 'batch', obs),
    reference(dqnFolder, 'batch', obs, mask),
    reference(dqnFolder, 'rows', obs, mask),
  ]);
  const want = [...expected.data].map(Number);
  const wantMasked = [...expectedMasked.data].map(Number);

  const batched = await post(dqn, { obs: encodeNpyBase64(obs), batch_size: n });
  assert.equal(batched.status, 200, batched.text);
  const action = decodeNpyBase64(batched.json.action);
  assert.equal(action.dtype, expected.dtype);
  assert.deepEqual(action.shape, [n]);
  assert.deepEqual([...action.data].map(Number), want);

  const masked = await post(dqn, { obs: encodeNpyBase64(obs), action_mask: encodeNpyBase64(mask) });
  assert.equal(masked.status, 200, masked.text);
  const got = [...decodeNpyBase64(masked.json.action).data].map(Number);
  assert.deepEqual(got, wantMasked);
  got.forEach((a, i) => assert.equal(maskValues[i * 2 + a], 1, `row ${i} chose forbidden action ${a}`));

  const single: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = ndarray('f4', [1, 4], (obs.data as Float32Array).subarray(i * 4, i * 4 + 4));
    const r = await post(dqn, { obs: encodeNpyBase64(row), action_mask: encodeNpyBase64(ndarray('i1', [1, 2], maskValues.slice(i * 2, i * 2 + 2))) });
    assert.equal(r.status, 200, r.text);
    single.push(Number(decodeNpyBase64(r.json.action).data[0]));
  }
  assert.deepEqual(single, [...expectedRows.data].map(Number));
  const lefts = want.filter((a) => a === 0).length;
  t.diagnostic(`unmasked: ${lefts} left, ${n - lefts} right; masks changed ${want.filter((a, i) => a !== wantMasked[i]).length} of ${n} actions`);
  assert.ok(lefts > 0 && lefts < n, 'the observations exercise both actions');
});

test('TD3: /get_action equals AgileRL get_action (no exploration noise) on 200 Pendulum observations', async () => {
  const n = 200;
  const obs = observations(n, 3, [1, 1, 8], 3);
  const [expected, expectedRows] = await Promise.all([reference(td3Folder, 'batch', obs), reference(td3Folder, 'rows', obs)]);
  const r = await post(td3, { obs: encodeNpyBase64(obs), batch_size: n });
  assert.equal(r.status, 200, r.text);
  const action = decodeNpyBase64(r.json.action);
  assert.equal(action.dtype, expected.dtype);
  assert.deepEqual(action.shape, [n, 1]);
  assert.deepEqual([...action.data], [...expected.data]);
  assert.ok([...action.data].every((a) => Number(a) >= -2 && Number(a) <= 2), 'within the action space');
  // One row per request is AgileRL's one-row get_action (a batch of 200 rounds the last bit of a few differently).
  for (let i = 0; i < 20; i++) {
    const row = ndarray('f4', [1, 3], (obs.data as Float32Array).subarray(i * 3, i * 3 + 3));
    const one = await post(td3, { obs: encodeNpyBase64(row) });
    assert.equal(one.status, 200, one.text);
    assert.equal(decodeNpyBase64(one.json.action).data[0], expectedRows.data[i]);
  }
  // Evaluation mode: the same observation gets the same action again.
  const again = await post(td3, { obs: encodeNpyBase64(obs), batch_size: n });
  assert.deepEqual([...decodeNpyBase64(again.json.action).data], [...action.data]);
});

test('malformed input answers 400 naming the field, and the process keeps serving', async () => {
  const b64 = (dtype: 'f4' | 'i1' | 'i8' | 'b1', shape: number[], values: number[]) => encodeNpyBase64(ndarray(dtype, shape, values));
  const cases: { served: () => Served; body: unknown; message: RegExp }[] = [
    { served: () => dqn, body: { obs: b64('f4', [1, 3], [0, 0, 0]) }, message: /^obs: expected shape \(N, 4\), got \(N, 3\)$/ },
    { served: () => dqn, body: { obs: b64('f4', [2], [0, 0]) }, message: /^obs: expected shape \(N, 4\), got \(N,\)$/ },
    { served: () => dqn, body: { obs: { a: b64('f4', [1, 4], [0, 0, 0, 0]) } }, message: /^obs: expected one array, got an object keyed by "a"$/ },
    { served: () => dqn, body: { obs: b64('b1', [1, 4], [1, 0, 1, 0]) }, message: /^obs: expected a numeric array, got booleans$/ },
    { served: () => dqn, body: { obs: b64('f4', [2, 4], [0, 0, 0, 0, 0, Number.NaN, 0, 0]) }, message: /^obs: row 1 holds a non-finite value$/ },
    { served: () => dqn, body: { obs: b64('f4', [1, 4], [0, 0, 0, 0]), action_mask: b64('i1', [1, 3], [1, 1, 1]) }, message: /^action_mask: expected shape \(N, 2\), got \(N, 3\)$/ },
    { served: () => dqn, body: { obs: b64('f4', [2, 4], [0, 0, 0, 0, 0, 0, 0, 0]), action_mask: b64('i1', [2, 2], [1, 0, 0, 0]) }, message: /^action_mask: row 1 allows no action$/ },
    { served: () => dqn, body: { obs: b64('f4', [1, 4], [0, 0, 0, 0]), action_mask: [b64('i1', [1, 2], [1, 1])] }, message: /^action_mask: expected one array of shape \(N, 2\), got a tuple of 1$/ },
    { served: () => td3, body: { obs: b64('f4', [1, 3], [0, 0, 0]), action_mask: b64('i1', [1, 1], [1]) }, message: /^action_mask: TD3 with this action space takes no action mask$/ },
    { served: () => td3, body: { obs: b64('f4', [1, 4], [0, 0, 0, 0]) }, message: /^obs: expected shape \(N, 3\), got \(N, 4\)$/ },
  ];
  for (const c of cases) {
    const r = await post(c.served(), c.body);
    assert.equal(r.status, 400, `${JSON.stringify(c.body).slice(0, 120)}: ${r.text}`);
    assert.match(r.json.error.message, c.message);
  }
  const ok = await post(dqn, { obs: b64('f4', [1, 4], [0, 0, 0.05, 0]) });
  assert.equal(ok.status, 200, ok.text);
});

test('serve.py answers bad input that reaches it with the field, never by ending', async () => {
  // Past the TS checks on purpose (a request straight to the model): the process checks the same things itself.
  const obs = ndarray('f4', [1, 4], [0, Number.POSITIVE_INFINITY, 0, 0]);
  await assert.rejects(dqn.model.getAction({ obs, batchSize: 1 }), /obs: row 0 holds a non-finite value/);
  const r = await dqn.model.getAction({ obs: ndarray('f4', [1, 4], [0, 0, 0, 0]), batchSize: 1 });
  assert.deepEqual((r.action as NdArray).shape, [1]);
});

test('a checkpoint that cannot be loaded is a failed setup with the reason', async () => {
  const broken = join(tmp.dir, 'broken.pt');
  writeFileSync(broken, 'not a torch file');
  const exits: string[] = [];
  const corrupt = await setupServeReady(config({ checkpoint: broken }), quietLogger(), { onModelExit: (reason) => exits.push(reason) });
  assert.equal(corrupt.ok, false);
  if (!corrupt.ok) {
    assert.equal(corrupt.kind, 'failed');
    assert.match(corrupt.reason, /^the checkpoint .*broken\.pt cannot be loaded: UnpicklingError: /);
  }
  // A folder whose metadata names a member file that is gone.
  const gone = join(tmp.dir, 'gone');
  mkdirSync(gone);
  writeFileSync(join(gone, 'arena-checkpoint.json'), JSON.stringify({ format: 'arena.agilerl/v1', elite: 'agent_0_5.pt', agents: [{ file: 'agent_0_5.pt', index: 0, steps: 5, fitness: 1 }] }));
  const r = await setupServeReady(config({ checkpoint: gone }), quietLogger(), { onModelExit: (reason) => exits.push(reason) });
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.reason, /cannot be loaded: .*names agent_0_5\.pt, which is not in the folder/);
  assert.equal(exits.length, 2, 'the hook hears of each process that ended');
});
