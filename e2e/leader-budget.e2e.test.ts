// The leader keeps its Lease under a backlog of API work: renewals have a client and a budget of their own, so a
// burst of reconciles queued behind a tight client-side rate limit cannot make the leader miss its renew deadline
// (and hand the same backlog to a standby, which would miss it too).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { createGpuNodes, gpuProducts } from './cluster/gpu-nodes.ts';
import { waitFor } from './cluster/wait.ts';
import { Arena, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { startOperator, type RunningOperator } from '../operator/operator.ts';
import { createLogger } from '../operator/observability/log.ts';

describe('leader election under a backlog of API work', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let op: RunningOperator | undefined;

  before(async () => {
    cluster = await LocalCluster.start();
    await installCrds(cluster);
    arena = new Arena(cluster.kubeConfig());
    await createGpuNodes(cluster.kubeConfig(), { prefix: 'gpu', count: 2, gpus: 4, gpu: gpuProducts.H100 });
    await arena.apply(trainingCluster('onprem'));
    await arena.apply(resourceClass('one', 'onprem', { nodes: 1, worker: { cpu: '1', memory: '1Gi', gpus: 1 } }));
  });
  after(async () => {
    await op?.stop();
    await cluster?.stop();
  });

  test('with the operator\'s client limited to 2 requests/s and 60 experiments to admit, the leader renews on time throughout', async () => {
    let lost = 0;
    op = await startOperator({
      kc: cluster.kubeConfig(),
      logger: createLogger({ silent: true }),
      http: { host: '127.0.0.1', port: 0 },
      leaseNamespace: 'default',
      qps: 2,
      burst: 2,
      // A renewal that waited behind the backlog for 3 s would end the leadership.
      leaderElection: { leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 1000 },
      onLostLeadership: () => void lost++,
    });
    await waitFor(() => op!.isLeader(), { timeoutMs: 20_000, what: 'the operator to lead' });
    const ns = 'backlog';
    await arena.namespace(ns);
    // Each admission costs the operator several requests (status, events, Secret, ConfigMap, Service, pods): about
    // four minutes of work at 2 requests/s.
    await Promise.all(Array.from({ length: 60 }, (_, i) => arena.apply(experiment(ns, `e${i}`, 'one'))));
    const leases = cluster.kubeConfig().makeApiClient(CoordinationV1Api);
    const renewals: number[] = [];
    for (let second = 0; second < 20; second++) {
      await new Promise((r) => setTimeout(r, 1000));
      const lease = await leases.readNamespacedLease({ namespace: 'default', name: 'arena-operator' });
      renewals.push(new Date(lease.spec!.renewTime as unknown as string).getTime());
      assert.ok(op.isLeader(), `still the leader after ${second + 1} s`);
    }
    const gaps = renewals.slice(1).map((t, i) => t - renewals[i]!).filter((g) => g > 0);
    console.log(`# lease renewed ${gaps.length} times in 20 s under the backlog; longest gap between renewals seen ${Math.max(...gaps)} ms`);
    assert.equal(lost, 0, 'leadership was never lost');
    assert.ok(gaps.length >= 10, `the lease kept being renewed (${gaps.length} renewals seen)`);
    // The backlog is real: admissions are still going through the operator's own budget.
    const list = (await arena.custom.listNamespacedCustomObject({ group: 'arena.agilerl.com', version: 'v1alpha1', plural: 'experiments', namespace: ns })) as { items: { status?: { phase?: string } }[] };
    const done = list.items.filter((e) => e.status?.phase !== undefined).length;
    assert.ok(done < 60, `the rate limit held work back (${done} of 60 have a status after 20 s)`);
  });
});
