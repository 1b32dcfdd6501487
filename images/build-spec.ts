// What `make images` builds, read from the Dockerfiles themselves: the Dockerfile stays the one description of an
// image, and the daemonless build (images/build.ts) carries out what it says. The final stage's LABEL, ENV, USER,
// WORKDIR, EXPOSE, ENTRYPOINT and CMD become the image config; its COPY instructions become layers; its
// `apt-get install` names the Debian packages of the base root file system; builder stages named by COPY --from are
// run by the build (images/build.ts says how). An instruction this reader does not know is an error naming the line,
// so a Dockerfile edit that the daemonless build would silently drop cannot pass.
import { posix } from 'node:path';
import { keyValues, parseDockerfile, type Instruction } from './dockerfile-lint.ts';

export interface Copy {
  kind: 'copy';
  line: number;
  /** The builder stage the files come from; absent for the build context. */
  from?: string;
  sources: string[];
  /** Absolute; a trailing slash (or several sources) means a directory to copy into. */
  dest: string;
  /** Octal mode from --chmod, applied to every copied file. */
  chmod?: string;
}

export interface Mkdir {
  kind: 'mkdir';
  line: number;
  dirs: string[];
  /** Directories handed to a user by a `chown` in the same RUN. */
  owned: { path: string; uid: number; gid: number }[];
}

export interface Workdir {
  kind: 'workdir';
  line: number;
  dir: string;
}

export type Step = Copy | Mkdir | Workdir;

export interface Stage {
  name: string;
  line: number;
  from: string;
  /** WORKDIR, ENV, COPY and RUN in order; the build runs them. */
  instructions: Instruction[];
}

export interface ImageConfig {
  user: string;
  workingDir: string;
  env: [string, string][];
  labels: Record<string, string>;
  exposedPorts: string[];
  entrypoint: string[];
  cmd?: string[];
}

export interface ImageSpec {
  /** The base every stage starts from (the NODE_IMAGE ARG): the daemonless build makes an equivalent from Debian. */
  baseImage: string;
  /** Debian packages the final stage installs on top of the base. */
  packages: string[];
  config: ImageConfig;
  steps: Step[];
  stages: Map<string, Stage>;
}

export class SpecError extends Error {}

const KNOWN_FINAL = new Set(['ARG', 'LABEL', 'ENV', 'RUN', 'COPY', 'WORKDIR', 'USER', 'EXPOSE', 'ENTRYPOINT', 'CMD']);
const KNOWN_STAGE = new Set(['ARG', 'ENV', 'RUN', 'COPY', 'WORKDIR']);

/** `$NAME` and `${NAME}` from `vars`; an unknown name expands to nothing, as in Docker. */
export function expand(value: string, vars: Map<string, string>): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, a?: string, b?: string) => vars.get((a ?? b)!) ?? '');
}

function jsonArray(ins: Instruction, where: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(ins.args);
  } catch {
    throw new SpecError(`${where}:${ins.line}: ${ins.keyword} must be in exec (JSON) form, got ${ins.args}`);
  }
  if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string')) throw new SpecError(`${where}:${ins.line}: ${ins.keyword} must be a JSON array of strings`);
  return parsed;
}

/** A COPY's flags and operands: `COPY [--from=S] [--chmod=M] src... dest`. */
export function parseCopy(ins: Instruction, workdir: string, where: string): Copy {
  const words = ins.args.split(/\s+/).filter(Boolean);
  let from: string | undefined;
  let chmod: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift()!;
    const m = /^--(from|chmod)=(.+)$/.exec(flag);
    if (!m) throw new SpecError(`${where}:${ins.line}: COPY ${flag} is not supported by the daemonless build (it knows --from and --chmod)`);
    if (m[1] === 'from') from = m[2];
    else if (/^[0-7]{3,4}$/.test(m[2]!)) chmod = m[2];
    else throw new SpecError(`${where}:${ins.line}: COPY --chmod takes an octal mode, got ${m[2]}`);
  }
  if (words.length < 2) throw new SpecError(`${where}:${ins.line}: COPY needs a source and a destination`);
  const rawDest = words.pop()!;
  const dir = rawDest.endsWith('/') || rawDest === '.' || words.length > 1;
  let dest = posix.resolve(workdir, rawDest);
  if (dir && !dest.endsWith('/')) dest += '/';
  return { kind: 'copy', line: ins.line, ...(from ? { from } : {}), sources: words, dest, ...(chmod ? { chmod } : {}) };
}

/** The final stage's RUN: package installs and directory set-up are understood, anything else is refused. */
function finalRun(ins: Instruction, where: string, packages: string[]): Mkdir | undefined {
  const mkdir: Mkdir = { kind: 'mkdir', line: ins.line, dirs: [], owned: [] };
  for (const raw of ins.args.split('&&')) {
    const words = raw.trim().split(/\s+/);
    const cmd = words.join(' ');
    if (cmd === 'apt-get update' || cmd === 'rm -rf /var/lib/apt/lists/*') continue;
    if (words[0] === 'apt-get' && words[1] === 'install') {
      packages.push(...words.slice(2).filter((w) => !w.startsWith('-')));
    } else if (words[0] === 'mkdir' && words[1] === '-p') {
      mkdir.dirs.push(...words.slice(2));
    } else if (words[0] === 'chown' && /^[0-9]+:[0-9]+$/.test(words[1] ?? '') && words.length > 2) {
      const [uid, gid] = words[1]!.split(':').map(Number) as [number, number];
      for (const path of words.slice(2)) mkdir.owned.push({ path, uid, gid });
    } else {
      throw new SpecError(
        `${where}:${ins.line}: the daemonless build cannot run "${cmd}" in the final stage; ` +
          'use a COPY or a builder stage, or teach images/build-spec.ts the command',
      );
    }
  }
  for (const o of mkdir.owned) {
    if (!mkdir.dirs.includes(o.path)) throw new SpecError(`${where}:${ins.line}: chown ${o.path}: the daemonless build only hands over directories the same RUN makes`);
  }
  return mkdir.dirs.length ? mkdir : undefined;
}

export interface ReadOptions {
  /** Build arguments (VERSION, REVISION, ...); ARG defaults fill the rest. */
  args?: Record<string, string>;
  /** For messages: the Dockerfile's path. */
  where?: string;
}

export function readImageSpec(text: string, opts: ReadOptions = {}): ImageSpec {
  const where = opts.where ?? 'Dockerfile';
  const instructions = parseDockerfile(text);
  const given = new Map(Object.entries(opts.args ?? {}));
  const globalArgs = new Map<string, string>();
  const groups: { from: Instruction; body: Instruction[] }[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') groups.push({ from: ins, body: [] });
    else if (groups.length) groups[groups.length - 1]!.body.push(ins);
    else if (ins.keyword === 'ARG') for (const [k, v] of keyValues(ins.args)) globalArgs.set(k, given.get(k) ?? v ?? '');
  }
  if (!groups.length) throw new SpecError(`${where}: no FROM instruction`);

  const stages = new Map<string, Stage>();
  let baseImage: string | undefined;
  for (const g of groups) {
    const parts = g.from.args.split(/\s+/).filter((p) => !p.startsWith('--'));
    const image = expand(parts[0] ?? '', globalArgs);
    const name = parts[1]?.toUpperCase() === 'AS' ? parts[2] : undefined;
    if (!stages.has(image)) {
      if (baseImage !== undefined && image !== baseImage) {
        throw new SpecError(`${where}:${g.from.line}: every stage must start from the one base image (${baseImage}), not ${image}: the daemonless build makes one Debian equivalent of it`);
      }
      baseImage = image;
    }
    if (g === groups[groups.length - 1]) continue;
    if (!name) throw new SpecError(`${where}:${g.from.line}: a builder stage needs a name (FROM ... AS name)`);
    for (const ins of g.body) {
      if (!KNOWN_STAGE.has(ins.keyword)) throw new SpecError(`${where}:${ins.line}: ${ins.keyword} in stage ${name} is not supported by the daemonless build`);
    }
    stages.set(name, { name, line: g.from.line, from: image, instructions: g.body });
  }

  const final = groups[groups.length - 1]!.body;
  const vars = new Map<string, string>();
  const env: [string, string][] = [];
  const labels: Record<string, string> = {};
  const packages: string[] = [];
  const steps: Step[] = [];
  const exposedPorts: string[] = [];
  let workdir = '/';
  let user: string | undefined;
  let entrypoint: string[] | undefined;
  let cmd: string[] | undefined;
  for (const ins of final) {
    if (!KNOWN_FINAL.has(ins.keyword)) throw new SpecError(`${where}:${ins.line}: ${ins.keyword} in the final stage is not supported by the daemonless build`);
    switch (ins.keyword) {
      case 'ARG':
        for (const [k, v] of keyValues(ins.args)) vars.set(k, given.get(k) ?? globalArgs.get(k) ?? v ?? '');
        break;
      case 'LABEL':
        for (const [k, v] of keyValues(ins.args)) labels[k] = expand(v ?? '', vars);
        break;
      case 'ENV':
        for (const [k, v] of keyValues(ins.args)) {
          if (v === undefined) throw new SpecError(`${where}:${ins.line}: ENV ${k}: use the KEY=value form`);
          const value = expand(v, vars);
          vars.set(k, value);
          const at = env.findIndex(([name]) => name === k);
          if (at >= 0) env[at] = [k, value];
          else env.push([k, value]);
        }
        break;
      case 'RUN': {
        const mkdir = finalRun(ins, where, packages);
        if (mkdir) steps.push(mkdir);
        break;
      }
      case 'COPY':
        steps.push(parseCopy(ins, workdir, where));
        break;
      case 'WORKDIR':
        workdir = posix.resolve(workdir, expand(ins.args, vars));
        steps.push({ kind: 'workdir', line: ins.line, dir: workdir });
        break;
      case 'USER':
        user = expand(ins.args, vars);
        break;
      case 'EXPOSE':
        for (const p of ins.args.split(/\s+/)) exposedPorts.push(p.includes('/') ? p : `${p}/tcp`);
        break;
      case 'ENTRYPOINT':
        entrypoint = jsonArray(ins, where);
        // As in Docker: an ENTRYPOINT drops the CMD the base image had; a later CMD sets one again.
        cmd = undefined;
        break;
      case 'CMD':
        cmd = jsonArray(ins, where);
        break;
    }
  }
  for (const s of steps) {
    if (s.kind === 'copy' && s.from && !stages.has(s.from)) throw new SpecError(`${where}:${s.line}: COPY --from=${s.from} names no stage of this Dockerfile`);
  }
  if (!user) throw new SpecError(`${where}: the final stage sets no USER`);
  if (!entrypoint) throw new SpecError(`${where}: the final stage sets no ENTRYPOINT`);
  return {
    baseImage: baseImage!,
    packages,
    config: { user, workingDir: workdir, env, labels, exposedPorts, entrypoint, ...(cmd ? { cmd } : {}) },
    steps,
    stages,
  };
}
