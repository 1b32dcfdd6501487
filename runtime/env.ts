// The worker pod's environment, as the operator sets it (operator/controllers/experiment/workers.ts), read once
// and checked, so a missing variable is one clear error at start rather than an undefined later.
import { reportUrlProblem } from './report-transport.ts';

export interface WorkerEnv {
  experiment: string;
  namespace: string;
  run: number;
  attempt: number;
  rank: number;
  /** Path of the manifest JSON. */
  manifestPath: string;
  checkpointDir: string;
  /** The operator's base URL; unset runs without reporting (a trainer run by hand). */
  reportUrl?: string;
  /** The CAs the operator's certificate must verify against (the operator's CA ConfigMap); https only. */
  reportCaFile?: string;
  /** The run token as given in the environment (a run by hand); the pod's is in runTokenFile. */
  runToken?: string;
  /** Where the pod's run token is mounted; read before every report, so that a re-issued token is picked up. */
  runTokenFile?: string;
  resumeFrom?: string;
  resumeStep?: number;
  /** Seconds between SIGTERM and the kubelet's SIGKILL that the runtime plans for. */
  stopGraceSeconds: number;
  /** Least time between two progress reports. */
  progressIntervalSeconds: number;
  /** How long a finished worker waits for the operator to acknowledge its last reports. */
  flushTimeoutSeconds: number;
  nodeName?: string;
  worldSize?: number;
  masterAddr?: string;
  masterPort?: number;
}

export const DEFAULT_STOP_GRACE_SECONDS = 25;

export type EnvResult = { ok: true; env: WorkerEnv } | { ok: false; errors: string[] };

export function readWorkerEnv(env: NodeJS.ProcessEnv = process.env): EnvResult {
  const errors: string[] = [];
  const text = (name: string, required: boolean): string | undefined => {
    const v = env[name]?.trim();
    if (!v && required) errors.push(`${name} is not set`);
    return v || undefined;
  };
  const int = (name: string, opts: { required?: boolean; min?: number; fallback?: number } = {}): number | undefined => {
    const raw = text(name, opts.required ?? false);
    if (raw === undefined) return opts.fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < (opts.min ?? 0)) {
      errors.push(`${name} must be an integer >= ${opts.min ?? 0}, got ${JSON.stringify(raw)}`);
      return opts.fallback;
    }
    return n;
  };
  const seconds = (name: string, fallback: number): number => {
    const raw = text(name, false);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) {
      errors.push(`${name} must be a positive number of seconds, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return n;
  };

  const reportUrl = text('ARENA_REPORT_URL', false);
  const runToken = text('ARENA_RUN_TOKEN', false);
  const runTokenFile = text('ARENA_RUN_TOKEN_FILE', false);
  if (reportUrl && !runToken && !runTokenFile) errors.push('neither ARENA_RUN_TOKEN_FILE nor ARENA_RUN_TOKEN is set (reports need the run token)');
  const reportCaFile = text('ARENA_REPORT_CA_FILE', false);
  const urlProblem = reportUrl ? reportUrlProblem(reportUrl, reportCaFile) : undefined;
  if (urlProblem) errors.push(urlProblem);
  const resumeFrom = text('ARENA_RESUME_FROM', false);
  const value: WorkerEnv = {
    experiment: text('ARENA_EXPERIMENT', true) ?? '',
    namespace: text('ARENA_NAMESPACE', true) ?? '',
    run: int('ARENA_RUN', { required: true, min: 1 }) ?? 1,
    attempt: int('ARENA_ATTEMPT', { required: true, min: 1 }) ?? 1,
    rank: int('ARENA_WORKER_RANK', { fallback: int('RANK', { fallback: 0 }) }) ?? 0,
    manifestPath: text('ARENA_MANIFEST', true) ?? '',
    checkpointDir: text('ARENA_CHECKPOINT_DIR', true) ?? '',
    reportUrl: reportUrl?.replace(/\/+$/, ''),
    reportCaFile,
    runToken,
    runTokenFile,
    resumeFrom,
    resumeStep: resumeFrom ? int('ARENA_RESUME_STEP') : undefined,
    stopGraceSeconds: seconds('ARENA_STOP_GRACE_SECONDS', DEFAULT_STOP_GRACE_SECONDS),
    progressIntervalSeconds: seconds('ARENA_PROGRESS_INTERVAL_SECONDS', 5),
    flushTimeoutSeconds: seconds('ARENA_FLUSH_TIMEOUT_SECONDS', 60),
    nodeName: text('NODE_NAME', false),
    worldSize: int('WORLD_SIZE', { min: 1 }),
    masterAddr: text('MASTER_ADDR', false),
    masterPort: int('MASTER_PORT', { min: 1 }),
  };
  return errors.length ? { ok: false, errors } : { ok: true, env: value };
}
