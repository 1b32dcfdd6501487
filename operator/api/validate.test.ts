import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { platformValidator } from './platform/verdict.ts';
import { formatErrors, manifestErrors, validate, validateExperiment, validateManifest, withDefaults, type FieldError, type ValidationResult } from './validate.ts';
import { invalidObjects, invalidUpdates } from './testdata/invalid-objects.ts';
import { experimentWithUnknownManifestKeys, llmExperiment, sample, sampleStatuses, samples } from './testdata/samples.ts';
import { API_VERSION, KIND_NAMES, type Experiment, type ResourceClass, type TrainingCluster } from './v1alpha1/index.ts';

after(() => platformValidator().close());

function errorsOf(result: ValidationResult): FieldError[] {
  return result.ok ? [] : result.errors;
}

/** The refusal names the field itself or something inside it, as the end-to-end suite expects of the apiserver. */
function mentions(errors: FieldError[], field: string): boolean {
  return errors.some((e) => e.field === field || e.field.startsWith(`${field}.`) || e.field.startsWith(`${field}[`));
}

describe('valid samples pass', () => {
  for (const kind of KIND_NAMES) {
    test(kind, () => assert.deepEqual(validate(kind, samples[kind]), { ok: true }));
    test(`${kind} with a status`, () => assert.deepEqual(validate(kind, { ...samples[kind], status: sampleStatuses[kind] }), { ok: true }));
  }
  test('LLM experiment', () => assert.deepEqual(validate('Experiment', llmExperiment), { ok: true }));
  test('experiment with manifest keys this API does not know', () => {
    assert.deepEqual(validate('Experiment', experimentWithUnknownManifestKeys), { ok: true });
  });
});

describe('invalid objects are refused, naming the field', () => {
  assert.ok(invalidObjects.length >= 30, 'the shared table keeps at least 30 cases');
  const names = new Set(invalidObjects.map((c) => c.name));
  assert.equal(names.size, invalidObjects.length, 'case names are unique (they are also object names)');

  for (const c of invalidObjects) {
    test(`${c.kind}: ${c.name}`, () => {
      const errors = errorsOf(validate(c.kind, c.object));
      assert.ok(mentions(errors, c.field), `expected an error at ${c.field}, got: ${formatErrors(errors) || 'none'}`);
    });
  }
});

describe('invalid updates are refused, naming the field', () => {
  for (const c of invalidUpdates) {
    test(`${c.kind}: ${c.name}`, () => {
      assert.deepEqual(validate(c.kind, c.old), { ok: true }, 'the stored object itself is valid');
      const errors = errorsOf(validate(c.kind, c.object, { old: c.old }));
      assert.ok(mentions(errors, c.field), `expected an error at ${c.field}, got: ${formatErrors(errors) || 'none'}`);
    });
    test(`${c.kind}: ${c.name} is allowed as a create`, () => {
      // Transition rules only run on updates, exactly as the apiserver evaluates oldSelf.
      assert.deepEqual(validate(c.kind, c.object), { ok: true });
    });
  }

  test('raising run and keyRotation is allowed', () => {
    const old = sample('Experiment');
    const raised = structuredClone(old);
    raised.spec.run = 2;
    assert.deepEqual(validate('Experiment', raised, { old }), { ok: true });
  });

  test('setting resumeFrom later on a draft is allowed; changing it is not', () => {
    const old = sample('Experiment');
    const withResume = structuredClone(old);
    withResume.spec.resumeFrom = { experiment: 'older-run', checkpoint: 'final' };
    assert.deepEqual(validate('Experiment', withResume, { old }), { ok: true });
    assert.deepEqual(validate('Experiment', withResume, { old: withResume }), { ok: true });
  });
});

describe('error messages say what to do', () => {
  test('a missing required field is named, with what it is for', () => {
    const rc = sample('ResourceClass') as Partial<ResourceClass['spec']> & ResourceClass;
    delete (rc.spec as Partial<ResourceClass['spec']>).nodes;
    const [error] = errorsOf(validate('ResourceClass', rc));
    assert.equal(error?.field, 'spec.nodes');
    assert.equal(error?.message, 'is required');
    assert.match(error?.hint ?? '', /Workers per experiment/);
  });

  test('a wrongly cased enum value gets a suggestion', () => {
    const exp = sample('Experiment');
    (exp.spec as { action: string }).action = 'train';
    assert.deepEqual(errorsOf(validate('Experiment', exp)), [
      { field: 'spec.action', message: 'must be one of: Draft, Train, Stop', hint: 'did you mean Train?' },
    ]);
  });

  test('a bound reads as a bound', () => {
    const exp = sample('Experiment');
    exp.spec.maxRetries = 21;
    assert.deepEqual(errorsOf(validate('Experiment', exp))[0], { field: 'spec.maxRetries', message: 'must be <= 20' });
  });

  test('a pattern is explained with an example', () => {
    const rc = sample('ResourceClass');
    rc.spec.worker!.memory = '64 GB';
    assert.deepEqual(errorsOf(validate('ResourceClass', rc)), [
      { field: 'spec.worker.memory', message: 'must be a non-negative Kubernetes quantity', hint: 'for example 500m, 4, 16Gi' },
    ]);
  });

  test('a fractional number where a quantity is expected', () => {
    const rc = sample('ResourceClass');
    (rc.spec.worker as { cpu: unknown }).cpu = 0.5;
    assert.deepEqual(errorsOf(validate('ResourceClass', rc)), [
      { field: 'spec.worker.cpu', message: 'must be an integer or a string', hint: 'for example 500m, 4, 16Gi' },
    ]);
  });

  test('a list index and a map key appear as kubectl writes them', () => {
    const rc = sample('ResourceClass');
    rc.spec.tolerations![0]!.effect = 'Sometimes' as never;
    rc.spec.nodeSelector = { 'kubernetes.io/hostname': 'x'.repeat(64) };
    const fields = errorsOf(validate('ResourceClass', rc)).map((e) => e.field);
    assert.deepEqual(fields.sort(), ['spec.nodeSelector[kubernetes.io/hostname]', 'spec.tolerations[0].effect']);
  });

  test('a misspelt field is reported with the likely spelling', () => {
    const exp = sample('Experiment') as Experiment & { spec: { resourceclass?: string } };
    exp.spec.resourceclass = 'a100-x2';
    assert.deepEqual(errorsOf(validate('Experiment', exp)), [{ field: 'spec.resourceclass', message: 'unknown field', hint: 'did you mean resourceClass?' }]);
  });

  test('unknown manifest keys are kept for the platform, whose verdict names them', async () => {
    const exp = sample('Experiment');
    (exp.spec.manifest.mutation as Record<string, unknown>).no_mutation = 0.5;
    assert.deepEqual(validate('Experiment', exp), { ok: true }, 'the CRD keeps what it does not declare');
    assert.deepEqual(
      errorsOf(await validateExperiment(exp)).map((e) => [e.field, e.message]),
      [['spec.manifest.mutation.no_mutation', 'Extra inputs are not permitted']],
    );
  });

  test('apiVersion and kind must match the kind validated', () => {
    const tc = sample('TrainingCluster');
    tc.apiVersion = 'arena.agilerl.com/v1';
    const errors = errorsOf(validate('ResourceClass', tc));
    assert.deepEqual(errors.slice(0, 2), [
      { field: 'apiVersion', message: `must be ${API_VERSION}` },
      { field: 'kind', message: 'must be ResourceClass' },
    ]);
  });

  test('the input is never modified', () => {
    const exp = sample('Experiment');
    delete exp.spec.maxRetries;
    const before = structuredClone(exp);
    validate('Experiment', exp);
    assert.deepEqual(exp, before);
  });
});

describe('withDefaults', () => {
  test('leaves the samples unchanged: they already carry every default, so they round-trip through the apiserver', () => {
    for (const kind of KIND_NAMES) assert.deepEqual(withDefaults(kind, samples[kind]), samples[kind], kind);
    assert.deepEqual(withDefaults('Experiment', llmExperiment), llmExperiment);
    assert.deepEqual(withDefaults('Experiment', experimentWithUnknownManifestKeys), experimentWithUnknownManifestKeys);
  });

  test('fills defaults as the apiserver does, nested ones included', () => {
    const tc: TrainingCluster = {
      apiVersion: API_VERSION,
      kind: 'TrainingCluster',
      metadata: { name: 'minimal' },
      spec: { setupBundle: { version: '1.0.0', images: { runtime: 'runtime:1.0.0' } }, checkpointStorage: { hostPath: { path: '/data' } } },
    };
    const defaulted = withDefaults('TrainingCluster', tc);
    assert.deepEqual(defaulted.spec, {
      enabled: true,
      gpu: { runtimeClassName: 'nvidia', taint: { key: 'nvidia.com/gpu', value: 'true', effect: 'NoSchedule' } },
      setupBundle: { version: '1.0.0', images: { runtime: 'runtime:1.0.0' }, runtimeCommand: ['arena-runtime', 'train'] },
      checkpointStorage: { mountPath: '/checkpoints', hostPath: { path: '/data' } },
    });
    assert.equal(tc.spec.enabled, undefined, 'the input is left alone');
  });

  test('experiment defaults', () => {
    const exp: Experiment = {
      apiVersion: API_VERSION,
      kind: 'Experiment',
      metadata: { name: 'x', namespace: 'default' },
      spec: { manifest: { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } } },
    };
    const { spec } = withDefaults('Experiment', exp);
    assert.equal(spec.action, 'Draft');
    assert.equal(spec.run, 1);
    assert.equal(spec.priority, undefined, 'no default: spec.priorityClassName may name it instead');
    assert.equal(spec.maxRetries, 3);
    assert.equal(spec.stopGracePeriodSeconds, 120);
    assert.equal(spec.partialGangTimeoutSeconds, 300);
    assert.deepEqual(spec.manifest, exp.spec.manifest, 'the manifest gets no defaults: the trainer owns them');
  });

  test('resource class and deployment defaults', () => {
    const rc = withDefaults('ResourceClass', { apiVersion: API_VERSION, kind: 'ResourceClass', metadata: { name: 'cpu' }, spec: { trainingCluster: 'on-prem', nodes: 1 } });
    assert.deepEqual(rc.spec, { trainingCluster: 'on-prem', enabled: true, nodes: 1, worker: { gpus: 0 }, creditsPerNodeHour: 0 });
    const dep = withDefaults('Deployment', {
      apiVersion: API_VERSION,
      kind: 'Deployment',
      metadata: { name: 'a', namespace: 'default' },
      spec: { source: { experiment: 'x' } },
    });
    assert.deepEqual(dep.spec, { source: { experiment: 'x', checkpoint: 'best' }, connected: false, replicas: 1, memoryScope: 'user', keyRotation: 0 });
  });

  test('keeps unknown manifest keys untouched', () => {
    const defaulted = withDefaults('Experiment', experimentWithUnknownManifestKeys);
    assert.deepEqual(defaulted.spec.manifest, experimentWithUnknownManifestKeys.spec.manifest);
  });
});

describe('validateManifest', () => {
  test('accepts the samples on its own', () => {
    assert.deepEqual(validateManifest(sample('Experiment').spec.manifest), { ok: true });
    assert.deepEqual(validateManifest(llmExperiment.spec.manifest), { ok: true });
  });

  test('paths are relative to the manifest unless told where it sits', async () => {
    const manifest = { ...llmExperiment.spec.manifest, algorithm: { ...llmExperiment.spec.manifest.algorithm, group_size: 0 } };
    assert.deepEqual(await manifestErrors(manifest), [{ field: 'algorithm.group_size', message: 'Input should be greater than or equal to 1' }]);
    assert.equal((await manifestErrors(manifest, { at: 'spec.manifest' }))[0]?.field, 'spec.manifest.algorithm.group_size');
    assert.equal(errorsOf(validateManifest({ algorithm: {}, environment: {} }, { at: 'spec.manifest' }))[0]?.field, 'spec.manifest.algorithm.name');
  });

  test('refuses a manifest that is not an object', () => {
    assert.equal(validateManifest('algorithm: PPO').ok, false);
    assert.equal(validateManifest(null).ok, false);
  });
});

describe('Experiments written in the earlier manifest dialect', () => {
  const cases: { name: string; manifest: Record<string, unknown>; field: string; hint: RegExp }[] = [
    { name: 'network.hidden_size', manifest: { network: { hidden_size: [64] } }, field: 'spec.manifest.network.hidden_size', hint: /network\.encoder_config\.hidden_size/ },
    { name: 'environment.type', manifest: { environment: { name: 'CartPole-v1', type: 'reasoning' } }, field: 'spec.manifest.environment.type', hint: /environment\.env_type/ },
    { name: 'algorithm.use_vllm', manifest: { algorithm: { name: 'DQN', use_vllm: true } }, field: 'spec.manifest.algorithm.use_vllm', hint: /vllm_config/ },
    { name: 'training.seed', manifest: { training: { seed: 3 } }, field: 'spec.manifest.training.seed', hint: /mutation\.rand_seed/ },
  ];
  for (const c of cases) {
    test(`${c.name} is refused with the platform's field to use`, async () => {
      const manifest = { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' }, ...c.manifest };
      const errors = await manifestErrors(manifest, { at: 'spec.manifest' });
      const e = errors.find((x) => x.field === c.field);
      assert.ok(e, JSON.stringify(errors));
      assert.match(e.hint ?? '', c.hint);
      assert.match(formatErrors([e]), /earlier manifest dialect/);
    });
  }
});
