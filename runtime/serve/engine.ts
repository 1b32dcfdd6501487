// The LLM inference engine of an LLM image (SGLang's native HTTP API, or a server speaking it): its /health is
// polled so requests fail fast with 503 while the model loads, and /generate takes {text, sampling_params} and
// answers {text, meta_info} per prompt, or with stream: true server-sent events of the text so far.
import type { Logger } from 'winston';

export interface SamplingParams {
  max_new_tokens: number;
  temperature: number;
  top_p: number;
}

export interface Generation {
  completions: string[];
  /** Sum of meta_info.completion_tokens, when the engine reports it. */
  completionTokens: number | undefined;
}

export type EngineState = { ready: true } | { ready: false; reason: string };

/** The engine is not up (yet): answer 503. */
export class EngineUnavailable extends Error {
  override name = 'EngineUnavailable';
}

/** The engine answered, but with an error: answer 502. */
export class EngineFailed extends Error {
  override name = 'EngineFailed';
}

export interface EngineClientOptions {
  /** Base URL, e.g. http://127.0.0.1:30000. */
  url: string;
  logger?: Logger;
  /** Health polls while the engine is not ready; default 1 s. */
  pollNotReadyMs?: number;
  /** Health polls while it is; default 5 s. */
  pollReadyMs?: number;
  /** Per /health request; default 2 s. */
  healthTimeoutMs?: number;
  /** Per /generate request; default 10 minutes (long generations are legitimate). */
  generateTimeoutMs?: number;
}

function errorText(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message ?? String(err);
}

export class EngineClient {
  readonly url: string;
  private current: EngineState;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly opts: Required<Omit<EngineClientOptions, 'logger'>> & { logger?: Logger };

  constructor(opts: EngineClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.opts = { pollNotReadyMs: 1000, pollReadyMs: 5000, healthTimeoutMs: 2000, generateTimeoutMs: 600_000, ...opts };
    this.current = { ready: false, reason: `the inference engine at ${this.url} has not been checked yet` };
  }

  state(): EngineState {
    return this.current;
  }

  /** Checks /health now and then keeps polling until stop(). Resolves after the first check. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.poll();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One health check; schedules the next. */
  async poll(): Promise<EngineState> {
    if (this.timer) clearTimeout(this.timer);
    let next: EngineState;
    try {
      const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(this.opts.healthTimeoutMs) });
      await res.body?.cancel();
      next = res.ok ? { ready: true } : { ready: false, reason: `the inference engine at ${this.url} is not ready: /health answered ${res.status}` };
    } catch (err) {
      next = { ready: false, reason: `the inference engine at ${this.url} is not reachable: ${errorText(err)}` };
    }
    this.set(next);
    if (!this.stopped) {
      this.timer = setTimeout(() => void this.poll(), next.ready ? this.opts.pollReadyMs : this.opts.pollNotReadyMs);
      this.timer.unref();
    }
    return next;
  }

  private set(next: EngineState): void {
    const was = this.current;
    this.current = next;
    if (was.ready !== next.ready) {
      if (next.ready) this.opts.logger?.info('Inference engine ready', { engine: this.url });
      else this.opts.logger?.warn('Inference engine not ready', { engine: this.url, reason: next.reason });
    }
  }

  private ensureReady(): void {
    if (!this.current.ready) throw new EngineUnavailable(this.current.reason);
  }

  private async post(body: unknown, signal?: AbortSignal): Promise<Response> {
    this.ensureReady();
    const timeout = AbortSignal.timeout(this.opts.generateTimeoutMs);
    let res: Response;
    try {
      res = await fetch(`${this.url}/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      if (timeout.aborted) throw new EngineFailed(`the inference engine did not answer within ${this.opts.generateTimeoutMs / 1000} s`);
      // Refused or reset: the engine went away. Say so at once rather than at the next poll.
      this.set({ ready: false, reason: `the inference engine at ${this.url} is not reachable: ${errorText(err)}` });
      void this.poll();
      throw new EngineUnavailable(this.current.ready ? 'the inference engine is not reachable' : this.current.reason);
    }
    if (!res.ok) {
      const text = (await res.text().catch(() => '')).slice(0, 500);
      if (res.status === 503) throw new EngineUnavailable(`the inference engine is not ready: ${text || 'HTTP 503'}`);
      throw new EngineFailed(`the inference engine answered ${res.status}: ${text || res.statusText}`);
    }
    return res;
  }

  async generate(texts: string[], sampling: SamplingParams): Promise<Generation> {
    const res = await this.post({ text: texts, sampling_params: sampling });
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      throw new EngineFailed('the inference engine answered with a body that is not JSON');
    }
    const items = Array.isArray(body) ? body : [body];
    if (items.length !== texts.length) throw new EngineFailed(`the inference engine answered ${items.length} completions for ${texts.length} prompts`);
    let tokens: number | undefined = 0;
    const completions = items.map((item: unknown) => {
      const o = item as { text?: unknown; meta_info?: { completion_tokens?: unknown } };
      if (typeof o?.text !== 'string') throw new EngineFailed('the inference engine answered without a text field');
      const t = o.meta_info?.completion_tokens;
      tokens = typeof t === 'number' && tokens !== undefined ? tokens + t : undefined;
      return o.text;
    });
    return { completions, completionTokens: tokens };
  }

  /**
   * The completion as it grows, in pieces. SGLang streams the whole text so far in every event by default, and
   * only the new piece with --incremental-streaming-output; an event that does not extend the text so far is
   * taken as a piece.
   */
  async *generateStream(text: string, sampling: SamplingParams, signal?: AbortSignal): AsyncGenerator<string, { completionTokens?: number }> {
    const res = await this.post({ text, sampling_params: sampling, stream: true }, signal);
    if (!res.body) throw new EngineFailed('the inference engine answered without a body');
    const decoder = new TextDecoder();
    let buffered = '';
    let sent = '';
    let completionTokens: number | undefined;
    for await (const chunk of res.body) {
      buffered += decoder.decode(chunk as Uint8Array, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') return { completionTokens };
        let event: { text?: unknown; error?: unknown; meta_info?: { completion_tokens?: unknown } };
        try {
          event = JSON.parse(data) as typeof event;
        } catch {
          throw new EngineFailed(`the inference engine streamed an event that is not JSON: ${data.slice(0, 200)}`);
        }
        if (event.error !== undefined) {
          const e = event.error as { message?: unknown };
          throw new EngineFailed(`the inference engine failed: ${typeof e?.message === 'string' ? e.message : JSON.stringify(event.error)}`);
        }
        if (typeof event.meta_info?.completion_tokens === 'number') completionTokens = event.meta_info.completion_tokens;
        if (typeof event.text !== 'string') continue;
        const piece = event.text.startsWith(sent) ? event.text.slice(sent.length) : event.text;
        sent = event.text.startsWith(sent) ? event.text : sent + event.text;
        if (piece) yield piece;
      }
    }
    return { completionTokens };
  }
}
