// What /proc says about a process: enough to tell "our" pid from a recycled one and to find every member of a
// container's process group, so a stop or a reap signals exactly the processes the local node started.
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** Clock ticks since boot when the process started: with the pid, a unique identity. */
  startTicks: number;
}

/** A process as recorded when it was started. */
export interface ProcIdentity {
  pid: number;
  startTicks: number;
}

/** Parses /proc/<pid>/stat; undefined when the process is gone. */
export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return parseStat(pid, text);
}

export function parseStat(pid: number, text: string): ProcStat | undefined {
  // The command name sits in parentheses and may itself contain spaces and parentheses; fields follow the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = text.slice(close + 2).split(' ');
  const num = (i: number) => Number(f[i]);
  if (f.length < 20) return undefined;
  return { pid, state: f[0]!, ppid: num(1), pgrp: num(2), session: num(3), startTicks: num(19) };
}

/** The identity of a live process, for recording it. */
export function identify(pid: number): ProcIdentity | undefined {
  const st = readStat(pid);
  return st ? { pid, startTicks: st.startTicks } : undefined;
}

/** True while that very process (not a later one with its pid) runs; a zombie has already exited. */
export function isAlive(id: ProcIdentity): boolean {
  const st = readStat(id.pid);
  return st !== undefined && st.startTicks === id.startTicks && st.state !== 'Z';
}

/** Live processes whose process group is `pgid` and that started no earlier than the group's leader. */
export function groupMembers(pgid: number, notBeforeTicks: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const st = readStat(pid);
    if (st && st.pgrp === pgid && st.state !== 'Z' && st.startTicks >= notBeforeTicks) members.push(pid);
  }
  return members;
}

/**
 * Signals the process group led by `leader`. While the leader lives, its pid is the group id. Once it is gone
 * the kernel does not hand that id out again while any member is left, so the remaining members (started after
 * the leader) are still ours. Returns how many processes were signalled.
 */
export function signalGroup(leader: ProcIdentity, signal: NodeJS.Signals): number {
  const st = readStat(leader.pid);
  if (st && st.startTicks !== leader.startTicks) return 0; // the pid now belongs to an unrelated process
  const members = groupMembers(leader.pid, leader.startTicks);
  if (members.length === 0) return 0;
  try {
    process.kill(-leader.pid, signal);
    return members.length;
  } catch {
    return 0;
  }
}
