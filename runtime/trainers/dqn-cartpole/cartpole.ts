// CartPole-v1 with the same constants, Euler integration, termination thresholds and 500-step time limit as
// Gymnasium's classic-control implementation, so scores are comparable with the platform's.
import type { Rng } from './rng.ts';

export const OBSERVATION_SIZE = 4;
export const ACTIONS = 2;
export const MAX_EPISODE_STEPS = 500;

const GRAVITY = 9.8;
const MASS_CART = 1.0;
const MASS_POLE = 0.1;
const TOTAL_MASS = MASS_CART + MASS_POLE;
const LENGTH = 0.5; // half the pole's length
const POLE_MASS_LENGTH = MASS_POLE * LENGTH;
const FORCE_MAG = 10.0;
const TAU = 0.02;
const THETA_THRESHOLD = (12 * 2 * Math.PI) / 360;
const X_THRESHOLD = 2.4;

export interface StepResult {
  reward: number;
  /** The pole fell or the cart left the track: no future reward to bootstrap from. */
  terminated: boolean;
  /** The time limit ended the episode: the state itself was not terminal. */
  truncated: boolean;
}

export class CartPole {
  /** x, x_dot, theta, theta_dot. */
  readonly state = new Float64Array(4);
  steps = 0;

  constructor(private readonly rng: Rng) {
    this.reset();
  }

  reset(): void {
    for (let i = 0; i < 4; i++) this.state[i] = this.rng.uniform(-0.05, 0.05);
    this.steps = 0;
  }

  /** Writes the observation (float32, as Gymnasium returns it) at `offset` of `out`. */
  observe(out: Float32Array, offset = 0): void {
    for (let i = 0; i < 4; i++) out[offset + i] = this.state[i]!;
  }

  step(action: number): StepResult {
    const s = this.state;
    const x = s[0]!;
    const xDot = s[1]!;
    const theta = s[2]!;
    const thetaDot = s[3]!;
    const force = action === 1 ? FORCE_MAG : -FORCE_MAG;
    const cos = Math.cos(theta);
    const sin = Math.sin(theta);
    const temp = (force + POLE_MASS_LENGTH * thetaDot * thetaDot * sin) / TOTAL_MASS;
    const thetaAcc = (GRAVITY * sin - cos * temp) / (LENGTH * (4.0 / 3.0 - (MASS_POLE * cos * cos) / TOTAL_MASS));
    const xAcc = temp - (POLE_MASS_LENGTH * thetaAcc * cos) / TOTAL_MASS;
    s[0] = x + TAU * xDot;
    s[1] = xDot + TAU * xAcc;
    s[2] = theta + TAU * thetaDot;
    s[3] = thetaDot + TAU * thetaAcc;
    this.steps++;
    const terminated = s[0] < -X_THRESHOLD || s[0] > X_THRESHOLD || s[2] < -THETA_THRESHOLD || s[2] > THETA_THRESHOLD;
    return { reward: 1, terminated, truncated: !terminated && this.steps >= MAX_EPISODE_STEPS };
  }
}
