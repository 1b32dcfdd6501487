import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parseReport } from '../operator/runtime-api/protocol.ts';
import { checkpointReport, parseTrainerEvent, progressReport, type TrainerEvent } from './events.ts';

test('parses each documented event', () => {
  const lines: [string, TrainerEvent['event']][] = [
    ['{"event":"progress","step":4000,"max_steps":20000,"training_score":88.5,"evaluation_score":161.2,"steps_per_second":2900}', 'progress'],
    ['{"event":"metrics","step":4000,"values":{"loss":0.12,"epsilon":0.05}}', 'metrics'],
    ['{"event":"checkpoint","step":4000,"path":"/ck/run-1/step-4000.json","evaluation_score":161.2,"size_bytes":7156,"final":true}', 'checkpoint'],
    ['{"event":"finished","step":20000}', 'finished'],
    ['{"event":"finished"}', 'finished'],
    ['{"event":"error","reason":"CudaOutOfMemory","message":"out of memory","retryable":true}', 'error'],
    ['{"event":"progress","step":1,"extra_field":"kept for newer trainers"}', 'progress'],
  ];
  for (const [line, kind] of lines) {
    const r = parseTrainerEvent(line);
    assert.ok(r.ok, `${line}: ${r.ok ? '' : r.error}`);
    assert.equal(r.event.event, kind);
  }
});

test('refuses malformed lines and names the field', () => {
  const cases: [string, RegExp][] = [
    ['not json', /not JSON/],
    ['{"step":1}', /"event" must be one of/],
    ['{"event":"log","text":"x"}', /"event" must be one of/],
    ['{"event":"progress"}', /progress\.step: must have required property/],
    ['{"event":"progress","step":-1}', /progress\.step: must be >= 0/],
    ['{"event":"checkpoint","step":1}', /checkpoint\.path/],
    ['{"event":"checkpoint","step":1,"path":""}', /checkpoint\.path/],
    ['{"event":"error","message":"x","reason":"not camel"}', /error\.reason/],
    ['{"event":"metrics","values":{"loss":"high"}}', /metrics\.values\.loss/],
    [`{"event":"progress","step":1,"pad":"${'x'.repeat(70_000)}"}`, /longer than/],
  ];
  for (const [line, error] of cases) {
    const r = parseTrainerEvent(line);
    assert.equal(r.ok, false, line.slice(0, 60));
    if (!r.ok) assert.match(r.error, error, line.slice(0, 60));
  }
});

test('mapped events are valid operator report events', () => {
  const at = '2026-03-01T10:00:00.000Z';
  const envelope = { experiment: { namespace: 'ml', name: 'cartpole' }, run: 1, attempt: 1, worker: 0 };
  const progress = progressReport({ event: 'progress', step: 10, max_steps: 100, evaluation_score: 20 }, at);
  assert.deepEqual(progress, { type: 'progress', at, step: 10, maxSteps: 100, evaluationScore: 20 });
  const checkpoint = checkpointReport({ event: 'checkpoint', step: 10, path: '/ck/step-10.json', training_score: 12, final: true }, at, 7156);
  assert.deepEqual(checkpoint, { type: 'checkpoint', at, step: 10, trainingScore: 12, sizeBytes: 7156, location: '/ck/step-10.json', final: true });
  const r = parseReport({ ...envelope, events: [{ ...progress, seq: 0 }, { ...checkpoint, seq: 1 }] });
  assert.ok(r.ok, r.ok ? '' : r.error);
});

test('TrainerEventWriter writes lines on the descriptor named by ARENA_EVENTS_FD', async () => {
  // A real child process writing on fd 3, read the way the supervisor reads it.
  const script = `
    const { TrainerEventWriter } = await import(${JSON.stringify(new URL('./events.ts', import.meta.url).href)});
    const w = TrainerEventWriter.fromEnv();
    for (let i = 0; i < 500; i++) w.emit({ event: 'progress', step: i });
    w.emit({ event: 'finished', step: 500 });
    console.log('plain stdout stays out of the channel');
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
    env: { ...process.env, ARENA_EVENTS_FD: '3' },
  });
  let stdout = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  const events: TrainerEvent[] = [];
  const rl = createInterface({ input: child.stdio[3] as Readable });
  rl.on('line', (l) => {
    const r = parseTrainerEvent(l);
    assert.ok(r.ok);
    events.push(r.event);
  });
  const code = await new Promise((resolve) => child.on('close', resolve));
  assert.equal(code, 0);
  assert.equal(events.length, 501);
  assert.deepEqual(events.at(-1), { event: 'finished', step: 500 });
  assert.equal(stdout.trim(), 'plain stdout stays out of the channel');
});
