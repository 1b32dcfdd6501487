// A tiny fully connected network (ReLU hidden layers, linear output) with the Q-learning gradient and Adam, on
// flat Float32Arrays. All parameters live in one array so cloning, soft target updates, weight noise and Adam
// are single loops, and a checkpoint is one buffer.
import type { Rng } from './rng.ts';

export interface LayerView {
  inputs: number;
  outputs: number;
  /** Offset of the outputs x inputs weight matrix (row-major) in `params`; the biases follow it. */
  offset: number;
}

export function layout(sizes: readonly number[]): { layers: LayerView[]; count: number } {
  const layers: LayerView[] = [];
  let offset = 0;
  for (let l = 0; l + 1 < sizes.length; l++) {
    const inputs = sizes[l]!;
    const outputs = sizes[l + 1]!;
    layers.push({ inputs, outputs, offset });
    offset += inputs * outputs + outputs;
  }
  return { layers, count: offset };
}

export class Mlp {
  readonly layers: LayerView[];
  readonly params: Float32Array;
  // Per-layer activations of the last batch forward pass (index 0 is the input), kept for backprop.
  private acts: Float32Array[] = [];
  private batchCapacity = 0;
  private grads: Float32Array;
  private deltas: Float32Array[] = [];

  constructor(
    readonly sizes: readonly number[],
    params?: Float32Array,
  ) {
    const { layers, count } = layout(sizes);
    this.layers = layers;
    if (params && params.length !== count) throw new Error(`expected ${count} parameters for layers ${sizes.join('x')}, got ${params.length}`);
    this.params = params ? Float32Array.from(params) : new Float32Array(count);
    this.grads = new Float32Array(count);
  }

  /** PyTorch's default Linear initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases. */
  static random(sizes: readonly number[], rng: Rng): Mlp {
    const net = new Mlp(sizes);
    for (const l of net.layers) {
      const bound = 1 / Math.sqrt(l.inputs);
      const end = l.offset + l.inputs * l.outputs + l.outputs;
      for (let i = l.offset; i < end; i++) net.params[i] = rng.uniform(-bound, bound);
    }
    return net;
  }

  clone(): Mlp {
    return new Mlp(this.sizes, this.params);
  }

  get outputSize(): number {
    return this.sizes[this.sizes.length - 1]!;
  }

  private ensureBatch(batch: number): void {
    if (batch <= this.batchCapacity) return;
    this.batchCapacity = batch;
    this.acts = this.sizes.map((n) => new Float32Array(batch * n));
    this.deltas = this.sizes.map((n) => new Float32Array(batch * n));
  }

  /** Forward pass over `batch` rows of `input`; returns the output rows (a view valid until the next call). */
  forward(input: Float32Array, batch: number): Float32Array {
    this.ensureBatch(batch);
    this.acts[0]!.set(input.subarray(0, batch * this.sizes[0]!));
    const p = this.params;
    const last = this.layers.length - 1;
    for (let li = 0; li <= last; li++) {
      const { inputs, outputs, offset } = this.layers[li]!;
      const x = this.acts[li]!;
      const y = this.acts[li + 1]!;
      const bias = offset + inputs * outputs;
      for (let b = 0; b < batch; b++) {
        const xo = b * inputs;
        const yo = b * outputs;
        for (let o = 0; o < outputs; o++) {
          let sum = p[bias + o]!;
          const w = offset + o * inputs;
          for (let i = 0; i < inputs; i++) sum += p[w + i]! * x[xo + i]!;
          y[yo + o] = li < last && sum < 0 ? 0 : sum;
        }
      }
    }
    return this.acts[last + 1]!.subarray(0, batch * this.outputSize);
  }

  /**
   * One regression step on Q(s, a) toward `targets` for the chosen actions only (mean squared error, as
   * AgileRL's DQN uses); fills the parameter gradients and returns the loss. Call `forward` on the same
   * batch first.
   */
  backwardQ(actions: Uint8Array, targets: Float32Array, batch: number): number {
    const last = this.layers.length - 1;
    const out = this.acts[last + 1]!;
    const nOut = this.outputSize;
    const dOut = this.deltas[last + 1]!;
    dOut.fill(0, 0, batch * nOut);
    let loss = 0;
    for (let b = 0; b < batch; b++) {
      const err = out[b * nOut + actions[b]!]! - targets[b]!;
      loss += err * err;
      dOut[b * nOut + actions[b]!] = (2 * err) / batch;
    }
    const g = this.grads;
    g.fill(0);
    const p = this.params;
    for (let li = last; li >= 0; li--) {
      const { inputs, outputs, offset } = this.layers[li]!;
      const x = this.acts[li]!;
      const dy = this.deltas[li + 1]!;
      const dx = this.deltas[li]!;
      const bias = offset + inputs * outputs;
      const needInputGrad = li > 0;
      if (needInputGrad) dx.fill(0, 0, batch * inputs);
      for (let b = 0; b < batch; b++) {
        const xo = b * inputs;
        const yo = b * outputs;
        for (let o = 0; o < outputs; o++) {
          const d = dy[yo + o]!;
          if (d === 0) continue;
          g[bias + o]! += d;
          const w = offset + o * inputs;
          for (let i = 0; i < inputs; i++) {
            g[w + i]! += d * x[xo + i]!;
            if (needInputGrad) dx[xo + i]! += d * p[w + i]!;
          }
        }
      }
      // ReLU: no gradient through units that were off (their activation is exactly 0).
      if (needInputGrad) for (let k = 0; k < batch * inputs; k++) if (x[k]! <= 0) dx[k] = 0;
    }
    return loss / batch;
  }

  get gradients(): Float32Array {
    return this.grads;
  }
}

/** Adam with PyTorch's defaults (betas 0.9/0.999, eps 1e-8). */
export class Adam {
  private t = 0;
  readonly m: Float32Array;
  readonly v: Float32Array;

  constructor(size: number) {
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }

  clone(): Adam {
    const copy = new Adam(this.m.length);
    copy.m.set(this.m);
    copy.v.set(this.v);
    copy.t = this.t;
    return copy;
  }

  step(params: Float32Array, grads: Float32Array, lr: number): void {
    const b1 = 0.9;
    const b2 = 0.999;
    this.t++;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    const m = this.m;
    const v = this.v;
    for (let i = 0; i < params.length; i++) {
      const gi = grads[i]!;
      const mi = (m[i] = b1 * m[i]! + (1 - b1) * gi);
      const vi = (v[i] = b2 * v[i]! + (1 - b2) * gi * gi);
      params[i]! -= (lr * (mi / c1)) / (Math.sqrt(vi / c2) + 1e-8);
    }
  }
}
