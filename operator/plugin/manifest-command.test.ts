import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { platformValidator } from '../api/platform/verdict.ts';
import { runPlugin } from './cli.ts';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arena-manifest-'));
});
after(async () => {
  platformValidator().close();
  await rm(dir, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runPlugin(args, {
    io: { out: (t) => void (out += t), err: (t) => void (err += t) },
    client: () => {
      throw new Error('manifest commands never need a cluster');
    },
  });
  return { code, out, err };
}

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('kubectl arena manifest validate', () => {
  const cases: { name: string; text: string; code: number; errors?: { field: string; message: RegExp }[] }[] = [
    { name: 'valid YAML', text: 'algorithm: {name: DQN}\nenvironment: {name: CartPole-v1}\n', code: 0, errors: [] },
    { name: 'valid JSON', text: '{"algorithm": {"name": "PPO"}, "environment": {"name": "CartPole-v1"}}', code: 0, errors: [] },
    { name: 'YAML 1.1 booleans read as the platform reads them', text: 'algorithm: {name: DQN}\nenvironment: {name: CartPole-v1}\ntraining: {hpo: yes}\n', code: 0, errors: [] },
    {
      name: 'a field at its bound names the field with a dotted path',
      text: 'algorithm: {name: DQN}\nenvironment: {name: CartPole-v1}\ntraining: {pop_size: 0}\n',
      code: 1,
      errors: [{ field: 'training.pop_size', message: /greater than or equal to 1/ }],
    },
    {
      name: 'an unknown key is named',
      text: 'algorithm: {name: DQN, hidden_size: 64}\nenvironment: {name: CartPole-v1}\n',
      code: 1,
      errors: [{ field: 'algorithm.hidden_size', message: /Extra inputs are not permitted/ }],
    },
    { name: 'a root-level rule still names its field', text: 'apiVersion: agilerl.com/v9\nalgorithm: {name: DQN}\nenvironment: {name: x}\n', code: 1, errors: [{ field: 'apiVersion', message: /Unsupported manifest apiVersion/ }] },
    { name: 'not YAML', text: 'algorithm: [', code: 2 },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const path = await file(`${c.name.replace(/\W+/g, '-')}.yaml`, c.text);
      const r = await run(['manifest', 'validate', path, '--json']);
      assert.equal(r.code, c.code, r.err);
      if (c.code === 2) {
        assert.equal(r.out, '');
        assert.match(r.err, /could not read/);
        return;
      }
      const verdict = JSON.parse(r.out) as { valid: boolean; errors: { field: string; message: string }[] };
      assert.deepEqual(Object.keys(verdict), ['valid', 'errors'], 'exactly the documented shape');
      assert.equal(verdict.valid, c.code === 0);
      assert.equal(verdict.errors.length, c.errors!.length, r.out);
      c.errors!.forEach((e, i) => {
        assert.deepEqual(Object.keys(verdict.errors[i]!), ['field', 'message']);
        assert.equal(verdict.errors[i]!.field, e.field);
        assert.match(verdict.errors[i]!.message, e.message);
      });
    });
  }

  test('a file that does not exist exits 2', async () => {
    const r = await run(['manifest', 'validate', join(dir, 'missing.yaml')]);
    assert.equal(r.code, 2);
    assert.match(r.err, /could not read .*missing\.yaml/);
  });

  test('text output: a line per error, or valid with the algorithm', async () => {
    const ok = await run(['manifest', 'validate', await file('ok.yaml', 'algorithm: {name: TD3}\nenvironment: {name: Pendulum-v1}\n')]);
    assert.equal(ok.code, 0);
    assert.match(ok.out, /ok\.yaml: valid \(TD3\)/);
    const bad = await run(['manifest', 'validate', await file('bad.yaml', 'algorithm: {name: TD3, lr_actor: -1}\nenvironment: {name: Pendulum-v1}\n')]);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /bad\.yaml: algorithm\.lr_actor: /);
  });

  test('usage errors exit 2', async () => {
    assert.equal((await run(['manifest'])).code, 2);
    assert.equal((await run(['manifest', 'check', 'x'])).code, 2);
    assert.equal((await run(['manifest', 'validate'])).code, 2);
  });
});

test('kubectl arena manifest schema prints the platform\'s JSON Schema', async () => {
  const r = await run(['manifest', 'schema']);
  assert.equal(r.code, 0);
  const schema = JSON.parse(r.out) as { title: string; required: string[]; properties: Record<string, unknown> };
  assert.deepEqual(schema.required, ['algorithm', 'environment']);
  for (const section of ['apiVersion', 'algorithm', 'environment', 'training', 'network', 'mutation', 'replay_buffer']) assert.ok(section in schema.properties, section);
});
