// Turns the end of a crashed trainer's output into a status reason with a one-line hint, using the failure
// signatures of the SGLang + SkyRL troubleshooting guide (and PyTorch's own NCCL watchdog text). The table is
// ordered by cause before consequence: an out-of-memory error on one rank shows up as an NCCL timeout or a dead
// Ray actor elsewhere, so the earlier entries win when several match.

import { formatBytes } from './oom.ts';

export interface Diagnosis {
  /** CamelCase, as status reasons are. */
  reason: string;
  message: string;
  /** What to do about it, in one line. */
  hint: string;
  /** False when running the same configuration again cannot help. */
  retryable: boolean;
  /** The output line that matched. */
  evidence?: string;
}

export interface Signature {
  reason: string;
  pattern: RegExp;
  message: string | ((match: RegExpExecArray) => string);
  hint: string;
  retryable: boolean;
  /** Looks at the lines around the match to tell cases apart (e.g. the phase of an out-of-memory error). */
  refine?: (lines: readonly string[], at: number) => Partial<Omit<Diagnosis, 'evidence'>> | undefined;
}

const GENERATION_CONTEXT = /sglang|vllm|generat|inference[_ ]engine|kv[_ ]?cache|sampling_params|rollout|max_num_seqs|prefill|decode/i;
const TRAINING_CONTEXT = /backward|optimizer|\.step\(|loss|fsdp|deepspeed|megatron|train_step|training_step|ppo_train|policy_train|forward_backward|micro_train_batch|gradient/i;
const STARTUP_CONTEXT = /from_pretrained|load_model|loading (?:the )?(?:model|checkpoint|weights|safetensors)|init_model|load_weights|model_loader/i;

/** Which phase the lines before an out-of-memory error point to: the closest phase marker wins. */
export function memoryPhase(lines: readonly string[], at: number, window = 40): 'training' | 'generation' | 'startup' | undefined {
  for (let i = at; i >= Math.max(0, at - window); i--) {
    const line = lines[i]!;
    // The OOM line itself mentions memory and allocation only; skip it unless it names a phase.
    const generation = GENERATION_CONTEXT.test(line);
    const training = TRAINING_CONTEXT.test(line);
    const startup = STARTUP_CONTEXT.test(line);
    if (startup) return 'startup';
    if (generation && !training) return 'generation';
    if (training && !generation) return 'training';
  }
  return undefined;
}

const OOM_HINTS = {
  training: 'Lower trainer.micro_train_batch_size_per_gpu, turn on trainer.gradient_checkpointing, or offload the optimizer (trainer.policy.fsdp_config.cpu_offload: true).',
  generation: 'Lower generator.gpu_memory_utilization (e.g. 0.5) or generator.max_num_seqs, or cap generator.max_num_batched_tokens.',
  startup: 'The model does not fit: raise generator.inference_engine_tensor_parallel_size, quantise (generator.engine_init_kwargs.quantization: fp8), or use larger GPUs.',
};

const datasetHint = 'Every sample needs prompt, env_class and reward_spec (a dictionary): fix the dataset the manifest names.';

export const SIGNATURES: readonly Signature[] = [
  {
    reason: 'UnsupportedAttentionBackend',
    pattern: /FlashAttention v3 Backend requires SM>=80 and SM<=90/,
    message: 'FlashAttention v3 does not run on this GPU (it needs SM 80 or 90, e.g. A100 or H100).',
    hint: 'Set generator.engine_init_kwargs.attention_backend (and mm_attention_backend) to flashinfer, or leave them unset so the runtime picks one for the GPU.',
    retryable: false,
  },
  {
    reason: 'UnsupportedGpu',
    pattern: /no kernel image is available for execution on the device/,
    message: 'The CUDA kernels in this image were not built for this GPU architecture.',
    hint: 'Use a runtime image built for this GPU (e.g. reinstall flashinfer-python for it) or a resource class with a supported GPU.',
    retryable: false,
  },
  {
    reason: 'MissingDependency',
    pattern: /No module named '([\w.]+)'|cannot import name '(\w+)' from '([\w.]+)'/,
    message: (m) => (m[1] ? `The trainer cannot import ${m[1]}: it is not installed in the runtime image.` : `The trainer cannot import ${m[2]} from ${m[3]}: the installed version does not have it.`),
    hint: 'Use a runtime image with the trainer extras installed (e.g. uv sync --extra sglang), matching the setup bundle version.',
    retryable: false,
  },
  {
    // AgileRL builds a vLLM engine into the trainer only under `rollout_mode: colocated` (the default;
    // agilerl/builders/llm.py); otherwise its LocalTrainer generates rollouts with transformers in the trainer.
    reason: 'MissingDependency',
    pattern: /vLLM is required for colocated generation/,
    message: 'AgileRL generates colocated GRPO-family rollouts with vLLM, and this runtime image has no vLLM.',
    hint:
      'Use a runtime image with vLLM installed (agilerl[llm] on a CUDA GPU), or set training.rollout_mode: async ' +
      '(with training.rollout_engines_per_agent and replay_buffer.kind: llm), which generates with transformers in ' +
      'the trainer: slower, but it runs without vLLM, on CPU too.',
    retryable: false,
  },
  {
    reason: 'RayRuntimeEnvHook',
    pattern: /Failed to generate package metadata for '[^']*editable/,
    message: "Ray's uv runtime-env hook tried to replicate an editable install that Ray workers cannot see.",
    hint: 'Unset RAY_RUNTIME_ENV_HOOK in the worker environment (or install the package non-editable).',
    retryable: false,
  },
  {
    reason: 'InvalidConfiguration',
    pattern: /use_conversation_multi_turn=False is not supported for SGLang backend/,
    message: 'The SGLang backend does not support use_conversation_multi_turn=false.',
    hint: 'Remove generator.use_conversation_multi_turn (it defaults to true) or use generator.backend: vllm.',
    retryable: false,
  },
  {
    reason: 'InvalidConfiguration',
    pattern: /generator\.async_engine must be True when generator\.enable_http_endpoint==True/,
    message: 'The HTTP endpoint needs the async engine.',
    hint: 'Set generator.async_engine: true together with generator.enable_http_endpoint: true.',
    retryable: false,
  },
  {
    reason: 'InvalidConfiguration',
    pattern: /only vllm and sglang are supported with megatron/,
    message: 'The Megatron strategy only works with the vllm or sglang backend.',
    hint: 'Set generator.backend to vllm or sglang, or choose another trainer.strategy.',
    retryable: false,
  },
  {
    reason: 'InvalidConfiguration',
    pattern: /step_wise_trajectories doesn't support (batched=True|custom chat template)/,
    message: (m) => `Step-wise trajectories do not support ${m[1]}.`,
    hint: 'For step-wise trajectories set generator.batched: false, generator.async_engine: true and no custom chat_template.',
    retryable: false,
  },
  {
    reason: 'InvalidGroupSize',
    // SkyRL's two lines (the guide), and AgileRL's GRPO family (agilerl/algorithms/grpo.py), which the Arena
    // manifest lets through: its algorithm.group_size only has to be >= 1.
    pattern: /DAPO requires n_samples_per_prompt >= 2|GRPO advantage estimator requires group size > 1|group_size must be >= 2 for GRPO-style group-relative advantages; got (\d+)/,
    message: (m) => (m[1] !== undefined ? `GRPO compares the samples of a group: algorithm.group_size must be 2 or more, got ${m[1]}.` : `${m[0]}.`),
    hint: 'Set algorithm.group_size (generator.n_samples_per_prompt in SkyRL) to 2 or more, e.g. 8.',
    retryable: false,
  },
  {
    reason: 'InvalidClipRatio',
    pattern: /Clip ratio must be positive/,
    message: 'The PPO clip ratios are not valid.',
    hint: 'Set trainer.algorithm.eps_clip_low above 0 (e.g. 0.2) and eps_clip_high above it (e.g. 0.28).',
    retryable: false,
  },
  {
    reason: 'DatasetMissingField',
    pattern: /Dataset has no '(\w+)' field|KeyError: '(env_class|prompt|reward_spec)'|(reward_spec) field is required/,
    message: (m) => `The dataset has no '${m[1] ?? m[2] ?? m[3]}' field.`,
    hint: datasetHint,
    retryable: false,
  },
  {
    // AgileRL's DatasetEnv (agilerl/llm_envs/dataset_env.py) for SFT (prompt + response_column) and DPO
    // (prompt, chosen, rejected).
    reason: 'DatasetMissingField',
    pattern: /(Train|Test) dataset must contain columns \[([^\]]*)\]/,
    message: (m) => `The ${m[1]!.toLowerCase()} dataset lacks one of the columns the objective needs: ${m[2]}.`,
    hint: "Give every row those columns (a prompt, and the response_column for SFT or chosen/rejected for DPO), or map yours onto them with environment.columns.",
    retryable: false,
  },
  {
    reason: 'DatasetInvalidField',
    pattern: /Field '(\w+)' must be a dictionary/,
    message: (m) => `The dataset's '${m[1]}' field must be a dictionary.`,
    hint: datasetHint,
    retryable: false,
  },
  {
    reason: 'DatasetMixedTurns',
    pattern: /Cannot mix single-turn and multi-turn samples/,
    message: 'The dataset mixes single-turn (string) and multi-turn (message list) prompts.',
    hint: 'Make every prompt a message list ([{role, content}]) or every prompt a string.',
    retryable: false,
  },
  {
    reason: 'DatasetNotFound',
    pattern: /Dataset (\S+) not found on Hugging Face/,
    message: (m) => `Dataset ${m[1]} was not found (on-prem workers usually cannot reach Hugging Face).`,
    hint: 'Register the dataset with Arena or point data.train_data / data.val_data at files on the checkpoint volume.',
    retryable: false,
  },
  {
    reason: 'ChatTemplateNotFound',
    pattern: /Template (?:file|name) not found/,
    message: 'The chat template could not be found.',
    hint: 'Use a built-in generator.chat_template name (chatml, zephyr, llama2, mistral) or an absolute file path.',
    retryable: false,
  },
  {
    reason: 'NoValidationData',
    pattern: /No validation data configured/,
    message: 'Validation is on but no validation data is configured.',
    hint: 'Set data.val_data, or turn trainer.validation.run_validation off.',
    retryable: false,
  },
  {
    reason: 'TokenizerMissingPadToken',
    // The guide's line; transformers' own refusal to pad (tokenization_utils_base.py); AgileRL's when it cannot even
    // fall back to the EOS token (agilerl/utils/llm_utils.py resolve_pad_token_id).
    pattern: /Tokenizer has no pad_token|Asking to pad but the tokenizer does not have a padding token|Tokenizer has no eos_token_id; cannot resolve a pad token id/,
    message: "The model's tokenizer has no pad token.",
    hint: 'Give the base model\'s tokenizer a pad token (tokenizer.pad_token = tokenizer.eos_token, saved with the model), or set model.tokenizer_config.pad_token (e.g. <|endoftext|>).',
    retryable: false,
  },
  {
    reason: 'CheckpointMismatch',
    // The guide's lines, torch's load_state_dict, and AgileRL's LLM checkpoint loading (algorithms/core/base.py
    // load_checkpoint and utils/llm_utils.py): another LoRA config, another algorithm, adapters of another model.
    pattern: /Checkpoint architecture mismatch|size mismatch for ([\w.]+)|Error\(s\) in loading state_dict.*size mismatch|Unexpected keys in LoRA adapter state dict|LoRA configs differ; refusing to load the checkpoint|Loaded registry does not match the algorithm's registry|Adapter '\w+' at \S+ has no tensor for \d+ live parameters/,
    message: (m) => {
      // torch names the first tensor that does not fit after "Error(s) in loading state_dict", on the same line or the next.
      const tensor = m[1] ?? /size mismatch for ([\w.]+)/.exec(m.input)?.[1];
      return tensor ? `The checkpoint does not fit the model: size mismatch for ${tensor}.` : 'The checkpoint does not fit the model being trained.';
    },
    hint: 'Resume with the base model and LoRA rank (trainer.policy.model.lora.rank) the checkpoint was trained with, or start without ARENA_RESUME_FROM.',
    retryable: false,
  },
  {
    reason: 'CheckpointNotFound',
    pattern: /Checkpoint (\S+) not found/,
    message: (m) => `Checkpoint ${m[1]} was not found.`,
    hint: 'Resume from a checkpoint listed in the experiment status; the checkpoint volume may be missing or not mounted.',
    retryable: false,
  },
  {
    reason: 'CheckpointConfigMismatch',
    pattern: /Config incompatible with checkpoint/,
    message: 'The training configuration differs from the checkpoint it resumes.',
    hint: 'Resume with the configuration the checkpoint was trained with, or set trainer.reset_optimizer: true to accept a reset.',
    retryable: false,
  },
  {
    reason: 'LoraNotEnabled',
    pattern: /LoRA is not enabled/,
    message: 'A LoRA operation ran without LoRA enabled.',
    hint: 'Set generator.enable_lora: true and engine_init_kwargs.max_lora_rank >= trainer.policy.model.lora.rank.',
    retryable: false,
  },
  {
    reason: 'FsdpWrapFailed',
    pattern: /Could not find the transformer layer class to wrap/,
    message: 'FSDP could not find the transformer layer class of this model.',
    hint: 'Set trainer.policy.fsdp_config.transformer_layer_cls_to_wrap to the model\'s decoder layer class (e.g. Qwen2DecoderLayer).',
    retryable: false,
  },
  {
    // AgileRL's colocated vLLM (algorithms/core/base.py): waking the engine from sleep mode ran out of GPU memory.
    reason: 'CudaOutOfMemoryDuringGeneration',
    pattern: /vLLM wake_up failed \(GPU OOM\)/,
    message: 'The GPU ran out of memory while the inference engine woke up for generation.',
    hint: 'Lower the vLLM gpu_memory_utilization or max_model_len, unset kv_cache_memory_bytes, or lower algorithm.group_size.',
    retryable: true,
  },
  {
    reason: 'CudaOutOfMemory',
    pattern: /CUDA out of memory|CUDA error: out of memory|OutOfMemoryError/,
    message: 'The GPU ran out of memory.',
    hint: `${OOM_HINTS.training.replace(/\.$/, '')}; or ${OOM_HINTS.generation.charAt(0).toLowerCase()}${OOM_HINTS.generation.slice(1)}`,
    retryable: true,
    refine: (lines, at) => {
      switch (memoryPhase(lines, at)) {
        case 'training':
          return { reason: 'CudaOutOfMemoryDuringTraining', message: 'The GPU ran out of memory during training.', hint: OOM_HINTS.training };
        case 'generation':
          return { reason: 'CudaOutOfMemoryDuringGeneration', message: 'The GPU ran out of memory during generation.', hint: OOM_HINTS.generation };
        case 'startup':
          return { reason: 'CudaOutOfMemoryOnStartup', message: 'The GPU ran out of memory while loading the model.', hint: OOM_HINTS.startup, retryable: false };
        default:
          return undefined;
      }
    },
  },
  {
    reason: 'DataLoaderWorkerDied',
    pattern: /DataLoader worker.*exited unexpectedly/,
    message: 'A data-loader worker process died, usually for lack of memory.',
    hint: 'Lower data.num_workers and data.prefetch_factor, or raise the memory per worker of the resource class.',
    retryable: true,
  },
  {
    reason: 'EngineWakeUpTimeout',
    pattern: /wake_up timed out after (\S+)/,
    message: (m) => `The inference engine did not wake up in time (${m[1]}).`,
    hint: 'Raise generator.engine_init_kwargs.wake_timeout (e.g. 120), or check for fragmented GPU memory.',
    retryable: true,
  },
  {
    reason: 'EngineSleepTimeout',
    pattern: /sleep timed out after (\S+)/,
    message: (m) => `The inference engine did not release its memory in time (${m[1]}).`,
    hint: 'Raise generator.engine_init_kwargs.sleep_timeout (e.g. 60), or look for requests stuck in the engine.',
    retryable: true,
  },
  {
    reason: 'WeightSyncTimeout',
    pattern: /Weight sync timed out/,
    message: 'Syncing weights from the trainer to the inference engines timed out.',
    hint: 'Raise generator.weight_sync_timeout (e.g. 120) or NCCL_TIMEOUT (e.g. 1800); prefer colocated CUDA IPC sync when possible.',
    retryable: true,
  },
  {
    reason: 'WeightSyncFailed',
    // The guide's line, and AgileRL's check after exporting LoRA weights to vLLM (utils/llm_utils.py).
    pattern: /IPC weight update failed|trainable LoRA parameters of adapter '\w+' have no tensor in the vLLM export/,
    message: 'The CUDA IPC weight update failed.',
    hint: 'CUDA IPC only works within a node: set trainer.placement.colocate_all: false to sync by broadcast.',
    retryable: true,
  },
  {
    reason: 'EngineUnreachable',
    pattern: /Connection refused on port (\d+)|ConnectionRefusedError: \[Errno 111\] Connect call failed \('[^']*', (\d+)\)/,
    message: (m) => `The inference engine's HTTP endpoint refused the connection${m[1] ?? m[2] ? ` on port ${m[1] ?? m[2]}` : ''}.`,
    hint: 'Check that generator.enable_http_endpoint is true and generator.http_port matches the port the trainer calls.',
    retryable: true,
  },
  {
    reason: 'NcclSystemError',
    pattern: /NCCL error.*unhandled system error/i,
    message: 'NCCL failed with an unhandled system error (network, firewall or version mismatch).',
    hint: 'Allow TCP ports 29400-29500 between worker nodes, set NCCL_DEBUG=INFO to see the cause, and check NCCL versions match.',
    retryable: true,
  },
  {
    reason: 'NcclTimeout',
    pattern: /Watchdog caught collective operation timeout/,
    message: 'A collective operation timed out: another rank stopped answering.',
    hint: "Look at the other workers' first error; for large weight syncs raise NCCL_TIMEOUT (e.g. 1800).",
    retryable: true,
  },
  {
    reason: 'DynamicSamplingExhausted',
    pattern: /Exiting training due to hitting dynamic sampling limit/,
    message: "DAPO's dynamic sampling could not fill a batch within its limit.",
    hint: 'Raise trainer.algorithm.dynamic_sampling.max_sample_batches, set dynamic_sampling.type: none, or use easier data.',
    retryable: false,
  },
  {
    reason: 'TrainingDiverged',
    pattern: /grad_norm is not finite|KL divergence is NaN|loss is nan/i,
    message: 'Training diverged (non-finite gradients, loss or KL).',
    hint: 'Lower the learning rate, clip gradients harder (max_grad_norm 0.5), or raise kl_loss_coef.',
    retryable: false,
  },
  {
    reason: 'DeviceMismatch',
    pattern: /Expected all tensors to be on the same device|CUDA error: invalid device ordinal|Cannot re-initialize CUDA in forked subprocess/,
    message: (m) => `A device placement error: ${m[0]}.`,
    hint: 'Check trainer.placement against the GPUs the worker has, and start worker processes with spawn rather than fork.',
    retryable: false,
  },
  {
    reason: 'RayActorDied',
    pattern: /RayActorError|The actor died/,
    message: 'A Ray actor died (often out of memory or a failed initialisation).',
    hint: 'Look earlier in the log for the actor\'s own error; RAY_DEDUP_LOGS=0 shows every actor\'s output.',
    retryable: true,
  },
  {
    reason: 'RayUnavailable',
    pattern: /Cannot connect to Ray cluster/,
    message: 'The trainer could not connect to its Ray cluster.',
    hint: 'Let the trainer start Ray itself (no RAY_ADDRESS), or check that the Ray head is running.',
    retryable: true,
  },
];

// Lines that carry no cause: blank, Python traceback frames and their source lines, caret markers, separators.
const NOISE = /^\s*$|^Traceback \(most recent call last\):|^\s+File ".*", line \d+|^\s{2,}\S|^\s*[~^]+\s*$|^[-=*_]{3,}$|^During handling of the above exception|^The above exception was the direct cause/;
const EXCEPTION_LINE = /^[\w.]*(?:Error|Exception|Interrupt|Exit)\b.*?:|^(?:Error|FATAL|Fatal)\b/;

/** The line that best says what went wrong when no signature matched: the last exception line, else the last line. */
export function lastMeaningfulLine(lines: readonly string[]): string | undefined {
  const meaningful = lines.map((l) => l.trimEnd()).filter((l) => !NOISE.test(l));
  return [...meaningful].reverse().find((l) => EXCEPTION_LINE.test(l.trim()))?.trim() ?? meaningful.at(-1)?.trim();
}

export interface CrashInput {
  /** The end of the trainer's stdout and stderr, oldest first. */
  lines: readonly string[];
  exitCode?: number | null;
  signal?: NodeJS.Signals | null;
  /**
   * The container's memory cgroup counted an OOM kill while the trainer ran (oom.ts), with the limit when known:
   * a SIGKILL is then the kernel's out-of-memory killer for certain, not a guess.
   */
  oomKilled?: { limitBytes?: number };
  /** The checkpoint volume's space when the trainer failed: tells a failed write on a full volume (VolumeFull). */
  volume?: VolumeSpace;
}

const MAX_MESSAGE = 2000;
const clip = (s: string) => (s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE - 1)}…` : s);

/** The checkpoint volume as statfs saw it when the trainer failed. */
export interface VolumeSpace {
  path: string;
  freeBytes: number;
  totalBytes: number;
}

// Out of space, said outright (errno 28, Node's code, a quota), or a write failure (torch's zip writer reports a
// short write without the errno) that only counts when the volume is in fact (nearly) full.
const NO_SPACE = /No space left on device|\bENOSPC\b|Disk quota exceeded|\bEDQUOT\b/;
const WRITE_FAILED = /PytorchStreamWriter failed writing|file write failed|unexpected pos \d+ vs \d+|CheckpointWriteFailed|could not be written/i;

/** A volume with less than 1 MiB or 1 % left: too little for any checkpoint. */
export function nearlyFull(v: VolumeSpace): boolean {
  return v.freeBytes < Math.max(1024 * 1024, v.totalBytes * 0.01);
}

/** 1536 → "1.5 KiB": free space, which is rarely a round number. */
function approxBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/**
 * VolumeFull when the trainer's output (or its own error message, `also`) says it ran out of space, or a write
 * failed while the checkpoint volume is nearly full; the message names the volume and its free space. Checked
 * before every other signature: a full disk surfaces as many other errors downstream.
 */
export function volumeFull(input: { lines: readonly string[]; volume?: VolumeSpace; also?: string }): Diagnosis | undefined {
  const texts = [...input.lines, ...(input.also ? [input.also] : [])];
  const v = input.volume;
  const evidence = texts.find((l) => NO_SPACE.test(l)) ?? (v && nearlyFull(v) ? texts.find((l) => WRITE_FAILED.test(l)) : undefined);
  if (evidence === undefined) return undefined;
  const where = v ? `The checkpoint volume at ${v.path} is full (${approxBytes(v.freeBytes)} free of ${approxBytes(v.totalBytes)})` : 'The trainer ran out of disk space';
  return {
    reason: 'VolumeFull',
    message: clip(`${where}: ${evidence.trim()}`),
    hint: "Free space on the checkpoint volume (old runs' checkpoints) or give the TrainingCluster's checkpointStorage a larger volume; a retry continues from the latest complete checkpoint.",
    retryable: true,
    evidence: clip(evidence.trim()),
  };
}


/** The first known failure signature in the lines (table order), or undefined. */
export function matchSignature(lines: readonly string[]): Diagnosis | undefined {
  for (const sig of SIGNATURES) {
    for (let i = 0; i < lines.length; i++) {
      const m = sig.pattern.exec(lines[i]!);
      if (!m) continue;
      const base: Diagnosis = {
        reason: sig.reason,
        message: typeof sig.message === 'string' ? sig.message : sig.message(m),
        hint: sig.hint,
        retryable: sig.retryable,
        evidence: clip(lines[i]!.trim()),
      };
      return { ...base, ...sig.refine?.(lines, i) };
    }
  }
  return undefined;
}

/** Finds the known failure in the output; otherwise TrainerKilled (by signal) or TrainerCrashed. */
export function diagnose(input: CrashInput): Diagnosis {
  const lines = input.lines;
  const full = volumeFull({ lines, volume: input.volume });
  if (full) return full;
  const known = matchSignature(lines);
  if (known) return known;
  const how = input.signal ? `was killed by ${input.signal}` : `exited with code ${input.exitCode ?? 'unknown'}`;
  const last = lastMeaningfulLine(lines);
  if (input.signal === 'SIGKILL' && input.oomKilled) {
    const limit = input.oomKilled.limitBytes ? ` of ${formatBytes(input.oomKilled.limitBytes)}` : '';
    return {
      reason: 'OOMKilled',
      message: clip(`The trainer was killed by the kernel's out-of-memory killer: the worker went over its memory limit${limit}${last ? `; its last output: ${last}` : ''}.`),
      hint: 'Raise the memory per worker of the resource class, or lower batch sizes, num_envs and data.num_workers.',
      retryable: true,
      ...(last ? { evidence: clip(last) } : {}),
    };
  }
  if (input.signal === 'SIGKILL') {
    return {
      reason: 'TrainerKilled',
      message: clip(`The trainer ${how}, most likely by the out-of-memory killer${last ? `; its last output: ${last}` : ''}.`),
      hint: 'Raise the memory per worker of the resource class, or lower batch sizes and data.num_workers.',
      retryable: true,
      ...(last ? { evidence: clip(last) } : {}),
    };
  }
  return {
    reason: 'TrainerCrashed',
    message: clip(`The trainer ${how}${last ? `: ${last}` : ' without output'}.`),
    hint: 'See the worker pod log for the full output.',
    retryable: true,
    ...(last ? { evidence: clip(last) } : {}),
  };
}

/**
 * Keeps the last lines of a process's output, bounded in lines and bytes. Each source (stdout, stderr) has its
 * own unfinished line, so chunks of the two streams never splice into one line.
 */
export class OutputTail {
  private readonly kept: string[] = [];
  private readonly partial = new Map<string, string>();
  private bytes = 0;

  constructor(
    private readonly maxLines = 200,
    private readonly maxBytes = 64 * 1024,
  ) {}

  push(chunk: string | Buffer, source = 'out'): void {
    const parts = ((this.partial.get(source) ?? '') + chunk.toString()).split(/\r?\n/);
    const rest = parts.pop() ?? '';
    this.partial.set(source, rest.length > this.maxBytes ? rest.slice(-this.maxBytes) : rest);
    for (const line of parts) this.add(line);
  }

  private add(line: string): void {
    const l = line.length > 4096 ? `${line.slice(0, 4096)}…` : line;
    this.kept.push(l);
    this.bytes += l.length;
    while (this.kept.length > this.maxLines || this.bytes > this.maxBytes) this.bytes -= this.kept.shift()!.length;
  }

  /** The kept lines, oldest first, then any unfinished lines. */
  lines(): string[] {
    return [...this.kept, ...[...this.partial.values()].filter(Boolean)];
  }
}
