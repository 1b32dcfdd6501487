// `helm test`: the operator's CRDs are Established, its Service selects at least one ready pod, and every ready pod
// answers /readyz on the Service's target port.
// usage: node helm-test.mjs   (env: NAMESPACE, SERVICE, PORT (fallback container port), CRDS = comma-separated CRD names)
//
// Each pod is called directly, so the check needs neither cluster DNS nor a Service proxy, and one bad replica is
// not hidden behind a good one as it would be through the Service. Plain Node.js, no dependencies: it runs in the
// operator image.
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';

const SA = '/var/run/secrets/kubernetes.io/serviceaccount';
const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

function get(url, opts = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      u,
      { method: 'GET', timeout: 5000, headers: { accept: 'application/json', ...opts.headers }, ca: opts.ca },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function api(path) {
  const host = env('KUBERNETES_SERVICE_HOST');
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  const r = await get(`https://${host.includes(':') ? `[${host}]` : host}:${port}${path}`, {
    ca: readFileSync(`${SA}/ca.crt`),
    headers: { authorization: `Bearer ${readFileSync(`${SA}/token`, 'utf8').trim()}` },
  });
  if (r.status !== 200) throw new Error(`GET ${path}: HTTP ${r.status}: ${r.text.slice(0, 300)}`);
  return JSON.parse(r.text);
}

async function main() {
  const problems = [];
  for (const name of env('CRDS').split(',').filter(Boolean)) {
    const crd = await api(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
    const ok = (crd.status?.conditions ?? []).some((c) => c.type === 'Established' && c.status === 'True');
    console.log(`CRD ${name}: ${ok ? 'Established' : 'NOT Established'}`);
    if (!ok) problems.push(`CRD ${name} is not Established`);
  }

  // The pods the Service selects, found with its own selector: what its endpoints would be. (EndpointSlices are not
  // read: the check then also works where they are not kept, and it sees a replica that runs but is not ready.)
  const ns = env('NAMESPACE');
  const service = env('SERVICE');
  const svc = await api(`/api/v1/namespaces/${ns}/services/${service}`);
  const selector = Object.entries(svc.spec?.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
  if (!selector) throw new Error(`Service ${ns}/${service} has no selector`);
  const portName = svc.spec.ports?.[0]?.targetPort;
  const pods = (await api(`/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(selector)}`)).items;
  const isReady = (p) => (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  const ready = pods.filter((p) => isReady(p) && p.status?.podIP && !p.metadata.deletionTimestamp);
  console.log(`Service ${ns}/${service}: ${ready.length} ready pod(s) of ${pods.length}`);
  if (ready.length === 0) problems.push(`Service ${ns}/${service} selects no ready pod: the operator is not ready`);
  for (const p of ready) {
    // The Service's targetPort by name, as the pod declares it; a number is used as it is.
    const port =
      typeof portName === 'number'
        ? portName
        : (p.spec.containers.flatMap((c) => c.ports ?? []).find((cp) => cp.name === portName)?.containerPort ?? Number(env('PORT')));
    const ip = p.status.podIP;
    try {
      const r = await get(`http://${ip.includes(':') ? `[${ip}]` : ip}:${port}/readyz`);
      console.log(`${p.metadata.name} /readyz: HTTP ${r.status} ${r.text.trim().slice(0, 120)}`);
      if (r.status !== 200) problems.push(`${p.metadata.name} answered /readyz with HTTP ${r.status}`);
    } catch (err) {
      problems.push(`${p.metadata.name} did not answer /readyz: ${err.message}`);
    }
  }

  if (problems.length) {
    console.error(`FAILED:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log('PASSED: the operator is ready and its CRDs are established');
}

main().catch((err) => {
  console.error(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
