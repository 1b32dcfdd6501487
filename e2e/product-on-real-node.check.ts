// The product on a real node: the images `make images` built, imported into the node's containerd, the chart
// installed with them into a namespace that enforces the restricted Pod Security Standard, the operator running
// there as a container (leader, webhook, readiness), and an AgileRL DQN experiment whose worker is a runtime
// container (uid 1000, read-only root, the checkpoint volume) that trains, reports to the operator through its
// Service and finishes. Needs dist/images (make images); `make test-real-node` builds them first. Timings are
// printed, never asserted.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { LocalCluster, repoRoot } from './cluster/control-plane.ts';
import { logTail } from './cluster/processes.ts';
import { waitFor } from './cluster/wait.ts';
import { RealNode } from './realnode/real-node.ts';
import { Agents, Arena, deployment, experiment, resourceClass } from './support/fixtures.ts';
import { quickDqn } from './support/manifests.ts';
import { ok, sh, type Result } from './support/sh.ts';
import { imageArchives, type ImageArchive } from '../bundle/build.ts';
import { chartDir } from '../bundle/chart-sync.ts';
import { parseImageRef } from '../bundle/image-ref.ts';
import { toKubeError } from '../operator/kube/errors.ts';

const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const imagesDir = process.env.ARENA_IMAGES_DIR ?? join(repoRoot, 'dist/images');
const system = 'arena-system';
const team = 'ml-team';
const release = 'arena-operator';
const nodeName = 'real-0';
const workerLabel = { 'arena.agilerl.com/worker': 'true' };
const className = 'real-cpu';

/** A trainer (runtime/PROTOCOL.md) that only proves the gang's rendezvous: gloo over the pod network. */
const rendezvousTrainer = `import datetime, json, os
import torch
import torch.distributed as dist

events = os.fdopen(int(os.environ["ARENA_EVENTS_FD"]), "w", buffering=1)
dist.init_process_group("gloo", init_method="env://", timeout=datetime.timedelta(seconds=120))
rank, world = dist.get_rank(), dist.get_world_size()
total = torch.tensor([rank + 1.0])
dist.all_reduce(total)
print(f"rendezvous: rank {rank} of {world} at {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}, all_reduce {total.item()}", flush=True)
seen = {"rank": rank, "world": world, "master": os.environ["MASTER_ADDR"], "node": os.environ["NODE_NAME"], "all_reduce": total.item()}
with open(os.path.join(os.environ["ARENA_CHECKPOINT_DIR"], f"rendezvous-rank-{rank}.json"), "w") as f:
    json.dump(seen, f)
if rank == 0:
    folder = os.path.join(os.environ["ARENA_CHECKPOINT_DIR"], f"run-{os.environ['ARENA_RUN']}", "rendezvous")
    os.makedirs(folder + ".tmp", exist_ok=True)
    with open(os.path.join(folder + ".tmp", "sum.json"), "w") as f:
        json.dump({"all_reduce": total.item(), "world": world}, f)
    os.replace(folder + ".tmp", folder)
    events.write(json.dumps({"event": "checkpoint", "step": 1, "path": folder}) + "\\n")
events.write(json.dumps({"event": "progress", "step": 1, "max_steps": 1}) + "\\n")
events.write(json.dumps({"event": "finished", "step": 1}) + "\\n")
dist.destroy_process_group()
`;

/** What the chart takes for an image: the bundle's own way (bundle/build.ts), pinned by digest. */
function imageValues(a: ImageArchive) {
  const ref = parseImageRef(a.reference);
  return { registry: ref.registry ?? '', repository: ref.repository, tag: ref.tag ?? version, digest: ref.digest ?? '' };
}

describe('the product on a real node', { timeout: 1_800_000 }, () => {
  let c: LocalCluster;
  let node: RealNode;
  let core: CoreV1Api;
  let arena: Arena;
  let archives: Record<string, ImageArchive>;
  /** The runtime image (3.6 GB) imports while the chart installs and the operator starts. */
  let runtimeImport: Promise<number>;
  const extraNodes: RealNode[] = [];
  const figures: Record<string, number> = {};
  const t0 = Date.now();

  const kubectl = (args: string[]) => sh(join(c.binDir, 'kubectl'), args, { env: c.env() });
  /** kubectl with `input` on its stdin (sh() gives none), without blocking the event loop. */
  const kubectlIn = (args: string[], input: string) =>
    new Promise<Result>((resolve) => {
      const p = spawn(join(c.binDir, 'kubectl'), args, { env: c.env() });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
      p.stdin.end(input);
    });

  /** What a timeout shows: the namespace's pods and events and the kubelet's last lines. */
  const diagnose = async (ns: string) => {
    const pods = await kubectl(['get', 'pods', '-n', ns, '-o', 'wide']);
    const events = await kubectl(['get', 'events', '-n', ns, '--sort-by=.lastTimestamp']);
    return `pods:\n${pods.stdout}${pods.stderr}\nevents:\n${events.stdout.split('\n').slice(-25).join('\n')}\n--- kubelet ---\n${node.logTail('kubelet', 20)}`;
  };
  async function waitWith(cond: () => Promise<boolean>, what: string, timeoutMs: number, ns: string, intervalMs = 500): Promise<void> {
    try {
      await waitFor(cond, { timeoutMs, what, intervalMs });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await diagnose(ns)}`);
    }
  }

  async function restrictedNamespace(name: string, extra: Record<string, string> = {}): Promise<void> {
    await core.createNamespace({
      body: { metadata: { name, labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest', ...extra } } },
    });
    await waitFor(() => core.readNamespacedServiceAccount({ namespace: name, name: 'default' }).then(() => true), {
      timeoutMs: 60_000,
      what: `the default service account of ${name}`,
    });
  }

  async function operatorPod(): Promise<V1Pod | undefined> {
    const pods = await core.listNamespacedPod({ namespace: system, labelSelector: 'app.kubernetes.io/component=operator' });
    return pods.items.find((p) => !p.metadata?.deletionTimestamp);
  }

  /**
   * Follows an experiment's worker pods while it runs: each pod as last seen (the operator removes a finished
   * attempt's pods) and the latest one's log through `kubectl logs`.
   */
  function watchWorkers(name: string) {
    const state = { logs: '', pods: [] as V1Pod[], polling: true, byPod: new Map<string, string>() };
    const done = (async () => {
      while (state.polling) {
        try {
          const current = await arena.workerPods(team, await arena.getExperiment(team, name));
          for (const p of current) {
            const i = state.pods.findIndex((q) => q.metadata!.uid === p.metadata!.uid);
            if (i < 0) state.pods.push(p);
            else state.pods[i] = p;
          }
          for (const p of current) {
            const r = await kubectl(['logs', '-n', team, p.metadata!.name!]);
            if (r.code === 0) state.byPod.set(p.metadata!.name!, r.stdout);
          }
          const latest = state.pods.at(-1);
          if (latest) state.logs = state.byPod.get(latest.metadata!.name!) ?? state.logs;
        } catch {
          // A pod went between the list and the read: what was seen last stays.
        }
        await sleep(2000);
      }
    })();
    return {
      done,
      get logs() {
        return state.logs;
      },
      pods: state.pods,
      /** Each pod's log as last read, by pod name. */
      logsByPod: state.byPod,
      stop: () => {
        state.polling = false;
      },
    };
  }

  const checkpointStorage = () => join(c.dir, 'checkpoints');

  before(async () => {
    // Fails here, naming the fix, when the images were never built: this suite is about those images.
    archives = Object.fromEntries((await imageArchives(imagesDir, version)).map((a) => [a.name, a]));
    let t = Date.now();
    // The API server calls the webhook at its pod's address (the Service's EndpointSlice), which the machine
    // routes to the node over its veth; a ClusterIP exists only in kube-proxy's rules inside the node.
    c = await LocalCluster.start({ without: ['kwok'], extraArgs: { 'kube-apiserver': ['--enable-aggregator-routing=true'] } });
    figures.clusterStartMs = Date.now() - t;
    node = await RealNode.start({ cluster: c, name: nodeName, labels: workerLabel });
    figures.nodeStartMs = node.startMs;
    core = c.kubeConfig().makeApiClient(CoreV1Api);
    arena = new Arena(c.kubeConfig());
    figures.operatorImportMs = await node.importOciArchive(archives.operator!.path, archives.operator!.reference);
    t = Date.now();
    runtimeImport = node.importOciArchive(archives.runtime!.path, archives.runtime!.reference).then((ms) => (figures.runtimeImportMs = ms));
    // Awaited by the training test; until then a failure must not be an unhandled rejection.
    runtimeImport.catch(() => undefined);
    await restrictedNamespace(system);
    // A tenant namespace, labelled as the chart's NetworkPolicy asks for the namespaces whose workers report.
    await restrictedNamespace(team, { 'arena.agilerl.com/workloads': 'true' });
  });

  after(async () => {
    figures.totalMs = Date.now() - t0;
    console.log(`# product on a real node, figures: ${JSON.stringify(figures)}`);
    // containerd may still be importing; the node's stop ends it by pid either way.
    await runtimeImport?.catch(() => undefined);
    for (const n of extraNodes) await n.stop();
    await node?.stop();
    await c?.stop();
  });

  test('the chart installs with the built images; the operator runs on the real node under the restricted Pod Security Standard', async () => {
    const values = {
      image: { ...imageValues(archives.operator!), pullPolicy: 'Never' },
      runtimeImage: imageValues(archives.runtime!),
      // One replica: a 2-core machine, and a single leader is what this checks.
      replicaCount: 1,
      trainingCluster: { workerNodeSelector: workerLabel, checkpointStorage: { persistentVolumeClaim: { claimName: 'arena-checkpoints' } } },
      resourceClasses: [{ name: className, nodes: 1, worker: { cpu: '1', memory: '3Gi', gpus: 0 }, nodeSelector: { 'kubernetes.io/hostname': nodeName } }],
    };
    const valuesFile = join(c.dir, 'values.yaml');
    writeFileSync(valuesFile, stringify(values));
    const t = Date.now();
    // helm waits for the CRD-upgrade hook Job, which runs the operator image on the node too.
    ok(await sh(join(c.binDir, 'helm'), ['install', release, chartDir, '-n', system, '-f', valuesFile, '--timeout', '10m'], { env: c.env(), timeoutMs: 660_000 }), 'helm install');
    figures.helmInstallMs = Date.now() - t;
    let pod: V1Pod | undefined;
    await waitWith(
      async () => {
        pod = await operatorPod();
        return pod?.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;
      },
      'the operator pod Ready (its /readyz probe passing)',
      300_000,
      system,
    );
    figures.installToOperatorReadyMs = Date.now() - t;
    assert.equal(pod!.spec?.nodeName, nodeName);
    assert.equal(pod!.status?.phase, 'Running');
    const status = pod!.status!.containerStatuses![0]!;
    // The image that runs is the one built here: containerd reports the manifest digest it was imported with.
    assert.ok(status.imageID.endsWith(archives.operator!.digest), `imageID ${status.imageID}, built ${archives.operator!.digest}`);
    const ns = await core.readNamespace({ name: system });
    assert.equal(ns.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
    // The kernel's view from inside the container: the chart's user, no capabilities, a read-only root.
    const probe = await kubectl([
      'exec', '-n', system, pod!.metadata!.name!, '-c', 'operator', '--',
      'sh', '-c', 'echo "uid=$(id -u)"; grep CapEff /proc/self/status; touch /probe 2>/dev/null && echo root=writable || echo root=read-only',
    ]);
    ok(probe, 'kubectl exec into the operator');
    assert.match(probe.stdout, /^uid=65532$/m);
    assert.match(probe.stdout, /^CapEff:\s+0000000000000000$/m);
    assert.match(probe.stdout, /^root=read-only$/m);
  });

  test('/readyz answers through the API server, and the operator holds the Lease', async () => {
    const pod = (await operatorPod())!;
    // The API server's service proxy dials the Service's endpoint: the pod's address inside the node's namespace.
    const ready = await kubectl(['get', '--raw', `/api/v1/namespaces/${system}/services/http:${release}-metrics:metrics/proxy/readyz`]);
    ok(ready, 'GET /readyz through the service proxy');
    const coordination = c.kubeConfig().makeApiClient(CoordinationV1Api);
    let holder: string | undefined;
    await waitWith(
      async () => {
        holder = (await coordination.readNamespacedLease({ namespace: system, name: release })).spec?.holderIdentity ?? undefined;
        return holder === pod.metadata!.name;
      },
      `the Lease ${system}/${release} held by ${pod.metadata!.name}`,
      60_000,
      system,
    );
    const metrics = await kubectl(['get', '--raw', `/api/v1/namespaces/${system}/services/http:${release}-metrics:metrics/proxy/metrics`]);
    ok(metrics, 'GET /metrics');
    assert.match(metrics.stdout, /^leader_election_master_status\{[^}]*\} 1$/m);
  });

  test('the webhook, called by the API server at the pod on the real node, refuses an invalid Experiment naming the field', async () => {
    // Only the webhook asks the platform's validator: the CRD keeps manifest keys it does not declare.
    const bad = experiment(team, 'bad-mutation', className);
    bad.spec.manifest.mutation = { mutation_sdd: 0.2 } as never;
    // failurePolicy is Ignore, so until the configuration is in place and the API server reaches the pod, a
    // create would pass: wait for the first refusal of a server-side dry run, then apply for real.
    let last = '';
    await waitWith(
      async () => {
        const r = await kubectlIn(['apply', '--dry-run=server', '-f', '-'], stringify(bad));
        last = `${r.code}: ${r.stdout}${r.stderr}`;
        return r.code !== 0;
      },
      `the webhook to refuse a dry run (last kubectl answer ${JSON.stringify(last)}; the API server's log names a failed webhook call)`,
      120_000,
      system,
      1000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n--- kube-apiserver ---\n${logTail(c.process('kube-apiserver')!, 15)}`);
    });
    const r = await kubectlIn(['apply', '-f', '-'], stringify(bad));
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /The Experiment "bad-mutation" is invalid: spec\.manifest\.mutation\.mutation_sdd: Extra inputs are not permitted/);
    await assert.rejects(arena.getExperiment(team, 'bad-mutation'), (err: unknown) => toKubeError(err).code === 404);
  });

  test('an AgileRL DQN experiment trains in a runtime container on the real node and reaches Succeeded with checkpoints', async () => {
    await runtimeImport;
    // The checkpoint volume: a local PersistentVolume on this machine, bound to the claim the chart's
    // TrainingCluster names, usable from both real nodes (they run on the same machine, so it is the shared
    // storage, an NFS export's part, that a gang spread over nodes needs). A local volume, unlike a hostPath one,
    // takes the pod's fsGroup, so the worker (uid 1000, fsGroup 1000) can write the folder the kubelet makes for
    // its subPath; the machine reads it afterwards.
    const storage = checkpointStorage();
    mkdirSync(storage, { recursive: true });
    chownSync(storage, 1000, 1000);
    await core.createPersistentVolume({
      body: {
        metadata: { name: 'arena-checkpoints-real-0' },
        spec: {
          capacity: { storage: '10Gi' },
          accessModes: ['ReadWriteMany'],
          persistentVolumeReclaimPolicy: 'Retain',
          storageClassName: '',
          local: { path: storage },
          nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [nodeName, 'real-1'] }] }] } },
        },
      },
    });
    await core.createNamespacedPersistentVolumeClaim({
      namespace: team,
      body: {
        metadata: { name: 'arena-checkpoints' },
        spec: { accessModes: ['ReadWriteMany'], storageClassName: '', volumeName: 'arena-checkpoints-real-0', resources: { requests: { storage: '10Gi' } } },
      },
    });
    const name = 'cartpole';
    const created = Date.now();
    await arena.apply(experiment(team, name, className, { manifest: quickDqn(2000), stopGracePeriodSeconds: 30 }));
    await arena.waitPhase(team, name, 'Running', 180_000).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await diagnose(team)}`);
    });
    figures.experimentCreateToRunningMs = Date.now() - created;

    const watch = watchWorkers(name);
    const done = await arena
      .waitExperiment(team, name, (s) => s.phase === 'Succeeded' || s.phase === 'Failed', 'training to finish', 600_000)
      .catch(async (err: Error) => {
        throw new Error(`${err.message}\n${await diagnose(team)}\nworker log so far:\n${watch.logs.slice(-3000)}`);
      })
      .finally(() => watch.stop());
    await watch.done;
    const { logs } = watch;
    const workerPod = watch.pods.at(-1);
    figures.experimentCreateToSucceededMs = Date.now() - created;
    assert.equal(done.status?.phase, 'Succeeded', `${done.status?.reason}: ${done.status?.message} ${JSON.stringify(done.status?.lastFailure)}\n${await diagnose(team)}`);
    const ckpts = done.status?.checkpoints ?? [];
    assert.ok(ckpts.length >= 2, `a checkpoint per evolution step: ${JSON.stringify(ckpts)}`);
    assert.equal(done.status?.progress?.step, 2000);

    assert.ok(workerPod, 'the worker pod was seen');
    assert.equal(workerPod.spec?.nodeName, nodeName);
    assert.equal(workerPod.spec?.securityContext?.runAsUser, 1000);
    assert.equal(workerPod.spec?.containers[0]?.securityContext?.readOnlyRootFilesystem, true);
    assert.match(workerPod.spec!.containers[0]!.image!, new RegExp(`@${archives.runtime!.digest}$`));
    const started = workerPod.status?.containerStatuses?.[0]?.state?.terminated?.startedAt ?? workerPod.status?.containerStatuses?.[0]?.state?.running?.startedAt;
    // API timestamps, second resolution: the 6.8 GB image is unpacked already, so this is the container's start.
    if (started) figures.workerPodStartLatencyMs = new Date(started).getTime() - new Date(workerPod.metadata!.creationTimestamp!).getTime();
    assert.match(logs, /Starting the trainer/, logs.slice(-3000));
    assert.match(logs, /Checkpoint written/, logs.slice(-3000));

    // The checkpoints are on the volume, written by uid 1000 from inside the container.
    const latest = ckpts.at(-1)!;
    assert.ok(latest.location.startsWith('/checkpoints/'), latest.location);
    const dir = join(storage, latest.location.slice('/checkpoints/'.length));
    const files = readdirSync(dir);
    assert.ok(files.some((f) => f.endsWith('.pt')), `AgileRL's files in ${dir}: ${files.join(', ')}`);
    assert.equal(statSync(dir).uid, 1000, `owner of ${dir}`);
  });

  test('the best checkpoint serves as an agent on the real node, and the platform\'s client plays CartPole through its Service', async () => {
    const agents = new Agents(arena);
    const created = Date.now();
    await agents.create(deployment(team, 'cartpole-agent', 'cartpole', { connected: true, source: { experiment: 'cartpole', checkpoint: 'best' } }));
    const deployed = await agents.waitPhase(team, 'cartpole-agent', 'Deployed', 300_000).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await diagnose(team)}`);
    });
    figures.agentCreateToDeployedMs = Date.now() - created;
    const [serving] = await agents.pods(team, deployed);
    assert.ok(serving, 'an inference pod');
    assert.equal(serving.spec?.nodeName, nodeName);
    assert.equal(serving.spec?.containers[0]?.securityContext?.readOnlyRootFilesystem, true);
    assert.match(serving.spec!.containers[0]!.image!, new RegExp(`@${archives.runtime!.digest}$`));
    const serviceURL = deployed.status!.endpoint!.serviceURL;
    assert.match(serviceURL, new RegExp(`^http://[a-z0-9-]+\\.${team}\\.svc(?:[.:/]|$)`), serviceURL);

    // The platform's Python client, in a pod of the runtime image (it ships agilerl-arena), calls the agent by
    // its Service name: cluster DNS, kube-proxy and the inference server on the real node.
    const client = 'agent-client';
    await core.createNamespacedPod({
      namespace: team,
      body: {
        metadata: { name: client },
        spec: {
          nodeName,
          restartPolicy: 'Never',
          securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'client',
              image: serving.spec!.containers[0]!.image!,
              imagePullPolicy: 'Never',
              command: ['/opt/arena-python/bin/python', '/opt/arena/runtime/serve/play_cartpole.py', '--url', serviceURL, '--episodes', '3', '--seed', '7'],
              env: [{ name: 'ARENA_API_KEY', valueFrom: { secretKeyRef: { name: deployed.status!.apiKeySecretName!, key: 'key' } } }],
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
              resources: { limits: { cpu: '1', memory: '2Gi' } },
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: {} }],
        },
      },
    });
    let phase = '';
    await waitWith(
      async () => {
        phase = (await core.readNamespacedPod({ namespace: team, name: client })).status?.phase ?? '';
        return phase === 'Succeeded' || phase === 'Failed';
      },
      'the client pod to finish',
      300_000,
      team,
    );
    const logs = await kubectl(['logs', '-n', team, client]);
    assert.equal(phase, 'Succeeded', `${logs.stdout}${logs.stderr}`);
    const result = JSON.parse(logs.stdout.trim().split('\n').at(-1)!) as { policy: string; episodes: number; lengths: number[]; requests: number; mean_length: number };
    console.log(`# agent on the real node: ${JSON.stringify(result)}`);
    assert.equal(result.policy, 'served');
    assert.equal(result.lengths.length, 3);
    assert.ok(result.requests >= Math.max(...result.lengths), `one batched request per step: ${JSON.stringify(result)}`);
  });

  test('a killed worker container is retried from the last checkpoint; Stop then ends the run with a final checkpoint', async () => {
    const name = 'long';
    await arena.apply(experiment(team, name, className, { manifest: quickDqn(200_000), maxRetries: 2, stopGracePeriodSeconds: 30 }));
    const watch = watchWorkers(name);
    try {
      const running = await arena.waitExperiment(team, name, (s) => s.phase === 'Running' && (s.checkpoints?.length ?? 0) >= 1, 'a checkpoint on attempt 1', 240_000);
      const last = running.status!.latestCheckpoint!.step;
      const victim = (await arena.workerPods(team, running)).find((p) => p.status?.phase === 'Running');
      const containerId = victim?.status?.containerStatuses?.[0]?.containerID;
      assert.ok(containerId, `a running worker container: ${JSON.stringify(victim?.status)}`);
      const killed = Date.now();
      await node.killContainer(containerId);
      const retried = await arena.waitExperiment(team, name, (s) => s.attempt === 2 && s.phase === 'Running', 'attempt 2 Running after the kill', 180_000);
      figures.killToRetryRunningMs = Date.now() - killed;
      const failure = retried.status!.lastFailure!;
      assert.equal(failure.reason, 'WorkerFailed', JSON.stringify(failure));
      assert.match(failure.message, /exit code 137/);
      const second = (await arena.workerPods(team, retried)).find((p) => p.metadata?.labels?.['arena.agilerl.com/attempt'] === '2');
      const env = Object.fromEntries((second?.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
      const resumeStep = Number(env.ARENA_RESUME_STEP);
      assert.ok(resumeStep >= last, `attempt 2 resumes from step ${env.ARENA_RESUME_STEP} (${env.ARENA_RESUME_FROM}), the latest checkpoint before the kill was ${last}`);
      await arena.waitExperiment(team, name, (s) => (s.checkpoints ?? []).some((c) => c.step > resumeStep), `a checkpoint past step ${resumeStep}`, 240_000);

      const stopAsked = Date.now();
      await arena.patchExperiment(team, name, { action: 'Stop' });
      const stopped = await arena.waitExperiment(team, name, (s) => s.phase === 'Stopped' || s.phase === 'Failed', 'Stopped', 120_000);
      figures.stopToStoppedMs = Date.now() - stopAsked;
      assert.equal(stopped.status?.phase, 'Stopped', `${stopped.status?.reason}: ${stopped.status?.message}\nworker log:\n${watch.logs.slice(-3000)}`);
      const final = stopped.status!.latestCheckpoint!;
      assert.match(final.location, /-final$/, 'the last checkpoint is the final one, written on the stop');
      assert.ok(readdirSync(join(checkpointStorage(), final.location.slice('/checkpoints/'.length))).some((f) => f.endsWith('.pt')));
      assert.match(watch.logs, /Stop requested: asking the trainer for a final checkpoint/);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await diagnose(team)}\nworker log:\n${watch.logs.slice(-2000)}`);
    } finally {
      watch.stop();
      await watch.done;
    }
  });

  test('a two-worker gang on two real nodes rendezvouses through its headless Service name', async () => {
    // A second node, with the runtime image, joined to the first (each node's pods reach the other's).
    let t = Date.now();
    const second = await RealNode.start({ cluster: c, name: 'real-1', labels: workerLabel });
    extraNodes.push(second);
    figures.secondNodeStartMs = Date.now() - t;
    figures.secondNodeRuntimeImportMs = await second.importOciArchive(archives.runtime!.path, archives.runtime!.reference);
    // A trainer of the image's user's own (runtime/PROTOCOL.md: ARENA_TRAINER_COMMAND), since AgileRL's classic RL
    // trains in one process: torch.distributed over gloo, rendezvous at MASTER_ADDR (rank 0 by the gang's
    // headless Service name), one all-reduce, then rank 0 writes a checkpoint. It sits in the experiment's own
    // checkpoint folder, the only part of the volume its workers mount.
    const name = 'gang';
    const folder = join(checkpointStorage(), team, name);
    mkdirSync(folder, { recursive: true });
    chownSync(folder, 1000, 1000);
    writeFileSync(join(folder, 'rendezvous.py'), rendezvousTrainer);
    const trainer = JSON.stringify(['/opt/arena-python/bin/python', `/checkpoints/${team}/${name}/rendezvous.py`]);
    const tc = (patch: unknown) => kubectl(['patch', 'trainingclusters.arena.agilerl.com', 'onprem', '--type', 'merge', '-p', JSON.stringify(patch)]);
    ok(await tc({ spec: { setupBundle: { runtimeCommand: ['sh', '-c', `export ARENA_TRAINER_COMMAND='${trainer}'; exec arena-runtime train`] } } }), 'set the runtime command');
    try {
      await arena.apply(resourceClass('real-gang', 'onprem', { nodes: 2, worker: { cpu: '500m', memory: '2Gi', gpus: 0 }, nodeSelector: workerLabel }));
      t = Date.now();
      await arena.apply(experiment(team, name, 'real-gang', { manifest: quickDqn(2000), maxRetries: 0 }));
      const watch = watchWorkers(name);
      const done = await arena
        .waitExperiment(team, name, (s) => s.phase === 'Succeeded' || s.phase === 'Failed', 'the gang to finish', 300_000)
        .catch(async (err: Error) => {
          throw new Error(`${err.message}\n${await diagnose(team)}\nlogs: ${JSON.stringify([...watch.logsByPod])}`);
        })
        .finally(() => watch.stop());
      await watch.done;
      figures.gangCreateToSucceededMs = Date.now() - t;
      assert.equal(done.status?.phase, 'Succeeded', `${done.status?.reason}: ${done.status?.message} ${JSON.stringify(done.status?.lastFailure)}\n${await diagnose(team)}`);
      // Each rank's own log line: it reached the other through the Service name and summed both ranks (1 + 2).
      const placed = new Map(watch.pods.map((p) => [p.metadata!.labels!['arena.agilerl.com/rank']!, p.spec!.nodeName!]));
      assert.deepEqual(new Set(placed.keys()), new Set(['0', '1']), `both ranks seen: ${JSON.stringify([...placed])}`);
      assert.deepEqual(new Set(placed.values()), new Set([nodeName, 'real-1']), `one rank per node: ${JSON.stringify([...placed])}`);
      // What each rank saw, written to the shared volume: the master by the gang's headless Service name, and
      // the sum of both ranks (1 + 2), so each reached the other. The pod logs say the same where the poll caught
      // them before the operator removed the finished pods.
      const seen = ['0', '1'].map((r) => JSON.parse(readFileSync(join(folder, `rendezvous-rank-${r}.json`), 'utf8')) as { rank: number; world: number; master: string; node: string; all_reduce: number });
      for (const r of seen) {
        assert.equal(r.world, 2);
        assert.equal(r.all_reduce, 3);
        assert.match(r.master, new RegExp(`^w0\\.[a-z0-9-]+\\.${team}\\.svc$`));
        assert.equal(r.node, placed.get(String(r.rank)));
      }
      console.log(`# gang rendezvous: ${JSON.stringify(seen)}`);
      for (const p of watch.pods) {
        const log = watch.logsByPod.get(p.metadata!.name!);
        const rank = p.metadata!.labels!['arena.agilerl.com/rank']!;
        if (log) assert.match(log, new RegExp(`rendezvous: rank ${rank} of 2 at w0\\.[a-z0-9-]+\\.${team}\\.svc:\\d+, all_reduce 3\\.0`), log.slice(-2000));
      }
      assert.equal(done.status?.latestCheckpoint?.step, 1);
    } finally {
      ok(await tc({ spec: { setupBundle: { runtimeCommand: null } } }), 'restore the runtime command');
    }
  });

  test('a worker over its memory limit is OOMKilled by the kernel, and the experiment says so', async () => {
    await arena.apply(resourceClass('real-small', 'onprem', { nodes: 1, worker: { cpu: '1', memory: '256Mi', gpus: 0 }, nodeSelector: { 'kubernetes.io/hostname': nodeName } }));
    const name = 'too-big';
    await arena.apply(experiment(team, name, 'real-small', { manifest: quickDqn(2000), maxRetries: 0 }));
    const watch = watchWorkers(name);
    const failed = await arena
      .waitExperiment(team, name, (s) => s.phase === 'Failed' || s.phase === 'Succeeded', 'the run to fail', 240_000)
      .catch(async (err: Error) => {
        throw new Error(`${err.message}\n${await diagnose(team)}\nworker log:\n${watch.logs.slice(-2000)}`);
      })
      .finally(() => watch.stop());
    await watch.done;
    // The operator removes a failed attempt's pods at once, so the container's own state is shown when seen.
    const term = watch.pods.at(-1)?.status?.containerStatuses?.[0]?.state?.terminated;
    console.log(`# OOM: container ${term ? JSON.stringify(term) : '(removed before seen)'}; experiment ${JSON.stringify(failed.status?.lastFailure)}`);
    assert.equal(failed.status?.phase, 'Failed');
    // The runtime read its cgroup's OOM-kill count: the kernel's word, not a guess from the signal.
    const failure = failed.status!.lastFailure!;
    assert.equal(failure.reason, 'OOMKilled', JSON.stringify(failure));
    assert.match(failure.message, /out-of-memory killer: the worker went over its memory limit of 256 MiB/);
    assert.match(failed.status!.message!, /out-of-memory killer/);
  });
});
