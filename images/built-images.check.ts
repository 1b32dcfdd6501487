// `make images-check`: the images `make images` wrote actually work, without a container runtime. Each OCI archive in
// dist/images/ is read as skopeo reads it, its layers are unpacked in order into a scratch root, and the entrypoint
// runs there in a chroot as the image's user, on a read-only root with a tmpfs /tmp, with only the image's
// environment: the way the chart's locked-down pods run it. Needs root and the archives (run make images first).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { readImageSpec } from './build-spec.ts';
import { contextFiles, defaultCacheDir, dockerfilePath, readImagesJson, repoDir, type BuiltImage, type ImageName } from './build.ts';
import { runInChroot, type ChrootResult } from './chroot.ts';
import { entrypointNeeds } from './contract.ts';
import type { ImageConfigJson, ManifestJson } from './oci.ts';

const run = promisify(execFile);
const outDir = process.env.ARENA_IMAGES_DIR ?? join(repoDir, 'dist', 'images');

interface Unpacked {
  root: string;
  config: ImageConfigJson;
}

/** The archive's index, manifest and config, then every layer applied in order (this build writes no whiteouts). */
async function unpack(archive: string, work: string): Promise<Unpacked> {
  const layout = join(work, 'layout');
  const root = join(work, 'root');
  await mkdir(layout, { recursive: true });
  await mkdir(root, { recursive: true });
  await run('tar', ['-xf', archive, '-C', layout]);
  const blob = (d: string) => join(layout, 'blobs', 'sha256', d.replace(/^sha256:/, ''));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.equal(index.manifests.length, 1, 'one image per archive');
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as ManifestJson;
  const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as ImageConfigJson;
  for (const l of manifest.layers) {
    const decompress = l.mediaType.endsWith('+zstd') ? 'zstd -dc' : 'gzip -dc';
    await run('bash', ['-c', `set -o pipefail; ${decompress} "$1" | tar -x --numeric-owner -C "$2"`, 'unpack', blob(l.digest), root], { maxBuffer: 1 << 20 });
  }
  const { stdout } = await run('find', [root, '-name', '.wh.*', '-print', '-quit']);
  assert.equal(stdout.trim(), '', 'no whiteout files: the layers only add');
  await rm(layout, { recursive: true, force: true });
  return { root, config };
}

/** The entrypoint (or another argv) as the image's user, in its working directory, with its environment. */
function inImage(u: Unpacked, argv: string[], timeoutMs = 120_000): Promise<ChrootResult> {
  return runInChroot(u.root, argv, {
    user: u.config.config.User,
    cwd: u.config.config.WorkingDir,
    env: u.config.config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] as [string, string]),
    readOnlyRoot: true,
    timeoutMs,
  });
}

function ok(r: ChrootResult, what: string): string {
  assert.equal(r.code, 0, `${what} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function describeImage(name: ImageName, checks: (u: () => Unpacked) => void): void {
  describe(`the built ${name} image`, () => {
    let work: string;
    let unpacked: Unpacked | undefined;
    let built: BuiltImage;
    before(async () => {
      const images = await readImagesJson(outDir);
      const found = images?.images.find((i) => i.name === name);
      if (!found) throw new Error(`no ${name} image in ${relative(process.cwd(), join(outDir, 'images.json'))}: run make images first`);
      built = found;
      await mkdir(join(defaultCacheDir(), 'tmp'), { recursive: true });
      work = await mkdtemp(join(defaultCacheDir(), 'tmp', `check-${name}-`));
      const start = Date.now();
      unpacked = await unpack(join(outDir, built.archive), work);
      console.log(`# ${name}: unpacked ${built.archive} in ${((Date.now() - start) / 1000).toFixed(1)}s`);
    });
    after(async () => {
      if (work) await rm(work, { recursive: true, force: true });
    });
    const u = () => unpacked!;

    test('skopeo reads the archive and finds the digest images.json records', async () => {
      const { stdout } = await run('skopeo', ['inspect', '--raw', `oci-archive:${join(outDir, built.archive)}`], { maxBuffer: 16 << 20 }).catch((e: Error) => {
        throw new Error(`skopeo inspect failed (${e.message}); skopeo comes from bash scripts/ensure-image-tools.sh`);
      });
      assert.equal(`sha256:${createHashHex(stdout)}`, built.digest);
    });

    test('the config is what the Dockerfile says', async () => {
      const spec = readImageSpec(await readFile(dockerfilePath(name), 'utf8'), { args: { VERSION: u().config.config.Labels['org.opencontainers.image.version'] ?? '', REVISION: u().config.config.Labels['org.opencontainers.image.revision'] ?? '' } });
      const c = u().config.config;
      assert.equal(c.User, spec.config.user);
      assert.deepEqual(c.Entrypoint, spec.config.entrypoint);
      assert.deepEqual(c.Cmd, spec.config.cmd);
      assert.equal(c.WorkingDir, spec.config.workingDir);
      assert.deepEqual(c.Labels, spec.config.labels);
      for (const [k, v] of spec.config.env) assert.ok(c.Env.includes(`${k}=${v}`), `ENV ${k}=${v}`);
      assert.deepEqual(Object.keys(c.ExposedPorts ?? {}), spec.config.exposedPorts);
    });

    test('every file the entrypoint needs is in the image', async () => {
      const where = `images/${name}/Dockerfile`;
      const spec = readImageSpec(await readFile(dockerfilePath(name), 'utf8'), { where });
      const needs = await entrypointNeeds(spec, await contextFiles(repoDir, dockerfilePath(name)), repoDir, where);
      for (const n of needs) await stat(join(u().root, n.path)).catch(() => assert.fail(`${n.path} (${n.why}) is not in the image`));
    });

    checks(u);
  });
}

function createHashHex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

describeImage('operator', (u) => {
  test('arena-operator starts as uid 65532 on a read-only root and prints its options', async () => {
    assert.match(ok(await inImage(u(), [...u().config.config.Entrypoint, '--help']), 'arena-operator --help'), /^arena-operator \[options\]/);
  });

  test("the platform's validator answers through the image's Python", async () => {
    const request = JSON.stringify({ id: 7, op: 'verdict', document: { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } } });
    const out = ok(await inImage(u(), ['/bin/sh', '-c', `echo '${request}' | "$ARENA_PYTHON" /app/operator/api/platform/verdict_server.py`]), 'verdict_server.py');
    const answer = JSON.parse(out.trim().split('\n')[0]!) as { id: number };
    assert.equal(answer.id, 7, `an answer to the request: ${out}`);
  });

  test('the kubectl plugin stays out of the operator image', async () => {
    await assert.rejects(stat(join(u().root, 'app', 'operator', 'plugin')));
  });
});

describeImage('runtime', (u) => {
  test('the default command (arena-runtime --help) runs as uid 1000 on a read-only root', async () => {
    const c = u().config.config;
    assert.match(ok(await inImage(u(), [...c.Entrypoint, ...(c.Cmd ?? [])]), 'arena-runtime --help'), /usage: arena-runtime <command>/);
  });

  test('arena-runtime probe prints the host as JSON', async () => {
    const host = JSON.parse(ok(await inImage(u(), ['arena-runtime', 'probe']), 'arena-runtime probe')) as Record<string, unknown>;
    assert.ok('gpu' in host);
  });

  test('AgileRL and torch import in the Python environment', async () => {
    const out = ok(await inImage(u(), ['/bin/sh', '-c', '"$ARENA_PYTHON" -c "import agilerl, torch; print(torch.__version__)"'], 300_000), 'import agilerl');
    assert.match(out, /^\d+\.\d+/m);
  });

  test('as in a locked-down pod, the root is read-only and /tmp is writable', async () => {
    const r = await inImage(u(), ['/bin/sh', '-c', 'touch /workspace/x 2>&1; touch /tmp/x && echo tmp-ok']);
    assert.match(r.stdout, /Read-only file system/);
    assert.match(r.stdout, /tmp-ok/);
  });

  test('the working directory belongs to uid 1000', async () => {
    assert.equal(ok(await inImage(u(), ['stat', '-c', '%u:%g', '/workspace']), 'stat').trim(), '1000:1000');
  });
});
