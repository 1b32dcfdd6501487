// The real node's configuration files, as pure functions of its layout, so each setting is written (and
// explained) once and unit tests can read them without root.
import type { NodeAddresses } from './slots.ts';

/** Where everything of one node lives; every path is under the node's own folder. */
export interface NodeLayout {
  name: string;
  dir: string;
  binDir: string;
  addresses: NodeAddresses;
  /** The API server as the node's namespace reaches it: the forwarder on the veth's host end. */
  apiserverUrl: string;
  serviceCidr: string;
  clusterDomain: string;
  sandboxImage: string;
  /** cgroup (v1 path, the same in every hierarchy) that holds the node's pods. */
  cgroupRoot: string;
  cniBinDir: string;
}

export function paths(dir: string) {
  return {
    containerdConfig: `${dir}/containerd/config.toml`,
    containerdRoot: `${dir}/containerd/root`,
    containerdState: `${dir}/containerd/state`,
    containerdSocket: `${dir}/containerd/containerd.sock`,
    runcRoot: `${dir}/containerd/runc`,
    cniConfDir: `${dir}/cni/net.d`,
    cniIpamDir: `${dir}/cni/ipam`,
    kubeletRoot: `${dir}/kubelet`,
    kubeletConfig: `${dir}/kubelet-config.yaml`,
    kubeletKubeconfig: `${dir}/kubelet.kubeconfig`,
    podLogs: `${dir}/pod-logs`,
    resolvConf: `${dir}/resolv.conf`,
    proxyConfig: `${dir}/kube-proxy-config.yaml`,
    proxyKubeconfig: `${dir}/kube-proxy.kubeconfig`,
    corefile: `${dir}/Corefile`,
    corednsKubeconfig: `${dir}/coredns.kubeconfig`,
    logs: `${dir}/logs`,
    images: `${dir}/images`,
    ca: `${dir}/ca.crt`,
  };
}

/** The pod bridge inside the node's namespace (one per namespace, so the same name on every node). */
export const bridgeName = 'cni0';

export const ports = { apiserver: 6443, kubelet: 10250, kubeletHealthz: 10248, proxyHealthz: 10256, dnsHealth: 8080 };

const q = (s: string) => JSON.stringify(s);

export function containerdConfig(l: NodeLayout): string {
  const p = paths(l.dir);
  return `version = 2
root = ${q(p.containerdRoot)}
state = ${q(p.containerdState)}
# Snapshotters this machine cannot use only log errors at every start.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = ${q(p.containerdSocket)}

[ttrpc]
  address = ${q(`${p.containerdSocket}.ttrpc`)}

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(`${l.dir}/containerd/opt`)}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(l.sandboxImage)}
  # The machine lacks CAP_SYS_RESOURCE: a container may not get a lower OOM score than the runtime itself.
  restrict_oom_score_adj = true
  # Pod network namespaces under the node's own state folder, not the machine's /run/netns.
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  max_container_log_line_size = 16384
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    # Without a name the runtime entry below is not the default, and Debian's older runc would run pods.
    default_runtime_name = "runc"
    discard_unpacked_layers = false

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = ${q(`${l.binDir}/runc`)}
        Root = ${q(p.runcRoot)}
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(l.cniBinDir)}
    conf_dir = ${q(p.cniConfDir)}
    max_conf_num = 1
`;
}

/** The CNI network's name: libcni names its result caches (outside the node folder) after it. */
export const cniNetworkName = (slot: number) => `arena-${slot}`;

export function cniConflist(l: NodeLayout): string {
  const a = l.addresses;
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: cniNetworkName(a.slot),
      plugins: [
        {
          type: 'bridge',
          bridge: bridgeName,
          isGateway: true,
          // Pod traffic to the forwarder on the host end leaves with the node's address, which the host end's
          // connected route answers; the machine's own namespace needs no route to the pod network.
          ipMasq: true,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: a.podCidr, gateway: a.podGateway }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: paths(l.dir).cniIpamDir,
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

export function kubeletConfig(l: NodeLayout): string {
  const p = paths(l.dir);
  const a = l.addresses;
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 only (cgroup2 is a side mount); Kubernetes 1.35+ refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
# Each node its own pod cgroup tree, so two nodes on one machine never touch each other's kubepods.
cgroupRoot: ${q(l.cgroupRoot)}
containerRuntimeEndpoint: unix://${p.containerdSocket}
address: ${a.nodeIp}
port: ${ports.kubelet}
readOnlyPort: 0
healthzBindAddress: ${a.nodeIp}
healthzPort: ${ports.kubeletHealthz}
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: ${q(p.ca)} }
authorization:
  mode: Webhook
clusterDomain: ${l.clusterDomain}
# CoreDNS of this node, on the node's own address; the resolv.conf holds only that server, so no pod (dnsPolicy
# Default included) is ever given the machine's real resolver.
clusterDNS: [${a.nodeIp}]
resolvConf: ${q(p.resolvConf)}
podLogsDir: ${q(p.podLogs)}
volumePluginDir: ${q(`${p.kubeletRoot}/volume-plugins`)}
failSwapOn: false
rotateCertificates: false
serverTLSBootstrap: false
# The test images exist only here; image GC must never delete them on a disk that is half full.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
  nodefs.inodesFree: 1%
nodeStatusUpdateFrequency: 10s
nodeStatusReportFrequency: 1m
shutdownGracePeriod: 0s
maxPods: 50
`;
}

export function kubeProxyConfig(l: NodeLayout, kubeconfig: string): string {
  const a = l.addresses;
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${q(kubeconfig)}
hostnameOverride: ${l.name}
mode: iptables
clusterCIDR: ${a.podCidr}
bindAddress: ${a.nodeIp}
healthzBindAddress: ${a.nodeIp}:${ports.proxyHealthz}
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [${a.nodeIp}/32]
iptables:
  localhostNodePorts: false
# nf_conntrack_max is machine-wide, not per network namespace: leave it (and the timeouts) as the machine has them.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`;
}

export function corefile(l: NodeLayout, kubeconfig: string): string {
  const a = l.addresses;
  // No forward plugin: names outside the cluster domain are refused, never sent to a real resolver.
  return `${l.clusterDomain}:53 in-addr.arpa:53 {
  bind ${a.nodeIp}
  errors
  health ${a.nodeIp}:${ports.dnsHealth}
  kubernetes ${l.clusterDomain} in-addr.arpa {
    kubeconfig ${kubeconfig} default
    pods insecure
    ttl 5
  }
  cache 5
  loadbalance
}
`;
}

export function resolvConf(l: NodeLayout): string {
  return `nameserver ${l.addresses.nodeIp}\n`;
}
