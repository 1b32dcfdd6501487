// Helpers for the status API's tests and benchmark: in-memory collections, generated objects, and a validator that
// checks an answer against the OpenAPI document's schema for its path and status code.
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';
import type { Deployment } from '../api/v1alpha1/deployment.ts';
import { EXPERIMENT_PHASES, type Experiment, type ExperimentPhase } from '../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../api/v1alpha1/trainingcluster.ts';
import { objectKey } from '../kube/controller.ts';
import { openApiDocument } from './openapi.ts';
import type { Collection } from './router.ts';

/** A Collection backed by a Map; set() and delete() move its version like informer events do. */
export class MemoryCollection<T extends { metadata?: { namespace?: string; name?: string } }> implements Collection<T> {
  private readonly items = new Map<string, T>();
  private v = 0;
  private kv = 0;
  private cached: T[] | undefined;

  constructor(items: Iterable<T> = []) {
    for (const i of items) this.items.set(objectKey(i), i);
  }
  get(key: string): T | undefined {
    return this.items.get(key);
  }
  list(): readonly T[] {
    return (this.cached ??= [...this.items.values()]);
  }
  version(): number {
    return this.v;
  }
  keysVersion(): number {
    return this.kv;
  }
  set(item: T): void {
    if (!this.items.has(objectKey(item))) this.kv++;
    this.items.set(objectKey(item), item);
    this.touch();
  }
  delete(key: string): void {
    if (this.items.delete(key)) this.kv++;
    this.touch();
  }
  /** Marks the content changed without changing it (a resync). */
  touch(): void {
    this.v++;
    this.cached = undefined;
  }
}

const phaseStatus = (phase: ExperimentPhase, i: number): Experiment['status'] => {
  const base = { phase, run: 1, attempt: 1, observedGeneration: 1 };
  switch (phase) {
    case 'Pending':
      return { ...base, reason: 'InsufficientCapacity', message: 'Waiting for capacity.', queuePosition: (i % 50) + 1 };
    case 'Running':
      return {
        ...base,
        reason: 'Training',
        startedAt: '2026-03-01T10:00:00Z',
        attemptStartedAt: '2026-03-01T10:00:00Z',
        workers: { desired: 2, scheduled: 2, running: 2 },
        progress: { step: 1000 * (i % 10), maxSteps: 10000, percent: 10 * (i % 10), trainingScore: 1.5, evaluationScore: 2.5 },
        latestCheckpoint: { step: 1000, location: `run-1/step-1000.json` },
      };
    case 'Failed':
      return {
        ...base,
        reason: 'CudaOutOfMemory',
        startedAt: '2026-03-01T10:00:00Z',
        finishedAt: '2026-03-01T11:00:00Z',
        lastFailure: { reason: 'CudaOutOfMemory', message: 'CUDA out of memory.', hint: 'Lower the batch size.', at: '2026-03-01T11:00:00Z', attempt: 1 },
        usage: { nodeSeconds: 7200, gpuSeconds: 28800, credits: 7.2 },
      };
    case 'Succeeded':
    case 'Stopped':
      return {
        ...base,
        reason: phase === 'Stopped' ? 'StoppedByUser' : 'TrainingComplete',
        startedAt: '2026-03-01T10:00:00Z',
        finishedAt: '2026-03-01T12:00:00Z',
        checkpoints: [1, 2, 3].map((k) => ({ run: 1, step: k * 1000, evaluationScore: k, trainingScore: k, sizeBytes: 1024, location: `run-1/step-${k * 1000}.json`, createdAt: '2026-03-01T11:00:00Z' })),
        bestCheckpoint: { step: 3000, evaluationScore: 3 },
        usage: { nodeSeconds: 14400, gpuSeconds: 57600, credits: 14.4 },
      };
    default:
      return { ...base, reason: 'Created' };
  }
};

/** An experiment in namespace ns-<i % namespaces>, with a status typical of its phase. */
export function generatedExperiment(i: number, opts: { namespaces?: number; classes?: string[] } = {}): Experiment {
  const phase = EXPERIMENT_PHASES[i % EXPERIMENT_PHASES.length]!;
  const classes = opts.classes ?? ['a100-x2'];
  return {
    apiVersion: 'arena.agilerl.com/v1alpha1',
    kind: 'Experiment',
    metadata: { namespace: `ns-${i % (opts.namespaces ?? 20)}`, name: `exp-${String(i).padStart(5, '0')}`, uid: `uid-${i}`, resourceVersion: String(1000 + i), creationTimestamp: new Date('2026-03-01T09:00:00Z') },
    spec: {
      action: phase === 'Draft' ? 'Draft' : 'Train',
      resourceClass: classes[i % classes.length]!,
      manifest: { algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } } as Experiment['spec']['manifest'],
    },
    status: phaseStatus(phase, i),
  };
}

export function generatedDeployment(i: number): Deployment {
  const phases = ['Undeployed', 'Pending', 'Deployed', 'Failed'] as const;
  const phase = phases[i % phases.length]!;
  return {
    metadata: { namespace: `ns-${i % 20}`, name: `agent-${String(i).padStart(4, '0')}`, uid: `d-${i}`, creationTimestamp: new Date('2026-03-02T09:00:00Z') },
    spec: { source: { experiment: `exp-${String(i).padStart(5, '0')}` }, connected: phase !== 'Undeployed' },
    status: {
      phase,
      ...(phase === 'Deployed'
        ? {
            deploymentId: `d${i}`,
            endpoint: { serviceURL: `http://agent-${i}.ns-${i % 20}.svc:8080`, inferencePath: 'get_action' as const, paths: ['/status', '/get_action'] },
            health: { consecutiveFailures: 0, lastCheckedAt: '2026-03-02T10:00:00Z', lastHealthyAt: '2026-03-02T10:00:00Z' },
          }
        : {}),
    },
  };
}

export function generatedCluster(): TrainingCluster {
  return {
    metadata: { name: 'onprem', generation: 1 },
    spec: { setupBundle: { version: '1.0.0', images: { runtime: 'r:1' } }, currentBundleVersion: '1.0.0', checkpointStorage: { hostPath: { path: '/c' } } },
    status: {
      observedGeneration: 1,
      workers: { total: 1000, ready: 998, notReady: 2, readyNodes: ['gpu-0000'], notReadyNodes: ['gpu-0998', 'gpu-0999'] },
      gpus: { total: 7984, allocated: 4000, free: 3984, byProduct: [{ product: 'NVIDIA-A100-SXM4-80GB', total: 7984, allocated: 4000, free: 3984, memoryMiB: 81920, computeCapability: '8.0', attentionBackend: 'fa3' }] },
      bundle: { installedVersion: '1.0.0', currentVersion: '1.0.0', state: 'Current' },
      conditions: [{ type: 'Ready', status: 'True', reason: 'Ready', message: 'ok', lastTransitionTime: '2026-03-01T00:00:00Z', observedGeneration: 1 }],
    },
  };
}

export function generatedClass(name: string): ResourceClass {
  return {
    metadata: { name, generation: 1 },
    spec: { trainingCluster: 'onprem', nodes: 2, worker: { cpu: '8', memory: '64Gi', gpus: 4 }, creditsPerNodeHour: 3.6 },
    status: { observedGeneration: 1, available: true, reason: 'Available', message: 'ok', advancedTrainingEligible: true, eligibleNodes: 900, fitNow: 100, fitMax: 450, queued: 700, running: 700 },
  };
}

// ajv-formats is CommonJS with a default export, which NodeNext types as the module namespace.
const addFormats = addFormatsPlugin as unknown as (ajv: Ajv2020, formats: string[]) => Ajv2020;

/**
 * Validates answers against the document: the schema of (path template, status code, JSON). Returns the errors
 * (empty when it conforms); a path, method or status the document does not describe is an error too.
 */
export function openApiValidator(): (pathTemplate: string, status: number, body: unknown) => string[] {
  const doc = openApiDocument() as { paths: Record<string, { get: { responses: Record<string, unknown> } }>; components: Record<string, unknown> };
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv, ['date-time', 'date']);
  // The document is added whole, so #/components/... references resolve exactly as a client's would.
  ajv.addKeyword('components');
  ajv.addSchema({ $id: 'status-api', components: doc.components });
  const compiled = new Map<string, ValidateFunction>();
  const resolve = (r: unknown): unknown => {
    const ref = (r as { $ref?: string }).$ref;
    if (!ref) return r;
    const [, kind, name] = /^#\/components\/(\w+)\/(\w+)$/.exec(ref) ?? [];
    return resolve((doc.components[kind!] as Record<string, unknown>)[name!]);
  };
  return (path, status, body) => {
    const op = doc.paths[path]?.get;
    if (!op) return [`the document has no GET ${path}`];
    const response = resolve(op.responses[String(status)]) as { content?: Record<string, { schema: unknown }> } | undefined;
    if (!response) return [`the document has no ${status} answer for GET ${path}`];
    const schema = response.content?.['application/json']?.schema as { $ref?: string } | undefined;
    if (!schema) return body === undefined || body === '' ? [] : [`GET ${path} ${status} should have no JSON body`];
    const key = `${path} ${status}`;
    let fn = compiled.get(key);
    if (!fn) {
      fn = ajv.compile({ $ref: `status-api${schema.$ref ?? ''}` });
      compiled.set(key, fn);
    }
    return fn(body) ? [] : (fn.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
  };
}
