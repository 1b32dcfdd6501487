import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlatformValidator, PlatformValidatorUnavailable, fieldFromMessage, resolvePython, stableJson } from './verdict.ts';

const validator = new PlatformValidator();
after(() => validator.close());

describe('the platform validator process', () => {
  test('answers with the pinned package and the contract version', async () => {
    assert.deepEqual(await validator.hello(), { manifestVersion: '1.29.0', apiVersion: 'agilerl.com/v1' });
  });

  test('names a field inside a union by the key the user wrote, keeping the platform\'s own path', async () => {
    const v = await validator.verdict({ algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1', num_envs: 0 } });
    assert.equal(v.valid, false);
    assert.deepEqual(!v.valid && v.errors.map((e) => [e.field, e.platformPath, e.kind]), [['environment.num_envs', 'environment.gym.num_envs', 'greater_than_equal']]);
  });

  test('a valid manifest comes back with the platform\'s resolved payload', async () => {
    const v = await validator.verdict({ algorithm: { name: 'DQN', batch_size: '64' }, environment: { name: 'CartPole-v1' } });
    assert.ok(v.valid);
    assert.equal((v.payload.algorithm as { batch_size: unknown }).batch_size, 64);
  });

  test('input that breaks the platform\'s own code is a refusal, and the process keeps serving', async () => {
    const v = await validator.verdict({ algorithm: { name: ['DQN'] }, environment: {} });
    assert.equal(v.valid, false);
    assert.match(!v.valid ? v.errors[0]!.message : '', /the platform's validator failed on this manifest: TypeError/);
    assert.equal((await validator.verdict({ algorithm: { name: 'PPO' }, environment: { name: 'CartPole-v1' } })).valid, true);
  });

  test('values JSON has no word for are answered, not lost', async () => {
    const inf = await validator.parseYaml('a: .inf\n');
    assert.ok('unreadable' in inf && inf.unreadable.startsWith('holds a value JSON cannot carry'), JSON.stringify(inf));
    const v = await validator.verdictYaml('algorithm: {name: DQN}\nenvironment: {name: CartPole-v1}\ntraining: {max_steps: .nan}\n');
    assert.ok('valid' in v && v.valid === false);
  });

  test('YAML is read as the platform reads files (YAML 1.1)', async () => {
    assert.deepEqual(await validator.parseYaml('a: yes\nb: 010\nc: 1e3\n'), { document: { a: true, b: 8, c: '1e3' } });
    assert.ok('unreadable' in (await validator.verdictYaml('a: [')));
  });

  test('the same document in another key order finds its cached verdict', () => {
    assert.equal(stableJson({ b: 1, a: { d: 2, c: [3, { f: 4, e: 5 }] } }), stableJson({ a: { c: [3, { e: 5, f: 4 }], d: 2 }, b: 1 }));
  });
});

describe('when the process misbehaves', () => {
  let dir = '';
  after(async () => rm(dir, { recursive: true, force: true }));

  async function fakePython(body: string): Promise<string> {
    dir ||= await mkdtemp(join(tmpdir(), 'arena-verdict-'));
    const path = join(dir, `python-${Math.random().toString(36).slice(2)}`);
    await writeFile(path, `#!/usr/bin/env bash\n${body}\n`);
    await chmod(path, 0o755);
    return path;
  }

  test('no interpreter: says how to get one', () => {
    assert.throws(() => resolvePython('/nonexistent/python'), (err: unknown) => err instanceof PlatformValidatorUnavailable && /make setup/.test((err as Error).message));
  });

  test('a process that dies fails the request with what it said, and the next request starts a new one', async () => {
    const v = new PlatformValidator({ python: await fakePython('echo "no agilerl here" >&2; exit 3') });
    await assert.rejects(v.hello(), /exited \(code 3\): no agilerl here/);
    await assert.rejects(v.hello(), /exited \(code 3\)/);
    v.close();
  });

  test('an answer that is not JSON fails that request instead of hanging', async () => {
    const v = new PlatformValidator({ python: await fakePython('read line; echo "not json"; sleep 5'), timeoutMs: 2000 });
    await assert.rejects(v.hello(), /not JSON: not json/);
    v.close();
  });

  test('a process that never answers times out, and the request after it goes to a fresh process', async () => {
    const v = new PlatformValidator({ python: await fakePython('sleep 30'), timeoutMs: 300 });
    await assert.rejects(v.hello(), /did not answer within 300 ms/);
    await assert.rejects(v.hello(), /did not answer within 300 ms/, 'a fresh process, with its own timeout, not the dead one\'s exit');
    v.close();
  });
});

test('root-level rules are located from their message', () => {
  const cases: [string, string][] = [
    ["Unsupported manifest apiVersion 'x'; this build speaks 'agilerl.com/v1'.", 'apiVersion'],
    ["mutation.rl_hp_selection cannot mutate 'lrr': DQN has no such hyperparameter.", 'mutation.rl_hp_selection.lrr'],
    ['algorithm.num_envs=3 disagrees with 4 from another section.', 'algorithm.num_envs'],
    ['replay_buffer.group_replay_max_age > 0 requires a GRPO-family algorithm', 'replay_buffer.group_replay_max_age'],
    ["DQN builds its own networks, so the network section must not declare 'pretrained_model_name_or_path'.", 'network.pretrained_model_name_or_path'],
    ['`simba` and `recurrent` cannot both be set', 'network.simba'],
    ['Async rollout requires an LLMRolloutBufferSpec, got None', 'replay_buffer'],
    ['something else entirely', ''],
  ];
  for (const [message, field] of cases) assert.equal(fieldFromMessage(message), field, message);
});
