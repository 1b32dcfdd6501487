import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { decodeNpyBase64, encodeBase64, encodeNpy, encodeNpyBase64, ndarray, type NdArray } from '../npy/npy.ts';
import { isTreeDict, type NpyTree } from '../npy/tree.ts';
import { Rng } from '../testing/rng.ts';
import { ApiKeyFile } from './api-keys.ts';
import type { ActionModel, Predictor } from './models.ts';
import { startInferenceServer, type InferenceServerOptions, type RunningInferenceServer } from './server.ts';
import { badGetActionRequests, left, right } from './bad-requests.ts';
import { call, linearCartPoleModel, quietLogger, rowsB64, tempDir, writeKey } from './testing.ts';

const tmp = tempDir('serve-');
const keyFile = join(tmp.dir, 'api-key');
const KEY = 'arena-test-key-1';
writeKey(keyFile, KEY);

const servers: RunningInferenceServer[] = [];
async function serve(overrides: Partial<InferenceServerOptions> = {}): Promise<RunningInferenceServer> {
  const s = await startInferenceServer({
    host: '127.0.0.1',
    port: 0,
    route: 'get_action',
    deploymentId: 'dep-123',
    instanceId: 'pod-a',
    apiKeys: new ApiKeyFile(keyFile),
    logger: quietLogger(),
    registry: new Registry(),
    ...overrides,
  });
  servers.push(s);
  return s;
}

let dqn: RunningInferenceServer;
before(async () => {
  const model = linearCartPoleModel();
  dqn = await serve({ actions: model, agent: model.agent, maxBodyBytes: 64 * 1024 });
});
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  tmp.remove();
});

const getAction = (body: unknown, key = KEY) => call(dqn.url, 'POST', '/get_action', { body, key });
const actions = (b64: string) => {
  const a = decodeNpyBase64(b64);
  assert.equal(a.dtype, 'i8');
  return [...a.data].map(Number);
};

test('public routes: /status, /healthz, /readyz and /metrics need no key', async () => {
  const status = await call(dqn.url, 'GET', '/status');
  assert.equal(status.status, 200);
  assert.deepEqual(status.json, {
    success: true,
    deployment_id: 'dep-123',
    instance_id: 'pod-a',
    agent: { algo: 'DQN', multi_agent: false, llm: false, recurrent: false, supervised: false },
  });
  assert.equal((await call(dqn.url, 'GET', '/healthz')).text, 'ok');
  assert.equal((await call(dqn.url, 'GET', '/readyz')).text, 'ok');
  const metrics = await call(dqn.url, 'GET', '/metrics');
  assert.equal(metrics.status, 200);
  assert.match(metrics.text, /arena_inference_ready 1/);
});

test('everything else needs the key: 401 without one, 403 with a wrong one', async () => {
  const body = { obs: rowsB64([left]), batch_size: 1 };
  const none = await call(dqn.url, 'POST', '/get_action', { body });
  assert.equal(none.status, 401);
  assert.equal(none.headers.get('www-authenticate'), 'Bearer');
  assert.equal(none.json.error.reason, 'Unauthorized');
  const wrong = await getAction(body, 'not-the-key');
  assert.equal(wrong.status, 403);
  assert.equal(wrong.json.success, false);
  // Unknown routes are not revealed to callers without a key.
  assert.equal((await call(dqn.url, 'GET', '/nope')).status, 401);
  assert.equal((await call(dqn.url, 'GET', '/nope', { key: KEY })).status, 404);
});

test('a rotated key refuses the old one at once', async () => {
  const body = { obs: rowsB64([left]), batch_size: 1 };
  assert.equal((await getAction(body)).status, 200);
  writeKey(keyFile, 'arena-test-key-2');
  try {
    assert.equal((await getAction(body)).status, 403);
    assert.equal((await getAction(body, 'arena-test-key-2')).status, 200);
  } finally {
    writeKey(keyFile, KEY);
  }
  assert.equal((await getAction(body)).status, 200);
});

test('get_action: an unbatched observation (leading axis 1) gets one int64 action of shape (1,)', async () => {
  const r = await getAction({ obs: rowsB64([right]), batch_size: 1 });
  assert.equal(r.status, 200);
  assert.equal(r.json.success, true);
  assert.equal(r.json.hidden_state, undefined);
  const a = decodeNpyBase64(r.json.action);
  assert.deepEqual(a.shape, [1]);
  assert.deepEqual([...a.data], [1n]);
});

test('get_action: a batch, float64 observations, batch_size inferred when absent', async () => {
  assert.deepEqual(actions((await getAction({ obs: rowsB64([left, right, right], 'f8'), batch_size: 3 })).json.action), [0, 1, 1]);
  assert.deepEqual(actions((await getAction({ obs: rowsB64([right, left]) })).json.action), [1, 0]);
});

test('get_action: action_mask is honoured', async () => {
  const mask = encodeNpyBase64(ndarray('b1', [2, 2], [0, 1, 1, 0]));
  assert.deepEqual(actions((await getAction({ obs: rowsB64([left, right]), batch_size: 2, action_mask: mask })).json.action), [1, 0]);
});

const fortranObs = () => {
  // The same two rows written column by column (fortran_order True), as np.asfortranarray would store them.
  const header = `{'descr': '<f4', 'fortran_order': True, 'shape': (2, 4), }`;
  const c = encodeNpy(ndarray('f4', [2, 4], [...left, ...right]));
  const f = new Float32Array([left[0]!, right[0]!, left[1]!, right[1]!, left[2]!, right[2]!, left[3]!, right[3]!]);
  const text = new TextEncoder().encode(header.padEnd(c.length - 32 - 10 - 1, ' ') + '\n');
  const out = new Uint8Array(10 + text.length + 32);
  out.set(c.subarray(0, 8));
  new DataView(out.buffer).setUint16(8, text.length, true);
  out.set(text, 10);
  out.set(new Uint8Array(f.buffer), 10 + text.length);
  return encodeBase64(out);
};

test('get_action: Fortran-order observations are read in C order', async () => {
  assert.deepEqual(actions((await getAction({ obs: fortranObs(), batch_size: 2 })).json.action), [0, 1]);
});


for (const c of badGetActionRequests) {
  test(`get_action refuses ${c.name} with 400 naming the field`, async () => {
    const r = await getAction(c.body);
    assert.equal(r.status, c.status ?? 400, r.text);
    assert.equal(r.json.success, false);
    if (typeof c.message === 'string') assert.equal(r.json.error.message, c.message);
    else assert.match(r.json.error.message, c.message);
  });
}

test('malformed JSON is 400, an oversized body 413, and the server keeps serving', async () => {
  const bad = await call(dqn.url, 'POST', '/get_action', { raw: '{"obs": ', key: KEY, headers: { 'content-type': 'application/json' } });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /^body: not valid JSON/);
  const noType = await call(dqn.url, 'POST', '/get_action', { raw: JSON.stringify({ obs: rowsB64([right]) }), key: KEY });
  assert.equal(noType.status, 200, 'a body without Content-Type is read as JSON');
  const big = await getAction({ obs: rowsB64(Array.from({ length: 5000 }, () => left)) });
  assert.equal(big.status, 413);
  assert.equal(big.json.error.reason, 'PayloadTooLarge');
  assert.match(big.json.error.message, /larger than the 65536 byte limit/);
  assert.deepEqual(actions((await getAction({ obs: rowsB64([right]) })).json.action), [1]);
});

test('fuzz: random bytes, random JSON and mutated .npy files never get a 5xx, and the server keeps serving', async () => {
  const rng = new Rng(2024);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => rng.int(256));
  const valid = encodeNpy(ndarray('f4', [2, 4], [...left, ...right]));
  const shapes = new Map<number, number>();
  for (let i = 0; i < 300; i++) {
    let r;
    switch (i % 4) {
      case 0:
        r = await call(dqn.url, 'POST', '/get_action', { raw: bytes(1 + rng.int(300)), key: KEY });
        break;
      case 1:
        r = await getAction({ obs: encodeBase64(bytes(rng.int(200))), batch_size: rng.int(3) });
        break;
      case 2: {
        // A valid file with a few bytes changed: header, lengths and data all get hit.
        const m = valid.slice();
        for (let k = 0; k < 1 + rng.int(3); k++) m[rng.int(m.length)] = rng.int(256);
        r = await getAction({ obs: encodeBase64(m), batch_size: 2, action_mask: rng.next() < 0.5 ? encodeBase64(m) : null });
        break;
      }
      default: {
        const junk = [null, true, 7, 'x', [], {}, [[[]]], { obs: 'QQ==' }];
        r = await getAction({ obs: junk[rng.int(junk.length)], batch_size: junk[rng.int(junk.length)], action_mask: junk[rng.int(junk.length)] });
      }
    }
    assert.ok(r.status < 500, `case ${i}: ${r.status} ${r.text}`);
    shapes.set(r.status, (shapes.get(r.status) ?? 0) + 1);
  }
  assert.ok((shapes.get(400) ?? 0) > 200, `mostly 400s: ${JSON.stringify([...shapes])}`);
  assert.deepEqual(actions((await getAction({ obs: rowsB64([left]) })).json.action), [0]);
});

test('a payload nested deeper than the limit is 400, not a crash', async () => {
  // Sent as text: JSON.stringify itself cannot nest this deep.
  const r = await call(dqn.url, 'POST', '/get_action', { raw: `{"obs": ${'['.repeat(30_000)}${']'.repeat(30_000)}}`, key: KEY });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /nested deeper than 32 levels/);
});

test('routes of other deployment types answer 400', async () => {
  for (const path of ['/predict', '/generate', '/sessions']) {
    const r = await call(dqn.url, path === '/sessions' ? 'GET' : 'POST', path, path === '/sessions' ? { key: KEY } : { body: {}, key: KEY });
    assert.equal(r.status, 400, path);
    assert.equal(r.json.error.reason, 'WrongRoute');
    assert.match(r.json.error.message, /DQN serves \/get_action/);
  }
  // A stream's errors are pieces of the stream, the one form the platform's client reads there.
  const stream = await call(dqn.url, 'POST', '/generate_stream', { body: {}, key: KEY });
  assert.equal(stream.status, 200);
  assert.match(stream.text, /^\n\[ERROR: 400 WrongRoute: \/generate_stream is not served by this deployment: DQN serves \/get_action\]$/);
});

test('metrics count requests by route and code, errors by reason, and latency', async () => {
  const text = await dqn.metrics.registry.metrics();
  assert.match(text, /arena_inference_requests_total\{path="\/get_action",method="POST",code="200"\} \d+/);
  assert.match(text, /arena_inference_requests_total\{path="\/get_action",method="POST",code="400"\} \d+/);
  assert.match(text, /arena_inference_errors_total\{path="\/get_action",reason="PayloadTooLarge"\} 1/);
  assert.match(text, /arena_inference_errors_total\{path="\/get_action",reason="Forbidden"\} \d+/);
  assert.match(text, /arena_inference_request_duration_seconds_count\{path="\/get_action"\} \d+/);
  assert.match(text, /arena_inference_requests_total\{path="other",method="GET",code="404"\} 1/);
  assert.match(text, /process_cpu_user_seconds_total/);
});

/** A two-agent recurrent model: each agent's action is the sum of its observation row, plus its env-defined action. */
const multiAgent: ActionModel = {
  description: 'test multi-agent',
  getAction({ obs, batchSize, hiddenState, envDefinedActions }) {
    assert.ok(isTreeDict(obs));
    const action: Record<string, NpyTree> = {};
    for (const [agent, o] of Object.entries(obs)) {
      const a = o as NdArray;
      const per = a.size / batchSize;
      const extra = isTreeDict(envDefinedActions) ? (envDefinedActions[agent] as NdArray | undefined) : undefined;
      action[agent] = ndarray(
        'f4',
        [batchSize],
        Array.from({ length: batchSize }, (_, k) => Array.from({ length: per }, (_, j) => a.number(k * per + j)).reduce((x, y) => x + y, 0) + (extra ? extra.number(k) : 0)),
      );
    }
    return { action, hiddenState: hiddenState ?? ndarray('f4', [1, batchSize, 2]) };
  },
};

test('multi-agent: obs keyed by agent id get actions keyed the same; hidden_state and env_defined_actions travel', async () => {
  const s = await serve({ actions: multiAgent, agent: { algo: 'IPPO', multi_agent: true, llm: false, recurrent: true, supervised: false } });
  const r = await call(s.url, 'POST', '/get_action', {
    key: KEY,
    body: {
      obs: { speaker_0: rowsB64([[1, 2], [3, 4]]), listener_0: rowsB64([[5], [6]]) },
      batch_size: 2,
      env_defined_actions: { speaker_0: encodeNpyBase64(ndarray('f4', [2], [100, 200])), listener_0: null },
      hidden_state: null,
    },
  });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.json.action).sort(), ['listener_0', 'speaker_0']);
  assert.deepEqual([...decodeNpyBase64(r.json.action.speaker_0).data], [103, 207]);
  assert.deepEqual([...decodeNpyBase64(r.json.action.listener_0).data], [5, 6]);
  assert.deepEqual(decodeNpyBase64(r.json.hidden_state).shape, [1, 2, 2]);
  const mismatch = await call(s.url, 'POST', '/get_action', { key: KEY, body: { obs: { a: rowsB64([[1]]), b: rowsB64([[1], [2]]) }, batch_size: 1 } });
  assert.equal(mismatch.status, 400);
  assert.equal(mismatch.json.error.message, 'obs.b: expected a leading batch axis of 1 (batch_size), got shape (2, 1)');
});

test('predict: 501 without a predictor (and not ready), the envelope with one', async () => {
  const agent = { algo: 'Supervised', multi_agent: false, llm: false, recurrent: false, supervised: true };
  const none = await serve({ route: 'predict', agent });
  const r = await call(none.url, 'POST', '/predict', { key: KEY, body: { inputs: rowsB64([[1, 2]]) } });
  assert.equal(r.status, 501);
  assert.equal(r.json.error.reason, 'NotImplemented');
  assert.match(r.json.error.message, /no predictor for Supervised/);
  const ready = await call(none.url, 'GET', '/readyz');
  assert.equal(ready.status, 503);
  assert.match(ready.text, /no predictor/);
  assert.equal((await call(none.url, 'POST', '/get_action', { key: KEY, body: {} })).status, 400);

  const doubler: Predictor = {
    description: 'doubles its inputs',
    predict: (inputs) => {
      const a = inputs as NdArray;
      return { y: ndarray('f8', a.shape, [...a.data].map((v) => Number(v) * 2)) };
    },
  };
  const s = await serve({ route: 'predict', agent, predictor: doubler });
  const p = await call(s.url, 'POST', '/predict', { key: KEY, body: { inputs: rowsB64([[1, 2], [3, 4]]) } });
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json.success, true);
  assert.equal(p.json.batch_size, 2);
  assert.equal(typeof p.json.inference_time_ms, 'number');
  const y = decodeNpyBase64(p.json.results.y);
  assert.deepEqual(y.shape, [2, 2]);
  assert.deepEqual([...y.data], [2, 4, 6, 8]);
  const bad = await call(s.url, 'POST', '/predict', { key: KEY, body: { inputs: 'QQ' } });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /^inputs: not valid base64/);
});

test('a model that throws is a 500 with a generic message, and the server keeps serving', async () => {
  const s = await serve({
    actions: {
      description: 'broken',
      getAction: () => {
        throw new TypeError('secret internals');
      },
    },
  });
  const r = await call(s.url, 'POST', '/get_action', { key: KEY, body: { obs: rowsB64([left]) } });
  assert.equal(r.status, 500);
  assert.doesNotMatch(r.text, /secret internals/);
  assert.equal((await call(s.url, 'GET', '/status')).status, 200);
});

test('without a key file (apiKeys disabled) inference is open', async () => {
  const s = await serve({ actions: linearCartPoleModel(), apiKeys: 'disabled' });
  const r = await call(s.url, 'POST', '/get_action', { body: { obs: rowsB64([right]) } });
  assert.equal(r.status, 200);
  assert.equal((await call(s.url, 'GET', '/status')).json.agent, undefined, 'no agent given: left out of /status');
});

test('connections past the per-client cap are closed unread; the client\'s open ones keep working and a slot frees on close', async () => {
  const model = linearCartPoleModel();
  const s = await serve({ actions: model, agent: model.agent, connections: { maxConnectionsPerClient: 3 } });
  const { port } = s;
  const open = () =>
    new Promise<Socket>((resolve, reject) => {
      const c = connect(port, '127.0.0.1', () => resolve(c));
      c.once('error', reject);
    });
  const closedUnread = (c: Socket) =>
    new Promise<boolean>((resolve) => {
      let data = false;
      c.on('data', () => (data = true));
      c.once('close', () => resolve(!data));
      c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    });
  const held = [await open(), await open(), await open()];
  // Let the server see all three before the fourth arrives.
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await closedUnread(await open()), true, 'the fourth is closed without an answer');
  const answer = await new Promise<string>((resolve) => {
    held[0]!.once('data', (d: Buffer) => resolve(d.toString()));
    held[0]!.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  assert.match(answer, /^HTTP\/1\.1 200/);
  held[1]!.destroy();
  await new Promise((r) => setTimeout(r, 50));
  const again = await open();
  const reply = await new Promise<string>((resolve) => {
    again.once('data', (d: Buffer) => resolve(d.toString()));
    again.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  assert.match(reply, /^HTTP\/1\.1 200/, 'a closed connection frees its slot');
  for (const c of [...held, again]) c.destroy();
  assert.match(await s.metrics.registry.metrics(), /arena_inference_refused_connections_total\{cap="per_client"\} 1/);
});
