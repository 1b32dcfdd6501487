import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { OutputTail, SIGNATURES, diagnose, lastMeaningfulLine, memoryPhase, nearlyFull, volumeFull } from './diagnosis.ts';

const OOM =
  'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.15 GiB of which 1.06 GiB is free. ' +
  'Including non-PyTorch memory, this process has 78.08 GiB memory in use. Of the allocated memory 75.20 GiB is allocated by PyTorch, and 1.37 GiB ' +
  'is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True ' +
  'to avoid fragmentation.  See documentation for Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)';

const text = (s: string) => s.split('\n');

interface Case {
  name: string;
  output: string;
  reason: string;
  retryable?: boolean;
  message?: RegExp;
  hint?: RegExp;
}

// The failure texts as the SGLang + SkyRL troubleshooting guide and PyTorch print them.
const CASES: Case[] = [
  {
    name: 'OOM in the training step',
    output: `Traceback (most recent call last):
  File "/app/skyrl_train/trainer.py", line 612, in train
    status = self.train_critic_and_policy(data)
  File "/app/skyrl_train/workers/worker.py", line 402, in ppo_train
    loss.backward()
${OOM}`,
    reason: 'CudaOutOfMemoryDuringTraining',
    hint: /micro_train_batch_size_per_gpu/,
  },
  {
    name: 'OOM in generation',
    output: `(SGLangInferenceEngine pid=812) INFO: generating 512 sequences
Traceback (most recent call last):
  File "/app/skyrl_train/inference_engines/sglang/sglang_engine.py", line 210, in generate
    outputs = await self.engine.async_generate(prompts, sampling_params)
  File "/usr/lib/python3.12/site-packages/sglang/srt/model_executor/model_runner.py", line 1650, in forward_decode
${OOM}`,
    reason: 'CudaOutOfMemoryDuringGeneration',
    hint: /gpu_memory_utilization/,
  },
  {
    name: 'OOM while loading the model',
    output: `Loading safetensors checkpoint shards:  40% Completed | 2/5 [00:03<00:04,  1.52s/it]
RuntimeError: CUDA error: out of memory`,
    reason: 'CudaOutOfMemoryOnStartup',
    retryable: false,
    hint: /tensor_parallel_size|fp8/,
  },
  { name: 'OOM without context', output: 'RuntimeError: CUDA out of memory', reason: 'CudaOutOfMemory', hint: /micro_train_batch_size_per_gpu.*gpu_memory_utilization/ },
  {
    name: 'OOM wins over what it caused',
    output: `${OOM}\nray.exceptions.RayActorError: The actor died unexpectedly before finishing this task.\n[rank0]:[E ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1024, OpType=ALLREDUCE) ran for 600058 milliseconds before timing out.`,
    reason: 'CudaOutOfMemory',
  },
  {
    name: 'NCCL watchdog timeout',
    output: '[rank1]:[E ProcessGroupNCCL.cpp:616] [Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1024, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600058 milliseconds before timing out.',
    reason: 'NcclTimeout',
    retryable: true,
    hint: /NCCL_TIMEOUT/,
  },
  { name: 'NCCL system error (guide)', output: 'NCCL error: unhandled system error', reason: 'NcclSystemError', hint: /29400-29500/ },
  {
    name: 'NCCL system error (torch)',
    output: 'torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.20.5',
    reason: 'NcclSystemError',
  },
  {
    name: 'FlashAttention 3 on an unsupported GPU',
    output: 'AssertionError: FlashAttention v3 Backend requires SM>=80 and SM<=90',
    reason: 'UnsupportedAttentionBackend',
    retryable: false,
    hint: /attention_backend.*flashinfer/,
  },
  { name: 'missing prompt field', output: "ValueError: Dataset has no 'prompt' field", reason: 'DatasetMissingField', retryable: false, message: /'prompt'/ },
  { name: 'missing env_class', output: "KeyError: 'env_class'", reason: 'DatasetMissingField', message: /'env_class'/ },
  { name: 'missing reward_spec', output: 'ValueError: reward_spec field is required', reason: 'DatasetMissingField', message: /'reward_spec'/ },
  { name: 'reward_spec not a dictionary', output: "ValueError: Field 'reward_spec' must be a dictionary", reason: 'DatasetInvalidField', message: /reward_spec/ },
  { name: 'mixed turns', output: 'ValueError: Cannot mix single-turn and multi-turn samples', reason: 'DatasetMixedTurns' },
  { name: 'dataset not on the hub', output: 'ValueError: Dataset openai/gsm8k-x not found on Hugging Face', reason: 'DatasetNotFound', message: /gsm8k-x/ },
  { name: 'template missing', output: 'ValueError: Template file not found', reason: 'ChatTemplateNotFound' },
  { name: 'no validation data', output: 'ValueError: No validation data configured', reason: 'NoValidationData' },
  { name: 'tokenizer without pad token', output: 'ValueError: Tokenizer has no pad_token', reason: 'TokenizerMissingPadToken', retryable: false, hint: /pad_token/ },
  { name: 'DAPO group size', output: 'ValueError: DAPO requires n_samples_per_prompt >= 2', reason: 'InvalidGroupSize', retryable: false, hint: /n_samples_per_prompt/ },
  { name: 'GRPO group size', output: 'ValueError: GRPO advantage estimator requires group size > 1', reason: 'InvalidGroupSize' },
  { name: 'clip ratio', output: 'ValueError: Clip ratio must be positive', reason: 'InvalidClipRatio', hint: /eps_clip_low/ },
  { name: 'checkpoint architecture', output: 'ValueError: Checkpoint architecture mismatch', reason: 'CheckpointMismatch', retryable: false },
  {
    name: 'LoRA rank mismatch while loading state_dict',
    output: `RuntimeError: Error(s) in loading state_dict for Qwen2ForCausalLM:
\tsize mismatch for base_model.model.layers.0.self_attn.q_proj.lora_A.default.weight: copying a param with shape torch.Size([32, 1536]) from checkpoint, the shape in current model is torch.Size([16, 1536]).`,
    reason: 'CheckpointMismatch',
    message: /q_proj\.lora_A/,
    hint: /LoRA rank/,
  },
  { name: 'LoRA adapter keys', output: 'ValueError: Unexpected keys in LoRA adapter state dict', reason: 'CheckpointMismatch' },
  { name: 'checkpoint not found', output: 'FileNotFoundError: Checkpoint step_1000 not found', reason: 'CheckpointNotFound', message: /step_1000/ },
  { name: 'config vs checkpoint', output: 'ValueError: Config incompatible with checkpoint', reason: 'CheckpointConfigMismatch' },
  { name: 'engine port refused', output: 'ConnectionRefusedError: Connection refused on port 8000', reason: 'EngineUnreachable', retryable: true, message: /port 8000/ },
  { name: 'engine port refused (asyncio)', output: "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 8001)", reason: 'EngineUnreachable', message: /port 8001/ },
  { name: 'wake_up timeout', output: 'RuntimeError: wake_up timed out after 60s', reason: 'EngineWakeUpTimeout', message: /60s/, hint: /wake_timeout/ },
  { name: 'sleep timeout', output: 'RuntimeError: sleep timed out after 30s', reason: 'EngineSleepTimeout', hint: /sleep_timeout/ },
  { name: 'weight sync timeout', output: 'RuntimeError: Weight sync timed out', reason: 'WeightSyncTimeout', hint: /weight_sync_timeout/ },
  { name: 'IPC weight update', output: 'RuntimeError: IPC weight update failed', reason: 'WeightSyncFailed', hint: /colocate_all/ },
  {
    name: 'Ray runtime env hook',
    output: "error: Failed to generate package metadata for 'sglang @ editable+../../sglang/python'",
    reason: 'RayRuntimeEnvHook',
    retryable: false,
    hint: /RAY_RUNTIME_ENV_HOOK/,
  },
  { name: 'SGLang multi-turn', output: 'NotImplementedError: use_conversation_multi_turn=False is not supported for SGLang backend', reason: 'InvalidConfiguration', hint: /use_conversation_multi_turn/ },
  { name: 'HTTP endpoint without async engine', output: 'ValueError: generator.async_engine must be True when generator.enable_http_endpoint==True', reason: 'InvalidConfiguration', hint: /async_engine/ },
  { name: 'megatron backend', output: 'ValueError: only vllm and sglang are supported with megatron', reason: 'InvalidConfiguration', hint: /vllm or sglang/ },
  { name: 'step-wise batched', output: "ValueError: step_wise_trajectories doesn't support batched=True", reason: 'InvalidConfiguration', message: /batched=True/ },
  { name: 'sglang not installed', output: "ModuleNotFoundError: No module named 'sglang'", reason: 'MissingDependency', message: /sglang/ },
  { name: 'old sglang', output: "ImportError: cannot import name 'Engine' from 'sglang'", reason: 'MissingDependency', message: /Engine from sglang/ },
  { name: 'kernels not built for the GPU', output: 'RuntimeError: CUDA error: no kernel image is available for execution on the device', reason: 'UnsupportedGpu', retryable: false },
  { name: 'dynamic sampling limit', output: 'RuntimeError: Exiting training due to hitting dynamic sampling limit', reason: 'DynamicSamplingExhausted', hint: /max_sample_batches/ },
  { name: 'data loader worker', output: 'RuntimeError: DataLoader worker (pid(s) 4321) exited unexpectedly', reason: 'DataLoaderWorkerDied', hint: /num_workers/ },
  { name: 'FSDP wrap', output: 'Exception: Could not find the transformer layer class to wrap in the model.', reason: 'FsdpWrapFailed' },
  { name: 'LoRA not enabled', output: 'RuntimeError: LoRA is not enabled. Set enable_lora=True', reason: 'LoraNotEnabled', hint: /enable_lora/ },
  { name: 'non-finite gradients', output: 'RuntimeError: grad_norm is not finite', reason: 'TrainingDiverged', retryable: false },
  { name: 'device mismatch', output: 'RuntimeError: Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!', reason: 'DeviceMismatch' },
  { name: 'Ray actor died', output: 'ray.exceptions.RayActorError: The actor died unexpectedly before finishing this task.', reason: 'RayActorDied', retryable: true },
  { name: 'Ray unavailable', output: 'RuntimeError: Cannot connect to Ray cluster', reason: 'RayUnavailable' },
];

test('known failure signatures become a reason, a message and a one-line hint', () => {
  for (const c of CASES) {
    const d = diagnose({ lines: text(c.output), exitCode: 1 });
    assert.equal(d.reason, c.reason, c.name);
    assert.match(d.reason, /^[A-Z][A-Za-z0-9]*$/, `${c.name}: CamelCase`);
    assert.ok(d.hint.length > 0 && !d.hint.includes('\n'), `${c.name}: one-line hint`);
    assert.ok(d.evidence, `${c.name}: evidence`);
    if (c.retryable !== undefined) assert.equal(d.retryable, c.retryable, `${c.name}: retryable`);
    if (c.message) assert.match(d.message, c.message, `${c.name}: message`);
    if (c.hint) assert.match(d.hint, c.hint, `${c.name}: hint`);
  }
});

// The LLM worker's lines as the libraries print them (the supervisor's test feeds them through a whole run).
const LIBRARY_LINES = (JSON.parse(readFileSync(new URL('./testing/llm-failure-lines.json', import.meta.url), 'utf8')) as { lines: { line: string; reason: string }[] }).lines;

test('the library lines of an LLM worker get their reason', () => {
  for (const c of LIBRARY_LINES) assert.equal(diagnose({ lines: [c.line], exitCode: 1 }).reason, c.reason, c.line);
});

test('every signature is covered by a case', () => {
  for (const sig of SIGNATURES) {
    const covered = CASES.some((c) => text(c.output).some((l) => sig.pattern.test(l))) || LIBRARY_LINES.some((c) => sig.pattern.test(c.line));
    assert.ok(covered, `${sig.reason} ${sig.pattern} has a case`);
  }
});

test('unknown crashes name the last meaningful line', () => {
  const cases: { name: string; output: string; exitCode?: number; signal?: NodeJS.Signals; reason: string; message: RegExp }[] = [
    {
      name: 'a Python traceback',
      output: `step 1200 loss 0.31
Traceback (most recent call last):
  File "/app/train.py", line 10, in <module>
    main()
    ^^^^^^
  File "/app/train.py", line 7, in main
    raise ValueError("reward function returned None for sample 17")
ValueError: reward function returned None for sample 17
`,
      exitCode: 1,
      reason: 'TrainerCrashed',
      message: /exited with code 1: ValueError: reward function returned None for sample 17/,
    },
    {
      name: 'a Node error with a stack',
      output: 'Error: boom\n    at main (file:///app/train.ts:3:9)\n    at file:///app/train.ts:9:1',
      exitCode: 1,
      reason: 'TrainerCrashed',
      message: /: Error: boom/,
    },
    { name: 'no output at all', output: '', exitCode: 139, reason: 'TrainerCrashed', message: /code 139 without output/ },
    { name: 'killed', output: 'step 3000 loss 0.2', signal: 'SIGKILL', reason: 'TrainerKilled', message: /SIGKILL.*out-of-memory killer.*step 3000/ },
    { name: 'segfault', output: 'Fatal Python error: Segmentation fault', signal: 'SIGSEGV', reason: 'TrainerCrashed', message: /SIGSEGV: Fatal Python error/ },
  ];
  for (const c of cases) {
    const d = diagnose({ lines: text(c.output), exitCode: c.exitCode ?? null, signal: c.signal ?? null });
    assert.equal(d.reason, c.reason, c.name);
    assert.match(d.message, c.message, c.name);
  }
});

test('lastMeaningfulLine skips traceback frames, carets and blank lines', () => {
  assert.equal(lastMeaningfulLine(['a', 'Traceback (most recent call last):', '  File "x.py", line 1, in f', '    f()', '    ^^^', 'KeyError: 3', '']), 'KeyError: 3');
  assert.equal(lastMeaningfulLine(['first', 'second', '']), 'second');
  assert.equal(lastMeaningfulLine([]), undefined);
});

test('memoryPhase takes the marker closest before the error', () => {
  assert.equal(memoryPhase(['generating', 'loss.backward()', 'OOM'], 2), 'training');
  assert.equal(memoryPhase(['loss.backward()', 'sglang decode step', 'OOM'], 2), 'generation');
  assert.equal(memoryPhase(['nothing here', 'OOM'], 1), undefined);
  assert.equal(memoryPhase(['loss.backward()', ...Array(50).fill('noise'), 'OOM'], 51), undefined, 'outside the window');
});

test('OutputTail keeps whole lines per stream, bounded', () => {
  const tail = new OutputTail(3, 1000);
  tail.push('out-a\nout-', 'stdout');
  tail.push('err-a\n', 'stderr');
  tail.push('b\n', 'stdout');
  assert.deepEqual(tail.lines(), ['out-a', 'err-a', 'out-b']);
  tail.push('1\n2\n3\n4\npartial', 'stdout');
  assert.deepEqual(tail.lines(), ['2', '3', '4', 'partial']);
  const bytes = new OutputTail(100, 20);
  bytes.push('0123456789\nabcdefghij\nKLMNOPQRST\n');
  assert.deepEqual(bytes.lines(), ['abcdefghij', 'KLMNOPQRST']);
});

describe('a full checkpoint volume', () => {
  const full = { path: '/checkpoints', freeBytes: 4096, totalBytes: 64 * 1024 * 1024 };
  const roomy = { path: '/checkpoints', freeBytes: 40 * 1024 * 1024 * 1024, totalBytes: 100 * 1024 * 1024 * 1024 };
  test('ENOSPC in the output is VolumeFull, with the volume and its free space, before anything it caused', () => {
    const d = diagnose({ lines: ["OSError: [Errno 28] No space left on device: '/checkpoints/run-1/step-5.pt'", 'torch.distributed.DistBackendError: NCCL error'], exitCode: 1, volume: full });
    assert.equal(d.reason, 'VolumeFull');
    assert.match(d.message, /^The checkpoint volume at \/checkpoints is full \(4\.0 KiB free of 64\.0 MiB\): OSError: \[Errno 28\]/);
    assert.equal(d.retryable, true);
  });
  test("torch's short-write error counts only when the volume is in fact nearly full", () => {
    const lines = ['RuntimeError: [enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file data/0: file write failed'];
    assert.equal(diagnose({ lines, exitCode: 1, volume: full }).reason, 'VolumeFull');
    assert.notEqual(diagnose({ lines, exitCode: 1, volume: roomy }).reason, 'VolumeFull');
    assert.notEqual(diagnose({ lines, exitCode: 1 }).reason, 'VolumeFull');
  });
  test("the trainer's own CheckpointWriteFailed on a full volume becomes VolumeFull", () => {
    assert.equal(volumeFull({ lines: [], volume: full, also: 'CheckpointWriteFailed: A checkpoint could not be written: RuntimeError: file write failed' })?.reason, 'VolumeFull');
    assert.equal(volumeFull({ lines: [], volume: roomy, also: 'CheckpointWriteFailed: A checkpoint could not be written: PermissionError' }), undefined);
  });
  test('without the volume the message still says the disk is full', () => {
    assert.match(diagnose({ lines: ['Error: ENOSPC: no space left on device, write'], exitCode: 1 }).message, /^The trainer ran out of disk space: Error: ENOSPC/);
    assert.equal(nearlyFull({ path: '/c', freeBytes: 2 * 1024 * 1024, totalBytes: 1024 * 1024 * 1024 * 1024 }), true, 'under 1 % of a large volume');
  });
});
