// What the worker runs on: CPU, memory and OS from systeminformation, and the GPUs from our own asynchronous
// nvidia-smi query. systeminformation's graphics() is not used for GPUs: it blocks the event loop (execSync),
// finds nothing without lspci (slim images), and does not report the compute capability, which decides the
// attention backend.
import { execFile } from 'node:child_process';
import { arch, availableParallelism, cpus, platform, release, totalmem } from 'node:os';
import type { AlgorithmName } from '../../operator/api/v1alpha1/manifest.ts';
import { needsGpu } from '../../operator/api/v1alpha1/manifest.ts';

export interface ComputeCapability {
  major: number;
  minor: number;
}

export interface GpuInfo {
  index: number;
  uuid?: string;
  name: string;
  memoryTotalMiB?: number;
  /** Unknown on drivers too old to report compute_cap. */
  computeCapability?: ComputeCapability;
  driverVersion?: string;
  /** Unknown ([N/A]) on GPUs without MIG support. */
  migMode?: 'Enabled' | 'Disabled';
}

export interface GpuQuery {
  gpus: GpuInfo[];
  /** Why nvidia-smi gave no usable answer, when it exists but failed; absent when it answered or is not installed. */
  error?: string;
}

export interface HostProbe {
  cpu: { brand: string; cores: number; physicalCores?: number; available: number };
  memory: { totalBytes: number };
  os: { platform: string; distro?: string; release: string; kernel?: string; arch: string };
  gpu: GpuQuery;
  /** Where CPU, memory and OS came from: systeminformation, or node:os when it is not installed. */
  source: 'systeminformation' | 'node:os';
}

export const NVIDIA_SMI_FIELDS = ['index', 'uuid', 'name', 'memory.total', 'compute_cap', 'driver_version', 'mig.mode.current'] as const;
export type NvidiaSmiField = (typeof NVIDIA_SMI_FIELDS)[number];
/** The query for drivers that predate the compute_cap field. */
export const NVIDIA_SMI_FIELDS_WITHOUT_CC = NVIDIA_SMI_FIELDS.filter((f) => f !== 'compute_cap');

export function nvidiaSmiArgs(fields: readonly string[]): string[] {
  return [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'];
}

// nvidia-smi writes these instead of a value; they all mean "unknown".
const MISSING = /^\[?(N\/A|Not Supported|Unknown Error|Insufficient Permissions|GPU requires reset)\]?$/i;

function value(raw: string | undefined): string | undefined {
  const v = raw?.trim();
  return v === undefined || v === '' || MISSING.test(v) ? undefined : v;
}

export function parseComputeCapability(raw: string | undefined): ComputeCapability | undefined {
  const m = /^(\d+)\.(\d+)$/.exec(value(raw) ?? '');
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

/**
 * Parses `--format=csv,noheader,nounits` output for the given fields. nvidia-smi does not quote values, so a
 * name containing commas yields extra columns; they are folded back into the name, the only free-text field.
 * Lines that are not GPU rows (warnings, blank lines) are skipped.
 */
export function parseNvidiaSmiCsv(text: string, fields: readonly string[] = NVIDIA_SMI_FIELDS): GpuInfo[] {
  const nameAt = fields.indexOf('name');
  const gpus: GpuInfo[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) continue;
    let cols = line.split(',');
    if (cols.length < fields.length) continue;
    if (cols.length > fields.length) {
      if (nameAt < 0) continue;
      const extra = cols.length - fields.length;
      cols = [...cols.slice(0, nameAt), cols.slice(nameAt, nameAt + extra + 1).join(','), ...cols.slice(nameAt + extra + 1)];
    }
    const row = Object.fromEntries(fields.map((f, i) => [f, cols[i]])) as Partial<Record<NvidiaSmiField, string>>;
    const index = Number(value(row.index));
    if (!Number.isInteger(index) || index < 0) continue;
    const memory = Number(value(row['memory.total']));
    const mig = value(row['mig.mode.current']);
    const gpu: GpuInfo = { index, name: value(row.name) ?? 'unknown GPU' };
    const uuid = value(row.uuid);
    if (uuid) gpu.uuid = uuid;
    if (Number.isFinite(memory) && memory > 0) gpu.memoryTotalMiB = memory;
    const cc = parseComputeCapability(row.compute_cap);
    if (cc) gpu.computeCapability = cc;
    const driver = value(row.driver_version);
    if (driver) gpu.driverVersion = driver;
    if (mig === 'Enabled' || mig === 'Disabled') gpu.migMode = mig;
    gpus.push(gpu);
  }
  return gpus;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  /** Exit code; undefined when the command could not run. */
  code?: number;
  /** Set when the command was not found. */
  notFound?: boolean;
  timedOut?: boolean;
}

export type RunCommand = (file: string, args: string[], timeoutMs: number) => Promise<CommandResult>;

export const runCommand: RunCommand = (file, args, timeoutMs) =>
  new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr, code: 0 });
      const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
      if (e.code === 'ENOENT') return resolve({ stdout, stderr, notFound: true });
      resolve({ stdout, stderr, code: typeof e.code === 'number' ? e.code : undefined, timedOut: e.killed === true });
    });
  });

/** The meaningful line of a failed nvidia-smi run. */
function failureText(r: CommandResult): string {
  const text = `${r.stderr}\n${r.stdout}`.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  return text[0] ?? `exit code ${r.code ?? 'unknown'}`;
}

/**
 * Queries the GPUs this container can see. A missing nvidia-smi means no GPUs, not an error; "No devices were
 * found" likewise. A driver too old for compute_cap is asked again without it.
 */
export async function queryGpus(opts: { run?: RunCommand; timeoutMs?: number; binary?: string } = {}): Promise<GpuQuery> {
  const run = opts.run ?? runCommand;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const binary = opts.binary ?? 'nvidia-smi';
  let fields: readonly string[] = NVIDIA_SMI_FIELDS;
  let r = await run(binary, nvidiaSmiArgs(fields), timeoutMs);
  // Old drivers answer 'Field "compute_cap" is not a valid field to query.' (on stdout, sometimes with exit 0).
  if (!r.notFound && !r.timedOut && /"?compute_cap"? is not a valid field/i.test(`${r.stdout}${r.stderr}`)) {
    fields = NVIDIA_SMI_FIELDS_WITHOUT_CC;
    r = await run(binary, nvidiaSmiArgs(fields), timeoutMs);
  }
  if (r.notFound) return { gpus: [] };
  if (r.timedOut) return { gpus: [], error: `nvidia-smi did not answer within ${Math.round(timeoutMs / 1000)}s` };
  if (r.code !== 0) {
    const why = failureText(r);
    return /no devices were found/i.test(why) ? { gpus: [] } : { gpus: [], error: `nvidia-smi failed: ${why}` };
  }
  return { gpus: parseNvidiaSmiCsv(r.stdout, fields) };
}

export function smVersion(cc: ComputeCapability): number {
  return cc.major * 10 + cc.minor;
}

export function formatCapability(cc: ComputeCapability | undefined): string {
  return cc ? `${cc.major}.${cc.minor}` : 'unknown';
}

export type AttentionBackend = 'fa3' | 'flashinfer';

/**
 * The attention backend for one GPU. SGLang's FlashAttention 3 backend asserts SM 80..90, but the guide only
 * recommends it on SM 80 and 90 (A100, H100/H200); consumer Ampere (86) and Ada (89, e.g. L4) get flashinfer, as
 * does anything unknown.
 */
export function attentionBackend(cc: ComputeCapability | undefined): AttentionBackend {
  if (!cc) return 'flashinfer';
  const sm = smVersion(cc);
  return sm === 80 || sm === 90 ? 'fa3' : 'flashinfer';
}

/** One backend for all the worker's GPUs: fa3 only when every GPU supports it. */
export function attentionBackendFor(gpus: readonly GpuInfo[]): AttentionBackend | undefined {
  if (gpus.length === 0) return undefined;
  return gpus.every((g) => attentionBackend(g.computeCapability) === 'fa3') ? 'fa3' : 'flashinfer';
}

/** Oldest architecture LLM engines (vLLM, SGLang) run on: Volta. */
export const MIN_LLM_COMPUTE_CAPABILITY: ComputeCapability = { major: 7, minor: 0 };

export interface GpuRefusal {
  reason: 'NoGpu' | 'UnsupportedGpu';
  message: string;
  hint: string;
}

/** Whether the algorithm can run on these GPUs; undefined when it can. */
export function gpuRequirement(algorithm: AlgorithmName, query: GpuQuery, node?: string): GpuRefusal | undefined {
  if (!needsGpu(algorithm)) return undefined;
  const where = node ? ` on node ${node}` : '';
  if (query.gpus.length === 0) {
    return {
      reason: 'NoGpu',
      message: `${algorithm} fine-tunes an LLM and needs a GPU, but this worker${where} sees none${query.error ? ` (${query.error})` : ''}.`,
      hint: 'Use a resource class with at least one GPU per worker, and check that the NVIDIA driver and device plugin work on the node.',
    };
  }
  const min = smVersion(MIN_LLM_COMPUTE_CAPABILITY);
  const usable = query.gpus.filter((g) => !g.computeCapability || smVersion(g.computeCapability) >= min);
  if (usable.length === 0) {
    const list = query.gpus.map((g) => `${g.name} (SM ${formatCapability(g.computeCapability)})`).join(', ');
    return {
      reason: 'UnsupportedGpu',
      message: `${algorithm} needs a GPU of compute capability ${formatCapability(MIN_LLM_COMPUTE_CAPABILITY)} or newer; this worker${where} has ${list}.`,
      hint: 'Pick a resource class whose GPU product is Volta or newer (V100, T4, A10, L4, A100, H100).',
    };
  }
  return undefined;
}

interface SystemInformation {
  cpu(): Promise<{ manufacturer: string; brand: string; cores: number; physicalCores: number }>;
  mem(): Promise<{ total: number }>;
  osInfo(): Promise<{ platform: string; distro: string; release: string; kernel: string; arch: string }>;
}

/** systeminformation when it is installed; undefined otherwise, so the probe still works without it. */
export async function loadSystemInformation(): Promise<SystemInformation | undefined> {
  const name = 'systeminformation';
  try {
    const mod = (await import(name)) as SystemInformation & { default?: SystemInformation };
    return typeof mod.cpu === 'function' ? mod : mod.default;
  } catch {
    return undefined;
  }
}

/** Probes CPU, memory, OS and GPUs; never throws for missing tools. */
export async function probeHost(opts: { run?: RunCommand; timeoutMs?: number; si?: SystemInformation | null } = {}): Promise<HostProbe> {
  const gpuQuery = queryGpus(opts);
  const si = opts.si === null ? undefined : (opts.si ?? (await loadSystemInformation()));
  const available = availableParallelism();
  if (si) {
    const [cpu, mem, os] = await Promise.all([si.cpu(), si.mem(), si.osInfo()]);
    return {
      cpu: { brand: `${cpu.manufacturer} ${cpu.brand}`.trim(), cores: cpu.cores, physicalCores: cpu.physicalCores, available },
      memory: { totalBytes: mem.total },
      os: { platform: os.platform, distro: os.distro, release: os.release, kernel: os.kernel, arch: os.arch },
      gpu: await gpuQuery,
      source: 'systeminformation',
    };
  }
  const list = cpus();
  return {
    cpu: { brand: list[0]?.model.trim() ?? 'unknown', cores: list.length, available },
    memory: { totalBytes: totalmem() },
    os: { platform: platform(), release: release(), arch: arch() },
    gpu: await gpuQuery,
    source: 'node:os',
  };
}
