import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ndarray, type NdArray } from '../npy/npy.ts';
import type { NpyTree } from '../npy/tree.ts';
import { DqnActionModel } from './dqn-model.ts';
import { HttpError } from './errors.ts';
import { linearCheckpoint, tempDir } from './testing.ts';

const tmp = tempDir('dqn-model-');
after(tmp.remove);
const model = DqnActionModel.load(linearCheckpoint(tmp.dir));

const act = (obs: NpyTree, batchSize: number, actionMask?: NpyTree) => [...(model.getAction({ obs, batchSize, actionMask }).action as NdArray).data];

// The linear checkpoint picks action 1 exactly when theta (column 2) > x (column 0).
const left = [0.5, 0, 0.1, 0];
const right = [0.1, 0, 0.5, 0];

test('greedy actions per row, as int64 of shape (N,)', () => {
  const action = model.getAction({ obs: ndarray('f4', [3, 4], [...left, ...right, ...left]), batchSize: 3 }).action as NdArray;
  assert.equal(action.dtype, 'i8');
  assert.deepEqual(action.shape, [3]);
  assert.deepEqual([...action.data], [0n, 1n, 0n]);
  assert.equal(model.description, 'DQN CartPole-v1 (layers 4x2), step 1');
  assert.deepEqual(model.agent, { algo: 'DQN', multi_agent: false, llm: false, recurrent: false, supervised: false });
});

test('other numeric dtypes are converted', () => {
  assert.deepEqual(act(ndarray('f8', [2, 4], [...left, ...right]), 2), [0n, 1n]);
  assert.deepEqual(act(ndarray('i4', [1, 4], [0, 0, 1, 0]), 1), [1n]);
  assert.deepEqual(act(ndarray('i8', [1, 4], [1n, 0n, 0n, 0n]), 1), [0n]);
});

test('masked actions are never chosen', () => {
  const obs = ndarray('f4', [4, 4], [...left, ...right, ...left, ...right]);
  // Row 0 prefers 0 but only 1 is allowed; row 1 prefers 1 but only 0 is allowed; rows 2 and 3 allow both.
  const masks: NdArray[] = [ndarray('b1', [4, 2], [0, 1, 1, 0, 1, 1, 1, 1]), ndarray('i8', [4, 2], [0n, 1n, 1n, 0n, 1n, 1n, 1n, 1n]), ndarray('f4', [4, 2], [0, 1, 1, 0, 1, 1, 1, 1])];
  for (const mask of masks) assert.deepEqual(act(obs, 4, mask), [1n, 0n, 0n, 1n], mask.dtype);
});

const refusals: { name: string; obs: NpyTree; n: number; mask?: NpyTree; error: string }[] = [
  { name: 'three features', obs: ndarray('f4', [2, 3]), n: 2, error: 'obs: expected shape (N, 4), got (N, 3)' },
  { name: 'no feature axis', obs: ndarray('f4', [4]), n: 4, error: 'obs: expected shape (N, 4), got (N,)' },
  { name: 'an extra axis', obs: ndarray('f4', [1, 4, 1]), n: 1, error: 'obs: expected shape (N, 4), got (N, 4, 1)' },
  { name: 'a dict observation', obs: { position: ndarray('f4', [1, 4]) }, n: 1, error: 'obs: expected one array of shape (N, 4) (CartPole-v1 observations), got an object keyed by "position"' },
  { name: 'a tuple observation', obs: [ndarray('f4', [1, 4])], n: 1, error: 'obs: expected one array of shape (N, 4) (CartPole-v1 observations), got a tuple of 1' },
  { name: 'booleans', obs: ndarray('b1', [1, 4]), n: 1, error: 'obs: expected a numeric array, got booleans' },
  { name: 'NaN', obs: ndarray('f4', [2, 4], [0, 0, 0, 0, 0, NaN, 0, 0]), n: 2, error: 'obs: row 1 holds a non-finite value (NaN)' },
  { name: 'a mask of the wrong width', obs: ndarray('f4', [1, 4]), n: 1, mask: ndarray('b1', [1, 3]), error: 'action_mask: expected shape (N, 2), got (N, 3)' },
  { name: 'a mask allowing nothing', obs: ndarray('f4', [2, 4]), n: 2, mask: ndarray('b1', [2, 2], [1, 0, 0, 0]), error: 'action_mask: row 1 allows no action' },
];

for (const r of refusals) {
  test(`refuses ${r.name} with a message naming the field`, () => {
    assert.throws(
      () => model.getAction({ obs: r.obs, batchSize: r.n, actionMask: r.mask }),
      (err: unknown) => err instanceof HttpError && err.status === 400 && err.message === r.error,
    );
  });
}

test('a file that is not a checkpoint cannot be loaded, with the reason', () => {
  assert.throws(() => DqnActionModel.load(`${tmp.dir}/missing.json`), /ENOENT/);
});
