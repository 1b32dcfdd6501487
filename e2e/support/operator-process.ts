// The operator as a real child process (operator/main.ts), for tests that kill it, restart it, or run two replicas.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, type LocalCluster } from '../cluster/control-plane.ts';
import { freePorts, get } from '../cluster/net.ts';
import { waitFor } from '../cluster/wait.ts';

export interface OperatorProcess {
  /** The API (plain HTTP on loopback: --insecure-plain-http, the local-development mode). */
  url: string;
  /** /metrics, /healthz, /readyz. */
  metricsUrl: string;
  identity: string;
  child: ChildProcess;
  logFile: string;
  /** Lines of its JSON log. */
  log(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

export async function startOperatorProcess(
  cluster: LocalCluster,
  opts: { identity: string; leaseDurationMs?: number; extraEnv?: NodeJS.ProcessEnv; extraArgs?: string[] } = { identity: 'op' },
): Promise<OperatorProcess> {
  const [port, metricsPort] = await freePorts(2);
  const url = `http://127.0.0.1:${port}`;
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  const logFile = join(cluster.dir, 'logs', `operator-${opts.identity}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repoRoot, 'operator', 'main.ts'),
      `--port=${port}`,
      '--host=127.0.0.1',
      `--report-url=${url}`,
      `--metrics-port=${metricsPort}`,
      // An operator on loopback: the development mode, which the binary allows only with a loopback report URL.
      '--insecure-plain-http',
      '--lease-namespace=default',
      `--lease-duration-ms=${opts.leaseDurationMs ?? 3000}`,
      ...(opts.extraArgs ?? []),
    ],
    { cwd: repoRoot, env: { ...cluster.env(), POD_NAME: opts.identity, LOG_LEVEL: 'debug', ...opts.extraEnv }, stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  await waitFor(
    async () => {
      if (exited()) throw new Error(`operator ${opts.identity} exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
      return (await get(`${url}/readyz`)).status === 200;
    },
    { timeoutMs: 60_000, what: `operator ${opts.identity} to become ready` },
  );
  return {
    url,
    metricsUrl,
    identity: opts.identity,
    child,
    logFile,
    log: () => readFileSync(logFile, 'utf8'),
    kill: async (signal = 'SIGKILL') => {
      if (exited()) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await done;
    },
    metric: async (name, labels = {}) => {
      const text = (await get(`${metricsUrl}/metrics`)).body;
      let total = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith(name)) continue;
        const m = /^([a-zA-Z_:]+)(\{[^}]*\})?\s+(\S+)/.exec(line);
        if (!m || m[1] !== name) continue;
        const ok = Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`));
        if (ok) total += Number(m[3]);
      }
      return total;
    },
  };
}
