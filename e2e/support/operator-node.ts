// A local node on which the chart's pods truly run: every container of the operator image (the operator itself,
// the CRD upgrade hook, the helm test) runs on this machine as this checkout, as a real install runs the image.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { repoRoot } from '../cluster/control-plane.ts';
import { LocalNode } from '../node/local-node.ts';

/** `dir` holds the node's data and the image's entrypoint; not under /tmp, which each pod mounts its own over. */
export async function startOperatorImageNode(kc: KubeConfig, dir: string, name = 'system-0'): Promise<LocalNode> {
  // The image's entrypoint, played by this checkout's operator. Every pod of the local node shares this machine's
  // network, so the HTTP server binds the pod IP and the webhook (which binds every address) takes any free port:
  // the API server could not reach it here anyway (loopback pod IPs get no endpoints), and the webhook's
  // failurePolicy is Ignore.
  const shimDir = join(dir, 'operator-image-bin');
  await mkdir(shimDir, { recursive: true });
  await writeFile(
    join(shimDir, 'arena-operator'),
    `#!/bin/sh\ncd '${repoRoot}' && exec '${process.execPath}' --import tsx operator/main.ts "$@" --host "$POD_IP" --webhook-port 0\n`,
  );
  await chmod(join(shimDir, 'arena-operator'), 0o755);
  return LocalNode.start({
    kc,
    name,
    dataDir: join(dir, `node-${name}`),
    capacity: { cpu: '8', memory: '16Gi', pods: 30 },
    // Containers of the operator image run their own command: arena-operator (the shim) or node (hook and test).
    imageMap: [{ match: /\/agilerl\/arena-operator[:@]/ }],
    path: `${shimDir}:${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    restartBackoff: { initialMs: 500, maxMs: 2000 },
  });
}
