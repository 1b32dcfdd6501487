// The model process killed while it loads: the cgroup's OOM-kill count decides whether the reason names the
// OOM killer and the memory limit (a bigger limit fixes it) or only the signal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MemoryCgroup } from '../oom.ts';
import { AgileRlActionModel } from './agilerl-model.ts';

/** A "python" that SIGKILLs itself at once, as the OOM killer (or anyone) would. */
function selfKillingPython(dir: string): string {
  const path = join(dir, 'python');
  writeFileSync(path, '#!/bin/sh\nkill -9 $$\n');
  chmodSync(path, 0o755);
  return path;
}

const cases: { name: string; readings: MemoryCgroup[]; want: RegExp }[] = [
  {
    name: 'the OOM count rose: the reason names the killer, the limit and the field to raise',
    readings: [
      { oomKills: 0, limitBytes: 512 * 2 ** 20 },
      { oomKills: 1, limitBytes: 512 * 2 ** 20 },
    ],
    want: /^the model process was killed by the kernel's out-of-memory killer: the pod went over its memory limit of 512 MiB; raise the Deployment's spec\.resources\.memory$/,
  },
  {
    name: 'the count did not move: a plain SIGKILL',
    readings: [
      { oomKills: 2, limitBytes: undefined },
      { oomKills: 2, limitBytes: undefined },
    ],
    want: /^the model process ended \(SIGKILL\)$/,
  },
  {
    name: 'no cgroup to read: a plain SIGKILL',
    readings: [
      { oomKills: undefined, limitBytes: undefined },
      { oomKills: undefined, limitBytes: undefined },
    ],
    want: /^the model process ended \(SIGKILL\)$/,
  },
];

for (const c of cases) {
  test(c.name, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'arena-oom-'));
    try {
      const readings = [...c.readings];
      const exited = new Promise<string>((resolve) => {
        const model = AgileRlActionModel.start(join(dir, 'ckpt'), { python: selfKillingPython(dir), memory: () => readings.shift()!, onExit: resolve });
        void model.ready.catch(() => undefined);
      });
      assert.match(await exited, c.want);
      assert.equal(readings.length, 0, 'read once at spawn and once at the kill');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
