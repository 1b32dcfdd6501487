import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { addressesFor, claimSlot, readSlot, releaseSlot, staleSlots, type SlotRecord } from './slots.ts';

const describe = (slot: number) => ({ nodeName: `n${slot}`, dir: `/x/${slot}`, netns: `ns${slot}`, hostVeth: `arn${slot}h`, cgroupRoot: `/c${slot}` });
const never = () => Promise.reject(new Error('nothing is stale'));

test('each claim gets its own slot, and so its own addresses', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slots-'));
  const a = await claimSlot(describe, never, dir);
  const b = await claimSlot(describe, never, dir);
  assert.notEqual(a.slot, b.slot);
  const [x, y] = [addressesFor(a.slot), addressesFor(b.slot)];
  assert.notEqual(x.nodeIp, y.nodeIp);
  assert.notEqual(x.podCidr, y.podCidr);
  releaseSlot(b.slot, '/not/its/node', dir);
  assert.equal(readSlot(b.slot, dir)?.dir, `/x/${b.slot}`, "another node's release leaves the claim");
  releaseSlot(a.slot, `/x/${a.slot}`, dir);
  const c = await claimSlot(describe, never, dir);
  assert.equal(c.slot, a.slot, 'a released slot is free again');
});

test('a slot held by a dead process is undone, then taken over', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slots-'));
  const dead: SlotRecord = { owner: { pid: 2 ** 22 + 7, startTicks: 1 }, slot: 0, ...describe(0) };
  writeFileSync(join(dir, '0'), JSON.stringify(dead));
  assert.deepEqual(staleSlots(dir).map((s) => s.slot), [0]);
  const undone: SlotRecord[] = [];
  const got = await claimSlot(describe, async (r) => void undone.push(r), dir);
  assert.equal(got.slot, 0);
  assert.deepEqual(undone, [dead]);
  assert.equal((JSON.parse(readFileSync(join(dir, '0'), 'utf8')) as SlotRecord).owner.pid, process.pid);
  assert.deepEqual(staleSlots(dir), []);
});

test('addresses stay inside the private ranges and refuse an impossible slot', () => {
  assert.deepEqual(addressesFor(7), {
    slot: 7,
    hostIp: '10.201.7.1',
    nodeIp: '10.201.7.2',
    linkPrefix: 30,
    podCidr: '10.202.7.0/24',
    podGateway: '10.202.7.1',
  });
  assert.throws(() => addressesFor(255), /outside 0..254/);
});
