import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { REPORT_CA_DIR, REPORT_CA_FILE, annotations, names, runObjects, runtimeStopGraceSeconds, shortName, stopPlanSeconds, uidTag, workerPods } from './workers.ts';
import { LEAN_POD_ANNOTATIONS, leanPod } from '../../kube/informer.ts';
import { blockerFor, listErrors, MAX_LISTED_ERRORS_CHARS } from './gating.ts';
import { resolveCheckpoint } from './checkpoints.ts';
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../../api/v1alpha1/trainingcluster.ts';

const exp = (name = 'cartpole', spec: Partial<Experiment['spec']> = {}): Experiment => ({
  apiVersion: 'arena.agilerl.com/v1alpha1',
  kind: 'Experiment',
  metadata: { name, namespace: 'ml', uid: 'uid-1', generation: 1 },
  spec: {
    action: 'Train',
    resourceClass: 'a100',
    stopGracePeriodSeconds: 60,
    manifest: { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } },
    ...spec,
  },
});
const cls = (worker: ResourceClass['spec']['worker'] = { cpu: '8', memory: '64Gi', gpus: 2 }, more: Partial<ResourceClass['spec']> = {}): ResourceClass => ({
  metadata: { name: 'a100' },
  spec: { trainingCluster: 'tc', nodes: 2, worker, ...more },
});
const cluster = (spec: Partial<TrainingCluster['spec']> = {}): TrainingCluster => ({
  metadata: { name: 'tc' },
  spec: {
    setupBundle: { version: '1.2.0', images: { runtime: 'registry.local/arena-runtime:1.2.0' } },
    checkpointStorage: { mountPath: '/ckpt', persistentVolumeClaim: { claimName: 'shared' } },
    ...spec,
  },
});

describe('worker pods', () => {
  const pods = workerPods({ experiment: exp(), cls: cls(), cluster: cluster(), attempt: { run: 1, attempt: 2 }, nodes: ['n1', 'n2'], reportUrl: 'http://op:8080', resumeFrom: { location: 'run-1/step-9.json', step: 9 } });
  const env = (i: number) => Object.fromEntries((pods[i]!.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

  test('one pod per planned node, pinned to it, with distinct ranks and deterministic names', () => {
    assert.deepEqual(
      pods.map((p) => p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]?.matchFields?.[0]?.values),
      [['n1'], ['n2']],
    );
    const tag = uidTag(exp());
    assert.deepEqual(pods.map((p) => p.metadata?.name), [`cartpole-${tag}-r1a2-0`, `cartpole-${tag}-r1a2-1`]);
    assert.deepEqual(pods.map((p) => env(pods.indexOf(p)).RANK), ['0', '1']);
  });

  test('every pod carries the whole gang\'s plan, and the pod cache keeps it', () => {
    for (const p of pods) assert.equal(p.metadata?.annotations?.[annotations.gangNodes], 'n1,n2');
    assert.ok(LEAN_POD_ANNOTATIONS.includes(annotations.gangNodes));
    assert.deepEqual(leanPod(pods[0]!).metadata.annotations, { [annotations.gangNodes]: 'n1,n2' }, 'only the plan, not the other annotations');
  });

  test('the distributed-training environment and the runtime configuration', () => {
    const e = env(1);
    assert.equal(e.WORLD_SIZE, '2');
    assert.equal(e.MASTER_ADDR, `w0.${names(exp(), { run: 1, attempt: 2 }).service}.ml.svc`);
    assert.equal(e.MASTER_PORT, '29500');
    assert.equal(e.NCCL_PORT_RANGE, '29400-29500');
    // torchrun's rendezvous for AgileRL's LLM path: the gang's pods are its nodes, the worker's GPUs its processes.
    assert.deepEqual([e.NNODES, e.NODE_RANK, e.NPROC_PER_NODE], ['2', '1', '2']);
    assert.equal(e.ARENA_RESUME_FROM, 'run-1/step-9.json');
    assert.equal(e.ARENA_CHECKPOINT_DIR, '/ckpt/ml/cartpole');
    assert.equal(e.ARENA_RUN_TOKEN_FILE, '/var/run/arena/run-token/token');
    assert.equal(e.ARENA_RUN_TOKEN, undefined, 'not in the environment, where a re-issued token could not reach the pod');
    assert.equal(e.ARENA_STOP_GRACE_SECONDS, '55', 'the runtime stops inside the pod\'s 60 s grace');
  });

  test('the runtime\'s stop budget keeps most of a short grace period for the final checkpoint', () => {
    const budgets = [1, 2, 5, 10, 30, 120].map((grace) => [grace, runtimeStopGraceSeconds(grace)]);
    assert.deepEqual(budgets, [[1, 1], [2, 1], [5, 4], [10, 8], [30, 25], [120, 115]]);
  });

  test('a preemption deadline shorter than the pod\'s grace is what the runtime plans its stop for', () => {
    const stopPlan = (preemptionDeadlineSeconds?: number) => {
      const [pod] = workerPods({ experiment: exp(), cls: cls(), cluster: cluster(), attempt: { run: 1, attempt: 1 }, nodes: ['n1'], reportUrl: 'http://op:8080', preemptionDeadlineSeconds });
      return [pod!.spec!.terminationGracePeriodSeconds, pod!.spec!.containers[0]!.env!.find((e) => e.name === 'ARENA_STOP_GRACE_SECONDS')?.value];
    };
    // The pod keeps its own 60 s grace (a user's Stop still gets it from the kubelet); the runtime fits the shorter.
    assert.deepEqual(stopPlan(undefined), [60, '55'], 'no preemption');
    assert.deepEqual(stopPlan(20), [60, '16'], 'a 20 s preemption deadline');
    assert.deepEqual(stopPlan(120), [60, '55'], 'a preemption deadline above the grace is cut to it anyway');
    assert.deepEqual([stopPlanSeconds(60, 20), stopPlanSeconds(60), stopPlanSeconds(10, 30)], [20, 60, 10]);
  });

  test('each worker mounts the manifest and only its own token from the attempt\'s Secret', () => {
    const secret = names(exp(), { run: 1, attempt: 2 }).secret;
    for (const [rank, p] of pods.entries()) {
      const v = p.spec!.volumes!.find((x) => x.name === 'run-token')!;
      assert.deepEqual(v.secret, { secretName: secret, items: [{ key: `worker-${rank}`, path: 'token' }], defaultMode: 0o440 });
      assert.deepEqual(p.spec!.containers[0]!.volumeMounts!.find((m) => m.name === 'run-token'), { name: 'run-token', mountPath: '/var/run/arena/run-token', readOnly: true });
      const manifest = p.spec!.volumes!.find((x) => x.name === 'manifest')!;
      assert.deepEqual(manifest.secret, { secretName: secret, items: [{ key: 'manifest.json', path: 'manifest.json' }], defaultMode: 0o444 }, 'the manifest, and none of the tokens');
      assert.deepEqual(p.spec!.containers[0]!.volumeMounts!.find((m) => m.name === 'manifest'), { name: 'manifest', mountPath: '/etc/arena', readOnly: true });
      assert.equal(p.spec!.containers[0]!.env!.find((e) => e.name === 'ARENA_MANIFEST')?.value, '/etc/arena/manifest.json');
    }
  });

  test('an experiment created again under the same name gets objects of its own', () => {
    const again = exp();
    again.metadata!.uid = 'uid-2';
    const a = { run: 1, attempt: 1 };
    const [first, second] = [names(exp(), a), names(again, a)];
    for (const k of ['service', 'secret'] as const) assert.notEqual(first[k], second[k], k);
    assert.notEqual(first.pod(0), second.pod(0));
    assert.equal(first.service, names(exp(), { run: 1, attempt: 2 }).service, 'one Service for every attempt of a run');
    assert.notEqual(first.secret, names(exp(), { run: 1, attempt: 2 }).secret, 'a token Secret per attempt');
    assert.ok(first.service.length <= 63);
  });

  test('requests and limits from the class, the GPU RuntimeClass and toleration, a locked-down security context', () => {
    const spec = pods[0]!.spec!;
    const c = spec.containers[0]!;
    assert.deepEqual(c.resources?.requests, { cpu: '8', memory: '64Gi', 'nvidia.com/gpu': '2' });
    assert.deepEqual(c.resources?.limits, c.resources?.requests);
    assert.equal(spec.runtimeClassName, 'nvidia');
    assert.deepEqual(spec.tolerations, [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    assert.equal(spec.securityContext?.runAsNonRoot, true);
    assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL']);
    assert.equal(spec.restartPolicy, 'Never');
    assert.equal(spec.terminationGracePeriodSeconds, 60);
    assert.equal(spec.volumes?.find((v) => v.name === 'checkpoints')?.persistentVolumeClaim?.claimName, 'shared');
    assert.equal(c.image, 'registry.local/arena-runtime:1.2.0');
    assert.deepEqual(c.command, ['arena-runtime', 'train']);
    assert.equal(pods[0]!.metadata?.ownerReferences?.[0]?.controller, true);
  });

  test('a worker mounts its own experiment\'s checkpoint folder, the namespace\'s shared models and datasets and a resume source\'s read-only, never the whole storage', () => {
    const mountsOf = (e: Experiment, storage: TrainingCluster['spec']['checkpointStorage']) =>
      workerPods({ experiment: e, cls: cls(), cluster: cluster({ checkpointStorage: storage }), attempt: { run: 1, attempt: 1 }, nodes: ['n'], reportUrl: 'http://op' })[0]!.spec!.containers[0]!.volumeMounts!.filter(
        (m) => m.name === 'checkpoints',
      );
    for (const storage of [{ mountPath: '/ckpt', persistentVolumeClaim: { claimName: 'shared' } }, { mountPath: '/ckpt', hostPath: { path: '/srv/arena' } }]) {
      const shared = { name: 'checkpoints', mountPath: '/ckpt/ml/_shared', subPath: 'ml/_shared', readOnly: true };
      assert.deepEqual(mountsOf(exp(), storage), [{ name: 'checkpoints', mountPath: '/ckpt/ml/cartpole', subPath: 'ml/cartpole' }, shared]);
      assert.deepEqual(mountsOf(exp('next', { resumeFrom: { experiment: 'cartpole', checkpoint: 'best' } }), storage), [
        { name: 'checkpoints', mountPath: '/ckpt/ml/next', subPath: 'ml/next' },
        shared,
        { name: 'checkpoints', mountPath: '/ckpt/ml/cartpole', subPath: 'ml/cartpole', readOnly: true },
      ]);
    }
  });

  test('the dataset files a manifest names in its namespace\'s storage are mounted read-only, each file on its own', () => {
    const storage = { mountPath: '/ckpt', hostPath: { path: '/srv/arena' } };
    const withEnv = (environment: Record<string, unknown>, spec: Partial<Experiment['spec']> = {}) =>
      exp('offline', { ...spec, manifest: { algorithm: { name: 'CQN' }, environment } as Experiment['spec']['manifest'] });
    const mountsOf = (e: Experiment) =>
      workerPods({ experiment: e, cls: cls(), cluster: cluster({ checkpointStorage: storage }), attempt: { run: 1, attempt: 1 }, nodes: ['n'], reportUrl: 'http://op' })[0]!.spec!.containers[0]!.volumeMounts!.filter(
        (m) => m.name === 'checkpoints',
      );
    const own = { name: 'checkpoints', mountPath: '/ckpt/ml/offline', subPath: 'ml/offline' };
    const shared = { name: 'checkpoints', mountPath: '/ckpt/ml/_shared', subPath: 'ml/_shared', readOnly: true };
    assert.deepEqual(mountsOf(withEnv({ env_type: 'offline', name: 'CartPole-v1', dataset_path: '/ckpt/ml/datasets/cartpole.h5' })), [
      own,
      shared,
      { name: 'checkpoints', mountPath: '/ckpt/ml/datasets/cartpole.h5', subPath: 'ml/datasets/cartpole.h5', readOnly: true },
    ]);
    assert.deepEqual(mountsOf(withEnv({ env_type: 'bandit', name: 'iris', features: '/ckpt/ml/iris/f.csv', targets: '/ckpt/ml/iris/t.csv' })), [
      own,
      shared,
      { name: 'checkpoints', mountPath: '/ckpt/ml/iris/f.csv', subPath: 'ml/iris/f.csv', readOnly: true },
      { name: 'checkpoints', mountPath: '/ckpt/ml/iris/t.csv', subPath: 'ml/iris/t.csv', readOnly: true },
    ]);
    // Another namespace's files, paths that climb out, and files already inside a mounted folder get no mount of their own.
    for (const path of ['/ckpt/other/d.h5', '/ckpt/ml/../other/d.h5', '/etc/passwd', 'data/d.h5', '/ckpt/ml/', '/ckpt/ml/offline/d.h5', '/ckpt/ml/_shared/d.h5']) {
      assert.deepEqual(mountsOf(withEnv({ env_type: 'offline', name: 'CartPole-v1', dataset_path: path })), [own, shared], path);
    }
    assert.deepEqual(mountsOf(withEnv({ env_type: 'offline', name: 'CartPole-v1', dataset_path: '/ckpt/ml/src/d.h5' }, { resumeFrom: { experiment: 'src', checkpoint: 'best' } })), [
      own,
      shared,
      { name: 'checkpoints', mountPath: '/ckpt/ml/src', subPath: 'ml/src', readOnly: true },
    ]);
  });

  test('a CPU class gets no GPU RuntimeClass or toleration', () => {
    const [p] = workerPods({ experiment: exp(), cls: cls({ cpu: '2', gpus: 0 }), cluster: cluster(), attempt: { run: 1, attempt: 1 }, nodes: ['n'], reportUrl: 'http://op' });
    assert.equal(p!.spec?.runtimeClassName, undefined);
    assert.deepEqual(p!.spec?.tolerations, []);
  });

  test('run objects: one Secret with the manifest and the tokens, and a headless Service that publishes not-ready workers', () => {
    const o = runObjects(exp(), { run: 3, attempt: 1 }, ['token-0', 'token-1']);
    const { 'manifest.json': manifest, ...tokens } = o.secret.stringData!;
    assert.equal(JSON.parse(manifest!).algorithm.name, 'DQN');
    assert.deepEqual(tokens, { 'worker-0': 'token-0', 'worker-1': 'token-1' });
    assert.deepEqual(Object.keys(o), ['secret', 'service'], 'no ConfigMap: one write less per attempt');
    assert.equal(o.secret.metadata?.labels?.['arena.agilerl.com/attempt'], '1');
    assert.equal(o.service?.spec?.clusterIP, 'None');
    assert.equal(o.service?.spec?.publishNotReadyAddresses, true);
  });

  test('a lone worker gets no rendezvous Service and is its own master', () => {
    assert.equal(runObjects(exp(), { run: 1, attempt: 1 }, ['token-0']).service, undefined);
    const [lone] = workerPods({ experiment: exp(), cls: cls(), cluster: cluster(), attempt: { run: 1, attempt: 1 }, nodes: ['n1'], reportUrl: 'http://op' });
    const e = Object.fromEntries((lone!.spec!.containers[0]!.env ?? []).map((x) => [x.name, x.value]));
    assert.deepEqual([e.MASTER_ADDR, e.WORLD_SIZE, e.NNODES], ['127.0.0.1', '1', '1']);
    assert.equal(lone!.spec!.subdomain, undefined);
    assert.equal(pods[0]!.spec!.subdomain, names(exp(), { run: 1, attempt: 2 }).service, 'a gang of two has its Service as subdomain');
  });

  test('long names are shortened to valid DNS labels without colliding', () => {
    const long = 'a'.repeat(80);
    const a = shortName(long, 'r1a1-0');
    const b = shortName(`${long}b`, 'r1a1-0');
    assert.ok(a.length <= 63 && b.length <= 63);
    assert.notEqual(a, b);
    assert.match(a, /^[a-z][a-z0-9-]*$/);
  });
});

describe('gating', () => {
  const tc = cluster();
  const cases: { name: string; input: Parameters<typeof blockerFor>[0]; reason?: string }[] = [
    { name: 'all good', input: { experiment: exp(), cls: cls(), cluster: tc } },
    { name: 'no class named', input: { experiment: exp('e', { resourceClass: undefined, action: 'Draft' }), cls: undefined, cluster: tc }, reason: 'NoResourceClass' },
    { name: 'unknown class', input: { experiment: exp(), cls: undefined, cluster: tc }, reason: 'ResourceClassNotFound' },
    { name: 'unknown cluster', input: { experiment: exp(), cls: cls(), cluster: undefined }, reason: 'TrainingClusterNotFound' },
    { name: 'provider disabled', input: { experiment: exp(), cls: cls(), cluster: cluster({ enabled: false }) }, reason: 'ProviderDisabled' },
    { name: 'class disabled', input: { experiment: exp(), cls: cls(undefined, { enabled: false }), cluster: tc }, reason: 'ClassDisabled' },
    { name: 'a stored class asking more CPU than can be counted', input: { experiment: exp(), cls: cls({ cpu: '1e15', gpus: 2 }), cluster: tc }, reason: 'InvalidResourceClass' },
    { name: 'a stored class asking 100P of memory', input: { experiment: exp(), cls: cls({ memory: '100P', gpus: 2 }), cluster: tc }, reason: 'InvalidResourceClass' },
    {
      name: 'LLM on a class without GPUs',
      input: {
        experiment: exp('e', {
          manifest: {
            algorithm: { name: 'GRPO', group_size: 4, pretrained_model_name_or_path: 'Qwen/Qwen2.5-0.5B' },
            environment: { name: 'gsm8k', dataset: 'openai/gsm8k', prompt_template: { user_0: '{question}' }, rubric_file_path: 'rubrics/gsm8k.py', rubric_name: 'exact_answer' },
          },
        }),
        cls: cls({ gpus: 0 }),
        cluster: tc,
      },
      reason: 'ClassHasNoGpus',
    },
    {
      // The platform's verdict arrives as errors under spec.manifest (reconcile asks the platform's validator).
      name: 'invalid manifest',
      input: { experiment: exp(), cls: cls(), cluster: tc, manifestErrors: [{ field: 'spec.manifest.training.max_steps', message: 'Input should be greater than or equal to 1' }] },
      reason: 'InvalidManifest',
    },
    {
      name: 'the CRD\'s own structure refuses it first',
      input: { experiment: exp('e', { manifest: { algorithm: { name: 'PPO2' as never }, environment: {} } }), cls: cls(), cluster: tc, manifestErrors: [{ field: 'spec.manifest.algorithm', message: 'not registered' }] },
      reason: 'InvalidManifest',
    },
    {
      name: 'a spec error with a manifest error',
      input: { experiment: exp('e', { maxRetries: 99 }), cls: cls(), cluster: tc, manifestErrors: [{ field: 'spec.manifest.training.pop_size', message: 'bad' }] },
      reason: 'InvalidSpec',
    },
    { name: 'resume source missing', input: { experiment: exp(), cls: cls(), cluster: tc, resumeProblem: 'Experiment old does not exist' }, reason: 'ResumeSourceUnavailable' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const b = blockerFor(c.input);
      assert.equal(b?.reason, c.reason);
      if (b) assert.ok(b.message.length > 10);
    });
  }
  test('an invalid manifest names the field', () => {
    const b = blockerFor(cases.find((c) => c.name === 'invalid manifest')!.input);
    assert.match(b!.message, /spec\.manifest\.training\.max_steps/);
  });
});

describe('checkpoint choice', () => {
  const source = exp('src');
  source.status = {
    checkpoints: [
      { run: 1, step: 100, evaluationScore: 5, sizeBytes: 1, location: 'a', createdAt: '2026-01-01T00:00:00Z' },
      { run: 1, step: 200, evaluationScore: 9, sizeBytes: 1, location: 'b', createdAt: '2026-01-01T00:00:00Z' },
      { run: 1, step: 300, evaluationScore: 7, sizeBytes: 1, location: 'c', createdAt: '2026-01-01T00:00:00Z' },
    ],
  };
  test('best, final and a given step', () => {
    const pick = (c: Parameters<typeof resolveCheckpoint>[1]) => {
      const r = resolveCheckpoint(source, c);
      return r.ok ? r.checkpoint.step : r.problem;
    };
    assert.equal(pick({ checkpoint: 'best' }), 200);
    assert.equal(pick({ checkpoint: 'final' }), 300);
    assert.equal(pick({ checkpoint: 'step', step: 100 }), 100);
    assert.match(String(pick({ checkpoint: 'step', step: 150 })), /no checkpoint at step 150; it has steps 100, 200, 300/);
  });
  test('a missing source or one without checkpoints says so', () => {
    const r1 = resolveCheckpoint(undefined, { experiment: 'gone' });
    assert.equal(r1.ok, false);
    assert.match(!r1.ok ? r1.problem : '', /gone does not exist/);
    const r2 = resolveCheckpoint(exp('empty'), {});
    assert.match(!r2.ok ? r2.problem : '', /no checkpoints/);
  });
});

describe('error lists in status', () => {
  const many = Array.from({ length: 200 }, (_, i) => ({ field: `spec.manifest.training.unknown_key_${i}`, message: 'Extra inputs are not permitted' }));
  test('a long list is cut to what status.message holds, saying how many more there are', () => {
    const text = listErrors(many);
    assert.ok(text.length < 4096 - 100, `${text.length} characters`);
    assert.match(text, /^spec\.manifest\.training\.unknown_key_0: Extra inputs/);
    assert.match(text, /; and \d+ more \(kubectl arena manifest validate lists them all\)$/);
  });
  test('a short list is given whole', () => assert.equal(listErrors(many.slice(0, 2)), 'spec.manifest.training.unknown_key_0: Extra inputs are not permitted; spec.manifest.training.unknown_key_1: Extra inputs are not permitted'));
  test('one error longer than the budget is cut', () => {
    const text = listErrors([{ field: 'spec.manifest', message: 'x'.repeat(10_000) }]);
    assert.equal(text.length, MAX_LISTED_ERRORS_CHARS);
  });
  test('the blocker of an experiment with hundreds of errors fits status.message', () => {
    const b = blockerFor({ experiment: exp(), cls: cls(), cluster: cluster(), manifestErrors: many });
    assert.equal(b?.reason, 'InvalidManifest');
    assert.ok(b!.message.length <= 4096, `${b!.message.length}`);
  });
});

describe('the report API CA', () => {
  test('with a CA ConfigMap, every worker mounts it read-only and is told where it is; without one, nothing is mounted', () => {
    const input = { experiment: exp(), cls: cls(), cluster: cluster(), attempt: { run: 1, attempt: 1 }, nodes: ['n1', 'n2'], reportUrl: 'https://op.arena-system.svc:8080' };
    for (const p of workerPods({ ...input, reportCaConfigMap: 'arena-operator-ca' })) {
      const c = p.spec!.containers[0]!;
      assert.deepEqual(p.spec!.volumes!.find((v) => v.name === 'report-ca'), { name: 'report-ca', configMap: { name: 'arena-operator-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] } });
      assert.deepEqual(c.volumeMounts!.find((m) => m.name === 'report-ca'), { name: 'report-ca', mountPath: REPORT_CA_DIR, readOnly: true });
      assert.equal(c.env!.find((e) => e.name === 'ARENA_REPORT_CA_FILE')?.value, REPORT_CA_FILE);
      assert.ok(REPORT_CA_FILE.startsWith(`${REPORT_CA_DIR}/`));
    }
    const [plain] = workerPods({ ...input, reportUrl: 'http://127.0.0.1:8080' });
    assert.equal(plain!.spec!.volumes!.find((v) => v.name === 'report-ca'), undefined);
    assert.equal(plain!.spec!.containers[0]!.env!.find((e) => e.name === 'ARENA_REPORT_CA_FILE'), undefined);
  });
});
