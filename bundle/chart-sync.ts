// Keeps the chart's generated files in step with crds/: its crds/ copies and values.schema.json. With --check it
// writes nothing and exits 1 naming the stale files, so a schema change without a chart update fails the build.
//
//   tsx bundle/chart-sync.ts [--check]
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { normalize } from '../operator/api/generate.ts';
import { valuesSchema } from './values-schema.ts';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const crdSourceDir = join(repoRoot, 'crds');
export const chartDir = join(repoRoot, 'charts', 'arena-operator');

export interface ChartFile {
  /** Relative to the chart directory. */
  path: string;
  content: string;
}

interface CrdDoc {
  metadata: { name: string };
  spec: { names: { kind: string }; versions: { schema: { openAPIV3Schema: { properties: { spec: Record<string, unknown> } } } }[] };
}

/** What the chart's generated files must contain, from the CRDs in `crdDir`. */
export async function expectedChartFiles(crdDir = crdSourceDir): Promise<ChartFile[]> {
  const names = (await readdir(crdDir)).filter((f) => f.endsWith('.yaml')).sort();
  if (names.length === 0) throw new Error(`no CRDs in ${crdDir}: run make crds`);
  const files: ChartFile[] = [];
  const specByKind = new Map<string, Record<string, unknown>>();
  for (const name of names) {
    const content = await readFile(join(crdDir, name), 'utf8');
    files.push({ path: join('crds', name), content });
    const crd = parse(content) as CrdDoc;
    specByKind.set(crd.spec.names.kind, crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec);
  }
  const trainingCluster = specByKind.get('TrainingCluster');
  const resourceClass = specByKind.get('ResourceClass');
  if (!trainingCluster || !resourceClass) throw new Error(`${crdDir} lacks the TrainingCluster or ResourceClass CRD`);
  files.push({ path: 'values.schema.json', content: `${JSON.stringify(valuesSchema({ trainingCluster, resourceClass }), null, 2)}\n` });
  return files;
}

export interface ChartSyncResult {
  stale: string[];
  /** CRD copies in the chart that crds/ no longer has. */
  orphaned: string[];
}

export async function syncChart(opts: { check: boolean; chart?: string; crdDir?: string }): Promise<ChartSyncResult> {
  const chart = opts.chart ?? chartDir;
  const want = await expectedChartFiles(opts.crdDir);
  const stale: string[] = [];
  for (const f of want) {
    const current = await readFile(join(chart, f.path), 'utf8').catch(() => undefined);
    if (current === undefined || normalize(current) !== normalize(f.content)) stale.push(f.path);
  }
  const wanted = new Set(want.map((f) => f.path));
  const present = await readdir(join(chart, 'crds')).catch(() => [] as string[]);
  const orphaned = present.map((n) => join('crds', n)).filter((p) => p.endsWith('.yaml') && !wanted.has(p));
  if (!opts.check) {
    for (const f of want) if (stale.includes(f.path)) await writeFile(join(chart, f.path), f.content);
    for (const p of orphaned) await rm(join(chart, p));
  }
  return { stale, orphaned };
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const { stale, orphaned } = await syncChart({ check });
  const changed = [...stale, ...orphaned];
  if (check && changed.length) {
    console.error(`charts/arena-operator is out of date with crds/: ${changed.join(', ')}\nrun: npx tsx bundle/chart-sync.ts`);
    process.exit(1);
  }
  console.log(changed.length ? `${check ? 'stale' : 'updated'}: ${changed.join(', ')}` : 'charts/arena-operator is up to date');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
