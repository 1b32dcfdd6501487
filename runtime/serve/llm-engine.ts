// The in-pod LLM engine where no vLLM or SGLang runs (CPU): `python -m arena_agilerl.llm_engine`, which serves a
// checkpoint of the AgileRL LLM trainer with transformers' own generation over the part of SGLang's native API that
// EngineClient speaks. The server proxies to it exactly as to a real engine, and its /health gates readiness.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'winston';
import { agilerlCommand } from '../trainers/registry.ts';

/** The checkpoint's metadata says it is one of the LLM trainer's (arena_agilerl/llm.py). */
export function isLlmCheckpoint(path: string): boolean {
  const meta = join(path, 'arena-checkpoint.json');
  if (!existsSync(meta)) return false;
  try {
    return (JSON.parse(readFileSync(meta, 'utf8')) as { llm?: unknown }).llm === true;
  } catch {
    return false;
  }
}

export interface LocalLlmEngine {
  /** Where it listens, e.g. http://127.0.0.1:41109. */
  url: string;
  process: ChildProcess;
  stop(): void;
}

const LISTENING = /^arena-llm-engine: listening on (http:\/\/\S+)$/;

/**
 * Starts the engine and resolves once it listens (it answers /health 503 until the model is loaded). `onExit` is
 * called if it ends on its own afterwards, with the last lines it wrote.
 */
export function startLocalLlmEngine(checkpoint: string, opts: { logger: Logger; env?: NodeJS.ProcessEnv; onExit: (reason: string) => void }): Promise<LocalLlmEngine> {
  const command = agilerlCommand(opts.env);
  const child = spawn(command.command, [...command.args.slice(0, -1), 'arena_agilerl.llm_engine', '--checkpoint', checkpoint, '--host', '127.0.0.1', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...(opts.env ?? process.env), ...command.env },
  });
  const tail: string[] = [];
  const keep = (line: string) => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
  };
  let stopping = false;
  return new Promise((resolve, reject) => {
    let listening = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      keep(line);
      const m = LISTENING.exec(line.trim());
      if (m && !listening) {
        listening = true;
        opts.logger.info('LLM engine listening', { engine: m[1], checkpoint });
        resolve({ url: m[1]!, process: child, stop: () => ((stopping = true), child.kill('SIGTERM')) });
      } else if (line.startsWith('arena-llm-engine: loaded')) {
        opts.logger.info('LLM engine loaded the checkpoint', { detail: line.slice('arena-llm-engine: '.length) });
      }
    });
    createInterface({ input: child.stderr! }).on('line', keep);
    child.once('error', (err) => (listening ? opts.onExit(err.message) : reject(err)));
    child.once('exit', (code, signal) => {
      const last = tail.filter((l) => l.trim()).slice(-3).join(' | ');
      const reason = `the LLM engine exited (${signal ?? `code ${code}`})${last ? `: ${last}` : ''}`;
      if (!listening) reject(new Error(reason));
      else if (!stopping) opts.onExit(reason);
    });
  });
}
