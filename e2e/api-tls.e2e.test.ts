// The operator's API over TLS on a real control plane: the leader makes the serving certificate, puts the CA in
// each namespace that runs workers, and workers mount it; a report goes through only to a server that verifies
// against it; plain HTTP to the API port is no request at all; /metrics is served only on the ops port.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { createGpuNodes, gpuProducts, gpuTaint } from './cluster/gpu-nodes.ts';
import { freePorts } from './cluster/net.ts';
import { waitFor } from './cluster/wait.ts';
import { Arena, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { startOperator, type RunningOperator } from '../operator/operator.ts';
import { createLogger } from '../operator/observability/log.ts';
import { createAuthority } from '../operator/pki/certs.ts';
import { REPORT_CA_FILE } from '../operator/controllers/experiment/workers.ts';
import { ServerNotVerified, verifyingFetch } from '../runtime/report-transport.ts';
import { Reporter } from '../runtime/reporter.ts';

const quiet = createLogger({ silent: true });

describe('the operator API over TLS', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let op: RunningOperator;
  let dir: string;
  const registry = new Registry();
  const reports = async (result: string) => Number(new RegExp(`^arena_runtime_reports_total\\{result="${result}"\\} (\\S+)$`, 'm').exec(await (await fetch(`${op.ops.url}/metrics`)).text())?.[1] ?? 0);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arena-api-tls-'));
    cluster = await LocalCluster.start();
    await installCrds(cluster);
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    await createGpuNodes(kc, { prefix: 'gpu', count: 1, gpus: 4, gpu: gpuProducts.A100, taints: [gpuTaint], labels: { pool: 'train' } });
    await arena.apply(trainingCluster('onprem', { workerNodeSelector: { pool: 'train' } }));
    const [port] = await freePorts(1);
    op = await startOperator({
      kc,
      logger: quiet,
      registry,
      leaseNamespace: 'default',
      leaderElect: false,
      http: { host: '127.0.0.1', port, tls: { ipAddresses: ['127.0.0.1'] } },
      reportUrl: `https://127.0.0.1:${port}`,
    });
    await waitFor(async () => (await fetch(`${op.ops.url}/readyz`)).status === 200, { timeoutMs: 30_000, what: 'the operator to load its certificate and be ready' });
  });
  after(async () => {
    await op?.stop();
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the leader makes the serving Secret; the API presents it; plain HTTP and /metrics get nothing there', async () => {
    const secret = await arena.core.readNamespacedSecret({ namespace: 'default', name: 'arena-operator-api-tls' });
    const text = (k: string) => Buffer.from(secret.data![k]!, 'base64').toString('utf8');
    const cert = new X509Certificate(text('tls.crt'));
    assert.ok(cert.checkIP('127.0.0.1'), 'the certificate names the report URL host');
    assert.ok(cert.verify(new X509Certificate(text('ca.crt')).publicKey), 'signed by the CA the Secret hands out');
    assert.equal(op.http.certificate(), text('tls.crt'), 'this replica serves the Secret\'s pair');

    const caFile = join(dir, 'ca.crt');
    await writeFile(caFile, text('ca.crt'));
    const get = verifyingFetch(caFile);
    assert.equal((await get(`${op.http.url}/healthz`)).status, 200);
    assert.equal((await get(`${op.http.url}/metrics`)).status, 404, 'no metrics on the API port');
    assert.equal((await fetch(`${op.ops.url}/metrics`)).status, 200, 'metrics on the ops port');

    const before = await reports('Unauthorized');
    const reply = await new Promise<string>((resolve) => {
      const s = net.connect(op.http.port, '127.0.0.1', () => s.write('POST /runtime/v1/reports HTTP/1.1\r\nHost: op\r\nAuthorization: Bearer x\r\nContent-Length: 2\r\n\r\n{}'));
      let got = '';
      s.on('data', (c) => (got += c.toString('latin1')));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
      s.setTimeout(3000, () => s.destroy());
    });
    assert.doesNotMatch(reply, /^HTTP\/1\.1 [0-9]{3}/, `a plain-HTTP request to the TLS port is not answered as HTTP: ${JSON.stringify(reply.slice(0, 80))}`);
    assert.equal(await reports('Unauthorized'), before, 'the plain-HTTP request never reached the report API');
  });

  test('workers get the CA in their namespace; a report reaches the operator only through a server that verifies', async () => {
    const ns = 'tls-team';
    await arena.namespace(ns);
    await arena.apply(resourceClass('a100-x1', 'onprem', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 4, gpuProduct: gpuProducts.A100.product } }));
    await arena.apply(experiment(ns, 'e1', 'a100-x1'));
    const running = await arena.waitPhase(ns, 'e1', 'Running');
    const [pod] = await arena.workerPods(ns, running);
    const c = pod!.spec!.containers[0]!;
    assert.equal(c.env!.find((e) => e.name === 'ARENA_REPORT_URL')?.value, op.http.url);
    assert.equal(c.env!.find((e) => e.name === 'ARENA_REPORT_CA_FILE')?.value, REPORT_CA_FILE);
    assert.deepEqual(pod!.spec!.volumes!.find((v) => v.name === 'report-ca')?.configMap?.name, 'arena-operator-ca');

    const cm = await arena.core.readNamespacedConfigMap({ namespace: ns, name: 'arena-operator-ca' });
    const secret = await arena.core.readNamespacedSecret({ namespace: 'default', name: 'arena-operator-api-tls' });
    assert.equal(cm.data!['ca.crt'], Buffer.from(secret.data!['ca-bundle.crt']!, 'base64').toString('utf8'), 'the namespace holds every CA the Secret trusts');
    const goodCa = join(dir, 'worker-ca.crt');
    await writeFile(goodCa, cm.data!['ca.crt']!);
    const impostor = join(dir, 'impostor-ca.crt');
    await writeFile(impostor, (await createAuthority('impostor')).certPem);

    const token = await arena.runToken(ns, running);
    const identity = { experiment: { namespace: ns, name: 'e1' }, run: running.status!.run!, attempt: running.status!.attempt!, worker: 0 };
    const accepted = await reports('accepted');
    // A worker whose CA file does not vouch for the server keeps its events and never gets an acknowledgement.
    const refusing = Reporter.open({ baseUrl: op.http.url, token, identity, bufferPath: join(dir, 'refusing.jsonl'), fetch: verifyingFetch(impostor), backoff: { initialMs: 50, maxMs: 100 } });
    refusing.report({ type: 'progress', step: 10, maxSteps: 100, at: new Date().toISOString() });
    assert.equal(await refusing.flush(1500), false, 'nothing is acknowledged by an unverifiable server');
    await refusing.close();
    assert.equal(await reports('accepted'), accepted, 'the operator received no report from it');
    const direct = await verifyingFetch(impostor)(`${op.http.url}/runtime/v1/reports`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{}' }).catch((e: unknown) => e);
    assert.ok(direct instanceof ServerNotVerified, String(direct));

    const verifying = Reporter.open({ baseUrl: op.http.url, token, identity, bufferPath: join(dir, 'verifying.jsonl'), fetch: verifyingFetch(goodCa) });
    verifying.report({ type: 'progress', step: 25, maxSteps: 100, at: new Date().toISOString() });
    assert.equal(await verifying.flush(10_000), true, 'acknowledged through the verified connection');
    await verifying.close();
    assert.equal(await reports('accepted'), accepted + 1);
    await arena.waitExperiment(ns, 'e1', (s) => s.progress?.percent === 25, 'progress 25%');
  });

  test('a CA ConfigMap deleted while workers run is put back', async () => {
    await arena.core.deleteNamespacedConfigMap({ namespace: 'tls-team', name: 'arena-operator-ca' });
    await waitFor(
      async () =>
        !!(await arena.core.readNamespacedConfigMap({ namespace: 'tls-team', name: 'arena-operator-ca' }).catch(() => undefined))?.data?.['ca.crt'],
      { timeoutMs: 20_000, what: 'the CA ConfigMap to be recreated' },
    );
  });
});
