// What an image must hold for its entrypoint to start, read from the entrypoint itself: the script on PATH that the
// ENTRYPOINT names, the file it hands to node, the files and packages that file imports, and the paths the image's
// ENV points at. The unit test checks a Dockerfile provides them (so the Dockerfile and the daemonless build, which
// is derived from it, cannot drift from the entrypoints), and the built-image check finds them in the image.
import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { ImageSpec } from './build-spec.ts';
import { resolveContextCopy, type ContextFile } from './build.ts';

export interface Need {
  path: string;
  why: string;
}

const PATH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Where each final-stage COPY puts files: context files exactly, a stage's output as a folder. */
export function provided(spec: ImageSpec, context: Map<string, ContextFile>, where: string): { files: Map<string, ContextFile>; dirs: string[] } {
  const files = new Map<string, ContextFile>();
  const dirs: string[] = [];
  for (const s of spec.steps) {
    if (s.kind === 'mkdir') dirs.push(...s.dirs);
    if (s.kind !== 'copy') continue;
    if (s.from) dirs.push(s.dest.replace(/\/$/, '') || '/');
    else for (const { file, dest } of resolveContextCopy(s, context, where)) files.set(dest, file);
  }
  return { files, dirs };
}

export async function entrypointNeeds(spec: ImageSpec, context: Map<string, ContextFile>, repo: string, where: string): Promise<Need[]> {
  const needs: Need[] = [{ path: '/usr/local/bin/node', why: 'node, which the entrypoint scripts run' }];
  const { files } = provided(spec, context, where);
  const cmd = spec.config.entrypoint[0]!;
  const script = cmd.startsWith('/') ? cmd : (PATH_DIRS.map((d) => `${d}/${cmd}`).find((p) => files.has(p)) ?? `/usr/local/bin/${cmd}`);
  needs.push({ path: script, why: `ENTRYPOINT ${cmd}` });
  const scriptFile = files.get(script);
  if (scriptFile) {
    const text = await readFile(join(repo, scriptFile.rel), 'utf8');
    const target = /^exec node (\S+)/m.exec(text)?.[1];
    if (target) {
      needs.push({ path: target, why: `${script} runs node ${target}` });
      const module = files.get(target);
      if (module) {
        const source = await readFile(join(repo, module.rel), 'utf8');
        for (const m of source.matchAll(/new URL\('(\.[^']+)', import\.meta\.url\)/g)) {
          needs.push({ path: posix.join(posix.dirname(target), m[1]!), why: `${target} imports ${m[1]}` });
        }
        for (const m of source.matchAll(/^import .* from '([^.'][^']*)';/gm)) {
          const pkg = m[1]!.startsWith('@') ? m[1]!.split('/').slice(0, 2).join('/') : m[1]!.split('/')[0]!;
          if (!m[1]!.startsWith('node:')) needs.push({ path: posix.join(posix.dirname(target), 'node_modules', pkg), why: `${target} imports ${m[1]}` });
        }
      }
    }
  }
  for (const [k, v] of spec.config.env) if (v.startsWith('/')) needs.push({ path: v, why: `ENV ${k}` });
  return needs;
}

/** The needs no COPY, stage output or RUN mkdir of the final stage provides. */
export function unprovided(spec: ImageSpec, context: Map<string, ContextFile>, needs: Need[], where: string): Need[] {
  const { files, dirs } = provided(spec, context, where);
  const under = (p: string, d: string) => p === d || p.startsWith(d === '/' ? '/' : `${d}/`);
  // The node binary is the base's (the Debian equivalent of the node image), not a COPY.
  return needs.filter((n) => n.path !== '/usr/local/bin/node' && !files.has(n.path) && ![...files.keys()].some((f) => under(f, n.path)) && !dirs.some((d) => under(n.path, d)));
}
