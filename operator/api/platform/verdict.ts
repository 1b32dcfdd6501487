// The Arena platform's own manifest verdict, asked of one long-lived Python process (verdict_server.py) that runs
// the pinned agilerl-arena validator. The operator, its webhook, the runtime and `kubectl arena manifest` all ask
// it, so none of them holds a copy of the platform's rules that could drift from the platform's code.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tooDeep, tooDeepMessage } from '../depth.ts';
import type { FieldError } from '../field-errors.ts';

/** One error as the platform reports it: `field` is the dotted path in the user's document. */
export interface PlatformError extends FieldError {
  /** The platform's own path, union labels included (`environment.gym.num_envs`). */
  platformPath: string;
  /** pydantic's error type (`extra_forbidden`, `greater_than_equal`, `value_error`, ...). */
  kind: string;
}

export type ManifestVerdict =
  | { valid: true; errors: []; payload: Record<string, unknown> }
  | { valid: false; errors: PlatformError[] };

export type YamlVerdict = ManifestVerdict | { unreadable: string };

export interface RegistryEntry {
  name: string;
  spec: string;
  family: 'single-agent' | 'multi-agent' | 'llm';
  envType: string;
  offline: boolean;
  bandit: boolean;
  offPolicy: boolean;
}

export interface PlatformValidatorOptions {
  /** The Python with agilerl-arena installed; default $ARENA_PYTHON, else the project's .venv. */
  python?: string;
  /** How long one answer may take before the process is restarted (default 30 s). */
  timeoutMs?: number;
  /** Verdicts kept for documents already asked about (default 2,048). */
  cacheSize?: number;
}

const HERE = dirname(fileURLToPath(import.meta.url));
const SERVER = join(HERE, 'verdict_server.py');
const REPO_VENV_PYTHON = resolve(HERE, '../../../.venv/bin/python');

export class PlatformValidatorUnavailable extends Error {}

/** The Python to run the platform's validator with, or an error that says how to get one. */
export function resolvePython(explicit?: string): string {
  const candidate = explicit ?? process.env.ARENA_PYTHON ?? REPO_VENV_PYTHON;
  if (!existsSync(candidate)) {
    throw new PlatformValidatorUnavailable(
      `The Arena platform's manifest validator needs a Python with agilerl-arena 1.29.0 installed; ${candidate} does not exist. ` +
        'Run `make setup` in the repository, or set ARENA_PYTHON to such an interpreter (pip install agilerl-arena==1.29.0).',
    );
  }
  return candidate;
}

interface Pending {
  resolve: (reply: Record<string, unknown>) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  /** The process asked: when it ends, only its own requests fail. */
  child: ChildProcessWithoutNullStreams;
}

export class PlatformValidator {
  private child?: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stderrTail = '';
  private readonly cache = new Map<string, ManifestVerdict>();
  private readonly python: string;
  private readonly timeoutMs: number;
  private readonly cacheSize: number;
  private closed = false;

  constructor(options: PlatformValidatorOptions = {}) {
    this.python = resolvePython(options.python);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.cacheSize = options.cacheSize ?? 2048;
  }

  /** The platform's verdict on a manifest already parsed (Experiment.spec.manifest). */
  async verdict(document: unknown): Promise<ManifestVerdict> {
    // Before the cache key and the Python process, both of which recurse: see depth.ts.
    const deep = tooDeep(document);
    if (deep !== undefined) return { valid: false, errors: [{ field: deep, message: tooDeepMessage(), platformPath: deep, kind: 'too_deep' }] };
    const key = stableJson(document);
    const hit = this.cache.get(key);
    if (hit) {
      // Least recently used goes first: re-inserting moves this one to the back.
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const reply = await this.ask({ op: 'verdict', document });
    const result = toVerdict(reply);
    this.cache.set(key, result);
    if (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    return result;
  }

  /** The platform's verdict on a manifest file's text, read as the platform reads files (PyYAML, YAML 1.1). */
  async verdictYaml(text: string): Promise<YamlVerdict> {
    const reply = await this.ask({ op: 'verdict_yaml', text });
    if (reply.unreadable) return { unreadable: String(reply.message) };
    return toVerdict(reply);
  }

  /** The document the platform reads from a manifest file's text. */
  async parseYaml(text: string): Promise<{ document: unknown } | { unreadable: string }> {
    const reply = await this.ask({ op: 'parse_yaml', text });
    return reply.ok ? { document: reply.document } : { unreadable: String(reply.message) };
  }

  /** The platform's training manifest JSON Schema. */
  async schema(): Promise<Record<string, unknown>> {
    return (await this.ask({ op: 'schema' })).schema as Record<string, unknown>;
  }

  /** The platform's algorithm registry. */
  async registry(): Promise<RegistryEntry[]> {
    return (await this.ask({ op: 'registry' })).registry as RegistryEntry[];
  }

  /** The agilerl-arena version answering, and the manifest apiVersion it speaks. */
  async hello(): Promise<{ manifestVersion: string; apiVersion: string }> {
    const reply = await this.ask({ op: 'hello' });
    return { manifestVersion: String(reply.manifestVersion), apiVersion: String(reply.apiVersion) };
  }

  close(): void {
    this.closed = true;
    this.child?.kill();
    this.child = undefined;
  }

  private ask(request: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.closed) return Promise.reject(new PlatformValidatorUnavailable('the platform validator was closed'));
    const child = this.process();
    const id = this.nextId++;
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new PlatformValidatorUnavailable(`the platform validator did not answer within ${this.timeoutMs} ms; restarting it`));
        // The next request starts a fresh process rather than queueing behind the stuck one.
        if (this.child === child) this.child = undefined;
        child.kill();
      }, this.timeoutMs);
      this.pending.set(id, { resolve: resolvePromise, reject, timer, child });
      child.stdin.write(`${JSON.stringify({ ...request, id })}\n`);
    });
  }

  private process(): ChildProcessWithoutNullStreams {
    if (this.child) return this.child;
    const child = spawn(this.python, ['-u', SERVER], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
    this.child = child;
    this.stderrTail = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-2000);
    });
    // Requests written before a failed start fail with the error, not with EPIPE.
    child.stdin.on('error', () => {});
    createInterface({ input: child.stdout }).on('line', (line) => {
      let reply: Record<string, unknown>;
      try {
        reply = JSON.parse(line) as Record<string, unknown>;
      } catch {
        // Answers come in request order, so an unreadable one belongs to this process's oldest request.
        const oldest = [...this.pending].find(([, p]) => p.child === child);
        if (oldest) {
          this.pending.delete(oldest[0]);
          clearTimeout(oldest[1].timer);
          oldest[1].reject(new PlatformValidatorUnavailable(`the platform validator answered with something that is not JSON: ${line.slice(0, 200)}`));
        }
        return;
      }
      const waiting = this.pending.get(Number(reply.id));
      if (!waiting) return;
      this.pending.delete(Number(reply.id));
      clearTimeout(waiting.timer);
      waiting.resolve(reply);
    });
    const fail = (why: string) => {
      if (this.child === child) this.child = undefined;
      const err = new PlatformValidatorUnavailable(`the platform validator (${this.python} ${SERVER}) ${why}${this.stderrTail ? `: ${this.stderrTail.trim()}` : ''}`);
      for (const [id, waiting] of this.pending) {
        if (waiting.child !== child) continue;
        clearTimeout(waiting.timer);
        waiting.reject(err);
        this.pending.delete(id);
      }
    };
    child.on('error', (err) => fail(`could not start (${err.message})`));
    child.on('exit', (code, signal) => fail(`exited (${signal ?? `code ${code}`})`));
    child.unref();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    (child.stderr as unknown as { unref?: () => void }).unref?.();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    return child;
  }
}

function toVerdict(reply: Record<string, unknown>): ManifestVerdict {
  if (reply.ok === true && typeof reply.payload === 'object' && reply.payload !== null) {
    return { valid: true, errors: [], payload: reply.payload as Record<string, unknown> };
  }
  if (!Array.isArray(reply.errors)) throw new PlatformValidatorUnavailable(`the platform validator answered without a verdict: ${String(reply.message ?? JSON.stringify(reply))}`);
  const errors = (reply.errors as Record<string, unknown>[]).map((e): PlatformError => {
    const message = String(e.message ?? '');
    const platformPath = String(e.path ?? '');
    const field = String(e.field ?? platformPath) || fieldFromMessage(message);
    return { field, message: stripPrefix(message), platformPath, kind: String(e.kind ?? '') };
  });
  return { valid: false, errors };
}

// pydantic prefixes a validator's own ValueError; the user needs the sentence, not the exception class.
function stripPrefix(message: string): string {
  return message.replace(/^(Value|Assertion) error, /, '');
}

// Cross-section rules are the manifest's own validators, so pydantic reports them at the document root. Their
// messages name the field; this reads it back so every error points somewhere a user can edit.
const MESSAGE_FIELDS: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/apiVersion/, () => 'apiVersion'],
  [/mutation\.rl_hp_selection cannot mutate '([^']+)'/, (m) => `mutation.rl_hp_selection.${m[1]}`],
  [/^(?:Value error, )?((?:algorithm|environment|training|network|mutation|replay_buffer|tournament_selection|selection_strategy)(?:\.[a-z_0-9]+)+)/, (m) => m[1]!],
  [/network section must (?:not )?declare 'pretrained_model_name_or_path'/, () => 'network.pretrained_model_name_or_path'],
  [/`simba` and `recurrent`/, () => 'network.simba'],
  [/Async rollout requires/, () => 'replay_buffer'],
  [/Required field 'pretrained_model_name_or_path'/, () => 'algorithm.pretrained_model_name_or_path'],
];

export function fieldFromMessage(message: string): string {
  for (const [pattern, field] of MESSAGE_FIELDS) {
    const m = message.match(pattern);
    if (m) return field(m);
  }
  return '';
}

/** JSON with object keys sorted, so the same document always finds its cached verdict. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

let shared: PlatformValidator | undefined;

/** The process-wide validator, started on first use. */
export function platformValidator(): PlatformValidator {
  shared ??= new PlatformValidator();
  return shared;
}

/** Sets the process-wide validator (the operator's --python flag, tests); returns the one it replaced. */
export function setPlatformValidator(validator: PlatformValidator | undefined): PlatformValidator | undefined {
  const previous = shared;
  shared = validator;
  return previous;
}
