// The images' build recipes, run without Docker: the operator image's compile step produces a program that starts,
// and the runtime image's layout (entrypoint next to runtime/, operator/ and node_modules/) runs arena-runtime.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { imagesDir } from './dockerfile-lint.ts';

const run = promisify(execFile);
const repo = join(imagesDir, '..');

describe('image build recipes', () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'arena-images-'));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  test('the operator image compiles the operator with its tsconfig and the result starts', { timeout: 180_000 }, async () => {
    const out = join(work, 'operator');
    // The same command as the Dockerfile's build stage, with the output moved here.
    await run(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(imagesDir, 'operator', 'tsconfig.build.json'), '--outDir', out], { cwd: repo });
    // The final stage's layout: /app/package.json (type module), node_modules, the compiled tree.
    await writeFile(join(out, 'package.json'), JSON.stringify({ type: 'module' }));
    await symlink(join(repo, 'node_modules'), join(out, 'node_modules'));
    const { stdout } = await run(process.execPath, [join(out, 'operator', 'main.js'), '--help']);
    assert.match(stdout, /^arena-operator \[options\]/);
    await assert.rejects(run(process.execPath, [join(out, 'operator', 'plugin', 'main.js')]), 'the plugin stays out of the operator image');
  });

  test('the runtime image\'s entrypoint runs arena-runtime from its layout', { timeout: 60_000 }, async () => {
    const home = join(work, 'opt-arena');
    await cp(join(imagesDir, 'runtime', 'entrypoint.mjs'), join(home, 'entrypoint.mjs'));
    for (const d of ['runtime', 'operator', 'node_modules', 'package.json']) await symlink(join(repo, d), join(home, d));
    const help = await run(process.execPath, [join(home, 'entrypoint.mjs'), '--help']);
    assert.match(help.stdout, /usage: arena-runtime <command>/);
    const probe = await run(process.execPath, [join(home, 'entrypoint.mjs'), 'probe']);
    const host = JSON.parse(probe.stdout) as { gpu: unknown };
    assert.ok('gpu' in host, 'probe prints the host as JSON');
    const bad = await run(process.execPath, [join(home, 'entrypoint.mjs'), 'no-such-command']).then(
      () => 0,
      (err: { code: number }) => err.code,
    );
    assert.equal(bad, 2, 'an unknown command exits 2 (refused)');
  });
});
