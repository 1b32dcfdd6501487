// A small Dockerfile linter for the rules this project holds its images to (hadolint is not available here):
//   - every base image is pinned by digest, directly or through an ARG whose default is (or which has no default, so
//     the build must pass one; the check then only says so);
//   - no :latest tag anywhere in a FROM or an ARG default;
//   - the final stage runs as a numeric non-root USER (the kubelet can then verify runAsNonRoot);
//   - the final stage carries the OCI labels version, source and revision;
//   - no ADD of a URL (fetches are unpinned and unverified; use a pinned, checksummed RUN curl or COPY);
//   - ENTRYPOINT in exec form, so signals reach the process rather than a shell.
//
//   tsx images/dockerfile-lint.ts [Dockerfile ...]   (default: every images/*/Dockerfile)

import { readFile, readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Instruction {
  /** 1-based line where the instruction starts. */
  line: number;
  keyword: string;
  args: string;
}

export interface Problem {
  line: number;
  rule: string;
  message: string;
}

/** Instructions with continuation lines joined and comments and parser directives dropped. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  let current: { line: number; text: string } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    // Comments inside a continued instruction are skipped too, as BuildKit does.
    if (trimmed.startsWith('#') || (trimmed === '' && !current)) continue;
    const continued = /\\\s*$/.test(raw);
    const piece = continued ? raw.replace(/\\\s*$/, '') : raw;
    if (current) current.text += ` ${piece.trim()}`;
    else current = { line: i + 1, text: piece.trim() };
    if (!continued) {
      const m = /^(\S+)\s*(.*)$/s.exec(current.text);
      if (m) out.push({ line: current.line, keyword: m[1]!.toUpperCase(), args: m[2]!.trim() });
      current = undefined;
    }
  }
  if (current) {
    const m = /^(\S+)\s*(.*)$/s.exec(current.text);
    if (m) out.push({ line: current.line, keyword: m[1]!.toUpperCase(), args: m[2]!.trim() });
  }
  return out;
}

const DIGEST = /@sha256:[a-f0-9]{64}$/;
const OCI_LABELS = ['org.opencontainers.image.version', 'org.opencontainers.image.source', 'org.opencontainers.image.revision'];

export function unquote(s: string): string {
  return s.length >= 2 && ((s.startsWith('"') && s.endsWith('"')) || (s.startsWith("'") && s.endsWith("'"))) ? s.slice(1, -1) : s;
}

/** `KEY=value KEY2="v 2"` pairs (LABEL, ENV and ARG syntax). */
export function keyValues(args: string): [string, string | undefined][] {
  const out: [string, string | undefined][] = [];
  const re = /([^\s=]+)(?:=("(?:[^"\\]|\\.)*"|'[^']*'|\S*))?/g;
  for (const m of args.matchAll(re)) out.push([m[1]!, m[2] === undefined ? undefined : unquote(m[2])]);
  return out;
}

function hasLatestTag(image: string): boolean {
  const noDigest = image.replace(/@.*$/, '');
  const lastSlash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > lastSlash && noDigest.slice(colon + 1) === 'latest';
}

export function lintDockerfile(text: string): Problem[] {
  const problems: Problem[] = [];
  const add = (line: number, rule: string, message: string) => problems.push({ line, rule, message });
  const instructions = parseDockerfile(text);
  const froms = instructions.filter((i) => i.keyword === 'FROM');
  if (froms.length === 0) return [{ line: 1, rule: 'from', message: 'no FROM instruction' }];

  // ARGs before the first FROM are the ones a FROM line can use.
  const globalArgs = new Map<string, { line: number; value: string | undefined }>();
  for (const i of instructions) {
    if (i.keyword === 'FROM') break;
    if (i.keyword === 'ARG') for (const [k, v] of keyValues(i.args)) globalArgs.set(k, { line: i.line, value: v });
  }
  for (const [name, { line, value }] of globalArgs) {
    if (value !== undefined && hasLatestTag(value)) add(line, 'no-latest', `ARG ${name} defaults to a :latest image (${value})`);
  }

  const stages = new Set<string>();
  const checkedArgs = new Set<string>();
  for (const f of froms) {
    const parts = f.args.split(/\s+/).filter((p) => !p.startsWith('--'));
    const image = parts[0] ?? '';
    const alias = parts[1]?.toUpperCase() === 'AS' ? parts[2] : undefined;
    const argRef = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(image);
    if (stages.has(image)) {
      // A previous stage: pinned through that stage.
    } else if (argRef && checkedArgs.has(argRef[1]!)) {
      // Reported at its ARG already.
    } else if (argRef) {
      checkedArgs.add(argRef[1]!);
      const arg = globalArgs.get(argRef[1]!);
      if (!arg) add(f.line, 'pinned-base', `FROM uses \${${argRef[1]}}, which no ARG before the first FROM declares`);
      else if (arg.value !== undefined && !DIGEST.test(arg.value)) {
        add(arg.line, 'pinned-base', `ARG ${argRef[1]} defaults to ${arg.value}, which is not pinned by digest (@sha256:<64 hex>)`);
      }
    } else if (image.includes('$')) {
      add(f.line, 'pinned-base', `FROM ${image}: a base image built from several variables cannot be checked; use one ARG holding the pinned reference`);
    } else if (image !== 'scratch' && !DIGEST.test(image)) {
      add(f.line, 'pinned-base', `FROM ${image} is not pinned by digest (@sha256:<64 hex>)`);
    }
    if (!argRef && hasLatestTag(image)) add(f.line, 'no-latest', `FROM ${image} uses the :latest tag`);
    if (alias) stages.add(alias);
  }

  for (const i of instructions) {
    if (i.keyword === 'ADD' && /(^|\s)(https?|ftp):\/\//i.test(i.args)) {
      add(i.line, 'no-add-url', 'ADD of a URL downloads an unpinned, unverified file; fetch it in a RUN with a checksum, or COPY it');
    }
  }

  const last = froms[froms.length - 1]!;
  const final = instructions.filter((i) => i.line > last.line);
  const users = final.filter((i) => i.keyword === 'USER');
  const user = users[users.length - 1];
  if (!user) add(last.line, 'non-root-user', 'the final stage sets no USER, so it runs as root');
  else {
    const uid = user.args.split(':')[0]!.trim();
    if (!/^[0-9]+$/.test(uid)) add(user.line, 'non-root-user', `USER ${user.args}: use a numeric uid so the kubelet can verify runAsNonRoot`);
    else if (Number(uid) === 0) add(user.line, 'non-root-user', 'USER 0 is root');
  }
  const labels = new Map(final.filter((i) => i.keyword === 'LABEL').flatMap((i) => keyValues(i.args)));
  for (const key of OCI_LABELS) {
    if (!labels.has(key)) add(last.line, 'oci-labels', `the final stage lacks LABEL ${key}`);
    else if (!labels.get(key)) add(last.line, 'oci-labels', `LABEL ${key} is empty`);
  }
  // Labels that name build arguments need those ARGs declared in the final stage, or they expand to nothing.
  const finalArgs = new Set(final.filter((i) => i.keyword === 'ARG').flatMap((i) => keyValues(i.args).map(([k]) => k)));
  for (const [key, value] of labels) {
    for (const m of (value ?? '').matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g)) {
      if (!finalArgs.has(m[1]!)) add(last.line, 'oci-labels', `LABEL ${key} uses \${${m[1]}}, which the final stage does not declare with ARG`);
    }
  }
  const entrypoint = final.filter((i) => i.keyword === 'ENTRYPOINT').pop();
  if (entrypoint && !entrypoint.args.startsWith('[')) {
    add(entrypoint.line, 'exec-form', 'ENTRYPOINT in shell form runs under /bin/sh, which does not pass SIGTERM on; use the JSON form');
  }
  return problems.sort((a, b) => a.line - b.line);
}

/** Base-image ARGs that have no default: the build must pass them (reported, not an error). */
export function requiredBuildArgs(text: string): string[] {
  const instructions = parseDockerfile(text);
  const firstFrom = instructions.findIndex((i) => i.keyword === 'FROM');
  const globals = instructions.slice(0, firstFrom < 0 ? 0 : firstFrom).filter((i) => i.keyword === 'ARG').flatMap((i) => keyValues(i.args));
  const used = new Set(instructions.filter((i) => i.keyword === 'FROM').map((f) => /\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/.exec(f.args)?.[1]));
  return globals.filter(([k, v]) => v === undefined && used.has(k)).map(([k]) => k);
}

export const imagesDir = dirname(fileURLToPath(import.meta.url));

export async function projectDockerfiles(): Promise<string[]> {
  const entries = await readdir(imagesDir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => join(imagesDir, e.name, 'Dockerfile')).sort();
}

async function main(): Promise<void> {
  const files = process.argv.length > 2 ? process.argv.slice(2) : await projectDockerfiles();
  let failed = false;
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    for (const p of lintDockerfile(text)) {
      failed = true;
      console.error(`${file}:${p.line}: [${p.rule}] ${p.message}`);
    }
    for (const arg of requiredBuildArgs(text)) console.warn(`${file}: the build must pass --build-arg ${arg}=<image>@sha256:<digest>`);
  }
  if (failed) process.exit(1);
  console.log(`${files.length} Dockerfile(s) pass`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
