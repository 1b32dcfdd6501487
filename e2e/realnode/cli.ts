// A real node for a cluster that is already running (`make cluster-up`, or a test's), from the shell:
//
//   tsx e2e/realnode/cli.ts --cluster .cluster/dev [--name real-0] [--label k=v ...]
//
// Prints one JSON line once the node is Ready ({"ready":true,"name",...}) and runs until SIGINT or SIGTERM,
// then stops the node. A test uses it to own a node from another process (and to kill that process).
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { LocalCluster } from '../cluster/control-plane.ts';
import { RealNode } from './real-node.ts';

const { values } = parseArgs({
  options: {
    cluster: { type: 'string' },
    name: { type: 'string', default: 'real-0' },
    label: { type: 'string', multiple: true, default: [] },
  },
});
if (!values.cluster) {
  console.error('usage: cli.ts --cluster <cluster folder> [--name NAME] [--label k=v ...]');
  process.exit(2);
}
const labels = Object.fromEntries(
  values.label.map((l) => {
    const i = l.indexOf('=');
    if (i <= 0) throw new Error(`--label ${l}: expected key=value`);
    return [l.slice(0, i), l.slice(i + 1)];
  }),
);
const node = await RealNode.start({ cluster: LocalCluster.attach(resolve(values.cluster)), name: values.name, labels });
await node.importBusybox();
console.log(JSON.stringify({ ready: true, name: node.name, startMs: node.startMs, dir: node.dir, netns: node.netns, ...node.addresses }));
const stop = () => {
  node.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
// The node's processes are not this one's handles: something must keep the event loop alive until a signal.
setInterval(() => undefined, 1 << 30);
