import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  NVIDIA_SMI_FIELDS,
  NVIDIA_SMI_FIELDS_WITHOUT_CC,
  attentionBackend,
  attentionBackendFor,
  gpuRequirement,
  parseComputeCapability,
  parseNvidiaSmiCsv,
  probeHost,
  queryGpus,
  type CommandResult,
  type GpuInfo,
  type RunCommand,
} from './probe.ts';

// Output of `nvidia-smi --query-gpu=index,uuid,name,memory.total,compute_cap,driver_version,mig.mode.current
// --format=csv,noheader,nounits` as the driver prints it: ", " between values, no quoting, [N/A] for unknowns.
const SAMPLES = {
  a100x2:
    '0, GPU-1b3f5a7e-9c2d-4e6f-8a1b-3c5d7e9f1a2b, NVIDIA A100-SXM4-80GB, 81920, 8.0, 535.183.01, Disabled\n' +
    '1, GPU-2c4e6a8f-0d3e-5f7a-9b2c-4d6e8f0a2b3c, NVIDIA A100-SXM4-80GB, 81920, 8.0, 535.183.01, Disabled\n',
  h100: '0, GPU-7f0c1d2e-3a4b-5c6d-7e8f-9a0b1c2d3e4f, NVIDIA H100 80GB HBM3, 81559, 9.0, 550.90.07, Disabled\n',
  l4: '0, GPU-5e6f7a8b-9c0d-1e2f-3a4b-5c6d7e8f9a0b, NVIDIA L4, 23034, 8.9, 535.161.08, [N/A]\n',
  t4: '0, GPU-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d, Tesla T4, 15360, 7.5, 525.147.05, [N/A]\n',
  migEnabled: '0, GPU-9d8c7b6a-5f4e-3d2c-1b0a-9f8e7d6c5b4a, NVIDIA A100-SXM4-40GB, 40960, 8.0, 535.129.03, Enabled\n',
  naFields: '0, GPU-3c2b1a0f-9e8d-7c6b-5a4f-3e2d1c0b9a8f, NVIDIA GeForce RTX 3090, [N/A], 8.6, [N/A], [Not Supported]\n',
  commaInName: '0, GPU-6b5a4f3e-2d1c-0b9a-8f7e-6d5c4b3a2f1e, NVIDIA RTX 6000, Ada Generation, 49140, 8.9, 550.54.14, [N/A]\n',
  crlf: '0, GPU-1b3f5a7e-9c2d-4e6f-8a1b-3c5d7e9f1a2b, NVIDIA A100-PCIE-40GB, 40960, 8.0, 470.223.02, Disabled\r\n',
  withWarning: 'WARNING: infoROM is corrupted at gpu 0000:3B:00.0\n0, GPU-5e6f7a8b-9c0d-1e2f-3a4b-5c6d7e8f9a0b, NVIDIA L4, 23034, 8.9, 535.161.08, [N/A]\n',
  // Drivers before compute_cap: the same query without it.
  oldDriver: '0, GPU-8e7d6c5b-4a3f-2e1d-0c9b-8a7f6e5d4c3b, Tesla V100-SXM2-16GB, 16160, 460.106.00, [N/A]\n',
};

const DRIVER_DOWN =
  "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n";
const INVALID_FIELD = 'Field "compute_cap" is not a valid field to query.\n\n';

const gpu = (name: string, cc?: [number, number], extra: Partial<GpuInfo> = {}): GpuInfo => ({
  index: 0,
  name,
  ...(cc ? { computeCapability: { major: cc[0], minor: cc[1] } } : {}),
  ...extra,
});

test('parses nvidia-smi rows of real GPUs', () => {
  const cases: { name: string; text: string; fields?: readonly string[]; want: Partial<GpuInfo>[] }[] = [
    {
      name: 'two A100s',
      text: SAMPLES.a100x2,
      want: [
        { index: 0, name: 'NVIDIA A100-SXM4-80GB', memoryTotalMiB: 81920, computeCapability: { major: 8, minor: 0 }, driverVersion: '535.183.01', migMode: 'Disabled' },
        { index: 1, uuid: 'GPU-2c4e6a8f-0d3e-5f7a-9b2c-4d6e8f0a2b3c', computeCapability: { major: 8, minor: 0 } },
      ],
    },
    { name: 'H100', text: SAMPLES.h100, want: [{ name: 'NVIDIA H100 80GB HBM3', memoryTotalMiB: 81559, computeCapability: { major: 9, minor: 0 } }] },
    { name: 'L4 (no MIG support)', text: SAMPLES.l4, want: [{ name: 'NVIDIA L4', computeCapability: { major: 8, minor: 9 }, migMode: undefined }] },
    { name: 'T4', text: SAMPLES.t4, want: [{ name: 'Tesla T4', memoryTotalMiB: 15360, computeCapability: { major: 7, minor: 5 } }] },
    { name: 'MIG enabled', text: SAMPLES.migEnabled, want: [{ name: 'NVIDIA A100-SXM4-40GB', migMode: 'Enabled' }] },
    {
      name: 'N/A and Not Supported values',
      text: SAMPLES.naFields,
      want: [{ name: 'NVIDIA GeForce RTX 3090', memoryTotalMiB: undefined, driverVersion: undefined, migMode: undefined, computeCapability: { major: 8, minor: 6 } }],
    },
    {
      name: 'a comma inside the name',
      text: SAMPLES.commaInName,
      want: [{ name: 'NVIDIA RTX 6000, Ada Generation', memoryTotalMiB: 49140, computeCapability: { major: 8, minor: 9 }, driverVersion: '550.54.14' }],
    },
    { name: 'CRLF line endings', text: SAMPLES.crlf, want: [{ name: 'NVIDIA A100-PCIE-40GB', migMode: 'Disabled' }] },
    { name: 'a warning line before the rows', text: SAMPLES.withWarning, want: [{ name: 'NVIDIA L4' }] },
    { name: 'an old driver without compute_cap', text: SAMPLES.oldDriver, fields: NVIDIA_SMI_FIELDS_WITHOUT_CC, want: [{ name: 'Tesla V100-SXM2-16GB', computeCapability: undefined, driverVersion: '460.106.00' }] },
    { name: 'the driver error text', text: DRIVER_DOWN, want: [] },
    { name: 'the invalid-field error text', text: INVALID_FIELD, want: [] },
    { name: 'empty output', text: '', want: [] },
  ];
  for (const c of cases) {
    const got = parseNvidiaSmiCsv(c.text, c.fields ?? NVIDIA_SMI_FIELDS);
    assert.equal(got.length, c.want.length, c.name);
    c.want.forEach((w, i) => {
      for (const [k, v] of Object.entries(w)) assert.deepEqual(got[i]![k as keyof GpuInfo], v, `${c.name}: ${k}`);
    });
  }
});

test('compute capability parsing accepts only major.minor', () => {
  assert.deepEqual(parseComputeCapability(' 8.9'), { major: 8, minor: 9 });
  assert.deepEqual(parseComputeCapability('10.0'), { major: 10, minor: 0 });
  for (const bad of ['[N/A]', '', '89', 'sm_89', undefined]) assert.equal(parseComputeCapability(bad), undefined, String(bad));
});

test('attention backend: fa3 only on SM 8.0 and 9.0', () => {
  const cases: [string, [number, number] | undefined, 'fa3' | 'flashinfer'][] = [
    ['A100', [8, 0], 'fa3'],
    ['H100', [9, 0], 'fa3'],
    ['RTX 3090', [8, 6], 'flashinfer'],
    ['L4', [8, 9], 'flashinfer'],
    ['RTX 4090', [8, 9], 'flashinfer'],
    ['T4', [7, 5], 'flashinfer'],
    ['V100', [7, 0], 'flashinfer'],
    ['B200', [10, 0], 'flashinfer'],
    ['unknown', undefined, 'flashinfer'],
  ];
  for (const [name, cc, want] of cases) assert.equal(attentionBackend(cc && { major: cc[0], minor: cc[1] }), want, name);
  assert.equal(attentionBackendFor([gpu('A100', [8, 0]), gpu('H100', [9, 0])]), 'fa3');
  assert.equal(attentionBackendFor([gpu('A100', [8, 0]), gpu('L4', [8, 9])]), 'flashinfer', 'one GPU without fa3 decides');
  assert.equal(attentionBackendFor([]), undefined);
});

function scripted(answers: Record<string, CommandResult>): { run: RunCommand; calls: string[][] } {
  const calls: string[][] = [];
  const run: RunCommand = async (_file, args) => {
    calls.push(args);
    const hasCc = args[0]!.includes('compute_cap');
    return answers[hasCc ? 'withCc' : 'withoutCc'] ?? { stdout: '', stderr: '', code: 0 };
  };
  return { run, calls };
}

test('queryGpus: missing tool, errors, old drivers', async () => {
  const cases: { name: string; answers: Record<string, CommandResult>; gpus: number; error?: RegExp; calls: number; cc?: boolean }[] = [
    { name: 'nvidia-smi not installed', answers: { withCc: { stdout: '', stderr: '', notFound: true } }, gpus: 0, calls: 1 },
    { name: 'rows', answers: { withCc: { stdout: SAMPLES.a100x2, stderr: '', code: 0 } }, gpus: 2, calls: 1, cc: true },
    { name: 'no devices', answers: { withCc: { stdout: 'No devices were found\n', stderr: '', code: 6 } }, gpus: 0, calls: 1 },
    { name: 'driver not loaded', answers: { withCc: { stdout: DRIVER_DOWN, stderr: '', code: 9 } }, gpus: 0, error: /couldn't communicate with the NVIDIA driver/, calls: 1 },
    { name: 'timeout', answers: { withCc: { stdout: '', stderr: '', timedOut: true } }, gpus: 0, error: /did not answer/, calls: 1 },
    {
      name: 'old driver: asked again without compute_cap',
      answers: { withCc: { stdout: INVALID_FIELD, stderr: '', code: 2 }, withoutCc: { stdout: SAMPLES.oldDriver, stderr: '', code: 0 } },
      gpus: 1,
      calls: 2,
      cc: false,
    },
  ];
  for (const c of cases) {
    const { run, calls } = scripted(c.answers);
    const got = await queryGpus({ run });
    assert.equal(got.gpus.length, c.gpus, c.name);
    assert.equal(calls.length, c.calls, `${c.name}: calls`);
    if (c.error) assert.match(got.error ?? '', c.error, c.name);
    else assert.equal(got.error, undefined, c.name);
    if (c.cc !== undefined) assert.equal(got.gpus[0]!.computeCapability !== undefined, c.cc, `${c.name}: cc`);
    assert.deepEqual(calls[0], ['--query-gpu=index,uuid,name,memory.total,compute_cap,driver_version,mig.mode.current', '--format=csv,noheader,nounits']);
  }
});

test('queryGpus runs a real executable asynchronously, with a timeout', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fake-smi-'));
  try {
    const ok = join(dir, 'nvidia-smi');
    writeFileSync(ok, `#!/bin/sh\ncase "$1" in *compute_cap*) printf '%s' '${SAMPLES.h100.trim()}' ;; esac\n`);
    chmodSync(ok, 0o755);
    const slow = join(dir, 'slow-smi');
    writeFileSync(slow, '#!/bin/sh\nexec sleep 5\n');
    chmodSync(slow, 0o755);
    const found = await queryGpus({ binary: ok });
    assert.equal(found.gpus[0]?.name, 'NVIDIA H100 80GB HBM3');
    const started = Date.now();
    const late = await queryGpus({ binary: slow, timeoutMs: 300 });
    assert.equal(late.gpus.length, 0);
    assert.match(late.error ?? '', /did not answer/);
    assert.ok(Date.now() - started < 4_000, 'the timeout ended the command');
    assert.deepEqual(await queryGpus({ binary: join(dir, 'absent') }), { gpus: [] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('gpuRequirement: LLM algorithms need a usable GPU, classic RL does not', () => {
  const cases: { name: string; algorithm: 'DQN' | 'GRPO' | 'SFT'; gpus: GpuInfo[]; error?: string; reason?: string }[] = [
    { name: 'DQN without GPUs', algorithm: 'DQN', gpus: [] },
    { name: 'GRPO without GPUs', algorithm: 'GRPO', gpus: [], reason: 'NoGpu' },
    { name: 'GRPO when the driver is down', algorithm: 'GRPO', gpus: [], error: 'nvidia-smi failed: driver', reason: 'NoGpu' },
    { name: 'SFT on a P100', algorithm: 'SFT', gpus: [gpu('Tesla P100-PCIE-16GB', [6, 0])], reason: 'UnsupportedGpu' },
    { name: 'GRPO on an L4', algorithm: 'GRPO', gpus: [gpu('NVIDIA L4', [8, 9])] },
    { name: 'GRPO on an old driver (capability unknown)', algorithm: 'GRPO', gpus: [gpu('Tesla V100-SXM2-16GB')] },
  ];
  for (const c of cases) {
    const got = gpuRequirement(c.algorithm, { gpus: c.gpus, ...(c.error ? { error: c.error } : {}) }, 'gpu-node-3');
    assert.equal(got?.reason, c.reason, c.name);
    if (got) {
      assert.match(got.message, /gpu-node-3/, `${c.name}: names the node`);
      assert.ok(got.hint.length > 0 && !got.hint.includes('\n'), `${c.name}: one-line hint`);
      if (c.error) assert.match(got.message, /driver/, `${c.name}: says why`);
    }
  }
});

test('probeHost reports CPU, memory and OS from systeminformation, or from node:os without it', async () => {
  const run: RunCommand = async () => ({ stdout: SAMPLES.l4, stderr: '', code: 0 });
  const plain = await probeHost({ run, si: null });
  assert.equal(plain.source, 'node:os');
  assert.ok(plain.cpu.cores >= 1 && plain.memory.totalBytes > 0 && plain.os.platform.length > 0);
  assert.equal(plain.gpu.gpus[0]!.name, 'NVIDIA L4');

  const si = {
    cpu: async () => ({ manufacturer: 'AMD', brand: 'EPYC 7763', cores: 128, physicalCores: 64 }),
    mem: async () => ({ total: 512 * 2 ** 30 }),
    osInfo: async () => ({ platform: 'linux', distro: 'Ubuntu', release: '22.04', kernel: '5.15.0', arch: 'x64' }),
  };
  const rich = await probeHost({ run, si });
  assert.equal(rich.source, 'systeminformation');
  assert.deepEqual(rich.cpu, { brand: 'AMD EPYC 7763', cores: 128, physicalCores: 64, available: rich.cpu.available });
  assert.equal(rich.os.distro, 'Ubuntu');
  assert.equal(rich.memory.totalBytes, 512 * 2 ** 30);
});
