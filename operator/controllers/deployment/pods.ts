// What the deployment controller needs to know of its inference pods, read from the lean pod cache: which
// template they run, whether the kubelet calls them ready, their address, why they wait, and whether the server
// refused to start (a checkpoint that cannot be loaded), which is read from the container's termination message.
import type { KubernetesObject, V1ContainerStatus, V1ObjectMeta, V1PodStatus } from '@kubernetes/client-node';
import type { Wire } from '../../kube/informer.ts';
import { agentLabels } from './objects.ts';

export interface InferencePod {
  metadata: Pick<Wire<V1ObjectMeta>, 'name' | 'namespace' | 'uid' | 'labels' | 'resourceVersion' | 'creationTimestamp' | 'deletionTimestamp'>;
  spec: { nodeName?: string };
  status: Pick<Wire<V1PodStatus>, 'phase' | 'podIP' | 'conditions'> & {
    containerStatuses?: Pick<Wire<V1ContainerStatus>, 'name' | 'ready' | 'restartCount' | 'state' | 'lastState'>[];
  };
}

/** The informer transform: only what the controller reads (no spec beyond the node, no env, no volumes). */
export function leanInferencePod(obj: KubernetesObject): InferencePod {
  const p = obj as KubernetesObject & { spec?: { nodeName?: string }; status?: InferencePod['status'] };
  const m = p.metadata ?? {};
  return {
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      labels: m.labels,
      resourceVersion: m.resourceVersion,
      creationTimestamp: m.creationTimestamp as unknown as string | undefined,
      deletionTimestamp: m.deletionTimestamp as unknown as string | undefined,
    },
    spec: p.spec?.nodeName ? { nodeName: p.spec.nodeName } : {},
    status: {
      phase: p.status?.phase,
      podIP: p.status?.podIP,
      conditions: p.status?.conditions,
      containerStatuses: p.status?.containerStatuses?.map((s) => ({ name: s.name, ready: s.ready, restartCount: s.restartCount, state: s.state, lastState: s.lastState })),
    },
  };
}

export type StartFailureReason = 'CheckpointLoadFailed' | 'OOMKilled' | 'ServeRefused' | 'InferenceServerFailed';

export interface PodView {
  name: string;
  ip?: string;
  /** Created from the desired pod template (the current key, checkpoint and image). */
  current: boolean;
  deleting: boolean;
  /** The kubelet's Ready condition. */
  ready: boolean;
  createdAt?: string;
  restarts: number;
  /** Why its container is not running, e.g. ErrImagePull. */
  waiting?: { reason: string; message?: string };
  /** The scheduler's reason, while unscheduled. */
  unschedulable?: string;
  /** The server exited because it could not serve; retrying the same pod cannot help. */
  startFailure?: { reason: StartFailureReason; message: string };
}

/**
 * The reason `arena-runtime serve` gave for not starting, from a termination message: the termination-log file
 * holds it as plain text; the log-tail fallback holds it as the `reason` of the "Cannot serve" JSON line. A log
 * tail or stack trace without that line is a crash, not a refusal to start, and gives undefined.
 */
export function serveFailureReason(message: string | undefined): string | undefined {
  const text = (message ?? '').trim();
  if (!text) return undefined;
  let sawJson = false;
  for (const line of text.split('\n').reverse()) {
    const l = line.trim();
    if (!l.startsWith('{')) continue;
    try {
      const entry = JSON.parse(l) as { msg?: unknown; reason?: unknown };
      sawJson = true;
      if (entry.msg === 'Cannot serve' && typeof entry.reason === 'string') return entry.reason;
    } catch {
      // a line cut by the tail's size limit
    }
  }
  if (sawJson || /^\s+at /m.test(text)) return undefined;
  return text.slice(0, 2000);
}

type Terminated = NonNullable<NonNullable<InferencePod['status']['containerStatuses']>[number]['state']>['terminated'];

export function startFailureOf(t: Terminated | undefined): PodView['startFailure'] {
  // serve's own exit codes for a start it gave up on: 1 (cannot load or listen) and 2 (settings it refuses).
  if (!t || (t.exitCode !== 1 && t.exitCode !== 2)) return undefined;
  const why = serveFailureReason(t.message);
  if (!why) return undefined;
  // The runtime names the OOM killer when the cgroup counted a kill of the model process (runtime/serve/agilerl-model.ts):
  // a bigger memory limit fixes that, not another checkpoint.
  const reason: StartFailureReason = /out-of-memory killer/i.test(why)
    ? 'OOMKilled'
    : /cannot be loaded/i.test(why)
      ? 'CheckpointLoadFailed'
      : t.exitCode === 2
        ? 'ServeRefused'
        : 'InferenceServerFailed';
  return { reason, message: why };
}

export function podView(p: InferencePod, desiredTemplateHash: string | undefined): PodView {
  const status = p.status ?? {};
  const c = status.containerStatuses?.[0];
  const scheduled = status.conditions?.find((x) => x.type === 'PodScheduled');
  const view: PodView = {
    name: p.metadata.name ?? '',
    current: desiredTemplateHash !== undefined && p.metadata.labels?.[agentLabels.templateHash] === desiredTemplateHash,
    deleting: p.metadata.deletionTimestamp !== undefined,
    ready: status.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false,
    restarts: c?.restartCount ?? 0,
  };
  if (status.podIP) view.ip = status.podIP;
  if (p.metadata.creationTimestamp) view.createdAt = p.metadata.creationTimestamp;
  if (scheduled?.status === 'False') view.unschedulable = scheduled.message ?? scheduled.reason ?? 'not scheduled';
  if (c?.state?.waiting?.reason) view.waiting = { reason: c.state.waiting.reason, ...(c.state.waiting.message ? { message: c.state.waiting.message } : {}) };
  const failure = startFailureOf(c?.state?.terminated) ?? startFailureOf(c?.lastState?.terminated);
  if (failure) view.startFailure = failure;
  return view;
}
