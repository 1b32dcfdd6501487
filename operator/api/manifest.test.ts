import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALGORITHM_NAMES, LLM_ALGORITHMS, algorithmFamily, inferencePath, isAlgorithmName, needsGpu, type AlgorithmFamily, type AlgorithmName, type InferencePath } from './v1alpha1/manifest.ts';
import { platformValidator } from './platform/verdict.ts';
import { validateManifest } from './validate.ts';

after(() => platformValidator().close());

const table: [AlgorithmName, AlgorithmFamily, boolean, InferencePath][] = [
  ['DQN', 'single-agent', false, 'get_action'],
  ['Rainbow DQN', 'single-agent', false, 'get_action'],
  ['RainbowDQN', 'single-agent', false, 'get_action'],
  ['DDPG', 'single-agent', false, 'get_action'],
  ['TD3', 'single-agent', false, 'get_action'],
  ['PPO', 'single-agent', false, 'get_action'],
  ['Recurrent PPO', 'single-agent', false, 'get_action'],
  ['RecurrentPPO', 'single-agent', false, 'get_action'],
  ['CQN', 'single-agent', false, 'get_action'],
  ['NeuralUCB', 'single-agent', false, 'get_action'],
  ['NeuralTS', 'single-agent', false, 'get_action'],
  ['MADDPG', 'multi-agent', false, 'get_action'],
  ['MATD3', 'multi-agent', false, 'get_action'],
  ['IPPO', 'multi-agent', false, 'get_action'],
  ['GRPO', 'llm', true, 'generate'],
  ['GSPO', 'llm', true, 'generate'],
  ['CISPO', 'llm', true, 'generate'],
  ['LLMPPO', 'llm', true, 'generate'],
  ['LLMREINFORCE', 'llm', true, 'generate'],
  ['DPO', 'llm', true, 'generate'],
  ['SFT', 'llm', true, 'generate'],
];

describe('algorithm families', () => {
  test('the table covers every algorithm the platform registers', async () => {
    const live = (await platformValidator().registry()).map((e) => e.name).sort();
    assert.deepEqual([...ALGORITHM_NAMES].sort(), live, 'registry.generated.ts is the pinned package\'s registry');
    assert.deepEqual(table.map(([name]) => name).sort(), live);
  });
  for (const [name, family, gpu, path] of table) {
    test(name, () => {
      assert.equal(algorithmFamily(name), family);
      assert.equal(needsGpu(name), gpu);
      assert.equal(inferencePath(name), path);
    });
  }
  test('LLM_ALGORITHMS lists the llm family', () =>
    assert.deepEqual([...LLM_ALGORITHMS].sort(), table.filter(([, f]) => f === 'llm').map(([n]) => n).sort()));
  test('isAlgorithmName knows only registered names', () => {
    assert.ok(isAlgorithmName('Rainbow DQN'));
    for (const bad of ['dqn', 'Supervised', 'LatentPPO', 7, undefined]) assert.equal(isAlgorithmName(bad), false, String(bad));
  });
});

// The CRD's part of the manifest is only structure: whatever it refuses, the platform refuses too (the
// conformance suite checks that on the whole corpus); everything else is the platform's verdict.
describe('the structural part the CRD holds', () => {
  const cases: { name: string; manifest: unknown; field?: string }[] = [
    { name: 'minimal', manifest: { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } } },
    { name: 'unknown keys are kept for the platform to judge', manifest: { algorithm: { name: 'DQN', x: 1 }, environment: {}, extra: true } },
    { name: 'a spelling with a space', manifest: { algorithm: { name: 'Recurrent PPO' }, environment: {} } },
    { name: 'no algorithm', manifest: { environment: {} }, field: 'algorithm' },
    { name: 'no environment', manifest: { algorithm: { name: 'DQN' } }, field: 'environment' },
    { name: 'algorithm without a name', manifest: { algorithm: { batch_size: 64 }, environment: {} }, field: 'algorithm.name' },
    { name: 'an unregistered name', manifest: { algorithm: { name: 'Supervised' }, environment: {} }, field: 'algorithm.name' },
    { name: 'a section that is not an object', manifest: { algorithm: { name: 'DQN' }, environment: {}, training: 'long' }, field: 'training' },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const result = validateManifest(c.manifest);
      if (!c.field) return assert.deepEqual(result, { ok: true });
      assert.equal(result.ok, false);
      assert.ok(!result.ok && result.errors.some((e) => e.field === c.field), JSON.stringify(result));
      assert.equal((await platformValidator().verdict(c.manifest)).valid, false, 'the platform refuses it too');
    });
  }
});
