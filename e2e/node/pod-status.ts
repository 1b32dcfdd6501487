// A pod's status from what runs on the node, by the kubelet's rules: the phase (getPhase), the conditions
// (PodReadyToStartContainers, Initialized, ContainersReady, Ready, PodScheduled) and the container statuses.
// Pure functions, so the rules are tested without processes.
import type { ContainerState, ContainerStatus, Pod, PodCondition, PodStatus } from './kube-types.ts';

export interface ContainerView {
  name: string;
  image: string;
  imageID: string;
  containerID?: string;
  restartCount: number;
  state: ContainerState;
  lastState?: ContainerState;
  ready: boolean;
  started: boolean;
  /** A restartable init container (restartPolicy: Always), i.e. a sidecar. */
  sidecar?: boolean;
}

export interface PodView {
  hostIP: string;
  podIP?: string;
  startTime?: string;
  /** The pod has its IP and directories (the kubelet's sandbox). */
  sandboxReady: boolean;
  init: ContainerView[];
  containers: ContainerView[];
  /** Every init container has completed (sidecars: started). */
  initDone: boolean;
  /** The node refused the pod (the kubelet's admission failure): the pod is Failed with this reason. */
  rejected?: { reason: string; message: string };
  /** The pod is being deleted: once nothing runs, its phase is final. */
  deleting: boolean;
}

export type Phase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export function shouldRestart(policy: string | undefined, exitCode: number): boolean {
  if (policy === 'Never') return false;
  if (policy === 'OnFailure') return exitCode !== 0;
  return true;
}

export function podPhase(pod: Pod, view: PodView): Phase {
  if (view.rejected) return 'Failed';
  const policy = pod.spec?.restartPolicy ?? 'Always';
  if (!view.initDone) {
    const initFailed = view.init.some((c) => !c.sidecar && (c.state.terminated?.exitCode ?? 0) !== 0);
    return initFailed && policy === 'Never' ? 'Failed' : 'Pending';
  }
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const c of view.containers) {
    if (c.state.running) running++;
    else if (c.state.terminated) {
      stopped++;
      if (c.state.terminated.exitCode === 0) succeeded++;
    } else if (c.lastState?.terminated) stopped++; // waiting to restart
    else waiting++;
  }
  const total = view.containers.length;
  if (view.deleting && running === 0) return succeeded === total ? 'Succeeded' : 'Failed';
  if (waiting > 0) return 'Pending';
  if (running > 0) return 'Running';
  if (stopped === total && total > 0) {
    if (policy === 'Always') return 'Running';
    if (succeeded === total) return 'Succeeded';
    if (policy === 'OnFailure') return 'Running';
    return 'Failed';
  }
  return 'Pending';
}

const ownedConditions = new Set(['PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready', 'PodScheduled']);

function condition(pod: Pod, type: string, status: boolean, now: string, reason?: string, message?: string): PodCondition {
  const value = status ? 'True' : 'False';
  const old = pod.status?.conditions?.find((c) => c.type === type);
  const c: PodCondition = { type, status: value, lastTransitionTime: old?.status === value && old.lastTransitionTime ? old.lastTransitionTime : now };
  if (!status && reason) c.reason = reason;
  if (!status && message) c.message = message;
  return c;
}

function toStatus(c: ContainerView): ContainerStatus {
  const s: ContainerStatus = {
    name: c.name,
    image: c.image,
    imageID: c.imageID,
    restartCount: c.restartCount,
    ready: c.ready,
    started: c.started,
    state: c.state,
    lastState: c.lastState ?? {},
  };
  if (c.containerID) s.containerID = c.containerID;
  return s;
}

/** The status fields the node owns, with conditions written by others kept as they are. */
export function podStatus(pod: Pod, view: PodView, now: string): PodStatus {
  const phase = podPhase(pod, view);
  const terminal = phase === 'Succeeded' || phase === 'Failed';
  const unready = [...view.init.filter((c) => c.sidecar), ...view.containers].filter((c) => !c.ready).map((c) => c.name);
  const incomplete = view.init
    .filter((c) => (c.sidecar ? !c.started : c.state.terminated?.exitCode !== 0))
    .map((c) => c.name);
  const containersReady = !terminal && unready.length === 0;

  let gatesMessage: string | undefined;
  for (const gate of pod.spec?.readinessGates ?? []) {
    const c = pod.status?.conditions?.find((x) => x.type === gate.conditionType);
    if (!c) gatesMessage = `corresponding condition of pod readiness gate "${gate.conditionType}" does not exist.`;
    else if (c.status !== 'True') gatesMessage = `the status of pod readiness gate "${gate.conditionType}" is not "True", but ${c.status}`;
    if (gatesMessage) break;
  }

  const notReadyReason = terminal ? 'PodCompleted' : 'ContainersNotReady';
  const notReadyMessage = terminal ? undefined : `containers with unready status: [${unready.join(' ')}]`;
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  const conditions: PodCondition[] = [
    condition(pod, 'PodReadyToStartContainers', view.sandboxReady, now),
    condition(pod, 'Initialized', view.initDone, now, 'ContainersNotInitialized', `containers with incomplete status: [${incomplete.join(' ')}]`),
    condition(pod, 'ContainersReady', containersReady, now, notReadyReason, notReadyMessage),
    containersReady && gatesMessage
      ? condition(pod, 'Ready', false, now, 'ReadinessGatesNotReady', gatesMessage)
      : condition(pod, 'Ready', containersReady, now, notReadyReason, notReadyMessage),
    scheduled ?? condition(pod, 'PodScheduled', true, now),
    ...(pod.status?.conditions ?? []).filter((c) => !ownedConditions.has(c.type)),
  ];

  const status: PodStatus = {
    phase,
    conditions,
    hostIP: view.hostIP,
    hostIPs: [{ ip: view.hostIP }],
    containerStatuses: view.containers.map(toStatus),
  };
  if (view.podIP) {
    status.podIP = view.podIP;
    status.podIPs = [{ ip: view.podIP }];
  }
  if (view.startTime) status.startTime = view.startTime;
  if (view.init.length > 0) status.initContainerStatuses = view.init.map(toStatus);
  if (view.rejected) {
    status.reason = view.rejected.reason;
    status.message = view.rejected.message;
  }
  return status;
}

/** Drops what the API server drops (null, empty strings, empty objects and lists) so equal statuses compare equal. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(canonical).filter((v) => v !== undefined);
    return items.length ? items : undefined;
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = canonical((value as Record<string, unknown>)[k]);
      if (v !== undefined) out[k] = v;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return value === null || value === '' ? undefined : value;
}

/** Whether `current` already shows every field of `desired` with the same value. */
export function statusUpToDate(current: PodStatus | undefined, desired: PodStatus): boolean {
  const cur = (current ?? {}) as Record<string, unknown>;
  return Object.keys(desired).every(
    (k) => JSON.stringify(canonical(cur[k])) === JSON.stringify(canonical((desired as Record<string, unknown>)[k])),
  );
}
