// The LLM routes against a small fake of SGLang's native HTTP API on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ApiKeyFile } from './api-keys.ts';
import { EngineClient } from './engine.ts';
import { startInferenceServer, type RunningInferenceServer } from './server.ts';
import { call, completionOf, quietLogger, startFakeEngine, tempDir, writeKey, type FakeEngine } from './testing.ts';

const tmp = tempDir('serve-llm-');
const KEY = 'llm-key';
writeKey(join(tmp.dir, 'key'), KEY);
let fake: FakeEngine;
let engine: EngineClient;
let srv: RunningInferenceServer;

before(async () => {
  fake = await startFakeEngine();
  // Polls are driven by the test (engine.poll()), not by time.
  engine = new EngineClient({ url: fake.url, pollNotReadyMs: 60_000, pollReadyMs: 60_000 });
  srv = await startInferenceServer({
    host: '127.0.0.1',
    port: 0,
    route: 'generate',
    agent: { algo: 'GRPO', multi_agent: false, llm: true, recurrent: false, supervised: false },
    deploymentId: 'llm-1',
    instanceId: 'pod-llm',
    engine,
    apiKeys: new ApiKeyFile(join(tmp.dir, 'key')),
    logger: quietLogger(),
    registry: new Registry(),
  });
});
after(async () => {
  await srv.close();
  await fake.close();
  tmp.remove();
});

const post = (path: string, body: unknown) => call(srv.url, 'POST', path, { body, key: KEY });

test('while the engine is not ready: 503 with the reason, /readyz 503, /status still answers', async () => {
  await engine.poll();
  const r = await post('/generate', { prompts: ['hi'] });
  assert.equal(r.status, 503);
  assert.equal(r.json.success, false);
  assert.equal(r.json.error.reason, 'EngineUnavailable');
  assert.match(r.json.error.message, /is not ready: \/health answered 503/);
  const ready = await call(srv.url, 'GET', '/readyz');
  assert.equal(ready.status, 503);
  assert.match(ready.text, /health answered 503/);
  const stream = await post('/generate_stream', { prompt: 'hi' });
  assert.equal(stream.status, 200, 'the platform client reads a stream answer only with 200, 401 or 403');
  assert.match(stream.text, /^\n\[ERROR: 503 EngineUnavailable: .*is not ready: \/health answered 503\]$/);
  assert.equal((await call(srv.url, 'GET', '/status')).json.agent.llm, true);
});

test('generate maps prompts and params to the engine and back', async () => {
  fake.healthy = true;
  await engine.poll();
  assert.equal((await call(srv.url, 'GET', '/readyz')).status, 200);
  fake.requests.length = 0;
  const r = await post('/generate', { prompts: ['a', 'bc'], params: { max_new_tokens: 5, temperature: 1.2, top_p: 0.5, do_sample: false } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(fake.requests, [{ text: ['a', 'bc'], sampling_params: { max_new_tokens: 5, temperature: 0, top_p: 1 } }]);
  assert.deepEqual(r.json.results, [
    { prompt: 'a', completion: completionOf('a') },
    { prompt: 'bc', completion: completionOf('bc') },
  ]);
  assert.equal(r.json.batch_size, 2);
  assert.equal(r.json.success, true);
  assert.ok(r.json.inference_time_ms > 0);
  assert.ok(r.json.tokens_per_second > 0);

  await post('/generate', { prompts: ['x'] });
  assert.deepEqual(fake.requests[1]!.sampling_params, { max_new_tokens: 100, temperature: 0.7, top_p: 0.9 }, 'the platform defaults');
});

const refusals: { body: unknown; message: RegExp }[] = [
  { body: { prompts: [] }, message: /^prompts: expected a non-empty list of strings/ },
  { body: { prompts: 'hi' }, message: /^prompts: expected a non-empty list/ },
  { body: { prompts: ['ok', 3] }, message: /^prompts\[1\]: expected a string, got number/ },
  { body: { prompts: ['x'], params: { temperature: -1 } }, message: /^params\.temperature: expected a number from 0 to 100, got -1/ },
  { body: { prompts: ['x'], params: { max_new_tokens: 0 } }, message: /^params\.max_new_tokens: expected an integer/ },
  { body: { prompts: ['x'], params: { top_p: 0 } }, message: /^params\.top_p/ },
  { body: { prompts: ['x'], params: { do_sample: 'yes' } }, message: /^params\.do_sample: expected true or false/ },
  { body: { prompts: ['x'], params: [1] }, message: /^params: expected an object/ },
  { body: { prompts: ['x', 'y'], session_id: 's' }, message: /^session_id: a session continues one conversation/ },
  { body: { prompts: ['x'], session_id: 'has space' }, message: /^session_id: expected 1 to 128/ },
];

for (const c of refusals) {
  test(`generate refuses ${JSON.stringify(c.body)} with 400 naming the field`, async () => {
    const r = await post('/generate', c.body);
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, c.message);
  });
}

test('sessions: generate with a session_id continues the transcript; list, get, delete, 404 when absent', async () => {
  fake.requests.length = 0;
  await post('/generate', { prompts: ['Hi.'], session_id: 'chat-1' });
  const second = await post('/generate', { prompts: [' More?'], session_id: 'chat-1' });
  assert.equal('session_id' in second.json, false, "the platform's LLMResults forbids fields it does not declare");
  const transcript = `Hi.${completionOf('Hi.')} More?`;
  assert.deepEqual(fake.requests[1]!.text, [transcript]);
  assert.equal(second.json.results[0].prompt, ' More?');

  const list = await call(srv.url, 'GET', '/sessions', { key: KEY });
  assert.deepEqual(
    list.json.sessions.map((s: { session_id: string }) => s.session_id),
    ['chat-1'],
  );
  const one = await call(srv.url, 'GET', '/sessions/chat-1', { key: KEY });
  assert.equal(one.status, 200);
  assert.deepEqual(one.json.messages, [
    { role: 'user', content: 'Hi.' },
    { role: 'assistant', content: completionOf('Hi.') },
    { role: 'user', content: ' More?' },
    { role: 'assistant', content: completionOf(transcript) },
  ]);
  assert.ok(one.json.created_at <= one.json.last_updated);
  assert.equal((await call(srv.url, 'GET', '/sessions/chat-1')).status, 401, 'sessions need the key');
  assert.equal((await call(srv.url, 'DELETE', '/sessions/chat-1', { key: KEY })).status, 200);
  assert.equal((await call(srv.url, 'GET', '/sessions/chat-1', { key: KEY })).status, 404);
  const again = await call(srv.url, 'DELETE', '/sessions/chat-1', { key: KEY });
  assert.equal(again.status, 404);
  assert.equal(again.json.error.reason, 'NotFound');
});

test('generate_stream streams the completion in pieces, cumulative or incremental engine events alike', async () => {
  for (const incremental of [false, true]) {
    fake.incremental = incremental;
    const res = await fetch(`${srv.url}/generate_stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Tell me', params: { max_new_tokens: 8 }, session_id: `stream-${incremental}` }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const pieces: string[] = [];
    const decoder = new TextDecoder();
    for await (const chunk of res.body!) pieces.push(decoder.decode(chunk as Uint8Array));
    assert.equal(pieces.join(''), 'Hello world!');
    const session = await call(srv.url, 'GET', `/sessions/stream-${incremental}`, { key: KEY });
    assert.equal(session.json.messages[1].content, 'Hello world!');
  }
  fake.incremental = false;
  assert.equal(fake.requests.at(-1)!.stream, true);
});

test('generate_stream: an engine failure after the stream started arrives as a "\\n[ERROR:" chunk', async () => {
  const r = await post('/generate_stream', { prompt: 'FAIL_MIDSTREAM' });
  assert.equal(r.status, 200);
  assert.ok(r.text.startsWith('Hel'));
  const at = r.text.indexOf('\n[ERROR:');
  assert.ok(at > 0, r.text);
  assert.match(r.text.slice(at), /CUDA out of memory/);
});

test('a client that goes away mid-stream cancels the engine request', { timeout: 10_000 }, async () => {
  const abort = new AbortController();
  const res = await fetch(`${srv.url}/generate_stream`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'SLOW' }),
    signal: abort.signal,
  });
  const reader = res.body!.getReader();
  assert.equal(new TextDecoder().decode((await reader.read()).value), 'Once');
  abort.abort();
  await fake.slowClosed;
});

test('an engine error before any output is 502 (a stream: an error piece); a prompt with a bad field is 400', async () => {
  const r = await post('/generate', { prompts: ['FAIL500'] });
  assert.equal(r.status, 502);
  assert.equal(r.json.error.reason, 'EngineFailed');
  assert.match(r.json.error.message, /answered 500/);
  const s = await post('/generate_stream', { prompt: 'FAIL500' });
  assert.equal(s.status, 200);
  assert.match(s.headers.get('content-type') ?? '', /^text\/plain/);
  assert.match(s.text, /^\n\[ERROR: 502 EngineFailed: the inference engine answered 500: .*\]$/);
  const bad = await post('/generate_stream', { prompt: ['x'] });
  assert.equal(bad.text, '\n[ERROR: 400 BadRequest: prompt: expected a string, got object]');
  const metrics = (await call(srv.url, 'GET', '/metrics')).text;
  assert.match(metrics, /arena_inference_errors_total\{path="\/generate_stream",reason="EngineFailed"\} [1-9]/);
  assert.match(metrics, /arena_inference_errors_total\{path="\/generate_stream",reason="BadRequest"\} 1/);
});

test('routes of other deployment types answer 400', async () => {
  const r = await post('/get_action', { obs: 'QQ==' });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /GRPO serves \/generate/);
});

test('an engine that goes away is seen at the next request: 503 and not ready', async () => {
  await fake.close();
  const r = await post('/generate', { prompts: ['hi'] });
  assert.equal(r.status, 503);
  assert.match(r.json.error.message, /not reachable/);
  const ready = await call(srv.url, 'GET', '/readyz');
  assert.equal(ready.status, 503);
});
