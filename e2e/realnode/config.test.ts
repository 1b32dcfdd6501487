import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { containerdConfig, cniConflist, corefile, kubeletConfig, paths, type NodeLayout } from './config.ts';
import { mountsUnder } from './cleanup.ts';
import { addressesFor } from './slots.ts';

const layout: NodeLayout = {
  name: 'n',
  dir: '/c/nodes/n',
  binDir: '/bin-node',
  addresses: addressesFor(3),
  apiserverUrl: 'https://10.201.3.1:6443',
  serviceCidr: '10.96.0.0/16',
  clusterDomain: 'cluster.local',
  sandboxImage: 'localhost/arena/pause:v1.37.2',
  cgroupRoot: '/arena-realnode-3',
  cniBinDir: '/usr/lib/cni',
};

test('the kubelet runs on cgroup v1 with its own cgroup root, node address and DNS, and nothing under the machine\'s folders', () => {
  const k = parse(kubeletConfig(layout)) as Record<string, unknown>;
  assert.equal(k.failCgroupV1, false);
  assert.equal(k.cgroupDriver, 'cgroupfs');
  assert.equal(k.cgroupRoot, '/arena-realnode-3');
  assert.deepEqual(k.clusterDNS, ['10.201.3.2']);
  assert.equal(k.address, '10.201.3.2');
  for (const key of ['resolvConf', 'podLogsDir', 'volumePluginDir']) assert.ok(String(k[key]).startsWith('/c/nodes/n/'), key);
  assert.equal(k.containerRuntimeEndpoint, `unix://${paths(layout.dir).containerdSocket}`);
});

test('containerd keeps its state in the node folder and runs pods with the built runc', () => {
  const t = containerdConfig(layout);
  assert.match(t, /^root = "\/c\/nodes\/n\/containerd\/root"$/m);
  assert.match(t, /^\s+restrict_oom_score_adj = true$/m);
  assert.match(t, /^\s+netns_mounts_under_state_dir = true$/m);
  assert.match(t, /^\s+default_runtime_name = "runc"$/m);
  assert.match(t, /^\s+BinaryName = "\/bin-node\/runc"$/m);
  assert.match(t, /^\s+sandbox_image = "localhost\/arena\/pause:v1.37.2"$/m);
});

test('the pod network is the slot\'s range, with IPAM state in the node folder', () => {
  const c = JSON.parse(cniConflist(layout)) as { plugins: { type: string; ipam?: { ranges: { subnet: string }[][]; dataDir: string } }[] };
  const bridge = c.plugins.find((p) => p.type === 'bridge')!;
  assert.equal(bridge.ipam!.ranges[0]![0]!.subnet, '10.202.3.0/24');
  assert.ok(bridge.ipam!.dataDir.startsWith('/c/nodes/n/'));
});

test('CoreDNS answers only for the cluster, on the node address', () => {
  const f = corefile(layout, '/k');
  assert.match(f, /^\s+bind 10\.201\.3\.2$/m);
  assert.doesNotMatch(f, /forward/);
});

test('mounts under a folder are listed deepest first, with mountinfo escapes decoded', () => {
  const info = [
    '1 0 8:1 / / rw - ext4 /dev/vda rw',
    '2 1 0:5 / /c/nodes/n/containerd/state/x/rootfs rw - overlay overlay rw',
    '3 1 0:6 / /c/nodes/n/kubelet/pods/a\\040b/volumes rw - tmpfs tmpfs rw',
    '4 1 0:7 / /c/nodes/n/containerd/state rw - tmpfs tmpfs rw',
    '5 1 0:8 / /c/nodes/nn rw - tmpfs tmpfs rw',
  ].join('\n');
  assert.deepEqual(mountsUnder('/c/nodes/n', info), [
    '/c/nodes/n/containerd/state/x/rootfs',
    '/c/nodes/n/kubelet/pods/a b/volumes',
    '/c/nodes/n/containerd/state',
  ]);
});
