import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cutText, fitToSchema } from './fit.ts';
import { kinds } from './v1alpha1/index.ts';
import { validate } from './validate.ts';

test('cutText keeps short text and cuts long text to the limit, saying so', () => {
  assert.equal(cutText('short', 10), 'short');
  const cut = cutText('x'.repeat(5000), 4096);
  assert.equal(Array.from(cut).length, 4096);
  assert.match(cut, /…\[cut\]$/);
  // Code points, not UTF-16 units: an emoji counts once, and is never split in half.
  assert.equal(Array.from(cutText('😀'.repeat(20), 10)).length, 10);
});

test('an Experiment status with oversized text from a worker fits the schema the API server checks', () => {
  const huge = 'CUDA error: '.repeat(2000);
  const status = {
    phase: 'Failed',
    reason: 'WorkerFailed',
    message: `Worker 0 failed: ${huge}`,
    lastFailure: { reason: 'WorkerFailed', message: huge, hint: huge, at: '2026-01-01T00:00:00Z', attempt: 1 },
    conditions: [{ type: 'WorkersReady', status: 'False', reason: 'WorkerFailed', message: huge, lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 }],
  };
  const fitted = fitToSchema(kinds.Experiment.status, status);
  const problems = validate('Experiment', { apiVersion: 'arena.agilerl.com/v1alpha1', kind: 'Experiment', metadata: { name: 'e' }, spec: { manifest: { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } } }, status: fitted });
  assert.deepEqual(problems.ok ? [] : problems.errors.filter((e) => e.field.startsWith('status')), []);
  assert.equal(Array.from(fitted.message).length, 4096);
  assert.ok(fitted.lastFailure.hint.length <= 1024);
  assert.match(fitted.message, /^Worker 0 failed: CUDA error/, 'the start, which says what happened, is kept');
  assert.equal(status.message.length > 4096, true, 'the input is not changed');
});

test('a status within its limits comes back as the same object', () => {
  const status = { phase: 'Running', message: 'ok', conditions: [{ type: 'Valid', status: 'True', reason: 'Valid', message: 'fine', lastTransitionTime: '2026-01-01T00:00:00Z' }] };
  assert.equal(fitToSchema(kinds.Experiment.status, status), status);
});
