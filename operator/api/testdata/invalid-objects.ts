// Objects every layer must refuse, each with the field its refusal must name. The unit tests run them through the
// TypeScript validator; the end-to-end suite sends them to a real apiserver. So every case here is refused by the
// CRD schema or a CEL rule, never only by TypeScript code. Manifests are judged by the Arena platform's own
// validator; only the structure the CRD holds of them has cases here.
//
// Each case is a valid sample with a JSON merge patch (RFC 7386: objects merge, null deletes, anything else
// replaces) applied, so the table shows only what is wrong.
import type { KindName, ResourceByKind } from '../v1alpha1/index.ts';
import { samples } from './samples.ts';

export interface InvalidObject<K extends KindName = KindName> {
  name: string;
  kind: K;
  /** A whole object, ready to create; its metadata.name is the case name. */
  object: ResourceByKind[K];
  /** The dotted path the refusal must mention. */
  field: string;
}

/** An update that the apiserver must refuse because of the stored object (immutable or only-growing fields). */
export interface InvalidUpdate<K extends KindName = KindName> extends InvalidObject<K> {
  /** Create this first (it is valid), then update it to `object`. */
  old: ResourceByKind[K];
}

type MergePatch = { [key: string]: unknown };

export function applyMergePatch<T>(target: T, patch: MergePatch): T {
  return merge(target, patch) as T;
}

function merge(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = merge(result[key], value);
  }
  return result;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid<K extends KindName>(kind: K, name: string, field: string, patch: MergePatch, base: ResourceByKind[K] = samples[kind]): InvalidObject<K> {
  const object = applyMergePatch(structuredClone(base), { metadata: { name }, ...patch });
  return { name, kind, object, field };
}

function invalidUpdate<K extends KindName>(kind: K, name: string, field: string, old: MergePatch, update: MergePatch): InvalidUpdate<K> {
  const stored = invalid(kind, name, field, old).object;
  return { name, kind, old: stored, object: applyMergePatch(stored, update), field };
}

const spec = (patch: MergePatch) => ({ spec: patch });
const manifest = (patch: MergePatch) => spec({ manifest: patch });
const algorithm = (patch: MergePatch) => manifest({ algorithm: patch });

export const invalidObjects: InvalidObject[] = [
  invalid('TrainingCluster', 'tc-version-not-semver', 'spec.setupBundle.version', spec({ setupBundle: { version: 'v1.4' } })),
  invalid('TrainingCluster', 'tc-runtime-image-missing', 'spec.setupBundle.images.runtime', spec({ setupBundle: { images: { runtime: null } } })),
  invalid('TrainingCluster', 'tc-two-checkpoint-stores', 'spec.checkpointStorage', spec({ checkpointStorage: { hostPath: { path: '/data' } } })),
  invalid('TrainingCluster', 'tc-no-checkpoint-store', 'spec.checkpointStorage', spec({ checkpointStorage: { persistentVolumeClaim: null } })),
  invalid('TrainingCluster', 'tc-relative-host-path', 'spec.checkpointStorage.hostPath.path', spec({ checkpointStorage: { persistentVolumeClaim: null, hostPath: { path: 'data/ckpt' } } })),
  invalid('TrainingCluster', 'tc-unknown-taint-effect', 'spec.gpu.taint.effect', spec({ gpu: { taint: { effect: 'Never' } } })),
  invalid('TrainingCluster', 'tc-gateway-without-domain', 'spec.exposure.domain', spec({ exposure: { domain: null } })),
  invalid('TrainingCluster', 'tc-gateway-and-ingress', 'spec.exposure.ingressClassName', spec({ exposure: { ingressClassName: 'nginx' } })),
  invalid('TrainingCluster', 'tc-heartbeat-too-often', 'spec.platform.heartbeatIntervalSeconds', spec({ platform: { heartbeatIntervalSeconds: 1 } })),
  invalid('TrainingCluster', 'tc-platform-url-not-http', 'spec.platform.url', spec({ platform: { url: 'arena.agilerl.com' } })),
  invalid('TrainingCluster', 'tc-credits-without-grant', 'spec.credits.granted', spec({ platform: null, credits: { exhaustedPolicy: 'Stop' } })),
  invalid('TrainingCluster', 'tc-credits-negative-grant', 'spec.credits.granted', spec({ credits: { granted: -5 } })),
  invalid('TrainingCluster', 'tc-budget-without-limit', 'spec.budgets[0].credits', spec({ budgets: [{ name: 'b', namespaces: ['a'] }] })),
  invalid('TrainingCluster', 'tc-budget-unknown-period', 'spec.budgets[0].period', spec({ budgets: [{ name: 'b', namespaces: ['a'], credits: 5, period: 'Week' }] })),
  invalid('TrainingCluster', 'tc-credits-unknown-policy', 'spec.credits.exhaustedPolicy', spec({ credits: { granted: 5, exhaustedPolicy: 'Pause' } })),

  invalid('ResourceClass', 'rc-zero-nodes', 'spec.nodes', spec({ nodes: 0 })),
  invalid('ResourceClass', 'rc-training-cluster-missing', 'spec.trainingCluster', spec({ trainingCluster: null })),
  invalid('ResourceClass', 'rc-gpu-product-without-gpus', 'spec.worker.gpus', spec({ worker: { gpus: 0 } })),
  invalid('ResourceClass', 'rc-team-namespace-twice', 'spec.teams', spec({ teams: [{ name: 'a', namespaces: ['shared'], gpus: 1 }, { name: 'b', namespaces: ['b', 'shared'], gpus: 1 }] })),
  invalid('ResourceClass', 'rc-teams-without-gpus', 'spec.teams', spec({ worker: { gpus: null, gpuProduct: null } })),
  invalid('ResourceClass', 'rc-team-named-unassigned', 'spec.teams[0].name', spec({ teams: [{ name: 'unassigned', namespaces: ['a'], gpus: 1 }] })),
  invalid('ResourceClass', 'rc-team-negative-quota', 'spec.teams[0].gpus', spec({ teams: [{ name: 'a', namespaces: ['a'], gpus: -1 }] })),
  invalid('ResourceClass', 'rc-team-without-namespaces', 'spec.teams[0].namespaces', spec({ teams: [{ name: 'a', namespaces: [], gpus: 1 }] })),
  invalid('ResourceClass', 'rc-negative-gpus', 'spec.worker.gpus', spec({ worker: { gpus: -1 } })),
  invalid('ResourceClass', 'rc-memory-free-text', 'spec.worker.memory', spec({ worker: { memory: '64 GB' } })),
  invalid('ResourceClass', 'rc-cpu-fraction-as-number', 'spec.worker.cpu', spec({ worker: { cpu: 0.5 } })),
  // Well-formed quantities larger than any node: the pattern passes them; the bound does not.
  invalid('ResourceClass', 'rc-cpu-1e15', 'spec.worker.cpu', spec({ worker: { cpu: '1e15' } })),
  invalid('ResourceClass', 'rc-cpu-huge-integer', 'spec.worker.cpu', spec({ worker: { cpu: 1_000_000 } })),
  invalid('ResourceClass', 'rc-memory-100p', 'spec.worker.memory', spec({ worker: { memory: '100P' } })),
  invalid('ResourceClass', 'rc-ephemeral-storage-2ei', 'spec.worker.ephemeralStorage', spec({ worker: { ephemeralStorage: '2Ei' } })),
  invalid('ResourceClass', 'rc-negative-credit-rate', 'spec.creditsPerNodeHour', spec({ creditsPerNodeHour: -1 })),
  invalid('ResourceClass', 'rc-toleration-exists-with-value', 'spec.tolerations[0].value', spec({ tolerations: [{ key: 'dedicated', operator: 'Exists', value: 'arena' }] })),
  invalid('ResourceClass', 'rc-toleration-without-key', 'spec.tolerations[0].operator', spec({ tolerations: [{ operator: 'Equal', value: 'arena' }] })),
  invalid('ResourceClass', 'rc-toleration-seconds-without-noexecute', 'spec.tolerations[0].tolerationSeconds', spec({ tolerations: [{ key: 'dedicated', effect: 'NoSchedule', tolerationSeconds: 60 }] })),

  invalid('Experiment', 'exp-unknown-action', 'spec.action', spec({ action: 'Go' })),
  invalid('Experiment', 'exp-train-without-class', 'spec.resourceClass', spec({ resourceClass: null })),
  invalid('Experiment', 'exp-too-many-retries', 'spec.maxRetries', spec({ maxRetries: 21 })),
  invalid('Experiment', 'exp-resume-step-missing', 'spec.resumeFrom.step', spec({ resumeFrom: { experiment: 'older-run', checkpoint: 'step' } })),
  invalid('Experiment', 'exp-resume-step-with-best', 'spec.resumeFrom.step', spec({ resumeFrom: { experiment: 'older-run', checkpoint: 'best', step: 100 } })),
  invalid('Experiment', 'exp-resume-from-itself', 'spec.resumeFrom.experiment', spec({ resumeFrom: { experiment: 'exp-resume-from-itself' } })),
  invalid('Experiment', 'exp-priority-and-class', 'spec.priorityClassName', spec({ priority: 5, priorityClassName: 'high' })),
  invalid('Experiment', 'exp-manifest-missing', 'spec.manifest', spec({ manifest: null })),
  invalid('Experiment', 'exp-environment-missing', 'spec.manifest.environment', manifest({ environment: null })),
  invalid('Experiment', 'exp-unknown-algorithm', 'spec.manifest.algorithm.name', algorithm({ name: 'PPO2' })),
  invalid('Experiment', 'exp-algorithm-without-name', 'spec.manifest.algorithm.name', algorithm({ name: null })),
  invalid('Experiment', 'exp-training-not-an-object', 'spec.manifest.training', manifest({ training: 'long' })),
  // Everything else about a manifest is the Arena platform's verdict, not the CRD's: the conformance corpus
  // (operator/api/conformance/) holds those cases and checks every layer against the platform's validator.

  invalid('Deployment', 'dep-cpu-1e15', 'spec.resources.cpu', spec({ resources: { cpu: '1e15' } })),
  invalid('Deployment', 'dep-memory-100p', 'spec.resources.memory', spec({ resources: { memory: '100P' } })),
  invalid('Deployment', 'dep-source-experiment-missing', 'spec.source.experiment', spec({ source: { experiment: null } })),
  invalid('Deployment', 'dep-specific-without-step', 'spec.source.step', spec({ source: { step: null } })),
  invalid('Deployment', 'dep-step-with-best', 'spec.source.step', spec({ source: { checkpoint: 'best' } })),
  invalid('Deployment', 'dep-too-many-replicas', 'spec.replicas', spec({ replicas: 17 })),
  invalid('Deployment', 'dep-unknown-memory-scope', 'spec.memoryScope', spec({ memoryScope: 'team' })),
  invalid('Deployment', 'dep-negative-key-rotation', 'spec.keyRotation', spec({ keyRotation: -1 })),
  invalid('Deployment', 'dep-gpus-as-text', 'spec.resources.gpus', spec({ resources: { gpus: 'one' } })),
];

export const invalidUpdates: InvalidUpdate[] = [
  invalidUpdate('Experiment', 'exp-change-resume-from', 'spec.resumeFrom', spec({ resumeFrom: { experiment: 'older-run', checkpoint: 'best' } }), spec({ resumeFrom: { checkpoint: 'final' } })),
  invalidUpdate('Experiment', 'exp-drop-resume-from', 'spec.resumeFrom', spec({ resumeFrom: { experiment: 'older-run' } }), spec({ resumeFrom: null })),
  invalidUpdate('Experiment', 'exp-lower-run', 'spec.run', spec({ run: 3 }), spec({ run: 2 })),
  invalidUpdate('Deployment', 'dep-change-memory-scope', 'spec.memoryScope', {}, spec({ memoryScope: 'organization' })),
  invalidUpdate('Deployment', 'dep-lower-key-rotation', 'spec.keyRotation', spec({ keyRotation: 2 }), spec({ keyRotation: 1 })),
];
