// Benchmark (not a test): the same gang workloads through Kueue and through our operator, one after the other, on
// one control plane and one simulated GPU fleet (make bench-compare). For each workload and controller it prints
// the admission rate, the time until every pod is Running, per-gang create -> Running percentiles, the
// controller's API requests per admission (from the API server's audit log, by the controller's own client
// identity), its CPU seconds and its resident memory (sampled from /proc of its own process), and closes with one
// `compare:` line per workload and one `memory:` line for the operator.
//
// Run: node --import tsx e2e/bench/compare.bench.ts [--scale 1] [--only one-pod,four-pod,deep-queue]
//      [--qps 200 --burst 400] [--cpu-prof-dir DIR]
//
// An admission is counted, for both, when every pod of the gang exists: for Kueue that is its Workload admitted,
// the Job unsuspended and the Job controller's pods created; for ours, the Experiment admitted and its worker pods
// created. kube-scheduler binds both, kwok runs both. Kueue is set up as e2e/bench/compare/kueue.ts describes.
import { parseArgs } from 'node:util';
import { cpSync, mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import * as os from 'node:os';
import { tmpdir } from 'node:os';
import { BatchV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type V1Job } from '@kubernetes/client-node';
import { LocalCluster, repoRoot } from '../cluster/control-plane.ts';
import { installCrds } from '../cluster/crds.ts';
import { createGpuNodes, gpuProducts } from '../cluster/gpu-nodes.ts';
import { waitFor } from '../cluster/wait.ts';
import { replicaKubeconfig } from '../chaos/identities.ts';
import { Arena, experiment, resourceClass, trainingCluster } from '../support/fixtures.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { createLogger } from '../../operator/observability/log.ts';
import { GROUP, VERSION } from '../../operator/api/v1alpha1/index.ts';
import { Informer, leanPod, type LeanPod } from '../../operator/kube/informer.ts';
import { applyClusterQueue, applyLocalQueue, installKueue, kueueDir, kueueVersion, startKueue, type KueueProcess } from './compare/kueue.ts';
import { auditCounts, fileSize, percentile, ProcessSampler, writeUsersAuditPolicy, type RequestCounts } from './compare/measure.ts';

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    only: { type: 'string', default: 'one-pod,four-pod,deep-queue' },
    qps: { type: 'string', default: '200' },
    burst: { type: 'string', default: '400' },
    'cpu-prof-dir': { type: 'string' },
  },
});
const scale = Number(values.scale);
if (!(scale > 0 && scale <= 1)) throw new Error(`--scale must be a number in (0, 1], got ${values.scale}`);
const qps = Number(values.qps);
const burst = Number(values.burst);

interface Workload {
  name: string;
  gangs: number;
  podsPerGang: number;
  gpusPerPod: number;
  /** Pods finish as soon as they run (the deep queue drains through the fleet); otherwise they stay Running. */
  finishOnRunning: boolean;
}
const nodeCount = Math.round(1000 * scale);
const gpusPerNode = 8;
const allWorkloads: Workload[] = [
  { name: 'one-pod', gangs: Math.round(1000 * scale), podsPerGang: 1, gpusPerPod: 1, finishOnRunning: false },
  { name: 'four-pod', gangs: Math.round(250 * scale), podsPerGang: 4, gpusPerPod: 1, finishOnRunning: false },
  // Whole-node gangs: the fleet holds nodeCount of them at a time, so five times that queue behind each other.
  { name: 'deep-queue', gangs: Math.round(5000 * scale), podsPerGang: 1, gpusPerPod: gpusPerNode, finishOnRunning: true },
];
const only = new Set(values.only.split(','));
for (const o of only) if (!allWorkloads.some((w) => w.name === o)) throw new Error(`--only: unknown workload ${o}; known: ${allWorkloads.map((w) => w.name).join(', ')}`);
const workloads = allWorkloads.filter((w) => only.has(w.name));

type System = 'kueue' | 'arena';
const users: Record<System, string> = { kueue: 'bench-kueue', arena: 'bench-arena-operator' };
/** Kueue's Jobs are turned into pods by kube-controller-manager's Job controller, reported beside Kueue. */
const jobController = 'system:serviceaccount:kube-system:job-controller';

interface Result {
  system: System;
  workload: Workload;
  admissionsPerS: number;
  allRunningS: number;
  p50: number;
  p99: number;
  requests: RequestCounts;
  jobController?: RequestCounts;
  cpuS: number;
  peakRssMiB: number;
  lastRssMiB: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (b: number) => b / 2 ** 20;
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const quiet = createLogger({ silent: true });

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

// The audit policy lives outside the cluster's folder, which LocalCluster.start recreates.
const name = `compare-${process.pid}`;
const policy = writeUsersAuditPolicy(mkdtempSync(join(tmpdir(), 'arena-compare-')), [...Object.values(users), jobController]);
const auditLog = join(repoRoot, '.cluster', name, 'logs', 'audit.log');
const cluster = await LocalCluster.start({
  name,
  largeFleet: true,
  extraArgs: { 'kube-apiserver': [`--audit-policy-file=${policy}`, `--audit-log-path=${auditLog}`, '--audit-log-format=json'] },
});
let op: OperatorProcess | undefined;
let kueue: KueueProcess | undefined;
try {
  const kc = cluster.kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const arena = new Arena(kc);
  const kdir = kueueDir();
  await installCrds(cluster);
  await installKueue(cluster, kdir);
  const t = Date.now();
  await createGpuNodes(kc, { prefix: 'gpu', count: nodeCount, gpus: gpusPerNode, gpu: gpuProducts.H100 });
  console.log(`fleet: ${nodeCount} simulated GPU nodes Ready and schedulable in ${((Date.now() - t) / 1000).toFixed(1)}s`);
  applyClusterQueue(cluster, { cpu: nodeCount * 64, memoryGi: nodeCount * 512, gpus: nodeCount * gpusPerNode });
  await arena.apply(trainingCluster('onprem'));
  for (const w of workloads) {
    await arena.apply(resourceClass(`rc-${w.name}`, 'onprem', { nodes: w.podsPerGang, worker: { cpu: '1', memory: '1Gi', gpus: w.gpusPerPod } }));
  }
  const kubeconfigs = { kueue: await replicaKubeconfig(cluster, users.kueue), arena: await replicaKubeconfig(cluster, users.arena) };
  if (values['cpu-prof-dir']) mkdirSync(values['cpu-prof-dir'], { recursive: true });

  const startController = async (system: System, w: Workload): Promise<number> => {
    if (system === 'kueue') {
      kueue = await startKueue(cluster, kdir, { kubeconfig: kubeconfigs.kueue, qps, burst, name: `kueue-${w.name}` });
      return kueue.pid;
    }
    op = await startOperatorProcess(cluster, {
      identity: `operator-${w.name}`,
      // A long lease: on this shared machine (load 20-30) a 15 s lease missed its renew deadline mid-run and the
      // operator exited, as it must when it loses leadership; Kueue runs without leader election.
      leaseDurationMs: 120_000,
      extraArgs: [`--qps=${qps}`, `--burst=${burst}`],
      extraEnv: {
        KUBECONFIG: kubeconfigs.arena,
        LOG_LEVEL: 'info',
        ...(values['cpu-prof-dir'] ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${values['cpu-prof-dir']} --cpu-prof-name=operator-${w.name}.cpuprofile` } : {}),
      },
    });
    return op.child.pid!;
  };
  const stopController = async (system: System) => {
    if (system === 'kueue') await kueue?.stop();
    else await op?.kill('SIGTERM');
    kueue = undefined;
    if (system === 'arena') op = undefined;
  };

  const createGang = async (system: System, w: Workload, ns: string, name: string) => {
    if (system === 'arena') {
      // The tests' 30 s partial-gang timeout is for gangs that never start; here a burst queues at kube-scheduler
      // and kwok for longer than that, which is their throughput, not a stuck gang.
      await arena.apply(experiment(ns, name, `rc-${w.name}`, { partialGangTimeoutSeconds: 600 }));
      return;
    }
    const gpus = String(w.gpusPerPod);
    const job: V1Job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      // Suspended and labelled as Kueue's Job webhook would make it (see compare/kueue.ts on the webhooks).
      metadata: { name, namespace: ns, labels: { 'kueue.x-k8s.io/queue-name': 'queue' } },
      spec: {
        suspend: true,
        parallelism: w.podsPerGang,
        completions: w.podsPerGang,
        completionMode: 'Indexed',
        backoffLimit: 0,
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [{ name: 'worker', image: 'registry.local/bench:1', resources: { requests: { cpu: '1', memory: '1Gi', 'nvidia.com/gpu': gpus }, limits: { 'nvidia.com/gpu': gpus } } }],
          },
        },
      },
    };
    await batch.createNamespacedJob({ namespace: ns, body: job });
  };

  /**
   * Every gang of the namespace seen finished by its controller (Job complete / Experiment Succeeded) once its pods
   * have: waited for at most two minutes, then the shortfall is printed (a controller that misses a finished pod
   * is a finding, not a reason for the benchmark to hang).
   */
  const waitFinished = async (system: System, ns: string, gangs: number, podsFinished: () => boolean) => {
    await waitFor(podsFinished, { timeoutMs: 30 * 60_000, what: `every pod in ${ns} to finish`, intervalMs: 500 });
    let done = 0;
    const count = async () => {
      if (system === 'arena') {
        const list = (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: 'experiments', namespace: ns })) as { items: { status?: { phase?: string } }[] };
        return list.items.filter((e) => e.status?.phase === 'Succeeded').length;
      }
      const list = (await custom.listNamespacedCustomObject({ group: 'kueue.x-k8s.io', version: kueueVersion, plural: 'workloads', namespace: ns })) as { items: { status?: { conditions?: { type: string; status: string }[] } }[] };
      return list.items.filter((x) => x.status?.conditions?.some((c) => c.type === 'Finished' && c.status === 'True')).length;
    };
    try {
      await waitFor(async () => (done = await count()) >= gangs, { timeoutMs: 120_000, what: `every ${system} gang in ${ns} to finish`, intervalMs: 2000 });
    } catch {
      console.log(`  ! ${system} ${ns}: ${gangs - done} of ${gangs} gangs not marked finished 2 min after all their pods finished`);
    }
  };

  const finishPod = (ns: string, name: string) =>
    core.patchNamespacedPod({ namespace: ns, name, body: { metadata: { annotations: { 'arena.e2e/finish': 'Succeeded' } } } }, mergePatch).then(
      () => undefined,
      () => undefined, // gone already
    );

  const run = async (system: System, w: Workload): Promise<Result> => {
    const ns = `${system}-${w.name}`;
    if (system === 'arena') await arena.namespace(ns);
    else {
      await core.createNamespace({ body: { metadata: { name: ns } } });
      applyLocalQueue(cluster, ns);
    }
    const pods = new Informer<LeanPod>({ kc, group: '', version: 'v1', plural: 'pods', namespace: ns, transform: leanPod, logger: quiet });
    const created = new Map<string, number>();
    const seen = new Map<string, Set<string>>();
    const running = new Map<string, Set<string>>();
    const admittedAt = new Map<string, number>();
    const runningAt = new Map<string, number>();
    const finishing = new Set<string>();
    const finishQueue: string[] = [];
    let finisherBusy = 0;
    const pumpFinisher = () => {
      while (finisherBusy < 20 && finishQueue.length > 0) {
        const name = finishQueue.shift()!;
        finisherBusy++;
        void finishPod(ns, name).finally(() => {
          finisherBusy--;
          pumpFinisher();
        });
      }
    };
    const onPod = (p: LeanPod) => {
      const gang = p.metadata?.ownerReferences?.[0]?.name;
      const name = p.metadata?.name;
      if (!gang || !name) return;
      const now = Date.now();
      let s = seen.get(gang);
      if (!s) seen.set(gang, (s = new Set()));
      s.add(name);
      if (s.size >= w.podsPerGang && !admittedAt.has(gang)) admittedAt.set(gang, now);
      const phase = p.status?.phase;
      if (phase === 'Running' || phase === 'Succeeded') {
        let r = running.get(gang);
        if (!r) running.set(gang, (r = new Set()));
        r.add(name);
        if (r.size >= w.podsPerGang && !runningAt.has(gang)) runningAt.set(gang, now);
        if (w.finishOnRunning && phase === 'Running' && !finishing.has(name)) {
          finishing.add(name);
          finishQueue.push(name);
          pumpFinisher();
        }
      }
    };
    pods.on('add', onPod).on('update', onPod);
    await pods.start();

    const pid = await startController(system, w);
    const sampler = new ProcessSampler(pid);
    await sleep(2000); // let its caches settle: startup is not what is measured
    const auditFrom = fileSize(auditLog);
    const load0 = os.loadavg()[0]!;
    const first = Date.now();
    const names = Array.from({ length: w.gangs }, (_, i) => `${w.name}-${i}`);
    await pool(names, 50, async (n) => {
      await createGang(system, w, ns, n);
      created.set(n, Date.now());
    });
    const createdS = (Date.now() - first) / 1000;
    const progress = setInterval(() => {
      console.log(`    ${system} ${w.name} ${((Date.now() - first) / 1000).toFixed(0)}s: admitted ${admittedAt.size}/${w.gangs}, running ${runningAt.size}, rss ${mib(sampler.lastRssBytes).toFixed(0)} MiB, load ${os.loadavg()[0]!.toFixed(1)}`);
    }, 10_000);
    try {
      await waitFor(() => runningAt.size >= w.gangs, { timeoutMs: 60 * 60_000, what: `every ${system} gang of ${w.name} running`, intervalMs: 100 });
    } finally {
      clearInterval(progress);
    }
    // Requests settle a moment after the last pod runs (status writes); the window closes a second later.
    await sleep(1000);
    const cpuS = sampler.cpuSince();
    const counts = auditCounts(auditLog, auditFrom);
    const lastAdmitted = Math.max(...admittedAt.values());
    const lastRunning = Math.max(...runningAt.values());
    const lat = names.map((n) => runningAt.get(n)! - created.get(n)!);
    const result: Result = {
      system,
      workload: w,
      admissionsPerS: w.gangs / ((lastAdmitted - first) / 1000),
      allRunningS: (lastRunning - first) / 1000,
      p50: percentile(lat, 50) / 1000,
      p99: percentile(lat, 99) / 1000,
      requests: counts.get(users[system]) ?? { total: 0, writes: 0, byVerbResource: new Map() },
      jobController: system === 'kueue' ? counts.get(jobController) : undefined,
      cpuS,
      peakRssMiB: mib(sampler.peakRssBytes),
      lastRssMiB: mib(sampler.lastRssBytes),
    };
    printResult(result, createdS, load0);

    // Free the fleet for the next run: every pod finishes, then every gang is seen finished by its controller.
    if (!w.finishOnRunning) {
      for (const p of pods.list()) if (p.status?.phase === 'Running') finishQueue.push(p.metadata!.name!);
      pumpFinisher();
    }
    await waitFinished(system, ns, w.gangs, () => pods.list().every((p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed'));
    pods.stop();
    if (system === 'arena' && w === workloads[workloads.length - 1]) {
      // The operator's memory with everything this run left in the cluster in its caches.
      await sleep(3000);
      const allPods = (await core.listPodForAllNamespaces({ resourceVersion: '0' })).items.length;
      const exps = ((await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'experiments' })) as { items: unknown[] }).items.length;
      memoryLine = `memory: operator rss ${mib(sampler.lastRssBytes).toFixed(0)} MiB (peak ${mib(sampler.peakRssBytes).toFixed(0)} MiB) at ${nodeCount} nodes, ${allPods} pods, ${exps} experiments`;
    }
    sampler.stop();
    await stopController(system);
    return result;
  };

  const printResult = (r: Result, createdS: number, load0: number) => {
    const w = r.workload;
    const pods = w.gangs * w.podsPerGang;
    console.log(`${r.system} ${w.name}: ${w.gangs} gangs x ${w.podsPerGang} pod(s) x ${w.gpusPerPod} GPU on ${nodeCount} nodes (created in ${createdS.toFixed(1)}s, load at start ${load0.toFixed(1)}, now ${os.loadavg()[0]!.toFixed(1)})`);
    console.log(`  admissions/s ${r.admissionsPerS.toFixed(1)}; every pod Running after ${r.allRunningS.toFixed(1)}s; create -> Running p50 ${r.p50.toFixed(1)}s p99 ${r.p99.toFixed(1)}s`);
    console.log(`  controller API requests ${r.requests.total} (${(r.requests.total / w.gangs).toFixed(1)} per admission, ${(r.requests.writes / pods).toFixed(1)} writes per pod); cpu ${r.cpuS.toFixed(1)}s (${((r.cpuS * 1000) / w.gangs).toFixed(1)} ms per admission); rss peak ${r.peakRssMiB.toFixed(0)} MiB, end ${r.lastRssMiB.toFixed(0)} MiB`);
    if (r.jobController) console.log(`  + kube-controller-manager's Job controller: ${r.jobController.total} requests (${(r.jobController.total / w.gangs).toFixed(1)} per admission)`);
    const top = [...r.requests.byVerbResource].sort((a, b) => b[1] - a[1]).slice(0, 8);
    console.log(`  by verb and resource: ${top.map(([k, n]) => `${k} ${(n / w.gangs).toFixed(2)}`).join(', ')}`);
  };

  let memoryLine = '';
  const results: Result[] = [];
  for (const w of workloads) {
    for (const system of ['kueue', 'arena'] as const) results.push(await run(system, w));
  }
  for (const w of workloads) {
    const a = results.find((r) => r.system === 'arena' && r.workload === w)!;
    const k = results.find((r) => r.system === 'kueue' && r.workload === w)!;
    console.log(`compare: ${w.name}: arena ${a.admissionsPerS.toFixed(1)} admissions/s, kueue ${k.admissionsPerS.toFixed(1)} admissions/s, ratio ${(a.admissionsPerS / k.admissionsPerS).toFixed(2)}`);
  }
  if (memoryLine) console.log(memoryLine);
  console.log(`  note: scale ${scale}; client rate limit ${qps}/s burst ${burst} for both controllers; the benchmark, both controllers and the control plane share this machine's ${os.cpus().length} cores (load now ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})`);
} catch (err) {
  // The cluster's folder goes with it; keep the logs (Kueue's, the operator's, the control plane's) for a look.
  const keep = join(tmpdir(), `arena-compare-logs-${process.pid}`);
  cpSync(join(cluster.dir, 'logs'), keep, { recursive: true });
  console.error(`logs kept in ${keep}`);
  throw err;
} finally {
  await kueue?.stop();
  await op?.kill('SIGKILL');
  await cluster.stop();
}
