// The daemonless build reads the Dockerfiles (build-spec.ts): these tests pin what it reads from each, refuse what it
// cannot carry out, and check that each Dockerfile still gives its entrypoint what it needs and runs as the user
// the chart and the operator expect, so an edit to either side that breaks the other fails here.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { readImageSpec, SpecError, type ImageSpec } from './build-spec.ts';
import { contextFiles, dockerfilePath, dockerignore, checkImageNames, repoDir, resolveContextCopy, type ContextFile } from './build.ts';
import { entrypointNeeds, unprovided } from './contract.ts';
import { workerPods } from '../operator/controllers/experiment/workers.ts';

const ARGS = { VERSION: '9.8.7', REVISION: 'abc123' };

async function specOf(name: 'operator' | 'runtime', edit: (text: string) => string = (t) => t): Promise<{ spec: ImageSpec; context: Map<string, ContextFile>; where: string }> {
  const where = `images/${name}/Dockerfile`;
  const text = edit(await readFile(dockerfilePath(name), 'utf8'));
  return { spec: readImageSpec(text, { where, args: ARGS }), context: await contextFiles(repoDir, dockerfilePath(name)), where };
}

function replaceOnce(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  assert.notEqual(out, text, `the edit ${String(from)} must change the Dockerfile`);
  return out;
}

/** The uid:gid the chart runs the operator as, and the one the operator runs worker pods as. */
async function expectedUsers(): Promise<{ operator: string; runtime: string }> {
  const values = parse(await readFile(join(repoDir, 'charts', 'arena-operator', 'values.yaml'), 'utf8')) as { podSecurityContext: { runAsUser: number; runAsGroup: number } };
  const [pod] = workerPods({
    experiment: { apiVersion: 'arena.agilerl.com/v1alpha1', kind: 'Experiment', metadata: { name: 'e', namespace: 'n', uid: 'u', generation: 1 }, spec: { action: 'Train', resourceClass: 'c', manifest: { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } } } },
    cls: { metadata: { name: 'c' }, spec: { trainingCluster: 't', nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 0 } } },
    cluster: { metadata: { name: 't' }, spec: { setupBundle: { version: '1.0.0', images: { runtime: 'r/x:1.0.0' } }, checkpointStorage: { persistentVolumeClaim: { claimName: 'c' } } } },
    attempt: { run: 1, attempt: 1 },
    nodes: ['n'],
    reportUrl: 'http://op',
  });
  const sc = pod!.spec!.securityContext!;
  return { operator: `${values.podSecurityContext.runAsUser}:${values.podSecurityContext.runAsGroup}`, runtime: `${sc.runAsUser}:${sc.runAsGroup}` };
}

describe('the daemonless build spec read from each Dockerfile', () => {
  const cases = [
    {
      name: 'operator' as const,
      entrypoint: ['arena-operator'],
      cmd: undefined,
      workingDir: '/app',
      ports: ['8080/tcp', '9443/tcp'],
      env: { NODE_ENV: 'production', ARENA_PYTHON: '/opt/arena-python/bin/python' },
      packages: ['python3'],
      stages: ['build', 'python', 'prod-deps'],
    },
    {
      name: 'runtime' as const,
      entrypoint: ['arena-runtime'],
      cmd: ['--help'],
      workingDir: '/workspace',
      ports: [],
      env: { NODE_ENV: 'production', ARENA_RUNTIME_HOME: '/opt/arena', ARENA_PYTHON: '/opt/arena-python/bin/python' },
      packages: ['python3'],
      stages: ['deps', 'python'],
    },
  ];
  for (const c of cases) {
    test(`${c.name}: config, packages and stages`, async () => {
      const { spec } = await specOf(c.name);
      const users = await expectedUsers();
      assert.equal(spec.config.user, users[c.name], `USER is the uid:gid ${c.name === 'operator' ? 'the chart runs the operator' : 'the operator runs worker pods'} as`);
      assert.deepEqual(spec.config.entrypoint, c.entrypoint);
      assert.deepEqual(spec.config.cmd, c.cmd);
      assert.equal(spec.config.workingDir, c.workingDir);
      assert.deepEqual(spec.config.exposedPorts, c.ports);
      assert.deepEqual(Object.fromEntries(spec.config.env), c.env);
      assert.deepEqual(spec.packages, c.packages);
      assert.deepEqual([...spec.stages.keys()].sort(), [...c.stages].sort());
      assert.equal(spec.config.labels['org.opencontainers.image.version'], ARGS.VERSION);
      assert.equal(spec.config.labels['org.opencontainers.image.revision'], ARGS.REVISION);
      assert.equal(spec.config.labels['org.opencontainers.image.source'], 'https://github.com/agilerl/arena-operator');
      assert.equal(spec.config.labels['org.opencontainers.image.title'], `arena-${c.name}`);
    });

    test(`${c.name}: the Dockerfile provides every file its entrypoint needs`, async () => {
      const { spec, context, where } = await specOf(c.name);
      const needs = await entrypointNeeds(spec, context, repoDir, where);
      assert.ok(needs.length >= 4, `the entrypoint's needs were found: ${JSON.stringify(needs)}`);
      assert.deepEqual(unprovided(spec, context, needs, where), []);
    });
  }

  const drifts: { name: string; image: 'operator' | 'runtime'; edit: (t: string) => string; missing: RegExp }[] = [
    { name: 'the runtime entrypoint script is not copied', image: 'runtime', edit: (t) => replaceOnce(t, /^COPY --chmod=0644 images\/runtime\/entrypoint\.mjs .*$/m, ''), missing: /\/opt\/arena\/entrypoint\.mjs/ },
    { name: 'the runtime sources are not copied', image: 'runtime', edit: (t) => replaceOnce(t, /^COPY runtime\/ runtime\/$/m, ''), missing: /\/opt\/arena\/runtime\/cli\.ts/ },
    { name: 'the runtime node_modules are not copied', image: 'runtime', edit: (t) => replaceOnce(t, /^COPY --from=deps .*$/m, ''), missing: /\/opt\/arena\/node_modules\/tsx/ },
    { name: 'the Python environment is not copied', image: 'operator', edit: (t) => replaceOnce(t, /^COPY --from=python .*$/m, ''), missing: /\/opt\/arena-python\/bin\/python/ },
    { name: 'the operator entrypoint lands off PATH', image: 'operator', edit: (t) => replaceOnce(t, '/usr/local/bin/arena-operator', '/opt/arena-operator'), missing: /\/usr\/local\/bin\/arena-operator/ },
    { name: 'the compiled operator is not copied', image: 'operator', edit: (t) => replaceOnce(t, /^COPY --from=build .*$/m, ''), missing: /\/app\/operator\/main\.js/ },
  ];
  for (const d of drifts) {
    test(`drift is caught: ${d.name}`, async () => {
      const { spec, context, where } = await specOf(d.image, d.edit);
      const missing = unprovided(spec, context, await entrypointNeeds(spec, context, repoDir, where), where);
      assert.match(missing.map((m) => `${m.path} (${m.why})`).join('\n'), d.missing);
    });
  }

  test('drift is caught: a USER other than the one the pods run as', async () => {
    const { spec } = await specOf('runtime', (t) => replaceOnce(t, 'USER 1000:1000', 'USER 1001:1001'));
    assert.notEqual(spec.config.user, (await expectedUsers()).runtime);
  });

  const refused: { name: string; text: string; error: RegExp }[] = [
    { name: 'a RUN the build cannot carry out', text: 'RUN curl -o /x https://example.com/x', error: /cannot run "curl -o \/x https:\/\/example.com\/x"/ },
    { name: 'COPY --chown', text: 'COPY --chown=1000:1000 package.json ./', error: /COPY --chown=1000:1000 is not supported/ },
    { name: 'a VOLUME', text: 'VOLUME /data', error: /VOLUME in the final stage is not supported/ },
    { name: 'a legacy ENV', text: 'ENV FOO bar', error: /use the KEY=value form/ },
    { name: 'a chown of a folder the RUN did not make', text: 'RUN chown 1000:1000 /etc', error: /only hands over directories the same RUN makes/ },
    { name: 'a COPY from an unknown stage', text: 'COPY --from=nowhere /x /x', error: /names no stage/ },
    { name: 'a shell-form CMD', text: 'CMD arena-runtime --help', error: /CMD must be in exec \(JSON\) form/ },
  ];
  for (const r of refused) {
    test(`refused with the line named: ${r.name}`, async () => {
      const text = (await readFile(dockerfilePath('runtime'), 'utf8')).replace(/^USER 1000:1000$/m, `${r.text}\nUSER 1000:1000`);
      assert.throws(() => readImageSpec(text, { where: 'images/runtime/Dockerfile', args: ARGS }), (e: unknown) => e instanceof SpecError && /images\/runtime\/Dockerfile:\d+: /.test(e.message) && r.error.test(e.message));
    });
  }

  test('a stage from another base image is refused', () => {
    const text = 'ARG B=node@sha256:' + '0'.repeat(64) + '\nFROM ${B} AS a\nRUN true\nFROM debian@sha256:' + '1'.repeat(64) + '\nUSER 1:1\nENTRYPOINT ["x"]\n';
    assert.throws(() => readImageSpec(text), /every stage must start from the one base image/);
  });

  test('an unknown image name is refused with the names there are', () => {
    assert.throws(() => checkImageNames(['runtim']), /unknown image "runtim": the images are operator and runtime/);
    assert.deepEqual(checkImageNames([]), ['operator', 'runtime']);
  });
});

describe('the build context', () => {
  const ignore = dockerignore('**\n!package.json\n!operator/**\n!python/platform.lock\n**/node_modules\n');
  const cases: [string, boolean][] = [
    ['package.json', false],
    ['README.md', true],
    ['operator/main.ts', false],
    ['operator/node_modules/x/index.js', true],
    ['python/platform.lock', false],
    ['python/requirements.lock', true],
    ['e2e/demo.ts', true],
  ];
  for (const [path, excluded] of cases) {
    test(`${path} is ${excluded ? 'left out' : 'kept'}`, () => assert.equal(ignore(path), excluded));
  }

  test('a COPY of a folder takes its files; one of a missing file is refused', () => {
    const context = new Map<string, ContextFile>([
      ['runtime/cli.ts', { rel: 'runtime/cli.ts', mode: 0o644 }],
      ['runtime/gpu/probe.ts', { rel: 'runtime/gpu/probe.ts', mode: 0o644 }],
      ['package.json', { rel: 'package.json', mode: 0o644 }],
    ]);
    const copy = { kind: 'copy' as const, line: 3, sources: ['runtime/', 'package.json'], dest: '/opt/arena/' };
    assert.deepEqual(
      resolveContextCopy(copy, context, 'D').map((c) => c.dest),
      ['/opt/arena/cli.ts', '/opt/arena/gpu/probe.ts', '/opt/arena/package.json'],
    );
    assert.throws(() => resolveContextCopy({ ...copy, sources: ['nothing/'] }, context, 'D'), /D:3: COPY nothing\/ matches no file/);
  });
});
