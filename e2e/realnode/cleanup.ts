// Undoing a node: what its processes mounted, the processes themselves (containers included, which outlive
// containerd in their shims) and its cgroups. Each sweep is bounded by something only this node has (its folder,
// its network namespaces, its cgroup root), so it never touches another node's or the machine's own things.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { netnsId, processNetns } from './netns.ts';

const run = promisify(execFile);

/** Mount points at or below `dir`, deepest first (mountinfo escapes spaces and the like as octal). */
export function mountsUnder(dir: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(prefix));
  return [...new Set(points)].sort((x, y) => y.length - x.length);
}

export async function unmountAll(dir: string): Promise<void> {
  for (let pass = 0; pass < 3; pass++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return;
    for (const p of points) {
      // A lazy unmount on the last pass: a mount still busy after every process is gone is held by a namespace
      // file elsewhere, and detaching it is what removing it would do.
      await run('umount', pass < 2 ? [p] : ['-l', p]).catch(() => undefined);
    }
  }
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`could not unmount ${left.join(', ')}`);
}

/** Every process whose network namespace is one of these (the node's own and its pods'). */
export function processesIn(netnsIds: Set<string>): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const ns = processNetns(pid);
    if (ns && netnsIds.has(ns)) pids.push(pid);
  }
  return pids;
}

/** Pod network namespaces containerd mounted under the node's state folder (the CRI plugin's own state folder). */
export function podNetnsFiles(containerdState: string): string[] {
  const dir = join(containerdState, 'io.containerd.grpc.v1.cri', 'netns');
  return existsSync(dir) ? readdirSync(dir).map((n) => join(dir, n)) : [];
}

/** Processes in the node's cgroup tree (every container is), read from /proc/<pid>/cgroup. */
export function processesInCgroup(cgroupRoot: string): number[] {
  const pids: number[] = [];
  const prefix = `${cgroupRoot}/`;
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    } catch {
      continue;
    }
    // Lines are id:controllers:path; a container sits at <root>/kubepods/... in each hierarchy.
    if (text.split('\n').some((line) => line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1).startsWith(prefix))) pids.push(pid);
  }
  return pids;
}

/**
 * The shims of this node's containerd: they run in the machine's namespace (started by containerd before it
 * joins nothing else), and name the node's socket on their command line.
 */
export function shimsOf(containerdSocket: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    let cmd: string[];
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (/containerd-shim/.test(cmd[0] ?? '') && cmd.includes(containerdSocket)) pids.push(pid);
  }
  return pids;
}

/**
 * SIGKILL to every process of the node until none is left: those inside its namespaces, in its cgroup tree
 * (containers, whichever namespace they joined), and its shims. Namespaces are read once, before any dies.
 */
export async function killNodeProcesses(
  of: { netnsFiles: string[]; containerdSocket: string; cgroupRoot: string },
  timeoutMs = 10_000,
): Promise<void> {
  const ids = new Set(of.netnsFiles.map(netnsId).filter((x): x is string => x !== undefined));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = [...new Set([...processesIn(ids), ...processesInCgroup(of.cgroupRoot), ...shimsOf(of.containerdSocket)])];
    const alive = pids.filter((pid) => {
      try {
        return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    });
    if (alive.length === 0) return;
    if (Date.now() > deadline) throw new Error(`processes of the node still running after SIGKILL: ${alive.join(', ')}`);
    for (const pid of alive) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
    await sleep(100);
  }
}

/**
 * cgroup hierarchies mounted under /sys/fs/cgroup: the v1 ones (named ones such as name=systemd included) and,
 * with `withUnified`, the cgroup2 side mount, where runc also places containers on a hybrid machine.
 */
export function cgroupHierarchies(opts: { withUnified?: boolean } = {}, root = '/sys/fs/cgroup'): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((n) => join(root, n))
    .filter((p) => existsSync(join(p, 'cgroup.procs')) && (opts.withUnified || !existsSync(join(p, 'cgroup.controllers'))));
}

/** Removes the node's cgroup tree in every hierarchy, leaves first (a cgroup with live tasks refuses). */
export function removeCgroups(cgroupRoot: string): void {
  for (const h of cgroupHierarchies({ withUnified: true })) {
    const top = join(h, cgroupRoot);
    if (!existsSync(top)) continue;
    const dirs: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
      dirs.push(d);
    };
    walk(top);
    for (const d of dirs) {
      try {
        rmdirSync(d);
      } catch (err) {
        throw new Error(`could not remove cgroup ${d}: ${(err as Error).message}`);
      }
    }
  }
}

/** Containers and sandboxes containerd knows of, by the folders it keeps for each (read before they go). */
export function containerIds(containerdRoot: string, containerdState: string): string[] {
  const dirs = [
    join(containerdRoot, 'io.containerd.grpc.v1.cri', 'sandboxes'),
    join(containerdRoot, 'io.containerd.grpc.v1.cri', 'containers'),
    join(containerdState, 'io.containerd.runtime.v2.task', 'k8s.io'),
  ];
  return [...new Set(dirs.flatMap((d) => (existsSync(d) ? readdirSync(d) : [])))];
}

/**
 * Files the kubelet, containerd and libcni keep at fixed paths outside the node's folder, which a graceful pod
 * teardown removes and a SIGKILL leaves: shim sockets (/run/containerd/s/<sha256 of socket/namespace/id>), CNI
 * result caches (/var/lib/cni/results/<network>-<id>-<if>) and the kubelet's /var/log/containers links. Each is
 * recognised by something of this node only (its socket path, its container ids, a link into its folder).
 */
export function hostLeftovers(of: { dir: string; containerdSocket: string; network: string; ids: string[] }): string[] {
  const found: string[] = [];
  for (const id of of.ids) {
    const sock = `/run/containerd/s/${createHash('sha256').update(`${of.containerdSocket}/k8s.io/${id}`).digest('hex')}`;
    if (existsSync(sock)) found.push(sock);
  }
  const results = '/var/lib/cni/results';
  if (existsSync(results)) {
    for (const f of readdirSync(results)) {
      if (of.ids.some((id) => f === `${of.network}-${id}-eth0` || f === `cni-loopback-${id}-lo`)) found.push(join(results, f));
    }
  }
  const links = '/var/log/containers';
  if (existsSync(links)) {
    for (const f of readdirSync(links)) {
      try {
        if (readlinkSync(join(links, f)).startsWith(`${of.dir}/`)) found.push(join(links, f));
      } catch {
        /* not a link */
      }
    }
  }
  return found;
}

/**
 * The kubelet's device-plugin socket, at a path compiled into the kubelet (/var/lib/kubelet/device-plugins/), so
 * every real node on the machine shares it. Removed only when no real node runs and the machine has no
 * kubelet of its own (nothing else under /var/lib/kubelet).
 */
export function sharedKubeletSocket(nodesRunning: boolean, root = '/var/lib/kubelet'): string | undefined {
  const sock = join(root, 'device-plugins', 'kubelet.sock');
  if (nodesRunning || !existsSync(sock)) return undefined;
  const entries = readdirSync(root);
  const onlyOurs = entries.length === 1 && entries[0] === 'device-plugins' && readdirSync(join(root, 'device-plugins')).length === 1;
  return onlyOurs ? sock : undefined;
}
