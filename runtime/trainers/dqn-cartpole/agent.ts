// One DQN agent of the population: online and target networks, its optimiser state and its own (mutable)
// hyperparameters.
import { Adam, Mlp } from './mlp.ts';
import type { ReplayBuffer } from './replay.ts';
import type { Rng } from './rng.ts';

export interface DqnHyperparameters {
  batch_size: number;
  lr: number;
  /** Environment transitions per learning step. */
  learn_step: number;
  gamma: number;
  /** Soft target-network update rate, applied after every learning step. */
  tau: number;
}

/** Hyperparameters that are integers (mutation rounds them). */
export const INTEGER_HYPERPARAMETERS: ReadonlySet<keyof DqnHyperparameters> = new Set(['batch_size', 'learn_step']);

export function greedyAction(q: Float32Array, offset: number, actions: number): number {
  let best = 0;
  for (let a = 1; a < actions; a++) if (q[offset + a]! > q[offset + best]!) best = a;
  return best;
}

export class DqnAgent {
  /** Fitness (mean evaluation return) of each evaluation, latest last. */
  fitness: number[] = [];
  /** Returns of training episodes completed since the last evolution round. */
  recentReturns: number[] = [];
  /** Double DQN targets (the platform's default for DQN); plain DQN takes the target network's own maximum. */
  double = false;
  private targets = new Float32Array(0);
  private nextActions = new Uint8Array(0);

  constructor(
    readonly id: number,
    public hp: DqnHyperparameters,
    readonly online: Mlp,
    readonly target: Mlp,
    readonly optimizer: Adam,
  ) {}

  static create(id: number, sizes: readonly number[], hp: DqnHyperparameters, rng: Rng): DqnAgent {
    const online = Mlp.random(sizes, rng);
    return new DqnAgent(id, { ...hp }, online, online.clone(), new Adam(online.params.length));
  }

  static fromWeights(id: number, sizes: readonly number[], hp: DqnHyperparameters, params: Float32Array): DqnAgent {
    const online = new Mlp(sizes, params);
    return new DqnAgent(id, { ...hp }, online, online.clone(), new Adam(online.params.length));
  }

  clone(id: number): DqnAgent {
    const copy = new DqnAgent(id, { ...this.hp }, this.online.clone(), this.target.clone(), this.optimizer.clone());
    copy.fitness = [...this.fitness];
    copy.double = this.double;
    return copy;
  }

  get actions(): number {
    return this.online.outputSize;
  }

  /** Epsilon-greedy actions for `count` observations. */
  act(observations: Float32Array, count: number, epsilon: number, rng: Rng, out: Uint8Array): void {
    const q = this.online.forward(observations, count);
    for (let k = 0; k < count; k++) {
      out[k] = rng.next() < epsilon ? rng.int(this.actions) : greedyAction(q, k * this.actions, this.actions);
    }
  }

  /** One learning step on a sampled batch; returns the loss. */
  learn(buffer: ReplayBuffer, rng: Rng): number {
    const size = Math.min(this.hp.batch_size, buffer.size);
    const b = buffer.sample(size, rng);
    if (this.targets.length < size) this.targets = new Float32Array(size);
    if (this.nextActions.length < size) this.nextActions = new Uint8Array(size);
    const nA = this.actions;
    if (this.double) {
      // Taken now: forward() returns a view that the online pass over the batch's states below overwrites.
      const onlineNextQ = this.online.forward(b.nextStates, size);
      for (let k = 0; k < size; k++) this.nextActions[k] = greedyAction(onlineNextQ, k * nA, nA);
    }
    const nextQ = this.target.forward(b.nextStates, size);
    for (let k = 0; k < size; k++) {
      let value: number;
      if (this.double) value = nextQ[k * nA + this.nextActions[k]!]!;
      else {
        value = nextQ[k * nA]!;
        for (let a = 1; a < nA; a++) value = Math.max(value, nextQ[k * nA + a]!);
      }
      this.targets[k] = b.rewards[k]! + (b.dones[k] ? 0 : this.hp.gamma * value);
    }
    this.online.forward(b.states, size);
    const loss = this.online.backwardQ(b.actions, this.targets, size);
    this.optimizer.step(this.online.params, this.online.gradients, this.hp.lr);
    const tau = this.hp.tau;
    const p = this.online.params;
    const t = this.target.params;
    for (let i = 0; i < p.length; i++) t[i] = tau * p[i]! + (1 - tau) * t[i]!;
    return loss;
  }
}
