// Credits end to end: the operator against a real control plane with a simulated GPU node. A small grant at a steep
// class rate runs out within seconds: the running experiment is stopped through the Stop path (its final checkpoint
// lands in the grace period) and ends Stopped/CreditsExhausted, a new one waits Pending/CreditsExhausted, and a
// top-up of spec.credits.granted resumes the first from that checkpoint without anyone re-applying it. Then the
// ledger survives an operator restart without debiting anything twice. Last, a namespace budget: spent, it stops its
// namespace's run the same way (Stopped/BudgetExhausted) while another namespace trains on, and raising it resumes.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCluster } from './cluster/control-plane.ts';
import { installCrds } from './cluster/crds.ts';
import { createGpuNodes, finishPod, gpuProducts, gpuTaint } from './cluster/gpu-nodes.ts';
import { waitFor } from './cluster/wait.ts';
import { Arena, FakeRuntime, experiment, resourceClass, trainingCluster } from './support/fixtures.ts';
import { startOperator, type RunningOperator } from '../operator/operator.ts';
import { createLogger } from '../operator/observability/log.ts';
import { GROUP, VERSION, type TrainingCluster } from '../operator/api/v1alpha1/index.ts';
import { runPlugin } from '../operator/plugin/cli.ts';

const quiet = createLogger({ silent: true });

describe('credits on simulated GPU nodes', () => {
  let cluster: LocalCluster;
  let arena: Arena;
  let op: RunningOperator;

  const start = () =>
    startOperator({
      kc: cluster.kubeConfig(),
      logger: quiet,
      http: { host: '127.0.0.1', port: 0 },
      leaseNamespace: 'default',
      progressIntervalMs: 500,
      clusterStatus: { debounceMs: 200, creditsDebitIntervalMs: 1000 },
    });
  const getCluster = async () => (await arena.custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'trainingclusters', name: 'onprem' })) as TrainingCluster;

  before(async () => {
    cluster = await LocalCluster.start();
    await installCrds(cluster);
    const kc = cluster.kubeConfig();
    arena = new Arena(kc);
    await createGpuNodes(kc, { prefix: 'l4', count: 1, gpus: 4, gpu: gpuProducts.L4, taints: [gpuTaint] });
    // 6 credits at 3600 credits per node-hour: one node runs out in about 6 seconds.
    await arena.apply(trainingCluster('onprem', { credits: { granted: 6 } }));
    await arena.apply(resourceClass('l4', 'onprem', { nodes: 1, worker: { gpus: 1, gpuProduct: gpuProducts.L4.product }, creditsPerNodeHour: 3600 }));
    op = await start();
    await waitFor(() => op.isLeader(), { timeoutMs: 20_000, what: 'the operator to lead' });
  });
  after(async () => {
    await op?.stop();
    await cluster?.stop();
  });

  test('spec.credits without granted (and no platform) is refused, naming the field and the fix', async () => {
    await assert.rejects(arena.apply(trainingCluster('nogrant', { credits: { exhaustedPolicy: 'Stop' } })), (err: Error & { body?: unknown }) => {
      assert.match(String(err.body ?? err.message), /spec\.credits\.granted.*credits\.granted is required without spec\.platform/);
      return true;
    });
  });

  test('running out stops a run with a final checkpoint; a new one waits; a top-up resumes the first from that checkpoint', async () => {
    const ns = 'credits';
    await arena.namespace(ns);
    await arena.apply(experiment(ns, 'run', 'l4', { stopGracePeriodSeconds: 30 }));
    const running = await arena.waitPhase(ns, 'run', 'Running');
    const rt = new FakeRuntime(op.http.url, running, await arena.runToken(ns, running));
    assert.equal((await rt.checkpoint(100, 5)).status, 200);

    const tcRunning = await getCluster();
    assert.equal(tcRunning.status?.credits?.source, 'Spec');
    assert.equal(tcRunning.status?.credits?.granted, 6);

    // The balance runs out: the operator asks the workers to stop, as Stop does.
    const stopping = await arena.waitExperiment(ns, 'run', (s) => s.phase === 'Stopping' && s.reason === 'CreditsExhausted', 'Stopping for credits', 30_000);
    assert.ok(stopping.status?.lastInterruption?.at, 'the interruption is recorded');
    assert.equal((await arena.workerPods(ns, stopping)).every((p) => p.metadata?.deletionTimestamp), true, 'workers got their grace period');
    // The runtime writes its final checkpoint during the grace period, then exits.
    assert.equal((await rt.checkpoint(150, 6, { final: true })).status, 200);
    const stopped = await arena.waitPhase(ns, 'run', 'Stopped', 60_000);
    assert.equal(stopped.status?.reason, 'CreditsExhausted');
    assert.match(stopped.status!.message!, /final checkpoint at step 150/);
    assert.equal(stopped.status?.lastInterruption?.checkpointStep, 150);
    assert.equal((await arena.workerPods(ns, stopped)).length, 0, 'workers are gone');

    const tcOut = await getCluster();
    assert.ok((tcOut.status?.credits?.balance ?? 1) <= 0, `balance at zero: ${JSON.stringify(tcOut.status?.credits)}`);
    assert.ok(tcOut.status?.credits?.exhaustedAt, 'exhaustedAt');
    const available = tcOut.status?.conditions?.find((c) => c.type === 'CreditsAvailable');
    assert.equal(available?.status, 'False');
    assert.equal(available?.reason, 'CreditsExhausted');

    // A new experiment waits, and says why and how to top up.
    await arena.apply(experiment(ns, 'late', 'l4'));
    const late = await arena.waitExperiment(ns, 'late', (s) => s.phase === 'Pending' && s.reason === 'CreditsExhausted', 'Pending for credits');
    assert.match(late.status!.message!, /credit balance of TrainingCluster onprem is -?\d+(\.\d+)? \(.* spent of 6 granted\).*raising spec\.credits\.granted/);
    // Stopped for credits with action Train: it stays Stopped, it does not go Pending on its own.
    assert.equal((await arena.getExperiment(ns, 'run')).status?.phase, 'Stopped');

    // The top-up: nobody touches the experiments.
    await arena.patchCluster('onprem', { credits: { granted: 1000 } });
    const resumed = await arena.waitExperiment(ns, 'run', (s) => s.phase === 'Running' && s.attempt === 2, 'Running again as attempt 2', 30_000);
    assert.ok(resumed.status?.lastInterruption?.resumedAt, 'the resume is recorded');
    const pods = await arena.workerPods(ns, resumed);
    const env = Object.fromEntries((pods[0]!.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.ARENA_RESUME_STEP, '150', 'continues from the final checkpoint');
    await arena.waitPhase(ns, 'late', 'Running');
    const events = await arena.core.listNamespacedEvent({ namespace: ns });
    const reasons = events.items.filter((e) => e.involvedObject.name === 'run').map((e) => e.reason);
    assert.ok(reasons.includes('CreditsExhausted'), `a CreditsExhausted event: ${reasons.join(', ')}`);
    assert.ok(reasons.includes('ResumedAfterTopUp'), `a ResumedAfterTopUp event: ${reasons.join(', ')}`);

    let tcBack: TrainingCluster | undefined;
    await waitFor(async () => (tcBack = await getCluster()).status?.credits?.running === 2, { timeoutMs: 10_000, what: 'the ledger to see both running' });
    assert.equal(tcBack?.status?.conditions?.find((c) => c.type === 'CreditsAvailable')?.status, 'True');
    assert.equal(tcBack?.status?.credits?.burnRatePerHour, 7200);
    assert.ok((tcBack?.status?.credits?.secondsLeft ?? 0) > 0, 'time left is estimated');

    // Both finish; then the ledger holds still, and a restarted operator debits nothing twice.
    for (const name of ['run', 'late']) {
      const e = await arena.getExperiment(ns, name);
      for (const p of await arena.workerPods(ns, e)) await finishPod(arena.kc, ns, p.metadata!.name!, 'Succeeded');
      await arena.waitPhase(ns, name, 'Succeeded');
    }
    let settled: NonNullable<NonNullable<TrainingCluster['status']>['credits']> | undefined;
    await waitFor(
      async () => {
        settled = (await getCluster()).status?.credits;
        return settled?.running === 0;
      },
      { timeoutMs: 15_000, what: 'the ledger to see nothing running' },
    );
    // A debit held within the interval lands at the next pass; after that the ledger holds still.
    await new Promise((r) => setTimeout(r, 2000));
    settled = (await getCluster()).status?.credits;
    assert.ok(settled);
    const used = await Promise.all(['run', 'late'].map(async (n) => (await arena.getExperiment(ns, n)).status?.usage?.credits ?? 0));
    // Attempts are recorded in whole seconds, so what the ledger debited live may exceed them by under a second each.
    assert.ok(settled.spent <= used[0]! + used[1]! + 1.5, `spent ${settled.spent} is about what the experiments used (${used.join(' + ')})`);
    await op.stop();
    op = await start();
    await waitFor(() => op.isLeader(), { timeoutMs: 20_000, what: 'the restarted operator to lead' });
    await new Promise((r) => setTimeout(r, 3000));
    const after = (await getCluster()).status?.credits;
    assert.equal(after?.spent, settled.spent, 'a restart debits nothing again');
    assert.equal(after?.balance, settled.balance);
  });

  test('a spent namespace budget stops that namespace\'s run with a final checkpoint, holds its new ones, and raising it resumes them', async () => {
    const [ns, other] = ['budgeted', 'unbudgeted'];
    await arena.namespace(ns);
    await arena.namespace(other);
    // 5 credits at 3600 credits per node-hour: about 5 seconds of one node.
    await arena.patchCluster('onprem', { budgets: [{ name: 'vision', namespaces: [ns], credits: 5 }] });
    await arena.apply(experiment(ns, 'run', 'l4', { stopGracePeriodSeconds: 30 }));
    const running = await arena.waitPhase(ns, 'run', 'Running');
    const rt = new FakeRuntime(op.http.url, running, await arena.runToken(ns, running));
    assert.equal((await rt.checkpoint(100, 5)).status, 200);

    const stopping = await arena.waitExperiment(ns, 'run', (s) => s.phase === 'Stopping' && s.reason === 'BudgetExhausted', 'Stopping for its budget', 30_000);
    assert.match(stopping.status!.lastInterruption!.message, /^Budget vision of TrainingCluster onprem is spent for \d{4}-\d{2} \([\d.]+ of 5 credits\), so in namespace budgeted new experiments wait/);
    assert.equal((await rt.checkpoint(140, 6, { final: true })).status, 200);
    const stopped = await arena.waitPhase(ns, 'run', 'Stopped', 60_000);
    assert.equal(stopped.status?.reason, 'BudgetExhausted');
    assert.match(stopped.status!.message!, /final checkpoint at step 140: its namespace's budget is spent/);
    const ledger = (await getCluster()).status?.budgets?.find((b) => b.name === 'vision');
    assert.ok(ledger && ledger.spentCredits >= 5 && ledger.exhaustedAt, `status.budgets: ${JSON.stringify(ledger)}`);

    // Its namespace's new runs wait; another namespace trains on.
    await arena.apply(experiment(ns, 'next', 'l4'));
    await arena.apply(experiment(other, 'free', 'l4'));
    await arena.waitExperiment(ns, 'next', (s) => s.phase === 'Pending' && s.reason === 'BudgetExhausted', 'next Pending/BudgetExhausted');
    await arena.waitPhase(other, 'free', 'Running');

    // kubectl arena: status lists the budget as spent, why names it for the waiting run.
    const plugin = async (args: string[]) => {
      let out = '';
      const code = await runPlugin([...args, '--kubeconfig', cluster.kubeconfigPath], { io: { out: (t) => void (out += t), err: (t) => void (out += t) } });
      assert.equal(code, 0, out);
      return out;
    };
    assert.match(await plugin(['status', '-n', ns]), /onprem\s+vision\s+budgeted\s+\d{4}-\d{2}\s+[\d.]+\/5\s.*yes/);
    assert.match(await plugin(['why', 'next', '-n', ns]), /Pending \(BudgetExhausted\)[\s\S]*Budget vision of TrainingCluster onprem is spent/);

    // Raised: the stopped run continues from its final checkpoint by itself, and the waiting one starts.
    await arena.patchCluster('onprem', { budgets: [{ name: 'vision', namespaces: [ns], credits: 10_000 }] });
    const resumed = await arena.waitExperiment(ns, 'run', (s) => s.phase === 'Running' && s.attempt === 2, 'run Running again as attempt 2', 30_000);
    const env = Object.fromEntries(((await arena.workerPods(ns, resumed))[0]!.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.ARENA_RESUME_STEP, '140');
    await arena.waitPhase(ns, 'next', 'Running');
  });
});
