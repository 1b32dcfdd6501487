import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chartDir, crdSourceDir, expectedChartFiles, syncChart } from './chart-sync.ts';
import { formatImageRef, parseImageRef } from './image-ref.ts';
import { imageArchives, mergeValues } from './build.ts';
import { strict } from './values-schema.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('chart files generated from crds/', () => {
  test('the chart\'s CRD copies and values.schema.json are up to date (run: npx tsx bundle/chart-sync.ts)', async () => {
    assert.deepEqual(await syncChart({ check: true }), { stale: [], orphaned: [] });
  });

  test('a changed CRD makes its copy and the schema stale; a removed one orphans its copy; sync repairs both', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arena-sync-'));
    try {
      const crds = join(dir, 'crds');
      const chart = join(dir, 'chart');
      await cp(crdSourceDir, crds, { recursive: true });
      await cp(chartDir, chart, { recursive: true });
      const rc = join(crds, 'arena.agilerl.com_resourceclasses.yaml');
      await writeFile(rc, (await readFile(rc, 'utf8')).replace('Workers per experiment: the gang size', 'Workers per run: the gang size'));
      await rm(join(crds, 'arena.agilerl.com_deployments.yaml'));
      assert.deepEqual(await syncChart({ check: true, chart, crdDir: crds }), {
        stale: ['crds/arena.agilerl.com_resourceclasses.yaml', 'values.schema.json'],
        orphaned: ['crds/arena.agilerl.com_deployments.yaml'],
      });
      await syncChart({ check: false, chart, crdDir: crds });
      assert.deepEqual(await syncChart({ check: true, chart, crdDir: crds }), { stale: [], orphaned: [] });
      const schema = JSON.parse(await readFile(join(chart, 'values.schema.json'), 'utf8')) as { properties: { resourceClasses: { items: { properties: { nodes: { description: string } } } } } };
      assert.match(schema.properties.resourceClasses.items.properties.nodes.description, /Workers per run/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the values schema takes class and cluster fields from the CRDs, strictly, without CEL or Kubernetes extensions', async () => {
    const files = await expectedChartFiles();
    const schema = JSON.parse(files.find((f) => f.path === 'values.schema.json')!.content) as Record<string, unknown>;
    const text = JSON.stringify(schema);
    assert.doesNotMatch(text, /x-kubernetes-/);
    const props = (schema.properties as Record<string, { properties?: Record<string, unknown>; items?: { properties: Record<string, unknown>; required: string[] } }>);
    assert.ok(props.trainingCluster!.properties!.workerNodeSelector, 'TrainingCluster spec fields');
    assert.equal(props.trainingCluster!.properties!.setupBundle, undefined, 'setupBundle comes from other values');
    assert.deepEqual(props.resourceClasses!.items!.required, ['name', 'nodes']);
    assert.equal((props.resourceClasses!.items!.properties.worker as { additionalProperties: boolean }).additionalProperties, false);
  });

  test('strict() closes objects with properties, keeps maps and preserved objects open', () => {
    const s = strict({
      type: 'object',
      properties: {
        a: { type: 'object', properties: { b: { type: 'string' } } },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
        free: { type: 'object', properties: { x: { type: 'string' } }, 'x-kubernetes-preserve-unknown-fields': true },
        list: { type: 'array', items: { type: 'object', properties: { c: { type: 'integer' } } } },
      },
    }) as { additionalProperties: boolean; properties: Record<string, { additionalProperties?: unknown; items?: { additionalProperties: boolean } }> };
    assert.equal(s.additionalProperties, false);
    assert.equal(s.properties.a!.additionalProperties, false);
    assert.deepEqual(s.properties.labels!.additionalProperties, { type: 'string' });
    assert.equal(s.properties.free!.additionalProperties, undefined);
    assert.equal(s.properties.list!.items!.additionalProperties, false);
  });
});

describe('image references', () => {
  const good: [string, ReturnType<typeof parseImageRef>][] = [
    ['ghcr.io/agilerl/arena-operator:1.2.0', { registry: 'ghcr.io', repository: 'agilerl/arena-operator', tag: '1.2.0' }],
    [`ghcr.io/agilerl/arena-operator:1.2.0@${DIGEST}`, { registry: 'ghcr.io', repository: 'agilerl/arena-operator', tag: '1.2.0', digest: DIGEST }],
    [`registry.local:5000/arena-runtime@${DIGEST}`, { registry: 'registry.local:5000', repository: 'arena-runtime', digest: DIGEST }],
    ['localhost/x/y:dev', { registry: 'localhost', repository: 'x/y', tag: 'dev' }],
    ['agilerl/arena-operator:2.0.0', { repository: 'agilerl/arena-operator', tag: '2.0.0' }],
  ];
  for (const [ref, parsed] of good) {
    test(`parses ${ref}`, () => {
      assert.deepEqual(parseImageRef(ref), parsed);
      assert.equal(formatImageRef(parsed), ref);
    });
  }
  const bad: [string, RegExp][] = [
    ['ghcr.io/agilerl/arena-operator:latest', /latest is not allowed/],
    ['ghcr.io/agilerl/arena-operator@sha256:abc', /64 lowercase hex/],
    ['ghcr.io/AgileRL/Arena:1.0.0', /not a valid repository/],
    ['ghcr.io/x:bad tag', /not a valid tag/],
  ];
  for (const [ref, message] of bad) {
    test(`refuses ${ref}`, () => assert.throws(() => parseImageRef(ref), message));
  }
});

test('bundle values merge as Helm merges: maps key by key, anything else replaced, null kept to delete a default', () => {
  assert.deepEqual(
    mergeValues({ image: { tag: '1', digest: '' }, list: [1], trainingCluster: { currentBundleVersion: '1.0.0' } }, { image: { digest: 'd' }, list: [2], trainingCluster: { checkpointStorage: { persistentVolumeClaim: null } } }),
    { image: { tag: '1', digest: 'd' }, list: [2], trainingCluster: { currentBundleVersion: '1.0.0', checkpointStorage: { persistentVolumeClaim: null } } },
  );
});

describe('bundle --with-images: the archives make images wrote', () => {
  const images = (over: { version?: string; size?: number; drop?: string } = {}) => ({
    version: over.version ?? '1.2.0',
    revision: 'abc',
    compression: 'gzip',
    images: ['operator', 'runtime']
      .filter((n) => n !== over.drop)
      .map((name) => ({ name, reference: `ghcr.io/agilerl/arena-${name}:1.2.0`, digest: DIGEST, archive: `arena-${name}-1.2.0.oci.tar`, size: over.size ?? 5 })),
  });
  const cases: { name: string; index?: object; error?: RegExp }[] = [
    { name: 'both archives at the sizes recorded', index: images() },
    { name: 'no images.json', error: /no images\.json there; run make images first/ },
    { name: 'images of another version', index: images({ version: '1.1.0' }), error: /the images are version 1\.1\.0, the bundle 1\.2\.0/ },
    { name: 'an image missing', index: images({ drop: 'runtime' }), error: /has no runtime image/ },
    { name: 'an archive of another size', index: images({ size: 6 }), error: /arena-operator-1\.2\.0\.oci\.tar is 5 bytes, not the 6/ },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'arena-images-'));
      try {
        for (const n of ['operator', 'runtime']) await writeFile(join(dir, `arena-${n}-1.2.0.oci.tar`), '12345');
        if (c.index) await writeFile(join(dir, 'images.json'), JSON.stringify(c.index));
        if (c.error) {
          await assert.rejects(imageArchives(dir, '1.2.0'), c.error);
          return;
        }
        const got = await imageArchives(dir, '1.2.0');
        assert.deepEqual(got.map((a) => [a.name, a.reference, a.size]), [
          ['operator', `ghcr.io/agilerl/arena-operator:1.2.0@${DIGEST}`, 5],
          ['runtime', `ghcr.io/agilerl/arena-runtime:1.2.0@${DIGEST}`, 5],
        ]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
