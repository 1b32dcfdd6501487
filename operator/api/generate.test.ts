import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { DEFAULT_OUT_DIR, HEADER, findStale, renderCrdFiles, writeCrdFiles } from './generate.ts';
import type { JsonObject } from './crd.ts';

const run = promisify(execFile);
const generator = fileURLToPath(new URL('./generate.ts', import.meta.url));

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'arena-crds-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('committed CRDs', () => {
  test('are what the generator writes now (run `npm run crds` after a schema change)', async () => {
    assert.deepEqual(await findStale(DEFAULT_OUT_DIR), { stale: [], orphaned: [] });
  });
});

describe('rendering', () => {
  const files = renderCrdFiles();

  test('is deterministic', () => {
    assert.deepEqual(renderCrdFiles().map((f) => f.content), files.map((f) => f.content));
  });

  test('writes one file per kind, named <group>_<plural>.yaml', () => {
    assert.deepEqual(files.map((f) => f.name), [
      'arena.agilerl.com_deployments.yaml',
      'arena.agilerl.com_experiments.yaml',
      'arena.agilerl.com_resourceclasses.yaml',
      'arena.agilerl.com_trainingclusters.yaml',
    ]);
  });

  for (const file of files) {
    test(`${file.name}: header, no YAML anchors, parses back to the CRD`, () => {
      assert.ok(file.content.startsWith(HEADER));
      assert.doesNotMatch(file.content, /[&*]a\d+\b/);
      assert.deepEqual(parse(file.content), JSON.parse(JSON.stringify(file.crd)));
    });
  }
});

// Short names kubectl already resolves to built-in kinds; ours must not shadow or be shadowed by them.
const BUILTIN_SHORT_NAMES = new Set(['cm', 'cj', 'crd', 'crds', 'csr', 'deploy', 'ds', 'ep', 'ev', 'hpa', 'ing', 'limits', 'netpol', 'no', 'ns', 'pc', 'pdb', 'po', 'pv', 'pvc', 'quota', 'rc', 'rs', 'sa', 'sc', 'sts', 'svc']);

const expected = {
  TrainingCluster: { scope: 'Cluster', shortNames: ['tcl', 'arenacluster'] },
  ResourceClass: { scope: 'Cluster', shortNames: ['rclass', 'arenaclass'] },
  Experiment: { scope: 'Namespaced', shortNames: ['exp', 'arenaexp'] },
  Deployment: { scope: 'Namespaced', shortNames: ['adeploy', 'agent'] },
} as const;

function schemaAt(root: JsonObject, jsonPath: string): JsonObject | undefined {
  let node: JsonObject | undefined = root;
  for (const segment of jsonPath.slice(1).split('.')) node = (node?.properties as JsonObject | undefined)?.[segment] as JsonObject | undefined;
  return node;
}

describe('CRD shape', () => {
  for (const { crd } of renderCrdFiles()) {
    const kind = crd.spec.names.kind as keyof typeof expected;
    test(kind, () => {
      assert.equal(crd.metadata.name, `${crd.spec.names.plural}.arena.agilerl.com`);
      assert.equal(crd.spec.scope, expected[kind].scope);
      assert.deepEqual(crd.spec.names.shortNames, expected[kind].shortNames);
      assert.deepEqual(crd.spec.names.categories, ['arena']);
      assert.ok(crd.spec.names.shortNames.every((s) => !BUILTIN_SHORT_NAMES.has(s)));
      assert.equal(crd.spec.versions.length, 1);
      const [version] = crd.spec.versions;
      assert.deepEqual({ name: version!.name, served: version!.served, storage: version!.storage }, { name: 'v1alpha1', served: true, storage: true });
      assert.deepEqual(version!.subresources, { status: {} });
    });

    test(`${kind} printer columns point at declared fields of the same type`, () => {
      const [version] = crd.spec.versions;
      const root = version!.schema.openAPIV3Schema;
      assert.equal(version!.additionalPrinterColumns.at(-1)?.name, 'Age');
      for (const column of version!.additionalPrinterColumns) {
        if (column.jsonPath === '.metadata.creationTimestamp') continue;
        const field = schemaAt(root, column.jsonPath);
        assert.ok(field, `${column.name}: ${column.jsonPath} is not declared`);
        assert.equal(field.type, column.type, `${column.name}: column type`);
      }
    });
  }
});

describe('the generator script', () => {
  test('--check passes on the committed files', async () => {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', generator, '--check']);
    assert.equal(stdout + stderr, '');
  });

  test('--check fails on a stale, missing or orphaned file and writes nothing', async () => {
    await withTempDir(async (dir) => {
      await writeCrdFiles(dir);
      const stalePath = join(dir, 'arena.agilerl.com_experiments.yaml');
      await writeFile(stalePath, (await readFile(stalePath, 'utf8')).replace('kind: Experiment', 'kind: Experimnt'));
      await rm(join(dir, 'arena.agilerl.com_deployments.yaml'));
      await writeFile(join(dir, 'arena.agilerl.com_widgets.yaml'), 'old');
      const failure = await run(process.execPath, ['--import', 'tsx', generator, '--check', '--out', dir]).then(
        () => assert.fail('--check should exit 1'),
        (err: { code: number; stderr: string }) => err,
      );
      assert.equal(failure.code, 1);
      assert.match(failure.stderr, /stale: .*arena\.agilerl\.com_deployments\.yaml/);
      assert.match(failure.stderr, /stale: .*arena\.agilerl\.com_experiments\.yaml/);
      assert.match(failure.stderr, /no longer generated: .*arena\.agilerl\.com_widgets\.yaml/);
      assert.equal(await readFile(join(dir, 'arena.agilerl.com_widgets.yaml'), 'utf8'), 'old');
    });
  });

  test('writing fixes what --check found; line endings do not count as a change', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'arena.agilerl.com_widgets.yaml'), 'old');
      assert.equal((await writeCrdFiles(dir)).stale.length, 4);
      assert.deepEqual(await findStale(dir), { stale: [], orphaned: [] });
      const path = join(dir, 'arena.agilerl.com_trainingclusters.yaml');
      await writeFile(path, (await readFile(path, 'utf8')).replace(/\n/g, '\r\n'));
      assert.deepEqual(await findStale(dir), { stale: [], orphaned: [] });
    });
  });
});
