// `arena-runtime serve`: the inference pod's process. Exit status 2 for settings to correct, 1 for a checkpoint
// that cannot be loaded or a port that cannot be bound, 0 after SIGTERM/SIGINT once in-flight requests finished.
// The reason of a failed start also goes to the container's termination message, where the operator reads it.
import { existsSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { createLogger } from '../../operator/observability/log.ts';
import { SERVE_USAGE, parseServeArgs } from './config.ts';
import { startInferenceServer, type RunningInferenceServer } from './server.ts';
import { setupServeReady } from './setup.ts';

export const SERVE_EXIT_CODES = { ok: 0, failed: 1, refused: 2 } as const;

const TERMINATION_LOG = '/dev/termination-log';

function writeTerminationMessage(reason: string, env: NodeJS.ProcessEnv): void {
  const path = env.ARENA_TERMINATION_LOG ?? (existsSync(TERMINATION_LOG) ? TERMINATION_LOG : undefined);
  if (!path) return;
  try {
    // Kubernetes keeps at most 4096 bytes of it.
    writeFileSync(path, reason.slice(0, 4000));
  } catch {
    // Not in a container, or read-only: the log line has the reason too.
  }
}

export async function runServe(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parseServeArgs(argv, env);
  if (!parsed.ok) {
    process.stderr.write(`arena-runtime serve: ${parsed.error}\n\n${SERVE_USAGE}`);
    return SERVE_EXIT_CODES.refused;
  }
  if (parsed.help) {
    process.stdout.write(SERVE_USAGE);
    return SERVE_EXIT_CODES.ok;
  }
  const config = parsed.config;
  const logger = createLogger({ component: 'arena-serve' });
  // An AgileRL checkpoint is loaded by its model process before the port opens: one that cannot be loaded ends the
  // pod with the reason instead of a server that never answers.
  const setup = await setupServeReady(config, logger);
  if (!setup.ok) {
    logger.error('Cannot serve', { reason: setup.reason });
    writeTerminationMessage(setup.reason, env);
    return setup.kind === 'refused' ? SERVE_EXIT_CODES.refused : SERVE_EXIT_CODES.failed;
  }

  let server: RunningInferenceServer;
  try {
    server = await startInferenceServer(setup.options);
  } catch (err) {
    const reason = `cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`;
    logger.error('Cannot serve', { reason });
    writeTerminationMessage(reason, env);
    return SERVE_EXIT_CODES.failed;
  }
  logger.info('Serving', { url: server.url, route: setup.options.route, agent: setup.options.agent, deploymentId: config.deploymentId, auth: config.noAuth ? 'disabled' : 'api-key-file' });

  // PID 1 in a container gets no default signal handling: without these, SIGTERM would be ignored.
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      logger.info('Stopping: finishing in-flight requests', { signal });
      void server.close().then(resolve);
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
  logger.info('Stopped');
  return SERVE_EXIT_CODES.ok;
}

// Runnable on its own too (tests, and images that call it directly).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runServe(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`arena-runtime serve: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
