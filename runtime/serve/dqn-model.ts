// get_action for a checkpoint of the reference DQN CartPole trainer: the greedy action of the trained Q-network
// per batch row, never an action the row's action_mask forbids. Actions go back as int64, as AgileRL's DQN
// returns them (a torch argmax).
import { formatShape, ndarray, type NdArray } from '../npy/npy.ts';
import { isNdArray, isTreeDict, type NpyTree } from '../npy/tree.ts';
import { loadPolicy, type Policy } from '../trainers/dqn-cartpole/policy.ts';
import { badRequest } from './errors.ts';
import type { ActionModel, ActionRequest, ActionResult, AgentInfo } from './models.ts';

/** The axes after the batch axis, with N for it: (N, 3). */
function batchShape(shape: readonly number[]): string {
  return shape.length === 0 ? '()' : formatShape(['N', ...shape.slice(1)]);
}

function describeTree(tree: NpyTree | undefined): string {
  if (tree == null) return 'null';
  if (Array.isArray(tree)) return `a tuple of ${tree.length}`;
  if (isTreeDict(tree)) return `an object keyed by ${Object.keys(tree).slice(0, 3).map((k) => JSON.stringify(k)).join(', ') || 'nothing'}`;
  return 'an array';
}

/** The one array a single-agent, Box-observation model takes in `field`, as float32 rows of `width`. */
function rows(tree: NpyTree | undefined, field: string, width: number, what: string): NdArray {
  if (!isNdArray(tree)) throw badRequest(field, `expected one array of shape (N, ${width}) (${what}), got ${describeTree(tree)}`);
  if (tree.ndim !== 2 || tree.shape[1] !== width) throw badRequest(field, `expected shape (N, ${width}), got ${batchShape(tree.shape)}`);
  return tree;
}

export class DqnActionModel implements ActionModel {
  readonly description: string;
  readonly agent: AgentInfo = { algo: 'DQN', multi_agent: false, llm: false, recurrent: false, supervised: false };

  constructor(readonly policy: Policy) {
    const c = policy.checkpoint;
    this.description = `DQN ${c.environment} (layers ${c.network.sizes.join('x')}), step ${c.step}`;
  }

  /** Loads a checkpoint file, or the newest step-N.json of a folder; throws with the reason when it cannot. */
  static load(location: string): DqnActionModel {
    return new DqnActionModel(loadPolicy(location));
  }

  getAction(req: ActionRequest): ActionResult {
    const n = req.batchSize;
    const width = this.policy.observationSize;
    const actions = this.policy.actions;
    const obs = rows(req.obs, 'obs', width, `${this.policy.checkpoint.environment} observations`);
    if (obs.dtype === 'b1') throw badRequest('obs', 'expected a numeric array, got booleans');
    const input = obs.dtype === 'f4' ? (obs.data as Float32Array) : Float32Array.from(obs.data as ArrayLike<number>, Number);
    for (let i = 0; i < input.length; i++) {
      if (!Number.isFinite(input[i]!)) throw badRequest('obs', `row ${Math.floor(i / width)} holds a non-finite value (${input[i]})`);
    }

    let mask: NdArray | undefined;
    if (req.actionMask != null) {
      mask = rows(req.actionMask, 'action_mask', actions, 'nonzero where an action is allowed');
      for (let k = 0; k < n; k++) {
        let any = false;
        for (let a = 0; a < actions; a++) any ||= mask.number(k * actions + a) !== 0;
        if (!any) throw badRequest('action_mask', `row ${k} allows no action`);
      }
    }

    const out = ndarray('i8', [n]);
    const chosen = out.data as BigInt64Array;
    if (!mask) {
      const greedy = this.policy.actBatch(input, n);
      for (let k = 0; k < n; k++) chosen[k] = BigInt(greedy[k]!);
    } else {
      for (let k = 0; k < n; k++) {
        const q = this.policy.qValues(input.subarray(k * width, (k + 1) * width));
        let best = -1;
        for (let a = 0; a < actions; a++) {
          if (mask.number(k * actions + a) === 0) continue;
          if (best < 0 || q[a]! > q[best]!) best = a;
        }
        chosen[k] = BigInt(best);
      }
    }
    return { action: out };
  }
}
