// The experience replay buffer: a ring of transitions sampled uniformly. As in AgileRL's off-policy training
// loop, one buffer is shared by the whole population, so every agent learns from every agent's experience.
import type { Rng } from './rng.ts';

export interface Batch {
  states: Float32Array;
  actions: Uint8Array;
  rewards: Float32Array;
  nextStates: Float32Array;
  /** 1 where the episode terminated (no bootstrapping), 0 otherwise (including time-limit truncation). */
  dones: Uint8Array;
  size: number;
}

export class ReplayBuffer {
  private readonly states: Float32Array;
  private readonly actions: Uint8Array;
  private readonly rewards: Float32Array;
  private readonly nextStates: Float32Array;
  private readonly dones: Uint8Array;
  private next = 0;
  size = 0;
  /** Transitions ever added. */
  counter = 0;
  private batch: Batch | undefined;

  constructor(
    readonly capacity: number,
    readonly stateSize: number,
  ) {
    this.states = new Float32Array(capacity * stateSize);
    this.nextStates = new Float32Array(capacity * stateSize);
    this.actions = new Uint8Array(capacity);
    this.rewards = new Float32Array(capacity);
    this.dones = new Uint8Array(capacity);
  }

  add(state: Float32Array, stateOffset: number, action: number, reward: number, nextState: Float32Array, nextOffset: number, done: boolean): void {
    const n = this.stateSize;
    const at = this.next;
    this.states.set(state.subarray(stateOffset, stateOffset + n), at * n);
    this.nextStates.set(nextState.subarray(nextOffset, nextOffset + n), at * n);
    this.actions[at] = action;
    this.rewards[at] = reward;
    this.dones[at] = done ? 1 : 0;
    this.next = (at + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
    this.counter++;
  }

  /** Samples `size` transitions uniformly with replacement; the returned arrays are reused by the next call. */
  sample(size: number, rng: Rng): Batch {
    const n = this.stateSize;
    if (!this.batch || this.batch.size < size) {
      this.batch = {
        states: new Float32Array(size * n),
        actions: new Uint8Array(size),
        rewards: new Float32Array(size),
        nextStates: new Float32Array(size * n),
        dones: new Uint8Array(size),
        size,
      };
    }
    const b = this.batch;
    for (let k = 0; k < size; k++) {
      const i = rng.int(this.size);
      for (let j = 0; j < n; j++) {
        b.states[k * n + j] = this.states[i * n + j]!;
        b.nextStates[k * n + j] = this.nextStates[i * n + j]!;
      }
      b.actions[k] = this.actions[i]!;
      b.rewards[k] = this.rewards[i]!;
      b.dones[k] = this.dones[i]!;
    }
    return { ...b, size };
  }
}
