// Greedy inference from a reference-trainer checkpoint: what a deployed CartPole agent answers to get_action.
import { greedyAction } from './agent.ts';
import { readCheckpoint, type DqnCheckpoint } from './checkpoint.ts';
import { Mlp } from './mlp.ts';

export interface Policy {
  readonly observationSize: number;
  readonly actions: number;
  /** The checkpoint the policy was read from. */
  readonly checkpoint: Omit<DqnCheckpoint, 'network'> & { network: Omit<DqnCheckpoint['network'], 'weights'> };
  /** The action with the highest Q-value for one observation. */
  act(observation: ArrayLike<number>): number;
  /** Greedy actions for `count` observations laid out one after another. */
  actBatch(observations: ArrayLike<number>, count: number): Uint8Array;
  /** Q-values of every action for one observation. */
  qValues(observation: ArrayLike<number>): Float32Array;
}

export function policyFromWeights(checkpoint: DqnCheckpoint, params: Float32Array): Policy {
  const net = new Mlp(checkpoint.network.sizes, params);
  const observationSize = checkpoint.network.sizes[0]!;
  const actions = net.outputSize;
  const input = (observations: ArrayLike<number>, count: number) => {
    if (observations.length !== observationSize * count) {
      throw new RangeError(`expected ${count} observation(s) of ${observationSize} values, got ${observations.length} values`);
    }
    return Float32Array.from(observations as ArrayLike<number>);
  };
  const { weights: _weights, ...network } = checkpoint.network;
  return {
    observationSize,
    actions,
    checkpoint: { ...checkpoint, network },
    act: (observation) => greedyAction(net.forward(input(observation, 1), 1), 0, actions),
    actBatch: (observations, count) => {
      const q = net.forward(input(observations, count), count);
      return Uint8Array.from({ length: count }, (_, k) => greedyAction(q, k * actions, actions));
    },
    qValues: (observation) => Float32Array.from(net.forward(input(observation, 1), 1)),
  };
}

/** Loads the greedy policy of a checkpoint file (or of the latest step-N.json in a folder). */
export function loadPolicy(location: string): Policy {
  const { checkpoint, params } = readCheckpoint(location);
  return policyFromWeights(checkpoint, params);
}
