// kubectl-arena: argument parsing, help and exit codes around the commands in commands.ts.
//   exit 0  done (including "nothing to do", which is explained)
//   exit 1  refused or failed, with the reason on stderr
//   exit 2  wrong usage
import { parseArgs } from 'node:util';
import { ArenaClient } from './client.ts';
import { commands, type Command, type CommandContext, type Io } from './commands.ts';
import { PluginError, UsageError, parseOutputFormat } from './format.ts';
import { closest } from './suggest.ts';

const globalOptions = {
  namespace: { type: 'string', short: 'n', description: 'namespace of the experiment or agent (default: the context\'s, else default)' },
  kubeconfig: { type: 'string', description: 'kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)' },
  context: { type: 'string', description: 'kubeconfig context to use' },
  output: { type: 'string', short: 'o', description: 'json or yaml instead of text' },
  help: { type: 'boolean', short: 'h', description: 'help for the command' },
} as const;

function optionLines(options: Record<string, { type: string; short?: string; description: string }>): string[] {
  return Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ' VALUE' : ''}`;
    return `  ${flag.padEnd(28)} ${o.description}`;
  });
}

export function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'kubectl arena: Arena experiments and agents from the command line.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width + 2)} ${c.summary}`),
    '',
    'Global flags:',
    ...optionLines(globalOptions),
    '',
    'kubectl arena COMMAND --help shows a command\'s flags. kubectl get arena lists every Arena object.',
    '',
  ].join('\n');
}

export function commandHelp(c: Command): string {
  return [`${c.summary}`, '', `Usage: ${c.usage}`, '', c.details, '', 'Flags:', ...optionLines(c.options), ...optionLines(globalOptions), ''].join('\n');
}

export interface RunOptions {
  io?: Io;
  /** The client to use instead of one built from the flags (tests). */
  client?: (flags: { kubeconfig?: string; context?: string; namespace?: string }) => ArenaClient;
  now?: () => Date;
  signal?: AbortSignal;
}

const stdio: Io = { out: (t) => void process.stdout.write(t), err: (t) => void process.stderr.write(t) };

export async function runPlugin(argv: string[], opts: RunOptions = {}): Promise<number> {
  const io = opts.io ?? stdio;
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(mainHelp());
    return name === undefined ? 2 : 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    const near = closest(name, commands.map((c) => c.name));
    io.err(`kubectl arena: unknown command ${JSON.stringify(name)}${near.length ? `; did you mean ${near.join(' or ')}?` : ''}\nkubectl arena --help lists the commands.\n`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(
        Object.entries({ ...globalOptions, ...command.options }).map(([k, o]) => [k, { type: o.type, ...('short' in o && o.short ? { short: o.short } : {}) }]),
      ),
    });
    if (values.help) {
      io.out(commandHelp(command));
      return 0;
    }
    const [least, most] = typeof command.args === 'number' ? [command.args, command.args] : command.args;
    if (positionals.length < least || positionals.length > most) {
      throw new UsageError(
        most === 0
          ? `${command.name} takes no arguments`
          : `${command.name} takes ${least === most ? (most === 1 ? 'one name' : `${most} arguments`) : `${least} to ${most} arguments`}: ${command.usage}`,
      );
    }
    const flags = {
      kubeconfig: values.kubeconfig as string | undefined,
      context: values.context as string | undefined,
      namespace: values.namespace as string | undefined,
    };
    let client: ArenaClient | undefined;
    const ctx: CommandContext = {
      client: () => (client ??= opts.client ? opts.client(flags) : ArenaClient.connect(flags)),
      io,
      output: parseOutputFormat(values.output as string | undefined),
      now: opts.now ?? (() => new Date()),
      signal: opts.signal,
    };
    return await command.run(ctx, positionals, values as Record<string, string | boolean | undefined>);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`kubectl arena ${command.name}: ${(err as Error).message}\nUsage: ${command.usage} (--help for more)\n`);
      return 2;
    }
    if (err instanceof PluginError) {
      io.err(`Error: ${err.message}\n`);
      return 1;
    }
    io.err(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
