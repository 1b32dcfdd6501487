// LLM fine-tuning end to end on CPU: the operator, a local node that runs worker and agent pods as processes, and
// the runtime with AgileRL's own LLM trainer (runtime/trainers/agilerl/arena_agilerl/llm.py). There is no model hub:
// the base model (a tiny Qwen2 with random weights and a tokenizer trained in code) and the dataset are made here
// and put where workers read them, the namespace's _shared folder of the checkpoint storage. The node declares a
// GPU (LLM classes need one) and its runtime image says ARENA_DEVICE=cpu, so AgileRL trains on this machine's CPU.
// SFT trains to Succeeded, DPO over preference pairs trains to Succeeded, a long SFT run and a GRPO run (rollouts
// generated in the worker) are stopped (final checkpoint) and trained again from it, and the GRPO and SFT checkpoints
// are served as agents: /generate, /generate_stream and /sessions through the in-pod transformers engine.
import { execFileSync } from 'node:child_process';
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeV1Api, type V1Pod } from '@kubernetes/client-node';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import type { LocalNode } from './node/local-node.ts';
import { runtimeImage, startLocalOperator, startRuntimeNode } from './support/runtime-node.ts';
import { Agents, Arena, deployment, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import type { RunningOperator } from '../operator/operator.ts';
import type { Manifest } from '../operator/api/v1alpha1/manifest.ts';
import { resolvePython } from '../operator/api/platform/verdict.ts';

const ns = 'llm';
const TINY_LLM = fileURLToPath(new URL('../runtime/trainers/agilerl/tests/tiny_llm.py', import.meta.url));
/** Where the pods see the namespace's shared models and datasets. */
const SHARED = `/checkpoints/${ns}/_shared`;

/** AgileRL SFT of the tiny model on the sums dataset, with LoRA; a checkpoint every `evoSteps` samples. */
function sft(maxSteps: number, evoSteps = 8): Manifest {
  return {
    algorithm: { name: 'SFT', batch_size: 4, lr: 0.01, use_liger_loss: false, gradient_checkpointing: false },
    network: {
      pretrained_model_name_or_path: `${SHARED}/model`,
      max_context_length: 64,
      lora_config: { lora_r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] },
    },
    environment: { env_type: 'dataset', objective: 'sft', dataset: `${SHARED}/sums.parquet`, response_column: 'output', name: 'sums' },
    training: { max_steps: maxSteps, evo_steps: evoSteps, pop_size: 1 },
  } as Manifest;
}

/** AgileRL DPO of the tiny model over the sums as preference pairs (prompt, chosen: the right sum, rejected: one off). */
function dpo(maxSteps: number, evoSteps = 8): Manifest {
  return {
    ...sft(maxSteps, evoSteps),
    algorithm: { name: 'DPO', batch_size: 4, lr: 0.01, beta: 0.1, nll_alpha: 1.0, use_liger_loss: false, gradient_checkpointing: false },
    environment: { env_type: 'dataset', objective: 'preference', dataset: `${SHARED}/sums-preferences.parquet`, name: 'sums-preferences' },
  } as Manifest;
}

/**
 * AgileRL GRPO over the sums' rows, scored by tiny_llm.py's arbitrary score. `rollout_mode: async` builds
 * no vLLM engine, so AgileRL's LocalTrainer generates each group with transformers in the worker, on CPU; a learning
 * step is 2 prompts times a group of 2, which AgileRL counts as 4 steps.
 */
function grpo(maxSteps: number, evoSteps = 4): Manifest {
  return {
    algorithm: { name: 'GRPO', batch_size: 2, group_size: 2, lr: 0.01, use_liger_loss: false, gradient_checkpointing: false, max_output_tokens: 4 },
    network: sft(maxSteps).network,
    environment: {
      env_type: 'rollout',
      dataset: `${SHARED}/sums.parquet`,
      name: 'sums',
      prompt_template: { user_0: '{question}' },
      rubric_file_path: `${SHARED}/rubric.py`,
      rubric_name: 'arbitrary_score',
    },
    training: { max_steps: maxSteps, evo_steps: evoSteps, pop_size: 1, rollout_mode: 'async', rollout_engines_per_agent: 1 },
    replay_buffer: { kind: 'llm' },
  } as Manifest;
}

describe('LLM fine-tuning with AgileRL on a local node (CPU)', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let agents: Agents;
  let node: LocalNode;
  let op: RunningOperator;
  let checkpoints: string;
  const folder = (location: string) => join(checkpoints, location.slice('/checkpoints/'.length));
  const finished = (name: string, what: string, timeoutMs: number) =>
    arena.waitExperiment(ns, name, (s) => s.phase === 'Succeeded' || s.phase === 'Failed', what, timeoutMs);
  const dump = (name: string) =>
    console.log(execFileSync('sh', ['-c', `find ${checkpoints} ${join(cluster.dir, 'node')} \\( -name '*.jsonl' -o -name '*.log' \\) | grep ${name} | while read f; do echo "== $f"; tail -c 3000 "$f"; done`], { encoding: 'utf8' }));

  /** Stop a running experiment and wait for it to end Stopped; its latest checkpoint is the stop's final one. */
  const stopWithFinal = async (name: string) => {
    await arena.patchExperiment(ns, name, { action: 'Stop' });
    const stopped = await arena.waitExperiment(ns, name, (s) => s.phase === 'Stopped' || s.phase === 'Failed', 'stopped', 180_000);
    if (stopped.status?.phase !== 'Stopped') dump(name);
    assert.equal(stopped.status?.phase, 'Stopped', JSON.stringify(stopped.status?.lastFailure));
    const final = stopped.status!.latestCheckpoint!;
    assert.match(final.location, /-final$/);
    return { stopped, final };
  };

  /** Train again after a Stop: the next attempt resumes from the final checkpoint and trains past it; then Stop. */
  const trainAgainFrom = async (name: string, final: { location: string; step: number }, algorithm: string) => {
    await arena.patchExperiment(ns, name, { action: 'Train' });
    const again = await arena.waitExperiment(ns, name, (s) => (s.checkpoints ?? []).some((c) => c.step > final.step), 'a checkpoint past the final one', 420_000);
    const pods = await arena.workerPods(ns, again);
    const logs = await cluster.kubectlAsync(['logs', '-n', ns, pods.at(-1)!.metadata!.name!]);
    assert.match(logs, new RegExp(`arena-agilerl: resumed ${algorithm} from ${final.location}/agent at step ${final.step}`));
    await arena.patchExperiment(ns, name, { action: 'Stop' });
    await arena.waitExperiment(ns, name, (s) => s.phase === 'Stopped' || s.phase === 'Failed', 'stopped again', 180_000);
  };

  before(async () => {
    cluster = await LocalCluster.start({ without: ['kwok'] });
    await installCrds(cluster);
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    agents = new Agents(arena);
    checkpoints = join(cluster.dir, 'checkpoints');
    mkdirSync(checkpoints, { recursive: true });
    // The base model and the dataset, made in code, in the storage folder every worker of the namespace reads.
    execFileSync(resolvePython(), [TINY_LLM, join(checkpoints, ns, '_shared')], { stdio: 'pipe' });
    node = await startRuntimeNode(kc, {
      dataDir: join(cluster.dir, 'node'),
      labels: { pool: 'llm' },
      gpus: { count: 1, product: 'NVIDIA A100-SXM4-80GB', memoryMiB: 81920, computeCapability: '8.0' },
      // The image's Python is the caller's ARENA_PYTHON where one is set (a worktree without its own .venv).
      imageMap: [runtimeImage('registry.local/arena-runtime', { ARENA_DEVICE: 'cpu', ...(process.env.ARENA_PYTHON ? { ARENA_PYTHON: process.env.ARENA_PYTHON } : {}) })],
    });
    op = await startLocalOperator(kc, {
      progressIntervalMs: 1000,
      deployments: {
        health: { intervalMs: 500, timeoutMs: 2000, failureThreshold: 5, allowedCidrs: ['127.0.0.0/8'] },
        unhealthyTimeoutMs: 120_000,
        bindHost: '$(POD_IP)',
        discoveryTtlMs: 1000,
      },
    });
    // GPU pods name the nvidia RuntimeClass, as on a GPU cluster; the local node runs them as processes all the same.
    await kc.makeApiClient(NodeV1Api).createRuntimeClass({ body: { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'nvidia' }, handler: 'nvidia' } });
    await arena.apply(
      trainingCluster('local', {
        setupBundle: { version: '1.0.0', images: { runtime: 'registry.local/arena-runtime:1.0.0' } },
        checkpointStorage: { mountPath: '/checkpoints', hostPath: { path: checkpoints } },
      }),
    );
    await arena.apply(resourceClass('a100', 'local', { nodes: 1, worker: { cpu: '1', memory: '4Gi', gpus: 1 }, nodeSelector: { pool: 'llm' } }));
    await arena.namespace(ns);
  });
  after(async () => {
    await op?.stop();
    await node?.stop();
    await cluster?.stop();
  });

  test('SFT trains with AgileRL to Succeeded, with LoRA adapters as AgileRL writes them', async () => {
    await arena.apply(experiment(ns, 'sums', 'a100', { manifest: sft(16), stopGracePeriodSeconds: 60 }));
    const done = await finished('sums', 'SFT to finish', 420_000);
    if (done.status?.phase !== 'Succeeded') dump('sums');
    assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.lastFailure));
    const ckpts = done.status?.checkpoints ?? [];
    assert.deepEqual(ckpts.map((c) => c.step), [8, 16]);
    assert.equal(done.status?.progress?.step, 16);
    assert.ok(ckpts.every((c) => c.sizeBytes > 0 && typeof c.trainingScore === 'number'), JSON.stringify(ckpts));
    const meta = JSON.parse(readFileSync(join(folder(ckpts.at(-1)!.location), 'arena-checkpoint.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([meta.llm, meta.algorithm, meta.weights, meta.base_model], [true, 'SFT', 'lora-adapter', `${SHARED}/model`]);
    assert.ok(existsSync(join(folder(ckpts.at(-1)!.location), 'agent', 'actor', 'adapter_model.safetensors')), 'PEFT adapter weights');
    const [pod] = await arena.workerPods(ns, done);
    const env = Object.fromEntries((pod!.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
    assert.deepEqual([env.NNODES, env.NODE_RANK, env.NPROC_PER_NODE, env.WORLD_SIZE], ['1', '0', '1', '1'], 'torchrun rendezvous in the pod spec');
    const logs = await cluster.kubectlAsync(['logs', '-n', ns, pod!.metadata!.name!]);
    assert.match(logs, /arena-agilerl: SFT on sums, base model \/checkpoints\/llm\/_shared\/model, .*device cpu, Liger kernels off \(CPU\)/);
  });

  test('DPO trains with AgileRL over preference pairs to Succeeded, with its actor and reference adapters', async () => {
    await arena.apply(experiment(ns, 'prefs', 'a100', { manifest: dpo(16), stopGracePeriodSeconds: 60 }));
    const done = await finished('prefs', 'DPO to finish', 420_000);
    if (done.status?.phase !== 'Succeeded') dump('prefs');
    assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.lastFailure));
    const ckpts = done.status?.checkpoints ?? [];
    assert.deepEqual(ckpts.map((c) => c.step), [8, 16]);
    assert.ok(ckpts.every((c) => c.sizeBytes > 0 && typeof c.trainingScore === 'number'), JSON.stringify(ckpts));
    const last = folder(ckpts.at(-1)!.location);
    const meta = JSON.parse(readFileSync(join(last, 'arena-checkpoint.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([meta.llm, meta.algorithm, meta.weights, meta.environment], [true, 'DPO', 'lora-adapter', 'sums-preferences']);
    for (const f of ['actor/adapter_model.safetensors', 'reference/adapter_model.safetensors', 'attributes.pt']) assert.ok(existsSync(join(last, 'agent', f)), f);
  });

  test('Stop mid-run writes a final adapter checkpoint; Train again continues from its step', async () => {
    await arena.apply(experiment(ns, 'long', 'a100', { manifest: sft(100_000), stopGracePeriodSeconds: 60 }));
    await arena.waitExperiment(ns, 'long', (s) => (s.checkpoints?.length ?? 0) >= 1, 'a checkpoint', 420_000);
    const { final } = await stopWithFinal('long');
    assert.ok(existsSync(join(folder(final.location), 'agent', 'actor', 'adapter_config.json')));

    await trainAgainFrom('long', final, 'SFT');
  });

  test('GRPO trains with rollouts generated in the worker; Stop writes a final checkpoint; Train again resumes from it', async () => {
    await arena.apply(experiment(ns, 'rollouts', 'a100', { manifest: grpo(100_000), stopGracePeriodSeconds: 60 }));
    await arena.waitExperiment(ns, 'rollouts', (s) => (s.checkpoints?.length ?? 0) >= 2, 'two checkpoints', 420_000);
    const { stopped, final } = await stopWithFinal('rollouts');
    assert.deepEqual((stopped.status!.checkpoints ?? []).slice(0, 2).map((c) => c.step), [4, 8]);
    const meta = JSON.parse(readFileSync(join(folder(final.location), 'arena-checkpoint.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([meta.llm, meta.algorithm, meta.weights, meta.final], [true, 'GRPO', 'lora-adapter', true]);
    assert.ok(existsSync(join(folder(final.location), 'agent', 'actor', 'adapter_model.safetensors')), 'PEFT adapter weights');

    await trainAgainFrom('rollouts', final, 'GRPO');
  });

  test('the GRPO checkpoint is served as an agent: /generate from transformers in the pod', async () => {
    await agents.create(deployment(ns, 'reasoner', 'rollouts', { connected: true, source: { experiment: 'rollouts', checkpoint: 'final' }, resources: { cpu: '1', memory: '2Gi', gpus: 1 } }));
    const d = await agents.waitPhase(ns, 'reasoner', 'Deployed', 300_000);
    const pods = (await agents.pods(ns, d)).filter((p: V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    assert.equal(pods.length, 1);
    const base = `http://${pods[0]!.status!.podIP}:8000`;
    const status = (await (await fetch(`${base}/status`)).json()) as { agent: { algo: string; llm: boolean } };
    assert.deepEqual([status.agent.algo, status.agent.llm], ['GRPO', true]);
    const headers = { authorization: `Bearer ${await agents.apiKey(ns, d)}`, 'content-type': 'application/json' };
    const gen = await fetch(`${base}/generate`, { method: 'POST', headers, body: JSON.stringify({ prompts: ['what is 3 plus 4 ?'], params: { max_new_tokens: 3, temperature: 0 } }), signal: AbortSignal.timeout(60_000) });
    const body = (await gen.json()) as { results: { prompt: string; completion: string }[] };
    assert.equal(gen.status, 200, JSON.stringify(body));
    assert.deepEqual(body.results.map((r) => r.prompt), ['what is 3 plus 4 ?']);
    assert.equal(typeof body.results[0]!.completion, 'string');
    await agents.delete(ns, 'reasoner');
  });

  test('the SFT checkpoint is served as an agent: /generate, /generate_stream and /sessions from transformers in the pod', async () => {
    await agents.create(deployment(ns, 'chat', 'sums', { connected: true, source: { experiment: 'sums', checkpoint: 'final' }, resources: { cpu: '1', memory: '2Gi', gpus: 1 } }));
    const d = await agents.waitPhase(ns, 'chat', 'Deployed', 300_000);
    assert.equal(d.status!.endpoint?.inferencePath, 'generate');
    assert.deepEqual(d.status!.endpoint?.paths, ['/status', '/generate', '/generate_stream', '/sessions']);
    const pods = (await agents.pods(ns, d)).filter((p: V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    assert.equal(pods.length, 1);
    const base = `http://${pods[0]!.status!.podIP}:8000`;
    const key = await agents.apiKey(ns, d);
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const post = async (path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(60_000) });

    const status = (await (await fetch(`${base}/status`)).json()) as { agent: { algo: string; llm: boolean } };
    assert.deepEqual([status.agent.algo, status.agent.llm], ['SFT', true]);
    const gen = await post('/generate', { prompts: ['what is 2 plus 3 ?', 'what is 4 plus 4 ?'], params: { max_new_tokens: 3, temperature: 0 } });
    const body = (await gen.json()) as { success: boolean; results: { prompt: string; completion: string }[]; batch_size: number };
    assert.equal(gen.status, 200, JSON.stringify(body));
    assert.equal(body.batch_size, 2);
    assert.deepEqual(body.results.map((r) => r.prompt), ['what is 2 plus 3 ?', 'what is 4 plus 4 ?']);
    assert.ok(body.results.every((r) => typeof r.completion === 'string'));

    const stream = await post('/generate_stream', { prompt: 'what is 1 plus 2 ?', params: { max_new_tokens: 3, temperature: 0 }, session_id: 'chat-1' });
    assert.equal(stream.status, 200);
    const streamed = await stream.text();
    assert.ok(!streamed.includes('[ERROR:'), streamed);
    const session = await fetch(`${base}/sessions/chat-1`, { headers });
    const messages = ((await session.json()) as { messages: { role: string; content: string }[] }).messages;
    assert.deepEqual(messages, [
      { role: 'user', content: 'what is 1 plus 2 ?' },
      { role: 'assistant', content: streamed },
    ]);
    assert.equal((await post('/generate', { prompts: ['x'] })).status, 200);
    assert.equal((await fetch(`${base}/generate`, { method: 'POST', body: '{}' })).status, 401, 'a key is needed');
  });
});
