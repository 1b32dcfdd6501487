// Runs as the first program inside a container's private mount (and UTS) namespace, started by
// `unshare --mount --uts --propagation private`. It puts the container's volumes at their mountPaths, sets the
// pod's hostname, then replaces itself with the container's command (process.execve keeps the pid, so the pid the
// node recorded is the container's). Nothing it mounts is visible outside the namespace, and it never creates
// anything in the host's own directories:
//
// - A mountPath that exists is bind-mounted over, inside the namespace only.
// - A mountPath that does not exist needs a new entry in its deepest existing ancestor D. D gets a writable
//   layer first: an overlay mount with D as the lower layer and a tmpfs upper, mounted over D, so D looks the
//   same but whatever is created (or changed) below it stays in the tmpfs. Mounts below D are moved back on top.
//   Without overlayfs the layer is a tmpfs holding one bind mount per entry of D.
// - Inside a volume, or below a layer, entries are created directly (a volume is the pod's own storage, as with
//   runc).
// - When D would be `/` itself (e.g. /data), the layer is built over the whole root at a staging directory and
//   the command runs chrooted into it (through chroot(8) and env(1) -C, since Node has no chroot call).
//
// A setup failure is written to fd 3 (a pipe the node reads), so the node reports StartError instead of
// confusing it with the command's own exit; on success fd 3 is closed just before the exec.
//
// Plain Node (type stripping, so erasable syntax only), no project imports: it must start fast and must not
// depend on the container's environment.
import { execFileSync } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { posix } from 'node:path';

export interface MountSpec {
  /** Host path of the volume's content. */
  source: string;
  /** Absolute path inside the container. */
  target: string;
  readOnly: boolean;
  /** A file (subPath of a file, /etc/hosts) or a directory. */
  kind: 'dir' | 'file';
}

export interface LaunchPlan {
  argv: string[];
  env: Record<string, string>;
  workingDir: string;
  hostname?: string;
  mounts: MountSpec[];
  /** An empty host directory for this launch's tmpfs layers; they are mounted inside the namespace only. */
  stagingDir: string;
  /** How a directory gets a writable layer; 'auto' (default) uses overlayfs and falls back to bind mounts. */
  layers?: 'overlay' | 'bind' | 'auto';
}

export interface ExecStep {
  file: string;
  args: string[];
  env: Record<string, string>;
  /** chdir before exec; unset when chroot(8) and env -C take care of it. */
  cwd?: string;
}

function mount(args: string[]): void {
  try {
    execFileSync('mount', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`mount ${args.join(' ')}: ${stderr || (err as Error).message}`, { cause: err });
  }
}

/**
 * `path` resolved inside `root` (a host directory standing for '/', or '' for the host's own root): symlinks are
 * followed with absolute targets taken relative to `root`; components that do not exist are kept as written.
 */
export function resolveUnder(root: string, path: string): string {
  const todo = path.split('/').filter(Boolean);
  let out = '/';
  let links = 0;
  while (todo.length > 0) {
    const part = todo.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      out = posix.dirname(out);
      continue;
    }
    const next = posix.join(out, part);
    let isLink: boolean;
    try {
      isLink = lstatSync(root + next).isSymbolicLink();
    } catch {
      return posix.join(next, ...todo);
    }
    if (!isLink) {
      out = next;
      continue;
    }
    if (++links > 40) throw new Error(`too many levels of symbolic links in ${path}`);
    const target = readlinkSync(root + next);
    todo.unshift(...target.split('/').filter(Boolean));
    if (target.startsWith('/')) out = '/';
  }
  return out;
}

function which(name: string, pathVar: string, exists: (p: string) => boolean): string | undefined {
  for (const dir of pathVar.split(':')) {
    if (!dir) continue;
    const candidate = posix.join(dir, name);
    if (exists(candidate)) return candidate;
  }
  return undefined;
}

/** Mount points as this namespace sees them (the fifth field of mountinfo, octal escapes decoded). */
function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
}

const under = (p: string, dir: string) => dir === '/' ? p !== '/' : p.startsWith(`${dir}/`);
const within = (p: string, dir: string) => p === dir || under(p, dir);

class Namespace {
  /** Host directory that stands for '/' once the root has a layer; '' before. */
  root = '';
  /** Container paths of writable layers: new entries below them stay inside the namespace. */
  private readonly layers: string[] = [];
  /** Container paths inside a layer that are host mounts (or, for bind layers, host entries) again. */
  private readonly holes: string[] = [];
  /** Container paths where volumes are mounted. */
  private readonly volumes: string[] = [];
  private readonly staging: string;
  private readonly mode: 'overlay' | 'bind' | 'auto';
  private scratch: string | undefined;
  private count = 0;

  constructor(staging: string, mode: 'overlay' | 'bind' | 'auto') {
    this.staging = staging;
    this.mode = mode;
  }

  /** One tmpfs for overlay upper/work directories and parked mounts. */
  private scratchDir(): string {
    if (!this.scratch) {
      this.scratch = posix.join(this.staging, 'scratch');
      mkdirSync(this.scratch);
      mount(['-t', 'tmpfs', '-o', 'mode=700', 'arena-scratch', this.scratch]);
    }
    return this.scratch;
  }

  /** Host mounts strictly below `real` that are not below another of them (a recursive bind brings those). */
  private submounts(real: string): string[] {
    const scratch = this.scratch ?? posix.join(this.staging, 'scratch');
    const all = mountPoints().filter((p) => under(p, real) && (within(real, scratch) || !within(p, scratch)));
    const set = [...new Set(all)].sort((a, b) => a.length - b.length);
    return set.filter((p, i) => !set.slice(0, i).some((q) => under(p, q)));
  }

  /**
   * Gives the container directory `view` (host path `lower`) a writable layer mounted at `at`: an overlay with
   * `lower` as its only lower layer and a tmpfs upper, so `lower` looks unchanged and nothing written reaches
   * it. Overlayfs shows no mounts below its lower directory, so those are parked and moved back on top.
   */
  private overlay(view: string, lower: string, at: string): void {
    if (/[,:\\]/.test(lower)) throw new Error(`overlay cannot take ${lower} as a lower directory`);
    const scratch = this.scratchDir();
    const n = this.count++;
    const subs = this.submounts(lower);
    // Unbindable while parking, so a recursive bind of an ancestor of the scratch tmpfs skips it; overlayfs
    // refuses an unbindable upper, so it is made private again before the overlay is mounted.
    mount(['--make-unbindable', scratch]);
    const parked = subs.map((p, i) => {
      const spot = posix.join(scratch, `park-${n}-${i}`);
      if (statSync(p).isDirectory()) mkdirSync(spot);
      else writeFileSync(spot, '');
      mount(['--rbind', p, spot]);
      return spot;
    });
    mount(['--make-private', scratch]);
    const upper = posix.join(scratch, `upper-${n}`);
    const work = posix.join(scratch, `work-${n}`);
    mkdirSync(upper);
    mkdirSync(work);
    mount(['-t', 'overlay', 'arena-overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, at]);
    subs.forEach((p, i) => mount(['--move', parked[i]!, posix.join(at, p.slice(lower === '/' ? 0 : lower.length))]));
    this.layers.push(view);
    this.holes.push(...subs.map((p) => posix.join(view, p.slice(lower === '/' ? 0 : lower.length))));
  }

  /**
   * The same without overlayfs: a tmpfs with one bind mount per entry of `lower` (symlinks copied), moved to `at`.
   * Slower (a mount per entry) and the entries themselves are the host's, but it works on any kernel.
   */
  private bindLayer(view: string, lower: string, at: string): void {
    const layer = posix.join(this.staging, `layer-${this.count++}`);
    mkdirSync(layer);
    mount(['-t', 'tmpfs', '-o', `mode=${(statSync(lower).mode & 0o7777).toString(8)}`, 'arena-layer', layer]);
    mount(['--make-unbindable', layer]);
    for (const entry of readdirSync(lower, { withFileTypes: true })) {
      const from = posix.join(lower, entry.name);
      const to = posix.join(layer, entry.name);
      if (entry.isSymbolicLink()) {
        symlinkSync(readlinkSync(from), to);
        continue;
      }
      if (entry.isDirectory()) mkdirSync(to);
      else writeFileSync(to, '');
      mount([entry.isDirectory() ? '--rbind' : '--bind', from, to]);
      this.holes.push(posix.join(view, entry.name));
    }
    mount(['--make-private', layer]);
    if (at !== layer) mount(['--move', layer, at]);
    this.layers.push(view);
  }

  private addLayer(view: string, lower: string, at: string): void {
    if (this.mode === 'bind') return this.bindLayer(view, lower, at);
    try {
      this.overlay(view, lower, at);
    } catch (err) {
      if (this.mode === 'overlay') throw err;
      this.bindLayer(view, lower, at);
    }
  }

  /** Builds a stand-in for the whole root, for a mountPath that needs a new entry in '/'; the command is chrooted into it. */
  layerRoot(): void {
    const at = posix.join(this.staging, 'root');
    mkdirSync(at);
    this.addLayer('/', '/', at);
    this.root = at;
  }

  private writable(dir: string): boolean {
    if (this.volumes.some((v) => within(dir, v))) return true;
    const depth = (ps: string[]) => Math.max(-1, ...ps.filter((p) => within(dir, p)).map((p) => p.length));
    const layer = depth(this.layers);
    return layer >= 0 && layer > depth(this.holes);
  }

  /** Makes `target` exist as a directory or file inside the namespace; returns its resolved container path. */
  ensure(target: string, kind: 'dir' | 'file'): string {
    const path = resolveUnder(this.root, target);
    const real = this.root + path;
    if (existsSync(real)) {
      const isDir = statSync(real).isDirectory();
      if (isDir !== (kind === 'dir')) {
        throw new Error(`cannot mount a ${kind === 'dir' ? 'directory' : 'file'} at ${target}: it exists as a ${isDir ? 'directory' : 'file'}`);
      }
      return path;
    }
    let parent = posix.dirname(path);
    while (!existsSync(this.root + parent)) parent = posix.dirname(parent);
    if (!this.writable(parent)) {
      if (parent === '/') throw new Error(`internal: ${target} needs a new entry in / but the root has no layer`);
      const lower = this.root + parent;
      this.addLayer(parent, lower, lower);
    }
    if (kind === 'dir') mkdirSync(real, { recursive: true, mode: 0o755 });
    else {
      mkdirSync(posix.dirname(real), { recursive: true, mode: 0o755 });
      writeFileSync(real, '', { flag: 'wx' });
    }
    return path;
  }

  bind(spec: MountSpec): void {
    const path = this.ensure(spec.target, spec.kind);
    const real = this.root + path;
    mount([spec.kind === 'dir' ? '--rbind' : '--bind', spec.source, real]);
    if (spec.readOnly) mount(['-o', 'remount,bind,ro', real]);
    this.volumes.push(path);
  }
}

/** Whether `target` needs a new entry directly in the host's '/'. */
function needsNewTopLevel(target: string): boolean {
  const path = resolveUnder('', target);
  const top = path.split('/')[1];
  return top !== undefined && top !== '' && !existsSync(`/${top}`);
}

const depth = (p: string) => p.split('/').filter(Boolean).length;

/** Does every mount of the plan and says what to exec. Must run inside the new mount namespace. */
export function setUp(plan: LaunchPlan): ExecStep {
  const ns = new Namespace(plan.stagingDir, plan.layers ?? 'auto');
  if ([...plan.mounts.map((m) => m.target), plan.workingDir].some(needsNewTopLevel)) ns.layerRoot();
  // There is no container image: the process runs this host's files. A volume whose mount path would hide the
  // node's own files (its data and the volumes' sources, the mapped command and the files it names; e.g. an
  // emptyDir on /tmp when the checkout lives under /tmp) is left out, and the container sees the host directory
  // there instead. Everything else: shallow first, so a volume nested in another lands on top of it.
  const within = (dir: string, p: string) => p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
  // Only paths that exist on the host now: a path the container gets from one of its volumes is not the node's.
  const hostPaths = plan.argv.map((a) => (a.startsWith('file://') ? new URL(a).pathname : a)).filter((a) => a.startsWith('/') && existsSync(a));
  const protectedPaths = [plan.stagingDir, ...plan.mounts.map((m) => m.source), ...hostPaths];
  const hides = (m: MountSpec) => protectedPaths.some((p) => !plan.mounts.some((o) => o.source === p && o === m) && within(m.target, p));
  for (const m of [...plan.mounts].filter((m) => !hides(m)).sort((a, b) => depth(a.target) - depth(b.target))) ns.bind(m);
  const wd = ns.ensure(plan.workingDir, 'dir');
  if (plan.hostname) writeFileSync('/proc/sys/kernel/hostname', plan.hostname);

  const root = ns.root;
  const runnable = (p: string) => {
    try {
      accessSync(root + p, constants.X_OK);
      return statSync(root + p).isFile();
    } catch {
      return false;
    }
  };
  const argv0 = plan.argv[0] ?? '';
  const program = argv0.includes('/')
    ? posix.resolve(wd, argv0)
    : which(argv0, plan.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', runnable);
  if (!program || !runnable(program)) throw new Error(`exec: "${argv0}": executable file not found in $PATH`);
  if (!root) return { file: program, args: plan.argv, env: plan.env, cwd: wd };

  const hostPath = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
  const chroot = which('chroot', hostPath, existsSync);
  const envBin = which('env', hostPath, existsSync);
  if (!chroot || !envBin) throw new Error('chroot(8) and env(1) from coreutils are needed for a mountPath directly under /');
  return { file: chroot, args: ['chroot', root, envBin, '-C', wd, '--', program, ...plan.argv.slice(1)], env: plan.env };
}

const statusFd = 3;

function fail(message: string): never {
  try {
    writeSync(statusFd, message);
  } catch {
    writeSync(2, `${message}\n`);
  }
  process.exit(128);
}

if (import.meta.main) {
  let step: ExecStep;
  try {
    step = setUp(JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as LaunchPlan);
    if (step.cwd) process.chdir(step.cwd);
  } catch (err) {
    fail((err as Error).message);
  }
  try {
    closeSync(statusFd);
  } catch {
    // not started by the node (no status pipe)
  }
  try {
    process.execve!(step.file, step.args, step.env);
  } catch (err) {
    writeSync(2, `exec ${step.file}: ${(err as Error).message}\n`);
    process.exit(128);
  }
}
