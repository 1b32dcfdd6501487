// Starting and stopping the control plane's processes. Every process is tracked by pid and its command line, so a
// stop ends exactly the processes this harness started, never another one that happens to have the same name.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessRecord {
  name: string;
  pid: number;
  binary: string;
  logFile: string;
}

export interface LaunchOptions {
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * Detached processes outlive the Node process that started them (for `make cluster-up`); attached ones are
   * still stopped by pid, but are also in this process's group so an interrupted test run takes them along.
   */
  detached?: boolean;
}

export function launch(name: string, binary: string, args: string[], opts: LaunchOptions): ProcessRecord {
  const fd = openSync(opts.logFile, 'a');
  try {
    const child = spawn(binary, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', fd, fd],
      detached: opts.detached ?? false,
    });
    if (child.pid === undefined) throw new Error(`${name}: could not start ${binary}`);
    // The harness watches the process through its pid, not through the ChildProcess, so the record is the same
    // whether this Node process started it or a previous one did.
    child.on('error', () => undefined);
    child.unref();
    return { name, pid: child.pid, binary, logFile: opts.logFile };
  } finally {
    closeSync(fd);
  }
}

/** True while the pid is alive and still runs the binary we started (pids are reused). */
export function isRunning(rec: ProcessRecord): boolean {
  try {
    const stat = readFileSync(`/proc/${rec.pid}/stat`, 'utf8');
    // A zombie has exited; its parent has just not reaped it yet.
    if (/\) Z /.test(stat)) return false;
    const cmd = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0')[0];
    return cmd === rec.binary;
  } catch {
    return false;
  }
}

/** Sends SIGTERM, waits up to `graceMs`, then SIGKILL. Resolves once the process is gone. */
export async function stopProcess(rec: ProcessRecord, graceMs = 10_000): Promise<void> {
  if (!isRunning(rec)) return;
  try {
    process.kill(rec.pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isRunning(rec)) return;
    await sleep(50);
  }
  try {
    process.kill(rec.pid, 'SIGKILL');
  } catch {
    return;
  }
  while (isRunning(rec)) await sleep(20);
}

/** Freezes or resumes a process, for tests that need a component to stall without exiting. */
export function signal(rec: ProcessRecord, sig: 'SIGSTOP' | 'SIGCONT' | 'SIGKILL'): void {
  if (isRunning(rec)) process.kill(rec.pid, sig);
}

/** Last lines of a process's log, for error messages that say why a component did not come up. */
export function logTail(rec: ProcessRecord, lines = 20): string {
  try {
    return readFileSync(rec.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
