// What the install suites install: the chart as a previous release shipped it, and the values that fit the local
// cluster (GPU workers on the simulated pool, checkpoints on a hostPath, a short lease so a lost leader is quickly
// replaced).
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { chartDir } from '../../bundle/chart-sync.ts';

/**
 * A copy of the chart under `workDir` whose Experiment CRD is one printer column (Reason) short, so that upgrading
 * from it to the current chart has a CRD change for the upgrade hook to carry.
 */
export async function previousChart(workDir: string): Promise<string> {
  const dir = join(workDir, 'chart-previous', 'arena-operator');
  await cp(chartDir, dir, { recursive: true });
  const expCrd = join(dir, 'crds', 'arena.agilerl.com_experiments.yaml');
  const crd = parse(await readFile(expCrd, 'utf8')) as { spec: { versions: { additionalPrinterColumns: { name: string }[] }[] } };
  const cols = crd.spec.versions[0]!.additionalPrinterColumns;
  crd.spec.versions[0]!.additionalPrinterColumns = cols.filter((c) => c.name !== 'Reason');
  await writeFile(expCrd, stringify(crd));
  return dir;
}

/** Fits the GPU nodes labelled pool=gpu that the suites create; alice may read the cluster-scoped classes. */
export const localClusterValues = {
  trainingCluster: { workerNodeSelector: { pool: 'gpu' }, checkpointStorage: { persistentVolumeClaim: null, hostPath: { path: '/var/lib/arena/checkpoints' } } },
  resourceClasses: [{ name: 'a100-x1', nodes: 1, worker: { cpu: '2', memory: '4Gi', gpus: 4 } }],
  leaderElection: { leaseDurationSeconds: 6 },
  rbac: { clusterViewSubjects: [{ kind: 'User', name: 'alice', apiGroup: 'rbac.authorization.k8s.io' }] },
};
