// Builds the setup bundle dist/arena-train-<version>.tar.gz: the packaged chart, the CRDs, the images it runs (with
// digests when known), bundle.json, the values the chart is installed with, and setup/validate/down/teardown scripts.
//
//   tsx bundle/build.ts --version 1.2.0 [--chart-version 1.2.0] [--out dist]
//                       [--image operator=REF] [--image runtime=REF] [--require-digests] [--chart DIR]
//                       [--with-images dist/images]
//
// REF is a full reference such as ghcr.io/agilerl/arena-operator:1.2.0@sha256:<64 hex>; the release pipeline
// passes what the image build pushed. Without --image the chart's repositories with the bundle version as tag are
// used, without digests (a warning; --require-digests makes it an error). --with-images DIR takes the OCI archives
// `make images` wrote there (DIR/images.json) into the bundle's images/ for an air-gapped install and pins the chart's
// images by their digests. Needs helm and GNU tar on PATH.
import { execFile } from 'node:child_process';
import { chmod, cp, link, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { parse, parseDocument, stringify } from 'yaml';
import { chartDir as defaultChartDir, syncChart } from './chart-sync.ts';
import { parseImageRef, formatImageRef, type ImageRef } from './image-ref.ts';
import { readImagesJson } from '../images/build.ts';

const run = promisify(execFile);
const bundleDir = fileURLToPath(new URL('.', import.meta.url));

/** bundle.json's layout version; a reader refuses a bundle with a schemaVersion it does not know. */
export const BUNDLE_SCHEMA_VERSION = 1;
export const BUNDLE_ROOT = 'arena-train';
const SEMVER = /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
const IMAGE_NAMES = ['operator', 'runtime'] as const;
type ImageName = (typeof IMAGE_NAMES)[number];

export interface BuildOptions {
  version: string;
  chartVersion?: string;
  /** Folder the tarball is written to; default <repo>/dist. */
  outDir?: string;
  images?: Partial<Record<ImageName, string>>;
  requireDigests?: boolean;
  /** The chart to package; default charts/arena-operator (which must be in step with crds/). */
  chartDir?: string;
  /** Values merged into the bundle's values.yaml (tests use it; admins pass -f to setup.sh instead). */
  extraValues?: Record<string, unknown>;
  helm?: string;
  /** Seconds since the epoch stamped on every file of the outer archive; default $SOURCE_DATE_EPOCH or 0. */
  sourceDateEpoch?: number;
  /** A folder `make images` wrote (images.json and the OCI archives): the bundle carries them and pins their digests. */
  withImages?: string;
}

export interface BundleImage {
  name: ImageName;
  reference: string;
  digest: string | null;
  /** The image's OCI archive inside the bundle, when it carries one (--with-images). */
  archive?: string;
}

export interface ImageArchive {
  name: ImageName;
  /** The reference with its digest, e.g. ghcr.io/agilerl/arena-runtime:1.2.0@sha256:... */
  reference: string;
  digest: string;
  path: string;
  size: number;
}

/** The archives `make images` wrote to `dir` for this bundle version, each checked to be there at the size recorded. */
export async function imageArchives(dir: string, version: string): Promise<ImageArchive[]> {
  const index = await readImagesJson(dir);
  if (!index) throw new Error(`--with-images ${dir}: no images.json there; run make images first`);
  if (index.version !== version) throw new Error(`--with-images ${dir}: the images are version ${index.version}, the bundle ${version}; run make images VERSION=${version}`);
  const out: ImageArchive[] = [];
  for (const name of IMAGE_NAMES) {
    const img = index.images.find((i) => i.name === name);
    if (!img) throw new Error(`--with-images ${dir}: images.json has no ${name} image; run make images`);
    const path = join(dir, img.archive);
    const size = await stat(path).then((st) => st.size, () => -1);
    if (size !== img.size) throw new Error(`--with-images ${dir}: ${img.archive} is ${size < 0 ? 'missing' : `${size} bytes, not the ${img.size} images.json records`}; run make images`);
    out.push({ name, reference: `${img.reference}@${img.digest}`, digest: img.digest, path, size });
  }
  return out;
}

export interface BundleManifest {
  schemaVersion: number;
  bundleVersion: string;
  chartVersion: string;
  chart: string;
  images: BundleImage[];
  crds: string[];
}

export interface BuiltBundle {
  path: string;
  manifest: BundleManifest;
  warnings: string[];
}

async function chartImageDefaults(chart: string): Promise<Record<ImageName, ImageRef>> {
  const values = parse(await readFile(join(chart, 'values.yaml'), 'utf8')) as Record<string, { registry: string; repository: string }>;
  const from = (key: string): ImageRef => {
    const v = values[key];
    if (!v?.repository) throw new Error(`${chart}/values.yaml has no ${key}.repository`);
    return { registry: v.registry || undefined, repository: v.repository };
  };
  return { operator: from('image'), runtime: from('runtimeImage') };
}

export async function buildBundle(opts: BuildOptions): Promise<BuiltBundle> {
  const version = opts.version;
  const chartVersion = opts.chartVersion ?? version;
  if (!SEMVER.test(version)) throw new Error(`--version must be a semantic version such as 1.2.0, got ${JSON.stringify(version)}`);
  if (!SEMVER.test(chartVersion)) throw new Error(`--chart-version must be a semantic version, got ${JSON.stringify(chartVersion)}`);
  const chart = resolve(opts.chartDir ?? defaultChartDir);
  if (chart === defaultChartDir) {
    const { stale, orphaned } = await syncChart({ check: true });
    if (stale.length || orphaned.length) {
      throw new Error(`charts/arena-operator is out of date with crds/ (${[...stale, ...orphaned].join(', ')}); run: npx tsx bundle/chart-sync.ts`);
    }
  }
  const warnings: string[] = [];
  const defaults = await chartImageDefaults(chart);
  const archives = opts.withImages ? await imageArchives(resolve(opts.withImages), version) : [];
  const images = {} as Record<ImageName, ImageRef>;
  for (const name of IMAGE_NAMES) {
    const archived = archives.find((a) => a.name === name)?.reference;
    if (archived && opts.images?.[name]) throw new Error(`image ${name}: pass --image ${name}=REF or --with-images, not both`);
    const given = archived ?? opts.images?.[name];
    images[name] = given ? parseImageRef(given) : { ...defaults[name], tag: version };
    if (!images[name].digest) {
      const msg = `image ${name} (${formatImageRef(images[name])}) has no digest: the bundle pins it by tag only`;
      if (opts.requireDigests) throw new Error(`${msg}; pass --image ${name}=<ref>@sha256:<digest>`);
      warnings.push(msg);
    }
  }

  const work = await mkdtemp(join(tmpdir(), 'arena-bundle-'));
  try {
    const root = join(work, BUNDLE_ROOT);
    await mkdir(join(root, 'chart'), { recursive: true });

    // The chart, stamped with the bundle's versions, packaged by helm.
    const chartCopy = join(work, 'arena-operator');
    await cp(chart, chartCopy, { recursive: true });
    const chartYaml = parseDocument(await readFile(join(chartCopy, 'Chart.yaml'), 'utf8'));
    chartYaml.set('version', chartVersion);
    chartYaml.set('appVersion', version);
    await writeFile(join(chartCopy, 'Chart.yaml'), chartYaml.toString());
    const helm = opts.helm ?? 'helm';
    await run(helm, ['package', chartCopy, '--destination', join(root, 'chart')]).catch((err: Error & { stderr?: string }) => {
      throw new Error(`helm package failed: ${err.stderr?.trim() || err.message}`);
    });
    const chartFile = `chart/arena-operator-${chartVersion}.tgz`;

    const crdFiles = (await readdir(join(chart, 'crds'))).filter((f) => f.endsWith('.yaml')).sort();
    await mkdir(join(root, 'crds'));
    for (const f of crdFiles) await cp(join(chart, 'crds', f), join(root, 'crds', f));

    const imageValues = (ref: ImageRef) => ({ registry: ref.registry ?? '', repository: ref.repository, tag: ref.tag ?? version, digest: ref.digest ?? '' });
    const values = mergeValues(
      {
        bundleVersion: version,
        image: imageValues(images.operator),
        runtimeImage: imageValues(images.runtime),
        // The bundle is the platform's current one when it is built; a newer bundle moves this forward.
        trainingCluster: { currentBundleVersion: version },
      },
      opts.extraValues ?? {},
    );
    await writeFile(
      join(root, 'values.yaml'),
      `# Values the chart is installed with by setup.sh. Edit here, or pass -f/--set to setup.sh.\n${stringify(values)}`,
    );

    const manifest: BundleManifest = {
      schemaVersion: BUNDLE_SCHEMA_VERSION,
      bundleVersion: version,
      chartVersion,
      chart: chartFile,
      images: IMAGE_NAMES.map((name) => {
        const archive = archives.find((a) => a.name === name);
        return {
          name,
          reference: formatImageRef({ ...images[name], tag: images[name].tag ?? version }),
          digest: images[name].digest ?? null,
          ...(archive ? { archive: `images/${basename(archive.path)}` } : {}),
        };
      }),
      crds: crdFiles.map((f) => `crds/${f}`),
    };
    await writeFile(join(root, 'bundle.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await writeFile(join(root, 'images.txt'), manifest.images.map((i) => i.reference).join('\n') + '\n');
    if (archives.length) {
      await mkdir(join(root, 'images'));
      // Hard links: an archive holding the runtime's CUDA libraries is gigabytes, and tar reads it from here once.
      for (const a of archives) await link(a.path, join(root, 'images', basename(a.path))).catch(() => cp(a.path, join(root, 'images', basename(a.path))));
    }

    for (const script of ['setup.sh', 'validate.sh', 'down.sh', 'teardown.sh']) {
      await cp(join(bundleDir, 'scripts', script), join(root, script));
      await chmod(join(root, script), 0o755);
    }
    await cp(join(bundleDir, 'scripts', 'README.md'), join(root, 'README.md'));

    const outDir = resolve(opts.outDir ?? join(bundleDir, '..', 'dist'));
    await mkdir(outDir, { recursive: true });
    const out = join(outDir, `${BUNDLE_ROOT}-${version}.tar.gz`);
    const epoch = opts.sourceDateEpoch ?? Number(process.env.SOURCE_DATE_EPOCH ?? 0);
    // GNU tar with a fixed order, owner and time, and gzip without a name or time, so the archive changes only when a
    // file in it does (helm package stamps the chart archive inside with its own times). Image layers are compressed
    // already: with them gzip's fastest level costs a minute less per gigabyte and saves next to nothing.
    await run('bash', [
      '-c',
      'set -o pipefail; tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" -C "$WORK" -cf - "$ROOT" | gzip -n "-$LEVEL" > "$OUT"',
    ], { env: { ...process.env, EPOCH: String(epoch), WORK: work, ROOT: BUNDLE_ROOT, OUT: out, LEVEL: archives.length ? '1' : '9' } }).catch((err: Error & { stderr?: string }) => {
      throw new Error(`packing the bundle failed (GNU tar and gzip are needed): ${err.stderr?.trim() || err.message}`);
    });
    return { path: out, manifest, warnings };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Helm's merge: maps merge key by key, anything else in `over` replaces. */
export function mergeValues(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? mergeValues(out[k], v) : v;
  }
  return out;
}

const usage = `usage: tsx bundle/build.ts --version X.Y.Z [--chart-version X.Y.Z] [--out DIR]
                          [--image operator=REF] [--image runtime=REF] [--require-digests] [--with-images DIR]`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      version: { type: 'string' },
      'chart-version': { type: 'string' },
      out: { type: 'string' },
      image: { type: 'string', multiple: true },
      'require-digests': { type: 'boolean' },
      chart: { type: 'string' },
      'with-images': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  if (!values.version) throw new Error(`--version is required\n${usage}`);
  const images: Partial<Record<ImageName, string>> = {};
  for (const spec of values.image ?? []) {
    const eq = spec.indexOf('=');
    const name = spec.slice(0, eq) as ImageName;
    if (eq < 1 || !IMAGE_NAMES.includes(name)) throw new Error(`--image takes NAME=REF with NAME one of ${IMAGE_NAMES.join(', ')}, got ${JSON.stringify(spec)}`);
    images[name] = spec.slice(eq + 1);
  }
  const built = await buildBundle({
    version: values.version,
    chartVersion: values['chart-version'],
    outDir: values.out,
    images,
    requireDigests: values['require-digests'],
    chartDir: values.chart,
    withImages: values['with-images'],
  });
  for (const w of built.warnings) console.warn(`warning: ${w}`);
  console.log(built.path);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(`bundle: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
