// `kubectl arena manifest validate FILE [--json]` and `kubectl arena manifest schema`: the Arena platform's own
// verdict and JSON Schema, offline. The file is read as the platform reads one (PyYAML's safe loader, so YAML 1.1:
// `yes` is true), which makes the verdict the one `arena manifest validate FILE` gives.
import { readFile } from 'node:fs/promises';
import { platformValidator, type PlatformValidator } from '../api/platform/verdict.ts';
import { UsageError } from './format.ts';
import type { Command, CommandContext } from './commands.ts';

export const EXIT = { valid: 0, invalid: 1, unreadable: 2 } as const;

async function readSource(path: string, stdin: () => Promise<string>): Promise<string> {
  return path === '-' ? await stdin() : await readFile(path, 'utf8');
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export interface ManifestCommandDeps {
  validator?: () => PlatformValidator;
  stdin?: () => Promise<string>;
}

export function manifestCommand(deps: ManifestCommandDeps = {}): Command {
  const validator = deps.validator ?? platformValidator;
  return {
    name: 'manifest',
    summary: 'check a training manifest with the Arena platform\'s own validator, or print its JSON Schema (offline)',
    usage: 'kubectl arena manifest validate FILE|- [--json] | kubectl arena manifest schema',
    details: `validate reads a manifest file (YAML or JSON; - reads stdin) and gives the Arena platform's verdict: the
same one the operator, its webhook and the workers reach, and the hosted platform's own \`arena manifest validate\`.
Exit 0 valid, 1 invalid (every error names its field), 2 when the file cannot be read.
  --json prints {"valid": true|false, "errors": [{"field": "training.pop_size", "message": "..."}]}.
schema prints the platform's training manifest JSON Schema: every section, algorithm and hyperparameter.
It needs the Python environment with agilerl-arena (make setup, or ARENA_PYTHON).`,
    options: { json: { type: 'boolean', description: 'validate: the verdict as one JSON document' } },
    args: [1, 2],
    async run(ctx, args, values) {
      const [verb, file] = args;
      if (verb === 'schema') {
        if (file !== undefined) throw new UsageError('manifest schema takes no file');
        ctx.io.out(`${JSON.stringify(await validator().schema(), null, 2)}\n`);
        return 0;
      }
      if (verb !== 'validate') throw new UsageError(`manifest takes validate or schema, not ${JSON.stringify(verb)}`);
      if (file === undefined) throw new UsageError('manifest validate takes a FILE (or - for stdin)');
      return validate(ctx, validator(), file, values.json === true, deps.stdin ?? readStdin);
    },
  };
}

async function validate(ctx: CommandContext, validator: PlatformValidator, file: string, json: boolean, stdin: () => Promise<string>): Promise<number> {
  let text: string;
  try {
    text = await readSource(file, stdin);
  } catch (err) {
    ctx.io.err(`could not read ${file}: ${(err as Error).message}\n`);
    return EXIT.unreadable;
  }
  const verdict = await validator.verdictYaml(text);
  if ('unreadable' in verdict) {
    ctx.io.err(`could not read ${file}: ${verdict.unreadable}\n`);
    return EXIT.unreadable;
  }
  const errors = verdict.errors.map((e) => ({ field: e.field, message: e.message }));
  if (json) {
    ctx.io.out(`${JSON.stringify({ valid: verdict.valid, errors })}\n`);
  } else if (verdict.valid) {
    const name = (verdict.payload.algorithm as { name?: unknown } | undefined)?.name;
    ctx.io.out(`${file}: valid (${String(name)})\n`);
  } else {
    ctx.io.out(errors.map((e) => `${file}: ${e.field || '<manifest>'}: ${e.message}\n`).join(''));
  }
  return verdict.valid ? EXIT.valid : EXIT.invalid;
}
