// `make cluster-up` / `make cluster-down`: the local control plane from the shell.
import { parseArgs } from 'node:util';
import { join, relative } from 'node:path';
import { existsSync } from 'node:fs';
import { LocalCluster, repoRoot } from './control-plane.ts';
import { createGpuNodes, gpuProducts, gpuTaint } from './gpu-nodes.ts';
import { installCrds } from './crds.ts';

const usage = `usage: cli.ts up|down|status [--name NAME] [--gpu-nodes N] [--gpus-per-node N] [--product A100|H100|L4|T4] [--taint]`;

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      name: { type: 'string', default: 'dev' },
      'gpu-nodes': { type: 'string', default: '4' },
      'gpus-per-node': { type: 'string', default: '8' },
      product: { type: 'string', default: 'A100' },
      taint: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const cmd = positionals[0];
  if (values.help || !cmd) {
    console.log(usage);
    return;
  }
  const dir = join(repoRoot, '.cluster', values.name);
  switch (cmd) {
    case 'up': {
      const product = gpuProducts[values.product as keyof typeof gpuProducts];
      if (!product) throw new Error(`--product must be one of ${Object.keys(gpuProducts).join(', ')}`);
      const count = Number(values['gpu-nodes']);
      const gpus = Number(values['gpus-per-node']);
      if (!Number.isInteger(count) || count < 0) throw new Error('--gpu-nodes must be a whole number ≥ 0');
      if (!Number.isInteger(gpus) || gpus < 0) throw new Error('--gpus-per-node must be a whole number ≥ 0');
      const started = Date.now();
      const cluster = await LocalCluster.start({ name: values.name, dir, detached: true });
      const kc = cluster.kubeConfig();
      await installCrds(cluster);
      if (count > 0) {
        await createGpuNodes(kc, {
          prefix: `gpu-${values.product.toLowerCase()}`,
          count,
          gpus,
          gpu: product,
          taints: values.taint ? [gpuTaint] : [],
        });
      }
      const kcPath = relative(process.cwd(), cluster.kubeconfigPath);
      console.log(`cluster ${cluster.name} is up in ${((Date.now() - started) / 1000).toFixed(1)}s at ${cluster.server}`);
      console.log(`  ${count} simulated GPU node(s) with ${gpus} × ${product.product}; the arena CRDs are installed`);
      console.log(`\npoint kubectl at it:\n  export KUBECONFIG=${cluster.kubeconfigPath}\n  export PATH=${cluster.binDir}:$PATH`);
      console.log(`  kubectl get nodes -L nvidia.com/gpu.product\n  kubectl get arena`);
      console.log(`\nlogs: ${relative(process.cwd(), join(dir, 'logs'))}/   kubeconfig: ${kcPath}\nstop it: make cluster-down`);
      return;
    }
    case 'down': {
      if (!existsSync(join(dir, 'state.json'))) {
        console.log(`no cluster named ${values.name} is running`);
        return;
      }
      await LocalCluster.attach(dir).stop();
      console.log(`cluster ${values.name} stopped and its data removed`);
      return;
    }
    case 'status': {
      if (!existsSync(join(dir, 'state.json'))) {
        console.log(`no cluster named ${values.name}`);
        process.exitCode = 1;
        return;
      }
      const cluster = LocalCluster.attach(dir);
      console.log(`${values.name}: ${cluster.running() ? 'running' : 'stopped'}  KUBECONFIG=${cluster.kubeconfigPath}`);
      return;
    }
    default:
      console.error(usage);
      process.exitCode = 2;
  }
}

main().catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
