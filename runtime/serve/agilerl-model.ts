// get_action for checkpoints of the AgileRL trainer (runtime/trainers/agilerl): a Python process
// (`python -m arena_agilerl.serve`) loads the agent with AgileRL's own `load` and answers with its own `get_action`
// in evaluation mode, so every algorithm that trainer runs (DQN, Rainbow DQN, PPO incl. recurrent, DDPG, TD3) is
// served by the code that trained it. This side checks shapes against the spaces the process reports, so that bad
// input answers 400 without a round trip, and frames arrays raw over the pipes (serve.py describes the framing).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'winston';
import { resolvePython } from '../../operator/api/platform/verdict.ts';
import { formatBytes, memoryCgroup, oomKilledBetween, type MemoryCgroup } from '../oom.ts';
import { NdArray, formatShape, type NpyData, type NpyDtype } from '../npy/npy.ts';
import { childPath, isNdArray, isTreeDict, type NpyTree } from '../npy/tree.ts';
import { badRequest } from './errors.ts';
import type { ActionModel, ActionRequest, ActionResult, AgentInfo } from './models.ts';

export const AGILERL_METADATA = 'arena-checkpoint.json';
const TRAINER_ROOT = fileURLToPath(new URL('../trainers/agilerl/', import.meta.url));

/** A gymnasium space as serve.py describes it. */
export type SpaceSpec =
  | { type: 'Box'; shape: number[]; dtype: string }
  | { type: 'Discrete'; n: number; start: number }
  | { type: 'MultiDiscrete'; shape: number[]; nvec: number[] }
  | { type: 'MultiBinary'; shape: number[] }
  | { type: 'Dict'; spaces: Record<string, SpaceSpec> }
  | { type: 'Tuple'; spaces: SpaceSpec[] }
  | { type: string };

export interface AgileRlModelInfo {
  algo: string;
  recurrent: boolean;
  /** MADDPG, MATD3, IPPO: obs and action are objects keyed by agent id, and the spaces are Dicts keyed by it. */
  multi_agent?: boolean;
  agent_ids?: string[];
  description: string;
  observation_space: SpaceSpec;
  action_space: SpaceSpec;
  /** Columns of the action mask AgileRL takes; null where the algorithm or action space takes none. */
  action_mask_width: number | null;
  /** Multi-agent: each masked agent's mask columns (agents with Discrete or MultiDiscrete actions). */
  action_mask_widths?: Record<string, number>;
  /** Recurrent models: each hidden-state array at batch size 1, and which axis is the batch axis (AgileRL's layout). */
  hidden_state: Record<string, { shape: number[]; batch_axis: number; dtype: string }> | null;
  device: string;
}

export interface AgileRlModelOptions {
  /** Default: resolvePython() (ARENA_PYTHON, else the repository's .venv). */
  python?: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Called once when the process ends for any reason other than close(): a load failure or a crash. */
  onExit?: (reason: string) => void;
  /** The container's memory cgroup, read at spawn and at a SIGKILL to tell the OOM killer apart; default oom.ts. */
  memory?: () => MemoryCgroup;
}

/**
 * Why `location` is not what the AgileRL trainer writes (a checkpoint folder with arena-checkpoint.json, a folder of
 * AgileRL .pt files, or one .pt file), or undefined when it is. Checked before the model process starts, so that a
 * wrong path is refused at once rather than after AgileRL's import.
 */
export function notAgileRlCheckpoint(location: string): string | undefined {
  let st;
  try {
    st = statSync(location);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : `it cannot be read (${(err as Error).message})`;
  }
  if (st.isFile()) return location.endsWith('.pt') ? undefined : 'it is a file whose name does not end in .pt';
  if (!st.isDirectory()) return 'it is neither a file nor a folder';
  try {
    if (existsSync(join(location, AGILERL_METADATA)) || readdirSync(location).some((f) => f.endsWith('.pt'))) return undefined;
  } catch (err) {
    return `the folder cannot be read (${(err as Error).message})`;
  }
  return `the folder holds no ${AGILERL_METADATA} and no .pt file`;
}

export const isAgileRlCheckpoint = (location: string): boolean => notAgileRlCheckpoint(location) === undefined;

/** What arena-checkpoint.json says before the process has loaded anything (for /status while it loads). */
function metadataAlgorithm(location: string): string | undefined {
  try {
    const meta = JSON.parse(readFileSync(join(location, AGILERL_METADATA), 'utf8')) as { algorithm?: unknown };
    return typeof meta.algorithm === 'string' ? meta.algorithm : undefined;
  } catch {
    return undefined;
  }
}

const TYPED: Record<NpyDtype, { size: number; make: (b: ArrayBuffer) => NpyData }> = {
  f4: { size: 4, make: (b) => new Float32Array(b) },
  f8: { size: 8, make: (b) => new Float64Array(b) },
  i1: { size: 1, make: (b) => new Int8Array(b) },
  i2: { size: 2, make: (b) => new Int16Array(b) },
  i4: { size: 4, make: (b) => new Int32Array(b) },
  i8: { size: 8, make: (b) => new BigInt64Array(b) },
  u1: { size: 1, make: (b) => new Uint8Array(b) },
  u2: { size: 2, make: (b) => new Uint16Array(b) },
  u4: { size: 4, make: (b) => new Uint32Array(b) },
  u8: { size: 8, make: (b) => new BigUint64Array(b) },
  b1: { size: 1, make: (b) => new Uint8Array(b) },
};

type Leaf = { $a: [NpyDtype, number[], number] };
type WireNode = Leaf | WireNode[] | { [k: string]: WireNode } | null;

function encodeNode(tree: NpyTree | undefined, chunks: Uint8Array[], offset: { n: number }): WireNode {
  if (tree == null) return null;
  if (isNdArray(tree)) {
    // Typed arrays are in the host's byte order; serve.py reads little-endian, which is every host this runs on.
    const bytes = new Uint8Array(tree.data.buffer, tree.data.byteOffset, tree.data.byteLength);
    const leaf: Leaf = { $a: [tree.dtype, [...tree.shape], offset.n] };
    chunks.push(bytes);
    offset.n += bytes.byteLength;
    return leaf;
  }
  if (Array.isArray(tree)) return tree.map((t: NpyTree) => encodeNode(t, chunks, offset));
  const out: Record<string, WireNode> = {};
  for (const [k, v] of Object.entries(tree)) out[k] = encodeNode(v, chunks, offset);
  return out;
}

function decodeNode(node: unknown, payload: Buffer): NpyTree {
  if (node === null || node === undefined) return null;
  if (Array.isArray(node)) return node.map((n) => decodeNode(n, payload));
  const obj = node as Record<string, unknown>;
  if (Array.isArray(obj.$a)) {
    const [dtype, shape, off] = obj.$a as Leaf['$a'];
    const info = TYPED[dtype];
    const count = shape.reduce((a, b) => a * b, 1);
    // A fresh buffer: a slice of the pipe's buffer need not be aligned for the typed array.
    const ab = new ArrayBuffer(count * info.size);
    new Uint8Array(ab).set(payload.subarray(off, off + count * info.size));
    return new NdArray(dtype, shape, info.make(ab));
  }
  const out: Record<string, NpyTree> = {};
  for (const [k, v] of Object.entries(obj)) out[k] = decodeNode(v, payload);
  return out;
}

function frame(header: unknown, chunks: Uint8Array[] = []): Buffer {
  const head = Buffer.from(JSON.stringify(header));
  const bodyLen = chunks.reduce((a, c) => a + c.byteLength, 0);
  const out = Buffer.allocUnsafe(8 + head.length + bodyLen);
  out.writeUInt32LE(head.length, 0);
  out.writeUInt32LE(bodyLen, 4);
  head.copy(out, 8);
  let at = 8 + head.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function describe(tree: NpyTree | undefined): string {
  if (tree == null) return 'null';
  if (Array.isArray(tree)) return `a tuple of ${tree.length}`;
  if (isTreeDict(tree)) return `an object keyed by ${Object.keys(tree).slice(0, 3).map((k) => JSON.stringify(k)).join(', ') || 'nothing'}`;
  return 'an array';
}

const batchShape = (shape: readonly number[]) => (shape.length === 0 ? '()' : formatShape(['N', ...shape.slice(1)]));
const isInteger = (dtype: NpyDtype) => dtype[0] === 'i' || dtype[0] === 'u';

/** Throws badRequest naming the field where `tree` cannot be an observation of `space` with `n` rows. */
export function checkObservation(tree: NpyTree | undefined, space: SpaceSpec, field: string, n: number): void {
  if (space.type === 'Dict' && 'spaces' in space && !Array.isArray(space.spaces)) {
    const keys = Object.keys(space.spaces);
    if (!isTreeDict(tree)) throw badRequest(field, `expected an object keyed by ${keys.map((k) => JSON.stringify(k)).join(', ')}, got ${describe(tree)}`);
    const got = Object.keys(tree);
    const missing = keys.filter((k) => !(k in tree));
    const extra = got.filter((k) => !keys.includes(k));
    if (missing.length) throw badRequest(childPath(field, missing[0]!), 'required');
    if (extra.length) throw badRequest(childPath(field, extra[0]!), `not a key of this model's observation space (${keys.join(', ')})`);
    for (const k of keys) checkObservation(tree[k], space.spaces[k]!, childPath(field, k), n);
    return;
  }
  if (space.type === 'Tuple' && 'spaces' in space && Array.isArray(space.spaces)) {
    if (!Array.isArray(tree) || tree.length !== space.spaces.length) throw badRequest(field, `expected a tuple of ${space.spaces.length} arrays, got ${describe(tree)}`);
    space.spaces.forEach((s, i) => checkObservation((tree as readonly NpyTree[])[i], s, childPath(field, i), n));
    return;
  }
  if (!isNdArray(tree)) throw badRequest(field, `expected one array, got ${describe(tree)}`);
  const inner = 'shape' in space ? space.shape : [];
  const want = [n, ...inner];
  if (tree.ndim !== want.length || tree.shape.some((d, i) => d !== want[i])) throw badRequest(field, `expected shape ${batchShape(want)}, got ${batchShape(tree.shape)}`);
  if (space.type === 'Discrete' && !isInteger(tree.dtype)) throw badRequest(field, `expected integers (a Discrete(${(space as { n: number }).n}) observation), got dtype ${tree.dtype}`);
  if (space.type === 'Box' && tree.dtype === 'b1' && (space as { dtype: string }).dtype !== 'bool') throw badRequest(field, 'expected a numeric array, got booleans');
}

/** Throws badRequest unless `mask` is one (N, width) array that allows at least one action in every row. */
export function checkActionMask(mask: NpyTree, width: number, n: number): asserts mask is NdArray {
  if (!isNdArray(mask)) throw badRequest('action_mask', `expected one array of shape (N, ${width}), got ${describe(mask)}`);
  if (mask.ndim !== 2 || mask.shape[1] !== width) throw badRequest('action_mask', `expected shape (N, ${width}), got ${batchShape(mask.shape)}`);
  for (let k = 0; k < n; k++) {
    let any = false;
    for (let a = 0; a < width && !any; a++) any = mask.number(k * width + a) !== 0;
    if (!any) throw badRequest('action_mask', `row ${k} allows no action`);
  }
}

/** Multi-agent masks: an object keyed by agent id, each agent's own (N, width) mask, for agents whose actions take one. */
export function checkAgentMasks(masks: NpyTree | undefined, info: AgileRlModelInfo, n: number): void {
  if (masks == null) return;
  const widths = info.action_mask_widths ?? {};
  const ids = info.agent_ids ?? [];
  if (!isTreeDict(masks)) throw badRequest('action_mask', `expected an object keyed by agent id (${ids.join(', ')}), got ${describe(masks)}`);
  for (const [agent, mask] of Object.entries(masks)) {
    const field = childPath('action_mask', agent);
    if (!ids.includes(agent)) throw badRequest(field, `not an agent of this model (${ids.join(', ')})`);
    const width = widths[agent];
    if (width === undefined) throw badRequest(field, `${info.algo}'s agent ${agent} has an action space that takes no action mask`);
    try {
      checkActionMask(mask, width, n);
    } catch (err) {
      // The same checks as one agent's mask, named by the agent's own field.
      throw badRequest(field, (err as Error).message.replace(/^action_mask:\s*/, ''));
    }
  }
}

export class AgileRlActionModel implements ActionModel {
  /** /status's agent: the algorithm from arena-checkpoint.json until the process reports, then from the agent itself. */
  readonly agent: AgentInfo;
  /** Resolves once the agent is loaded; rejects with the reason it cannot be. */
  readonly ready: Promise<AgileRlModelInfo>;
  info?: AgileRlModelInfo;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<number, { resolve: (r: { header: Record<string, unknown>; payload: Buffer }) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private buffered: Buffer = Buffer.alloc(0);
  private readonly stderrTail: string[] = [];
  private closing = false;
  private ended?: string;
  private markReady!: (info: AgileRlModelInfo) => void;
  private markFailed!: (err: Error) => void;

  private constructor(
    readonly checkpoint: string,
    private readonly opts: AgileRlModelOptions,
  ) {
    this.agent = { algo: metadataAlgorithm(checkpoint) ?? 'AgileRL', multi_agent: false, llm: false, recurrent: false, supervised: false };
    this.ready = new Promise<AgileRlModelInfo>((resolve, reject) => {
      this.markReady = resolve;
      this.markFailed = reject;
    });
    // Requests await it too; without a listener, a load failure would be an unhandled rejection.
    this.ready.catch(() => undefined);
    let python: string;
    try {
      python = resolvePython(opts.python);
    } catch {
      throw new Error(`serving an AgileRL checkpoint needs a Python with agilerl installed: set ARENA_PYTHON, or run \`make setup\` for the repository's .venv`);
    }
    const env = { ...process.env, ...opts.env };
    env.PYTHONPATH = [TRAINER_ROOT, env.PYTHONPATH].filter(Boolean).join(':');
    const memory = opts.memory ?? (() => memoryCgroup());
    const memoryAtStart = memory();
    this.child = spawn(python, ['-m', 'arena_agilerl.serve', '--checkpoint', checkpoint], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    (this.child.stderr as unknown as Socket).unref();
    void this.ready.then(
      () => this.keepAlive(false),
      () => undefined,
    );
    this.child.stdout.on('data', (d: Buffer) => this.onData(d));
    this.child.stderr.setEncoding('utf8');
    let partial = '';
    this.child.stderr.on('data', (d: string) => {
      const lines = (partial + d).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        this.stderrTail.push(line);
        if (this.stderrTail.length > 20) this.stderrTail.shift();
        opts.logger?.debug('model process', { line });
      }
    });
    // An EPIPE after the process died is reported by the exit handler with the reason.
    this.child.stdin.on('error', () => undefined);
    this.child.on('error', (err) => this.onEnd(`the model process cannot run: ${err.message}`));
    this.child.on('exit', (code, signal) => {
      const now = signal === 'SIGKILL' ? memory() : undefined;
      if (now && oomKilledBetween(memoryAtStart, now)) {
        // Loading torch and AgileRL alone takes about 1 GB: a pod limit below that kills every load, silently.
        const limit = now.limitBytes ? ` of ${formatBytes(now.limitBytes)}` : '';
        this.onEnd(`the model process was killed by the kernel's out-of-memory killer: the pod went over its memory limit${limit}; raise the Deployment's spec.resources.memory`);
        return;
      }
      const last = this.stderrTail.filter((l) => l.trim()).at(-1);
      this.onEnd(`the model process ended (${signal ?? `exit ${code}`})${last ? `: ${last}` : ''}`);
    });
  }

  /**
   * The serve process ends once its HTTP server has closed (cli.ts leaves that to the event loop), so the model
   * process holds it open only while a load or a request waits on it. Its stdin closes with this process, and
   * serve.py ends on that EOF.
   */
  private keepAlive(on: boolean): void {
    for (const handle of [this.child, this.child.stdin as unknown as Socket, this.child.stdout as unknown as Socket]) {
      if (on) handle.ref();
      else handle.unref();
    }
  }

  /** Starts the model process for a checkpoint folder or .pt file; `ready` says when (or whether) it has loaded. */
  static start(checkpoint: string, opts: AgileRlModelOptions = {}): AgileRlActionModel {
    return new AgileRlActionModel(checkpoint, opts);
  }

  get description(): string {
    return this.info ? `AgileRL ${this.info.description}` : `AgileRL checkpoint ${this.checkpoint} (loading)`;
  }

  private onEnd(reason: string): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
    const err = new Error(reason);
    this.markFailed(err);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    if (!this.closing) this.opts.onExit?.(reason);
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    while (this.buffered.length >= 8) {
      const headLen = this.buffered.readUInt32LE(0);
      const bodyLen = this.buffered.readUInt32LE(4);
      const total = 8 + headLen + bodyLen;
      if (this.buffered.length < total) return;
      const header = JSON.parse(this.buffered.toString('utf8', 8, 8 + headLen)) as Record<string, unknown>;
      const payload = this.buffered.subarray(8 + headLen, total);
      this.buffered = this.buffered.subarray(total);
      this.onFrame(header, payload);
    }
  }

  private onFrame(header: Record<string, unknown>, payload: Buffer): void {
    if (header.ready) {
      const info = header.ready as AgileRlModelInfo;
      this.info = info;
      this.agent.algo = info.algo;
      this.agent.recurrent = info.recurrent;
      this.agent.multi_agent = info.multi_agent === true;
      this.markReady(info);
      return;
    }
    if (typeof header.fatal === 'string') {
      // The exit follows; the reason is the process's own, not its last stderr line.
      this.onEnd(header.fatal);
      return;
    }
    const p = this.pending.get(header.id as number);
    if (!p) return;
    this.pending.delete(header.id as number);
    if (this.pending.size === 0) this.keepAlive(false);
    p.resolve({ header, payload });
  }

  private check(req: ActionRequest, info: AgileRlModelInfo): void {
    const n = req.batchSize;
    checkObservation(req.obs, info.observation_space, 'obs', n);
    if (info.multi_agent) {
      checkAgentMasks(req.actionMask, info, n);
      return;
    }
    if (req.actionMask != null) {
      if (info.action_mask_width === null) throw badRequest('action_mask', `${info.algo} with this action space takes no action mask`);
      checkActionMask(req.actionMask, info.action_mask_width, n);
    }
    if (info.recurrent && info.hidden_state && req.hiddenState != null) {
      const spec = info.hidden_state;
      const h = req.hiddenState;
      const keys = Object.keys(spec);
      if (!isTreeDict(h)) throw badRequest('hidden_state', `expected an object keyed by ${keys.map((k) => JSON.stringify(k)).join(', ')} (or null), got ${describe(h)}`);
      for (const k of keys) {
        const a = h[k];
        const want = [...spec[k]!.shape];
        want[spec[k]!.batch_axis] = n;
        if (!isNdArray(a)) throw badRequest(childPath('hidden_state', k), `expected an array of shape ${formatShape(want)}, got ${describe(a)}`);
        if (a.ndim !== want.length || a.shape.some((d, i) => d !== want[i])) throw badRequest(childPath('hidden_state', k), `expected shape ${formatShape(want)}, got ${formatShape(a.shape)}`);
      }
      const extra = Object.keys(h).find((k) => !(k in spec));
      if (extra !== undefined) throw badRequest(childPath('hidden_state', extra), `not a hidden-state key of this model (${keys.join(', ')})`);
    }
  }

  async getAction(req: ActionRequest): Promise<ActionResult> {
    const info = this.info ?? (await this.ready);
    this.check(req, info);
    if (this.ended !== undefined) throw new Error(this.ended);
    const id = this.nextId++;
    const chunks: Uint8Array[] = [];
    const offset = { n: 0 };
    const header = {
      id,
      n: req.batchSize,
      obs: encodeNode(req.obs, chunks, offset),
      action_mask: encodeNode(req.actionMask, chunks, offset),
      hidden_state: info.recurrent ? encodeNode(req.hiddenState, chunks, offset) : null,
      // AgileRL's multi-agent get_action takes them through the per-agent infos; serve.py checks them.
      env_defined_actions: info.multi_agent ? encodeNode(req.envDefinedActions, chunks, offset) : null,
    };
    const reply = await new Promise<{ header: Record<string, unknown>; payload: Buffer }>((resolve, reject) => {
      if (this.pending.size === 0) this.keepAlive(true);
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(frame(header, chunks));
    });
    const error = reply.header.error as { field: string | null; message: string } | undefined;
    if (error) {
      if (error.field) throw badRequest(error.field, error.message);
      throw new Error(`the model's get_action failed: ${error.message}`);
    }
    const action = decodeNode(reply.header.action, reply.payload);
    return reply.header.hidden_state !== undefined ? { action, hiddenState: decodeNode(reply.header.hidden_state, reply.payload) } : { action };
  }

  /** Ends the process: stdin closes, and whatever is still running after `graceMs` is killed. */
  async close(graceMs = 5000): Promise<void> {
    this.closing = true;
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
