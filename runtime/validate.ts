// The runtime's pre-launch check: the operator's own manifest validator (the same code the webhook and the
// controllers run), plus the configuration rules from the SGLang + SkyRL troubleshooting guide that can be decided
// before a trainer starts. Refusing here costs a second; the same mistake found by the trainer costs a model
// load, and shows up as a stack trace.
//
// SkyRL's own settings travel in the manifest's `generator` and `trainer` sections (the manifest keeps keys it
// does not declare), with SkyRL's names: generator.backend, trainer.algorithm.eps_clip_low, and so on.
import { formatErrors, validateManifest } from '../operator/api/validate.ts';
import type { AlgorithmName, Manifest } from '../operator/api/v1alpha1/manifest.ts';
import { attentionBackend, formatCapability, type GpuInfo } from './gpu/probe.ts';

export interface Refusal {
  /** Dotted path of the manifest field to change, e.g. generator.async_engine. */
  field: string;
  message: string;
  /** What to change, in one line. */
  fix: string;
}

export interface LaunchContext {
  /** The worker's GPUs, for rules that depend on the hardware. */
  gpus?: readonly GpuInfo[];
}

export interface LaunchRule {
  /** Short name, for tests and logs. */
  name: string;
  check(manifest: Manifest, ctx: LaunchContext): Refusal | undefined;
}

export type LaunchValidation = { ok: true; manifest: Manifest } | { ok: false; refusals: Refusal[] };

/** Reads a dotted path from the manifest; undefined when any part is missing. */
export function setting(manifest: unknown, path: string): unknown {
  let cur: unknown = manifest;
  for (const key of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

const GROUP_ALGORITHMS: ReadonlySet<AlgorithmName> = new Set(['GRPO', 'GSPO', 'CISPO']);
const MEGATRON_BACKENDS = ['vllm', 'sglang'];
const ENV_TYPES: Partial<Record<AlgorithmName, readonly string[]>> = {
  GRPO: ['reasoning', 'multiturn'],
  GSPO: ['reasoning', 'multiturn'],
  CISPO: ['reasoning', 'multiturn'],
  LLMPPO: ['reasoning', 'multiturn'],
  LLMREINFORCE: ['reasoning', 'multiturn'],
  DPO: ['preference'],
  SFT: ['sft'],
};

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const dynamicSamplingOn = (m: Manifest) => {
  const type = setting(m, 'trainer.algorithm.dynamic_sampling.type');
  return typeof type === 'string' && type !== 'none';
};

export const LAUNCH_RULES: readonly LaunchRule[] = [
  {
    name: 'group-size',
    check: (m) => {
      const size = m.algorithm.group_size;
      if (!GROUP_ALGORITHMS.has(m.algorithm.name) || !isNumber(size) || size > 1) return undefined;
      return {
        field: 'algorithm.group_size',
        message: `${m.algorithm.name}'s advantage estimator requires group size > 1, got ${size}`,
        fix: 'Set algorithm.group_size to 2 or more (8 is a common choice): advantages compare completions of the same prompt.',
      };
    },
  },
  {
    name: 'grpo-samples-per-prompt',
    check: (m) => {
      const n = setting(m, 'generator.n_samples_per_prompt');
      if (setting(m, 'trainer.algorithm.advantage_estimator') !== 'grpo' || !isNumber(n) || n >= 2) return undefined;
      return {
        field: 'generator.n_samples_per_prompt',
        message: `the GRPO advantage estimator requires group size > 1, got n_samples_per_prompt ${n}`,
        fix: 'Set generator.n_samples_per_prompt to 2 or more (e.g. 8).',
      };
    },
  },
  {
    name: 'dapo-samples-per-prompt',
    check: (m) => {
      const n = setting(m, 'generator.n_samples_per_prompt');
      if (!dynamicSamplingOn(m) || !isNumber(n) || n >= 2) return undefined;
      return {
        field: 'generator.n_samples_per_prompt',
        message: `DAPO (dynamic sampling) requires n_samples_per_prompt >= 2, got ${n}`,
        fix: 'Set generator.n_samples_per_prompt to 2 or more (16 is common), or set trainer.algorithm.dynamic_sampling.type to none.',
      };
    },
  },
  {
    name: 'clip-ratio-low-positive',
    check: (m) => {
      const low = setting(m, 'trainer.algorithm.eps_clip_low');
      if (!isNumber(low) || low > 0) return undefined;
      return { field: 'trainer.algorithm.eps_clip_low', message: `clip ratio must be positive, got ${low}`, fix: 'Set trainer.algorithm.eps_clip_low above 0 (0.2 is usual).' };
    },
  },
  {
    name: 'clip-ratio-high-positive',
    check: (m) => {
      const high = setting(m, 'trainer.algorithm.eps_clip_high');
      if (!isNumber(high) || high > 0) return undefined;
      return { field: 'trainer.algorithm.eps_clip_high', message: `clip ratio must be positive, got ${high}`, fix: 'Set trainer.algorithm.eps_clip_high above 0 and above eps_clip_low (0.28 is usual).' };
    },
  },
  {
    name: 'clip-ratio-order',
    check: (m) => {
      const low = setting(m, 'trainer.algorithm.eps_clip_low');
      const high = setting(m, 'trainer.algorithm.eps_clip_high');
      if (!isNumber(low) || !isNumber(high) || low <= 0 || high <= 0 || high > low) return undefined;
      return {
        field: 'trainer.algorithm.eps_clip_high',
        message: `eps_clip_high (${high}) must be greater than eps_clip_low (${low})`,
        fix: 'Raise trainer.algorithm.eps_clip_high above eps_clip_low (e.g. low 0.2, high 0.28).',
      };
    },
  },
  {
    name: 'clip-coef-positive',
    check: (m) => {
      const coef = m.algorithm.clip_coef;
      if (!isNumber(coef) || coef > 0) return undefined;
      return { field: 'algorithm.clip_coef', message: `clip ratio must be positive, got ${coef}`, fix: 'Set algorithm.clip_coef above 0 (0.2 is usual).' };
    },
  },
  {
    name: 'http-endpoint-needs-async-engine',
    check: (m) => {
      if (setting(m, 'generator.enable_http_endpoint') !== true || setting(m, 'generator.async_engine') === true) return undefined;
      return {
        field: 'generator.async_engine',
        message: 'generator.async_engine must be true when generator.enable_http_endpoint is true',
        fix: 'Set generator.async_engine: true, or turn generator.enable_http_endpoint off.',
      };
    },
  },
  {
    name: 'sglang-multi-turn',
    check: (m) => {
      if (setting(m, 'generator.backend') !== 'sglang' || setting(m, 'generator.use_conversation_multi_turn') !== false) return undefined;
      return {
        field: 'generator.use_conversation_multi_turn',
        message: 'use_conversation_multi_turn=false is not supported by the SGLang backend',
        fix: 'Remove generator.use_conversation_multi_turn (it defaults to true), or use generator.backend: vllm.',
      };
    },
  },
  {
    name: 'megatron-backend',
    check: (m) => {
      const backend = setting(m, 'generator.backend');
      if (setting(m, 'trainer.strategy') !== 'megatron' || backend === undefined || MEGATRON_BACKENDS.includes(String(backend))) return undefined;
      return {
        field: 'generator.backend',
        message: `only vllm and sglang are supported with the megatron strategy, got ${String(backend)}`,
        fix: 'Set generator.backend to vllm or sglang, or choose another trainer.strategy (e.g. fsdp2).',
      };
    },
  },
  {
    name: 'step-wise-batched',
    check: (m) => {
      if (setting(m, 'generator.step_wise_trajectories') !== true || setting(m, 'generator.batched') !== true) return undefined;
      return {
        field: 'generator.batched',
        message: "step_wise_trajectories doesn't support batched=true",
        fix: 'Set generator.batched: false and generator.async_engine: true for step-wise trajectories.',
      };
    },
  },
  {
    name: 'step-wise-chat-template',
    check: (m) => {
      if (setting(m, 'generator.step_wise_trajectories') !== true || setting(m, 'generator.chat_template') == null) return undefined;
      return {
        field: 'generator.chat_template',
        message: "step_wise_trajectories doesn't support a custom chat template",
        fix: 'Remove generator.chat_template (use the model default) or turn step_wise_trajectories off.',
      };
    },
  },
  {
    name: 'lora-enabled',
    check: (m) => {
      const rank = setting(m, 'trainer.policy.model.lora.rank');
      if (!isNumber(rank) || rank <= 0 || setting(m, 'generator.enable_lora') !== false) return undefined;
      return {
        field: 'generator.enable_lora',
        message: `the policy trains a LoRA adapter (rank ${rank}) but generator.enable_lora is false`,
        fix: 'Set generator.enable_lora: true (with engine_init_kwargs.max_lora_rank >= the LoRA rank).',
      };
    },
  },
  {
    name: 'lora-max-rank',
    check: (m) => {
      const rank = setting(m, 'trainer.policy.model.lora.rank');
      const max = setting(m, 'generator.engine_init_kwargs.max_lora_rank');
      if (!isNumber(rank) || !isNumber(max) || max >= rank) return undefined;
      return {
        field: 'generator.engine_init_kwargs.max_lora_rank',
        message: `max_lora_rank ${max} is below the policy's LoRA rank ${rank}`,
        fix: `Set generator.engine_init_kwargs.max_lora_rank to at least ${rank}.`,
      };
    },
  },
  {
    name: 'validation-data',
    check: (m) => {
      if (setting(m, 'trainer.validation.run_validation') !== true || setting(m, 'data.val_data') != null) return undefined;
      return {
        field: 'data.val_data',
        message: 'validation is requested (trainer.validation.run_validation) but no validation data is configured',
        fix: 'Set data.val_data to the validation dataset, or turn trainer.validation.run_validation off.',
      };
    },
  },
  {
    name: 'llm-environment-type',
    check: (m) => {
      const allowed = ENV_TYPES[m.algorithm.name];
      const type = m.environment.type;
      if (!allowed || type === undefined || allowed.includes(type)) return undefined;
      return {
        field: 'environment.type',
        message: `${m.algorithm.name} trains on ${allowed.join(' or ')} data, not ${type}`,
        fix: `Set environment.type to ${allowed[0]}, or pick the algorithm that matches ${type} data.`,
      };
    },
  },
  {
    name: 'attention-backend-gpu',
    check: (m, ctx) => {
      for (const key of ['attention_backend', 'mm_attention_backend']) {
        const field = `generator.engine_init_kwargs.${key}`;
        if (setting(m, field) !== 'fa3') continue;
        const gpu = ctx.gpus?.find((g) => attentionBackend(g.computeCapability) !== 'fa3');
        if (!gpu) continue;
        return {
          field,
          message: `FlashAttention v3 (fa3) needs an SM 80 or SM 90 GPU (A100, H100); this worker has ${gpu.name} (SM ${formatCapability(gpu.computeCapability)})`,
          fix: `Set ${field}: flashinfer, or leave it unset and the runtime picks the backend for the GPU.`,
        };
      }
      return undefined;
    },
  },
];

/** The shared manifest validation, then the launch rules; every refusal names the field and the fix. */
export function validateForLaunch(manifest: unknown, ctx: LaunchContext = {}): LaunchValidation {
  const schema = validateManifest(manifest);
  if (!schema.ok) {
    return {
      ok: false,
      refusals: schema.errors.map((e) => ({
        field: e.field,
        message: e.message,
        fix: `Correct ${e.field || 'the manifest'} in the Experiment's spec.manifest: ${formatErrors([{ ...e, field: '' }]).replace(/^<object>: /, '')}.`,
      })),
    };
  }
  const m = manifest as Manifest;
  const refusals = LAUNCH_RULES.map((r) => r.check(m, ctx)).filter((r): r is Refusal => r !== undefined);
  return refusals.length ? { ok: false, refusals } : { ok: true, manifest: m };
}

/** One line for a status message: every refusal with its field. */
export function formatRefusals(refusals: readonly Refusal[]): string {
  return refusals.map((r) => (r.field && !r.message.includes(r.field) ? `${r.field}: ${r.message}` : r.message)).join('; ');
}
