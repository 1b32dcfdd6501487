// Checks that the conformance corpus covers what it says it does, against the live platform validator. No case's
// own verdict is asserted here: comparing each layer's verdict with the platform's is the conformance suite's job,
// and a case whose verdict moved would still be a good case. What is asserted is the shape of the corpus as a whole.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { platformValidator, type RegistryEntry, type YamlVerdict } from '../platform/verdict.ts';
import { corpus, type CorpusCase } from './corpus.ts';

type Outcome = 'valid' | 'invalid' | 'unreadable';

interface Judged {
  case: CorpusCase;
  outcome: Outcome;
  /** Top-level keys of the document, or none when it is not a mapping. */
  keys: string[];
  /** algorithm.name when it is a string. */
  algorithm?: string;
}

const judged: Judged[] = [];
let registry: RegistryEntry[] = [];
let sections: string[] = [];

function outcomeOf(verdict: YamlVerdict): Outcome {
  if ('unreadable' in verdict) return 'unreadable';
  return verdict.valid ? 'valid' : 'invalid';
}

// The document's top level, read as YAML 1.1 as the platform reads it. Read here rather than asked of the platform:
// its parse answer is JSON, which cannot carry every value a case may hold (.inf, a date). Only cases the platform
// could read are counted, so a text this parser reads differently never counts as a readable case.
function topLevel(text: string): { keys: string[]; algorithm?: string } {
  let document: unknown;
  try {
    document = parse(text, { version: '1.1', merge: true, uniqueKeys: false, logLevel: 'silent' });
  } catch {
    return { keys: [] };
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) return { keys: [] };
  const mapping = document as Record<string, unknown>;
  const algorithm = mapping.algorithm;
  const name = typeof algorithm === 'object' && algorithm !== null ? (algorithm as Record<string, unknown>).name : undefined;
  return { keys: Object.keys(mapping), ...(typeof name === 'string' ? { algorithm: name } : {}) };
}

before(async () => {
  const validator = platformValidator();
  registry = await validator.registry();
  const schema = await validator.schema();
  sections = Object.keys((schema.properties ?? {}) as Record<string, unknown>);
  for (const c of corpus) {
    judged.push({ case: c, outcome: outcomeOf(await validator.verdictYaml(c.yaml)), ...topLevel(c.yaml) });
  }
});

after(() => platformValidator().close());

function count(outcome: Outcome): number {
  return judged.filter((j) => j.outcome === outcome).length;
}

describe('conformance corpus', () => {
  test('holds at least 220 cases', () => {
    assert.ok(corpus.length >= 220, `only ${corpus.length} cases`);
  });

  test('ids are unique and kebab-case; every case says what it is about', () => {
    const seen = new Set<string>();
    for (const c of corpus) {
      assert.match(c.id, /^[a-z0-9]+(?:-[a-z0-9]+)*$/, `id ${JSON.stringify(c.id)} is not kebab-case`);
      assert.ok(!seen.has(c.id), `id ${c.id} is used twice`);
      seen.add(c.id);
      assert.ok(c.about.trim().length > 0, `${c.id} has no description`);
      assert.equal(typeof c.yaml, 'string', `${c.id} has no manifest text`);
    }
  });

  test('the platform answers every case', () => {
    assert.equal(judged.length, corpus.length);
  });

  test('at least 40% of the cases are valid and at least 40% invalid under the platform', () => {
    const valid = count('valid');
    const invalid = count('invalid');
    const summary = `${valid} valid, ${invalid} invalid, ${count('unreadable')} unreadable of ${corpus.length}`;
    assert.ok(valid >= 0.4 * corpus.length, `too few valid cases: ${summary}`);
    assert.ok(invalid >= 0.4 * corpus.length, `too few invalid cases: ${summary}`);
  });

  test('the registry is the one the corpus was written against (21 names)', () => {
    // A new algorithm in the platform needs cases of its own; the next test names the ones that are missing.
    assert.ok(registry.length >= 21, `the platform registers only ${registry.length} algorithms`);
    for (const name of ['Rainbow DQN', 'RainbowDQN', 'Recurrent PPO', 'RecurrentPPO']) {
      assert.ok(registry.some((e) => e.name === name), `the platform no longer registers ${name}`);
    }
  });

  test('every registered algorithm name is in a valid case and in an invalid case', () => {
    const missing: string[] = [];
    for (const { name } of registry) {
      for (const outcome of ['valid', 'invalid'] as const) {
        if (!judged.some((j) => j.outcome === outcome && j.algorithm === name)) missing.push(`${name} (${outcome})`);
      }
    }
    assert.deepEqual(missing, [], `no case for: ${missing.join(', ')}`);
  });

  test('every top-level section of the platform schema is in a valid case and in an invalid case', () => {
    assert.ok(sections.length >= 8, `the schema names only ${sections.length} sections`);
    const missing: string[] = [];
    for (const section of sections) {
      for (const outcome of ['valid', 'invalid'] as const) {
        if (!judged.some((j) => j.outcome === outcome && j.keys.includes(section))) missing.push(`${section} (${outcome})`);
      }
    }
    assert.deepEqual(missing, [], `no case for: ${missing.join(', ')}`);
  });

  test('some cases are text the platform cannot read at all', () => {
    assert.ok(count('unreadable') >= 3, `only ${count('unreadable')} unreadable cases`);
  });
});
