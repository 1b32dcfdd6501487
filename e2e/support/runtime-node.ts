// A local node that runs the Arena runtime image as this checkout's `arena-runtime`, as the training, agent and
// demo runs use it: started, and waited on until Ready.
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { repoRoot } from '../cluster/control-plane.ts';
import { waitFor } from '../cluster/wait.ts';
import { LocalNode, type LocalNodeOptions } from '../node/local-node.ts';
import type { ImageMapping } from '../node/image-map.ts';
import { createLogger } from '../../operator/observability/log.ts';
import { startOperator, type OperatorOptions, type RunningOperator } from '../../operator/operator.ts';
import { freePorts } from '../cluster/net.ts';

/** `arena-runtime …` run by this Node with the checkout's TypeScript loader. */
export const runtimeCommand = [process.execPath, '--import', import.meta.resolve('tsx'), join(repoRoot, 'runtime', 'cli.ts')];

/** The image mapping for a runtime image, with extra environment the image would bring. */
export function runtimeImage(match: string | RegExp, env?: Record<string, string>): ImageMapping {
  return { match, command: runtimeCommand, workingDir: repoRoot, ...(env ? { env } : {}) };
}

export async function startRuntimeNode(
  kc: KubeConfig,
  opts: Partial<LocalNodeOptions> & Pick<LocalNodeOptions, 'dataDir'>,
): Promise<LocalNode> {
  const name = opts.name ?? 'local-0';
  const node = await LocalNode.start({
    kc,
    name,
    capacity: { cpu: '8', memory: '16Gi' },
    imageMap: [runtimeImage('registry.local/arena-runtime')],
    logger: createLogger({ silent: true }),
    ...opts,
  });
  const core = kc.makeApiClient(CoreV1Api);
  await waitFor(async () => (await core.readNode({ name })).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false, {
    timeoutMs: 60_000,
    what: `the local node ${name} to be Ready`,
  });
  return node;
}

/**
 * The operator in this process, reachable by workers on the local node through loopback (a cluster install uses
 * its Service instead): a free port, the report URL to match, no leader election, quiet logs. The report API
 * speaks TLS as in a cluster: the operator makes its certificate for 127.0.0.1 and hands workers the CA, so every
 * training test also proves that workers verify the operator before they send a token.
 */
export async function startLocalOperator(kc: KubeConfig, opts: Partial<OperatorOptions> = {}): Promise<RunningOperator> {
  const [port] = await freePorts(1);
  return startOperator({
    kc,
    logger: createLogger({ silent: true }),
    http: { host: '127.0.0.1', port, tls: { ipAddresses: ['127.0.0.1'] } },
    reportUrl: `https://127.0.0.1:${port}`,
    leaderElect: false,
    ...opts,
  });
}
