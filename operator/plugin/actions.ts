// What each plugin verb asks of the API, as pure functions of the object it acts on: either a change (a merge patch
// or a new object) or an explanation of why there is nothing to do. The rules are the experiment lifecycle's
// (operator/controllers/experiment/lifecycle.ts): a finished run trains again only when spec.run goes above
// status.run; Stop acts on Pending, Running and Stopping only.
import { API_VERSION } from '../api/v1alpha1/common.ts';
import type { Experiment, ExperimentCheckpoint, ExperimentPhase } from '../api/v1alpha1/experiment.ts';
import type { Deployment } from '../api/v1alpha1/deployment.ts';
import { score } from './format.ts';

export type Decision<T> = { change: T; message: string } | { change?: undefined; message: string; refused?: boolean };

export type SpecPatch = { spec: Record<string, unknown>; metadata?: { resourceVersion?: string } };

export const phaseOf = (exp: Experiment): ExperimentPhase => exp.status?.phase ?? 'Draft';
const ref = (exp: Experiment) => `experiment ${exp.metadata?.name}`;

function finishedWords(exp: Experiment): string {
  const s = exp.status ?? {};
  const step = s.progress?.step ?? s.latestCheckpoint?.step;
  return [`run ${s.run ?? 1}`, step !== undefined ? `at step ${step}` : undefined].filter(Boolean).join(' ');
}

export function train(exp: Experiment, opts: { resourceClass?: string } = {}): Decision<SpecPatch> {
  const phase = phaseOf(exp);
  const name = ref(exp);
  const cls = opts.resourceClass ?? exp.spec.resourceClass;
  const withClass = opts.resourceClass && opts.resourceClass !== exp.spec.resourceClass ? { resourceClass: opts.resourceClass } : {};
  if (!cls) return { refused: true, message: `${name} has no resource class: pass --class <ResourceClass> (kubectl get resourceclasses lists them)` };
  switch (phase) {
    case 'Pending':
    case 'Running':
      if (exp.spec.action === 'Train') return { message: `${name} is already ${phase} (run ${exp.status?.run ?? 1}); nothing to do` };
      return { change: { spec: { action: 'Train', ...withClass } }, message: `${name} set to Train` };
    case 'Stopping':
      return { refused: true, message: `${name} is Stopping: wait until it is Stopped (its workers are writing a final checkpoint), then train it again` };
    case 'Draft':
      return { change: { spec: { action: 'Train', ...withClass } }, message: `${name} queued to train on ${cls}` };
    case 'Stopped':
      return {
        change: { spec: { action: 'Train', ...withClass } },
        message: `${name} continues run ${exp.status?.run ?? 1} from its latest checkpoint${exp.status?.latestCheckpoint ? ` (step ${exp.status.latestCheckpoint.step})` : ''}`,
      };
    case 'Succeeded':
    case 'Failed': {
      // spec.run may only grow; one above what the status describes starts exactly one new run.
      const next = Math.max(exp.spec.run ?? 1, exp.status?.run ?? 1) + 1;
      return {
        change: { spec: { action: 'Train', run: next, ...withClass } },
        message: `${name} ${phase === 'Succeeded' ? 'finished' : 'failed'} ${finishedWords(exp)}; starting run ${next} from scratch (to continue from a checkpoint instead: kubectl arena resume ${exp.metadata?.name})`,
      };
    }
  }
}

export function stop(exp: Experiment): Decision<SpecPatch> {
  const phase = phaseOf(exp);
  const name = ref(exp);
  switch (phase) {
    case 'Pending':
      return { change: { spec: { action: 'Stop' } }, message: `${name} is Pending: Stop takes it off the queue of ${exp.spec.resourceClass ?? 'its class'}` };
    case 'Running':
      return {
        change: { spec: { action: 'Stop' } },
        message: `${name} stopping: its workers get ${exp.spec.stopGracePeriodSeconds ?? 120}s to write a final checkpoint`,
      };
    case 'Stopping':
      return { message: `${name} is already Stopping; nothing to do` };
    case 'Draft':
      return { message: `${name} is a Draft: it never started, so there is nothing to stop` };
    case 'Stopped':
      return { message: `${name} is already Stopped${exp.status?.latestCheckpoint ? ` (latest checkpoint at step ${exp.status.latestCheckpoint.step})` : ''}; nothing to do` };
    case 'Succeeded':
      return {
        message: `${name} already Succeeded (${finishedWords(exp)}): nothing is running, so Stop changes nothing. Train it again with kubectl arena train ${exp.metadata?.name}, or start from a checkpoint with kubectl arena resume ${exp.metadata?.name}`,
      };
    case 'Failed':
      return {
        message: `${name} already Failed (${exp.status?.reason ?? 'unknown reason'}): nothing is running, so Stop changes nothing. kubectl arena why ${exp.metadata?.name} shows the failure`,
      };
  }
}

/** best | final | a step number, as users type it. */
export type CheckpointChoice = 'best' | 'final' | number;

export function parseCheckpointChoice(value: string | undefined): CheckpointChoice {
  if (value === undefined || value === 'best') return 'best';
  if (value === 'final' || value === 'latest') return 'final';
  if (/^[0-9]+$/.test(value)) return Number(value);
  throw new Error(`--checkpoint takes best, final or a step number, got ${JSON.stringify(value)}`);
}

/** The checkpoint a choice means, checked against what the experiment has; an error says what it has instead. */
export function pickCheckpoint(exp: Experiment, choice: CheckpointChoice): { ok: true; checkpoint: ExperimentCheckpoint } | { ok: false; message: string } {
  const all = exp.status?.checkpoints ?? [];
  const name = ref(exp);
  if (all.length === 0) return { ok: false, message: `${name} has no checkpoints yet (phase ${phaseOf(exp)})` };
  if (choice === 'best') {
    const best = exp.status?.bestCheckpoint;
    const found = best && all.find((c) => c.step === best.step && c.evaluationScore === best.evaluationScore);
    if (!found) return { ok: false, message: `${name} has no checkpoint with an evaluation score: use --checkpoint final or a step (${steps(all)})` };
    return { ok: true, checkpoint: found };
  }
  if (choice === 'final') {
    const last = [...all].sort((a, b) => a.run - b.run || a.step - b.step).pop()!;
    return { ok: true, checkpoint: last };
  }
  const matches = all.filter((c) => c.step === choice);
  if (matches.length === 0) return { ok: false, message: `${name} has no checkpoint at step ${choice}; it has steps ${steps(all)}` };
  return { ok: true, checkpoint: matches.sort((a, b) => a.run - b.run).pop()! };
}

function steps(all: ExperimentCheckpoint[]): string {
  const list = [...new Set(all.map((c) => c.step))].sort((a, b) => a - b);
  return list.length > 12 ? `${list.slice(0, 5).join(', ')}, …, ${list.slice(-5).join(', ')}` : list.join(', ');
}

const TERMINAL: ExperimentPhase[] = ['Stopped', 'Succeeded', 'Failed'];

/** Arena's Resume: a new experiment with the source's definition, starting from one of its checkpoints. */
export function resume(src: Experiment, opts: { name: string; checkpoint: CheckpointChoice; draft?: boolean }): Decision<Experiment> {
  const phase = phaseOf(src);
  const name = ref(src);
  if (!TERMINAL.includes(phase)) {
    return { refused: true, message: `${name} is ${phase}: resume starts a new experiment from a finished one; stop it first (kubectl arena stop ${src.metadata?.name})` };
  }
  if (opts.name === src.metadata?.name) return { refused: true, message: `the new experiment needs another name than ${src.metadata?.name}: to train ${name} itself again, use kubectl arena train` };
  const picked = pickCheckpoint(src, opts.checkpoint);
  if (!picked.ok) return { refused: true, message: picked.message };
  const { resumeFrom: _resumeFrom, run: _run, action: _action, ...spec } = src.spec;
  const resumeFrom =
    opts.checkpoint === 'best' || opts.checkpoint === 'final'
      ? { experiment: src.metadata!.name!, checkpoint: opts.checkpoint }
      : { experiment: src.metadata!.name!, checkpoint: 'step' as const, step: opts.checkpoint };
  const exp: Experiment = {
    apiVersion: API_VERSION,
    kind: 'Experiment',
    metadata: { name: opts.name, namespace: src.metadata!.namespace },
    spec: { ...spec, action: opts.draft ? 'Draft' : 'Train', resumeFrom },
  };
  const c = picked.checkpoint;
  return {
    change: exp,
    message: `experiment ${opts.name} created from ${src.metadata?.name}'s ${describeChoice(opts.checkpoint)} checkpoint (run ${c.run}, step ${c.step}${c.evaluationScore !== undefined ? `, evaluation score ${score(c.evaluationScore)}` : ''})${opts.draft ? ' as a Draft' : `, queued on ${spec.resourceClass ?? 'its class'}`}`,
  };
}

function describeChoice(choice: CheckpointChoice): string {
  return typeof choice === 'number' ? `step-${choice}` : choice;
}

/** A Deployment (Arena agent) serving a checkpoint of an experiment. */
export function deploy(src: Experiment, opts: { name: string; checkpoint: CheckpointChoice; connect: boolean; replicas?: number }): Decision<Deployment> {
  const picked = pickCheckpoint(src, opts.checkpoint);
  if (!picked.ok) return { refused: true, message: picked.message };
  const source =
    typeof opts.checkpoint === 'number'
      ? { experiment: src.metadata!.name!, checkpoint: 'specific' as const, step: opts.checkpoint }
      : { experiment: src.metadata!.name!, checkpoint: opts.checkpoint };
  const dep: Deployment = {
    apiVersion: API_VERSION,
    kind: 'Deployment',
    metadata: { name: opts.name, namespace: src.metadata!.namespace },
    spec: { source, connected: opts.connect, ...(opts.replicas !== undefined ? { replicas: opts.replicas } : {}) },
  };
  const c = picked.checkpoint;
  return {
    change: dep,
    message: `agent ${opts.name} created from ${src.metadata?.name}'s ${describeChoice(opts.checkpoint)} checkpoint (step ${c.step})${opts.connect ? ', connecting' : '; connect it with kubectl arena connect ' + opts.name}`,
  };
}

export function connect(dep: Deployment, on: boolean): Decision<SpecPatch> {
  const name = `agent ${dep.metadata?.name}`;
  const connected = dep.spec.connected ?? false;
  if (connected === on) return { message: `${name} is already ${on ? 'connected' : 'disconnected'} (phase ${dep.status?.phase ?? 'Undeployed'}); nothing to do` };
  return {
    change: { spec: { connected: on } },
    message: on ? `${name} connecting: its endpoint comes up as the agent becomes Deployed` : `${name} disconnected: the endpoint goes away; the agent and its checkpoint are kept`,
  };
}

export function rotateKey(dep: Deployment): Decision<SpecPatch> {
  const next = (dep.spec.keyRotation ?? 0) + 1;
  return {
    // The resourceVersion makes the raise conditional: two rotations at once cannot collapse into one.
    change: { spec: { keyRotation: next }, metadata: { resourceVersion: dep.metadata?.resourceVersion } },
    message: `agent ${dep.metadata?.name}: new API key requested (rotation ${next}); the old key stops working once it is issued${dep.status?.apiKeySecretName ? ` (Secret ${dep.status.apiKeySecretName})` : ''}`,
  };
}
