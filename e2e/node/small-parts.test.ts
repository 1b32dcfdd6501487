// The node's small pure parts: image mapping, pod IPs, GPU inventory and allocation, /proc parsing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveCommand, type ImageMapping } from './image-map.ts';
import { LoopbackIpPool } from './ip-pool.ts';
import { GpuAllocator, gpuInventory, gpuLabels, parseComputeCapability, productLabel } from './gpu.ts';
import { identify, isAlive, parseStat } from './proc.ts';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('resolveCommand', () => {
  const table: ImageMapping[] = [
    { match: /arena-runtime/, command: ['node', '--import', 'tsx', '/repo/runtime/cli.ts'] },
    { match: 'busybox' },
  ];
  const cases: Record<string, { image: string; command?: string[]; args?: string[]; want: string[] | RegExp }> = {
    'replaces command[0], keeps the rest and the args': {
      image: 'ghcr.io/agilerl/arena-runtime:0.3',
      command: ['arena-runtime', 'train'],
      args: ['--config', '/etc/arena/m.yaml'],
      want: ['node', '--import', 'tsx', '/repo/runtime/cli.ts', 'train', '--config', '/etc/arena/m.yaml'],
    },
    'no command: the mapped entrypoint and the args': {
      image: 'arena-runtime',
      args: ['serve'],
      want: ['node', '--import', 'tsx', '/repo/runtime/cli.ts', 'serve'],
    },
    'a mapping without command runs the container command as written': {
      image: 'busybox:1.36',
      command: ['sh', '-c'],
      args: ['echo hi'],
      want: ['sh', '-c', 'echo hi'],
    },
    'a string matches the repository with any tag': { image: 'busybox@sha256:abc', command: ['true'], want: ['true'] },
    'a string does not match a longer name': { image: 'busybox2', command: ['true'], want: /is not mapped to a local command/ },
    'unmapped image': { image: 'nginx:1.27', want: /image "nginx:1.27" is not mapped to a local command/ },
    'mapped without command and none in the spec': { image: 'busybox', want: /mapped without a command/ },
  };
  for (const [name, c] of Object.entries(cases)) {
    test(name, () => {
      const r = resolveCommand({ image: c.image, command: c.command, args: c.args }, table);
      if (Array.isArray(c.want)) {
        assert.ok(r.ok, JSON.stringify(r));
        assert.deepEqual(r.argv, c.want);
      } else {
        assert.ok(!r.ok);
        assert.match(r.message, c.want);
      }
    });
  }
  test('an unmapped image reads as ErrImageNeverPull', () => {
    const r = resolveCommand({ image: 'nginx' }, table);
    assert.equal(r.ok ? '' : r.reason, 'ErrImageNeverPull');
  });
});

describe('LoopbackIpPool', () => {
  test('distinct addresses, stable per owner, not reused at once', () => {
    const pool = new LoopbackIpPool('127.200.0.0/30');
    const a = pool.allocate('a');
    const b = pool.allocate('b');
    assert.deepEqual([a, b], ['127.200.0.1', '127.200.0.2']);
    assert.equal(pool.allocate('a'), a);
    assert.throws(() => pool.allocate('c'), /no free pod IP/);
    pool.release('a');
    assert.equal(pool.allocate('c'), a);
  });
  test('never hands out 127.0.0.1, the host IP', () => {
    const pool = new LoopbackIpPool('127.0.0.0/30');
    assert.equal(pool.allocate('a'), '127.0.0.2');
  });
  test('refuses ranges outside loopback', () => {
    assert.throws(() => new LoopbackIpPool('10.0.0.0/16'), /not inside 127.0.0.0\/8/);
  });
  test('pools sharing a claim directory never hand out the same address; a claim of a dead owner is taken over', () => {
    const claimDir = mkdtempSync(join(tmpdir(), 'arena-ips-'));
    try {
      const one = new LoopbackIpPool('127.201.0.0/29', { claimDir });
      const two = new LoopbackIpPool('127.201.0.0/29', { claimDir });
      const a = one.allocate('x');
      const b = two.allocate('x');
      assert.notEqual(a, b);
      // A claim left by a process that is gone: pid 1 never has these start ticks.
      writeFileSync(join(claimDir, '127.201.0.3'), JSON.stringify({ pid: 1, startTicks: -1 }));
      assert.equal(two.allocate('y'), '127.201.0.3');
      one.release('x');
      assert.equal(existsSync(join(claimDir, a)), false);
    } finally {
      rmSync(claimDir, { recursive: true, force: true });
    }
  });
  test('restores an address recorded earlier', () => {
    const pool = new LoopbackIpPool();
    pool.restore('x', '127.200.3.4');
    assert.equal(pool.allocate('x'), '127.200.3.4');
  });
});

describe('GPUs', () => {
  test('GFD labels from a probe', async () => {
    const inv = await gpuInventory({
      probe: async () => ({
        gpus: [
          { name: 'NVIDIA A100-SXM4-80GB', memoryMiB: 81920, computeCapability: '8.0' },
          { name: 'NVIDIA A100-SXM4-80GB', memoryMiB: 81920, computeCapability: '8.0' },
        ],
      }),
    });
    assert.deepEqual(gpuLabels(inv), {
      'nvidia.com/gpu.present': 'true',
      'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB',
      'nvidia.com/gpu.memory': '81920',
      'nvidia.com/gpu.count': '2',
      'nvidia.com/gpu.compute.major': '8',
      'nvidia.com/gpu.compute.minor': '0',
    });
  });
  test('the answer of runtime/gpu/probe.ts queryGpus() (memoryTotalMiB, capability object, maybe unknown)', async () => {
    const answer = {
      gpus: [{ index: 0, name: 'Tesla T4', memoryTotalMiB: 15360, driverVersion: '550.1', computeCapability: { major: 7, minor: 5 } }],
    };
    const inv = await gpuInventory({ probe: async () => answer });
    assert.deepEqual(inv, { count: 1, product: 'Tesla-T4', memoryMiB: 15360, major: 7, minor: 5 });
    const old = await gpuInventory({ probe: async () => ({ gpus: [{ name: 'Tesla K80' }] }) });
    assert.deepEqual(gpuLabels(old), { 'nvidia.com/gpu.present': 'true', 'nvidia.com/gpu.product': 'Tesla-K80', 'nvidia.com/gpu.count': '1' });
  });
  test('a probe that finds none gives no GPU labels; one that fails says so', async () => {
    assert.equal(await gpuInventory({ probe: async () => ({ gpus: [] }) }), undefined);
    await assert.rejects(gpuInventory({ probe: async () => Promise.reject(new Error('no driver')) }), /GPU probe failed: no driver/);
    await assert.rejects(gpuInventory({ probe: async () => ({ gpus: [], error: 'nvidia-smi failed: NVML mismatch' }) }), /NVML mismatch/);
  });
  test('compute capability forms', () => {
    assert.deepEqual(parseComputeCapability('8.9'), { major: 8, minor: 9 });
    assert.deepEqual(parseComputeCapability(9), { major: 9, minor: 0 });
    assert.deepEqual(parseComputeCapability({ major: 7, minor: 5 }), { major: 7, minor: 5 });
    assert.throws(() => parseComputeCapability('sm_90'));
  });
  test('product names become label values', () => {
    assert.equal(productLabel(' Tesla T4 '), 'Tesla-T4');
    assert.equal(productLabel('NVIDIA GeForce RTX 4090 (laptop)'), 'NVIDIA-GeForce-RTX-4090-laptop');
  });
  test('allocation gives each owner its own indexes', () => {
    const gpus = new GpuAllocator(3);
    assert.deepEqual(gpus.allocate('pod-a', 2), [0, 1]);
    assert.equal(gpus.allocate('pod-b', 2), undefined);
    assert.deepEqual(gpus.allocate('pod-b', 1), [2]);
    gpus.releasePrefix('pod-a');
    assert.equal(gpus.free(), 2);
  });
});

describe('proc', () => {
  test('parses a stat line whose command has spaces and parentheses', () => {
    const line = '42 (my (weird) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10';
    assert.deepEqual(parseStat(42, line), { pid: 42, state: 'S', ppid: 1, pgrp: 42, session: 42, startTicks: 123456 });
  });
  test('knows this process, and that a recorded start time of another process is not it', () => {
    const me = identify(process.pid)!;
    assert.equal(isAlive(me), true);
    assert.equal(isAlive({ pid: me.pid, startTicks: me.startTicks + 1 }), false);
  });
});
