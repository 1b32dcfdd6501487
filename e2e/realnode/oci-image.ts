// Single-layer OCI image archives from a handful of files, for the real node's pause image and the test images.
// Small on purpose and the one place that makes images for the node: `make images` (images/oci.ts on the images
// branch) builds the product's images with its own cached, multi-layer builder and can take this over.
//
// The layer is an uncompressed tar written by GNU tar with fixed owners and times, so the same files give the same
// digest; `ctr images import` loads the archive under the name in its index annotations.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ImageFile {
  /** Absolute path inside the image. */
  path: string;
  /** A file on this machine to copy, or the contents. */
  from?: string;
  content?: string;
  mode?: number;
  /** A symbolic link to this target instead of a file. */
  linkTo?: string;
}

export interface ImageSpec {
  /** The full, normalised reference (`localhost/arena/pause:v1`): CRI looks images up by that name. */
  name: string;
  files: ImageFile[];
  /** Empty directories, e.g. /tmp. */
  dirs?: string[];
  entrypoint?: string[];
  cmd?: string[];
  user?: string;
  env?: string[];
  workingDir?: string;
}

export interface BuiltImage {
  name: string;
  archive: string;
  /** The manifest digest, as containerd reports it. */
  digest: string;
}

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function tarFolder(folder: string, out: string, members = '.'): Promise<void> {
  await run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-cf', out, '-C', folder, members]);
}

export async function buildImage(spec: ImageSpec, archive: string): Promise<BuiltImage> {
  const work = await mkdtemp(join(tmpdir(), 'arena-oci-'));
  try {
    const root = join(work, 'root');
    await mkdir(root);
    for (const d of spec.dirs ?? []) await mkdir(join(root, d), { recursive: true, mode: 0o1777 });
    for (const f of spec.files) {
      const dest = join(root, f.path);
      await mkdir(dirname(dest), { recursive: true });
      if (f.linkTo !== undefined) await symlink(f.linkTo, dest);
      else if (f.from !== undefined) await copyFile(f.from, dest);
      else await writeFile(dest, f.content ?? '');
      if (f.linkTo === undefined) await chmod(dest, f.mode ?? 0o644);
    }
    // mkdir's mode is masked by the umask; /tmp-like folders need the sticky, world-writable bits for real.
    for (const d of spec.dirs ?? []) await chmod(join(root, d), 0o1777);

    const layout = join(work, 'layout');
    const blobs = join(layout, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    const layerFile = join(work, 'layer.tar');
    await tarFolder(root, layerFile);
    const layer = await readFile(layerFile);
    const layerDigest = sha256(layer);
    const put = async (data: Buffer | string) => {
      const digest = sha256(data);
      await writeFile(join(blobs, digest.slice('sha256:'.length)), data);
      return { digest, size: Buffer.byteLength(data) };
    };
    await put(layer);
    const config = JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {
        Entrypoint: spec.entrypoint,
        Cmd: spec.cmd,
        User: spec.user,
        Env: spec.env ?? ['PATH=/bin'],
        WorkingDir: spec.workingDir ?? '/',
      },
      rootfs: { type: 'layers', diff_ids: [layerDigest] },
      history: [{ created_by: 'e2e/realnode/oci-image.ts' }],
    });
    const cfg = await put(config);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    });
    const man = await put(manifest);
    const tag = spec.name.slice(spec.name.lastIndexOf(':') + 1);
    await writeFile(
      join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...man,
            annotations: { 'io.containerd.image.name': spec.name, 'org.opencontainers.image.ref.name': tag },
          },
        ],
      }),
    );
    await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await mkdir(dirname(archive), { recursive: true });
    await tarFolder(layout, archive);
    return { name: spec.name, archive, digest: man.digest };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The sandbox image: the static pause binary built from the Kubernetes module (e2e/toolchain/build-node.sh). */
export function pauseImage(binDir: string, k8sVersion: string): ImageSpec {
  return {
    name: `localhost/arena/pause:${k8sVersion}`,
    files: [{ path: '/pause', from: join(binDir, 'pause'), mode: 0o755 }],
    entrypoint: ['/pause'],
    user: '65535:65535',
  };
}

export const busyboxImageName = (tag = 'test') => `localhost/arena/busybox:${tag}`;

/**
 * busybox from Debian's busybox-static, with a link per applet, so tests run shell scripts, nslookup, wget and nc
 * as ordinary commands. `applets` is what `busybox --list` prints.
 */
export function busyboxImage(binDir: string, applets: string[], tag = 'test'): ImageSpec {
  return {
    name: busyboxImageName(tag),
    files: [
      { path: '/bin/busybox', from: join(binDir, 'busybox'), mode: 0o755 },
      ...applets.filter((a) => a !== 'busybox').map((a) => ({ path: `/bin/${a}`, linkTo: 'busybox' })),
      { path: '/etc/passwd', content: 'root:x:0:0:root:/:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n' },
      { path: '/etc/group', content: 'root:x:0:\nuser:x:1000:\n' },
    ],
    dirs: ['/tmp'],
    cmd: ['/bin/sh'],
  };
}
