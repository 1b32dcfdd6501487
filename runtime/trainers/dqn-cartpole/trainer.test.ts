import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Manifest } from '../../../operator/api/v1alpha1/manifest.ts';
import type { TrainerEvent } from '../../events.ts';
import { readCheckpoint } from './checkpoint.ts';
import { dqnConfig } from './config.ts';
import { trainDqn, type TrainOptions } from './trainer.ts';
import { SMALL } from './testdata/manifests.ts';

const dir = mkdtempSync(join(tmpdir(), 'dqn-train-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let runs = 0;


function manifest(over: { training?: Record<string, unknown>; seed?: number } = {}): Manifest {
  return { ...SMALL, training: { ...SMALL.training, ...over.training }, mutation: { rand_seed: over.seed ?? 7 } };
}

async function train(m: Manifest, opts: Partial<TrainOptions> = {}) {
  const events: TrainerEvent[] = [];
  const run = String(++runs);
  const result = await trainDqn(dqnConfig(m), { checkpointDir: dir, run, emit: (e) => events.push(e), stopRequested: () => false, ...opts });
  return { result, events, checkpoints: events.filter((e) => e.event === 'checkpoint') };
}

const withoutTime = (path: string) => {
  const { createdAt: _createdAt, ...rest } = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  return rest;
};

test('trains: checkpoints after each evolution round, evaluation scores rise, then finished', async () => {
  const { result, events, checkpoints } = await train(manifest());
  assert.equal(result.outcome, 'finished');
  assert.deepEqual(checkpoints.map((c) => c.step), [504, 1008, 1512, 2000]);
  const scores = checkpoints.map((c) => c.evaluation_score!);
  assert.ok(Math.max(...scores.slice(1)) > scores[0]! + 100, `evaluation scores ${scores.join(', ')}`);
  assert.ok(events.some((e) => e.event === 'progress' && e.max_steps === 2000 && e.steps_per_second! > 0));
  assert.ok(events.some((e) => e.event === 'metrics' && typeof e.values.loss === 'number'));
  assert.deepEqual(events.at(-1), { event: 'finished', step: 2000 });
  for (const c of checkpoints) {
    const { checkpoint } = readCheckpoint(c.path);
    assert.equal(checkpoint.step, c.step);
    assert.equal(checkpoint.evaluationScore, c.evaluation_score);
  }
});

test('is deterministic for a seed', async () => {
  const short = { training: { max_steps: 1000 } };
  const a = await train(manifest(short));
  const b = await train(manifest(short));
  const c = await train(manifest({ ...short, seed: 8 }));
  assert.deepEqual(
    a.checkpoints.map((x) => [x.step, x.evaluation_score, x.training_score]),
    b.checkpoints.map((x) => [x.step, x.evaluation_score, x.training_score]),
  );
  assert.deepEqual(withoutTime(a.checkpoints[0]!.path), withoutTime(b.checkpoints[0]!.path), 'the same weights too');
  assert.notDeepEqual(withoutTime(a.checkpoints[0]!.path).network, withoutTime(c.checkpoints[0]!.path).network, 'another seed, other weights');
});

test('a stop request ends training with a final checkpoint', async () => {
  // Checked after every vector step (yieldEveryMs 0): the 200th check falls in the second round, while agent 1
  // collects, after agent 0 (the elite) has collected up to step 1008.
  let checks = 0;
  const { result, checkpoints } = await train(manifest({ training: { max_steps: 100_000 } }), { stopRequested: () => ++checks >= 200, yieldEveryMs: 0 });
  assert.equal(result.outcome, 'stopped');
  assert.equal(result.step, 1008);
  assert.deepEqual(checkpoints.map((c) => [c.step, c.final ?? false]), [
    [504, false],
    [1008, true],
  ]);
  assert.equal(readCheckpoint(checkpoints[1]!.path).checkpoint.final, true);
});

test('a stop right after a checkpoint makes that checkpoint the final one', async () => {
  let stop = false;
  const events: TrainerEvent[] = [];
  const { result } = await train(manifest({ training: { max_steps: 100_000 } }), {
    emit: (e) => {
      events.push(e);
      if (e.event === 'checkpoint') stop = true;
    },
    stopRequested: () => stop,
  });
  const checkpoints = events.filter((e) => e.event === 'checkpoint');
  assert.equal(result.step, 504);
  assert.deepEqual(checkpoints.map((c) => [c.step, c.final ?? false]), [
    [504, false],
    [504, true],
  ]);
  assert.equal(checkpoints[1]!.path, checkpoints[0]!.path, 'the same file, not rewritten');
  assert.equal(checkpoints[1]!.evaluation_score, checkpoints[0]!.evaluation_score);
});

test('resumes from a checkpoint at its step with its weights', async () => {
  const first = await train(manifest({ training: { max_steps: 1000 } }));
  const from = readCheckpoint(first.checkpoints.at(-1)!.path);
  // Stopped at once: the final checkpoint is the resumed agent itself.
  const same = await train(manifest({ training: { max_steps: 5000 } }), { resume: from, stopRequested: () => true });
  const final = readCheckpoint(same.result.checkpoints[0]!.path);
  assert.equal(final.checkpoint.step, 1000);
  assert.deepEqual([...final.params], [...from.params]);
  assert.deepEqual(final.checkpoint.hyperparameters, from.checkpoint.hyperparameters);
  // Trained on: the step count continues from the checkpoint.
  const more = await train(manifest({ training: { max_steps: 2000 } }), { resume: from });
  assert.deepEqual(more.checkpoints.map((c) => c.step), [1504, 2000]);
});
