// The admission webhook through a real kube-apiserver: the operator creates its webhook configurations (URL form,
// pointing at https://127.0.0.1:<port>, with the operator's own CA bundle), the apiserver calls it, and its answers
// reach the client: warnings as Warning headers (kubectl prints them), defaults in the stored object, denials with
// the field named. Then a forced certificate rotation under a steady stream of requests, watched from the
// configurations' caBundle and from a second replica that serves whatever the Secret holds.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { AdmissionregistrationV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { freePorts } from './cluster/net.ts';
import { waitFor } from './cluster/wait.ts';
import { Arena, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { GROUP, VERSION } from '../operator/api/v1alpha1/index.ts';
import type { Experiment } from '../operator/api/v1alpha1/experiment.ts';
import { toKubeError } from '../operator/kube/errors.ts';
import { createLogger } from '../operator/observability/log.ts';
import { startOperator, type RunningOperator } from '../operator/operator.ts';
import { FAILURE_POLICY, WEBHOOK_NAMES } from '../operator/webhook/configurations.ts';
import { splitBundle } from '../operator/webhook/serving-cert.ts';
import type { WebhookConfig } from '../operator/webhook/wiring.ts';

const quiet = createLogger({ silent: !process.env.LOG_LEVEL, level: process.env.LOG_LEVEL ?? 'info' });
const ns = 'default';
const CONFIG = 'arena-operator-e2e';
const SECRET = 'arena-webhook-e2e-tls';

describe('admission webhook through a real kube-apiserver', () => {
  let cluster: LocalCluster;
  let kc: KubeConfig;
  let arena: Arena;
  let custom: CustomObjectsApi;
  let core: CoreV1Api;
  let admission: AdmissionregistrationV1Api;
  let leader: RunningOperator;
  let follower: RunningOperator | undefined;

  const webhookConfig = (port: number): WebhookConfig => ({
    host: '127.0.0.1',
    port,
    url: `https://127.0.0.1:${port}`,
    namespace: ns,
    configName: CONFIG,
    secretName: SECRET,
    // Short so the test sees a whole rotation: the new CA is served 1 s after it is published, and the old one
    // leaves the bundle 4 s after the switch.
    certificate: { propagationMs: 1000, overlapMs: 4000 },
  });

  /** A dry-run create that returns the stored object and the Warning headers the apiserver sent. */
  async function dryRunCreate(body: Experiment): Promise<{ object: Experiment; warning: string }> {
    const res = await custom.createNamespacedCustomObjectWithHttpInfo({ group: GROUP, version: VERSION, namespace: ns, plural: 'experiments', body, dryRun: 'All' });
    return { object: res.data as Experiment, warning: res.headers.warning ?? '' };
  }

  const secretData = async () => {
    const s = await core.readNamespacedSecret({ namespace: ns, name: SECRET });
    return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  };
  const bundles = async () => {
    const v = await admission.readValidatingWebhookConfiguration({ name: CONFIG });
    const m = await admission.readMutatingWebhookConfiguration({ name: CONFIG });
    return [v, m].map((c) => Buffer.from(c.webhooks![0]!.clientConfig.caBundle!, 'base64').toString('utf8'));
  };
  const missingClass = (name: string) => experiment(ns, name, 'no-such-class');


  /**
   * kubectl with input on stdin: stdout, stderr and the exit status. Not cluster.kubectl: that waits synchronously,
   * and the webhook answering the apiserver runs in this very process, so it could not answer until the timeout.
   */
  const kubectl = (args: string[], input: string) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(join(cluster.binDir, 'kubectl'), args, { env: cluster.env(), encoding: 'utf8' }, (err, stdout, stderr) =>
        resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      );
      child.stdin!.end(input);
    });

  before(async () => {
    cluster = await LocalCluster.start({ without: ['kwok', 'kube-scheduler', 'kube-controller-manager'] });
    await installCrds(cluster);
    kc = cluster.kubeConfig();
    arena = new Arena(kc);
    custom = kc.makeApiClient(CustomObjectsApi);
    core = kc.makeApiClient(CoreV1Api);
    admission = kc.makeApiClient(AdmissionregistrationV1Api);
    const [port] = await freePorts(1);
    leader = await startOperator({ kc, logger: quiet, identity: 'leader', http: { host: '127.0.0.1', port: 0 }, leaseNamespace: ns, webhook: webhookConfig(port!) });
    await waitFor(() => leader.isLeader(), { timeoutMs: 20_000, what: 'the operator to lead' });
    // The apiserver picks up new webhook configurations through its own watch; a warning proves the path works.
    await waitFor(async () => (await dryRunCreate(missingClass('probe'))).warning.includes('no-such-class'), {
      timeoutMs: 30_000,
      what: 'the apiserver to call the webhook',
    });
  });
  after(async () => {
    await follower?.stop();
    await leader?.stop();
    await cluster?.stop();
  });

  test('the operator registers both webhooks with its own CA bundle and the chosen policies', async () => {
    const v = await admission.readValidatingWebhookConfiguration({ name: CONFIG });
    const m = await admission.readMutatingWebhookConfiguration({ name: CONFIG });
    const data = await secretData();
    for (const [config, name, path] of [
      [v, WEBHOOK_NAMES.validate, '/validate'],
      [m, WEBHOOK_NAMES.mutate, '/mutate'],
    ] as const) {
      const hook = config.webhooks![0]!;
      assert.equal(hook.name, name);
      assert.equal(hook.clientConfig.url, `${leader.webhook!.server.url}${path}`);
      assert.equal(Buffer.from(hook.clientConfig.caBundle!, 'base64').toString('utf8'), data['ca-bundle.crt']);
      assert.equal(hook.failurePolicy, FAILURE_POLICY);
      assert.equal(hook.sideEffects, 'None');
      assert.equal(hook.matchPolicy, 'Equivalent');
      assert.equal(hook.timeoutSeconds, 5);
      assert.deepEqual(hook.admissionReviewVersions, ['v1']);
      assert.deepEqual(hook.rules![0]!.operations, ['CREATE', 'UPDATE']);
      assert.deepEqual([...hook.rules![0]!.resources!].sort(), ['deployments', 'experiments', 'resourceclasses', 'trainingclusters']);
    }
    const served = new X509Certificate(data['tls.crt']!);
    assert.equal(served.checkIP('127.0.0.1'), '127.0.0.1');
    assert.ok(served.checkIssued(new X509Certificate(data['ca.crt']!)));
  });

  test('a reference to a missing ResourceClass is allowed, with a warning the client sees', async () => {
    const { warning } = await dryRunCreate(missingClass('warned'));
    assert.match(warning, /^299 - "spec\.resourceClass: ResourceClass \\?"no-such-class\\?" not found; a Train waits in Pending until it is created"/);
    const applied = await kubectl(['apply', '-f', '-'], stringify(missingClass('warned-kubectl')));
    assert.equal(applied.status, 0, applied.stderr);
    assert.match(applied.stderr, /Warning: spec\.resourceClass: ResourceClass "no-such-class" not found/);
    assert.match(applied.stdout, /experiment\.arena\.agilerl\.com\/warned-kubectl created/);
  });

  test('Train without a resourceClass gets the only enabled class', async () => {
    await arena.apply(trainingCluster('onprem'));
    await arena.apply(resourceClass('only-one', 'onprem'));
    await arena.apply(resourceClass('switched-off', 'onprem', { enabled: false }));
    const body = experiment(ns, 'defaulted', 'x');
    delete body.spec.resourceClass;
    // The operator's class cache follows the API by a moment.
    await waitFor(async () => (await dryRunCreate(body)).object.spec.resourceClass === 'only-one', { timeoutMs: 15_000, what: 'the class cache to hold only-one' });
    await arena.apply(body);
    const stored = await arena.getExperiment(ns, 'defaulted');
    assert.equal(stored.spec.resourceClass, 'only-one');

    await arena.apply(resourceClass('second', 'onprem'));
    const again = structuredClone(body);
    again.metadata!.name = 'not-defaulted';
    await waitFor(
      async () => {
        try {
          await dryRunCreate(again);
          return false;
        } catch (err) {
          // Two enabled classes: nothing is guessed, and the CRD's own rule asks for the field.
          return toKubeError(err).message.includes('resourceClass is required to Train');
        }
      },
      { timeoutMs: 15_000, what: 'two enabled classes to leave resourceClass unset' },
    );
  });

  test('a manifest the platform refuses is refused in the platform\'s words; a value it coerces is stored as it reads it', async () => {
    // The CRD keeps manifest keys it does not declare, so the platform's verdict sees them (and kubectl prints it).
    const bad = experiment(ns, 'bad-mutation', 'only-one');
    bad.spec.manifest.mutation = { mutation_sdd: 0.2 } as never;
    await assert.rejects(dryRunCreate(bad), (err: unknown) => {
      const e = toKubeError(err);
      assert.equal(e.code, 422);
      assert.match(e.message, /admission webhook "validate\.arena\.agilerl\.com" denied the request: Experiment "bad-mutation" is invalid: spec\.manifest\.mutation\.mutation_sdd: Extra inputs are not permitted/);
      assert.deepEqual(e.causes?.map((c) => c.field), ['spec.manifest.mutation.mutation_sdd']);
      return true;
    });
    const shown = await kubectl(['apply', '-f', '-'], stringify(bad));
    assert.notEqual(shown.status, 0);
    // kubectl prints a 422 from its causes, as it prints the apiserver's own validation errors.
    assert.match(shown.stderr, /The Experiment "bad-mutation" is invalid: spec\.manifest\.mutation\.mutation_sdd: Extra inputs are not permitted/);

    const typed = experiment(ns, 'typed-as-text', 'only-one');
    typed.spec.manifest.training = { ...typed.spec.manifest.training, pop_size: '2' as never };
    const { object, warning } = await dryRunCreate(typed);
    assert.equal(object.spec.manifest.training?.pop_size, 2, 'stored as the integer the platform reads');
    // A Warning header quotes its text, so the value's own quotes arrive escaped.
    assert.match(warning, /spec\.manifest\.training\.pop_size: \\?"2\\?" stored as 2, the value the Arena platform reads it as/);
  });

  test('with an outdated CRD, the webhook still refuses what the operator refuses, and fills the defaults in', async () => {
    // An older CRD (as Helm leaves it: it never upgrades CRDs) with no maxRetries default and no CEL rules.
    const schema = '/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties';
    cluster.kubectl([
      'patch',
      'crd',
      `experiments.${GROUP}`,
      '--type=json',
      '-p',
      JSON.stringify([
        { op: 'remove', path: `${schema}/maxRetries/default` },
        { op: 'remove', path: `${schema.replace(/\/properties$/, '')}/x-kubernetes-validations` },
      ]),
    ]);
    // An update that changes a field fixed once set (a transition rule the CRD had as CEL), judged against the
    // stored object: once the apiserver serves the outdated schema, the refusal comes from the webhook.
    const resumed = experiment(ns, 'resumed', 'only-one', { resumeFrom: { experiment: 'defaulted', checkpoint: 'best' } });
    await arena.apply(resumed);
    let refusal = '';
    await waitFor(
      async () => {
        try {
          await arena.patchExperiment(ns, 'resumed', { resumeFrom: { experiment: 'defaulted', checkpoint: 'final' } });
          assert.fail('the change of resumeFrom was stored');
        } catch (err) {
          const e = toKubeError(err);
          assert.equal(e.code, 422);
          refusal = e.message;
          return /admission webhook "validate\.arena\.agilerl\.com" denied the request/.test(e.message);
        }
      },
      { timeoutMs: 15_000, what: 'the outdated CRD to take effect' },
    );
    assert.match(refusal, /denied the request: Experiment "resumed" is invalid: spec\.resumeFrom: resumeFrom cannot change once set: create a new experiment/);

    const noRetries = experiment(ns, 'no-retries', 'only-one');
    delete noRetries.spec.maxRetries;
    await arena.apply(noRetries);
    assert.equal((await arena.getExperiment(ns, 'no-retries')).spec.maxRetries, 3, 'the webhook filled in the default the CRD lacks');
  });

  test('a forced rotation: no request fails, the caBundle changes and keeps both CAs for a while, a second replica reloads', async () => {
    const [port2] = await freePorts(1);
    follower = await startOperator({ kc, logger: quiet, identity: 'follower', http: { host: '127.0.0.1', port: 0 }, leaseNamespace: ns, webhook: webhookConfig(port2!) });
    assert.equal(follower.isLeader(), false);
    const before = await secretData();
    assert.equal(follower.webhook!.server.certificate(), before['tls.crt'], 'the follower serves the Secret from the start');
    const [bundleBefore] = await bundles();

    // A steady stream of requests across the rotation; each must have reached the webhook (its warning proves it:
    // with failurePolicy Ignore a failed call would pass silently, without one).
    let stop = false;
    let calls = 0;
    const misses: string[] = [];
    const stream = (async () => {
      while (!stop) {
        calls++;
        try {
          const { warning } = await dryRunCreate(missingClass(`during-${calls}`));
          if (!warning.includes('no-such-class')) misses.push(`call ${calls}: ${warning || 'no warning'}`);
        } catch (err) {
          misses.push(`call ${calls}: ${toKubeError(err).message}`);
        }
      }
    })();
    try {
      leader.webhook!.rotateNow();
      await waitFor(async () => (await secretData())['tls.crt'] !== before['tls.crt'], { timeoutMs: 20_000, what: 'the new certificate to be promoted' });
      const after = await secretData();
      assert.notEqual(after['ca.crt'], before['ca.crt'], 'a new CA');
      const during = await bundles();
      for (const b of during) {
        assert.notEqual(b, bundleBefore, 'the caBundle changed');
        assert.deepEqual(splitBundle(b).sort(), splitBundle(after['ca.crt']! + before['ca.crt']!).sort(), 'old and new CA both trusted during the overlap');
      }
      await waitFor(() => leader.webhook!.server.certificate() === after['tls.crt'] && follower!.webhook!.server.certificate() === after['tls.crt'], {
        timeoutMs: 10_000,
        what: 'both replicas to serve the new certificate',
      });
      // The follower's port, dialled with only the new CA, presents the new leaf.
      const presented = await new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: port2!, ca: after['ca.crt'] }, () => {
          resolve(s.getPeerX509Certificate()!.fingerprint256);
          s.end();
        });
        s.on('error', reject);
      });
      assert.equal(presented, new X509Certificate(after['tls.crt']!).fingerprint256);

      await waitFor(async () => (await bundles()).every((b) => splitBundle(b).length === 1), { timeoutMs: 20_000, what: 'the old CA to leave the bundle' });
      const final = await bundles();
      for (const b of final) assert.deepEqual(splitBundle(b), splitBundle(after['ca.crt']!));
    } finally {
      stop = true;
      await stream;
    }
    assert.ok(calls >= 5, `requests kept flowing through the rotation (${calls})`);
    assert.deepEqual(misses, [], 'every request reached the webhook');
    const { warning } = await dryRunCreate(missingClass('after-rotation'));
    assert.match(warning, /no-such-class/);
  });
});
