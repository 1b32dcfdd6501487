// The checks the TypeScript side makes of a multi-agent request before it reaches AgileRL: obs keyed by agent id
// against the Dict of per-agent spaces the model process reports, and masks keyed by agent id, each of its agent's
// width. (The whole path, from a trained MADDPG checkpoint to its agents' actions, runs in e2e/families.e2e.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ndarray } from '../npy/npy.ts';
import { checkAgentMasks, checkObservation, type AgileRlModelInfo } from './agilerl-model.ts';

const info: AgileRlModelInfo = {
  algo: 'MATD3',
  recurrent: false,
  multi_agent: true,
  agent_ids: ['adversary_0', 'agent_0'],
  description: 'MATD3',
  observation_space: {
    type: 'Dict',
    spaces: { adversary_0: { type: 'Box', shape: [8], dtype: 'float32' }, agent_0: { type: 'Box', shape: [10], dtype: 'float32' } },
  },
  action_space: { type: 'Dict', spaces: { adversary_0: { type: 'Discrete', n: 5, start: 0 }, agent_0: { type: 'Box', shape: [5], dtype: 'float32' } } },
  action_mask_width: null,
  action_mask_widths: { adversary_0: 5 },
  hidden_state: null,
  device: 'cpu',
};
const zeros = (rows: number, width: number) => ndarray('f4', [rows, width], new Array<number>(rows * width).fill(0));
const message = (f: () => void) => {
  try {
    f();
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
};

test('multi-agent observations are objects keyed by agent id, each of its own agent\'s shape', () => {
  checkObservation({ adversary_0: zeros(2, 8), agent_0: zeros(2, 10) }, info.observation_space, 'obs', 2);
  assert.equal(message(() => checkObservation({ adversary_0: zeros(2, 8) }, info.observation_space, 'obs', 2)), 'obs.agent_0: required');
  assert.equal(message(() => checkObservation({ adversary_0: zeros(2, 8), agent_0: zeros(2, 8) }, info.observation_space, 'obs', 2)), 'obs.agent_0: expected shape (N, 10), got (N, 8)');
  assert.match(message(() => checkObservation({ adversary_0: zeros(2, 8), agent_0: zeros(2, 10), agent_9: zeros(2, 10) }, info.observation_space, 'obs', 2)), /^obs\.agent_9: not a key/);
  assert.match(message(() => checkObservation(zeros(2, 8), info.observation_space, 'obs', 2)), /^obs: expected an object keyed by "adversary_0", "agent_0"/);
});

test('multi-agent masks are keyed by agent id, only for agents whose action space takes one', () => {
  checkAgentMasks(undefined, info, 2);
  checkAgentMasks({ adversary_0: ndarray('i1', [2, 5], [1, 0, 0, 0, 0, 0, 1, 1, 0, 0]) }, info, 2);
  assert.equal(message(() => checkAgentMasks({ adversary_0: ndarray('i1', [2, 5], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]) }, info, 2)), 'action_mask.adversary_0: row 1 allows no action');
  assert.equal(message(() => checkAgentMasks({ adversary_0: ndarray('i1', [2, 3], [1, 1, 1, 1, 1, 1]) }, info, 2)), 'action_mask.adversary_0: expected shape (N, 5), got (N, 3)');
  assert.equal(message(() => checkAgentMasks({ agent_0: ndarray('i1', [2, 5], new Array<number>(10).fill(1)) }, info, 2)), "action_mask.agent_0: MATD3's agent agent_0 has an action space that takes no action mask");
  assert.match(message(() => checkAgentMasks({ nobody: ndarray('i1', [2, 5], new Array<number>(10).fill(1)) }, info, 2)), /^action_mask\.nobody: not an agent of this model \(adversary_0, agent_0\)$/);
  assert.match(message(() => checkAgentMasks(ndarray('i1', [2, 5], new Array<number>(10).fill(1)), info, 2)), /^action_mask: expected an object keyed by agent id/);
});
