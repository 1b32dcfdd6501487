// Time as the plumbing sees it: a monotonic millisecond counter and one-shot timers. Injected everywhere a delay
// matters so tests can drive backoff and rate limits without sleeping (like k8s.io/utils/clock).
import { setImmediate as nextMacrotask } from 'node:timers/promises';

export interface Clock {
  /** Monotonic milliseconds; only differences mean anything. */
  now(): number;
  /** Runs `fn` once after `ms`; the returned function cancels it. Timers never keep the process alive. */
  setTimer(ms: number, fn: () => void): () => void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return () => clearTimeout(t);
  },
};

export function sleep(clock: Clock, ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => clock.setTimer(ms, resolve));
}

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/** A clock that only moves when told to; `advance` fires due timers in order and lets promises settle between. */
export class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers: FakeTimer[] = [];

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }

  /** Number of timers not yet fired. */
  get pending(): number {
    return this.timers.length;
  }

  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      await settle();
      const next = this.timers
        .filter((x) => x.at <= target)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.timers = this.timers.filter((x) => x !== next);
      this.t = next.at;
      next.fn();
    }
    this.t = target;
    await settle();
  }
}

/** Lets every queued promise continuation run (a macrotask boundary drains the microtask queue). */
export async function settle(): Promise<void> {
  await nextMacrotask();
}
