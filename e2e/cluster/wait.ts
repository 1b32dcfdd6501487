import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `cond` until it holds; the error names what was awaited and the last failure seen. */
export async function waitFor(
  cond: () => Promise<boolean> | boolean,
  opts: { timeoutMs: number; what: string; intervalMs?: number },
): Promise<void> {
  const end = Date.now() + opts.timeoutMs;
  let lastErr: unknown;
  while (Date.now() < end) {
    try {
      if (await cond()) return;
    } catch (err) {
      lastErr = err;
    }
    await sleep(opts.intervalMs ?? 200);
  }
  throw new Error(`timed out after ${opts.timeoutMs}ms waiting for ${opts.what}${lastErr ? `: ${String(lastErr)}` : ''}`);
}
