import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diagnose } from '../../diagnosis.ts';
import { CHECKPOINT_FORMAT, checkpointFile, decodeWeights, encodeWeights, readCheckpoint, writeCheckpoint, type DqnCheckpoint } from './checkpoint.ts';

const dir = mkdtempSync(join(tmpdir(), 'dqn-ck-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function checkpoint(step: number, params = new Float32Array(4 * 2 + 2)): DqnCheckpoint {
  return {
    format: CHECKPOINT_FORMAT,
    step,
    evaluationScore: step / 10,
    createdAt: '2026-03-01T10:00:00.000Z',
    environment: 'CartPole-v1',
    seed: 1,
    hyperparameters: { batch_size: 64, lr: 1e-3, learn_step: 1, gamma: 0.99, tau: 0.01 },
    network: { sizes: [4, 2], activation: 'relu', weights: encodeWeights(params) },
  };
}

test('weights round-trip exactly through base64 float32', () => {
  const p = Float32Array.from([0, -0, 1.5, -3.25e-8, 3.4e38, Number.MIN_VALUE, 0.1]);
  assert.deepEqual([...decodeWeights(encodeWeights(p))], [...p]);
});

test('writes run-<run>/step-<n>.json and reads a file or the latest in a folder', () => {
  const params = Float32Array.from({ length: 10 }, (_, i) => i / 7);
  for (const step of [500, 1500, 1000]) writeCheckpoint(checkpointFile(dir, '3', step), checkpoint(step, params));
  const written = writeCheckpoint(checkpointFile(dir, '3', 2000), checkpoint(2000, params));
  assert.equal(written.path, join(dir, 'run-3', 'step-2000.json'));
  assert.ok(written.sizeBytes > 100);
  const one = readCheckpoint(join(dir, 'run-3', 'step-1000.json'));
  assert.equal(one.checkpoint.step, 1000);
  assert.deepEqual([...one.params], [...params]);
  assert.equal(readCheckpoint(join(dir, 'run-3')).checkpoint.step, 2000, 'the highest step in the folder');
});

test('a file that does not fit is refused with text the diagnosis recognises', () => {
  const bad = join(dir, 'bad');
  mkdirSync(bad, { recursive: true });
  const cases: [string, unknown, string][] = [
    ['other-format.json', { format: 'torch', step: 1 }, 'CheckpointMismatch'],
    ['short.json', { ...checkpoint(1), network: { sizes: [4, 64, 2], activation: 'relu', weights: encodeWeights(new Float32Array(10)) } }, 'CheckpointMismatch'],
  ];
  for (const [file, content, reason] of cases) {
    writeFileSync(join(bad, file), JSON.stringify(content));
    let message = '';
    try {
      readCheckpoint(join(bad, file));
    } catch (err) {
      message = (err as Error).message;
    }
    assert.equal(diagnose({ lines: [message], exitCode: 1 }).reason, reason, `${file}: ${message}`);
  }
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  assert.throws(() => readCheckpoint(empty), (err: Error) => diagnose({ lines: [err.message] }).reason === 'CheckpointNotFound');
});
