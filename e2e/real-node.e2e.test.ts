// A real node in the local cluster: kubelet v1.37 with containerd and runc, pods as real containers under the
// restricted Pod Security Standard, OOM kills from cgroup limits, cluster DNS for headless Services and
// kube-proxy for ClusterIPs; and a stop that leaves nothing behind. Timings are printed, never asserted.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { CoreV1Api, type V1Container, type V1Pod } from '@kubernetes/client-node';
import { LocalCluster, repoRoot } from './cluster/control-plane.ts';
import { waitFor } from './cluster/wait.ts';
import { RealNode } from './realnode/real-node.ts';
import { busyboxImageName } from './realnode/oci-image.ts';
import { cgroupHierarchies, containerIds, hostLeftovers, mountsUnder, processesIn } from './realnode/cleanup.ts';
import { cniNetworkName, paths } from './realnode/config.ts';
import { netnsId, netnsPath } from './realnode/netns.ts';
import { reapAbandonedRealNodes } from './realnode/reap.ts';
import { liveSlots } from './realnode/slots.ts';
import { readStat } from './node/proc.ts';

const run = promisify(execFile);
const ns = 'locked-down';
const nodeName = 'real-0';

const image = busyboxImageName();

/** A container that passes the restricted Pod Security Standard. */
function restricted(name: string, script: string, extra: Partial<V1Container> = {}): V1Container {
  return {
    name,
    image,
    imagePullPolicy: 'Never',
    command: ['/bin/sh', '-c', script],
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
    resources: { limits: { memory: '32Mi', cpu: '200m' } },
    ...extra,
  };
}

function pod(name: string, containers: V1Container[], spec: Partial<V1Pod['spec']> = {}, labels: Record<string, string> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: name, ...labels } },
    spec: {
      nodeName,
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
      containers,
      ...spec,
    },
  };
}

/** The namespace the tests' pods run in, with the restricted Pod Security Standard enforced. */
async function lockedDownNamespace(core: CoreV1Api): Promise<void> {
  await core.createNamespace({
    body: { metadata: { name: ns, labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' } } },
  });
  await waitFor(() => core.readNamespacedServiceAccount({ namespace: ns, name: 'default' }).then(() => true), {
    timeoutMs: 60_000,
    what: 'the default service account',
  });
}

/** Waits for one of `phases`; a timeout says the last status and what `diagnose` adds (events, kubelet log). */
async function waitPhase(
  core: CoreV1Api,
  name: string,
  phases: string[],
  opts: { timeoutMs?: number; diagnose?: () => Promise<string> } = {},
): Promise<V1Pod> {
  let last: V1Pod | undefined;
  await waitFor(
    async () => {
      last = await core.readNamespacedPod({ namespace: ns, name });
      return phases.includes(last.status?.phase ?? '');
    },
    { timeoutMs: opts.timeoutMs ?? 90_000, what: `${name}: ${phases.join(' or ')}`, intervalMs: 250 },
  ).catch(async (err: Error) => {
    throw new Error(`${err.message}\nlast status: ${JSON.stringify(last?.status)}\n${(await opts.diagnose?.()) ?? ''}`);
  });
  return last!;
}

describe('real node', { timeout: 600_000 }, () => {
  let c: LocalCluster;
  let core: CoreV1Api;
  let node: RealNode;
  const figures: Record<string, number> = {};

  const kubectl = async (args: string[]) => (await run(join(c.binDir, 'kubectl'), args, { env: c.env(), encoding: 'utf8' })).stdout;

  const diagnose = (name: string) => async () => {
    const events = await kubectl(['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${name}`]).catch(() => '');
    return `events:\n${events}\n--- kubelet ---\n${node.logTail('kubelet')}`;
  };
  const waitPod = (name: string, phases: string[], timeoutMs?: number) => waitPhase(core, name, phases, { timeoutMs, diagnose: diagnose(name) });
  /** created → Running, from the API's own timestamps (the kubelet's startedAt, second resolution). */
  function startLatencyMs(p: V1Pod): number {
    const created = new Date(p.metadata!.creationTimestamp!).getTime();
    const started = new Date(p.status!.containerStatuses![0]!.state!.running?.startedAt ?? p.status!.containerStatuses![0]!.state!.terminated!.startedAt!).getTime();
    return started - created;
  }

  before(async () => {
    const t0 = Date.now();
    c = await LocalCluster.start();
    figures.clusterStartMs = Date.now() - t0;
    node = await RealNode.start({ cluster: c, name: nodeName, labels: { 'arena.agilerl.com/worker': 'true' } });
    figures.nodeStartMs = node.startMs;
    figures.nodeFirstReadyMs = node.readyMs;
    await node.importBusybox();
    core = c.kubeConfig().makeApiClient(CoreV1Api);
    await lockedDownNamespace(core);
  });

  after(async () => {
    console.log(`# real node figures: ${JSON.stringify(figures)}`);
    await node?.stop();
    await c?.stop();
  });

  test('registers Ready with the containerd runtime and an address in its own namespace', async () => {
    const n = await core.readNode({ name: nodeName });
    assert.equal(n.status?.conditions?.find((x) => x.type === 'Ready')?.status, 'True');
    assert.match(n.status?.nodeInfo?.containerRuntimeVersion ?? '', /^containerd:\/\/1\.6\./);
    assert.equal(n.status?.nodeInfo?.kubeletVersion, 'v1.37.2');
    assert.deepEqual(n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address, node.addresses.nodeIp);
    assert.equal(n.spec?.taints?.length ?? 0, 0, `taints: ${JSON.stringify(n.spec?.taints)}`);
  });

  test('the restricted Pod Security Standard refuses a pod that runs as root', async () => {
    const bad = pod('as-root', [restricted('main', 'true')], { securityContext: { runAsUser: 0 } });
    await assert.rejects(core.createNamespacedPod({ namespace: ns, body: bad }), (err: { code?: number; body?: string }) => {
      assert.equal(err.code, 403);
      assert.match((JSON.parse(err.body ?? '{}') as { message?: string }).message ?? '', /violates PodSecurity "restricted:latest".*runAsUser=0/);
      return true;
    });
  });

  test('a locked-down pod runs as uid 1000 with a read-only root, no capabilities, seccomp and its memory limit', async () => {
    const script = [
      'echo "uid=$(id -u) gid=$(id -g)"',
      'touch /probe 2>/dev/null && echo "root=writable" || echo "root=read-only"',
      'echo "$(grep CapEff /proc/self/status)"',
      'echo "$(grep ^Seccomp: /proc/self/status)"',
      'echo "memlimit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"',
      'echo "ip=$(hostname -i)"',
      'sleep 3600',
    ].join('; ');
    const created = Date.now();
    await core.createNamespacedPod({ namespace: ns, body: pod('locked', [restricted('main', script)]) });
    const p = await waitPod('locked', ['Running']);
    figures.podRunningSeenMs = Date.now() - created; // as this test sees it, polling every 250 ms
    figures.podStartLatencyMs = startLatencyMs(p);
    assert.equal(p.status?.podIP?.startsWith(node.addresses.podCidr.split('.').slice(0, 3).join('.') + '.'), true, `podIP ${p.status?.podIP}`);
    let logs = '';
    await waitFor(
      async () => {
        logs = await kubectl(['logs', '-n', ns, 'locked']);
        return logs.includes('ip=');
      },
      { timeoutMs: 30_000, what: 'kubectl logs to show the pod output' },
    );
    assert.match(logs, /^uid=1000 gid=1000$/m);
    assert.match(logs, /^root=read-only$/m);
    assert.match(logs, /^CapEff:\s+0000000000000000$/m);
    assert.match(logs, /^Seccomp:\s+2$/m); // 2: a filter is installed (RuntimeDefault)
    assert.match(logs, new RegExp(`^memlimit=${32 * 1024 * 1024}$`, 'm'));
    assert.match(logs, new RegExp(`^ip=${p.status!.podIP!.replace(/\./g, '\\.')}`, 'm'));
    // exec streams through the same path: API server → kubelet on the node's address → containerd.
    assert.equal((await kubectl(['exec', '-n', ns, 'locked', '--', 'id', '-u'])).trim(), '1000');
  });

  test('a container that exceeds its memory limit ends OOMKilled', async () => {
    // dd's 64 MiB buffer is touched as /dev/zero is read into it: twice the 32 MiB limit. exec, so that the
    // process the kernel kills is the container's own (a shell would outlive its child and exit 0).
    const body = pod('hog', [restricted('main', 'echo allocating; exec dd if=/dev/zero of=/dev/null bs=64M count=1')]);
    await core.createNamespacedPod({ namespace: ns, body });
    const p = await waitPod('hog', ['Failed']);
    const term = p.status?.containerStatuses?.[0]?.state?.terminated;
    assert.equal(term?.reason, 'OOMKilled', JSON.stringify(term));
    assert.equal(term?.exitCode, 137);
  });

  test('a headless Service name resolves through cluster DNS and a ClusterIP routes through kube-proxy', async () => {
    const serve = 'mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 8080 -h /www';
    await core.createNamespacedPod({
      namespace: ns,
      body: pod(
        'web-0',
        [restricted('main', serve, { volumeMounts: [{ name: 'www', mountPath: '/www' }], ports: [{ containerPort: 8080 }] })],
        { hostname: 'web-0', subdomain: 'web', volumes: [{ name: 'www', emptyDir: {} }] },
        { role: 'web' },
      ),
    });
    await core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'web' }, spec: { clusterIP: 'None', selector: { role: 'web' }, ports: [{ port: 8080 }] } },
    });
    const svc = await core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'web-svc' }, spec: { selector: { role: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } },
    });
    const web = await waitPod('web-0', ['Running']);
    const fqdn = `web-0.web.${ns}.svc.cluster.local`;
    // Records follow the EndpointSlice, which follows readiness: retry for a while rather than race it. (No
    // `wget -T`: Debian's busybox 1.35 wget crashes with it; `timeout` bounds each try instead.)
    const get = (url: string, out: string) => `timeout 5 wget -q -O /tmp/${out} ${url}`;
    const probe = [
      `for i in $(seq 1 60); do nslookup ${fqdn} >/tmp/ns.out 2>&1 && break; sleep 1; done`,
      'cat /tmp/ns.out',
      `for i in $(seq 1 60); do ${get(`http://web-svc.${ns}.svc.cluster.local/`, 'svc.out')} && break; sleep 1; done`,
      'echo "via-service: $(cat /tmp/svc.out)"',
      `${get(`http://${svc.spec!.clusterIP!}/`, 'ip.out')} && echo "via-clusterip: $(cat /tmp/ip.out)"`,
      // The API server through the kubernetes Service: plain HTTP to its TLS port gets Go's 400 answer, which
      // only the API server (reached through kube-proxy and the forwarder) can give.
      `${get('http://10.96.0.1:443/', 'api.out')} 2>&1 | sed 's/^/apiserver: /'`,
      // And nothing beyond the node: no route out of its namespace (TEST-NET-3, were it ever to leak).
      `${get('http://203.0.113.1:80/', 'out.out')} 2>&1 | sed 's/^/outside: /'`,
      `nslookup example.com >/dev/null 2>&1 && echo "outside-dns: answered" || echo "outside-dns: refused"`,
    ].join('; ');
    await core.createNamespacedPod({
      namespace: ns,
      body: pod('client', [restricted('main', probe, { volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }] })], {
        volumes: [{ name: 'tmp', emptyDir: {} }],
      }),
    });
    await waitPod('client', ['Succeeded', 'Failed'], 150_000);
    const logs = await kubectl(['logs', '-n', ns, 'client']);
    assert.match(logs, new RegExp(`Address(?: 1)?:\\s+${web.status!.podIP!.replace(/\./g, '\\.')}`), logs);
    assert.match(logs, /^via-service: hello from web-0$/m, logs);
    assert.match(logs, /^via-clusterip: hello from web-0$/m, logs);
    assert.match(logs, /^apiserver: .*400 Bad Request/m, logs);
    assert.match(logs, /^outside: .*Network is unreachable/m, logs);
    assert.match(logs, /^outside-dns: refused$/m, logs);
  });

  test('a second node of the cluster: its pods reach the first node\'s pods by headless name and pod address, and the API server', async () => {
    // web-0 (from the test above) runs on real-0; a gang's rank 1 on another node finds rank 0 the same way.
    const t0 = Date.now();
    const second = await RealNode.start({ cluster: c, name: 'real-1', labels: { 'arena.agilerl.com/worker': 'true' } });
    try {
      figures.secondNodeStartMs = Date.now() - t0;
      await second.importBusybox();
      const web = await core.readNamespacedPod({ namespace: ns, name: 'web-0' });
      assert.equal(web.spec!.nodeName, nodeName);
      const fqdn = `web-0.web.${ns}.svc.cluster.local`;
      const get = (url: string, out: string) => `timeout 5 wget -q -O /tmp/${out} ${url}`;
      const probe = [
        `for i in $(seq 1 30); do nslookup ${fqdn} >/tmp/ns.out 2>&1 && break; sleep 1; done`,
        'cat /tmp/ns.out',
        `for i in $(seq 1 30); do ${get(`http://${fqdn}:8080/`, 'dns.out')} && break; sleep 1; done`,
        'echo "via-headless-name: $(cat /tmp/dns.out)"',
        `${get(`http://${web.status!.podIP!}:8080/`, 'ip.out')} && echo "via-pod-ip: $(cat /tmp/ip.out)"`,
        `${get(`http://web-svc.${ns}.svc.cluster.local/`, 'svc.out')} && echo "via-service: $(cat /tmp/svc.out)"`,
        `${get('http://10.96.0.1:443/', 'api.out')} 2>&1 | sed 's/^/apiserver: /'`,
        `${get('http://203.0.113.1:80/', 'out.out')} 2>&1 | sed 's/^/outside: /'`,
      ].join('; ');
      await core.createNamespacedPod({
        namespace: ns,
        body: pod('client-1', [restricted('main', probe, { volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }] })], {
          nodeName: 'real-1',
          volumes: [{ name: 'tmp', emptyDir: {} }],
        }),
      });
      const done = await waitPhase(core, 'client-1', ['Succeeded', 'Failed'], {
        timeoutMs: 120_000,
        diagnose: async () => `--- real-1 kubelet ---\n${second.logTail('kubelet')}`,
      });
      assert.equal(done.spec!.nodeName, 'real-1');
      const logs = await kubectl(['logs', '-n', ns, 'client-1']);
      assert.match(logs, new RegExp(`Address(?: 1)?:\\s+${web.status!.podIP!.replace(/\./g, '\\.')}`), logs);
      assert.match(logs, /^via-headless-name: hello from web-0$/m, logs);
      assert.match(logs, /^via-pod-ip: hello from web-0$/m, logs);
      assert.match(logs, /^via-service: hello from web-0$/m, logs);
      assert.match(logs, /^apiserver: .*400 Bad Request/m, logs);
      assert.match(logs, /^outside: .*Network is unreachable/m, logs);
    } finally {
      await second.stop();
    }
    // The stopped node's API server endpoint went with it; the first node's stays.
    const slices = JSON.parse(await kubectl(['get', 'endpointslices', '-n', 'default', '-l', 'kubernetes.io/service-name=kubernetes', '-o', 'json'])) as {
      items: { metadata: { name: string } }[];
    };
    assert.deepEqual(slices.items.map((i) => i.metadata.name), [`kubernetes-${nodeName}`]);
  });

  test('a node whose test process died is undone by the next start, and a live node is left alone', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'e2e/realnode/cli.ts'), '--cluster', c.dir, '--name', 'orphan'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
    const orphan = JSON.parse(line) as { dir: string; netns: string };
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    const orphanNetns = netnsId(netnsPath(orphan.netns));
    const left = processesIn(new Set([orphanNetns!]));
    assert.ok(left.length >= 4, `containerd, kubelet, kube-proxy and CoreDNS outlive their owner: ${left.join(', ')}`);
    assert.ok(mountsUnder(orphan.dir).length > 0, 'the orphan has mounts');

    await reapAbandonedRealNodes();
    // Reparented to the machine's init when their owner died, they may stay zombies a moment: exited all the same.
    assert.deepEqual(left.filter((pid) => (readStat(pid)?.state ?? 'Z') !== 'Z'), []);
    assert.deepEqual(mountsUnder(orphan.dir), []);
    assert.equal(existsSync(netnsPath(orphan.netns)), false);
    assert.equal(existsSync(netnsPath(node.netns)), true, 'the live node keeps its namespace');
    const n = await core.readNode({ name: nodeName });
    assert.equal(n.status?.conditions?.find((x) => x.type === 'Ready')?.status, 'True');
    await core.deleteNode({ name: 'orphan' });
  });

  test('stop ends every process and leaves no mount, cgroup, network namespace or file outside its folder', async () => {
    const dir = node.dir;
    const netns = node.netns;
    const p = paths(dir);
    const ids = containerIds(p.containerdRoot, p.containerdState);
    const leftovers = () => hostLeftovers({ dir, containerdSocket: p.containerdSocket, network: cniNetworkName(node.addresses.slot), ids });
    assert.ok(leftovers().length > 0, 'the running pods have shim sockets and CNI caches outside the node folder');
    const t0 = Date.now();
    await node.stop();
    figures.nodeStopMs = Date.now() - t0;
    assert.deepEqual(mountsUnder(dir), []);
    assert.equal(existsSync(netnsPath(netns)), false);
    const procs = readdirSync('/proc').filter((e) => {
      try {
        return /^\d+$/.test(e) && readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false;
      }
    });
    assert.deepEqual(procs, [], 'processes naming the node folder on their command line');
    for (const h of cgroupHierarchies({ withUnified: true })) assert.equal(existsSync(join(h, `arena-realnode-${node.addresses.slot}`)), false, h);
    assert.equal(existsSync(`/sys/class/net/arn${node.addresses.slot}h`), false);
    assert.deepEqual(leftovers(), []);
    assert.equal(existsSync('/var/lib/kubelet/pki'), false, 'the kubelet wrote certificates outside its folder');
    // The device-plugin socket is at one fixed path for every kubelet: it stays while another real node runs.
    if (liveSlots().length === 0) assert.equal(existsSync('/var/lib/kubelet/device-plugins/kubelet.sock'), false);
  });
});

describe('two clusters, each with a real node of the same name, side by side', { timeout: 300_000 }, () => {
  const clusters: LocalCluster[] = [];
  const nodes: RealNode[] = [];

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await Promise.all(clusters.map((c) => c.stop()));
    // Stopped at once, the last of the two still tidies what all kubelets share.
    if (liveSlots().length === 0) assert.equal(existsSync('/var/lib/kubelet/device-plugins/kubelet.sock'), false);
  });

  test('get addresses of their own, and a pod of one cannot reach a pod of the other', async () => {
    clusters.push(...(await Promise.all([LocalCluster.start(), LocalCluster.start()])));
    nodes.push(...(await Promise.all(clusters.map((cluster) => RealNode.start({ cluster, name: nodeName })))));
    const [a, b] = nodes as [RealNode, RealNode];
    assert.notEqual(a.addresses.nodeIp, b.addresses.nodeIp);
    assert.notEqual(a.addresses.podCidr, b.addresses.podCidr);
    assert.notEqual(a.netns, b.netns);
    const [coreA, coreB] = clusters.map((c) => c.kubeConfig().makeApiClient(CoreV1Api)) as [CoreV1Api, CoreV1Api];
    await Promise.all([a.importBusybox(), b.importBusybox(), lockedDownNamespace(coreA), lockedDownNamespace(coreB)]);

    await coreA.createNamespacedPod({ namespace: ns, body: pod('web', [restricted('main', 'exec httpd -f -p 8080 -h /')])});
    const web = await waitPhase(coreA, 'web', ['Running']);
    const url = `http://${web.status!.podIP!}:8080/`;
    // The same request from a pod of each cluster: A's own pod reaches it (httpd answers, 404 or a listing);
    // B's node has no route to A's pod network at all.
    const probe = `timeout 5 wget -q -O /dev/null ${url} 2>&1 | sed 's/^/wget: /'; echo done`;
    await Promise.all([
      coreA.createNamespacedPod({ namespace: ns, body: pod('probe', [restricted('main', probe)]) }),
      coreB.createNamespacedPod({ namespace: ns, body: pod('probe', [restricted('main', probe)]) }),
    ]);
    await Promise.all([waitPhase(coreA, 'probe', ['Succeeded', 'Failed']), waitPhase(coreB, 'probe', ['Succeeded', 'Failed'])]);
    const [logA, logB] = await Promise.all(clusters.map((c) => c.kubectlAsync(['logs', '-n', ns, 'probe'])));
    assert.doesNotMatch(logA!, /unreachable|timed out|refused/i, logA);
    assert.match(logB!, /Network is unreachable/, logB);
  });

  test('a cluster stopped before its real node takes the node along', async () => {
    const [, b] = nodes as [RealNode, RealNode];
    const ids = new Set([netnsId(netnsPath(b.netns))!]);
    assert.ok(processesIn(ids).length > 0);
    await clusters[1]!.stop();
    assert.deepEqual(processesIn(ids).filter((pid) => (readStat(pid)?.state ?? 'Z') !== 'Z'), []);
    assert.deepEqual(mountsUnder(b.dir), []);
    assert.equal(existsSync(netnsPath(b.netns)), false);
    await b.stop(); // finds nothing left, and throws nothing
    assert.equal(existsSync(netnsPath(nodes[0]!.netns)), true, "the other cluster's node is untouched");
  });
});
