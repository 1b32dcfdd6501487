// Agent benchmark (not a test): how long Connect takes until the agent is Deployed, and get_action latency through
// the real inference pod. A real control plane, the operator in process, a local node that runs `arena-runtime
// serve` as a process, and an AgileRL DQN CartPole checkpoint from a short real training run, frozen from its
// experiment. Each round connects a disconnected agent (a fresh pod), times connect → Deployed and
// connect → first 200 from get_action, then disconnects and waits for the pod to go. Then get_action requests
// go to the pod IP with the agent's key over keep-alive connections. Last, the key is rotated: how long the old
// key is still accepted and how long until the agent is Deployed again. Prints figures, exits 0.
//
//   ARENA_BIN_DIR=... node --import tsx e2e/bench/deploy.bench.ts [--rounds 5] [--requests 300]
import { mkdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalCluster, repoRoot } from '../cluster/control-plane.ts';
import { installCrds } from '../cluster/crds.ts';
import { waitFor } from '../cluster/wait.ts';
import { LocalNode } from '../node/local-node.ts';
import { Agents, Arena, deployment, experiment, resourceClass, trainingCluster } from '../support/fixtures.ts';
import { quickDqn } from '../support/manifests.ts';
import { runtimeCommand, startLocalOperator } from '../support/runtime-node.ts';
import type { RunningOperator } from '../../operator/operator.ts';
import { createLogger } from '../../operator/observability/log.ts';
import { Informer } from '../../operator/kube/informer.ts';
import type { Deployment } from '../../operator/api/v1alpha1/deployment.ts';
import { decodeNpyBase64, encodeNpyBase64, ndarray } from '../../runtime/npy/npy.ts';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, requests: { type: 'string', default: '300' } } });
const ROUNDS = Number(args.rounds);
const REQUESTS = Number(args.requests);
const ns = 'bench';

const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
const ms = (v: number) => v.toFixed(0).padStart(6);

function getAction(agent: Agent, ip: string, key: string, body: string): Promise<{ status: number; text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = request(
      { host: ip, port: 8000, path: '/get_action', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${key}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString(), ms: performance.now() - start }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

let cluster: LocalCluster | undefined;
let node: LocalNode | undefined;
let op: RunningOperator | undefined;
let watcher: Informer<Deployment> | undefined;
try {
  cluster = await LocalCluster.start({ without: ['kwok'] });
  await installCrds(cluster);
  const kc = cluster.kubeConfig();
  const arena = new Arena(kc);
  const agents = new Agents(arena);
  const checkpoints = join(cluster.dir, 'checkpoints');
  mkdirSync(checkpoints, { recursive: true });
  node = await LocalNode.start({
    kc,
    name: 'local-0',
    dataDir: join(cluster.dir, 'node'),
    capacity: { cpu: '8', memory: '16Gi' },
    imageMap: [{ match: 'registry.local/arena-runtime', command: runtimeCommand, workingDir: repoRoot }],
    logger: createLogger({ silent: true }),
  });
  op = await startLocalOperator(kc, {
    // Default health timing; only what this machine needs: loopback-only checks, servers on their pod IPs.
    deployments: { health: { allowedCidrs: ['127.0.0.0/8'] }, bindHost: '$(POD_IP)' },
  });
  await arena.apply(trainingCluster('local', { setupBundle: { version: '1.0.0', images: { runtime: 'registry.local/arena-runtime:1.0.0' } }, checkpointStorage: { mountPath: '/checkpoints', hostPath: { path: checkpoints } } }));
  await arena.apply(resourceClass('cpu', 'local', { nodes: 1, worker: { cpu: '1', memory: '2Gi', gpus: 0 } }));
  await arena.namespace(ns);

  // A source experiment: a short AgileRL run of the demo's network (serving cost does not depend on how well it learned).
  await arena.apply(experiment(ns, 'src', 'cpu', { manifest: quickDqn(1000) }));
  const src = await arena.waitExperiment(ns, 'src', (st) => st.phase === 'Succeeded' || st.phase === 'Failed', 'the source run to finish', 300_000);
  if (src.status?.phase !== 'Succeeded') throw new Error(`the source run ended ${src.status?.phase}: ${JSON.stringify(src.status?.lastFailure)}`);
  await agents.create(deployment(ns, 'agent', 'src'));
  await agents.wait(ns, 'agent', (s) => s.phase === 'Undeployed' && s.checkpoint !== undefined, 'the checkpoint frozen');

  // Deployed is seen from the watch, not by polling.
  watcher = new Informer<Deployment>({ kc, group: 'arena.agilerl.com', version: 'v1alpha1', plural: 'deployments', namespace: ns, logger: createLogger({ silent: true }) });
  let onChange: ((d: Deployment) => void) | undefined;
  watcher.on('update', (d) => onChange?.(d));
  await watcher.start();
  const until = (pred: (d: Deployment) => boolean) =>
    new Promise<Deployment>((resolve) => {
      const now = watcher!.get(`${ns}/agent`);
      if (now && pred(now)) return resolve(now);
      onChange = (d) => pred(d) && resolve(d);
    });

  const obs = (n: number) => JSON.stringify({ obs: encodeNpyBase64(ndarray('f4', [n, 4], Array.from({ length: n * 4 }, (_, i) => ((i % 7) - 3) / 100))), batch_size: n });
  const one = obs(1);
  const toDeployed: number[] = [];
  const toFirstAction: number[] = [];
  let ip = '';
  let key = '';
  console.log(`agent benchmark: local control plane, operator in process, arena-runtime serve on a local node; ${availableParallelism()} cores (load ${loadavg()[0]!.toFixed(2)})\n`);
  for (let round = 1; round <= ROUNDS; round++) {
    const t0 = performance.now();
    await agents.patch(ns, 'agent', { connected: true });
    const d = await until((x) => x.status?.phase === 'Deployed');
    const deployedMs = performance.now() - t0;
    const pods = (await agents.pods(ns, d)).filter((p) => !p.metadata?.deletionTimestamp);
    ip = pods[0]!.status!.podIP!;
    key = await agents.apiKey(ns, d);
    const fresh = new Agent({ keepAlive: false });
    for (;;) {
      const r = await getAction(fresh, ip, key, one).catch(() => ({ status: 0 }));
      if (r.status === 200) break;
    }
    const firstMs = performance.now() - t0;
    toDeployed.push(deployedMs);
    toFirstAction.push(firstMs);
    console.log(`round ${round}: connect → Deployed ${ms(deployedMs)} ms, connect → first get_action 200 ${ms(firstMs)} ms`);
    if (round === ROUNDS) break;
    await agents.patch(ns, 'agent', { connected: false });
    await until((x) => x.status?.phase === 'Undeployed');
    await waitFor(async () => (await agents.pods(ns, d)).length === 0, { timeoutMs: 60_000, what: 'the pod to go', intervalMs: 100 });
  }
  console.log(`\nconnect → Deployed       min ${ms(Math.min(...toDeployed))}  p50 ${ms(pct(toDeployed, 50))}  max ${ms(Math.max(...toDeployed))} ms  (${ROUNDS} rounds)`);
  console.log(`connect → first action   min ${ms(Math.min(...toFirstAction))}  p50 ${ms(pct(toFirstAction, 50))}  max ${ms(Math.max(...toFirstAction))} ms`);

  console.log(`\nget_action through the pod (${ip}:8000), keep-alive, after 50 warm-up requests:`);
  console.log('concurrency  batch  requests  failures   p50 ms   p95 ms   p99 ms   req/s');
  for (const { concurrency, batch } of [
    { concurrency: 1, batch: 1 },
    { concurrency: 8, batch: 1 },
    { concurrency: 8, batch: 32 },
  ]) {
    const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
    const body = obs(batch);
    for (let i = 0; i < 50; i++) await getAction(agent, ip, key, body);
    const latencies: number[] = [];
    let failures = 0;
    let issued = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (issued < REQUESTS) {
          issued++;
          const r = await getAction(agent, ip, key, body);
          latencies.push(r.ms);
          if (r.status !== 200 || decodeNpyBase64((JSON.parse(r.text) as { action: string }).action).shape[0] !== batch) failures++;
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    agent.destroy();
    console.log(
      [
        String(concurrency).padStart(11),
        String(batch).padStart(6),
        String(latencies.length).padStart(9),
        String(failures).padStart(9),
        pct(latencies, 50).toFixed(2).padStart(8),
        pct(latencies, 95).toFixed(2).padStart(8),
        pct(latencies, 99).toFixed(2).padStart(8),
        (latencies.length / elapsed).toFixed(0).padStart(7),
      ].join(' '),
    );
  }

  // Rotation: how long the old key is still accepted, and how long until the new pods serve.
  const oldKey = key;
  const probeAgent = new Agent({ keepAlive: false });
  const t0 = performance.now();
  await agents.patch(ns, 'agent', { keyRotation: 1 });
  let accepted = 0;
  for (;;) {
    const r = await getAction(probeAgent, ip, oldKey, one).catch(() => ({ status: 0 }));
    if (r.status !== 200) break;
    accepted++;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const refusedMs = performance.now() - t0;
  const rotated = await until((x) => x.status?.phase === 'Deployed' && x.status.observedKeyRotation === 1);
  const rotatedMs = performance.now() - t0;
  const newIp = (await agents.pods(ns, rotated)).find((p) => !p.metadata?.deletionTimestamp)!.status!.podIP!;
  const oldOnNew = await getAction(probeAgent, newIp, oldKey, one);
  console.log(`
key rotation: old key last accepted ${ms(refusedMs)} ms after the patch (${accepted} requests accepted meanwhile); Deployed with the new key after ${ms(rotatedMs)} ms; old key on the new pod: HTTP ${oldOnNew.status}`);
} finally {
  watcher?.stop();
  await op?.stop();
  await node?.stop();
  await cluster?.stop();
}
