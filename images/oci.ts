// OCI image layout pieces for the daemonless build: layer blobs made with GNU tar from a staged folder, a
// content-addressed blob store in the cache, and the config, manifest and archive around them. Written here rather
// than driven through buildah because buildah's vfs driver (the only one without fuse-overlayfs here) copies the
// whole root file system for every layer and re-compresses every layer on each push: the runtime image holds a
// 6 GB Python environment, so an edit to one TypeScript file would cost minutes. Here a layer is made once per
// content key and an unchanged layer is a file that already exists.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile, copyFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';

export type Compression = 'gzip' | 'zstd';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface Layer extends Descriptor {
  /** sha256 of the uncompressed tar: the image config's rootfs.diff_ids. */
  diffId: string;
  /** What made it, for the image history. */
  createdBy: string;
}

export const MEDIA = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export class BlobStore {
  constructor(readonly dir: string) {}

  path(digest: string): string {
    return join(this.dir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
  }

  async has(digest: string): Promise<boolean> {
    return stat(this.path(digest)).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  async putJson(mediaType: string, value: unknown): Promise<Descriptor> {
    const body = Buffer.from(JSON.stringify(value));
    const digest = `sha256:${sha256(body)}`;
    const path = this.path(digest);
    await mkdir(dirname(path), { recursive: true });
    if (!(await this.has(digest))) await writeFile(path, body);
    return { mediaType, digest, size: body.length };
  }

  async readJson<T>(digest: string): Promise<T> {
    return JSON.parse(await readFile(this.path(digest), 'utf8')) as T;
  }
}

/** Waits for a child and turns a non-zero exit into an error carrying its stderr. */
function finished(child: ReturnType<typeof spawn>, what: string): Promise<void> {
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new Error(`${what}: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${what} exited ${code}: ${err.trim()}`))));
  });
}

export interface LayerOptions {
  /** Store every entry as uid/gid 0 (COPY without --chown); otherwise the staged ownership is kept. */
  rootOwned: boolean;
  /** Seconds since the epoch for every entry; absent keeps the staged times (Python's .pyc files check them). */
  mtime?: number;
  compression: Compression;
  createdBy: string;
}

/**
 * A layer blob from everything under `staged` (paths in the tar are relative to it, as image layers are). The tar is
 * made reproducible: sorted names, no atime/ctime, pax headers without a process id.
 */
export async function makeLayer(store: BlobStore, staged: string, opts: LayerOptions): Promise<Layer> {
  const entries = (await readdir(staged)).sort();
  if (!entries.length) throw new Error(`makeLayer: ${staged} is empty`);
  const tarArgs = [
    '--create',
    '--file=-',
    `--directory=${staged}`,
    '--sort=name',
    '--numeric-owner',
    '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '--no-acls',
    '--no-xattrs',
    '--no-selinux',
    ...(opts.rootOwned ? ['--owner=0', '--group=0'] : []),
    ...(opts.mtime !== undefined ? [`--mtime=@${opts.mtime}`] : []),
    '--',
    ...entries,
  ];
  const tmpDir = join(store.dir, 'tmp');
  await mkdir(tmpDir, { recursive: true });
  const tmp = join(tmpDir, `layer-${process.pid}-${Date.now()}`);
  const tar = spawn('tar', tarArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  const compressor =
    opts.compression === 'zstd'
      ? spawn('zstd', ['-q', '-3', '-T1', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn('gzip', ['-n', '-6', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const diff = createHash('sha256');
  const blob = createHash('sha256');
  let size = 0;
  tar.stdout.on('data', (d: Buffer) => diff.update(d));
  compressor.stdout.on('data', (d: Buffer) => {
    blob.update(d);
    size += d.length;
  });
  await Promise.all([
    finished(tar, 'tar'),
    finished(compressor, opts.compression),
    pipeline(tar.stdout, compressor.stdin),
    pipeline(compressor.stdout, createWriteStream(tmp)),
  ]).catch(async (e: unknown) => {
    await rm(tmp, { force: true });
    throw e;
  });
  const digest = `sha256:${blob.digest('hex')}`;
  const path = store.path(digest);
  await mkdir(dirname(path), { recursive: true });
  await rename(tmp, path);
  return { mediaType: MEDIA[opts.compression], digest, size, diffId: `sha256:${diff.digest('hex')}`, createdBy: opts.createdBy };
}

export interface ImageConfigJson {
  architecture: 'amd64';
  os: 'linux';
  created: string;
  config: {
    User: string;
    Env: string[];
    Entrypoint: string[];
    Cmd?: string[];
    WorkingDir: string;
    Labels: Record<string, string>;
    ExposedPorts?: Record<string, Record<string, never>>;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history: { created: string; created_by: string }[];
}

export interface ManifestJson {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/**
 * Writes `<out>` as an OCI image layout in a tar (what `skopeo copy oci-archive:`, `ctr images import` and Docker
 * 25's `docker load` read). The index names the image by its full reference under both annotations containerd and
 * skopeo look at, so an import needs no --base-name.
 */
export async function writeOciArchive(store: BlobStore, out: string, manifest: Descriptor, reference: string): Promise<number> {
  const m = await store.readJson<ManifestJson>(manifest.digest);
  const blobs = [manifest.digest, m.config.digest, ...m.layers.map((l) => l.digest)];
  await mkdir(dirname(out), { recursive: true });
  const work = await mkdtemp(join(dirname(out), '.layout-'));
  try {
    await mkdir(join(work, 'blobs', 'sha256'), { recursive: true });
    for (const d of blobs) {
      const to = join(work, 'blobs', 'sha256', d.replace(/^sha256:/, ''));
      // Hard links keep a 6 GB layer from being copied twice; a cache on another file system falls back to a copy.
      await link(store.path(d), to).catch(() => copyFile(store.path(d), to));
    }
    await writeFile(join(work, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA.index,
      manifests: [{ ...manifest, annotations: { 'io.containerd.image.name': reference, 'org.opencontainers.image.ref.name': reference } }],
    };
    await writeFile(join(work, 'index.json'), JSON.stringify(index));
    const tmp = `${out}.tmp`;
    const tar = spawn(
      'tar',
      ['--create', `--file=${tmp}`, `--directory=${work}`, '--sort=name', '--numeric-owner', '--owner=0', '--group=0', '--mtime=@0', '--format=posix',
        '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', 'oci-layout', 'index.json', 'blobs'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    await finished(tar, 'tar (OCI archive)');
    await rename(tmp, out);
    return (await stat(out)).size;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
