import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diagnose } from './diagnosis.ts';
import { memoryCgroup, oomKilledBetween } from './oom.ts';

function cgroupFolder(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'arena-oom-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

test('memoryCgroup reads the OOM-kill count and the limit of cgroup v2 and v1, and nothing from a folder without them', () => {
  const v2 = cgroupFolder({ 'memory.events': 'low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n', 'memory.max': '268435456\n' });
  assert.deepEqual(memoryCgroup(v2), { oomKills: 2, limitBytes: 268435456 });
  const v2NoLimit = cgroupFolder({ 'memory.events': 'oom_kill 0\n', 'memory.max': 'max\n' });
  assert.deepEqual(memoryCgroup(v2NoLimit), { oomKills: 0, limitBytes: undefined });
  const v1 = cgroupFolder({ 'memory/memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n', 'memory/memory.limit_in_bytes': '268435456\n' });
  assert.deepEqual(memoryCgroup(v1), { oomKills: 1, limitBytes: 268435456 });
  // v1 without a limit, and a kernel older than 4.13 (no oom_kill line).
  const v1Old = cgroupFolder({ 'memory/memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\n', 'memory/memory.limit_in_bytes': '9223372036854771712\n' });
  assert.deepEqual(memoryCgroup(v1Old), { oomKills: undefined, limitBytes: undefined });
  assert.deepEqual(memoryCgroup(cgroupFolder({})), { oomKills: undefined, limitBytes: undefined });
});

test('an OOM kill counts only when both readings have the counter and it rose', () => {
  assert.equal(oomKilledBetween({ oomKills: 0, limitBytes: 1 }, { oomKills: 1, limitBytes: 1 }), true);
  assert.equal(oomKilledBetween({ oomKills: 1, limitBytes: 1 }, { oomKills: 1, limitBytes: 1 }), false);
  assert.equal(oomKilledBetween({ oomKills: undefined, limitBytes: 1 }, { oomKills: 3, limitBytes: 1 }), false);
});

test('a SIGKILL with an OOM kill counted is OOMKilled, naming the limit; without one it stays a guess', () => {
  const lines = ['step 1000 loss 0.3'];
  const oom = diagnose({ lines, signal: 'SIGKILL', oomKilled: { limitBytes: 3 * 1024 ** 3 } });
  assert.equal(oom.reason, 'OOMKilled');
  assert.match(oom.message, /out-of-memory killer: the worker went over its memory limit of 3 GiB; its last output: step 1000 loss 0\.3/);
  assert.equal(diagnose({ lines, signal: 'SIGKILL', oomKilled: {} }).message.includes('limit;'), true, 'no limit known: none named');
  assert.equal(diagnose({ lines, signal: 'SIGKILL' }).reason, 'TrainerKilled');
  // A crash with its own signature keeps it even when memory ran out elsewhere in the container.
  assert.equal(diagnose({ lines, exitCode: 1, oomKilled: {} }).reason, 'TrainerCrashed');
});
