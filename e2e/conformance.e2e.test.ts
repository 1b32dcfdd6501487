// Conformance with the Arena platform: every manifest of the corpus (operator/api/conformance/corpus.ts) goes to the
// platform's own CLI (`arena manifest validate FILE --json`, pinned agilerl-arena) and through every layer of ours,
// and each layer must reach the platform's verdict:
//   plugin     `kubectl arena manifest validate FILE --json` (exit 0 valid, 1 invalid, 2 unreadable)
//   runtime    the worker's pre-launch check (runtime/validate.ts)
//   apiserver  a real kube-apiserver with our CRD and no webhook, then the operator: a refusal at create, or the
//              Experiment's Valid condition the operator writes
//   webhook    the same apiserver with the operator's admission webhooks registered (a dry-run create)
// A disagreement kept on purpose is listed, with its reason, in operator/api/conformance/disagreements.ts; any
// other disagreement fails, and so does a listed one that no longer happens.
//
//   node --import tsx --test e2e/conformance.e2e.test.ts     prints the table of verdicts and the disagreements
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { freePorts } from './cluster/net.ts';
import { waitFor } from './cluster/wait.ts';
import { corpus } from '../operator/api/conformance/corpus.ts';
import { DISAGREEMENTS, type Layer, type Verdict } from '../operator/api/conformance/disagreements.ts';
import { PlatformValidator, resolvePython } from '../operator/api/platform/verdict.ts';
import { GROUP, VERSION } from '../operator/api/v1alpha1/index.ts';
import type { Experiment } from '../operator/api/v1alpha1/experiment.ts';
import { toKubeError } from '../operator/kube/errors.ts';
import { createLogger } from '../operator/observability/log.ts';
import { startOperator, type RunningOperator } from '../operator/operator.ts';
import { runPlugin } from '../operator/plugin/cli.ts';
import { validateForLaunch } from '../runtime/validate.ts';

const quiet = createLogger({ silent: !process.env.LOG_LEVEL, level: process.env.LOG_LEVEL ?? 'info' });
const PLATFORM_CLI = fileURLToPath(new URL('../operator/api/conformance/platform_cli.py', import.meta.url));
const LAYERS: Layer[] = ['plugin', 'runtime', 'apiserver', 'webhook'];
const PLAIN = 'conformance-plain';
const HOOKED = 'conformance-webhook';

interface Row {
  id: string;
  file: string;
  platform: Verdict;
  /** The document the platform reads from the file, when the Kubernetes API can carry it (JSON). */
  document?: { value: unknown };
  verdicts: Partial<Record<Layer, Verdict>>;
}

const experimentName = (i: number) => `conf-${i}`;

function experimentOf(namespace: string, i: number, manifest: unknown): Experiment {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'Experiment',
    metadata: { name: experimentName(i), namespace },
    spec: { action: 'Draft', resourceClass: 'none', manifest: manifest as Experiment['spec']['manifest'] },
  };
}

async function platformVerdicts(files: string[]): Promise<Map<string, Verdict>> {
  const { stdout } = await promisify(execFile)(resolvePython(), [PLATFORM_CLI, ...files], { maxBuffer: 64 * 1024 * 1024 });
  const out = new Map<string, Verdict>();
  for (const line of stdout.split('\n').filter(Boolean)) {
    const r = JSON.parse(line) as { file: string; exit_code: number; ok: boolean | null };
    out.set(r.file, r.exit_code === 2 ? 'unreadable' : r.ok === true ? 'valid' : 'invalid');
  }
  return out;
}

async function pluginVerdict(file: string): Promise<Verdict> {
  const code = await runPlugin(['manifest', 'validate', file, '--json'], { io: { out: () => {}, err: () => {} } });
  return code === 0 ? 'valid' : code === 1 ? 'invalid' : 'unreadable';
}

describe('conformance with the Arena platform\'s own validator', () => {
  let dir: string;
  let cluster: LocalCluster;
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let operator: RunningOperator | undefined;
  const validator = new PlatformValidator();
  const rows: Row[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arena-conformance-'));
    for (const c of corpus) {
      const file = join(dir, `${c.id}.yaml`);
      await writeFile(file, c.yaml);
      rows.push({ id: c.id, file, platform: 'unreadable', verdicts: {} });
    }
    let started = Date.now();
    const reference = await platformVerdicts(rows.map((r) => r.file));
    console.log(`conformance: the platform's CLI judged ${rows.length} files in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    for (const r of rows) {
      r.platform = reference.get(r.file) ?? assert.fail(`no platform verdict for ${r.id}`);
      const parsed = await validator.parseYaml(corpus.find((c) => c.id === r.id)!.yaml);
      if ('document' in parsed) r.document = { value: parsed.document };
    }
    started = Date.now();
    cluster = await LocalCluster.start({ without: ['kwok', 'kube-scheduler', 'kube-controller-manager'] });
    await installCrds(cluster);
    kc = cluster.kubeConfig();
    custom = kc.makeApiClient(CustomObjectsApi);
    for (const name of [PLAIN, HOOKED]) cluster.kubectl(['create', 'namespace', name]);
    console.log(`conformance: control plane up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
  after(async () => {
    validator.close();
    await operator?.stop();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test(`the corpus has at least 200 manifests, valid and invalid under the platform (${corpus.length})`, () => {
    assert.ok(rows.length >= 200, `${rows.length} manifests`);
    assert.ok(rows.filter((r) => r.platform === 'valid').length >= 60);
    assert.ok(rows.filter((r) => r.platform === 'invalid').length >= 60);
  });

  test('plugin and runtime', async () => {
    for (const r of rows) {
      r.verdicts.plugin = await pluginVerdict(r.file);
      if (!r.document) continue;
      r.verdicts.runtime = (await validateForLaunch(r.document.value, validator)).ok ? 'valid' : 'invalid';
    }
  });

  test('the apiserver with the CRD alone, then the operator\'s verdict in status', async () => {
    operator = await startOperator({ kc, logger: quiet, identity: 'conformance', leaderElect: false, http: { host: '127.0.0.1', port: 0 }, manifestValidator: validator });
    const stored: Row[] = [];
    for (const [i, r] of rows.entries()) {
      if (!r.document) continue;
      try {
        await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: PLAIN, plural: 'experiments', body: experimentOf(PLAIN, i, r.document.value) });
        stored.push(r);
      } catch (err) {
        const e = toKubeError(err);
        assert.equal(e.code, 422, `${r.id}: the apiserver refuses with a validation error, not ${e.code} ${e.message}`);
        r.verdicts.apiserver = 'invalid';
      }
    }
    const validity = async () => {
      const list = (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: PLAIN, plural: 'experiments' })) as { items: Experiment[] };
      return new Map(list.items.map((e) => [e.metadata!.name!, e.status?.conditions?.find((c) => c.type === 'Valid')?.status]));
    };
    await waitFor(async () => [...(await validity()).values()].every((s) => s !== undefined), { timeoutMs: 120_000, what: 'the operator to judge every stored manifest' });
    const seen = await validity();
    for (const r of stored) r.verdicts.apiserver = seen.get(experimentName(rows.indexOf(r))) === 'True' ? 'valid' : 'invalid';
    await operator.stop();
    operator = undefined;
  });

  test('the apiserver with the operator\'s admission webhooks', async () => {
    const [port] = await freePorts(1);
    operator = await startOperator({
      kc,
      logger: quiet,
      identity: 'conformance-webhook',
      leaderElect: false,
      http: { host: '127.0.0.1', port: 0 },
      manifestValidator: validator,
      webhook: { host: '127.0.0.1', port: port!, url: `https://127.0.0.1:${port}`, namespace: HOOKED, configName: 'arena-conformance', secretName: 'arena-conformance-tls' },
    });
    const dryRun = (i: number, manifest: unknown) =>
      custom.createNamespacedCustomObjectWithHttpInfo({ group: GROUP, version: VERSION, namespace: HOOKED, plural: 'experiments', body: experimentOf(HOOKED, i, manifest), dryRun: 'All' });
    // The apiserver learns of new webhook configurations through a watch: wait until a refusal comes from ours.
    await waitFor(
      async () => {
        try {
          await dryRun(0, { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' }, training: { pop_size: 0 } });
          return false;
        } catch (err) {
          return /admission webhook/.test(toKubeError(err).message);
        }
      },
      { timeoutMs: 30_000, what: 'the apiserver to call the webhook' },
    );
    for (const [i, r] of rows.entries()) {
      if (!r.document) continue;
      try {
        await dryRun(i, r.document.value);
        r.verdicts.webhook = 'valid';
      } catch (err) {
        const e = toKubeError(err);
        assert.equal(e.code, 422, `${r.id}: refused as invalid, not ${e.code} ${e.message}`);
        r.verdicts.webhook = 'invalid';
      }
    }
  });

  test('every layer reaches the platform\'s verdict, but for the listed disagreements', () => {
    const found = new Set<string>();
    const table: string[] = [];
    for (const r of rows) {
      for (const layer of LAYERS) {
        const v = r.verdicts[layer];
        if (v !== undefined && v !== r.platform) found.add(`${r.id} ${layer}`);
      }
      table.push(`${r.id.padEnd(48)} platform ${r.platform.padEnd(10)} ${LAYERS.map((l) => `${l} ${(r.verdicts[l] ?? '-').padEnd(10)}`).join(' ')}`);
    }
    const listed = new Set(DISAGREEMENTS.map((d) => `${d.id} ${d.layer}`));
    const count = (v: Verdict) => rows.filter((r) => r.platform === v).length;
    const apiOnly = rows.filter((r) => !r.document).length;
    console.log(table.join('\n'));
    console.log(
      `conformance: ${rows.length} manifests (platform: ${count('valid')} valid, ${count('invalid')} invalid, ${count('unreadable')} unreadable; ` +
        `${apiOnly} exist only as files: the Kubernetes API carries JSON), ${found.size} disagreements, ${listed.size} listed on purpose`,
    );
    for (const d of DISAGREEMENTS) console.log(`  on purpose: ${d.id} ${d.layer}: ${d.reason}`);
    const unlisted = [...found].filter((k) => !listed.has(k));
    const stale = [...listed].filter((k) => !found.has(k));
    assert.deepEqual(unlisted, [], 'layers that disagree with the platform');
    assert.deepEqual(stale, [], 'listed disagreements that no longer happen: remove them from disagreements.ts');
    for (const r of rows) assert.ok(r.verdicts.plugin, `${r.id}: every case reaches the plugin`);
  });
});
