import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Deployment } from '../../api/v1alpha1/deployment.ts';
import type { Experiment, ExperimentCheckpoint } from '../../api/v1alpha1/experiment.ts';
import type { AlgorithmName } from '../../api/v1alpha1/manifest.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';
import {
  agentLabels,
  apiKeySecret,
  checkpointPath,
  desiredRoute,
  endpointFor,
  inferenceWorkload,
  newDeploymentId,
  podResources,
  serveCommand,
  type WorkloadInput,
} from './objects.ts';
import { podView, serveFailureReason, startFailureOf, type InferencePod } from './pods.ts';
import { sourceState } from './source.ts';

const now = new Date('2026-11-23T10:00:00Z');

function agent(spec: Partial<Deployment['spec']> = {}, status: Deployment['status'] = {}): Deployment {
  return {
    apiVersion: 'arena.agilerl.com/v1alpha1',
    kind: 'Deployment',
    metadata: { name: 'cartpole-agent', namespace: 'team', uid: '0f1e2d3c-aaaa-bbbb-cccc-000000000001', generation: 1 },
    spec: { source: { experiment: 'exp', checkpoint: 'best' }, ...spec },
    status,
  };
}

function cluster(spec: Partial<TrainingCluster['spec']> = {}): TrainingCluster {
  return {
    metadata: { name: 'onprem' },
    spec: {
      setupBundle: { version: '1.0.0', images: { runtime: 'ghcr.io/agilerl/arena-runtime:1.0.0' } },
      checkpointStorage: { mountPath: '/checkpoints', persistentVolumeClaim: { claimName: 'ckpt' } },
      ...spec,
    },
  } as TrainingCluster;
}

function input(more: Partial<WorkloadInput> = {}): WorkloadInput {
  return {
    deployment: agent(),
    deploymentId: 'cartpole-agent-0f1e2d3c',
    cluster: cluster(),
    algorithm: 'DQN',
    checkpointLocation: '/checkpoints/team/exp/run-1/step-3000.json',
    apiKey: { name: 'cartpole-agent-api-key-0' },
    replicas: 2,
    ...more,
  };
}

const container = (w: ReturnType<typeof inferenceWorkload>) => w.workload.spec!.template.spec!.containers[0]!;

describe('inference workload', () => {
  test('runs arena-runtime serve from the runtime image with the checkpoint, manifest and key mounted read-only', () => {
    const w = inferenceWorkload(input());
    const c = container(w);
    assert.equal(c.image, 'ghcr.io/agilerl/arena-runtime:1.0.0');
    assert.deepEqual(c.command, ['arena-runtime', 'serve']);
    assert.deepEqual(c.args, ['--port', '8000', '--host', '0.0.0.0']);
    const env = Object.fromEntries(c.env!.map((e) => [e.name, e.value]));
    assert.equal(env.ARENA_CHECKPOINT, '/checkpoints/team/exp/run-1/step-3000.json');
    assert.equal(env.ARENA_MANIFEST, '/etc/arena/manifest.json');
    assert.equal(env.ARENA_API_KEY_FILE, '/var/run/arena/api-key/key');
    assert.equal(env.ARENA_DEPLOYMENT_ID, 'cartpole-agent-0f1e2d3c');
    for (const m of c.volumeMounts!) if (m.name !== 'tmp') assert.equal(m.readOnly, true, `${m.name} is read-only`);
    const vols = Object.fromEntries(w.workload.spec!.template.spec!.volumes!.map((v) => [v.name, v]));
    assert.equal(vols['api-key']!.secret!.secretName, 'cartpole-agent-api-key-0');
    assert.equal(vols.checkpoints!.persistentVolumeClaim!.claimName, 'ckpt');
    assert.equal(vols.checkpoints!.persistentVolumeClaim!.readOnly, true);
    assert.equal(c.readinessProbe!.httpGet!.path, '/readyz');
    assert.equal(c.terminationMessagePolicy, 'FallbackToLogsOnError');
    assert.equal(w.workload.spec!.replicas, 2);
    assert.equal(w.workload.spec!.strategy!.type, 'Recreate');
    assert.equal(w.workload.metadata!.ownerReferences![0]!.kind, 'Deployment');
    assert.equal(w.workload.metadata!.ownerReferences![0]!.apiVersion, 'arena.agilerl.com/v1alpha1');
    assert.equal(w.workload.spec!.template.metadata!.labels![agentLabels.templateHash], w.templateHash);
  });

  test('a new key (another Secret uid), checkpoint or image changes the pod template; replicas do not', () => {
    const base = inferenceWorkload(input());
    assert.notEqual(inferenceWorkload(input({ apiKey: { name: 'cartpole-agent-api-key-1' } })).templateHash, base.templateHash);
    assert.notEqual(inferenceWorkload(input({ checkpointLocation: 'run-1/step-6000.json' })).templateHash, base.templateHash);
    assert.notEqual(inferenceWorkload(input({ cluster: cluster({ setupBundle: { version: '1.1.0', images: { runtime: 'r:1.1.0' } } }) })).templateHash, base.templateHash);
    const scaled = inferenceWorkload(input({ replicas: 3 }));
    assert.equal(scaled.templateHash, base.templateHash);
    assert.notEqual(scaled.specHash, base.specHash);
    assert.equal(inferenceWorkload(input()).specHash, base.specHash, 'the same input gives the same hashes');
  });

  const resources: { algorithm: AlgorithmName; spec?: Deployment['spec']['resources']; want: { cpu: string; memory: string; gpus: number } }[] = [
    { algorithm: 'DQN', want: { cpu: '500m', memory: '1536Mi', gpus: 0 } },
    { algorithm: 'MATD3', want: { cpu: '500m', memory: '2Gi', gpus: 0 } },
    { algorithm: 'NeuralUCB', want: { cpu: '500m', memory: '1536Mi', gpus: 0 } },
    { algorithm: 'GRPO', want: { cpu: '4', memory: '32Gi', gpus: 1 } },
    { algorithm: 'GRPO', spec: { gpus: 2, memory: '80Gi' }, want: { cpu: '4', memory: '80Gi', gpus: 2 } },
    { algorithm: 'PPO', spec: { cpu: 2 }, want: { cpu: '2', memory: '1536Mi', gpus: 0 } },
  ];
  for (const r of resources) {
    test(`resources for ${r.algorithm}${r.spec ? ` with ${JSON.stringify(r.spec)}` : ''}`, () => assert.deepEqual(podResources(r.algorithm, r.spec), r.want));
  }

  test('an LLM pod requests its GPU, tolerates the GPU taint and uses the nvidia runtime class', () => {
    const w = inferenceWorkload(input({ algorithm: 'SFT' }));
    const spec = w.workload.spec!.template.spec!;
    assert.equal(container(w).resources!.limits!['nvidia.com/gpu'], '1');
    assert.equal(container(w).resources!.limits!.cpu, undefined, 'no CPU limit');
    assert.equal(spec.runtimeClassName, 'nvidia');
    assert.deepEqual(spec.tolerations, [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    const cpuOnly = inferenceWorkload(input()).workload.spec!.template.spec!;
    assert.equal(cpuOnly.runtimeClassName, undefined);
    assert.equal(cpuOnly.tolerations, undefined);
  });

  test('the bind address can be the pod IP, for nodes without pod networks', () => {
    assert.deepEqual(container(inferenceWorkload(input({ bindHost: '$(POD_IP)' }))).args, ['--port', '8000', '--host', '$(POD_IP)']);
  });

  test('serve is launched the way train is', () => {
    assert.deepEqual(serveCommand(cluster({ setupBundle: { version: '1.0.0', images: { runtime: 'r' }, runtimeCommand: ['/opt/arena/bin/arena-runtime', 'train'] } })), ['/opt/arena/bin/arena-runtime', 'serve']);
    assert.deepEqual(serveCommand(cluster({ setupBundle: { version: '1.0.0', images: { runtime: 'r' }, runtimeCommand: ['python', '-m', 'x'] } })), ['arena-runtime', 'serve']);
  });

  test('checkpoint locations are pod paths, or relative to the storage root', () => {
    assert.equal(checkpointPath('/checkpoints/a/step-1.json', '/checkpoints'), '/checkpoints/a/step-1.json');
    assert.equal(checkpointPath('run-1/step-1.json', '/data/'), '/data/run-1/step-1.json');
  });
});

describe('agent objects', () => {
  test('the deployment id is a stable DNS label that fits the host label', () => {
    const long = agent();
    long.metadata!.name = 'a'.repeat(200);
    for (const d of [agent(), long]) {
      const id = newDeploymentId(d);
      assert.match(id, /^[a-z][a-z0-9-]*[a-z0-9]$/);
      assert.ok(`inference-${id}`.length <= 63, id);
      assert.equal(newDeploymentId(d), id);
    }
    assert.equal(newDeploymentId(agent()), 'cartpole-agent-0f1e2d3c');
  });

  test('one immutable Secret per key rotation, owned by the agent', () => {
    const s = apiKeySecret(agent(), 3, 'k');
    assert.equal(s.metadata!.name, 'cartpole-agent-api-key-3');
    assert.equal(s.immutable, true);
    assert.equal(s.metadata!.ownerReferences![0]!.uid, agent().metadata!.uid);
  });

  test('no exposure without a domain; an Ingress with a class; an HTTPRoute with a gateway', () => {
    assert.equal(desiredRoute(agent(), 'id1', cluster()), undefined);
    const ing = desiredRoute(agent(), 'id1', cluster({ exposure: { domain: 'ai.example.com', ingressClassName: 'nginx' } }))!;
    assert.equal(ing.kind, 'Ingress');
    assert.equal(ing.host, 'inference-id1.ai.example.com');
    const rule = (ing.object as { spec: { ingressClassName: string; rules: { host: string; http: { paths: { backend: { service: { name: string } } }[] } }[] } }).spec;
    assert.equal(rule.ingressClassName, 'nginx');
    assert.equal(rule.rules[0]!.host, 'inference-id1.ai.example.com');
    assert.equal(rule.rules[0]!.http.paths[0]!.backend.service.name, 'cartpole-agent-inference');
    const gw = desiredRoute(agent(), 'id1', cluster({ exposure: { domain: 'ai.example.com', gateway: { parentRefs: [{ name: 'public', namespace: 'gw' }] } } }))!;
    assert.equal(gw.kind, 'HTTPRoute');
    assert.equal(gw.object.apiVersion, 'gateway.networking.k8s.io/v1');
    assert.deepEqual((gw.object.spec as { parentRefs: unknown; hostnames: unknown }).parentRefs, [{ name: 'public', namespace: 'gw' }]);
    assert.deepEqual((gw.object.spec as { hostnames: unknown }).hostnames, ['inference-id1.ai.example.com']);
  });

  test('the endpoint follows the algorithm family', () => {
    const e = (a: AlgorithmName) => endpointFor(agent(), a, undefined);
    assert.equal(e('DQN').inferencePath, 'get_action');
    assert.equal(e('MADDPG').inferencePath, 'get_action');
    assert.equal(e('CQN').inferencePath, 'get_action');
    assert.equal(e('NeuralTS').inferencePath, 'get_action');
    assert.equal(e('DPO').inferencePath, 'generate');
    assert.deepEqual(e('GRPO').paths, ['/status', '/generate', '/generate_stream', '/sessions']);
    assert.equal(e('DQN').serviceURL, 'http://cartpole-agent-inference.team.svc');
    assert.equal(e('DQN').url, undefined);
    assert.equal(endpointFor(agent(), 'DQN', 'inference-x.ai.example.com').url, 'https://inference-x.ai.example.com');
  });
});

describe('checkpoint source', () => {
  const ck = (step: number, evaluationScore?: number): ExperimentCheckpoint => ({
    run: 1,
    step,
    sizeBytes: 10,
    location: `/checkpoints/team/exp/run-1/step-${step}.json`,
    createdAt: '2026-11-23T09:00:00Z',
    ...(evaluationScore !== undefined ? { evaluationScore, trainingScore: evaluationScore - 5 } : {}),
  });
  const exp = (checkpoints: ExperimentCheckpoint[]) => ({ metadata: { name: 'exp', namespace: 'team' }, spec: {}, status: { checkpoints } }) as unknown as Experiment;
  const three = exp([ck(1000, 20), ck(2000, 180), ck(3000, 90)]);

  const cases: { name: string; spec: Deployment['spec']['source']; experiment?: Experiment; frozen?: NonNullable<Deployment['status']>['checkpoint']; want: number | string }[] = [
    { name: 'best is the highest evaluation score', spec: { experiment: 'exp', checkpoint: 'best' }, experiment: three, want: 2000 },
    { name: 'final is the most steps', spec: { experiment: 'exp', checkpoint: 'final' }, experiment: three, want: 3000 },
    { name: 'specific is the named step', spec: { experiment: 'exp', checkpoint: 'specific', step: 1000 }, experiment: three, want: 1000 },
    { name: 'a missing experiment', spec: { experiment: 'exp' }, want: 'SourceNotFound' },
    { name: 'an experiment without checkpoints', spec: { experiment: 'exp' }, experiment: exp([]), want: 'NoCheckpoints' },
    { name: 'a step it does not have', spec: { experiment: 'exp', checkpoint: 'specific', step: 1500 }, experiment: three, want: 'CheckpointNotFound' },
    {
      name: 'a frozen checkpoint stays although a better one was written since',
      spec: { experiment: 'exp', checkpoint: 'best' },
      experiment: exp([ck(1000, 20), ck(2000, 180), ck(9000, 500)]),
      frozen: { experiment: 'exp', step: 2000, location: 'x', resolvedAt: '2026-11-23T09:30:00Z' },
      want: 2000,
    },
    {
      name: 'a frozen checkpoint stays after its experiment is deleted',
      spec: { experiment: 'exp', checkpoint: 'final' },
      frozen: { experiment: 'exp', step: 3000, location: 'x', resolvedAt: '2026-11-23T09:30:00Z' },
      want: 3000,
    },
    {
      name: 'a source naming another specific step is resolved again',
      spec: { experiment: 'exp', checkpoint: 'specific', step: 3000 },
      experiment: three,
      frozen: { experiment: 'exp', step: 2000, location: 'x', resolvedAt: '2026-11-23T09:30:00Z' },
      want: 3000,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const s = sourceState(agent({ source: c.spec }, c.frozen ? { checkpoint: c.frozen } : {}), c.experiment, now);
      if (typeof c.want === 'number') {
        assert.ok(s.ok, JSON.stringify(s));
        assert.equal(s.checkpoint.step, c.want);
        assert.equal(s.fresh, c.frozen === undefined || c.frozen.step !== c.want);
      } else {
        assert.ok(!s.ok);
        assert.equal(s.reason, c.want);
        assert.ok(s.message.length > 10);
      }
    });
  }

  test('a fresh choice records the scores, location and time', () => {
    const s = sourceState(agent(), three, now);
    assert.ok(s.ok);
    assert.deepEqual(s.checkpoint, { experiment: 'exp', step: 2000, trainingScore: 175, evaluationScore: 180, location: '/checkpoints/team/exp/run-1/step-2000.json', resolvedAt: '2026-11-23T10:00:00Z' });
  });
});

describe('inference pods', () => {
  const cannotServe = JSON.stringify({ timestamp: 't', level: 'error', msg: 'Cannot serve', component: 'arena-serve', reason: 'the checkpoint /c/s.json cannot be loaded: Unexpected token' });
  const cases: { name: string; message?: string; exitCode: number; want?: string; reason?: string }[] = [
    { name: 'the log-tail fallback carries the reason as a JSON line', message: `{"msg":"starting"}\n${cannotServe}\n`, exitCode: 1, want: 'the checkpoint /c/s.json cannot be loaded: Unexpected token', reason: 'CheckpointLoadFailed' },
    { name: 'the termination log holds the plain reason', message: 'the checkpoint /c/s.json cannot be loaded: ENOENT', exitCode: 1, want: 'the checkpoint /c/s.json cannot be loaded: ENOENT', reason: 'CheckpointLoadFailed' },
    {
      name: "the model process killed by the OOM killer while loading (the runtime read the cgroup's count)",
      message: "the checkpoint /c/s cannot be loaded: the model process was killed by the kernel's out-of-memory killer: the pod went over its memory limit of 512 MiB; raise the Deployment's spec.resources.memory",
      exitCode: 1,
      reason: 'OOMKilled',
    },
    { name: 'settings the server refuses (exit 2)', message: 'no checkpoint: give --checkpoint (ARENA_CHECKPOINT)', exitCode: 2, reason: 'ServeRefused' },
    { name: 'a port that cannot be bound', message: JSON.stringify({ msg: 'Cannot serve', reason: 'cannot listen on 0.0.0.0:8000: EADDRINUSE' }), exitCode: 1, reason: 'InferenceServerFailed' },
    { name: 'a crash while serving (a log tail without the line) is not a refusal', message: '{"msg":"Serving"}\n{"msg":"request"}', exitCode: 1 },
    { name: 'a stack trace is not a refusal', message: 'TypeError: x is undefined\n    at f (/app/a.js:1:1)', exitCode: 1 },
    { name: 'a kill is not a refusal', message: cannotServe, exitCode: 137 },
    { name: 'no message', exitCode: 1 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const f = startFailureOf({ exitCode: c.exitCode, ...(c.message !== undefined ? { message: c.message } : {}) });
      assert.equal(f?.reason, c.reason);
      if (c.want) assert.equal(f?.message, c.want);
      if (c.want) assert.equal(serveFailureReason(c.message), c.want);
    });
  }

  test('a pod view: current template, readiness, address, the refusal from the last run', () => {
    const p: InferencePod = {
      metadata: { name: 'p', namespace: 'team', labels: { [agentLabels.templateHash]: 'h1' }, creationTimestamp: '2026-11-23T09:59:00Z' },
      spec: { nodeName: 'n' },
      status: {
        phase: 'Running',
        podIP: '127.200.0.9',
        conditions: [{ type: 'Ready', status: 'False' }],
        containerStatuses: [{ name: 'inference', ready: false, restartCount: 1, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 1, message: cannotServe } } }],
      },
    };
    const v = podView(p, 'h1');
    assert.equal(v.current, true);
    assert.equal(v.ready, false);
    assert.equal(v.ip, '127.200.0.9');
    assert.equal(v.startFailure?.reason, 'CheckpointLoadFailed');
    assert.equal(podView(p, 'h2').current, false);
  });
});
