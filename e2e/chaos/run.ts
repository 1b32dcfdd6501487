// `make chaos`: every scenario in turn, one line of figures each, and a summary line. Not part of `make test`: it
// takes minutes and prints figures rather than asserting timings.
//   options: --only a,b (scenario names), --scale 0.2 (load), --seed N, --keep (keep the scenario folders)
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { passed, resultLine, type ChaosScenario, type ChaosResult } from './scenario.ts';
import { scenarios } from './scenarios.ts';

const { values } = parseArgs({
  options: { only: { type: 'string' }, scale: { type: 'string', default: '1' }, seed: { type: 'string' }, keep: { type: 'boolean', default: false } },
});
const scale = Number(values.scale);
if (!(scale > 0 && scale <= 10)) throw new Error(`--scale must be a number in (0, 10], got ${values.scale}`);
const seed = values.seed === undefined ? Date.now() % 1_000_000 : Number(values.seed);
if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
const wanted = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
const unknown = wanted?.filter((w) => !scenarios.some((s) => s.name === w)) ?? [];
if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}; scenarios: ${scenarios.map((s) => s.name).join(', ')}`);
const chosen: ChaosScenario[] = wanted ? scenarios.filter((s) => wanted.includes(s.name)) : scenarios;

console.log(`chaos: seed ${seed}, scale ${scale}, ${chosen.length} scenarios`);
let ok = 0;
let failed = 0;
for (const s of chosen) {
  const dir = mkdtempSync(join(tmpdir(), `arena-chaos-${s.name}-`));
  const started = Date.now();
  console.log(`# ${s.name}: ${s.description}`);
  let result: ChaosResult;
  try {
    result = await s.run({ scale, seed, dir, log: (line) => console.log(`#   ${line}`) });
  } catch (err) {
    result = { figures: {}, lost: 0, duplicates: 0, leaked: 0, failures: [`crashed: ${(err as Error).stack ?? String(err)}`] };
  }
  result.figures.wallMs ??= Date.now() - started;
  console.log(resultLine(s.name, result));
  for (const f of result.failures) console.log(`#   FAILED: ${f}`);
  if (passed(result)) ok++;
  else failed++;
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
}
console.log(`chaos: ${ok} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
