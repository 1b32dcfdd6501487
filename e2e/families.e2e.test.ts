// The algorithm families besides single-agent Gymnasium RL, end to end: a real control plane, the operator in
// process, a local node that runs pods as processes, and the real runtime with AgileRL's manifest trainer. For each
// family one algorithm trains, is stopped (a final checkpoint), is resumed from it by a new experiment that trains
// to Succeeded, and its best checkpoint is served as an agent whose get_action answers what AgileRL's own
// get_action computes for that checkpoint (e2e/support/families_reference.py, outside the cluster):
//   - multi-agent: MADDPG on MPE simple_spread (mpe2), observations and actions keyed by agent id;
//   - contextual bandits: NeuralUCB on a feature and target table made here;
//   - offline RL: CQN on an HDF5 dataset of CartPole transitions made here by rolling out a scripted controller.
// The datasets lie in the namespace's part of the checkpoint storage; the manifests name them by that path, and the
// operator mounts each file into the worker (read-only, on its own).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { V1Pod } from '@kubernetes/client-node';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import type { LocalNode } from './node/local-node.ts';
import { runtimeImage, startLocalOperator, startRuntimeNode } from './support/runtime-node.ts';
import { readCheckpointMetadata } from './support/agilerl.ts';
import { Agents, Arena, deployment, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { cqnCartpole, maddpgSpread, neuralUcbTables } from './support/manifests.ts';
import type { RunningOperator } from '../operator/operator.ts';
import type { Experiment } from '../operator/api/v1alpha1/experiment.ts';
import type { Manifest } from '../operator/api/v1alpha1/manifest.ts';
import { resolvePython } from '../operator/api/platform/verdict.ts';
import { decodeNpyBase64, encodeNpyBase64, ndarray, type NdArray } from '../runtime/npy/npy.ts';

const ns = 'families';
const REFERENCE = fileURLToPath(new URL('./support/families_reference.py', import.meta.url));
const MAKE_DATASETS = fileURLToPath(new URL('../runtime/trainers/agilerl/tests/make_datasets.py', import.meta.url));
const run = promisify(execFile);

/** Deterministic pseudo-random values in [-scale, scale]. */
function values(count: number, seed: number, scale = 1): number[] {
  return Array.from({ length: count }, (_, i) => Math.sin((i + 1) * 12.9898 + seed * 78.233) * scale);
}

/** What AgileRL itself answers for `obs` (plain nested number arrays, or an object of them keyed by agent id). */
async function reference(folder: string, obs: unknown): Promise<unknown> {
  const dir = mkdtempSync(join(tmpdir(), 'families-ref-'));
  try {
    writeFileSync(join(dir, 'in.json'), JSON.stringify({ obs }));
    await run(resolvePython(), [REFERENCE, folder, join(dir, 'in.json'), join(dir, 'out.json')], { timeout: 180_000 });
    return (JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as { action: unknown }).action;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An array's rows as nested lists, for the reference's JSON. */
function rows(a: NdArray): number[][] | number[] {
  const data = [...a.data].map(Number);
  if (a.ndim === 1) return data;
  const width = data.length / a.shape[0]!;
  const out: number[][] = [];
  for (let i = 0; i < a.shape[0]!; i++) out.push(data.slice(i * width, (i + 1) * width));
  if (a.ndim === 2) return out;
  // (N, arms, features): one list of arm contexts per row.
  const inner = a.shape.slice(1).reduce((x, y) => x * y, 1) / a.shape[1]!;
  return out.map((r) => Array.from({ length: a.shape[1]! }, (_, j) => r.slice(j * inner, (j + 1) * inner))) as unknown as number[][];
}

type Served = { ip: string; key: string; folder: string; multiAgent: boolean };

describe('multi-agent, bandit and offline RL trained, stopped, resumed and served on a local node', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let agents: Agents;
  let node: LocalNode;
  let op: RunningOperator;
  let checkpoints: string;
  // The three lifecycles run at once (most of each is waiting: interpreter start-up, AgileRL's import, the stop's
  // grace, the agent's start), and each test awaits its own.
  const started = new Map<string, Promise<Served>>();
  let missingDataset: Promise<Experiment>;
  /** The folder on this machine behind a location in the checkpoint storage (/checkpoints/...). */
  const local = (location: string) => {
    assert.ok(location.startsWith('/checkpoints/'), location);
    return join(checkpoints, location.slice('/checkpoints/'.length));
  };

  const stop = async (name: string): Promise<Experiment> => {
    await arena.patchExperiment(ns, name, { action: 'Stop' });
    const stopped = await arena.waitExperiment(ns, name, (s) => s.phase === 'Stopped' || s.phase === 'Failed', 'stopped', 120_000);
    assert.equal(stopped.status?.phase, 'Stopped', `${stopped.status?.reason}: ${stopped.status?.message} ${JSON.stringify(stopped.status?.lastFailure)}`);
    return stopped;
  };

  /**
   * The lifecycle every family goes through: a long run stopped after its first checkpoints (a final checkpoint
   * that AgileRL's files are in), then a new experiment resumed from that final checkpoint that trains a little
   * further to Succeeded, and an agent of the resumed run's best checkpoint, Deployed. Returns the agent's pod IP,
   * key and the local folder of the checkpoint it serves.
   */
  const lifecycle = async (name: string, manifest: (maxSteps: number) => Manifest, more: number, algorithm: string): Promise<Served> => {
    await arena.apply(experiment(ns, name, 'cpu', { manifest: manifest(1_000_000), stopGracePeriodSeconds: 60 }));
    const running = await arena.waitExperiment(ns, name, (s) => (s.checkpoints?.length ?? 0) >= 1 || s.phase === 'Failed', 'a checkpoint', 300_000);
    assert.equal(running.status?.phase, 'Running', `${running.status?.reason}: ${running.status?.message} ${JSON.stringify(running.status?.lastFailure)}`);
    const stopped = await stop(name);
    const final = stopped.status!.latestCheckpoint!;
    assert.match(final.location, /-final$/, 'the last checkpoint is the final one written on the stop');
    const meta = readCheckpointMetadata(local(final.location));
    assert.equal(meta.final, true);
    assert.equal(meta.algorithm, algorithm);
    assert.equal(meta.agents.length, 2, 'the whole population');

    const resumedName = `${name}-resumed`;
    await arena.apply(experiment(ns, resumedName, 'cpu', { manifest: manifest(final.step + more), resumeFrom: { experiment: name, checkpoint: 'final' } }));
    const done = await arena.waitExperiment(ns, resumedName, (s) => s.phase === 'Succeeded' || s.phase === 'Failed', 'the resumed run to finish', 300_000);
    assert.equal(done.status?.phase, 'Succeeded', JSON.stringify(done.status?.lastFailure));
    assert.equal(done.status?.resumedFrom?.step, final.step);
    const steps = (done.status?.checkpoints ?? []).map((c) => c.step);
    assert.ok(steps.length > 0 && steps.every((s) => s > final.step), `the resumed run continues past step ${final.step} (${steps.join(', ')})`);
    assert.equal(done.status?.progress?.step, final.step + more);
    assert.ok((done.status?.checkpoints ?? []).every((c) => typeof c.evaluationScore === 'number'), 'each checkpoint is scored');

    const agentName = `${name}-agent`;
    await agents.create(deployment(ns, agentName, resumedName, { connected: true, source: { experiment: resumedName, checkpoint: 'best' } }));
    const d = await agents.waitPhase(ns, agentName, 'Deployed', 240_000);
    assert.equal(d.status!.checkpoint!.step, done.status!.bestCheckpoint!.step);
    const pods = (await agents.pods(ns, d)).filter((p: V1Pod) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    assert.equal(pods.length, 1, 'one ready inference pod');
    const ip = pods[0]!.status!.podIP!;
    const status = (await (await fetch(`http://${ip}:8000/status`)).json()) as { agent: { algo: string; multi_agent: boolean } };
    assert.equal(status.agent.algo, algorithm);
    return { ip, key: await agents.apiKey(ns, d), folder: local(d.status!.checkpoint!.location), multiAgent: status.agent.multi_agent };
  };

  const getAction = async (ip: string, key: string, body: Record<string, unknown>) => {
    const res = await fetch(`http://${ip}:8000/get_action`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  before(async () => {
    cluster = await LocalCluster.start({ without: ['kwok'] });
    await installCrds(cluster);
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    agents = new Agents(arena);
    checkpoints = join(cluster.dir, 'checkpoints');
    mkdirSync(checkpoints, { recursive: true });
    // The datasets, made in code where the manifests name them in the checkpoint storage.
    const python = resolvePython();
    await run(python, [MAKE_DATASETS, 'offline', local(cqnCartpole().environment.dataset_path as string), '--steps', '2000']);
    const features = neuralUcbTables().environment.features as string;
    await run(python, [MAKE_DATASETS, 'bandit', local(features.slice(0, features.lastIndexOf('/')))]);

    node = await startRuntimeNode(kc, {
      dataDir: join(cluster.dir, 'node'),
      // The image's Python: the project's environment (ARENA_PYTHON when this checkout has no .venv of its own).
      imageMap: [runtimeImage('registry.local/arena-runtime', { ARENA_PYTHON: python })],
    });
    op = await startLocalOperator(kc, {
      progressIntervalMs: 1000,
      deployments: {
        health: { intervalMs: 300, timeoutMs: 1000, failureThreshold: 5, allowedCidrs: ['127.0.0.0/8'] },
        unhealthyTimeoutMs: 60_000,
        bindHost: '$(POD_IP)',
        discoveryTtlMs: 1000,
      },
    });
    await arena.apply(trainingCluster('local', { setupBundle: { version: '1.0.0', images: { runtime: 'registry.local/arena-runtime:1.0.0' } }, checkpointStorage: { mountPath: '/checkpoints', hostPath: { path: checkpoints } } }));
    await arena.apply(resourceClass('cpu', 'local', { nodes: 1, worker: { cpu: '1', memory: '2Gi', gpus: 0 } }));
    await arena.namespace(ns);
    const start = (name: string, p: Promise<Served>) => {
      // Awaited by its test; until then a failure must not count as an unhandled rejection.
      p.catch(() => undefined);
      started.set(name, p);
    };
    start('spread', lifecycle('spread', maddpgSpread, 200, 'MADDPG'));
    start('bandit', lifecycle('bandit', neuralUcbTables, 100, 'NeuralUCB'));
    start('offline', lifecycle('offline', cqnCartpole, 200, 'CQN'));
    missingDataset = (async () => {
      await arena.apply(experiment(ns, 'no-data', 'cpu', { manifest: cqnCartpole(400, '/checkpoints/families/datasets/missing.h5') }));
      return arena.waitExperiment(ns, 'no-data', (s) => s.phase === 'Failed' || s.phase === 'Succeeded', 'Failed', 300_000);
    })();
    missingDataset.catch(() => undefined);
  });
  after(async () => {
    await op?.stop();
    await node?.stop();
    await cluster?.stop();
  });

  test('multi-agent: MADDPG on MPE simple_spread; the agent answers each agent\'s action as AgileRL computes it', async () => {
    const { ip, key, folder, multiAgent } = await started.get('spread')!;
    assert.equal(multiAgent, true, '/status says multi_agent, which is how the platform\'s client keys its calls');
    const n = 8;
    const ids = ['agent_0', 'agent_1', 'agent_2'];
    const obs = Object.fromEntries(ids.map((a, i) => [a, ndarray('f4', [n, 18], values(n * 18, i + 1))]));
    const call = await getAction(ip, key, { obs: Object.fromEntries(ids.map((a) => [a, encodeNpyBase64(obs[a]!)])), batch_size: n });
    assert.equal(call.status, 200, JSON.stringify(call.body));
    const served = call.body.action as Record<string, string>;
    assert.deepEqual(Object.keys(served).sort(), ids);
    const expected = (await reference(folder, Object.fromEntries(ids.map((a) => [a, rows(obs[a]!)])))) as Record<string, number[][]>;
    for (const a of ids) {
      const action = decodeNpyBase64(served[a]!);
      assert.deepEqual(action.shape, [n, 5], `${a}: one 5-dimensional continuous action per row`);
      assert.deepEqual(rows(action), expected[a], `${a}'s actions are AgileRL's`);
    }
    // Bad input is named by its agent's field.
    const missing = await getAction(ip, key, { obs: { agent_0: encodeNpyBase64(obs.agent_0!) }, batch_size: n });
    assert.equal(missing.status, 400);
    assert.match(JSON.stringify(missing.body), /obs\.agent_1: required/);
  });

  test('contextual bandit: NeuralUCB on a table made here; each context gets the arm AgileRL picks from the checkpoint', async () => {
    const { ip, key, folder } = await started.get('bandit')!;
    const n = 10;
    // A context per arm, as AgileRL's BanditEnv builds them: the features in the arm's own block of 4.
    const data: number[] = [];
    const features = values(n * 4, 7, 1.5);
    for (let i = 0; i < n; i++) for (let arm = 0; arm < 3; arm++) for (let j = 0; j < 12; j++) data.push(Math.floor(j / 4) === arm ? features[i * 4 + (j % 4)]! : 0);
    const contexts = ndarray('f4', [n, 3, 12], data);
    const call = await getAction(ip, key, { obs: encodeNpyBase64(contexts), batch_size: n });
    assert.equal(call.status, 200, JSON.stringify(call.body));
    const served = decodeNpyBase64(call.body.action as string);
    assert.deepEqual(served.shape, [n]);
    assert.deepEqual([...served.data].map(Number), await reference(folder, rows(contexts)));
    const again = await getAction(ip, key, { obs: encodeNpyBase64(contexts), batch_size: n });
    assert.deepEqual([...decodeNpyBase64(again.body.action as string).data].map(Number), [...served.data].map(Number), 'serving does not change the policy');
    const wrong = await getAction(ip, key, { obs: encodeNpyBase64(ndarray('f4', [1, 12], new Array<number>(12).fill(0))), batch_size: 1 });
    assert.equal(wrong.status, 400);
    assert.match(JSON.stringify(wrong.body), /obs: expected shape \(N, 3, 12\)/);
  });

  test('offline RL: CQN on a CartPole dataset made here; the agent answers AgileRL\'s greedy actions', async () => {
    const { ip, key, folder } = await started.get('offline')!;
    const n = 32;
    const obs = ndarray('f4', [n, 4], values(n * 4, 11, 0.5));
    const call = await getAction(ip, key, { obs: encodeNpyBase64(obs), batch_size: n });
    assert.equal(call.status, 200, JSON.stringify(call.body));
    const served = decodeNpyBase64(call.body.action as string);
    assert.deepEqual(served.shape, [n]);
    assert.deepEqual([...served.data].map(Number), await reference(folder, rows(obs)));
  });

  test('a dataset path the worker cannot see fails the run with DatasetNotFound, naming the field', async () => {
    const failed = await missingDataset;
    assert.equal(failed.status?.phase, 'Failed');
    const why = JSON.stringify(failed.status?.lastFailure ?? failed.status);
    assert.match(why, /DatasetNotFound/);
    assert.match(why, /environment\.dataset_path: \/checkpoints\/families\/datasets\/missing\.h5/);
  });
});
