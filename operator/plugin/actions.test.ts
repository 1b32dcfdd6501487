import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Experiment, ExperimentCheckpoint, ExperimentPhase } from '../api/v1alpha1/experiment.ts';
import type { Deployment } from '../api/v1alpha1/deployment.ts';
import { connect, deploy, parseCheckpointChoice, pickCheckpoint, resume, rotateKey, stop, train } from './actions.ts';

const cp = (run: number, step: number, evaluationScore?: number): ExperimentCheckpoint => ({
  run,
  step,
  sizeBytes: 1024,
  location: `run-${run}/step-${step}.json`,
  createdAt: '2026-01-01T00:00:00Z',
  ...(evaluationScore !== undefined ? { evaluationScore } : {}),
});

function exp(phase: ExperimentPhase | undefined, over: { spec?: Partial<Experiment['spec']>; status?: Partial<NonNullable<Experiment['status']>> } = {}): Experiment {
  return {
    apiVersion: 'arena.agilerl.com/v1alpha1',
    kind: 'Experiment',
    metadata: { name: 'cartpole', namespace: 'ml', resourceVersion: '7' },
    spec: {
      action: phase === 'Stopped' || phase === 'Stopping' ? 'Stop' : phase === 'Draft' || phase === undefined ? 'Draft' : 'Train',
      resourceClass: 'a100',
      priority: 5,
      manifest: { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' }, training: { max_steps: 100 } } as Experiment['spec']['manifest'],
      ...over.spec,
    },
    ...(phase ? { status: { phase, run: 1, ...over.status } } : {}),
  };
}

describe('train', () => {
  const cases: { name: string; e: Experiment; opts?: { resourceClass?: string }; patch?: Record<string, unknown>; refused?: boolean; says: RegExp }[] = [
    { name: 'a Draft is queued', e: exp('Draft'), patch: { action: 'Train' }, says: /queued to train on a100/ },
    { name: 'no status yet counts as Draft', e: exp(undefined), patch: { action: 'Train' }, says: /queued/ },
    { name: 'a Stopped run continues from its checkpoint', e: exp('Stopped', { status: { latestCheckpoint: { step: 40, location: 'x' } } }), patch: { action: 'Train' }, says: /continues run 1 .*step 40/ },
    { name: 'a Succeeded run trains again with spec.run above status.run', e: exp('Succeeded', { status: { run: 2 }, spec: { run: 2 } }), patch: { action: 'Train', run: 3 }, says: /starting run 3/ },
    { name: 'a Failed run retries as a new run', e: exp('Failed', { status: { run: 1 } }), patch: { action: 'Train', run: 2 }, says: /failed.*starting run 2/ },
    { name: 'spec.run ahead of status.run still goes up by one from the larger', e: exp('Succeeded', { status: { run: 1 }, spec: { run: 4 } }), patch: { action: 'Train', run: 5 }, says: /run 5/ },
    { name: 'Running is left alone', e: exp('Running'), says: /already Running/ },
    { name: 'Pending is left alone', e: exp('Pending'), says: /already Pending/ },
    { name: 'Stopping is refused', e: exp('Stopping'), refused: true, says: /wait until it is Stopped/ },
    { name: 'no class and no --class is refused', e: exp('Draft', { spec: { resourceClass: undefined } }), refused: true, says: /--class/ },
    { name: '--class sets the class', e: exp('Draft', { spec: { resourceClass: undefined } }), opts: { resourceClass: 'l4' }, patch: { action: 'Train', resourceClass: 'l4' }, says: /on l4/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = train(c.e, c.opts);
      assert.match(d.message, c.says);
      assert.deepEqual(d.change?.spec, c.patch);
      assert.equal(d.change ? false : (d.refused ?? false), c.refused ?? false);
    });
  }
});

describe('stop', () => {
  const cases: { phase: ExperimentPhase; stops: boolean; says: RegExp }[] = [
    { phase: 'Pending', stops: true, says: /off the queue/ },
    { phase: 'Running', stops: true, says: /final checkpoint/ },
    { phase: 'Stopping', stops: false, says: /already Stopping/ },
    { phase: 'Draft', stops: false, says: /never started/ },
    { phase: 'Stopped', stops: false, says: /already Stopped/ },
    { phase: 'Succeeded', stops: false, says: /already Succeeded .*nothing is running, so Stop changes nothing.*kubectl arena train cartpole/ },
    { phase: 'Failed', stops: false, says: /already Failed/ },
  ];
  for (const c of cases) {
    test(`${c.phase}: ${c.stops ? 'sets action Stop' : 'explains why nothing happens'}`, () => {
      const d = stop(exp(c.phase, { status: { progress: { step: 100 } } }));
      assert.match(d.message, c.says);
      assert.deepEqual(d.change?.spec, c.stops ? { action: 'Stop' } : undefined);
    });
  }
});

describe('checkpoints: best, final, a step', () => {
  const e = exp('Succeeded', {
    status: { run: 2, checkpoints: [cp(1, 100, 10), cp(1, 200, 50), cp(2, 100, 30), cp(2, 300)], bestCheckpoint: { step: 200, evaluationScore: 50 } },
  });
  test('parses what users type', () => {
    assert.equal(parseCheckpointChoice(undefined), 'best');
    assert.equal(parseCheckpointChoice('final'), 'final');
    assert.equal(parseCheckpointChoice('latest'), 'final');
    assert.equal(parseCheckpointChoice('300'), 300);
    assert.throws(() => parseCheckpointChoice('newest'), /best, final or a step/);
  });
  const picks: { choice: 'best' | 'final' | number; run?: number; step?: number; error?: RegExp }[] = [
    { choice: 'best', run: 1, step: 200 },
    { choice: 'final', run: 2, step: 300 },
    { choice: 100, run: 2, step: 100 },
    { choice: 150, error: /no checkpoint at step 150; it has steps 100, 200, 300/ },
  ];
  for (const p of picks) {
    test(`${p.choice}`, () => {
      const r = pickCheckpoint(e, p.choice);
      if (p.error) assert.match(r.ok ? '' : r.message, p.error);
      else assert.deepEqual(r.ok && [r.checkpoint.run, r.checkpoint.step], [p.run, p.step]);
    });
  }
  test('best without evaluation scores says to use final or a step', () => {
    const r = pickCheckpoint(exp('Stopped', { status: { checkpoints: [cp(1, 10)] } }), 'best');
    assert.match(r.ok ? '' : r.message, /no checkpoint with an evaluation score: use --checkpoint final or a step \(10\)/);
  });
  test('no checkpoints at all', () => {
    const r = pickCheckpoint(exp('Failed'), 'final');
    assert.match(r.ok ? '' : r.message, /has no checkpoints yet/);
  });
});

describe('resume', () => {
  const src = exp('Stopped', { spec: { run: 3, resumeFrom: { experiment: 'older', checkpoint: 'best' } }, status: { checkpoints: [cp(1, 100, 1), cp(1, 200, 2)], bestCheckpoint: { step: 200, evaluationScore: 2 } } });
  test('creates a new experiment with the source\'s definition and resumeFrom, training at once', () => {
    const d = resume(src, { name: 'cartpole-resume', checkpoint: 100 });
    assert.ok(d.change);
    assert.deepEqual(d.change.metadata, { name: 'cartpole-resume', namespace: 'ml' });
    assert.deepEqual(d.change.spec.resumeFrom, { experiment: 'cartpole', checkpoint: 'step', step: 100 });
    assert.equal(d.change.spec.action, 'Train');
    assert.equal(d.change.spec.run, undefined, 'the new experiment starts at run 1');
    assert.equal(d.change.spec.priority, 5);
    assert.equal(d.change.spec.resourceClass, 'a100');
    assert.match(d.message, /step-100 checkpoint \(run 1, step 100, evaluation score 1\)/);
  });
  test('best and final stay symbolic; --draft creates a Draft', () => {
    const d = resume(src, { name: 'n', checkpoint: 'best', draft: true });
    assert.deepEqual(d.change?.spec.resumeFrom, { experiment: 'cartpole', checkpoint: 'best' });
    assert.equal(d.change?.spec.action, 'Draft');
  });
  test('a running experiment is refused', () => {
    const d = resume(exp('Running', { status: { checkpoints: [cp(1, 1, 1)] } }), { name: 'n', checkpoint: 'final' });
    assert.equal(d.change, undefined);
    assert.match(d.message, /is Running: .*stop it first/);
  });
  test('its own name is refused with the right command', () => {
    assert.match(resume(src, { name: 'cartpole', checkpoint: 'final' }).message, /kubectl arena train/);
  });
});

function dep(over: Partial<Deployment['spec']> = {}): Deployment {
  return { apiVersion: 'arena.agilerl.com/v1alpha1', kind: 'Deployment', metadata: { name: 'agent', namespace: 'ml', resourceVersion: '12' }, spec: { source: { experiment: 'cartpole' }, ...over } };
}

describe('agents', () => {
  test('deploy serves the chosen checkpoint; a step becomes checkpoint specific', () => {
    const src = exp('Succeeded', { status: { checkpoints: [cp(1, 100, 1)], bestCheckpoint: { step: 100, evaluationScore: 1 } } });
    const d = deploy(src, { name: 'cp-agent', checkpoint: 100, connect: true, replicas: 2 });
    assert.deepEqual(d.change?.spec, { source: { experiment: 'cartpole', checkpoint: 'specific', step: 100 }, connected: true, replicas: 2 });
    assert.deepEqual(deploy(src, { name: 'a', checkpoint: 'best', connect: false }).change?.spec.source, { experiment: 'cartpole', checkpoint: 'best' });
    assert.match(deploy(exp('Running'), { name: 'a', checkpoint: 'best', connect: false }).message, /no checkpoints yet/);
  });
  test('connect and disconnect flip spec.connected, or say it already is', () => {
    assert.deepEqual(connect(dep(), true).change?.spec, { connected: true });
    assert.match(connect(dep({ connected: true }), true).message, /already connected/);
    assert.deepEqual(connect(dep({ connected: true }), false).change?.spec, { connected: false });
    assert.match(connect(dep(), false).message, /already disconnected/);
  });
  test('rotate-key raises keyRotation by one, conditional on the version read', () => {
    assert.deepEqual(rotateKey(dep({ keyRotation: 4 })).change, { spec: { keyRotation: 5 }, metadata: { resourceVersion: '12' } });
    assert.deepEqual(rotateKey(dep()).change?.spec, { keyRotation: 1 });
  });
});
