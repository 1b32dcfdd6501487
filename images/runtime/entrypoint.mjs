// arena-runtime, the runtime image's entrypoint: registers the TypeScript loader (the runtime runs from source),
// then hands this process's arguments to runtime/cli.ts. Paths are relative to this file, so the same layout works
// in the image (/opt/arena) and in a checkout's copy of it.
import { register } from 'tsx/esm/api';

register();
try {
  const { main } = await import(new URL('./runtime/cli.ts', import.meta.url).href);
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`arena-runtime: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
}
