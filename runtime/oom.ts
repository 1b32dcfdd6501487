// The kernel's own count of out-of-memory kills in this container's memory cgroup, so that a trainer killed by
// SIGKILL can be told apart: the OOM killer (the worker went over its memory limit) or something else (a kill by
// hand, a runtime). A container sees its own cgroup at /sys/fs/cgroup: cgroup v2 counts in memory.events, v1 (kernel
// 4.13 and later) in memory/memory.oom_control; both as a line `oom_kill <n>`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface MemoryCgroup {
  /** OOM kills in the cgroup since it was made; undefined when the counter cannot be read (no cgroup, old kernel). */
  oomKills: number | undefined;
  /** The memory limit in bytes; undefined when there is none (v1 reports a huge number, v2 `max`). */
  limitBytes: number | undefined;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function counter(text: string | undefined, key: string): number | undefined {
  const m = text && new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** What the container's memory cgroup says now; `root` is the cgroup mount (tests pass a folder of their own). */
export function memoryCgroup(root = '/sys/fs/cgroup'): MemoryCgroup {
  const v2 = read(join(root, 'memory.events'));
  if (v2 !== undefined) {
    const max = read(join(root, 'memory.max'))?.trim();
    return { oomKills: counter(v2, 'oom_kill'), limitBytes: max && /^\d+$/.test(max) ? Number(max) : undefined };
  }
  const v1 = read(join(root, 'memory', 'memory.oom_control'));
  const limit = Number(read(join(root, 'memory', 'memory.limit_in_bytes'))?.trim());
  // v1 says "no limit" with the largest page-aligned value of a signed 64-bit number.
  return { oomKills: counter(v1, 'oom_kill'), limitBytes: Number.isFinite(limit) && limit > 0 && limit < 2 ** 62 ? limit : undefined };
}

/** Whether the cgroup's OOM killer struck between two readings. */
export function oomKilledBetween(before: MemoryCgroup, after: MemoryCgroup): boolean {
  return before.oomKills !== undefined && after.oomKills !== undefined && after.oomKills > before.oomKills;
}

/** A memory limit as people write it: 256 MiB, 2 GiB; bytes when it is not a whole number of a unit. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && n % 1024 === 0 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n} ${units[i]}`;
}
