// The AgileRL trainer's pytest suite (tests/), run with the project's Python by node's test runner, so that `make
// test` has one runner and one summary: each pytest case becomes a node test with pytest's own verdict and output.
// The suite is cut into shards, each a node test file of its own, because node's runner starts the files under
// runtime/ last and one pytest process alone would then hold the suite's end on one core.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolvePython } from '../../../operator/api/platform/verdict.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** The test files each shard runs on its own; the main shard (pytest.test.ts) runs every other file of tests/. */
export const SHARDS = {
  llm: ['tests/test_llm.py'],
  families: ['tests/test_registry_algorithms.py', 'tests/test_families.py'],
} as const;

interface Case {
  name: string;
  outcome: 'passed' | 'failed' | 'skipped' | 'error';
  detail: string;
}
/** The cases of a JUnit XML report as pytest writes it (one <testcase> per test, a child element when not passed). */
export function casesOf(xml: string): Case[] {
  const cases: Case[] = [];
  for (const m of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const attr = (name: string) => m[1]!.match(new RegExp(`(?:^|\\s)${name}="([^"]*)"`))?.[1] ?? '';
    const body = m[3] ?? '';
    const kind = body.match(/<(failure|error|skipped)\b/)?.[1];
    const outcome = kind === 'failure' ? 'failed' : kind === 'error' ? 'error' : kind === 'skipped' ? 'skipped' : 'passed';
    cases.push({ name: unescape(`${attr('classname')}::${attr('name')}`), outcome, detail: unescape(body.replace(/<[^>]+>/g, '')).trim() });
  }
  return cases;
}

function unescape(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

/** A node suite for one pytest run: `shard` runs that shard's files, `rest` every file of tests/ no shard names. */
export function pytestSuite(shard: keyof typeof SHARDS | 'rest'): void {
  const targets = shard === 'rest' ? ['tests', ...Object.values(SHARDS).flat().map((f) => `--ignore=${f}`)] : [...SHARDS[shard]];
  describe(`AgileRL trainer (pytest${shard === 'rest' ? '' : `, ${shard}`})`, () => {
    let dir = '';
    let cases: Case[] = [];
    let output = '';

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'arena-pytest-'));
      const report = join(dir, 'report.xml');
      const result = await new Promise<{ code: number; output: string }>((resolve) => {
        execFile(
          resolvePython(),
          // Its own base temp: the shards run side by side, and pytest's shared one is pruned by whichever starts.
          ['-m', 'pytest', ...targets, '-q', '-p', 'no:cacheprovider', `--basetemp=${join(dir, 'tmp')}`, `--junitxml=${report}`],
          { cwd: HERE, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
          (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }),
        );
      });
      output = result.output;
      cases = casesOf(await readFile(report, 'utf8').catch(() => ''));
      // 0: all passed; 1: some failed (reported below, case by case). Anything else means pytest itself could not run.
      assert.ok(result.code === 0 || result.code === 1, `pytest could not run (exit ${result.code}):\n${output.slice(-4000)}`);
    });
    after(async () => rm(dir, { recursive: true, force: true }));

    test('pytest found the suite', () => assert.ok(cases.length >= 5, `${cases.length} cases:\n${output.slice(-2000)}`));

    // One node test per pytest case; the names are only known once pytest has run, so they are reported from here.
    test('every pytest case passes', async (t) => {
      for (const c of cases) {
        await t.test(c.name, () => {
          assert.notEqual(c.outcome, 'skipped', `${c.name} was skipped: a skipped test proves nothing`);
          assert.equal(c.outcome, 'passed', c.detail.slice(-4000));
        });
      }
    });
  });
}
