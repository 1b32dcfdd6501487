// The kubectl-arena program (bin/kubectl-arena runs it with the project's Node and tsx).
import { runPlugin } from './cli.ts';

// `kubectl arena manifest schema | head` closes the pipe early: that is the reader's choice, not a failure.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const abort = new AbortController();
process.once('SIGINT', () => abort.abort());
runPlugin(process.argv.slice(2), { signal: abort.signal }).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
