// The address plan of real nodes. Every node on this machine, of any cluster, takes one slot 0..254, claimed
// machine-wide with a file created O_EXCL that records the owning process (as e2e/node/ip-pool.ts claims pod IPs).
// A slot fixes every address the node uses, all in private ranges this machine does not route anywhere:
//
//   10.201.<slot>.1/30   host end of the node's veth: the API server forwarder listens here
//   10.201.<slot>.2/30   the node's own address (InternalIP) inside its network namespace
//   10.202.<slot>.0/24   the node's pod network: the bridge in the node's namespace, gateway .1
//
// Service ClusterIPs (the cluster's 10.96.0.0/16) exist only in kube-proxy's rules inside each node's namespace,
// so two clusters use the same range without meeting.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { identify, isAlive, type ProcIdentity } from '../node/proc.ts';

export const slotCount = 255;

export interface NodeAddresses {
  slot: number;
  /** The veth's end in the machine's own namespace. */
  hostIp: string;
  /** The node's InternalIP, on the veth's end inside the node's namespace. */
  nodeIp: string;
  linkPrefix: number;
  podCidr: string;
  podGateway: string;
}

export function addressesFor(slot: number): NodeAddresses {
  if (!Number.isInteger(slot) || slot < 0 || slot >= slotCount) throw new Error(`slot ${slot} is outside 0..${slotCount - 1}`);
  return {
    slot,
    hostIp: `10.201.${slot}.1`,
    nodeIp: `10.201.${slot}.2`,
    linkPrefix: 30,
    podCidr: `10.202.${slot}.0/24`,
    podGateway: `10.202.${slot}.1`,
  };
}

/** What a slot's claim file records: enough for a later start to undo a node whose owner died. */
export interface SlotRecord {
  owner: ProcIdentity;
  slot: number;
  nodeName: string;
  dir: string;
  netns: string;
  hostVeth: string;
  cgroupRoot: string;
  /** The node's processes once started (the forwarder, in the machine's namespace, is found only this way). */
  pids?: ProcIdentity[];
}

export function slotsDir(): string {
  return join(process.env.ARENA_REAL_NODES_DIR ?? join(tmpdir(), 'arena-real-nodes'), 'slots');
}

function readRecord(file: string): SlotRecord | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SlotRecord;
  } catch {
    return undefined;
  }
}

/**
 * Claims the first free slot. `describe` gives the record for a slot number (names derive from it). A slot held
 * by a dead process is handed to `reclaim` first, which must undo what that node left (netns, mounts, processes).
 */
export async function claimSlot(
  describe: (slot: number) => Omit<SlotRecord, 'owner' | 'slot'>,
  reclaim: (stale: SlotRecord) => Promise<void>,
  dir = slotsDir(),
): Promise<{ slot: number; record: SlotRecord }> {
  mkdirSync(dir, { recursive: true });
  const owner = identify(process.pid) ?? { pid: process.pid, startTicks: 0 };
  for (let slot = 0; slot < slotCount; slot++) {
    const file = join(dir, String(slot));
    const record: SlotRecord = { owner, slot, ...describe(slot) };
    const text = JSON.stringify(record);
    try {
      writeFileSync(file, text, { flag: 'wx' });
      return { slot, record };
    } catch {
      // taken, by a live process or a dead one
    }
    const holder = readRecord(file);
    if (holder && isAlive(holder.owner)) continue;
    if (holder) await reclaim(holder);
    // Two starts may race for the same stale slot; the one whose record reads back wins.
    writeFileSync(file, text);
    if (readFileSync(file, 'utf8') === text) return { slot, record };
  }
  throw new Error(`all ${slotCount} real-node slots in ${dir} are held by live processes`);
}

/**
 * Gives a slot back, if it is still the one of the node in `nodeDir`: a node undone earlier (its cluster stopped
 * first) must not release the slot a newer node has claimed since.
 */
export function releaseSlot(slot: number, nodeDir: string, dir = slotsDir()): void {
  const file = join(dir, String(slot));
  const record = readRecord(file);
  if (record === undefined || record.dir === nodeDir) rmSync(file, { force: true });
}

/** Slots whose owner is gone: what a crashed test run left behind. */
export function staleSlots(dir = slotsDir()): { slot: number; record: SlotRecord }[] {
  const out: { slot: number; record: SlotRecord }[] = [];
  for (let slot = 0; slot < slotCount; slot++) {
    const record = readRecord(join(dir, String(slot)));
    if (record && !isAlive(record.owner)) out.push({ slot, record });
  }
  return out;
}

/** What a slot's file records, if it is held. */
export function readSlot(slot: number, dir = slotsDir()): SlotRecord | undefined {
  return readRecord(join(dir, String(slot)));
}

/** Slots held by live processes. */
export function liveSlots(dir = slotsDir()): number[] {
  const out: number[] = [];
  for (let slot = 0; slot < slotCount; slot++) {
    const record = readRecord(join(dir, String(slot)));
    if (record && isAlive(record.owner)) out.push(slot);
  }
  return out;
}
