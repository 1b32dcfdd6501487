// A pod's volumes as directories on this machine, and each container's mounts of them. File-backed volumes
// (configMap, secret, downwardAPI, projected) are written under the pod's directory and rewritten in place on
// every container start; emptyDir is a directory there too; hostPath is the host path itself; a
// persistentVolumeClaim is the path of its bound hostPath/local PersistentVolume, or else a directory per claim
// under the node's data directory, which outlives the pod (as a claim does).
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { ContainerConfigError, expandVars, fieldValue, resourceValue, type Allocatable, type PodFacts } from './pod-env.ts';
import type { Container, ObjectReader, PersistentVolume, PersistentVolumeClaim, Pod, Volume } from './kube-types.ts';
import type { MountSpec } from './mount-helper.ts';

/** A volume cannot be set up (the kubelet's FailedMount); the pod waits and it is tried again. */
export class VolumeError extends Error {
  override readonly name = 'VolumeError';
}

export interface VolumeReader extends ObjectReader {
  pvc(namespace: string, name: string): Promise<PersistentVolumeClaim | undefined>;
  pv(name: string): Promise<PersistentVolume | undefined>;
  /** A token from the TokenRequest API, bound to the pod. */
  serviceAccountToken(
    namespace: string,
    serviceAccount: string,
    pod: { name: string; uid: string },
    audience: string | undefined,
    expirationSeconds: number | undefined,
  ): Promise<string>;
}

export interface VolumeContext {
  pod: Pod;
  podDir: string;
  dataDir: string;
  facts: PodFacts;
  allocatable: Allocatable;
  reader: VolumeReader;
}

export interface PreparedVolume {
  name: string;
  path: string;
  kind: 'dir' | 'file';
  /** The volume type is read-only in Kubernetes (configMap, secret, downwardAPI, projected) or the claim says so. */
  readOnly: boolean;
}

interface FileEntry {
  path: string;
  data: Buffer;
  mode: number;
}

function checkRelative(path: string, volume: string): string {
  const norm = posix.normalize(path);
  if (!path || posix.isAbsolute(path) || norm === '..' || norm.startsWith('../')) {
    throw new VolumeError(`volume "${volume}": item path ${JSON.stringify(path)} must be relative and stay inside the volume`);
  }
  return norm;
}

/** Writes exactly `files` into `dir`: each one atomically (a reader sees the old or the new content), extra files removed. */
export function syncFiles(dir: string, files: FileEntry[]): void {
  mkdirSync(dir, { recursive: true });
  const wanted = new Set<string>();
  for (const f of files) {
    const target = join(dir, f.path);
    wanted.add(target);
    mkdirSync(dirname(target), { recursive: true });
    const tmp = join(dirname(target), `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
    writeFileSync(tmp, f.data, { mode: f.mode });
    renameSync(tmp, target);
  }
  const prune = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) {
        prune(p);
        if (readdirSync(p).length === 0 && ![...wanted].some((w) => w.startsWith(`${p}/`))) rmSync(p, { recursive: true });
      } else if (!wanted.has(p)) rmSync(p, { force: true });
    }
  };
  prune(dir);
}

type KeyItems = { key: string; path: string; mode?: number }[] | undefined;

function keyedFiles(
  what: string,
  volume: string,
  data: Record<string, Buffer> | undefined,
  items: KeyItems,
  optional: boolean | undefined,
  mode: number,
): FileEntry[] {
  if (!data) {
    if (optional) return [];
    throw new VolumeError(`volume "${volume}": ${what} not found`);
  }
  if (!items || items.length === 0) {
    return Object.entries(data).map(([k, v]) => ({ path: checkRelative(k, volume), data: v, mode }));
  }
  const out: FileEntry[] = [];
  for (const item of items) {
    const value = data[item.key];
    if (value === undefined) {
      if (optional) continue;
      throw new VolumeError(`volume "${volume}": couldn't find key ${item.key} in ${what}`);
    }
    out.push({ path: checkRelative(item.path, volume), data: value, mode: item.mode ?? mode });
  }
  return out;
}

const utf8 = (m: Record<string, string> | undefined) =>
  Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, Buffer.from(v, 'utf8')]));
const base64 = (m: Record<string, string> | undefined) =>
  Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]));

async function configMapFiles(
  ctx: VolumeContext,
  volume: string,
  src: { name?: string; items?: KeyItems; optional?: boolean },
  mode: number,
): Promise<FileEntry[]> {
  const cm = await ctx.reader.configMap(ctx.pod.metadata?.namespace ?? 'default', src.name ?? '');
  const data = cm ? { ...utf8(cm.data), ...base64(cm.binaryData) } : undefined;
  return keyedFiles(`configmap "${src.name}"`, volume, data, src.items, src.optional, mode);
}

async function secretFiles(
  ctx: VolumeContext,
  volume: string,
  name: string | undefined,
  src: { items?: KeyItems; optional?: boolean },
  mode: number,
): Promise<FileEntry[]> {
  const secret = await ctx.reader.secret(ctx.pod.metadata?.namespace ?? 'default', name ?? '');
  return keyedFiles(`secret "${name}"`, volume, secret ? base64(secret.data) : undefined, src.items, src.optional, mode);
}

type DownwardItem = NonNullable<NonNullable<Volume['downwardAPI']>['items']>[number];

function downwardFiles(ctx: VolumeContext, volume: string, items: DownwardItem[] | undefined, mode: number): FileEntry[] {
  return (items ?? []).map((item) => {
    let value: string;
    try {
      if (item.fieldRef) value = fieldValue(ctx.pod, item.fieldRef.fieldPath, ctx.facts, true);
      else if (item.resourceFieldRef) {
        const r = item.resourceFieldRef;
        const container = ctx.pod.spec?.containers.find((c) => c.name === r.containerName);
        if (!container) throw new ContainerConfigError(`no container named ${JSON.stringify(r.containerName)}`);
        value = resourceValue(container, r.resource, r.divisor, ctx.allocatable);
      } else throw new ContainerConfigError('item has neither fieldRef nor resourceFieldRef');
    } catch (err) {
      throw new VolumeError(`volume "${volume}": ${item.path}: ${(err as Error).message}`);
    }
    return { path: checkRelative(item.path, volume), data: Buffer.from(value), mode: item.mode ?? mode };
  });
}

async function claimPath(ctx: VolumeContext, volume: string, claimName: string): Promise<string> {
  const ns = ctx.pod.metadata?.namespace ?? 'default';
  const pvc = await ctx.reader.pvc(ns, claimName);
  if (!pvc) throw new VolumeError(`volume "${volume}": persistentvolumeclaim "${claimName}" not found`);
  const pvName = pvc.spec?.volumeName;
  const pv = pvName ? await ctx.reader.pv(pvName) : undefined;
  const bound = pv?.spec?.hostPath?.path ?? pv?.spec?.local?.path;
  const path = bound ?? join(ctx.dataDir, 'claims', ns, claimName);
  mkdirSync(path, { recursive: true });
  return path;
}

function hostPathVolume(volume: string, path: string, type: string | undefined): PreparedVolume {
  const fail = (what: string) => new VolumeError(`volume "${volume}": hostPath ${path} ${what}`);
  const st = () => statSync(path, { throwIfNoEntry: false });
  switch (type ?? '') {
    case '':
    case 'DirectoryOrCreate':
      if (!st()) mkdirSync(path, { recursive: true, mode: 0o755 });
      break;
    case 'FileOrCreate':
      if (!st()) {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, '', { mode: 0o644, flag: 'wx' });
      }
      break;
    case 'Directory':
      if (!st()?.isDirectory()) throw fail('is not a directory');
      break;
    case 'File':
      if (!st()?.isFile()) throw fail('is not a file');
      break;
    case 'Socket':
      if (!st()?.isSocket()) throw fail('is not a socket');
      break;
    case 'CharDevice':
      if (!st()?.isCharacterDevice()) throw fail('is not a character device');
      break;
    case 'BlockDevice':
      if (!st()?.isBlockDevice()) throw fail('is not a block device');
      break;
    default:
      throw fail(`has an unknown type ${JSON.stringify(type)}`);
  }
  return { name: volume, path, kind: st()!.isDirectory() ? 'dir' : 'file', readOnly: false };
}

const defaultMode = 0o644;
// Secret files are for their owner only. The API server fills in defaultMode 0644 when a pod leaves it out, so
// that value is read as "unset"; any other mode the pod asks for is kept.
const secretMode = (requested: number | undefined) => (requested === undefined || requested === defaultMode ? 0o400 : requested);

/** Sets up every volume of the pod (again, on each container start, so file contents are current). */
export async function prepareVolumes(ctx: VolumeContext): Promise<Map<string, PreparedVolume>> {
  const out = new Map<string, PreparedVolume>();
  const pod = ctx.pod;
  for (const v of pod.spec?.volumes ?? []) {
    const dir = join(ctx.podDir, 'volumes', v.name);
    const files = async (entries: Promise<FileEntry[]> | FileEntry[]) => {
      syncFiles(dir, await entries);
      out.set(v.name, { name: v.name, path: dir, kind: 'dir', readOnly: true });
    };
    if (v.emptyDir || v.ephemeral) {
      mkdirSync(dir, { recursive: true });
      out.set(v.name, { name: v.name, path: dir, kind: 'dir', readOnly: false });
    } else if (v.hostPath) {
      out.set(v.name, hostPathVolume(v.name, v.hostPath.path, v.hostPath.type));
    } else if (v.configMap) {
      await files(configMapFiles(ctx, v.name, v.configMap, v.configMap.defaultMode ?? defaultMode));
    } else if (v.secret) {
      await files(secretFiles(ctx, v.name, v.secret.secretName, v.secret, secretMode(v.secret.defaultMode)));
    } else if (v.downwardAPI) {
      await files(downwardFiles(ctx, v.name, v.downwardAPI.items, v.downwardAPI.defaultMode ?? defaultMode));
    } else if (v.projected) {
      const mode = v.projected.defaultMode ?? defaultMode;
      const all: FileEntry[] = [];
      for (const s of v.projected.sources ?? []) {
        if (s.configMap) all.push(...(await configMapFiles(ctx, v.name, s.configMap, mode)));
        else if (s.secret) all.push(...(await secretFiles(ctx, v.name, s.secret.name, s.secret, mode)));
        else if (s.downwardAPI) all.push(...downwardFiles(ctx, v.name, s.downwardAPI.items, mode));
        else if (s.serviceAccountToken) {
          const t = s.serviceAccountToken;
          const token = await ctx.reader
            .serviceAccountToken(
              pod.metadata?.namespace ?? 'default',
              pod.spec?.serviceAccountName ?? 'default',
              { name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' },
              t.audience,
              t.expirationSeconds,
            )
            .catch((err: unknown) => {
              throw new VolumeError(`volume "${v.name}": service account token: ${(err as Error).message}`);
            });
          all.push({ path: checkRelative(t.path, v.name), data: Buffer.from(token), mode });
        } else throw new VolumeError(`volume "${v.name}": this projected source is not supported by the local node`);
      }
      await files(all);
    } else if (v.persistentVolumeClaim) {
      const path = await claimPath(ctx, v.name, v.persistentVolumeClaim.claimName);
      out.set(v.name, { name: v.name, path, kind: 'dir', readOnly: v.persistentVolumeClaim.readOnly ?? false });
    } else {
      const type = Object.keys(v).find((k) => k !== 'name') ?? 'unknown';
      throw new VolumeError(`volume "${v.name}": ${type} volumes are not supported by the local node`);
    }
  }
  return out;
}

/** Where each of the container's volumeMounts comes from, ready for the mount helper. */
export function containerMounts(container: Container, volumes: ReadonlyMap<string, PreparedVolume>, env: Record<string, string>): MountSpec[] {
  return (container.volumeMounts ?? []).map((m) => {
    const vol = volumes.get(m.name);
    if (!vol) throw new ContainerConfigError(`volumeMount ${JSON.stringify(m.name)} names no volume of the pod`);
    let source = vol.path;
    let kind = vol.kind;
    const sub = m.subPathExpr !== undefined ? expandVars(m.subPathExpr, env) : m.subPath;
    if (sub) {
      if (vol.kind !== 'dir') throw new ContainerConfigError(`volumeMount ${m.name}: subPath into a file volume`);
      const rel = posix.normalize(sub);
      if (posix.isAbsolute(rel) || rel === '..' || rel.startsWith('../')) {
        throw new ContainerConfigError(`volumeMount ${m.name}: subPath ${JSON.stringify(sub)} must stay inside the volume`);
      }
      source = join(vol.path, rel);
      if (relative(vol.path, source).startsWith('..')) throw new ContainerConfigError(`volumeMount ${m.name}: subPath escapes the volume`);
      // As the kubelet does: a subPath that does not exist yet becomes a directory of the volume.
      if (!existsSync(source)) mkdirSync(source, { recursive: true });
      kind = statSync(source).isDirectory() ? 'dir' : 'file';
    }
    return { source, target: m.mountPath, readOnly: Boolean(m.readOnly) || vol.readOnly, kind };
  });
}
