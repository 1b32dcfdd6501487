import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_DENIAL_ERRORS, denial, mutateRequest, validateRequest, type ClusterView } from './admission.ts';
import { applyPatch } from './json-patch.ts';
import { MalformedReview, parseReview, reviewResponse, type AdmissionRequest, type Operation } from './review.ts';
import { GROUP, VERSION, type KindName } from '../api/v1alpha1/index.ts';
import { withDefaults } from '../api/validate.ts';
import { platformValidator } from '../api/platform/verdict.ts';
import { sample } from '../api/testdata/samples.ts';
import { applyMergePatch, invalidObjects, invalidUpdates } from '../api/testdata/invalid-objects.ts';

type Obj = Record<string, unknown>;

after(() => platformValidator().close());

let uid = 0;
function request(kind: KindName, object: unknown, opts: { operation?: Operation; old?: unknown; namespace?: string; group?: string; subResource?: string } = {}): AdmissionRequest {
  const meta = (object as { metadata?: { namespace?: string } }).metadata;
  return {
    uid: `uid-${++uid}`,
    kind: { group: opts.group ?? GROUP, version: VERSION, kind },
    operation: opts.operation ?? 'CREATE',
    namespace: opts.namespace ?? meta?.namespace,
    object,
    ...(opts.old ? { oldObject: opts.old } : {}),
    ...(opts.subResource ? { subResource: opts.subResource } : {}),
  };
}

/** A cluster holding exactly `objects` ("Kind/name" or "Kind/ns/name"); `unknown` lookups answer undefined. */
function cluster(objects: string[], opts: { enabledClasses?: string[]; unknown?: boolean } = {}): ClusterView {
  return {
    exists: (kind, name, ns) => Promise.resolve(opts.unknown ? undefined : objects.includes(ns ? `${kind}/${ns}/${name}` : `${kind}/${name}`)),
    enabledResourceClasses: () => opts.enabledClasses,
  };
}

const everything = cluster(['ResourceClass/a100-x2', 'TrainingCluster/on-prem', 'Experiment/default/cartpole-ppo', 'Experiment/default/older-run']);
const nothing = cluster([]);
const with_ = <K extends KindName>(kind: K, patch: Obj) => applyMergePatch(sample(kind), patch);

describe('validating webhook', () => {
  const cases: { name: string; req: AdmissionRequest; view?: ClusterView; allowed: boolean; fields?: string[]; message?: RegExp; warnings?: RegExp[] }[] = [
    ...(['TrainingCluster', 'ResourceClass', 'Experiment', 'Deployment'] as const).map((k) => ({ name: `a valid ${k}`, req: request(k, sample(k)), allowed: true, warnings: [] })),
    {
      name: 'an unknown key in a manifest section, in the platform\'s words',
      req: request('Experiment', with_('Experiment', { spec: { manifest: { mutation: { mutation_sdd: 0.2 } } } })),
      allowed: false,
      fields: ['spec.manifest.mutation.mutation_sdd'],
      message: /spec\.manifest\.mutation\.mutation_sdd: Extra inputs are not permitted/,
    },
    {
      name: 'several offending fields are all named, ours and the platform\'s',
      req: request('Experiment', with_('Experiment', { spec: { priority: 5000, manifest: { training: { pop_size: 0 }, algorithm: { gamma: 2 } } } })),
      allowed: false,
      fields: ['spec.priority', 'spec.manifest.algorithm.gamma', 'spec.manifest.training.pop_size'],
    },
    {
      name: 'a cross-section rule the platform enforces names its field',
      req: request('Experiment', with_('Experiment', { spec: { manifest: { mutation: { rl_hp_selection: { lrr: { min: 0.001, max: 0.01 } } } } } })),
      allowed: false,
      fields: ['spec.manifest.mutation.rl_hp_selection.lrr'],
      message: /Did you mean 'lr'\?/,
    },
    {
      name: 'a missing ResourceClass is a warning, not a denial',
      req: request('Experiment', sample('Experiment')),
      view: nothing,
      allowed: true,
      warnings: [/^spec\.resourceClass: ResourceClass "a100-x2" not found; a Train waits in Pending/],
    },
    {
      name: 'a missing resume source is a warning',
      req: request('Experiment', with_('Experiment', { spec: { resumeFrom: { experiment: 'gone', checkpoint: 'best' } } })),
      view: everything,
      allowed: true,
      warnings: [/^spec\.resumeFrom\.experiment: Experiment "gone" not found in namespace default/],
    },
    {
      name: 'a missing TrainingCluster is a warning',
      req: request('ResourceClass', sample('ResourceClass')),
      view: nothing,
      allowed: true,
      warnings: [/^spec\.trainingCluster: TrainingCluster "on-prem" not found/],
    },
    {
      name: 'a missing source experiment of a Deployment is a warning',
      req: request('Deployment', sample('Deployment')),
      view: nothing,
      allowed: true,
      warnings: [/^spec\.source\.experiment: Experiment "cartpole-ppo" not found in namespace default/],
    },
    { name: 'a lookup that cannot answer says nothing', req: request('Experiment', sample('Experiment')), view: cluster([], { unknown: true }), allowed: true, warnings: [] },
    {
      name: 'an update that changes resumeFrom',
      req: request('Experiment', with_('Experiment', { spec: { resumeFrom: { experiment: 'older-run', checkpoint: 'final' } } }), {
        operation: 'UPDATE',
        old: with_('Experiment', { spec: { resumeFrom: { experiment: 'older-run', checkpoint: 'best' } } }),
      }),
      allowed: false,
      fields: ['spec.resumeFrom'],
      message: /resumeFrom cannot change once set: create a new experiment/,
    },
    {
      name: 'an update that lowers the run',
      req: request('Experiment', with_('Experiment', { spec: { run: 1 } }), { operation: 'UPDATE', old: with_('Experiment', { spec: { run: 2 } }) }),
      allowed: false,
      fields: ['spec.run'],
    },
    {
      name: 'an update that keeps an error the stored object already had (ratcheting)',
      req: request('Experiment', with_('Experiment', { metadata: { labels: { team: 'rl' } }, spec: { manifest: { mutation: { legacy: 1 } } } }), {
        operation: 'UPDATE',
        old: with_('Experiment', { spec: { manifest: { mutation: { legacy: 1 } } } }),
      }),
      allowed: true,
    },
    {
      name: 'an update that adds a new error to an already invalid object',
      req: request('Experiment', with_('Experiment', { spec: { priority: 5000, manifest: { mutation: { legacy: 1 } } } }), {
        operation: 'UPDATE',
        old: with_('Experiment', { spec: { manifest: { mutation: { legacy: 1 } } } }),
      }),
      allowed: false,
      fields: ['spec.priority'],
    },
    { name: 'DELETE is not ours to judge', req: request('Experiment', {}, { operation: 'DELETE' }), allowed: true },
    { name: 'another group is not ours', req: request('Experiment', { spec: {} }, { group: 'apps' }), allowed: true },
    { name: 'a subresource is not ours', req: request('Experiment', { spec: {} }, { subResource: 'status' }), allowed: true },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const d = await validateRequest(c.req, c.view ?? everything);
      assert.equal(d.allowed, c.allowed, JSON.stringify(d));
      if (!c.allowed) {
        assert.equal(d.status?.code, 422);
        assert.equal(d.status?.reason, 'Invalid');
        const causes = d.status?.details?.causes?.map((x) => x.field) ?? [];
        for (const f of c.fields ?? []) {
          assert.ok(causes.includes(f), `cause for ${f} in ${causes.join(', ')}`);
          assert.match(d.status!.message, new RegExp(`${f.replace(/[.[\]]/g, '\\$&')}: `), 'the message names the field');
        }
        assert.equal(causes.length, c.fields?.length, `only the offending fields: ${causes.join(', ')}`);
        assert.match(d.status!.message, new RegExp(`^${c.req.kind.kind} "[^"]+" is invalid: `));
        if (c.message) assert.match(d.status!.message, c.message);
      }
      if (c.warnings) {
        assert.equal(d.warnings?.length ?? 0, c.warnings.length, `warnings: ${JSON.stringify(d.warnings)}`);
        c.warnings.forEach((w, i) => assert.match(d.warnings![i]!, w));
      }
    });
  }

  test(`refuses every invalid object of the API table (${invalidObjects.length}), naming its field`, async () => {
    for (const c of invalidObjects) {
      const d = await validateRequest(request(c.kind, c.object), everything);
      assert.equal(d.allowed, false, c.name);
      assert.ok(d.status!.message.includes(c.field), `${c.name}: ${d.status!.message} names ${c.field}`);
    }
  });

  test(`refuses every invalid update of the API table (${invalidUpdates.length}), naming its field`, async () => {
    for (const c of invalidUpdates) {
      const d = await validateRequest(request(c.kind, c.object, { operation: 'UPDATE', old: c.old }), everything);
      assert.equal(d.allowed, false, c.name);
      assert.ok(d.status!.message.includes(c.field), `${c.name}: ${d.status!.message} names ${c.field}`);
    }
  });

  test('a denial travels as a Failure status with the request uid, and never with a patch', () => {
    const res = reviewResponse('u-1', { allowed: false, status: { code: 422, reason: 'Invalid', message: 'x' }, patch: [{ op: 'remove', path: '/spec' }] });
    assert.deepEqual(res, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-1', allowed: false, status: { code: 422, reason: 'Invalid', message: 'x', status: 'Failure' } } });
  });
});

describe('mutating webhook', () => {
  const bare = () => {
    const e = sample('Experiment');
    const spec = e.spec as Obj;
    for (const k of ['action', 'run', 'priority', 'maxRetries', 'stopGracePeriodSeconds', 'partialGangTimeoutSeconds']) delete spec[k];
    return e;
  };
  const trainWithoutClass = () => with_('Experiment', { spec: { resourceClass: null } });

  const cases: { name: string; req: AdmissionRequest; enabled?: string[]; patched: boolean; expect?: (o: Obj) => void; warnings?: RegExp[] }[] = [
    ...(['TrainingCluster', 'ResourceClass', 'Experiment', 'Deployment'] as const).map((k) => ({
      name: `a ${k} with every default spelled out gets no patch`,
      req: request(k, sample(k)),
      enabled: ['a100-x2'],
      patched: false,
    })),
    {
      name: 'missing defaults are added',
      req: request('Experiment', bare()),
      patched: true,
      expect: (o) => assert.deepEqual((o.spec as Obj).maxRetries, 3),
    },
    {
      name: 'Train without a resourceClass gets the only enabled class',
      req: request('Experiment', trainWithoutClass()),
      enabled: ['a100-x2'],
      patched: true,
      expect: (o) => assert.equal((o.spec as Obj).resourceClass, 'a100-x2'),
      warnings: [/^spec\.resourceClass: set to a100-x2, the only enabled ResourceClass$/],
    },
    { name: 'two enabled classes: no guess', req: request('Experiment', trainWithoutClass()), enabled: ['a', 'b'], patched: false },
    { name: 'no enabled class: nothing to pick', req: request('Experiment', trainWithoutClass()), enabled: [], patched: false },
    { name: 'classes not known yet: nothing picked', req: request('Experiment', trainWithoutClass()), enabled: undefined, patched: false },
    { name: 'a Draft is not given a class', req: request('Experiment', with_('Experiment', { spec: { resourceClass: null, action: 'Draft' } })), enabled: ['a100-x2'], patched: false },
    {
      name: 'an update to Train also gets the class',
      req: request('Experiment', trainWithoutClass(), { operation: 'UPDATE', old: with_('Experiment', { spec: { resourceClass: null, action: 'Draft' } }) }),
      enabled: ['a100-x2'],
      patched: true,
      expect: (o) => assert.equal((o.spec as Obj).resourceClass, 'a100-x2'),
      warnings: [/^spec\.resourceClass: set to a100-x2/],
    },
    {
      name: 'status and metadata are never patched',
      req: request('Experiment', { ...sample('Experiment'), status: { phase: 'Running' }, metadata: { name: 'x', namespace: 'default' } }),
      patched: false,
    },
    { name: 'DELETE is left alone', req: request('Experiment', bare(), { operation: 'DELETE' }), patched: false },
    {
      name: 'a value the platform reads by coercion is stored as the value it reads',
      req: request('Experiment', with_('Experiment', { spec: { manifest: { training: { pop_size: '4', hpo: 'yes' }, algorithm: { lr: '0.0003' } } } })),
      patched: true,
      expect: (o) => {
        const m = (o.spec as Obj).manifest as { training: Obj; algorithm: Obj };
        assert.deepEqual([m.training.pop_size, m.training.hpo, m.algorithm.lr], [4, true, 0.0003]);
      },
      warnings: [/^spec\.manifest\.algorithm\.lr: "0\.0003" stored as 0\.0003/, /^spec\.manifest\.training\.pop_size: "4" stored as 4/, /^spec\.manifest\.training\.hpo: "yes" stored as true/],
    },
    {
      name: 'an invalid manifest is left as written, for validation to name',
      req: request('Experiment', with_('Experiment', { spec: { manifest: { training: { pop_size: '4', bogus: 1 } } } })),
      patched: false,
    },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const d = await mutateRequest(c.req, { enabledResourceClasses: () => c.enabled });
      assert.equal(d.allowed, true);
      assert.equal(!!d.patch, c.patched, `patch: ${JSON.stringify(d.patch)}`);
      if (d.patch) {
        assert.ok(d.patch.every((op) => !op.path.startsWith('/status') && !op.path.startsWith('/metadata')), 'only spec and envelope');
        const patched = applyPatch(c.req.object, d.patch) as Obj;
        // The result is what the operator's validator calls fully defaulted.
        assert.deepEqual(withDefaults(c.req.kind.kind as 'Experiment', patched as never), patched);
        c.expect?.(patched);
      }
      assert.equal(d.warnings?.length ?? 0, c.warnings?.length ?? 0, `warnings: ${JSON.stringify(d.warnings)}`);
      c.warnings?.forEach((w, i) => assert.match(d.warnings![i]!, w));
    });
  }

  test('the patch travels base64-encoded as a JSONPatch', async () => {
    const d = await mutateRequest(request('Experiment', bare()), { enabledResourceClasses: () => undefined });
    const res = reviewResponse('u-2', d);
    assert.equal(res.response.patchType, 'JSONPatch');
    assert.deepEqual(JSON.parse(Buffer.from(res.response.patch!, 'base64').toString('utf8')), d.patch);
  });
});

describe('denials and reviews the apiserver never sends', () => {
  test('a denial lists at most MAX_DENIAL_ERRORS errors, and says how many more there are', () => {
    const errors = Array.from({ length: 500 }, (_, i) => ({ field: `spec.manifest.algorithm.k${i}`, message: 'Extra inputs are not permitted' }));
    const d = denial('Experiment', 'many', errors);
    assert.equal(d.status?.details?.causes?.length, MAX_DENIAL_ERRORS);
    assert.match(d.status!.message, /spec\.manifest\.algorithm\.k0: Extra inputs are not permitted/);
    assert.match(d.status!.message, new RegExp(`; and ${500 - MAX_DENIAL_ERRORS} more errors$`));
    assert.doesNotMatch(d.status!.message, /\.k20:/);
  });

  const review = (request: Record<string, unknown>) => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
  const base = { uid: 'u', kind: { group: GROUP, version: VERSION, kind: 'Experiment' }, operation: 'CREATE', object: sample('Experiment') };
  const malformed: [string, Record<string, unknown>, RegExp][] = [
    ['a kind our group does not have', { ...base, kind: { group: GROUP, version: VERSION, kind: 'Experimant' } }, /^request\.kind\.kind: "Experimant" is not a kind of arena\.agilerl\.com/],
    ['a kind named __proto__', { ...base, kind: { group: GROUP, version: VERSION, kind: '__proto__' } }, /^request\.kind\.kind:/],
    ['a version our group does not have', { ...base, kind: { group: GROUP, version: 'v1', kind: 'Experiment' } }, /^request\.kind\.version: "v1"/],
    ['a CREATE without the object', { ...base, object: undefined }, /^request\.object: a CREATE of a Experiment must carry the object/],
    ['an UPDATE without the stored object', { ...base, operation: 'UPDATE' }, /^request\.oldObject:/],
  ];
  for (const [name, request, message] of malformed) {
    test(`parseReview refuses ${name}`, () => {
      assert.throws(() => parseReview(review(request)), (err: unknown) => err instanceof MalformedReview && message.test(err.message));
    });
  }
  test('parseReview leaves what is not ours to judge alone: another group, a DELETE, a subresource', () => {
    for (const request of [
      { ...base, kind: { group: 'apps', version: 'v1', kind: 'Deployment' } },
      { ...base, operation: 'DELETE', object: undefined },
      { ...base, operation: 'UPDATE', subResource: 'status' },
    ]) {
      assert.equal(parseReview(review(request)).uid, 'u');
    }
  });
});
