// Every Arena training manifest this repository ships (docs, chart and bundle files, the demo manifest, the
// manifests the tests build) must be one the platform accepts: the operator refuses any other with
// Pending/InvalidManifest, so a stale example is a broken example. The platform's own validator judges each.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { platformValidator, type ManifestVerdict } from './verdict.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

// Not this project's files (dependencies, toolchains, caches, clusters the tests start). Text files (.txt) are
// read too: a chart's NOTES.txt is where an install tells its user what to apply next.
const SKIP_DIRS = new Set(['node_modules', '.git', '.venv', '.tools', '.cluster', '.mypy_cache', 'dist']);

// Modules whose exports are manifests or builders of one; each builder must work without arguments.
const FIXTURE_MODULES = ['e2e/support/manifests.ts'];

// Manifests kept invalid on purpose, by `file#where` as the failures below name them, each with why. A listed
// entry must still exist and still be refused, so the list cannot outlive what it excuses. None of the files
// this test reads holds one today: the deliberate invalid fixtures are TypeScript literals in the tests that
// exercise the refusal (operator/api/testdata/invalid-objects.ts, runtime/validate.test.ts and others).
const DELIBERATELY_INVALID: Record<string, string> = {};

interface Found {
  /** `file#where`, e.g. README.md#block at line 68, Experiment cartpole. */
  where: string;
  check: () => Promise<ManifestVerdict | { unreadable: string }>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isManifest = (v: unknown): v is Obj => isObj(v) && 'algorithm' in v && 'environment' in v;
// What marks text that may hold a manifest: both section names, as YAML keys or JSON keys.
const mentionsManifest = (text: string) => /(^|[\s{,"'])algorithm"?\s*:/m.test(text) && /(^|[\s{,"'])environment"?\s*:/m.test(text);

function files(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) files(join(dir, entry.name), out);
    } else if (entry.isFile() && ['.yaml', '.yml', '.json', '.md', '.txt'].includes(extname(entry.name))) {
      out.push(join(dir, entry.name));
    }
  }
  return out;
}

/**
 * The manifests in YAML or JSON text: the text itself when it is one, and every Experiment's spec.manifest.
 * `problems` gets text that mentions a manifest but yields none, so an example nobody can parse is not skipped.
 */
function fromText(where: string, text: string, wholeFileIsYaml: boolean, found: Found[], problems: string[]): void {
  const validator = platformValidator();
  let documents: unknown[];
  try {
    const parsed = parseAllDocuments(text);
    const list = Array.isArray(parsed) ? parsed : [parsed];
    const broken = list.find((d) => d.errors.length > 0);
    if (broken) throw new Error(broken.errors[0]!.message);
    documents = list.map((d) => d.toJS() as unknown);
  } catch (err) {
    problems.push(`${where}: mentions algorithm and environment but is not YAML or JSON (${(err as Error).message.split('\n')[0]})`);
    return;
  }
  let count = 0;
  documents.forEach((doc, i) => {
    const label = documents.length > 1 ? `${where}, document ${i + 1}` : where;
    if (isManifest(doc)) {
      count++;
      // A manifest file is read the way `arena manifest validate FILE` reads it (PyYAML); JSON is YAML too.
      found.push({ where: label, check: () => (wholeFileIsYaml && documents.length === 1 ? validator.verdictYaml(text) : validator.verdict(doc)) });
    } else if (isObj(doc) && doc.kind === 'Experiment' && isObj(doc.spec) && 'manifest' in doc.spec) {
      count++;
      const name = isObj(doc.metadata) ? String(doc.metadata.name) : '?';
      const manifest = doc.spec.manifest;
      found.push({ where: `${label}, Experiment ${name}`, check: () => validator.verdict(manifest) });
    }
  });
  // CustomResourceDefinitions describe the manifest's fields in their schema; they are not manifests.
  const onlySchemas = documents.every((d) => isObj(d) && d.kind === 'CustomResourceDefinition');
  if (count === 0 && !onlySchemas) problems.push(`${where}: mentions algorithm and environment but holds no manifest or Experiment`);
}

function fromMarkdown(file: string, text: string, found: Found[], problems: string[]): void {
  const fence = /^(\s*)(```|~~~)\s*(yaml|yml|json)\b[^\n]*\n([\s\S]*?)^\1\2\s*$/gm;
  for (const m of text.matchAll(fence)) {
    const body = m[4]!;
    if (!mentionsManifest(body)) continue;
    const line = text.slice(0, m.index).split('\n').length;
    fromText(`${file}#block at line ${line}`, body, true, found, problems);
  }
}

async function fromModule(file: string, found: Found[], problems: string[]): Promise<void> {
  const validator = platformValidator();
  const exports = (await import(pathToFileURL(join(ROOT, file)).href)) as Obj;
  let count = 0;
  for (const [name, value] of Object.entries(exports)) {
    let manifest: unknown = value;
    if (typeof value === 'function') {
      try {
        manifest = (value as () => unknown)();
      } catch (err) {
        problems.push(`${file}#${name}(): a builder must work without arguments (${(err as Error).message})`);
        continue;
      }
    }
    if (!isManifest(manifest)) {
      problems.push(`${file}#${name}: exported, but neither a manifest nor a builder of one`);
      continue;
    }
    count++;
    found.push({ where: `${file}#${name}`, check: () => validator.verdict(manifest) });
  }
  if (count === 0) problems.push(`${file}: exports no manifests`);
}

async function repositoryManifests(): Promise<{ found: Found[]; problems: string[] }> {
  const found: Found[] = [];
  const problems: string[] = [];
  for (const path of files(ROOT).sort()) {
    const file = relative(ROOT, path);
    const text = readFileSync(path, 'utf8');
    if (!mentionsManifest(text)) continue;
    if (file.endsWith('.md')) fromMarkdown(file, text, found, problems);
    else fromText(file, text, true, found, problems);
  }
  for (const file of FIXTURE_MODULES) await fromModule(file, found, problems);
  return { found, problems };
}

after(() => platformValidator().close());

test("every manifest in the repository is one the Arena platform's validator accepts", async (t) => {
  const { found, problems } = await repositoryManifests();
  const refused: string[] = [];
  const stillInvalid = new Set<string>();
  for (const m of found) {
    const verdict = await m.check();
    const excused = m.where in DELIBERATELY_INVALID;
    if ('unreadable' in verdict) {
      refused.push(`${m.where}: the platform cannot read it: ${verdict.unreadable}`);
    } else if (!verdict.valid) {
      if (excused) stillInvalid.add(m.where);
      else refused.push(...verdict.errors.map((e) => `${m.where}: ${e.field || '(manifest)'}: ${e.message}`));
    } else if (excused) {
      refused.push(`${m.where}: listed as deliberately invalid, but the platform accepts it; take it off the list`);
    }
  }
  for (const where of Object.keys(DELIBERATELY_INVALID)) {
    if (!found.some((m) => m.where === where)) refused.push(`${where}: listed as deliberately invalid, but no such manifest exists any more`);
  }
  t.diagnostic(`${found.length} manifests checked:\n${found.map((m) => `  ${m.where}`).join('\n')}`);
  assert.deepEqual([...problems, ...refused], []);
  assert.equal(stillInvalid.size, Object.keys(DELIBERATELY_INVALID).length);
});

// The scan above passes vacuously if it stops finding manifests; these are ones it must find.
test('the scan finds the manifests known to be there', async () => {
  const { found } = await repositoryManifests();
  const where = found.map((m) => m.where);
  for (const expected of [
    /^README\.md#block at line \d+, Experiment cartpole$/,
    /^e2e\/support\/demo-manifest\.json$/,
    /^e2e\/support\/manifests\.ts#grpoGsm8k$/,
    /^runtime\/trainers\/agilerl\/tests\/manifests\/dqn-cartpole-tiny\.json$/,
  ]) {
    assert.ok(where.some((w) => expected.test(w)), `${expected} among:\n${where.join('\n')}`);
  }
});

test('the scan catches an old-dialect manifest in a Markdown block and in an Experiment, and text it cannot read', async () => {
  const found: Found[] = [];
  const problems: string[] = [];
  const old = { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' }, network: { hidden_size: [64, 64] } };
  fromMarkdown('doc.md', `Try this:\n\n\`\`\`yaml\n${JSON.stringify(old)}\n\`\`\`\n`, found, problems);
  fromText('exp.yaml', `apiVersion: arena.agilerl.com/v1alpha1\nkind: Experiment\nmetadata: { name: old }\nspec:\n  manifest: ${JSON.stringify(old)}\n`, true, found, problems);
  fromText('broken.yaml', 'algorithm: { name: DQN\nenvironment: [', true, found, problems);
  assert.deepEqual(found.map((m) => m.where), ['doc.md#block at line 3', 'exp.yaml, Experiment old']);
  assert.match(problems.join('\n'), /^broken\.yaml: mentions algorithm and environment but is not YAML/);
  for (const m of found) {
    const verdict = await m.check();
    assert.ok(!('unreadable' in verdict) && !verdict.valid && verdict.errors.some((e) => e.field === 'network.hidden_size'), `${m.where}: ${JSON.stringify(verdict)}`);
  }
});
