// Images become local commands. There is no container runtime: a table says which host command stands in for an
// image, e.g. { match: /arena-runtime/, command: ['node', '--import', 'tsx', '<repo>/runtime/cli.ts'] }.

export interface ImageMapping {
  /**
   * Which images this entry covers. A RegExp is tested against the whole reference ("ghcr.io/x/runtime:1.2");
   * a string matches the reference exactly, or its repository with any tag or digest ("node" matches "node:24").
   */
  match: RegExp | string;
  /**
   * Replaces the container's command[0] (the image's entrypoint name, e.g. `arena-runtime`); the rest of the
   * command and the args follow it. Omitted: the container's own command runs as written on this host, for
   * images that are only a shell or an interpreter (`busybox`, `node`).
   */
  command?: string[];
  /** Environment the image would bring (its ENV lines); the container's own env overrides it. */
  env?: Record<string, string>;
  /** The image's WORKDIR; used when the container sets no workingDir. Default '/'. */
  workingDir?: string;
}

export interface ContainerCommand {
  image?: string;
  command?: string[];
  args?: string[];
}

export type Resolved =
  | { ok: true; argv: string[]; mapping: ImageMapping }
  | { ok: false; reason: 'ErrImageNeverPull' | 'CreateContainerConfigError'; message: string };

export function matches(mapping: ImageMapping, image: string): boolean {
  if (typeof mapping.match !== 'string') {
    mapping.match.lastIndex = 0; // a /g or /y pattern keeps state between test() calls
    return mapping.match.test(image);
  }
  const m = mapping.match;
  return image === m || image.startsWith(`${m}:`) || image.startsWith(`${m}@`);
}

/** The argv for a container, before $(VAR) expansion; or why there is none. First matching entry wins. */
export function resolveCommand(container: ContainerCommand, table: readonly ImageMapping[]): Resolved {
  const image = container.image ?? '';
  const mapping = table.find((m) => matches(m, image));
  if (!mapping) {
    return {
      ok: false,
      reason: 'ErrImageNeverPull',
      message: `image ${JSON.stringify(image)} is not mapped to a local command; add an entry matching it to the local node's imageMap`,
    };
  }
  const command = container.command ?? [];
  const args = container.args ?? [];
  let argv: string[];
  if (mapping.command) argv = [...mapping.command, ...command.slice(1), ...args];
  else if (command.length > 0) argv = [...command, ...args];
  else {
    return {
      ok: false,
      reason: 'CreateContainerConfigError',
      message: `image ${JSON.stringify(image)} is mapped without a command and the container sets none`,
    };
  }
  if (argv.length === 0 || !argv[0]) {
    return { ok: false, reason: 'CreateContainerConfigError', message: `image ${JSON.stringify(image)} maps to an empty command` };
  }
  return { ok: true, argv, mapping };
}
