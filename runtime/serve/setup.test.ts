import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Manifest } from '../../operator/api/v1alpha1/manifest.ts';
import { agentInfoFromManifest } from './agent-info.ts';
import { AgileRlActionModel } from './agilerl-model.ts';
import { parseServeArgs, type ServeConfig } from './config.ts';
import { setupServe, type SetupResult } from './setup.ts';
import { tinyDqnManifest, trainAgileRl } from '../testing/agilerl.ts';
import { quietLogger, tempDir, writeKey } from './testing.ts';

const tmp = tempDir('serve-setup-');
// A real AgileRL checkpoint: one evolution step of the trainer's tiny DQN CartPole run (the fixture's training is the
// time this file takes; setupServe itself only starts the model process, which each case stops again).
let checkpoint = '';
let memberFile = '';
before(async () => {
  const manifest = tinyDqnManifest();
  checkpoint = (await trainAgileRl(tmp.dir, 'fixture', { ...manifest, training: { ...manifest.training, max_steps: 500 } })).at(-1)!.path;
  memberFile = join(checkpoint, readdirSync(checkpoint).find((f) => f.endsWith('.pt'))!);
});
const started: AgileRlActionModel[] = [];
after(async () => {
  await Promise.all(started.map((m) => m.close(0)));
  tmp.remove();
});
const keyFile = join(tmp.dir, 'key');
writeKey(keyFile, 'k');

const manifest = (name: string, m: Record<string, unknown>) => {
  const path = join(tmp.dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(m));
  return path;
};
const dqn = manifest('dqn', { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } });
const ppo = manifest('ppo', { algorithm: { name: 'PPO', recurrent: true }, environment: { name: 'CartPole-v1' } });
const grpo = manifest('grpo', { algorithm: { name: 'GRPO', group_size: 4, pretrained_model_name_or_path: 'Qwen/Qwen2.5-0.5B' }, environment: { name: 'gsm8k' } });
const invalid = manifest('invalid', { algorithm: { name: 'NoSuchAlgorithm' }, environment: { name: 'CartPole-v1' } });
const yaml = join(tmp.dir, 'dqn.yaml');
writeFileSync(yaml, 'algorithm:\n  name: DQN\nenvironment:\n  name: CartPole-v1\n');
const notCheckpoint = join(tmp.dir, 'not-a-checkpoint.json');
writeFileSync(notCheckpoint, '{"format": "torch"}');
const emptyFolder = join(tmp.dir, 'empty-run');
mkdirSync(emptyFolder);
writeFileSync(join(emptyFolder, 'step-100.json'), '{}');

const config = (over: Partial<ServeConfig>): ServeConfig => {
  const parsed = parseServeArgs([], {});
  assert.ok(parsed.ok && !parsed.help);
  return { ...parsed.config, apiKeyFile: keyFile, ...over };
};

/** setupServe, with the model process it starts (if any) stopped after the file. */
function setup(over: Partial<ServeConfig>): SetupResult {
  const r = setupServe(config(over), quietLogger(), { onModelExit: () => undefined });
  if (r.ok && r.options.actions instanceof AgileRlActionModel) started.push(r.options.actions);
  return r;
}

// Paths and manifests are read when a case runs: the checkpoint exists only once before() has trained it.
const cases: { name: string; config: () => Partial<ServeConfig>; route?: string; algo?: string; refused?: RegExp; notAgileRl?: string }[] = [
  { name: 'a checkpoint folder alone (the algorithm from its arena-checkpoint.json)', config: () => ({ checkpoint }), route: 'get_action', algo: 'DQN' },
  { name: 'a member .pt file alone (the algorithm once loaded)', config: () => ({ checkpoint: memberFile }), route: 'get_action', algo: 'AgileRL' },
  { name: 'a DQN manifest and checkpoint', config: () => ({ checkpoint, manifestPath: dqn }), route: 'get_action', algo: 'DQN' },
  { name: 'a YAML manifest', config: () => ({ checkpoint, manifestPath: yaml }), route: 'get_action', algo: 'DQN' },
  { name: 'a PPO manifest: it decides /status', config: () => ({ checkpoint, manifestPath: ppo }), route: 'get_action', algo: 'PPO' },
  { name: 'an LLM manifest', config: () => ({ manifestPath: grpo }), route: 'generate', algo: 'GRPO' },
  { name: 'no API key file', config: () => ({ checkpoint, apiKeyFile: undefined }), refused: /no API key: set ARENA_API_KEY_FILE/ },
  { name: 'nothing to serve', config: () => ({}), refused: /nothing to serve/ },
  { name: 'an invalid manifest', config: () => ({ checkpoint, manifestPath: invalid }), refused: /is not valid: .*algorithm\.name/ },
  { name: 'a missing manifest', config: () => ({ checkpoint, manifestPath: join(tmp.dir, 'nope.json') }), refused: /cannot be read: ENOENT/ },
  { name: 'a manifest but no checkpoint', config: () => ({ manifestPath: dqn }), refused: /^no checkpoint: give --checkpoint/ },
  { name: 'a missing checkpoint', config: () => ({ checkpoint: join(tmp.dir, 'nope') }), notAgileRl: 'it does not exist' },
  { name: 'a file that is not a .pt', config: () => ({ checkpoint: notCheckpoint }), notAgileRl: 'it is a file whose name does not end in .pt' },
  { name: 'a folder without arena-checkpoint.json or .pt files', config: () => ({ checkpoint: emptyFolder }), notAgileRl: 'the folder holds no arena-checkpoint.json and no .pt file' },
];

for (const c of cases) {
  test(`setup with ${c.name}`, () => {
    const over = c.config();
    const r = setup(over);
    if (c.refused) {
      assert.ok(!r.ok && r.kind === 'refused', JSON.stringify(r));
      assert.match(r.reason, c.refused);
      return;
    }
    if (c.notAgileRl) {
      // A failed start (exit 1), before any model process: the path, what is wrong with it, and what is expected.
      assert.ok(!r.ok && r.kind === 'failed', JSON.stringify(r));
      const expected = `the checkpoint ${over.checkpoint} cannot be loaded: it is not an AgileRL checkpoint (${c.notAgileRl}); expected a folder with arena-checkpoint.json (as the trainer writes) or an AgileRL .pt file`;
      assert.equal(r.reason, expected);
      return;
    }
    assert.ok(r.ok, r.ok ? '' : r.reason);
    assert.equal(r.options.route, c.route);
    assert.equal(r.options.agent?.algo, c.algo);
    assert.equal(r.options.actions instanceof AgileRlActionModel, c.route === 'get_action');
    assert.equal(r.options.engine !== undefined, c.route === 'generate');
  });
}

test('/status agent flags follow the algorithm family', () => {
  const agent = (m: string) => {
    const r = setup({ manifestPath: m, checkpoint });
    assert.ok(r.ok);
    return r.options.agent;
  };
  assert.deepEqual(agent(grpo), { algo: 'GRPO', multi_agent: false, llm: true, recurrent: false, supervised: false });
  assert.deepEqual(agent(dqn), { algo: 'DQN', multi_agent: false, llm: false, recurrent: false, supervised: false });
  assert.deepEqual(agent(ppo), { algo: 'PPO', multi_agent: false, llm: false, recurrent: true, supervised: false });
});

test('/status agent flags: recurrent from the manifest or the algorithm, multi-agent from the family', () => {
  const flags = (algorithm: Manifest['algorithm']) => agentInfoFromManifest({ algorithm, environment: { name: 'CartPole-v1' } });
  assert.equal(flags({ name: 'PPO', recurrent: true }).recurrent, true);
  assert.equal(flags({ name: 'PPO' }).recurrent, false);
  assert.equal(flags({ name: 'RecurrentPPO' } as Manifest['algorithm']).recurrent, true);
  assert.deepEqual(flags({ name: 'IPPO' }), { algo: 'IPPO', multi_agent: true, llm: false, recurrent: false, supervised: false });
});

const argCases: { argv: string[]; env?: NodeJS.ProcessEnv; expect: Partial<ServeConfig> | RegExp }[] = [
  { argv: [], env: {}, expect: { port: 8000, host: '0.0.0.0', engineUrl: 'http://127.0.0.1:30000', noAuth: false, maxBodyBytes: 8 * 1024 * 1024, deploymentId: '' } },
  {
    argv: [],
    env: { ARENA_CHECKPOINT: '/c', ARENA_MANIFEST: '/m', ARENA_API_KEY_FILE: '/k', ARENA_DEPLOYMENT_ID: 'd1', ENGINE_URL: 'http://e:1', POD_NAME: 'p1', HOSTNAME: 'h1' },
    expect: { checkpoint: '/c', manifestPath: '/m', apiKeyFile: '/k', deploymentId: 'd1', engineUrl: 'http://e:1', instanceId: 'p1' },
  },
  { argv: [], env: { HOSTNAME: 'h1' }, expect: { instanceId: 'h1' } },
  { argv: ['--checkpoint', '/flag', '--port', '9000', '--no-auth'], env: { ARENA_CHECKPOINT: '/env' }, expect: { checkpoint: '/flag', port: 9000, noAuth: true } },
  { argv: ['--port', 'http'], expect: /--port must be an integer/ },
  { argv: ['--port', '70000'], expect: /--port must be an integer from 0 to 65535/ },
  { argv: ['--engine-url', 'ftp://x'], expect: /must be an http\(s\) URL/ },
  { argv: ['--bogus'], expect: /Unknown option '--bogus'/ },
  { argv: ['extra'], expect: /positional/ },
];

for (const c of argCases) {
  test(`arguments ${JSON.stringify(c.argv)} ${JSON.stringify(c.env ?? {})}`, () => {
    const r = parseServeArgs(c.argv, c.env ?? {});
    if (c.expect instanceof RegExp) {
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.error, c.expect);
      return;
    }
    assert.ok(r.ok && !r.help);
    for (const [k, v] of Object.entries(c.expect)) assert.equal(r.config[k as keyof ServeConfig], v, k);
  });
}
