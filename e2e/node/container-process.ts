// One container run as a local process: `unshare --mount --uts` gives it private mounts and its own hostname, the
// mount helper sets up its volumes and execs the command in place, so the pid stays the container's. The process
// leads its own process group (setsid), and everything in that group is the container: signals go to the group,
// and when the leader exits the rest of the group is killed, as a container's processes die with its init.
// With setpriv available, the kernel kills the process if the node's Node.js process dies (PR_SET_PDEATHSIG).
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { identify, signalGroup, type ProcIdentity } from './proc.ts';
import { ContainerLogWriter } from './log-file.ts';
import type { LaunchPlan } from './mount-helper.ts';

const helperPath = fileURLToPath(new URL('./mount-helper.ts', import.meta.url));

/** The container could not be started at all (the kubelet's StartError); the message says why. */
export class StartError extends Error {
  override readonly name = 'StartError';
}

export interface Tools {
  unshare: string;
  /** setpriv, for the parent-death signal; without it only the state file protects against orphans. */
  setpriv?: string;
}

export interface StartSpec {
  plan: LaunchPlan;
  /** Where the plan is written for the helper (it holds the environment, so it is 0600 and removed after start). */
  planPath: string;
  logPath: string;
  tools: Tools;
  /** Called as soon as the pid is known, before setup finishes, so a crash of the node cannot orphan it. */
  onSpawn?: (id: ProcIdentity) => void;
}

export interface ExitInfo {
  exitCode: number;
  signal?: number;
  finishedAt: Date;
}

export class ContainerProcess {
  readonly startedAt = new Date();
  /** Resolves once the process has exited, the rest of its group is gone and its log is flushed. */
  readonly exited: Promise<ExitInfo>;
  private done = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly identity: ProcIdentity,
    private readonly log: ContainerLogWriter,
  ) {
    this.exited = new Promise<ExitInfo>((resolve) => {
      let info: ExitInfo | undefined;
      let settled = false;
      const finish = () => {
        if (settled || !info) return;
        settled = true;
        void this.log.close().then(() => {
          this.done = true;
          resolve(info!);
        });
      };
      child.once('exit', (code, signal) => {
        const signum = signal ? constants.signals[signal] : undefined;
        info = { exitCode: code ?? 128 + (signum ?? 0), finishedAt: new Date() };
        if (signum !== undefined) info.signal = signum;
        // The container is over when its first process is: whatever it left running in its group goes too.
        signalGroup(this.identity, 'SIGKILL');
        // A straggler outside the group (it called setsid) may hold the pipes open; do not wait for it forever.
        setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          finish();
        }, 2000).unref();
      });
      child.once('close', finish);
    });
  }

  get pid(): number {
    return this.identity.pid;
  }

  /** True until the process has exited and its log is complete. */
  running(): boolean {
    return !this.done;
  }

  /** Signals every process of the container (its process group). */
  signal(sig: NodeJS.Signals): void {
    signalGroup(this.identity, sig);
  }

  static async start(spec: StartSpec): Promise<ContainerProcess> {
    writeFileSync(spec.planPath, JSON.stringify(spec.plan), { mode: 0o600 });
    const argv = [
      ...(spec.tools.setpriv ? [spec.tools.setpriv, '--pdeathsig', 'KILL', '--'] : []),
      spec.tools.unshare,
      '--mount',
      '--uts',
      '--propagation',
      'private',
      '--',
      process.execPath,
      '--disable-warning=ExperimentalWarning',
      helperPath,
      spec.planPath,
    ];
    const log = new ContainerLogWriter(spec.logPath);
    // The helper gets a bare environment: the container's own (in the plan) must not reach it, nor must this
    // process's NODE_OPTIONS and the like.
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      detached: true,
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    const spawned = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', reject);
    }).catch(async (err: unknown) => {
      await log.close();
      rmSync(spec.planPath, { force: true });
      throw new StartError(`could not start ${argv[0]}: ${(err as Error).message}`);
    });
    child.on('error', () => undefined);
    const id = identify(spawned) ?? { pid: spawned, startTicks: 0 };
    spec.onSpawn?.(id);
    child.stdout!.on('data', (chunk: Buffer) => log.write('stdout', chunk));
    child.stderr!.on('data', (chunk: Buffer) => log.write('stderr', chunk));
    const proc = new ContainerProcess(child, id, log);

    const status = child.stdio[3] as NodeJS.ReadableStream;
    let message = '';
    status.setEncoding('utf8');
    status.on('data', (c: string) => (message += c));
    await new Promise<void>((resolve) => {
      status.once('end', resolve);
      status.once('error', () => resolve());
      status.once('close', () => resolve());
    });
    rmSync(spec.planPath, { force: true });
    if (message) {
      await proc.exited;
      throw new StartError(message.trim());
    }
    return proc;
  }
}
