import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergePatchFor } from './status.ts';

// RFC 7386 semantics: applying the patch to `from` must give `to`.
function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as object) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

const cases: Record<string, { from: Record<string, unknown>; to: Record<string, unknown>; patch: Record<string, unknown> }> = {
  'nothing changed': { from: { phase: 'Running' }, to: { phase: 'Running' }, patch: {} },
  'a field changed': { from: { phase: 'Pending', workers: 2 }, to: { phase: 'Running', workers: 2 }, patch: { phase: 'Running' } },
  'a field added': { from: {}, to: { phase: 'Running' }, patch: { phase: 'Running' } },
  'a field removed becomes null': {
    from: { phase: 'Pending', reason: 'NoGPUs' },
    to: { phase: 'Running' },
    patch: { reason: null, phase: 'Running' },
  },
  'nested objects are diffed': {
    from: { progress: { step: 10, score: 0.5 }, phase: 'Running' },
    to: { progress: { step: 20, score: 0.5 }, phase: 'Running' },
    patch: { progress: { step: 20 } },
  },
  'arrays are replaced whole': {
    from: { conditions: [{ type: 'Ready', status: 'False' }, { type: 'Admitted', status: 'True' }] },
    to: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'Admitted', status: 'True' }] },
    patch: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'Admitted', status: 'True' }] },
  },
  'an object replacing a scalar is sent whole': { from: { x: 1 }, to: { x: { y: 1 } }, patch: { x: { y: 1 } } },
};

for (const [name, c] of Object.entries(cases)) {
  test(`mergePatchFor: ${name}`, () => {
    const patch = mergePatchFor(c.from, c.to);
    assert.deepEqual(patch, c.patch);
    assert.deepEqual(applyMergePatch(c.from, patch), c.to);
  });
}
