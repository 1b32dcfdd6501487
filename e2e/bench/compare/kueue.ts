// Kueue (sigs.k8s.io/kueue, built by e2e/toolchain/build-kueue.sh) as a plain process of the benchmark, out of
// cluster, against the benchmark's API server, with its own client identity so the audit log tells its requests
// apart. How it is configured, and why:
// - Its admission webhooks are not registered with the API server. Kueue's webhook server only serves a
//   certificate for <service>.<namespace>.svc, which the API server reaches through a Service's ClusterIP or
//   endpoints; neither can point at loopback here (EndpointSlice validation refuses 127.0.0.1, and there is no
//   kube-proxy). What they would do for these Jobs (suspend them, add the queue label) the benchmark does itself
//   by creating the Jobs suspended and labelled; the validating webhooks would only add latency to Kueue's side.
// - internalCertManagement stays on: it writes a serving certificate to a folder in the cluster's directory for
//   the webhook server, which Kueue starts regardless (the alternative, supplied certificates, also makes Kueue read
//   its metrics certificate from a fixed /etc/kueue path). Its rotator insists on injecting its CA into the
//   conversion webhooks of five CRDs, so those CRDs get the conversion stanza Kueue's own kustomization adds; the
//   API server never calls it because every object is created, stored and read as v1beta2.
// - Only the batch/job integration; no leader election; the visibility API server off (it would bind a fixed
//   port); metrics off (requests are counted from the API server's audit log for both controllers alike).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { CoreV1Api } from '@kubernetes/client-node';
import { toolchainDir, type LocalCluster } from '../../cluster/control-plane.ts';
import { freePorts, get } from '../../cluster/net.ts';
import { waitFor } from '../../cluster/wait.ts';

export const kueueNamespace = 'kueue-system';
export const kueueVersion = 'v1beta2';
const webhookSecret = 'kueue-webhook-server-cert';
const conversionCrds = ['localqueues', 'clusterqueues', 'workloads', 'cohorts', 'multikueueclusters'];

/** Finds Kueue's binary folder (kueue, crds/), building it on first use. */
export function kueueDir(): string {
  return toolchainDir('build-kueue.sh', 'ARENA_KUEUE_DIR', 'kueue');
}

/** Installs Kueue's CRDs (from its module, copied by build-kueue.sh) and its namespace. */
export async function installKueue(cluster: LocalCluster, dir: string): Promise<void> {
  const docs: string[] = [];
  for (const file of readdirSync(join(dir, 'crds')).filter((f) => f.endsWith('.yaml')).sort()) {
    const crd = parse(readFileSync(join(dir, 'crds', file), 'utf8')) as { spec: { names: { plural: string }; conversion?: unknown } };
    if (conversionCrds.includes(crd.spec.names.plural)) {
      crd.spec.conversion = {
        strategy: 'Webhook',
        webhook: {
          conversionReviewVersions: ['v1'],
          clientConfig: { service: { namespace: kueueNamespace, name: 'kueue-webhook-service', path: '/convert' } },
        },
      };
    }
    docs.push(stringify(crd));
  }
  cluster.kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=arena-bench', '-f', '-'], docs.join('---\n'));
  // kubectl wait fails outright on a CRD whose status is not written yet, hence the retries.
  const crds = [...conversionCrds, 'resourceflavors'].map((p) => `crd/${p}.kueue.x-k8s.io`);
  await waitFor(() => (cluster.kubectl(['wait', '--for=condition=Established', '--timeout=10s', ...crds]), true), { timeoutMs: 60_000, what: "Kueue's CRDs to be Established" });
  cluster.kubectl(['create', 'namespace', kueueNamespace]);
  // The rotator fills this Secret but does not create it (Kueue's manifests ship it empty).
  cluster.kubectl(['create', 'secret', 'generic', webhookSecret, '-n', kueueNamespace]);
}

/** One ResourceFlavor and a ClusterQueue whose quota covers the whole fleet, open to every namespace. */
export function applyClusterQueue(cluster: LocalCluster, quota: { cpu: number; memoryGi: number; gpus: number }): void {
  const objs = [
    { apiVersion: `kueue.x-k8s.io/${kueueVersion}`, kind: 'ResourceFlavor', metadata: { name: 'default' } },
    {
      apiVersion: `kueue.x-k8s.io/${kueueVersion}`,
      kind: 'ClusterQueue',
      metadata: { name: 'fleet' },
      spec: {
        namespaceSelector: {},
        resourceGroups: [
          {
            coveredResources: ['cpu', 'memory', 'nvidia.com/gpu'],
            flavors: [
              {
                name: 'default',
                resources: [
                  { name: 'cpu', nominalQuota: String(quota.cpu) },
                  { name: 'memory', nominalQuota: `${quota.memoryGi}Gi` },
                  { name: 'nvidia.com/gpu', nominalQuota: String(quota.gpus) },
                ],
              },
            ],
          },
        ],
      },
    },
  ];
  cluster.kubectl(['apply', '-f', '-'], objs.map((o) => stringify(o)).join('---\n'));
}

export function applyLocalQueue(cluster: LocalCluster, namespace: string): void {
  const lq = { apiVersion: `kueue.x-k8s.io/${kueueVersion}`, kind: 'LocalQueue', metadata: { name: 'queue', namespace }, spec: { clusterQueue: 'fleet' } };
  cluster.kubectl(['apply', '-f', '-'], stringify(lq));
}

export interface KueueProcess {
  child: ChildProcess;
  pid: number;
  logFile: string;
  stop(): Promise<void>;
}

/** Starts Kueue with `kubeconfig` and the same client rate limit as the operator; resolves once it is ready. */
export async function startKueue(
  cluster: LocalCluster,
  dir: string,
  opts: { kubeconfig: string; qps: number; burst: number; name: string },
): Promise<KueueProcess> {
  const [health, webhook] = await freePorts(2);
  const certDir = join(cluster.dir, `${opts.name}-certs`);
  mkdirSync(certDir, { recursive: true });
  const config = {
    apiVersion: `config.kueue.x-k8s.io/${kueueVersion}`,
    kind: 'Configuration',
    namespace: kueueNamespace,
    health: { healthProbeBindAddress: `127.0.0.1:${health}` },
    metrics: { bindAddress: '0' },
    webhook: { host: '127.0.0.1', port: webhook, certDir },
    leaderElection: { leaderElect: false },
    internalCertManagement: { enable: true, webhookServiceName: 'kueue-webhook-service', webhookSecretName: webhookSecret },
    clientConnection: { qps: opts.qps, burst: opts.burst },
    // Kueue's shipped defaults (config/components/manager/controller_manager_config.yaml).
    controller: { groupKindConcurrency: { 'Job.batch': 5, 'Workload.kueue.x-k8s.io': 5, 'LocalQueue.kueue.x-k8s.io': 1, 'ClusterQueue.kueue.x-k8s.io': 1, 'ResourceFlavor.kueue.x-k8s.io': 1 } },
    integrations: { frameworks: ['batch/job'] },
  };
  const configFile = join(cluster.dir, `${opts.name}-config.yaml`);
  writeFileSync(configFile, stringify(config));
  const logFile = join(cluster.dir, 'logs', `${opts.name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(join(dir, 'kueue'), [`--config=${configFile}`, '--feature-gates=VisibilityOnDemand=false', '--zap-log-level=info'], {
    env: { ...process.env, KUBECONFIG: opts.kubeconfig },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  try {
    // In a pod the kubelet mounts the Secret the rotator fills at certDir, and the rotator waits for the files to
    // appear there; out of cluster the benchmark plays that part.
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await waitFor(
      async () => {
        if (exited()) throw new Error('kueue exited');
        const data = (await core.readNamespacedSecret({ namespace: kueueNamespace, name: webhookSecret })).data ?? {};
        if (!data['tls.crt'] || !data['tls.key']) return false;
        for (const k of ['tls.crt', 'tls.key', 'ca.crt']) if (data[k]) writeFileSync(join(certDir, k), Buffer.from(data[k], 'base64'), { mode: 0o600 });
        return true;
      },
      { timeoutMs: 60_000, what: "kueue's webhook certificate Secret to be filled" },
    );
    await waitFor(
      async () => {
        if (exited()) throw new Error('kueue exited');
        return (await get(`http://127.0.0.1:${health}/readyz`)).status === 200;
      },
      { timeoutMs: 120_000, what: 'kueue to become ready' },
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- ${logFile} ---\n${readFileSync(logFile, 'utf8').slice(-12000)}`);
  }
  return {
    child,
    pid: child.pid!,
    logFile,
    stop: async () => {
      if (exited()) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await done;
      clearTimeout(t);
    },
  };
}
