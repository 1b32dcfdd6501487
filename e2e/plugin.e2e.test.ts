// kubectl arena against a real control plane and an in-process operator: every command, its tables and -o output,
// its refusals and explanations, the flags that pick cluster and namespace, and `kubectl arena` found by kubectl
// itself. Simulated GPU nodes run most experiments; one local node really runs a worker so `logs` has lines to read.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { parse } from 'yaml';
import { LocalCluster, repoRoot } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { createGpuNodes, finishPod, gpuProducts, gpuTaint } from './cluster/gpu-nodes.ts';
import { waitFor } from './cluster/wait.ts';
import { LocalNode } from './node/local-node.ts';
import { Arena, FakeRuntime, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { startOperator, type RunningOperator } from '../operator/operator.ts';
import { createLogger } from '../operator/observability/log.ts';
import type { Deployment } from '../operator/api/v1alpha1/deployment.ts';
import type { Experiment } from '../operator/api/v1alpha1/experiment.ts';
import { runPlugin } from '../operator/plugin/cli.ts';
import { commands } from '../operator/plugin/commands.ts';

const NS = 'ml';
const pluginBin = join(repoRoot, 'operator', 'plugin', 'bin');

interface Ran {
  code: number;
  out: string;
  err: string;
}

describe('kubectl arena', { timeout: 600_000 }, () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let op: RunningOperator;
  let node: LocalNode;
  // One stand-in runtime per experiment: the operator acknowledges report sequence numbers per worker, so a second
  // reporter starting again at 1 would be taken for a resend.
  const runtimes = new Map<string, FakeRuntime>();
  async function runtimeOf(name: string): Promise<FakeRuntime> {
    if (!runtimes.has(name)) {
      const exp = await arena.getExperiment(NS, name);
      runtimes.set(name, new FakeRuntime(op.http.url, exp, await arena.runToken(NS, exp)));
    }
    return runtimes.get(name)!;
  }

  /** The plugin in this process, aimed at the test cluster; -n ml unless the args say otherwise. */
  async function plugin(args: string[], opts: { signal?: AbortSignal; onOut?: (t: string) => void } = {}): Promise<Ran> {
    let out = '';
    let err = '';
    const withNs = args.includes('-n') || args.includes('--namespace') || args.includes('-A') ? args : [...args, '-n', NS];
    const code = await runPlugin([...withNs, '--kubeconfig', cluster.kubeconfigPath], {
      io: { out: (t) => ((out += t), opts.onOut?.(t)), err: (t) => void (err += t) },
      signal: opts.signal,
    });
    return { code, out, err };
  }
  const ok = (r: Ran, what: string) => assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.out}\n${r.err}`);

  /** A program run without blocking this process, which serves the local node. */
  const spawnRun = (file: string, args: string[], env: NodeJS.ProcessEnv) =>
    new Promise<Ran>((resolve) =>
      execFile(file, args, { env, encoding: 'utf8', timeout: 120_000 }, (e, out, err) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err })),
    );

  before(async () => {
    cluster = await LocalCluster.start();
    await installCrds(cluster);
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    await createGpuNodes(kc, { prefix: 'a100', count: 2, gpus: 8, gpu: gpuProducts.A100, taints: [gpuTaint] });
    // One node where a worker really runs: the runtime image is a small program that logs and waits for SIGTERM.
    const worker = `const r = process.env.ARENA_WORKER_RANK; console.log('hello from rank ' + r); console.log('step 1'); console.log('step 2');
      process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000);`;
    node = await LocalNode.start({
      kc,
      name: 'local-l4',
      dataDir: join(cluster.dir, 'node-local-l4'),
      capacity: { cpu: '4', memory: '8Gi', pods: 20 },
      gpus: { count: 2, product: 'NVIDIA L4', memoryMiB: 23034, computeCapability: '8.9' },
      taints: [gpuTaint],
      imageMap: [{ match: /arena-runtime/, command: [process.execPath, '-e', worker] }],
    });
    await arena.apply(trainingCluster('onprem', { checkpointStorage: { hostPath: { path: join(cluster.dir, 'checkpoints') } } }));
    await arena.apply(resourceClass('a100-x1', 'onprem', { nodes: 1, worker: { cpu: '4', memory: '16Gi', gpus: 8, gpuProduct: gpuProducts.A100.product } }));
    await arena.apply(resourceClass('l4-local', 'onprem', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 1, gpuProduct: 'NVIDIA-L4' } }));
    await arena.apply(resourceClass('h100-x4', 'onprem', { nodes: 4, worker: { cpu: '4', memory: '16Gi', gpus: 8, gpuProduct: gpuProducts.H100.product } }));
    op = await startOperator({ kc, logger: createLogger({ silent: true }), http: { host: '127.0.0.1', port: 0 }, leaseNamespace: 'default', progressIntervalMs: 200 });
    await waitFor(() => op.isLeader(), { timeoutMs: 20_000, what: 'the operator to lead' });
    await arena.namespace(NS);
  });
  after(async () => {
    await op?.stop();
    await node?.stop();
    await cluster?.stop();
  });

  test('every command has --help', async () => {
    for (const c of commands) {
      const r = await plugin([c.name, '--help']);
      ok(r, `${c.name} --help`);
      assert.match(r.out, new RegExp(`Usage: kubectl arena ${c.name}`));
      assert.match(r.out, /--namespace/);
    }
    const top = await plugin(['--help']);
    ok(top, '--help');
    for (const c of commands) assert.match(top.out, new RegExp(`^  ${c.name} `, 'm'));
    const bad = await plugin(['stp', 'x']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /unknown command "stp"; did you mean stop/);
    const usage = await plugin(['train']);
    assert.equal(usage.code, 2);
    assert.match(usage.err, /train takes one name: kubectl arena train EXPERIMENT/);
  });

  test('status: the training cluster, its classes and the namespace\'s experiments', async () => {
    await waitFor(async () => /True/.test((await plugin(['status'])).out.split('\n')[1] ?? ''), { timeoutMs: 30_000, what: 'the cluster to be Ready' });
    const r = await plugin(['status']);
    ok(r, 'status');
    assert.match(r.out, /^TRAINING CLUSTER +ENABLED +READY +WORKERS +GPUS FREE +BUNDLE +CREDITS +BURN\/H +TIME LEFT +AGE$/m);
    assert.match(r.out, /^onprem +true +True +3\/3 +18\/18 +1\.0\.0 \(\w+\) +unlimited/m);
    assert.match(r.out, /^a100-x1 +onprem +1 +8 +NVIDIA-A100-SXM4-80GB +true/m);
    assert.match(r.out, /^h100-x4 +onprem +4 +8 +NVIDIA-H100-80GB-HBM3 +false/m);
    assert.match(r.out, /Experiments \(namespace ml\): none/);
    const json = await plugin(['status', '-o', 'json']);
    ok(json, 'status -o json');
    const doc = JSON.parse(json.out) as { trainingClusters: { metadata: { name: string } }[]; resourceClasses: unknown[] };
    assert.deepEqual(doc.trainingClusters.map((c) => c.metadata.name), ['onprem']);
    assert.equal(doc.resourceClasses.length, 3);
  });

  test('train: a Draft starts; again is a no-op; an unknown name gets suggestions', async () => {
    await arena.apply(experiment(NS, 'cartpole', 'a100-x1', { action: 'Draft' }));
    const r = await plugin(['train', 'cartpole']);
    ok(r, 'train');
    assert.match(r.out, /experiment cartpole queued to train on a100-x1/);
    await arena.waitPhase(NS, 'cartpole', 'Running');
    const again = await plugin(['train', 'cartpole']);
    ok(again, 'train again');
    assert.match(again.out, /already Running/);
    const typo = await plugin(['train', 'cartpol']);
    assert.equal(typo.code, 1);
    assert.match(typo.err, /experiment "cartpol" not found in namespace ml; did you mean "cartpole"\?/);
    const elsewhere = await plugin(['stop', 'cartpole', '-n', 'default']);
    assert.equal(elsewhere.code, 1);
    assert.match(elsewhere.err, /It exists in namespace ml: add -n ml/);
  });

  test('why: a queued experiment and one whose class can never fit, in one screen', async () => {
    await arena.apply(experiment(NS, 'second', 'a100-x1'));
    await arena.waitPhase(NS, 'second', 'Running');
    await arena.apply(experiment(NS, 'third', 'a100-x1'));
    await arena.waitExperiment(NS, 'third', (s) => s.phase === 'Pending' && s.queuePosition === 1, 'queued first in line');
    // The training cluster's GPU counts are recomputed a moment after pods change.
    let r: Ran = { code: -1, out: '', err: '' };
    await waitFor(async () => /^GPUs: +0 free/m.test((r = await plugin(['why', 'third'])).out), { timeoutMs: 30_000, what: 'why to see the GPUs taken' });
    ok(r, 'why third');
    assert.match(r.out, /^Experiment ml\/third: Pending \(InsufficientCapacity\)/m);
    assert.match(r.out, /^ {2}Waiting for capacity on resource class "a100-x1"/m);
    assert.match(r.out, /^Queue: +position 1 .*on a100-x1 \(next to run\)$/m);
    assert.match(r.out, /^GPUs: +0 free of 16 \(NVIDIA-A100-SXM4-80GB\); one run needs 8$/m);
    assert.match(r.out, /^ {2}Admitted +False +InsufficientCapacity /m);
    assert.match(r.out, /^Cluster: +onprem: enabled yes, Ready True/m);
    await arena.apply(experiment(NS, 'huge', 'h100-x4'));
    await arena.waitPhase(NS, 'huge', 'Pending');
    const never = await plugin(['why', 'huge']);
    ok(never, 'why huge');
    assert.match(never.out, /^Class: +h100-x4: 4 worker\(s\) × 8 GPU\(s\) NVIDIA-H100-80GB-HBM3; enabled yes, available no/m);
    assert.match(never.out, /0 on an empty cluster/);
    const yaml = parse((await plugin(['why', 'huge', '-o', 'yaml'])).out) as { experiment: { phase: string }; waiting: boolean };
    assert.equal(yaml.experiment.phase, 'Pending');
    assert.equal(yaml.waiting, true);
  });

  test('checkpoints: the table marks best and latest; -o json lists them', async () => {
    const rt = await runtimeOf('cartpole');
    assert.equal((await rt.checkpoint(1000, 40)).status, 200);
    assert.equal((await rt.checkpoint(2000, 90)).status, 200);
    assert.equal((await rt.checkpoint(3000, 70)).status, 200);
    const r = await plugin(['checkpoints', 'cartpole']);
    ok(r, 'checkpoints');
    assert.match(r.out, /^RUN +STEP +EVAL SCORE +TRAIN SCORE +SIZE +AGE +MARK +LOCATION$/m);
    assert.match(r.out, /^1 +2000 +90 +89 +1\.0KiB +\S+ +best +run-1\/step-2000$/m);
    assert.match(r.out, /^1 +3000 +70 +69 +1\.0KiB +\S+ +latest +run-1\/step-3000$/m);
    const json = JSON.parse((await plugin(['checkpoints', 'cartpole', '-o', 'json'])).out) as { step: number }[];
    assert.deepEqual(json.map((c) => c.step), [1000, 2000, 3000]);
  });

  test('stop: a Running experiment stops after its final checkpoint; a stopped one is explained', async () => {
    const r = await plugin(['stop', 'cartpole']);
    ok(r, 'stop');
    assert.match(r.out, /experiment cartpole stopping: its workers get 5s to write a final checkpoint/);
    await arena.waitPhase(NS, 'cartpole', 'Stopping');
    // The runtime writes its final checkpoint within the grace period; the operator then ends the workers.
    assert.equal((await (await runtimeOf('cartpole')).checkpoint(3500, 75, { final: true })).status, 200);
    await arena.waitPhase(NS, 'cartpole', 'Stopped');
    const again = await plugin(['stop', 'cartpole']);
    ok(again, 'stop again');
    assert.match(again.out, /already Stopped \(latest checkpoint at step 3500\); nothing to do/);
  });

  test('stop on a Succeeded experiment explains why nothing happens; train runs it again with spec.run raised', async () => {
    const second = await arena.getExperiment(NS, 'second');
    for (const p of await arena.workerPods(NS, second)) await finishPod(arena.kc, NS, p.metadata!.name!, 'Succeeded');
    await arena.waitPhase(NS, 'second', 'Succeeded');
    const r = await plugin(['stop', 'second']);
    ok(r, 'stop succeeded');
    assert.match(r.out, /already Succeeded \(run 1\): nothing is running, so Stop changes nothing/);
    assert.equal((await arena.getExperiment(NS, 'second')).spec.action, 'Train', 'nothing was written');
    const t = await plugin(['train', 'second', '-o', 'json']);
    ok(t, 'train succeeded');
    assert.equal((JSON.parse(t.out) as Experiment).spec.run, 2);
    await arena.waitExperiment(NS, 'second', (s) => s.run === 2 && (s.phase === 'Pending' || s.phase === 'Running'), 'run 2 under way');
  });

  test('resume: a new experiment from the best checkpoint; a missing step lists the ones there are', async () => {
    const r = await plugin(['resume', 'cartpole', '--checkpoint', 'best', '--name', 'cartpole-next', '--draft']);
    ok(r, 'resume');
    assert.match(r.out, /experiment cartpole-next created from cartpole's best checkpoint \(run 1, step 2000, evaluation score 90\) as a Draft/);
    const next = await arena.getExperiment(NS, 'cartpole-next');
    assert.deepEqual(next.spec.resumeFrom, { experiment: 'cartpole', checkpoint: 'best' });
    assert.equal(next.spec.action, 'Draft');
    const dflt = await plugin(['resume', 'cartpole', '--checkpoint', '3000']);
    ok(dflt, 'resume with the default name');
    const named = await arena.getExperiment(NS, 'cartpole-resume');
    assert.deepEqual(named.spec.resumeFrom, { experiment: 'cartpole', checkpoint: 'step', step: 3000 });
    const missing = await plugin(['resume', 'cartpole', '--checkpoint', '1500']);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no checkpoint at step 1500; it has steps 1000, 2000, 3000, 3500/);
    const running = await plugin(['resume', 'second']);
    assert.equal(running.code, 1);
    assert.match(running.err, /is (Pending|Running): resume starts a new experiment from a finished one/);
  });

  test('deploy, connect, disconnect and rotate-key an agent', async () => {
    const d = await plugin(['deploy', 'cartpole', '--checkpoint', 'final', '--name', 'pilot']);
    ok(d, 'deploy');
    assert.match(d.out, /agent pilot created from cartpole's final checkpoint \(step 3500\); connect it with kubectl arena connect pilot/);
    const get = () => arena.custom.getNamespacedCustomObject({ group: 'arena.agilerl.com', version: 'v1alpha1', plural: 'deployments', namespace: NS, name: 'pilot' }) as Promise<Deployment>;
    assert.deepEqual((await get()).spec.source, { experiment: 'cartpole', checkpoint: 'final' });
    ok(await plugin(['connect', 'pilot']), 'connect');
    assert.equal((await get()).spec.connected, true);
    const twice = await plugin(['connect', 'pilot']);
    ok(twice, 'connect again');
    assert.match(twice.out, /already connected/);
    ok(await plugin(['disconnect', 'pilot']), 'disconnect');
    assert.equal((await get()).spec.connected, false);
    ok(await plugin(['rotate-key', 'pilot']), 'rotate-key');
    const rot = await plugin(['rotate-key', 'pilot', '-o', 'yaml']);
    ok(rot, 'rotate-key again');
    assert.equal((parse(rot.out) as Deployment).spec.keyRotation, 2);
    assert.equal((await get()).spec.keyRotation, 2);
    const unknown = await plugin(['connect', 'pliot']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /agent \(Deployment\) "pliot" not found in namespace ml; did you mean "pilot"\?/);
    const noCheckpoints = await plugin(['deploy', 'huge']);
    assert.equal(noCheckpoints.code, 1);
    assert.match(noCheckpoints.err, /experiment huge has no checkpoints yet/);
  });

  test('logs: the lines a real worker wrote, with --tail and -f', async () => {
    await arena.apply(experiment(NS, 'local', 'l4-local'));
    await arena.waitPhase(NS, 'local', 'Running', 60_000);
    await waitFor(async () => /step 2/.test((await plugin(['logs', 'local'])).out), { timeoutMs: 30_000, what: 'the worker to log' });
    const r = await plugin(['logs', 'local']);
    ok(r, 'logs');
    assert.equal(r.out, 'hello from rank 0\nstep 1\nstep 2\n');
    assert.equal((await plugin(['logs', 'local', '--tail', '1'])).out, 'step 2\n');
    const abort = new AbortController();
    let seen = '';
    const following = plugin(['logs', 'local', '-f'], { signal: abort.signal, onOut: (t) => ((seen += t), /step 2/.test(seen) && abort.abort()) });
    const f = await following;
    ok(f, 'logs -f');
    assert.match(f.out, /hello from rank 0\nstep 1\nstep 2\n/);
    const none = await plugin(['logs', 'huge']);
    assert.equal(none.code, 1);
    assert.match(none.err, /experiment huge has no worker pods \(phase Pending\)/);
    const wrongRank = await plugin(['logs', 'local', '--worker', '3']);
    assert.equal(wrongRank.code, 1);
    assert.match(wrongRank.err, /has no worker 3; its workers are 0/);
  });

  test('the kubectl-arena executable: found by kubectl, --kubeconfig, --context and -n pick the cluster and namespace', async () => {
    const env = { ...process.env, PATH: `${pluginBin}:${cluster.binDir}:${process.env.PATH}`, KUBECONFIG: cluster.kubeconfigPath };
    const viaKubectl = await spawnRun(join(cluster.binDir, 'kubectl'), ['arena', 'status', '-n', NS], env);
    assert.equal(viaKubectl.code, 0, viaKubectl.err);
    assert.match(viaKubectl.out, /^onprem +true +True/m);
    assert.match(viaKubectl.out, /Experiments \(namespace ml\): /);
    const noKubeconfigEnv = { ...process.env, KUBECONFIG: join(cluster.dir, 'no-such-kubeconfig') };
    const ctx = cluster.kubeConfig().getCurrentContext();
    const explicit = await spawnRun(join(pluginBin, 'kubectl-arena'), ['checkpoints', 'cartpole', '--kubeconfig', cluster.kubeconfigPath, '--context', ctx, '--namespace', NS], noKubeconfigEnv);
    assert.equal(explicit.code, 0, explicit.err);
    assert.match(explicit.out, /best/);
    const badContext = await spawnRun(join(pluginBin, 'kubectl-arena'), ['status', '--kubeconfig', cluster.kubeconfigPath, '--context', 'nope'], noKubeconfigEnv);
    assert.equal(badContext.code, 1);
    assert.match(badContext.err, new RegExp(`context "nope" is not in the kubeconfig; it has: ${ctx}`));
  });
});
