// The Arena platform's own Python client (agilerl.arena.Agent, pinned in python/requirements.lock) against our
// inference server: every route, as that client parses the answer with its own models and raises its own errors.
// The client runs in platform_client_driver.py; each case below is one call of it and what it must return or
// raise. The servers are the real inference server with small stand-in models plugged in (a linear CartPole policy
// that refuses input as the AgileRL model does, recurrent, multi-agent, a predictor), so that what is under test is
// the HTTP contract rather than a model process, and a fake engine for the LLM routes. AgileRL checkpoints served
// end to end are agilerl-model.test.ts's and serve-cartpole.test.ts's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import type { Manifest } from '../../operator/api/v1alpha1/manifest.ts';
import { ndarray, type NdArray } from '../npy/npy.ts';
import { isNdArray, isTreeDict, type NpyTree } from '../npy/tree.ts';
import { agentInfoFromManifest } from './agent-info.ts';
import { ApiKeyFile } from './api-keys.ts';
import { EngineClient } from './engine.ts';
import { badRequest } from './errors.ts';
import type { ActionModel, ActionRequest, AgentInfo, Predictor } from './models.ts';
import { startInferenceServer, type InferenceServerOptions, type RunningInferenceServer } from './server.ts';
import { completionOf, linearCartPoleModel, quietLogger, startFakeEngine, tempDir, writeKey, type FakeEngine } from './testing.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const PYTHON = process.env.ARENA_PYTHON ?? resolve(HERE, '../../.venv/bin/python');
const DRIVER = join(HERE, 'platform_client_driver.py');

// ---------------------------------------------------------------------------------------------------------------
// Values as the driver passes them: arrays and tuples tagged, pydantic models by class name.

type Nested = number | boolean | Nested[];
interface TaggedArray {
  __array__: Nested;
  dtype: string;
  shape: number[];
}

function shapeOf(data: Nested): number[] {
  return Array.isArray(data) ? [data.length, ...(data.length > 0 ? shapeOf(data[0]!) : [])] : [];
}
const arr = (dtype: string, data: Nested): TaggedArray => ({ __array__: data, dtype, shape: shapeOf(data) });
// JSON has no NaN: null stands for it, which NumPy reads as NaN in a float array.
const NAN = null as unknown as number;
const f32 = (data: Nested) => arr('float32', data);
const i64 = (data: Nested) => arr('int64', data);
const tuple = (...items: unknown[]) => ({ __tuple__: items });
const model = (name: string, fields: Record<string, unknown>) => ({ __model__: name, fields });

// ---------------------------------------------------------------------------------------------------------------
// Stand-in models for the other agent kinds. Each picks, per row, the highest-valued allowed entry.

function argmaxRows(obs: NdArray, mask: NpyTree | undefined, field: string): NdArray {
  const [n, width] = obs.shape as [number, number];
  if (mask != null && (!isNdArray(mask) || mask.shape[1] !== width)) throw badRequest(field, `expected shape (N, ${width})`);
  const out = ndarray('i8', [n]);
  for (let r = 0; r < n; r++) {
    let best = -1;
    for (let a = 0; a < width; a++) {
      if (mask != null && (mask as NdArray).number(r * width + a) === 0) continue;
      if (best < 0 || obs.number(r * width + a) > obs.number(r * width + best)) best = a;
    }
    (out.data as BigInt64Array)[r] = BigInt(best);
  }
  return out;
}

function obsRows(tree: NpyTree | undefined, field: string): NdArray {
  if (!isNdArray(tree) || tree.ndim !== 2) throw badRequest(field, 'expected an array of shape (N, k)');
  return tree;
}

/** A recurrent policy whose hidden state {h: (N, 1)} counts the steps it has seen (none: a first step). */
const recurrentModel: ActionModel = {
  description: 'step counter',
  getAction(req: ActionRequest) {
    const obs = obsRows(req.obs, 'obs');
    const h = ndarray('f4', [req.batchSize, 1]);
    if (req.hiddenState != null) {
      const given = isTreeDict(req.hiddenState) ? req.hiddenState.h : undefined;
      if (!isNdArray(given) || given.shape.join() !== `${req.batchSize},1`) throw badRequest('hidden_state', `expected {h: (${req.batchSize}, 1)}`);
      for (let r = 0; r < req.batchSize; r++) h.data[r] = given.number(r);
    }
    for (let r = 0; r < req.batchSize; r++) (h.data as Float32Array)[r]! += 1;
    return { action: argmaxRows(obs, req.actionMask, 'action_mask'), hiddenState: { h } };
  },
};

/** Two agents; an env-defined action (not NaN) replaces the agent's own choice. */
const multiAgentModel: ActionModel = {
  description: 'two agents',
  getAction(req: ActionRequest) {
    if (!isTreeDict(req.obs)) throw badRequest('obs', 'expected an object keyed by agent id');
    const masks = isTreeDict(req.actionMask) ? req.actionMask : {};
    const defined = isTreeDict(req.envDefinedActions) ? req.envDefinedActions : {};
    const action: Record<string, NdArray> = {};
    for (const [id, obs] of Object.entries(req.obs)) {
      const chosen = argmaxRows(obsRows(obs, `obs.${id}`), masks[id], `action_mask.${id}`);
      const d = defined[id];
      if (isNdArray(d)) for (let r = 0; r < req.batchSize; r++) if (!Number.isNaN(d.number(r))) (chosen.data as BigInt64Array)[r] = BigInt(d.number(r));
      action[id] = chosen;
    }
    return { action };
  },
};

/** Row sums, as float64. */
const sumPredictor: Predictor = {
  description: 'row sums',
  predict(inputs: NpyTree, n: number) {
    const x = obsRows(inputs, 'inputs');
    const width = x.shape[1]!;
    const out = ndarray('f8', [n]);
    for (let r = 0; r < n; r++) for (let c = 0; c < width; c++) out.data[r] = (out.data[r] as number) + x.number(r * width + c);
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------------------
// The servers, and the client's agents on them.

const MANIFESTS = {
  dqn: { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } },
  recurrent: { algorithm: { name: 'PPO', recurrent: true }, environment: { name: 'CartPole-v1' } },
  multi: { algorithm: { name: 'IPPO' }, environment: { name: 'pettingzoo.mpe.simple_spread_v3' } },
  llm: { algorithm: { name: 'GRPO', pretrained_model_name_or_path: 'Qwen/Qwen2.5-0.5B-Instruct' }, environment: { name: 'gsm8k', entrypoint: 'envs.gsm8k:make_env' } },
} satisfies Record<string, Manifest>;
// No algorithm of the platform's registry is served on /predict; an image with a predictor describes its own.
const SUPERVISED: AgentInfo = { algo: 'Supervised', multi_agent: false, llm: false, recurrent: false, supervised: true };

type ServerName = 'dqn' | 'anonymous' | 'recurrent' | 'multi' | 'predict' | 'noPredictor' | 'llm';

const tmp = tempDir('serve-platform-client-');
const KEY = 'deployment-key';
const keyFile = join(tmp.dir, 'api-key');
writeKey(keyFile, KEY);
const servers = new Map<ServerName, RunningInferenceServer>();
let fake: FakeEngine;
let engine: EngineClient;

async function serve(name: ServerName, opts: Pick<InferenceServerOptions, 'route' | 'agent' | 'actions' | 'predictor' | 'engine'>): Promise<void> {
  servers.set(
    name,
    await startInferenceServer({
      host: '127.0.0.1',
      port: 0,
      deploymentId: `${name}-1`,
      instanceId: `pod-${name}`,
      apiKeys: new ApiKeyFile(keyFile),
      logger: quietLogger(),
      registry: new Registry(),
      ...opts,
    }),
  );
}

/** An agent of the client (built as the client's default does, reading /status first): its server and key. */
interface AgentSpec {
  server: ServerName;
  key: string | null;
}
const AGENTS = {
  dqn: { server: 'dqn', key: KEY },
  recurrent: { server: 'recurrent', key: KEY },
  multi: { server: 'multi', key: KEY },
  predict: { server: 'predict', key: KEY },
  noPredictor: { server: 'noPredictor', key: KEY },
  llm: { server: 'llm', key: KEY },
  // Its /status has no agent, so the client cannot guard a call by deployment type: the server's answer is what it gets.
  anonymous: { server: 'anonymous', key: KEY },
  dqnWrongKey: { server: 'dqn', key: 'not-the-key' },
  dqnNoKey: { server: 'dqn', key: null },
  llmWrongKey: { server: 'llm', key: 'not-the-key' },
} satisfies Record<string, AgentSpec>;
type AgentName = keyof typeof AGENTS;

// ---------------------------------------------------------------------------------------------------------------
// The driver: one Python process for the whole file, one JSON line per call.

interface Raised {
  type: string;
  module?: string;
  status_code: number | null;
  detail: string | null;
  message: string;
}
interface Answer {
  returned?: unknown;
  raised?: Raised;
  pieces?: string[];
}

class Driver {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting = new Map<number, (answer: Answer) => void>();
  private nextId = 1;
  private stderr = '';
  private readonly opened = new Set<AgentName>();

  constructor() {
    // Nothing from the caller's environment may point the client elsewhere: no platform credentials, no proxy.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^ARENA_|proxy/i.test(k)));
    this.child = spawn(PYTHON, [DRIVER], { env: { ...env, NO_PROXY: '127.0.0.1,localhost', PYTHONUNBUFFERED: '1' }, stdio: 'pipe' });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const answer = JSON.parse(line) as Answer & { id: number };
      this.waiting.get(answer.id)?.(answer);
      this.waiting.delete(answer.id);
    });
    this.child.on('exit', (code) => this.fail(`the driver exited with ${code}: ${this.stderr}`));
    // A Python that cannot be started: every call answers why, rather than the test process crashing.
    this.child.on('error', (err) => this.fail(`${PYTHON} cannot run the driver (set ARENA_PYTHON to a Python with agilerl-arena 1.29.0): ${err.message}`));
    this.child.stdin.on('error', () => undefined);
  }

  private fail(message: string): void {
    for (const done of this.waiting.values()) done({ raised: { type: 'DriverExited', status_code: null, detail: null, message } });
    this.waiting.clear();
  }

  private ask(request: Record<string, unknown>): Promise<Answer> {
    const id = this.nextId++;
    return new Promise((done) => {
      this.waiting.set(id, done);
      this.child.stdin.write(`${JSON.stringify({ id, ...request })}\n`);
    });
  }

  async call(agent: AgentName, method: string, kwargs: Record<string, unknown> = {}): Promise<Answer> {
    if (!this.opened.has(agent)) {
      const spec: AgentSpec = AGENTS[agent];
      const opened = await this.ask({ op: 'open', name: agent, endpoint: servers.get(spec.server)!.url, api_key: spec.key });
      assert.equal(opened.raised, undefined, `the client could not open ${agent}: ${JSON.stringify(opened.raised)}`);
      this.opened.add(agent);
    }
    return this.ask({ op: 'call', name: agent, method, kwargs });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.pid === undefined) return;
    const exited = new Promise((done) => this.child.once('exit', done));
    this.child.stdin.end();
    await exited;
  }
}

let driver: Driver;

before(async () => {
  fake = await startFakeEngine();
  fake.healthy = true;
  // Polls are driven by the cases (engine.poll()), not by time.
  engine = new EngineClient({ url: fake.url, pollNotReadyMs: 60_000, pollReadyMs: 60_000 });
  const dqn = linearCartPoleModel();
  await serve('dqn', { route: 'get_action', agent: agentInfoFromManifest(MANIFESTS.dqn), actions: dqn });
  await serve('anonymous', { route: 'get_action', actions: dqn });
  await serve('recurrent', { route: 'get_action', agent: agentInfoFromManifest(MANIFESTS.recurrent), actions: recurrentModel });
  await serve('multi', { route: 'get_action', agent: agentInfoFromManifest(MANIFESTS.multi), actions: multiAgentModel });
  await serve('predict', { route: 'predict', agent: SUPERVISED, predictor: sumPredictor });
  await serve('noPredictor', { route: 'predict', agent: SUPERVISED });
  await serve('llm', { route: 'generate', agent: agentInfoFromManifest(MANIFESTS.llm), engine });
  await engine.poll();
  driver = new Driver();
});

after(async () => {
  await driver?.close();
  for (const s of servers.values()) await s.close();
  await fake?.close();
  tmp.remove();
});

// ---------------------------------------------------------------------------------------------------------------
// The cases, run in order (the session cases build on each other).

type Expect =
  | { returns: unknown }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a check reads the client's value freely
  | { check: (value: any) => void }
  | { raises: string; status?: number; detail?: RegExp; message?: RegExp; pieces?: string[] };

interface Case {
  name: string;
  agent: AgentName;
  method: string;
  kwargs?: Record<string, unknown>;
  /** Runs before the call. */
  arrange?: () => Promise<void>;
  expect: Expect;
}

const status = (server: ServerName, agent: AgentInfo | null) =>
  model('StatusResponse', { success: true, deployment_id: `${server}-1`, instance_id: `pod-${server}`, agent });
const action = (a: unknown, hidden: unknown = null) => ({ returns: tuple(a, hidden) });
const inferenceError = (status: number, detail: RegExp) => ({ raises: 'ArenaInferenceError', status, detail });
// The status of a /generate_stream failure travels in the stream; the client reports the stream's 200.
const streamError = (detail: RegExp, pieces?: string[]) => ({ raises: 'ArenaInferenceError', status: 200, detail, ...(pieces ? { pieces } : {}) });
const authError = (message: RegExp) => ({ raises: 'ArenaAuthError', message });

const llmResults = (results: [string, string][]) => ({
  check: (v: { __model__: string; fields: Record<string, unknown> }) => {
    assert.equal(v.__model__, 'LLMResults');
    const { inference_time_ms, tokens_per_second, ...rest } = v.fields;
    assert.deepEqual(rest, { results: results.map(([prompt, completion]) => ({ prompt, completion })), batch_size: results.length, success: true });
    assert.ok(typeof inference_time_ms === 'number' && inference_time_ms >= 0);
    assert.ok(typeof tokens_per_second === 'number' && tokens_per_second >= 0);
  },
});

const setEngineHealthy = (healthy: boolean) => async () => {
  fake.healthy = healthy;
  await engine.poll();
};

// The linear CartPole policy's greedy action is 1 exactly when the pole angle (obs[2]) exceeds the position (obs[0]).
const RIGHT = [0, 0, 0.5, 0];
const LEFT = [0.5, 0, 0, 0];
const TRANSCRIPT = `Hi.${completionOf('Hi.')} More?`;

const cases: Case[] = [
  // /status
  { name: 'status of a DQN deployment', agent: 'dqn', method: 'status', kwargs: { refresh: true }, expect: { returns: status('dqn', agentInfoFromManifest(MANIFESTS.dqn)) } },
  { name: 'status of a recurrent deployment', agent: 'recurrent', method: 'status', expect: { returns: status('recurrent', { algo: 'PPO', multi_agent: false, llm: false, recurrent: true, supervised: false }) } },
  { name: 'status of a multi-agent deployment', agent: 'multi', method: 'status', expect: { returns: status('multi', { algo: 'IPPO', multi_agent: true, llm: false, recurrent: false, supervised: false }) } },
  { name: 'status of a supervised deployment', agent: 'predict', method: 'status', expect: { returns: status('predict', SUPERVISED) } },
  { name: 'status of an LLM deployment', agent: 'llm', method: 'status', expect: { returns: status('llm', { algo: 'GRPO', multi_agent: false, llm: true, recurrent: false, supervised: false }) } },
  { name: 'status of a deployment that does not describe its agent', agent: 'anonymous', method: 'status', expect: { returns: status('anonymous', null) } },
  { name: 'status is public: a wrong key still reads it', agent: 'dqnWrongKey', method: 'status', expect: { returns: status('dqn', agentInfoFromManifest(MANIFESTS.dqn)) } },

  // /get_action, DQN
  { name: 'get_action, unbatched', agent: 'dqn', method: 'get_action', kwargs: { observation: f32(RIGHT) }, expect: action(i64(1)) },
  { name: 'get_action, batched', agent: 'dqn', method: 'get_action', kwargs: { observation: f32([RIGHT, LEFT, RIGHT]), batched: true }, expect: action(i64([1, 0, 1])) },
  { name: 'get_action, unbatched float64 observation', agent: 'dqn', method: 'get_action', kwargs: { observation: arr('float64', LEFT) }, expect: action(i64(0)) },
  {
    name: 'get_action, unbatched with an int8 action mask',
    agent: 'dqn',
    method: 'get_action',
    kwargs: { observation: f32(RIGHT), info: { action_mask: arr('int8', [1, 0]) } },
    expect: action(i64(0)),
  },
  {
    name: 'get_action, batched with a boolean action mask',
    agent: 'dqn',
    method: 'get_action',
    kwargs: { observation: f32([RIGHT, LEFT]), batched: true, info: { action_mask: arr('bool', [[true, false], [false, true]]) } },
    expect: action(i64([0, 1])),
  },

  // /get_action, recurrent: the hidden state goes out and comes back through the client
  { name: 'get_action, recurrent first step (no hidden state)', agent: 'recurrent', method: 'get_action', kwargs: { observation: f32([0, 1]) }, expect: action(i64(1), { h: f32([1]) }) },
  {
    name: 'get_action, recurrent next step',
    agent: 'recurrent',
    method: 'get_action',
    kwargs: { observation: f32([1, 0]), hidden_state: { h: f32([1]) } },
    expect: action(i64(0), { h: f32([2]) }),
  },
  {
    name: 'get_action, recurrent batched with a mask',
    agent: 'recurrent',
    method: 'get_action',
    kwargs: { observation: f32([[0, 1], [1, 0]]), batched: true, hidden_state: { h: f32([[0], [5]]) }, info: { action_mask: arr('int8', [[1, 0], [1, 1]]) } },
    expect: action(i64([0, 0]), { h: f32([[1], [6]]) }),
  },

  // /get_action, multi-agent
  {
    name: 'get_action, multi-agent batched with per-agent masks',
    agent: 'multi',
    method: 'get_action',
    kwargs: {
      observation: { agent_0: f32([[0, 1], [1, 0]]), agent_1: f32([[3, 2, 1], [1, 2, 3]]) },
      batched: true,
      info: { action_mask: { agent_0: arr('int8', [[1, 0], [1, 1]]), agent_1: arr('int8', [[0, 1, 1], [1, 1, 1]]) } },
    },
    expect: action({ agent_0: i64([0, 0]), agent_1: i64([1, 2]) }),
  },
  {
    name: 'get_action, multi-agent unbatched with env-defined actions',
    agent: 'multi',
    method: 'get_action',
    kwargs: { observation: { agent_0: f32([0, 1]), agent_1: f32([3, 2, 1]) }, env_defined_actions: { agent_0: f32(NAN), agent_1: f32(2) } },
    expect: action({ agent_0: i64(1), agent_1: i64(2) }),
  },

  // /predict
  {
    name: 'predict, unbatched',
    agent: 'predict',
    method: 'predict',
    kwargs: { inputs: f32([1, 2, 3]) },
    expect: {
      check: (v) => {
        assert.deepEqual(v.__tuple__[0], arr('float64', 6));
        assert.equal(v.__tuple__[1].__model__, 'PredictResult');
        assert.equal(v.__tuple__[1].fields.batch_size, 1);
        assert.equal(v.__tuple__[1].fields.success, true);
      },
    },
  },
  {
    name: 'predict, batched',
    agent: 'predict',
    method: 'predict',
    kwargs: { inputs: f32([[1, 2], [3, 4]]), batched: true },
    expect: {
      check: (v) => {
        assert.deepEqual(v.__tuple__[0], arr('float64', [3, 7]));
        assert.equal(v.__tuple__[1].fields.batch_size, 2);
      },
    },
  },
  { name: 'predict without a predictor in the image', agent: 'noPredictor', method: 'predict', kwargs: { inputs: f32([1]) }, expect: inferenceError(501, /no predictor for Supervised/) },

  // /generate and the sessions
  { name: 'generate one prompt without a session', agent: 'llm', method: 'generate', kwargs: { prompts: 'Hi' }, expect: llmResults([['Hi', completionOf('Hi')]]) },
  {
    name: 'generate a batch with sampling params',
    agent: 'llm',
    method: 'generate',
    kwargs: { prompts: ['a', 'bc'], params: { max_new_tokens: 5, do_sample: false } },
    expect: llmResults([
      ['a', completionOf('a')],
      ['bc', completionOf('bc')],
    ]),
  },
  { name: 'generate starts session chat-1', agent: 'llm', method: 'generate', kwargs: { prompts: 'Hi.', session_id: 'chat-1' }, expect: llmResults([['Hi.', completionOf('Hi.')]]) },
  {
    name: 'generate continues session chat-1 (the engine sees the transcript)',
    agent: 'llm',
    method: 'generate',
    kwargs: { prompts: ' More?', session_id: 'chat-1' },
    expect: llmResults([[' More?', completionOf(TRANSCRIPT)]]),
  },
  {
    name: 'generate_stream streams the completion',
    agent: 'llm',
    method: 'generate_stream',
    kwargs: { prompt: 'Tell me', params: { max_new_tokens: 8 }, session_id: 'stream-1' },
    expect: { check: (pieces: string[]) => assert.equal(pieces.join(''), 'Hello world!') },
  },
  {
    name: 'list_sessions, most recently updated first',
    agent: 'llm',
    method: 'list_sessions',
    expect: {
      check: (v: { __model__: string; fields: { session_id: string; created_at: string; last_updated: string } }[]) => {
        assert.deepEqual(
          v.map((s) => [s.__model__, s.fields.session_id]),
          [
            ['SessionInfo', 'stream-1'],
            ['SessionInfo', 'chat-1'],
          ],
        );
        for (const s of v) assert.ok(s.fields.created_at <= s.fields.last_updated);
      },
    },
  },
  {
    name: 'get_session holds the transcript',
    agent: 'llm',
    method: 'get_session',
    kwargs: { session_id: 'chat-1' },
    expect: {
      check: (v) => {
        assert.equal(v.__model__, 'SessionDetail');
        assert.equal(v.fields.session_id, 'chat-1');
        assert.deepEqual(v.fields.messages, [
          { role: 'user', content: 'Hi.' },
          { role: 'assistant', content: completionOf('Hi.') },
          { role: 'user', content: ' More?' },
          { role: 'assistant', content: completionOf(TRANSCRIPT) },
        ]);
      },
    },
  },
  { name: 'get_session of a streamed session', agent: 'llm', method: 'get_session', kwargs: { session_id: 'stream-1' }, expect: { check: (v) => assert.equal(v.fields.messages[1].content, 'Hello world!') } },
  { name: 'delete_session', agent: 'llm', method: 'delete_session', kwargs: { session_id: 'chat-1' }, expect: { returns: true } },
  { name: 'delete_session again: nothing to delete', agent: 'llm', method: 'delete_session', kwargs: { session_id: 'chat-1' }, expect: { returns: false } },
  { name: 'get_session of a deleted session', agent: 'llm', method: 'get_session', kwargs: { session_id: 'chat-1' }, expect: inferenceError(404, /^Session 'chat-1' not found\.$/) },

  // /generate_stream failures, before and after the first piece
  {
    name: 'generate_stream, the engine fails mid-stream',
    agent: 'llm',
    method: 'generate_stream',
    kwargs: { prompt: 'FAIL_MIDSTREAM' },
    expect: streamError(/^\[ERROR: 502 EngineFailed: the inference engine failed: CUDA out of memory\]$/, ['Hel']),
  },
  { name: 'generate_stream, the engine refuses before any output', agent: 'llm', method: 'generate_stream', kwargs: { prompt: 'FAIL500' }, expect: streamError(/^\[ERROR: 502 EngineFailed: the inference engine answered 500: /) },
  {
    name: 'generate_stream, a bad sampling param',
    agent: 'llm',
    method: 'generate_stream',
    kwargs: { prompt: 'x', params: { temperature: -1 } },
    expect: streamError(/^\[ERROR: 400 BadRequest: params\.temperature: expected a number from 0 to 100, got -1\]$/),
  },
  { name: 'generate_stream, a bad session id', agent: 'llm', method: 'generate_stream', kwargs: { prompt: 'x', session_id: 'has space' }, expect: streamError(/^\[ERROR: 400 BadRequest: session_id: /) },

  // Wrong or missing key
  { name: 'get_action with a wrong key', agent: 'dqnWrongKey', method: 'get_action', kwargs: { observation: f32(RIGHT) }, expect: authError(/not allowed to use this deployment/) },
  { name: 'get_action without a key', agent: 'dqnNoKey', method: 'get_action', kwargs: { observation: f32(RIGHT) }, expect: authError(/401 Unauthorized/) },
  { name: 'generate with a wrong key', agent: 'llmWrongKey', method: 'generate', kwargs: { prompts: 'Hi' }, expect: authError(/not allowed/) },
  { name: 'generate_stream with a wrong key', agent: 'llmWrongKey', method: 'generate_stream', kwargs: { prompt: 'Hi' }, expect: authError(/not allowed/) },
  { name: 'list_sessions with a wrong key', agent: 'llmWrongKey', method: 'list_sessions', expect: authError(/not allowed/) },
  { name: 'delete_session with a wrong key', agent: 'llmWrongKey', method: 'delete_session', kwargs: { session_id: 'stream-1' }, expect: authError(/not allowed/) },

  // Malformed input the client sends as asked: the server's 400 names the field
  { name: 'get_action, observation of the wrong width', agent: 'dqn', method: 'get_action', kwargs: { observation: f32([0, 0, 0]) }, expect: inferenceError(400, /obs: expected shape \(N, 4\), got \(N, 3\)/) },
  { name: 'get_action, boolean observation', agent: 'dqn', method: 'get_action', kwargs: { observation: arr('bool', [true, false, true, false]) }, expect: inferenceError(400, /obs: expected a numeric array, got booleans/) },
  { name: 'get_action, non-finite observation', agent: 'dqn', method: 'get_action', kwargs: { observation: f32([0, NAN, 0, 0]) }, expect: inferenceError(400, /obs: row 0 holds a non-finite value/) },
  { name: 'get_action, a mask that allows nothing', agent: 'dqn', method: 'get_action', kwargs: { observation: f32(RIGHT), info: { action_mask: arr('int8', [0, 0]) } }, expect: inferenceError(400, /action_mask: row 0 allows no action/) },
  {
    name: 'get_action, a mask of another batch size',
    agent: 'dqn',
    method: 'get_action',
    kwargs: { observation: f32([RIGHT, LEFT]), batched: true, info: { action_mask: arr('int8', [[1, 1]]) } },
    expect: inferenceError(400, /action_mask: expected a leading batch axis of 2 \(batch_size\), got shape \(1, 2\)/),
  },
  { name: 'get_action, recurrent with a hidden state of the wrong shape', agent: 'recurrent', method: 'get_action', kwargs: { observation: f32([0, 1]), hidden_state: { h: f32([1, 2]) } }, expect: inferenceError(400, /hidden_state: expected \{h: \(1, 1\)\}/) },
  { name: 'generate, a session id the server cannot keep', agent: 'llm', method: 'generate', kwargs: { prompts: 'x', session_id: 'has space' }, expect: inferenceError(400, /session_id: expected 1 to 128 letters/) },
  { name: 'generate, a bad sampling param', agent: 'llm', method: 'generate', kwargs: { prompts: 'x', params: { do_sample: 'yes' } }, expect: inferenceError(400, /params\.do_sample: expected true or false/) },
  { name: 'generate on a deployment that is not an LLM', agent: 'anonymous', method: 'generate', kwargs: { prompts: 'x' }, expect: inferenceError(400, /WrongRoute/) },
  { name: 'generate_stream on a deployment that is not an LLM', agent: 'anonymous', method: 'generate_stream', kwargs: { prompt: 'x' }, expect: streamError(/^\[ERROR: 400 WrongRoute: \/generate_stream is not served by this deployment: this model serves \/get_action\]$/) },
  { name: 'list_sessions on a deployment that is not an LLM', agent: 'anonymous', method: 'list_sessions', expect: inferenceError(400, /WrongRoute/) },

  // The engine goes down
  { name: 'generate while the engine is not ready', agent: 'llm', method: 'generate', kwargs: { prompts: 'x' }, arrange: setEngineHealthy(false), expect: inferenceError(503, /EngineUnavailable/) },
  { name: 'generate_stream while the engine is not ready', agent: 'llm', method: 'generate_stream', kwargs: { prompt: 'x' }, expect: streamError(/^\[ERROR: 503 EngineUnavailable: .*\/health answered 503\]$/) },
  { name: 'generate once the engine is back', agent: 'llm', method: 'generate', kwargs: { prompts: 'x' }, arrange: setEngineHealthy(true), expect: llmResults([['x', completionOf('x')]]) },
];

for (const c of cases) {
  test(`platform client: ${c.name}`, async () => {
    await c.arrange?.();
    const answer = await driver.call(c.agent, c.method, c.kwargs);
    const e = c.expect;
    if ('raises' in e) {
      assert.ok(answer.raised, `expected ${e.raises}, the client returned ${JSON.stringify(answer.returned)}`);
      const r = answer.raised;
      assert.equal(r.type, e.raises, r.message);
      assert.match(r.module ?? '', /^agilerl\.arena\./);
      if (e.status !== undefined) assert.equal(r.status_code, e.status, r.message);
      if (e.detail) assert.match(r.detail ?? '', e.detail);
      if (e.message) assert.match(r.message, e.message);
      assert.deepEqual(answer.pieces ?? [], e.pieces ?? []);
      return;
    }
    assert.equal(answer.raised, undefined, `the client raised ${JSON.stringify(answer.raised)}`);
    if ('returns' in e) assert.deepEqual(answer.returned, e.returns);
    else e.check(answer.returned);
  });
}
