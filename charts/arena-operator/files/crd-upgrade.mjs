// Replaces the arena.agilerl.com CRDs with the chart's copies (a Helm pre-install/pre-upgrade hook).
// usage: node crd-upgrade.mjs DIR   (DIR holds one <crd>.json per CRD)
//
// A replace (PUT with the live resourceVersion), not a server-side apply: the chart's CRD is the whole truth, so a
// field that a newer schema dropped must go too, which an apply by a second field manager would leave behind.
// Labels and annotations that others added are kept. Plain Node.js, no dependencies: it runs in the operator image.
import { readFileSync, readdirSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';

const SA = '/var/run/secrets/kubernetes.io/serviceaccount';
const BASE = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

function call(method, path, body) {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new Error('KUBERNETES_SERVICE_HOST is not set: this runs inside a pod');
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: host.includes(':') ? `[${host}]` : host,
        port,
        path,
        method,
        ca: readFileSync(join(SA, 'ca.crt')),
        headers: {
          authorization: `Bearer ${readFileSync(join(SA, 'token'), 'utf8').trim()}`,
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json, text });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

const reason = (r) => r.json?.message ?? r.text.slice(0, 500);

async function upgrade(crd) {
  const name = crd.metadata.name;
  for (let attempt = 1; attempt <= 5; attempt++) {
    const live = await call('GET', `${BASE}/${name}`);
    if (live.status === 404) {
      const created = await call('POST', BASE, crd);
      if (created.status === 201 || created.status === 200) return 'created';
      if (created.status === 409) continue;
      throw new Error(`creating ${name}: HTTP ${created.status}: ${reason(created)}`);
    }
    if (live.status !== 200) throw new Error(`reading ${name}: HTTP ${live.status}: ${reason(live)}`);
    const meta = live.json.metadata;
    const body = {
      ...crd,
      metadata: {
        ...crd.metadata,
        resourceVersion: meta.resourceVersion,
        labels: { ...meta.labels, ...crd.metadata.labels },
        annotations: { ...meta.annotations, ...crd.metadata.annotations },
      },
    };
    const replaced = await call('PUT', `${BASE}/${name}`, body);
    if (replaced.status === 200) return live.json.metadata.generation === replaced.json?.metadata?.generation ? 'unchanged' : 'updated';
    if (replaced.status === 409) continue; // changed since it was read: read it again
    throw new Error(`replacing ${name}: HTTP ${replaced.status}: ${reason(replaced)}`);
  }
  throw new Error(`replacing ${name}: it kept changing under us (5 conflicts)`);
}

async function established(name) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const r = await call('GET', `${BASE}/${name}`);
    const conds = r.json?.status?.conditions ?? [];
    if (conds.some((c) => c.type === 'Established' && c.status === 'True')) return;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`${name} did not become Established within 60s`);
}

async function main() {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: crd-upgrade.mjs DIR');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  if (files.length === 0) throw new Error(`no CRD JSON files in ${dir}`);
  for (const file of files) {
    const crd = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    const outcome = await upgrade(crd);
    await established(crd.metadata.name);
    console.log(JSON.stringify({ level: 'info', msg: `CRD ${outcome}`, crd: crd.metadata.name }));
  }
}

main().catch((err) => {
  console.error(JSON.stringify({ level: 'error', msg: 'CRD upgrade failed', error: err instanceof Error ? err.message : String(err) }));
  process.exit(1);
});
