// The experiments whose worker pods hold capacity now, as the admission service needs them for preemption (who may
// be a victim, what stopping it frees, how much work it would lose) and for start estimates (when it will end).
// Read from the caches on each admission cycle that has a waiting gang; nothing is kept here.
import type { V1Pod } from '@kubernetes/client-node';
import type { Experiment } from '../../api/v1alpha1/experiment.ts';
import { podRequests } from '../../scheduler/from-kube.ts';
import type { RunningGang } from './admission-service.ts';
import { experimentPriority } from './gating.ts';
import { labels } from './workers.ts';

export interface RunningGangsInput {
  experiments: readonly Experiment[];
  /** Worker pods of an experiment, by its uid. */
  podsOf: (uid: string) => V1Pod[];
  priorityClassValue?: (name: string) => number | undefined;
  nowMs: number;
}

export function runningGangs({ experiments, podsOf, priorityClassValue, nowMs }: RunningGangsInput): RunningGang[] {
  const out: RunningGang[] = [];
  for (const e of experiments) {
    const st = e.status;
    if (st?.phase !== 'Running' && st?.phase !== 'Stopping') continue;
    const run = st.run ?? 1;
    const attempt = st.attempt ?? 1;
    const frees: RunningGang['frees'] = [];
    for (const p of podsOf(e.metadata?.uid ?? '')) {
      const l = p.metadata?.labels ?? {};
      const phase = p.status?.phase;
      if (l[labels.run] !== String(run) || l[labels.attempt] !== String(attempt) || phase === 'Succeeded' || phase === 'Failed') continue;
      const node = p.spec?.nodeName ?? (p as V1Pod & { pin?: string }).pin;
      if (node) frees.push({ node, resources: podRequests(p) });
    }
    if (frees.length === 0) continue;
    const startedAtMs = ms(st.attemptStartedAt) ?? ms(st.admittedAt) ?? nowMs;
    const latest = st.latestCheckpoint;
    const written = latest ? ms(st.checkpoints?.find((c) => c.run === run && c.step === latest.step)?.createdAt) : undefined;
    // A checkpoint from before this attempt (the one it resumed from) saves nothing this attempt trained.
    const lastCheckpointAtMs = written !== undefined ? Math.max(written, startedAtMs) : undefined;
    const p = st.progress;
    let remainingMs: number | undefined;
    let speed: string | undefined;
    if (p?.maxSteps && p.stepsPerSecond && p.stepsPerSecond > 0) {
      const since = nowMs - (ms(p.updatedAt) ?? nowMs);
      remainingMs = Math.max(0, ((p.maxSteps - p.step) / p.stepsPerSecond) * 1000 - since);
      speed = `at ${round(p.stepsPerSecond)} steps/s toward ${p.maxSteps} steps`;
    }
    out.push({
      key: `${e.metadata?.namespace}/${e.metadata?.name}`,
      ...(e.spec.resourceClass !== undefined ? { className: e.spec.resourceClass } : {}),
      priority: experimentPriority(e, priorityClassValue) ?? 0,
      attemptId: `${run}-${attempt}`,
      preemptible: st.phase === 'Running' && st.stopRequestedAt === undefined,
      startedAtMs,
      ...(lastCheckpointAtMs !== undefined ? { lastCheckpointAtMs } : {}),
      frees,
      ...(remainingMs !== undefined ? { remainingMs, speed } : {}),
    });
  }
  return out;
}

function ms(t: string | undefined): number | undefined {
  if (t === undefined) return undefined;
  const v = Date.parse(t);
  return Number.isFinite(v) ? v : undefined;
}

/** Two significant figures, so the words of an estimate do not change with every report. */
function round(v: number): number {
  return Number(v.toPrecision(2));
}
