import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALGORITHM_NAMES, LLM_ALGORITHMS, algorithmFamily, inferencePath, needsGpu, type AlgorithmFamily, type AlgorithmName, type InferencePath } from './v1alpha1/manifest.ts';
import { validateManifest } from './validate.ts';

const table: [AlgorithmName, AlgorithmFamily, boolean, InferencePath][] = [
  ['DQN', 'classic-rl', false, 'get_action'],
  ['RainbowDQN', 'classic-rl', false, 'get_action'],
  ['DDPG', 'classic-rl', false, 'get_action'],
  ['TD3', 'classic-rl', false, 'get_action'],
  ['PPO', 'classic-rl', false, 'get_action'],
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
  ['Supervised', 'supervised', false, 'predict'],
  ['LatentPPO', 'latent-ppo', false, 'predict'],
];

describe('algorithm families', () => {
  test('the table covers every algorithm', () => assert.deepEqual(table.map(([name]) => name).sort(), [...ALGORITHM_NAMES].sort()));
  for (const [name, family, gpu, path] of table) {
    test(name, () => {
      assert.equal(algorithmFamily(name), family);
      assert.equal(needsGpu(name), gpu);
      assert.equal(inferencePath(name), path);
    });
  }
  test('LLM_ALGORITHMS lists the llm family', () => assert.deepEqual(LLM_ALGORITHMS, table.filter(([, f]) => f === 'llm').map(([n]) => n)));
});

const base = () => ({ algorithm: { name: 'DQN' } as Record<string, unknown>, environment: { name: 'CartPole-v1' } as Record<string, unknown> });

describe('manifest rules, case by case', () => {
  const cases: { name: string; manifest: Record<string, unknown>; field?: string }[] = [
    { name: 'minimal', manifest: base() },
    { name: 'evo_steps equal to max_steps', manifest: { ...base(), training: { max_steps: 100, evo_steps: 100 } } },
    { name: 'evo_steps above max_steps', manifest: { ...base(), training: { max_steps: 100, evo_steps: 101 } }, field: 'training.evo_steps' },
    { name: 'eps_start equal to eps_end', manifest: { ...base(), training: { eps_start: 0.1, eps_end: 0.1 } } },
    { name: 'eps_start alone', manifest: { ...base(), training: { eps_start: 0.1 } } },
    { name: 'eps_decay above 1', manifest: { ...base(), training: { eps_decay: 1.5 } }, field: 'training.eps_decay' },
    { name: 'eval_steps alone', manifest: { ...base(), training: { eval_steps: 5 } } },
    { name: 'eval_steps above evaluation_interval', manifest: { ...base(), training: { eval_steps: 11, evaluation_interval: 10 } } },
    { name: 'simba without recurrent', manifest: { ...base(), network: { simba: true, recurrent: false } } },
    { name: 'recurrent PPO with simba', manifest: { ...base(), algorithm: { name: 'PPO', recurrent: true }, network: { simba: true } }, field: 'network.simba' },
    {
      name: 'LLM model path in network',
      manifest: { algorithm: { name: 'DPO' }, environment: { name: 'prefs', type: 'preference' }, network: { pretrained_model_name_or_path: 'Qwen/Qwen3-1.7B' } },
    },
    { name: 'LLM without a model', manifest: { algorithm: { name: 'SFT' }, environment: { name: 'chats', type: 'sft' } }, field: 'algorithm.pretrained_model_name_or_path' },
    { name: 'use_vllm false without config', manifest: { ...base(), algorithm: { name: 'DQN', use_vllm: false } } },
    { name: 'all mutation probabilities zero except a default', manifest: { ...base(), mutation: { probabilities: { no_mut: 0, arch_mut: 0, new_layer: 0, params_mut: 0, act_mut: 0 } } } },
    { name: 'only act_mut above zero', manifest: { ...base(), mutation: { probabilities: { no_mut: 0, arch_mut: 0, new_layer: 0, params_mut: 0, act_mut: 0.5, rl_hp_mut: 0 } } } },
    { name: 'grow_factor below 1', manifest: { ...base(), mutation: { rl_hp_selection: { lr: { min: 0.1, max: 1, grow_factor: 0.9 } } } }, field: 'mutation.rl_hp_selection.lr.grow_factor' },
    { name: 'range without max', manifest: { ...base(), mutation: { rl_hp_selection: { lr: { min: 0.1 } } } }, field: 'mutation.rl_hp_selection.lr.max' },
    { name: 'negative rand_seed', manifest: { ...base(), mutation: { rand_seed: -1 } }, field: 'mutation.rand_seed' },
    { name: 'environment version as number or string', manifest: { ...base(), environment: { name: 'e', version: 3 } } },
    { name: 'environment version as an object', manifest: { ...base(), environment: { name: 'e', version: { v: 3 } } }, field: 'environment.version' },
    { name: 'strategy other than tournament', manifest: { ...base(), selection_strategy: { strategy: 'roulette' } }, field: 'selection_strategy.strategy' },
    { name: 'per_buffer alpha above 1', manifest: { ...base(), replay_buffer: { per_buffer: { alpha: 2 } } }, field: 'replay_buffer.per_buffer.alpha' },
    { name: 'algorithm without a name', manifest: { algorithm: { batch_size: 64 }, environment: { name: 'e' } }, field: 'algorithm.name' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const result = validateManifest(c.manifest);
      if (!c.field) return assert.deepEqual(result, { ok: true });
      assert.equal(result.ok, false);
      assert.ok(!result.ok && result.errors.some((e) => e.field === c.field), JSON.stringify(result));
    });
  }
});
