import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { GpuInfo } from './gpu/probe.ts';
import { LAUNCH_RULES, formatRefusals, setting, validateForLaunch } from './validate.ts';

const demo = JSON.parse(readFileSync(new URL('./trainers/dqn-cartpole/demo-manifest.json', import.meta.url), 'utf8')) as Record<string, unknown>;

/** A GRPO manifest with SkyRL sections, plus overrides merged in at dotted paths. */
function llm(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const m: Record<string, unknown> = {
    algorithm: { name: 'GRPO', group_size: 8, pretrained_model_name_or_path: 'Qwen/Qwen2.5-1.5B-Instruct' },
    environment: { name: 'gsm8k', type: 'reasoning' },
    generator: { backend: 'sglang', n_samples_per_prompt: 8 },
    trainer: { strategy: 'fsdp2', algorithm: { advantage_estimator: 'grpo', eps_clip_low: 0.2, eps_clip_high: 0.28 } },
  };
  for (const [path, value] of Object.entries(overrides)) {
    const keys = path.split('.');
    let cur = m;
    for (const k of keys.slice(0, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>;
    if (value === undefined) delete cur[keys.at(-1)!];
    else cur[keys.at(-1)!] = value;
  }
  return m;
}

const L4: GpuInfo = { index: 0, name: 'NVIDIA L4', computeCapability: { major: 8, minor: 9 } };
const H100: GpuInfo = { index: 0, name: 'NVIDIA H100 80GB HBM3', computeCapability: { major: 9, minor: 0 } };

test('valid manifests pass', () => {
  for (const [name, m, gpus] of [
    ['the demo DQN manifest', demo, []],
    ['a GRPO manifest with SkyRL settings', llm(), [L4]],
    ['fa3 on an H100', llm({ 'generator.engine_init_kwargs.attention_backend': 'fa3' }), [H100]],
    ['megatron with vllm', llm({ 'trainer.strategy': 'megatron', 'generator.backend': 'vllm' }), []],
    ['HTTP endpoint with the async engine', llm({ 'generator.enable_http_endpoint': true, 'generator.async_engine': true }), []],
  ] as const) {
    const r = validateForLaunch(m, { gpus });
    assert.ok(r.ok, `${name}: ${r.ok ? '' : formatRefusals(r.refusals)}`);
  }
});

const RULE_CASES: { name: string; manifest: Record<string, unknown>; gpus?: GpuInfo[]; field: string; message: RegExp }[] = [
  { name: 'GRPO group of one', manifest: llm({ 'algorithm.group_size': 1 }), field: 'algorithm.group_size', message: /group size > 1/ },
  { name: 'GSPO group of one', manifest: llm({ 'algorithm.name': 'GSPO', 'algorithm.group_size': 1 }), field: 'algorithm.group_size', message: /GSPO/ },
  { name: 'GRPO estimator with one sample', manifest: llm({ 'generator.n_samples_per_prompt': 1 }), field: 'generator.n_samples_per_prompt', message: /group size > 1/ },
  {
    name: 'DAPO dynamic sampling with one sample',
    manifest: llm({ 'trainer.algorithm.advantage_estimator': 'rloo', 'trainer.algorithm.dynamic_sampling.type': 'filter', 'generator.n_samples_per_prompt': 1 }),
    field: 'generator.n_samples_per_prompt',
    message: /DAPO .*n_samples_per_prompt >= 2/,
  },
  { name: 'zero low clip', manifest: llm({ 'trainer.algorithm.eps_clip_low': 0 }), field: 'trainer.algorithm.eps_clip_low', message: /must be positive/ },
  { name: 'negative high clip', manifest: llm({ 'trainer.algorithm.eps_clip_high': -0.1 }), field: 'trainer.algorithm.eps_clip_high', message: /must be positive/ },
  { name: 'high clip not above low', manifest: llm({ 'trainer.algorithm.eps_clip_high': 0.2 }), field: 'trainer.algorithm.eps_clip_high', message: /greater than eps_clip_low/ },
  { name: 'zero clip_coef', manifest: llm({ 'algorithm.clip_coef': 0 }), field: 'algorithm.clip_coef', message: /must be positive/ },
  { name: 'HTTP endpoint without the async engine', manifest: llm({ 'generator.enable_http_endpoint': true }), field: 'generator.async_engine', message: /async_engine must be true/ },
  { name: 'SGLang without multi-turn', manifest: llm({ 'generator.use_conversation_multi_turn': false }), field: 'generator.use_conversation_multi_turn', message: /SGLang/ },
  { name: 'megatron with hf', manifest: llm({ 'trainer.strategy': 'megatron', 'generator.backend': 'hf' }), field: 'generator.backend', message: /only vllm and sglang/ },
  { name: 'step-wise batched', manifest: llm({ 'generator.step_wise_trajectories': true, 'generator.batched': true }), field: 'generator.batched', message: /batched/ },
  { name: 'step-wise custom template', manifest: llm({ 'generator.step_wise_trajectories': true, 'generator.chat_template': { source: 'name', name_or_path: 'chatml' } }), field: 'generator.chat_template', message: /chat template/ },
  { name: 'LoRA with LoRA off in the engine', manifest: llm({ 'trainer.policy.model.lora.rank': 32, 'generator.enable_lora': false }), field: 'generator.enable_lora', message: /LoRA/ },
  { name: 'LoRA rank above the engine maximum', manifest: llm({ 'trainer.policy.model.lora.rank': 64, 'generator.engine_init_kwargs.max_lora_rank': 32 }), field: 'generator.engine_init_kwargs.max_lora_rank', message: /below/ },
  { name: 'validation without data', manifest: llm({ 'trainer.validation.run_validation': true }), field: 'data.val_data', message: /no validation data/ },
  { name: 'DPO on reasoning data', manifest: llm({ 'algorithm.name': 'DPO', 'algorithm.group_size': undefined }), field: 'environment.type', message: /preference/ },
  { name: 'fa3 on an L4', manifest: llm({ 'generator.engine_init_kwargs.attention_backend': 'fa3' }), gpus: [L4], field: 'generator.engine_init_kwargs.attention_backend', message: /SM 8\.9/ },
  { name: 'fa3 multimodal on an L4', manifest: llm({ 'generator.engine_init_kwargs.mm_attention_backend': 'fa3' }), gpus: [L4], field: 'generator.engine_init_kwargs.mm_attention_backend', message: /NVIDIA L4/ },
];

test('each launch rule refuses with the field and a fix', () => {
  for (const c of RULE_CASES) {
    const r = validateForLaunch(c.manifest, { gpus: c.gpus ?? [] });
    assert.equal(r.ok, false, c.name);
    if (r.ok) continue;
    assert.equal(r.refusals.length, 1, `${c.name}: exactly one refusal, got ${formatRefusals(r.refusals)}`);
    const [refusal] = r.refusals;
    assert.equal(refusal!.field, c.field, c.name);
    assert.match(refusal!.message, c.message, c.name);
    assert.ok(refusal!.fix.length > 10 && !refusal!.fix.includes('\n'), `${c.name}: a one-line fix`);
  }
});

test('every launch rule is exercised by the table above', () => {
  // Keeps the table honest when a rule is added: each rule must refuse at least one manifest of the table.
  assert.equal(new Set(LAUNCH_RULES.map((r) => r.name)).size, LAUNCH_RULES.length, 'rule names are unique');
  for (const rule of LAUNCH_RULES) {
    const hit = RULE_CASES.some((c) => rule.check(c.manifest as never, { gpus: c.gpus ?? [] }) !== undefined);
    assert.ok(hit, `rule ${rule.name} has a case`);
  }
});

test('schema errors come from the shared operator validator, with the field path', () => {
  const cases: { name: string; manifest: unknown; field: string; fix: RegExp }[] = [
    { name: 'unknown algorithm', manifest: { ...demo, algorithm: { name: 'DQNN' } }, field: 'algorithm.name', fix: /did you mean DQN/ },
    { name: 'negative max_steps', manifest: { ...demo, training: { max_steps: 0 } }, field: 'training.max_steps', fix: />= 1/ },
    { name: 'evo_steps beyond max_steps', manifest: { ...demo, training: { max_steps: 100, evo_steps: 500 } }, field: 'training.evo_steps', fix: /max_steps/ },
    { name: 'LLM without a model', manifest: llm({ 'algorithm.pretrained_model_name_or_path': undefined }), field: 'algorithm.pretrained_model_name_or_path', fix: /pretrained/ },
    { name: 'unknown mutation key', manifest: { ...demo, mutation: { probabilty: {} } }, field: 'mutation.probabilty', fix: /probabilities/ },
    { name: 'not an object', manifest: 'DQN', field: '', fix: /manifest/ },
  ];
  for (const c of cases) {
    const r = validateForLaunch(c.manifest);
    assert.equal(r.ok, false, c.name);
    if (r.ok) continue;
    const refusal = r.refusals.find((x) => x.field === c.field);
    assert.ok(refusal, `${c.name}: refusal for ${c.field} in ${formatRefusals(r.refusals)}`);
    assert.match(refusal.fix, c.fix, c.name);
  }
});

test('setting reads dotted paths and tolerates missing sections', () => {
  const m = llm();
  assert.equal(setting(m, 'generator.backend'), 'sglang');
  assert.equal(setting(m, 'trainer.algorithm.eps_clip_low'), 0.2);
  assert.equal(setting(m, 'data.val_data'), undefined);
  assert.equal(setting(m, 'generator.backend.name'), undefined);
});
