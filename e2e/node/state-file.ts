// What a local node has running, on disk: its owner (this Node.js process) and every container process it
// started, so that a node whose test process crashed leaves nothing behind for long. The next start on the same
// data directory reaps them, and any start reaps nodes whose owner is gone (found through a registry of data
// directories in the temp directory), like e2e/cluster/control-plane.ts does for clusters.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identify, isAlive, signalGroup, type ProcIdentity } from './proc.ts';

export interface ProcessEntry extends ProcIdentity {
  pod: string;
  container: string;
}

export interface NodeState {
  node: string;
  owner: ProcIdentity;
  processes: Record<string, ProcessEntry>;
}

const registryDir = () => join(tmpdir(), 'arena-local-nodes', 'nodes');
const stateName = 'state.json';

function readState(dataDir: string): NodeState | undefined {
  try {
    return JSON.parse(readFileSync(join(dataDir, stateName), 'utf8')) as NodeState;
  } catch {
    return undefined;
  }
}

/** Kills every recorded process group of a node whose owner is gone; returns how many groups were signalled. */
export function reapNode(dataDir: string): number {
  const state = readState(dataDir);
  if (!state) return 0;
  if (isAlive(state.owner)) return 0;
  let reaped = 0;
  for (const p of Object.values(state.processes)) if (signalGroup(p, 'SIGKILL') > 0) reaped++;
  writeFileSync(join(dataDir, stateName), JSON.stringify({ ...state, processes: {} }, null, 2));
  return reaped;
}

/** Reaps every registered node whose owner is gone, and forgets it. */
export function reapAbandonedNodes(): number {
  let reaped = 0;
  let entries: string[];
  try {
    entries = readdirSync(registryDir());
  } catch {
    return 0;
  }
  for (const entry of entries.filter((e) => e.endsWith('.json'))) {
    const file = join(registryDir(), entry);
    try {
      const { dataDir } = JSON.parse(readFileSync(file, 'utf8')) as { dataDir: string };
      const state = readState(dataDir);
      if (state && isAlive(state.owner)) continue;
      reaped += reapNode(dataDir);
      rmSync(file, { force: true });
    } catch {
      rmSync(file, { force: true });
    }
  }
  return reaped;
}

export class NodeStateFile {
  private state: NodeState;
  private readonly registryEntry: string;

  /** Claims `dataDir` for this process, reaping what an earlier owner left; refuses a directory in use. */
  constructor(
    readonly dataDir: string,
    node: string,
  ) {
    const previous = readState(dataDir);
    if (previous && isAlive(previous.owner) && previous.owner.pid !== process.pid) {
      throw new Error(`data directory ${dataDir} is in use by the local node of process ${previous.owner.pid}`);
    }
    if (previous) reapNode(dataDir);
    // Same process, earlier node on this directory that was not stopped: its processes go too.
    if (previous && previous.owner.pid === process.pid) {
      for (const p of Object.values(previous.processes)) signalGroup(p, 'SIGKILL');
    }
    const owner = identify(process.pid) ?? { pid: process.pid, startTicks: 0 };
    this.state = { node, owner, processes: {} };
    mkdirSync(dataDir, { recursive: true });
    this.save();
    mkdirSync(registryDir(), { recursive: true });
    this.registryEntry = join(registryDir(), `${createHash('sha256').update(dataDir).digest('hex').slice(0, 16)}.json`);
    writeFileSync(this.registryEntry, JSON.stringify({ dataDir }));
  }

  add(id: string, entry: ProcessEntry): void {
    this.state.processes[id] = entry;
    this.save();
  }

  remove(id: string): void {
    if (!(id in this.state.processes)) return;
    delete this.state.processes[id];
    this.save();
  }

  /** After a clean stop: nothing is left to reap. */
  release(): void {
    this.state.processes = {};
    this.save();
    rmSync(this.registryEntry, { force: true });
  }

  private save(): void {
    const file = join(this.dataDir, stateName);
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.state, null, 2));
    renameSync(tmp, file);
  }
}
