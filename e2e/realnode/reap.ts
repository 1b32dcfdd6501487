// Undoing a real node from its slot record alone: at its own stop, and for a node whose test process died (a
// crash, a killed CI step), which the next real node's start or the next cluster's start finds by its stale slot.
// Separate from real-node.ts so the control plane's reaper can call it without importing the node.
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { identify } from '../node/proc.ts';
import { containerIds, hostLeftovers, killNodeProcesses, sharedKubeletSocket, podNetnsFiles, removeCgroups, unmountAll } from './cleanup.ts';
import { cniNetworkName, paths } from './config.ts';
import { deleteNetns, netnsPath } from './netns.ts';
import { liveSlots, readSlot, releaseSlot, staleSlots, type SlotRecord } from './slots.ts';

/**
 * Everything a node leaves, from its slot record alone (a crashed owner's node included). Every step runs even
 * when an earlier one fails, so one stuck mount does not leave processes and namespaces too; the errors are
 * reported together.
 */
export async function undo(record: SlotRecord): Promise<void> {
  const p = paths(record.dir);
  const errors: string[] = [];
  const step = async (what: string, f: () => Promise<void> | void) => {
    try {
      await f();
    } catch (err) {
      errors.push(`${what}: ${(err as Error).message}`);
    }
  };
  const netnsFiles = [netnsPath(record.netns), ...podNetnsFiles(p.containerdState)];
  const ids = containerIds(p.containerdRoot, p.containerdState);
  await step('processes', () => killNodeProcesses({ netnsFiles, containerdSocket: p.containerdSocket, cgroupRoot: record.cgroupRoot }));
  // The forwarder of a node whose owner died: in the machine's namespace, known only by its recorded pid.
  for (const id of record.pids ?? []) {
    const now = identify(id.pid);
    if (now && now.startTicks === id.startTicks) {
      try {
        process.kill(id.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  await step('files outside the node folder', () => {
    for (const f of hostLeftovers({ dir: record.dir, containerdSocket: p.containerdSocket, network: cniNetworkName(record.slot), ids })) {
      rmSync(f, { force: true });
    }
  });
  await step('mounts', () => unmountAll(record.dir));
  await step('network namespace', () => deleteNetns(record));
  await step('cgroups', async () => {
    for (let i = 0; ; i++) {
      try {
        removeCgroups(record.cgroupRoot);
        return;
      } catch (err) {
        // A killed task leaves its cgroup a moment after it is reaped.
        if (i >= 30) throw err;
        await sleep(100);
      }
    }
  });
  if (errors.length === 0) rmSync(record.dir, { recursive: true, force: true });
  else throw new Error(`stopping real node ${record.nodeName} left things behind:\n  ${errors.join('\n  ')}`);
}

/** Undoes every node whose owner is gone; before a cluster folder holding one is removed, or a new node starts. */
export async function reapAbandonedRealNodes(onReap: (record: SlotRecord) => void = () => undefined): Promise<void> {
  for (const { slot, record } of staleSlots()) {
    onReap(record);
    await undo(record);
    releaseSlot(slot, record.dir);
  }
  removeSharedKubeletSocket();
}

/**
 * Undoes the live nodes whose folder is under `dir`: a cluster stopped before its nodes takes them along, as a
 * machine's nodes go with its control plane's folder. A RealNode's own stop() afterwards finds nothing left.
 */
export async function undoRealNodesUnder(dir: string): Promise<void> {
  for (const slot of liveSlots()) {
    const record = readSlot(slot);
    if (!record?.dir.startsWith(`${dir}/`)) continue;
    await undo(record);
    releaseAndTidy(slot, record.dir);
  }
}

/**
 * Gives the slot back, then removes the kubelets' shared device-plugin socket if no real node is left. Each
 * node releases before it looks, so of nodes stopping at once the last one always finds none left.
 */
export function releaseAndTidy(slot: number, nodeDir: string): void {
  releaseSlot(slot, nodeDir);
  removeSharedKubeletSocket();
}

function removeSharedKubeletSocket(): void {
  const sock = sharedKubeletSocket(liveSlots().length > 0);
  if (sock) rmSync(sock, { force: true });
}
