// `make demo`: the product on this machine. A real control plane, simulated GPU nodes (the fleet the scheduler
// sees), a local node that runs pods as real processes, and the operator. The demo shows gang admission on the GPU
// fleet with an actionable Pending reason; then an Arena manifest trains a DQN agent on CartPole for real with
// AgileRL, its best checkpoint becomes an agent (a Deployment), and the platform's own Python client plays
// Gymnasium CartPole episodes through the agent's Arena endpoint, next to a random policy.
//   options: --keep (leave everything running afterwards), --steps N (training steps, default: the manifest's)
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { LocalCluster, repoRoot } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { createGpuNodes, gpuProducts, gpuTaint } from './cluster/gpu-nodes.ts';
import { waitFor } from './cluster/wait.ts';
import { freePorts } from './cluster/net.ts';
import { LocalNode } from './node/local-node.ts';
import { Agents, Arena, deployment, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { demoManifest, demoRun, sftAlpaca } from './support/manifests.ts';
import { playCartpole } from './support/play-cartpole.ts';
import { startOperator } from '../operator/operator.ts';
import { createLogger } from '../operator/observability/log.ts';
import type { Experiment, ExperimentStatus } from '../operator/api/v1alpha1/experiment.ts';

const { values } = parseArgs({ options: { keep: { type: 'boolean', default: false }, steps: { type: 'string' } } });
const tty = process.stdout.isTTY;
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);
const STEPS = 8;
const step = (n: number, text: string) => console.log(`\n${bold(`[${n}/${STEPS}]`)} ${text}`);
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

const name = 'demo';
const ns = 'ml-team';
step(1, 'Starting a Kubernetes control plane on 127.0.0.1 (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)');
const cluster = await LocalCluster.start({ name });
const logger = createLogger({ silent: true });
let localNode: LocalNode | undefined;
let stopOperator: (() => Promise<void>) | undefined;
try {
  await installCrds(cluster);
  const kc = cluster.kubeConfig();
  const arena = new Arena(kc);
  console.log(`  API server ${cluster.server}, version ${cluster.kubectl(['version', '-o', 'json']).match(/"gitVersion": "(v[^"]+)"/g)?.[1]?.split('"')[3] ?? '?'}; arena CRDs installed`);

  step(2, 'Adding nodes: 4 simulated A100 nodes (8 GPUs each) and this machine as a real worker node');
  await createGpuNodes(kc, { prefix: 'gpu-a100', count: 4, gpus: 8, gpu: gpuProducts.A100, taints: [gpuTaint], labels: { 'arena.agilerl.com/pool': 'a100' } });
  const dataDir = join(cluster.dir, 'local-node');
  const checkpoints = join(cluster.dir, 'checkpoints');
  mkdirSync(checkpoints, { recursive: true });
  localNode = await LocalNode.start({
    kc,
    name: 'local-0',
    dataDir,
    capacity: { cpu: String(os.cpus().length), memory: `${Math.floor(os.totalmem() / 2 ** 30)}Gi` },
    labels: { 'arena.agilerl.com/pool': 'local' },
    imageMap: [{ match: /arena-runtime/, command: [process.execPath, '--import', 'tsx', join(repoRoot, 'runtime', 'cli.ts')], workingDir: repoRoot }],
    logger,
  });
  await waitFor(async () => (await arena.core.readNode({ name: 'local-0' })).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false, {
    timeoutMs: 60_000,
    what: 'the local node to be Ready',
  });
  console.log(cluster.kubectl(['get', 'nodes', '-L', 'nvidia.com/gpu.product,arena.agilerl.com/pool']).trimEnd().replace(/^/gm, '  '));

  step(3, 'Starting the operator and declaring the training cluster and two resource classes');
  // The operator runs outside the cluster here, so workers reach its runtime API on loopback.
  const [port] = await freePorts(1);
  const op = await startOperator({
    kc,
    logger,
    http: { host: '127.0.0.1', port },
    reportUrl: `http://127.0.0.1:${port}`,
    leaderElect: false,
    progressIntervalMs: 1000,
    // The local node has no pod network: each inference server listens on its own loopback pod IP, the only
    // addresses the operator's health checks may dial here.
    deployments: { bindHost: '$(POD_IP)', health: { intervalMs: 1000, timeoutMs: 2000, failureThreshold: 3, allowedCidrs: ['127.0.0.0/8'] } },
  });
  stopOperator = () => op.stop();
  await arena.apply(
    trainingCluster('on-prem', {
      description: 'Local demo cluster',
      setupBundle: { version: '1.0.0', images: { runtime: 'registry.local/arena-runtime:1.0.0' }, runtimeCommand: ['arena-runtime', 'train'] },
      checkpointStorage: { mountPath: '/checkpoints', hostPath: { path: checkpoints } },
    }),
  );
  await arena.apply(resourceClass('local-cpu', 'on-prem', { description: 'This machine, CPU only', nodes: 1, worker: { cpu: '1', memory: '2Gi', gpus: 0 }, nodeSelector: { 'arena.agilerl.com/pool': 'local' }, creditsPerNodeHour: 1 }));
  await arena.apply(resourceClass('a100-x2', 'on-prem', { description: 'Two A100 workers, 8 GPUs each', nodes: 2, worker: { cpu: '16', memory: '128Gi', gpus: 8, gpuProduct: gpuProducts.A100.product }, nodeSelector: { 'arena.agilerl.com/pool': 'a100' }, creditsPerNodeHour: 15.74 }));
  await arena.namespace(ns);
  console.log(`  operator ready at ${op.http.url} (health, metrics, runtime report API)`);

  step(4, 'Gang admission on the simulated A100 fleet: two experiments need 2 whole nodes each; a third must wait');
  for (const n of ['llm-sft-a', 'llm-sft-b', 'llm-sft-c']) {
    await arena.apply(
      experiment(ns, n, 'a100-x2', {
        manifest: sftAlpaca(),
      }),
    );
  }
  await arena.waitPhase(ns, 'llm-sft-a', 'Running');
  await arena.waitPhase(ns, 'llm-sft-b', 'Running');
  const waiting = await arena.waitExperiment(ns, 'llm-sft-c', (s) => s.phase === 'Pending' && s.reason !== 'Queued', 'a reason');
  console.log(cluster.kubectl(['get', 'experiments', '-n', ns]).trimEnd().replace(/^/gm, '  '));
  console.log(`  ${bold('llm-sft-c')} is ${waiting.status?.phase}: ${waiting.status?.reason} — ${waiting.status?.message}`);
  // Nothing trains inside simulated pods: remove these three again (their pods go with them).
  for (const n of ['llm-sft-a', 'llm-sft-b', 'llm-sft-c']) await arena.deleteExperiment(ns, n);

  step(5, 'Training for real: an Arena manifest (DQN on CartPole-v1, a population of 2 with evolutionary HPO), trained by AgileRL on this machine');
  const manifest = values.steps ? demoRun(Number(values.steps)) : demoManifest();
  await arena.apply(experiment(ns, 'cartpole-dqn', 'local-cpu', { manifest, stopGracePeriodSeconds: 30, description: 'DQN on CartPole, population of 2' }));
  let last = '';
  const render = (s: ExperimentStatus) => {
    const p = s.progress;
    const pct = p?.percent ?? 0;
    const bar = '█'.repeat(Math.round(pct / 4)).padEnd(25, '·');
    const state = `${(s.phase ?? '').padEnd(9)} ${bar} ${String(pct).padStart(3)}%  step ${p?.step ?? 0}/${p?.maxSteps ?? '?'}  eval ${p?.evaluationScore?.toFixed(1) ?? '—'}  checkpoints ${s.checkpoints?.length ?? 0}`;
    // A terminal gets one line redrawn in place; a log gets a line per change.
    if (state !== last) {
      if (tty && last) process.stdout.write('\x1b[1A\x1b[2K');
      console.log(`  ${elapsed().padStart(4)}  ${state}`);
      last = state;
    }
  };
  const done: Experiment = await arena.waitExperiment(
    ns,
    'cartpole-dqn',
    (s) => {
      render(s);
      return s.phase === 'Succeeded' || s.phase === 'Failed';
    },
    'training to finish',
    15 * 60_000,
  );
  if (done.status?.phase !== 'Succeeded') {
    throw new Error(`training ended ${done.status?.phase}: ${done.status?.reason} ${done.status?.message} ${JSON.stringify(done.status?.lastFailure ?? {})}`);
  }

  step(6, 'Checkpoints written by the run (AgileRL\'s own population files, one folder per evolution step)');
  const rows = [['STEP', 'TRAINING SCORE', 'EVALUATION SCORE', 'SIZE', 'LOCATION']];
  for (const c of done.status?.checkpoints ?? []) {
    rows.push([String(c.step), c.trainingScore?.toFixed(1) ?? 'N/A', c.evaluationScore?.toFixed(1) ?? 'N/A', `${(c.sizeBytes / 1024).toFixed(0)} KiB`, c.location]);
  }
  console.log(table(rows).replace(/^/gm, '  '));
  const best = done.status?.bestCheckpoint;
  const first = done.status?.checkpoints?.[0];
  console.log(`\n  best checkpoint: step ${best?.step}, evaluation score ${best?.evaluationScore?.toFixed(1)} (first: ${first?.evaluationScore?.toFixed(1)})`);
  console.log(`  usage: ${done.status?.usage?.nodeSeconds ?? 0} node-seconds, ${done.status?.usage?.credits ?? 0} credits`);

  step(7, 'The best checkpoint becomes an agent: a Deployment serving it through the Arena inference contract');
  const agents = new Agents(arena);
  await agents.create(deployment(ns, 'cartpole-agent', 'cartpole-dqn', { connected: true, source: { experiment: 'cartpole-dqn', checkpoint: 'best' } }));
  const agent = await agents.waitPhase(ns, 'cartpole-agent', 'Deployed', 180_000);
  const pod = (await agents.pods(ns, agent)).find((p) => p.status?.podIP && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  if (!pod) throw new Error('the agent is Deployed but no inference pod is ready');
  const url = `http://${pod.status!.podIP}:8000`;
  const key = await agents.apiKey(ns, agent);
  console.log(cluster.kubectl(['get', 'deployments.arena.agilerl.com', '-n', ns]).trimEnd().replace(/^/gm, '  '));
  console.log(`  serving step ${agent.status?.checkpoint?.step} (evaluation ${agent.status?.checkpoint?.evaluationScore?.toFixed(1)}) at ${url}, in-cluster ${agent.status?.endpoint?.serviceURL}`);

  step(8, 'Playing CartPole-v1 (Gymnasium) through the agent with the platform\'s Python client, next to a random policy');
  const episodes = 10;
  const [trained, random] = await Promise.all([playCartpole({ url, key, episodes, seed: 1 }), playCartpole({ episodes, seed: 1, random: true })]);
  console.log(table([
    ['POLICY', 'EPISODES', 'MEAN LENGTH', 'LENGTHS'],
    ['agent (get_action over HTTP)', String(trained.episodes), trained.mean_length.toFixed(1), trained.lengths.join(' ')],
    ['random', String(random.episodes), random.mean_length.toFixed(1), random.lengths.join(' ')],
  ]).replace(/^/gm, '  '));
  console.log(`  total demo time ${elapsed()}`);

  console.log(`\n${bold('Call the agent yourself')} ${dim('(with make demo ARGS=--keep it stays up)')}`);
  console.log(dim(`  export KUBECONFIG=${cluster.kubeconfigPath} PATH=${cluster.binDir}:$PATH
  export ARENA_API_KEY=$(kubectl get secret -n ${ns} ${agent.status?.apiKeySecretName} -o jsonpath='{.data.key}' | base64 -d)
  ${repoRoot}/.venv/bin/python -c 'import numpy as np; from agilerl.arena import Agent
  agent = Agent("${url}")   # the key comes from ARENA_API_KEY
  print(agent.get_action(np.array([0.01, -0.02, 0.03, 0.01], dtype=np.float32)))'`));
  console.log(`\n${bold('What to try next')}`);
  console.log(dim(`  kubectl get arena -A                         # every arena object
  kubectl describe experiment cartpole-dqn -n ${ns}
  kubectl patch exp cartpole-dqn -n ${ns} --type merge -p '{"spec":{"run":2,"action":"Train"}}'   # train again
  kubectl explain experiment.spec.manifest     # the API documents itself
  make cluster-down CLUSTER=${name} when done.`));
  console.log(`\nagent URL: ${url}`);
} finally {
  if (!values.keep) {
    await stopOperator?.();
    await localNode?.stop();
    await cluster.stop();
  } else {
    console.log(`\nleft running (--keep); Ctrl-C stops the operator and the local node, make cluster-down CLUSTER=${name} the cluster`);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    await stopOperator?.();
    await localNode?.stop();
  }
}
