import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { kwokConfig } from './control-plane.ts';

type Doc = { kind?: string; metadata?: { name?: string }; spec?: { delay?: { durationMilliseconds?: number; jitterDurationMilliseconds?: number } }; options?: Record<string, number> };
const docs = (largeFleet: boolean) => parseAllDocuments(kwokConfig(largeFleet)).map((d) => d.toJS() as Doc);
const heartbeat = (ds: Doc[]) => ds.find((d) => d.metadata?.name === 'arena-node-heartbeat')?.spec?.delay;

test('kwok config: the stages plus its own options with more parallel stage and lease workers than its default 4', () => {
  const ds = docs(false);
  const options = ds.find((d) => d.kind === 'KwokConfiguration')?.options;
  assert.deepEqual(options, {
    nodePlayStageParallelism: 16,
    podPlayStageParallelism: 16,
    nodeLeaseParallelism: 16,
    // kwok's own defaults, which it applies only when no KwokConfiguration is given
    podsOnNodeSyncParallelism: 1,
    enablePodsOnNodeSyncListPager: true,
    enablePodsOnNodeSyncStreamWatch: false,
    enableDebuggingHandlers: true,
    enableContentionProfiling: false,
    enableProfilingHandler: true,
  });
  assert.ok(ds.filter((d) => d.kind === 'Stage').length >= 7);
  assert.deepEqual(heartbeat(ds), { durationMilliseconds: 20000, jitterDurationMilliseconds: 25000 });
});

test('kwok config: a large fleet heartbeats every 2-3 minutes instead of every 20-45 s, and nothing else changes', () => {
  const small = docs(false);
  const large = docs(true);
  assert.deepEqual(heartbeat(large), { durationMilliseconds: 120000, jitterDurationMilliseconds: 60000 });
  const others = (ds: Doc[]) => JSON.stringify(ds.filter((d) => d.metadata?.name !== 'arena-node-heartbeat'));
  assert.equal(others(large), others(small));
});
