// The plugin's commands. Each reads what it needs through ArenaClient, asks actions.ts / why.ts what to do, writes
// at most one change, and prints either a line for people or the resulting object (-o json|yaml).
import type { V1Pod } from '@kubernetes/client-node';
import type { Experiment } from '../api/v1alpha1/experiment.ts';
import type { Deployment } from '../api/v1alpha1/deployment.ts';
import type { ResourceClass } from '../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../api/v1alpha1/trainingcluster.ts';
import { labels } from '../controllers/experiment/workers.ts';
import * as act from './actions.ts';
import { type ArenaClient, ConflictError, describeApiError } from './client.ts';
import { PluginError, UsageError, age, bytes, score, serialize, table, type OutputFormat } from './format.ts';
import { followPodLog } from './pod-log.ts';
import { creditsView, duration, explain, renderWhy } from './why.ts';
import { manifestCommand } from './manifest-command.ts';

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export interface CommandContext {
  client(): ArenaClient;
  io: Io;
  output: OutputFormat;
  now: () => Date;
  /** Aborted on Ctrl-C; `logs -f` stops following. */
  signal?: AbortSignal;
}

type Values = Record<string, string | boolean | undefined>;

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Longer help: what it does, when it refuses, examples. */
  details: string;
  options: Record<string, { type: 'string' | 'boolean'; short?: string; description: string }>;
  /** How many positional arguments: exactly, or [at least, at most]. */
  args: number | [number, number];
  run(ctx: CommandContext, args: string[], values: Values): Promise<number>;
}

function printResult(ctx: CommandContext, decision: { message: string }, object: unknown): number {
  if (ctx.output === 'table') ctx.io.out(`${decision.message}\n`);
  else ctx.io.out(serialize(object, ctx.output));
  return 0;
}

/**
 * Applies a decision: a refusal exits 1, "nothing to do" exits 0 and says why, a change is written. A conditional
 * change that loses to another write (the operator updates status all the time) is decided again on a fresh read.
 */
async function applyPatch<T extends Experiment | Deployment>(
  ctx: CommandContext,
  kind: 'Experiment' | 'Deployment',
  first: T,
  decide: (obj: T) => act.Decision<act.SpecPatch>,
): Promise<number> {
  let obj = first;
  for (let attempt = 1; ; attempt++) {
    const decision = decide(obj);
    if (!decision.change) {
      if (decision.refused) throw new PluginError(decision.message);
      return printResult(ctx, decision, obj);
    }
    try {
      const updated = await ctx.client().patch<T>(kind, obj.metadata!.name!, decision.change);
      return printResult(ctx, decision, updated);
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= 5) throw err;
      obj = await ctx.client().get<T>(kind, obj.metadata!.name!);
    }
  }
}

function checkpointChoice(values: Values): act.CheckpointChoice {
  try {
    return act.parseCheckpointChoice(values.checkpoint as string | undefined);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function positiveInt(values: Values, name: string): number | undefined {
  const raw = values[name] as string | undefined;
  if (raw === undefined) return undefined;
  if (!/^[0-9]+$/.test(raw)) throw new UsageError(`--${name} takes a whole number, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** A free name: `<base>`, else `<base>-2`, `<base>-3`, ... */
async function freeName(client: ArenaClient, kind: 'Experiment' | 'Deployment', base: string): Promise<string> {
  for (let i = 1; i < 100; i++) {
    const name = i === 1 ? base : `${base}-${i}`;
    if (!(await client.exists(kind, name))) return name;
  }
  throw new PluginError(`could not find a free name after ${base}-99; pass --name`);
}

const train: Command = {
  name: 'train',
  summary: 'train an experiment: start a Draft, continue a Stopped one, or run a finished one again',
  usage: 'kubectl arena train EXPERIMENT [--class RESOURCECLASS]',
  details: `Sets spec.action to Train. A Draft is queued on its resource class; a Stopped experiment continues its run
from the latest checkpoint; a Succeeded or Failed one starts a new run (spec.run is raised above status.run).
Nothing changes while it is already Pending or Running; a Stopping one must reach Stopped first.`,
  options: { class: { type: 'string', description: 'the ResourceClass to train on (sets spec.resourceClass)' } },
  args: 1,
  async run(ctx, [name], values) {
    const exp = await ctx.client().get<Experiment>('Experiment', name!);
    return applyPatch(ctx, 'Experiment', exp, (e) => act.train(e, { resourceClass: values.class as string | undefined }));
  },
};

const stop: Command = {
  name: 'stop',
  summary: 'stop a Pending or Running experiment (workers write a final checkpoint first)',
  usage: 'kubectl arena stop EXPERIMENT',
  details: `Sets spec.action to Stop. A Pending experiment leaves the queue at once; a Running one goes Stopping while its
workers write a final checkpoint, then Stopped. On a Draft, Stopped, Succeeded or Failed experiment nothing runs,
so nothing changes, and the command says so.`,
  options: {},
  args: 1,
  async run(ctx, [name]) {
    const exp = await ctx.client().get<Experiment>('Experiment', name!);
    return applyPatch(ctx, 'Experiment', exp, act.stop);
  },
};

const resume: Command = {
  name: 'resume',
  summary: 'create a new experiment that starts from a checkpoint of a finished one',
  usage: 'kubectl arena resume EXPERIMENT [--checkpoint best|final|STEP] [--name NEW] [--draft]',
  details: `Arena's Resume: a new Experiment with the same manifest and class, spec.resumeFrom naming the checkpoint:
best (highest evaluation score, the default), final (most steps) or a step number. The source must be Stopped,
Succeeded or Failed and have checkpoints. The new experiment trains at once unless --draft.
Default name: EXPERIMENT-resume (then -resume-2, ...).`,
  options: {
    checkpoint: { type: 'string', description: 'best (default), final, or a step number' },
    name: { type: 'string', description: 'name of the new experiment' },
    draft: { type: 'boolean', description: 'create it as a Draft instead of training it' },
  },
  args: 1,
  async run(ctx, [name], values) {
    const client = ctx.client();
    const src = await client.get<Experiment>('Experiment', name!);
    const choice = checkpointChoice(values);
    const newName = (values.name as string | undefined) ?? (await freeName(client, 'Experiment', `${name}-resume`));
    const decision = act.resume(src, { name: newName, checkpoint: choice, draft: values.draft === true });
    if (!decision.change) throw new PluginError(decision.message);
    const created = await client.create<Experiment>('Experiment', decision.change);
    return printResult(ctx, decision, created);
  },
};

const checkpoints: Command = {
  name: 'checkpoints',
  summary: 'list an experiment\'s checkpoints, best and latest marked',
  usage: 'kubectl arena checkpoints EXPERIMENT',
  details: 'Every checkpoint in status, oldest first: run, step, scores, size, where it is stored and its age.',
  options: {},
  args: 1,
  async run(ctx, [name]) {
    const exp = await ctx.client().get<Experiment>('Experiment', name!);
    const list = exp.status?.checkpoints ?? [];
    if (ctx.output !== 'table') {
      ctx.io.out(serialize(list, ctx.output));
      return 0;
    }
    if (list.length === 0) {
      ctx.io.out(`experiment ${name} has no checkpoints yet (phase ${act.phaseOf(exp)})\n`);
      return 0;
    }
    const best = exp.status?.bestCheckpoint;
    const latest = exp.status?.latestCheckpoint;
    const currentRun = exp.status?.run;
    const now = ctx.now();
    ctx.io.out(
      table(
        ['run', 'step', 'eval score', 'train score', 'size', 'age', 'mark', 'location'],
        list.map((c) => [
          c.run,
          c.step,
          score(c.evaluationScore),
          score(c.trainingScore),
          bytes(c.sizeBytes),
          age(c.createdAt, now),
          [best && best.step === c.step && best.evaluationScore === c.evaluationScore ? 'best' : '', latest && c.run === currentRun && latest.step === c.step ? 'latest' : '']
            .filter(Boolean)
            .join(','),
          c.location,
        ]),
      ),
    );
    return 0;
  },
};

const deploy: Command = {
  name: 'deploy',
  summary: 'create an agent (Deployment) that serves a checkpoint of an experiment',
  usage: 'kubectl arena deploy EXPERIMENT [--checkpoint best|final|STEP] [--name NAME] [--connect] [--replicas N]',
  details: `Creates an arena.agilerl.com Deployment whose source is the chosen checkpoint (best by default). It is
Undeployed until connected: pass --connect, or run kubectl arena connect NAME later. Default name: EXPERIMENT-agent.`,
  options: {
    checkpoint: { type: 'string', description: 'best (default), final, or a step number' },
    name: { type: 'string', description: 'name of the agent' },
    connect: { type: 'boolean', description: 'connect it at once (serve the endpoint)' },
    replicas: { type: 'string', description: 'inference pods while connected (1-16)' },
  },
  args: 1,
  async run(ctx, [name], values) {
    const client = ctx.client();
    const src = await client.get<Experiment>('Experiment', name!);
    const choice = checkpointChoice(values);
    const replicas = positiveInt(values, 'replicas');
    const agentName = (values.name as string | undefined) ?? (await freeName(client, 'Deployment', `${name}-agent`));
    const decision = act.deploy(src, { name: agentName, checkpoint: choice, connect: values.connect === true, replicas });
    if (!decision.change) throw new PluginError(decision.message);
    const created = await client.create<Deployment>('Deployment', decision.change);
    return printResult(ctx, decision, created);
  },
};

const connectCmd = (on: boolean): Command => ({
  name: on ? 'connect' : 'disconnect',
  summary: on ? 'connect an agent: serve its endpoint' : 'disconnect an agent: remove its endpoint, keep the agent',
  usage: `kubectl arena ${on ? 'connect' : 'disconnect'} AGENT`,
  details: on
    ? 'Sets spec.connected: the agent goes Pending, then Deployed once its inference pods are ready.'
    : 'Clears spec.connected: the endpoint and its pods go away; the agent, its checkpoint and API key stay.',
  options: {},
  args: 1,
  async run(ctx, [name]) {
    const dep = await ctx.client().get<Deployment>('Deployment', name!);
    return applyPatch(ctx, 'Deployment', dep, (d) => act.connect(d, on));
  },
});

const rotateKey: Command = {
  name: 'rotate-key',
  summary: 'issue a new API key for an agent; the old one stops working',
  usage: 'kubectl arena rotate-key AGENT',
  details: 'Raises spec.keyRotation by one from the value read (the write is conditional; it is redone on a fresh read if the object changed).',
  options: {},
  args: 1,
  async run(ctx, [name]) {
    const dep = await ctx.client().get<Deployment>('Deployment', name!);
    return applyPatch(ctx, 'Deployment', dep, act.rotateKey);
  },
};

const why: Command = {
  name: 'why',
  summary: 'why an experiment is where it is (above all: why it is Pending)',
  usage: 'kubectl arena why EXPERIMENT',
  details: `One screen: phase, reason and message, queue position, the class's availability and what fits, free GPUs
for the class, the training cluster's readiness, the last failure and the conditions.`,
  options: {},
  args: 1,
  async run(ctx, [name]) {
    const client = ctx.client();
    const exp = await client.get<Experiment>('Experiment', name!);
    const className = exp.spec.resourceClass;
    const cls = className ? await client.getClusterScoped<ResourceClass>('ResourceClass', className) : undefined;
    const cluster = cls ? await client.getClusterScoped<TrainingCluster>('TrainingCluster', cls.spec.trainingCluster) : undefined;
    const report = explain(exp, cls, cluster);
    ctx.io.out(ctx.output === 'table' ? renderWhy(report, ctx.now()) : serialize(report, ctx.output));
    return 0;
  },
};

const status: Command = {
  name: 'status',
  summary: 'the training cluster: workers, GPUs, setup bundle, resource classes and experiments by phase',
  usage: 'kubectl arena status [-A]',
  details: 'TrainingCluster and ResourceClass status as the operator last wrote it, and the experiments of the namespace (-A: all).',
  options: { 'all-namespaces': { type: 'boolean', short: 'A', description: 'count experiments in every namespace' } },
  args: 0,
  async run(ctx, _args, values) {
    const client = ctx.client();
    const all = values['all-namespaces'] === true;
    let clusters: TrainingCluster[];
    let classes: ResourceClass[];
    let experiments: Experiment[];
    try {
      [clusters, classes, experiments] = await Promise.all([
        client.list<TrainingCluster>('TrainingCluster'),
        client.list<ResourceClass>('ResourceClass'),
        client.list<Experiment>('Experiment', { allNamespaces: all }),
      ]);
    } catch (err) {
      throw describeApiError(err, 'reading the training cluster');
    }
    const byPhase: Record<string, number> = {};
    for (const e of experiments) byPhase[act.phaseOf(e)] = (byPhase[act.phaseOf(e)] ?? 0) + 1;
    if (ctx.output !== 'table') {
      ctx.io.out(serialize({ trainingClusters: clusters, resourceClasses: classes, experiments: { namespace: all ? null : client.namespace, byPhase } }, ctx.output));
      return 0;
    }
    const now = ctx.now();
    if (clusters.length === 0) ctx.io.out('No TrainingCluster: install the operator chart (or apply a TrainingCluster) first.\n');
    else {
      ctx.io.out(
        table(
          ['training cluster', 'enabled', 'ready', 'workers', 'gpus free', 'bundle', 'credits', 'burn/h', 'time left', 'age'],
          clusters.map((c) => {
            const s = c.status;
            const ready = s?.conditions?.find((x) => x.type === 'Ready');
            const credits = creditsView(c);
            return [
              c.metadata?.name,
              String(c.spec.enabled ?? true),
              ready ? `${ready.status}${ready.status !== 'True' ? ` (${ready.reason})` : ''}` : 'Unknown',
              s?.workers ? `${s.workers.ready}/${s.workers.total}` : undefined,
              s?.gpus ? `${s.gpus.free}/${s.gpus.total}` : undefined,
              s?.bundle ? `${s.bundle.installedVersion ?? c.spec.setupBundle.version} (${s.bundle.state})` : c.spec.setupBundle.version,
              credits ? `${credits.balance.toFixed(2)}${credits.exhausted ? ' (exhausted)' : ''}` : 'unlimited',
              credits ? credits.burnRatePerHour.toFixed(2) : undefined,
              credits?.secondsLeft !== undefined ? duration(credits.secondsLeft) : undefined,
              age(c.metadata?.creationTimestamp as unknown as string, now),
            ];
          }),
        ),
      );
      const budgetRows = clusters.flatMap((c) =>
        (c.spec.budgets ?? []).map((b) => {
          const l = c.status?.budgets?.find((x) => x.name === b.name);
          const limit = (spent: number | undefined, max: number | undefined) => (max === undefined ? undefined : `${(spent ?? 0).toFixed(2)}/${max}`);
          return [
            c.metadata?.name,
            b.name,
            b.namespaces.join(','),
            l?.period ?? b.period ?? 'Month',
            limit(l?.spentCredits, b.credits),
            limit(l?.spentGpuHours, b.gpuHours),
            l?.exhaustedAt ? 'yes' : 'no',
            l?.secondsLeft !== undefined ? duration(l.secondsLeft) : undefined,
          ];
        }),
      );
      if (budgetRows.length > 0) {
        ctx.io.out('\n');
        ctx.io.out(table(['training cluster', 'budget', 'namespaces', 'period', 'credits spent', 'gpu-hours spent', 'spent out', 'time left'], budgetRows));
      }
    }
    ctx.io.out('\n');
    if (classes.length === 0) ctx.io.out('No ResourceClass: add hardware pools (resourceClasses in the chart values, or kubectl apply).\n');
    else {
      ctx.io.out(
        table(
          ['resource class', 'cluster', 'nodes', 'gpus/worker', 'product', 'available', 'reason', 'fit now', 'queued', 'running'],
          classes.map((c) => [
            c.metadata?.name,
            c.spec.trainingCluster,
            c.spec.nodes,
            c.spec.worker?.gpus ?? 0,
            c.spec.worker?.gpuProduct,
            c.status?.available === undefined ? 'Unknown' : String(c.status.available),
            c.status?.reason,
            c.status?.fitNow,
            c.status?.queued,
            c.status?.running,
          ]),
        ),
      );
      const teamRows = classes.flatMap((c) =>
        (c.status?.teams ?? []).map((t) => [c.metadata?.name, t.name, t.quotaGpus, t.usedGpus, t.borrowedGpus, t.queued, t.running]),
      );
      if (teamRows.length > 0) {
        ctx.io.out('\n');
        ctx.io.out(table(['resource class', 'team', 'quota gpus', 'used gpus', 'borrowed gpus', 'queued', 'running'], teamRows));
      }
    }
    const counts = Object.entries(byPhase)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([p, n]) => `${n} ${p}`)
      .join(', ');
    ctx.io.out(`\nExperiments (${all ? 'all namespaces' : `namespace ${client.namespace}`}): ${counts || 'none'}\n`);
    return 0;
  },
};

/** Writes each complete line with a prefix; the rest waits for its newline. */
class LinePrefixer {
  private partial = '';
  constructor(
    private readonly prefix: string,
    private readonly sink: (text: string) => void,
  ) {}
  push(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    if (lines.length) this.sink(lines.map((l) => `${this.prefix}${l}\n`).join(''));
  }
  end(): void {
    if (this.partial) this.sink(`${this.prefix}${this.partial}\n`);
    this.partial = '';
  }
}

const logs: Command = {
  name: 'logs',
  summary: 'worker logs of an experiment\'s current attempt',
  usage: 'kubectl arena logs EXPERIMENT [--worker RANK] [-f] [--tail N] [--previous]',
  details: `Reads the logs of the worker pods of the current run's latest attempt through the API server's pod log
endpoint. With more than one worker, each line starts with [w<rank>].`,
  options: {
    worker: { type: 'string', description: 'only this worker (rank)' },
    follow: { type: 'boolean', short: 'f', description: 'keep streaming new lines' },
    tail: { type: 'string', description: 'only the last N lines of each worker' },
    previous: { type: 'boolean', description: 'the previous container of each worker' },
  },
  args: 1,
  async run(ctx, [name], values) {
    const client = ctx.client();
    const exp = await client.get<Experiment>('Experiment', name!);
    const run = exp.status?.run;
    let pods: V1Pod[];
    try {
      const selector = `${labels.experimentUid}=${exp.metadata!.uid},${labels.component}=worker${run !== undefined ? `,${labels.run}=${run}` : ''}`;
      pods = (await client.core.listNamespacedPod({ namespace: client.namespace, labelSelector: selector })).items;
    } catch (err) {
      throw describeApiError(err, `listing the workers of ${name}`);
    }
    const attemptOf = (p: V1Pod) => Number(p.metadata?.labels?.[labels.attempt] ?? 0);
    const latest = Math.max(0, ...pods.map(attemptOf));
    const rankOf = (p: V1Pod) => Number(p.metadata?.labels?.[labels.rank] ?? 0);
    let workers = pods.filter((p) => attemptOf(p) === latest).sort((a, b) => rankOf(a) - rankOf(b));
    const only = positiveInt(values, 'worker');
    if (only !== undefined) {
      const ranks = workers.map(rankOf);
      workers = workers.filter((p) => rankOf(p) === only);
      if (workers.length === 0) throw new PluginError(`experiment ${name} has no worker ${only}; its workers are ${ranks.join(', ') || 'none'}`);
    }
    if (workers.length === 0) {
      throw new PluginError(`experiment ${name} has no worker pods (phase ${act.phaseOf(exp)}): workers exist only while a run is admitted; kubectl arena why ${name} says more`);
    }
    const tailLines = positiveInt(values, 'tail');
    const many = workers.length > 1;
    const prefix = (p: V1Pod) => (many ? `[w${rankOf(p)}] ` : '');
    if (values.follow === true) {
      await Promise.all(
        workers.map(async (p) => {
          const lines = new LinePrefixer(prefix(p), (t) => ctx.io.out(t));
          await followPodLog(client.kc, client.namespace, p.metadata!.name!, p.spec!.containers[0]!.name, (t) => lines.push(t), {
            ...(tailLines !== undefined ? { tailLines } : {}),
            previous: values.previous === true,
            signal: ctx.signal,
          });
          lines.end();
        }),
      ).catch((err: unknown) => {
        throw describeApiError(err, `following the logs of ${name}`);
      });
      return 0;
    }
    for (const p of workers) {
      let text: string;
      try {
        text = await client.core.readNamespacedPodLog({
          namespace: client.namespace,
          name: p.metadata!.name!,
          container: p.spec!.containers[0]!.name,
          ...(tailLines !== undefined ? { tailLines } : {}),
          previous: values.previous === true,
        });
      } catch (err) {
        throw describeApiError(err, `reading the log of worker ${rankOf(p)} (${p.metadata!.name})`);
      }
      const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
      if (text !== '') ctx.io.out(lines.map((l) => `${prefix(p)}${l}\n`).join(''));
    }
    return 0;
  },
};

export const commands: Command[] = [
  train,
  stop,
  resume,
  checkpoints,
  why,
  logs,
  deploy,
  connectCmd(true),
  connectCmd(false),
  rotateKey,
  status,
  manifestCommand(),
];
