// Runs a command inside an unpacked root file system, the way a container runtime would without one: a private
// mount namespace (so /proc, /dev and the bind mounts vanish with the process and nothing is left mounted), chroot,
// an empty environment plus the one given, and optionally the image's user and a read-only root with a tmpfs /tmp,
// as the chart's pods run. Needs root and util-linux's unshare.
import { spawn } from 'node:child_process';

export interface ChrootOptions {
  /** "uid:gid"; absent runs as root. */
  user?: string;
  cwd?: string;
  env?: [string, string][];
  binds?: { host: string; target: string; readOnly?: boolean }[];
  /** Remount the root read-only and put tmpfs on /tmp (a pod with readOnlyRootFilesystem and an emptyDir /tmp). */
  readOnlyRoot?: boolean;
  /** Where the command's output goes; default: collected and returned. */
  stdio?: 'inherit' | 'pipe';
  timeoutMs?: number;
}

export interface ChrootResult {
  code: number;
  stdout: string;
  stderr: string;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function chrootScript(root: string, argv: string[], opts: ChrootOptions = {}): string {
  const lines = ['set -eu', `R=${q(root)}`];
  if (opts.readOnlyRoot) lines.push('mount --bind "$R" "$R"');
  lines.push('mount -t proc proc "$R/proc"', 'mount --rbind /dev "$R/dev"');
  for (const b of opts.binds ?? []) {
    const target = `"$R"${q(b.target)}`;
    lines.push(`mkdir -p ${target}`, `mount --bind ${q(b.host)} ${target}`);
    if (b.readOnly) lines.push(`mount -o remount,bind,ro ${target}`);
  }
  if (opts.readOnlyRoot) lines.push('mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"', 'mount -o remount,bind,ro "$R"');
  const env = (opts.env ?? []).map(([k, v]) => q(`${k}=${v}`)).join(' ');
  const userspec = opts.user ? `--userspec=${q(opts.user)} ` : '';
  // chroot starts in /; the shell moves to the working directory and then becomes the command.
  lines.push(`exec chroot ${userspec}"$R" /usr/bin/env -i ${env} /bin/sh -c 'cd "$0" && exec "$@"' ${q(opts.cwd ?? '/')} ${argv.map(q).join(' ')}`);
  return lines.join('\n');
}

export function runInChroot(root: string, argv: string[], opts: ChrootOptions = {}): Promise<ChrootResult> {
  const child = spawn('unshare', ['--mount', '--propagation', 'private', '--fork', '--', '/bin/sh', '-c', chrootScript(root, argv, opts)], {
    stdio: opts.stdio === 'inherit' ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
  return new Promise((resolve, reject) => {
    child.on('error', (e) =>
      reject(new Error(`unshare: ${e.message} (util-linux's unshare is needed: bash scripts/ensure-image-tools.sh)`)),
    );
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}
