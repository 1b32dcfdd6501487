import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Container, V1Node, V1Pod } from '@kubernetes/client-node';
import { nodeInfoFromNode, podRequests, podUsageFromPod } from './from-kube.ts';
import { GiB } from './testing.ts';

function kubeNode(o: { ready?: string; unschedulable?: boolean; allocatable?: Record<string, string> } = {}): V1Node {
  return {
    metadata: { name: 'gpu-1', labels: { 'nvidia.com/gpu.product': 'A100' } },
    spec: { unschedulable: o.unschedulable, taints: [{ key: 'nvidia.com/gpu', value: 'true', effect: 'NoSchedule' }, { key: 'bare', effect: 'NoExecute' }] },
    status: {
      allocatable: o.allocatable ?? { cpu: '63500m', memory: '503Gi', 'nvidia.com/gpu': '8', pods: '110', 'ephemeral-storage': '1Ti' },
      conditions: [
        { type: 'MemoryPressure', status: 'False' },
        { type: 'Ready', status: o.ready ?? 'True' },
      ],
    },
  };
}

describe('nodeInfoFromNode', () => {
  it('keeps only what the scheduler reads', () => {
    assert.deepEqual(nodeInfoFromNode(kubeNode()), {
      name: 'gpu-1',
      labels: { 'nvidia.com/gpu.product': 'A100' },
      taints: [
        { key: 'nvidia.com/gpu', value: 'true', effect: 'NoSchedule' },
        { key: 'bare', effect: 'NoExecute' },
      ],
      unschedulable: false,
      ready: true,
      allocatable: { cpuMilli: 63_500, memoryBytes: 503 * GiB, gpus: 8, pods: 110 },
    });
  });

  const cases: { name: string; n: V1Node; check: (i: ReturnType<typeof nodeInfoFromNode>) => unknown; want: unknown }[] = [
    { name: 'Ready Unknown is not ready', n: kubeNode({ ready: 'Unknown' }), check: (i) => i.ready, want: false },
    { name: 'cordoned', n: kubeNode({ unschedulable: true }), check: (i) => i.unschedulable, want: true },
    { name: 'no GPU resource means 0 GPUs', n: kubeNode({ allocatable: { cpu: '4', memory: '16Gi', pods: '110' } }), check: (i) => i.allocatable.gpus, want: 0 },
    { name: 'no conditions yet is not ready', n: { metadata: { name: 'new' } }, check: (i) => [i.ready, i.allocatable.pods], want: [false, 0] },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(c.check(nodeInfoFromNode(c.n)), c.want));

  it('reads another GPU resource name when told', () => {
    const n = kubeNode({ allocatable: { 'example.com/gpu': '4' } });
    assert.equal(nodeInfoFromNode(n, { gpuResource: 'example.com/gpu' }).allocatable.gpus, 4);
  });

  it('names the node and field of a malformed quantity', () => {
    assert.throws(() => nodeInfoFromNode(kubeNode({ allocatable: { cpu: 'many' } })), /node gpu-1 allocatable cpu: "many" is not a Kubernetes quantity/);
  });
});

const c = (name: string, requests: Record<string, string>, extra: Partial<V1Container> = {}): V1Container => ({ name, resources: { requests }, ...extra });

function kubePod(spec: Partial<NonNullable<V1Pod['spec']>>, phase = 'Running'): V1Pod {
  return { metadata: { namespace: 'ns', name: 'p' }, spec: { containers: [], nodeName: 'gpu-1', ...spec }, status: { phase } };
}

describe('podRequests (as kube-scheduler counts them)', () => {
  const cases: { name: string; pod: V1Pod; want: [cpu: number, memGiB: number, gpus: number] }[] = [
    { name: 'sums regular containers', pod: kubePod({ containers: [c('a', { cpu: '1', memory: '1Gi', 'nvidia.com/gpu': '2' }), c('b', { cpu: '500m', memory: '2Gi' })] }), want: [1500, 3, 2] },
    {
      name: 'requests default to limits',
      pod: kubePod({ containers: [{ name: 'a', resources: { limits: { cpu: '2', memory: '4Gi', 'nvidia.com/gpu': '1' } } }] }),
      want: [2000, 4, 1],
    },
    {
      name: 'a bigger init container sets the peak',
      pod: kubePod({ containers: [c('a', { cpu: '1', memory: '1Gi' })], initContainers: [c('init', { cpu: '4', memory: '1Gi' })] }),
      want: [4000, 1, 0],
    },
    {
      name: 'sidecars add to the containers and to later init containers',
      pod: kubePod({
        containers: [c('a', { cpu: '1', memory: '1Gi' })],
        initContainers: [c('side', { cpu: '1', memory: '1Gi' }, { restartPolicy: 'Always' }), c('init', { cpu: '3', memory: '1Gi' })],
      }),
      want: [4000, 2, 0],
    },
    {
      name: 'pod-level requests replace the CPU and memory sums, and overhead is added',
      pod: kubePod({
        containers: [c('a', { cpu: '1', memory: '1Gi', 'nvidia.com/gpu': '8' })],
        resources: { requests: { cpu: '6', memory: '8Gi' } },
        overhead: { cpu: '250m', memory: '1Gi' },
      }),
      want: [6250, 9, 8],
    },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const r = podRequests(t.pod);
      assert.deepEqual([r.cpuMilli, r.memoryBytes / GiB, r.gpus], t.want);
    });
  }
});

describe('podUsageFromPod', () => {
  const cases: { name: string; pod: V1Pod; node: string; terminal: boolean }[] = [
    { name: 'a running pod', pod: kubePod({}), node: 'gpu-1', terminal: false },
    { name: 'an unbound pod', pod: kubePod({ nodeName: undefined }, 'Pending'), node: '', terminal: false },
    { name: 'a succeeded pod', pod: kubePod({}, 'Succeeded'), node: 'gpu-1', terminal: true },
    { name: 'a failed pod', pod: kubePod({}, 'Failed'), node: 'gpu-1', terminal: true },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const u = podUsageFromPod(t.pod);
      assert.deepEqual([u.node, u.terminal], [t.node, t.terminal]);
    });
  }
});
