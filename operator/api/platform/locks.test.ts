// The operator image installs python/platform.lock (the platform's validator alone); the project's environment and
// the runtime image install python/requirements.lock. Both must pin the same versions and files, and the platform
// package must be the one registry.generated.ts was read from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PLATFORM_PACKAGE_VERSION } from './registry.generated.ts';

function pins(file: string): Map<string, { version: string; hashes: string[] }> {
  const text = readFileSync(new URL(`../../../python/${file}`, import.meta.url), 'utf8');
  const out = new Map<string, { version: string; hashes: string[] }>();
  for (const block of text.split(/\n(?=[A-Za-z0-9])/)) {
    const m = block.match(/^([A-Za-z0-9._-]+)==(\S+)/);
    if (!m) continue;
    out.set(m[1]!.toLowerCase(), { version: m[2]!, hashes: [...block.matchAll(/--hash=(sha256:[0-9a-f]{64})/g)].map((h) => h[1]!).sort() });
  }
  return out;
}

test('every pin of the operator image\'s lock is the project lock\'s, with the same hashes', () => {
  const full = pins('requirements.lock');
  const platform = pins('platform.lock');
  assert.ok(platform.size > 5, 'platform.lock pins the validator and its dependencies');
  for (const [name, pin] of platform) {
    assert.ok(pin.hashes.length > 0, `${name} is pinned by hash`);
    assert.deepEqual(full.get(name), pin, `${name} (run make python-lock)`);
  }
  assert.equal(platform.has('torch'), false, 'the operator image carries no torch');
});

test('the pinned agilerl-arena is the one the generated registry was read from', () => {
  assert.equal(pins('requirements.lock').get('agilerl-arena')?.version, PLATFORM_PACKAGE_VERSION);
  assert.equal(pins('platform.lock').get('agilerl-arena')?.version, PLATFORM_PACKAGE_VERSION);
});
