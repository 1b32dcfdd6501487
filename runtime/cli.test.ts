import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url));

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { PATH: process.env.PATH, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

test('arena-runtime: usage, unknown commands, probe, and train with an incomplete environment', async () => {
  const [help, bogus, probe, train] = await Promise.all([run(['--help']), run(['bogus']), run(['probe']), run(['train'])]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /train .*\n.*serve .*\n.*probe /);
  assert.equal(bogus.code, 2);
  assert.match(bogus.stderr, /unknown command "bogus"/);
  assert.equal(probe.code, 0);
  const host = JSON.parse(probe.stdout) as { cpu: { cores: number }; gpu: { gpus: unknown[] }; attentionBackend: string | null };
  assert.ok(host.cpu.cores >= 1);
  assert.ok(Array.isArray(host.gpu.gpus));
  assert.equal(train.code, 2);
  assert.match(train.stdout, /The worker environment is incomplete.*ARENA_EXPERIMENT is not set/);
});
