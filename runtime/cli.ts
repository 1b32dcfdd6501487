// arena-runtime: the program in every worker and inference pod.
//   arena-runtime train   supervise training in a worker pod (runtime/supervisor.ts)
//   arena-runtime serve   serve a checkpoint over the Arena inference API
//   arena-runtime probe   print what the worker runs on (CPU, memory, OS, GPUs) as JSON
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { createLogger } from '../operator/observability/log.ts';
import { readWorkerEnv } from './env.ts';
import { attentionBackendFor, probeHost } from './gpu/probe.ts';
import { EXIT_CODES, Supervisor } from './supervisor.ts';
import { runServe } from './serve/cli.ts';

const USAGE = `usage: arena-runtime <command>

commands:
  train   run the trainer for this worker pod and report to the operator (reads ARENA_* from the environment)
  serve   serve a checkpoint over the Arena inference API (runtime/serve/INFERENCE-API.md)
  probe   print the worker's CPU, memory, OS and GPUs as JSON
`;

export async function train(): Promise<number> {
  const logger = createLogger({ component: 'arena-runtime' });
  const env = readWorkerEnv();
  if (!env.ok) {
    logger.error('The worker environment is incomplete', { errors: env.errors });
    return EXIT_CODES.refused;
  }
  const supervisor = new Supervisor({ env: env.env, logger });
  // PID 1 in a container gets no default signal handling: without these, SIGTERM would be ignored.
  process.on('SIGTERM', () => supervisor.stop());
  process.on('SIGINT', () => supervisor.stop());
  const result = await supervisor.run();
  logger.info('arena-runtime train finished', { outcome: result.outcome, exitCode: result.exitCode, checkpoints: result.checkpoints, reportsPending: result.reportsPending });
  return result.exitCode;
}

export async function probe(): Promise<number> {
  const host = await probeHost();
  process.stdout.write(`${JSON.stringify({ ...host, attentionBackend: attentionBackendFor(host.gpu.gpus) ?? null }, null, 2)}\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  switch (argv[0]) {
    case 'train':
      return train();
    case 'probe':
      return probe();
    case 'serve':
      return runServe(argv.slice(1));
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return argv[0] === undefined ? EXIT_CODES.refused : 0;
    default:
      process.stderr.write(`arena-runtime: unknown command ${JSON.stringify(argv[0])}\n\n${USAGE}`);
      return EXIT_CODES.refused;
  }
}

// Run when started as a program (also through a symlink on PATH), not when imported.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`arena-runtime: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
