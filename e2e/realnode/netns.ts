// The node's network namespace and the veth pair that joins it to the machine, with iproute2. The machine's
// namespace gets only the veth's host end, its connected /30 and a route to this node's pod network through the
// veth (the Kubernetes network model: the control plane reaches every pod, e.g. the API server calling a webhook
// at its pod address), both on the veth, so they go with it. The only place the node can send to from its
// namespace is that host end (the API server forwarder): the namespace has no default route, and the machine
// itself does not forward (its ip_forward is never touched).
import { execFile } from 'node:child_process';
import { existsSync, readlinkSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import type { NodeAddresses } from './slots.ts';

const run = promisify(execFile);

export const netnsPath = (name: string) => `/run/netns/${name}`;

async function ip(args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}

/** `ip` inside the namespace. */
async function ipIn(netns: string, args: string[]): Promise<void> {
  await ip(['-n', netns, ...args]);
}

export interface NetnsPlan {
  netns: string;
  hostVeth: string;
  nodeVeth: string;
  addresses: NodeAddresses;
  serviceCidr: string;
  /** The CNI bridge's name (config.ts). */
  bridge: string;
}

export async function createNetns(p: NetnsPlan): Promise<void> {
  const a = p.addresses;
  await ip(['netns', 'add', p.netns]);
  await ipIn(p.netns, ['link', 'set', 'lo', 'up']);
  await ip(['link', 'add', p.hostVeth, 'type', 'veth', 'peer', 'name', p.nodeVeth]);
  await ip(['link', 'set', p.nodeVeth, 'netns', p.netns]);
  await ip(['addr', 'add', `${a.hostIp}/${a.linkPrefix}`, 'dev', p.hostVeth]);
  await ip(['link', 'set', p.hostVeth, 'up']);
  await ipIn(p.netns, ['addr', 'add', `${a.nodeIp}/${a.linkPrefix}`, 'dev', p.nodeVeth]);
  await ipIn(p.netns, ['link', 'set', p.nodeVeth, 'up']);
  // The pod network is unique to the slot (unlike the Service range, which every cluster shares), so this route
  // never meets another node's. Replies from pods go back over the veth by the node's own /30 route; the bridge's
  // ipMasq applies to new connections from pods only, not to these.
  await ip(['route', 'add', a.podCidr, 'via', a.nodeIp, 'dev', p.hostVeth]);
  // ClusterIPs are rewritten by kube-proxy in OUTPUT/PREROUTING, but a packet from the node itself needs a route
  // before netfilter sees it. The pod bridge (made here, before the CNI plugin, which adopts it) gives one that
  // stays inside the namespace: an address without a Service is asked for on the bridge and never answered.
  // (This kernel has no dummy devices, the usual choice.)
  await ipIn(p.netns, ['link', 'add', p.bridge, 'type', 'bridge']);
  await ipIn(p.netns, ['link', 'set', p.bridge, 'up']);
  await ipIn(p.netns, ['route', 'add', p.serviceCidr, 'dev', p.bridge]);
}

export interface PeerEnd {
  netns: string;
  addresses: NodeAddresses;
}

/** The name of the peer link's end in `from`'s namespace (at most 15 bytes: `arn254p253`). */
export const peerVeth = (from: number, to: number) => `arn${from}p${to}`;

/**
 * Joins two nodes of one cluster directly, namespace to namespace, so each node's pods reach the other's (the
 * Kubernetes network model: every pod reaches every pod). A veth pair with one end in each namespace; each end
 * carries its node's own address (/32) so packets leave with it; each side routes the peer's address and pod
 * network over it. The machine's namespace takes no part, so its forwarding stays off. Both ends go when either
 * namespace is deleted. Returns false when the pair exists already: two nodes that start together may both try.
 */
export async function linkPeers(a: PeerEnd, b: PeerEnd): Promise<boolean> {
  const [sa, sb] = [a.addresses.slot, b.addresses.slot];
  try {
    await ip(['link', 'add', peerVeth(sa, sb), 'netns', a.netns, 'type', 'veth', 'peer', 'name', peerVeth(sb, sa), 'netns', b.netns]);
  } catch (err) {
    if (/File exists/.test((err as Error).message)) return false;
    throw err;
  }
  for (const [self, peer, dev] of [
    [a, b, peerVeth(sa, sb)],
    [b, a, peerVeth(sb, sa)],
  ] as const) {
    await ipIn(self.netns, ['addr', 'add', `${self.addresses.nodeIp}/32`, 'dev', dev]);
    await ipIn(self.netns, ['link', 'set', dev, 'up']);
    await ipIn(self.netns, ['route', 'add', `${peer.addresses.nodeIp}/32`, 'dev', dev, 'scope', 'link']);
    await ipIn(self.netns, ['route', 'add', peer.addresses.podCidr, 'via', peer.addresses.nodeIp, 'dev', dev]);
    await enableForwarding(self.netns);
  }
  return true;
}

/** Pods' packets to another node cross this namespace: it must forward (its own sysctl, not the machine's). */
async function enableForwarding(netns: string): Promise<void> {
  try {
    await run('nsenter', [`--net=${netnsPath(netns)}`, '--', 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`enabling forwarding in ${netns}: ${(e.stderr ?? e.message).trim()}`);
  }
}

/** Removes the namespace and the host end (the pair goes with it, but a held namespace would keep it). */
export async function deleteNetns(p: Pick<NetnsPlan, 'netns' | 'hostVeth'>): Promise<void> {
  if (existsSync(`/sys/class/net/${p.hostVeth}`)) await ip(['link', 'del', p.hostVeth]).catch(() => undefined);
  if (existsSync(netnsPath(p.netns))) await ip(['netns', 'delete', p.netns]);
}

/** The namespace's inode: every process inside it shows the same /proc/<pid>/ns/net link. */
export function netnsId(path: string): string | undefined {
  try {
    return `net:[${statSync(path).ino}]`;
  } catch {
    return undefined;
  }
}

export function processNetns(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

/** Checks what the node needs before anything is made, and names the fix. */
export async function checkPrerequisites(): Promise<void> {
  if (process.platform !== 'linux') throw new Error('a real node needs Linux (network namespaces, cgroups, overlayfs)');
  if (process.getuid?.() !== 0) {
    throw new Error('a real node needs root (network namespaces, mounts, cgroups); run the tests as root');
  }
  for (const tool of ['ip', 'nsenter', 'iptables', 'tar', 'sysctl']) {
    try {
      await run('sh', ['-c', `command -v ${tool}`]);
    } catch {
      throw new Error(`a real node needs \`${tool}\` on PATH (Debian: iproute2, util-linux, iptables, tar, procps)`);
    }
  }
  for (const [path, what] of [
    ['/usr/bin/containerd', "Debian's containerd"],
    ['/usr/bin/containerd-shim-runc-v2', "Debian's containerd"],
    ['/usr/bin/ctr', "Debian's containerd"],
    ['/usr/lib/cni/bridge', "Debian's containernetworking-plugins"],
    ['/usr/lib/cni/host-local', "Debian's containernetworking-plugins"],
  ] as const) {
    if (!existsSync(path)) {
      throw new Error(`a real node needs ${what} (${path} is missing); e2e/toolchain/build-node.sh (make toolchain) installs it as root`);
    }
  }
  try {
    await run('ip', ['netns', 'list']);
  } catch (err) {
    throw new Error(`network namespaces are not usable here (ip netns list: ${(err as Error).message})`);
  }
}
