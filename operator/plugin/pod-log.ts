// Follows a pod's log through the API server's log endpoint until the container ends or the signal aborts.
// client-node's Log pipes the response into the caller's stream without an error listener, so an abort surfaces as
// an uncaught exception; here the response is read with node:https (TLS and credentials from the kubeconfig) and an
// abort is an ordinary end.
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';

export interface FollowOptions {
  tailLines?: number;
  previous?: boolean;
  signal?: AbortSignal;
}

export async function followPodLog(kc: KubeConfig, ns: string, pod: string, container: string, onText: (text: string) => void, opts: FollowOptions = {}): Promise<void> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in the kubeconfig');
  const url = new URL(`${cluster.server.replace(/\/+$/, '')}/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(pod)}/log`);
  url.searchParams.set('container', container);
  url.searchParams.set('follow', 'true');
  if (opts.tailLines !== undefined) url.searchParams.set('tailLines', String(opts.tailLines));
  if (opts.previous) url.searchParams.set('previous', 'true');
  const options: RequestOptions = { method: 'GET', headers: {} };
  await kc.applyToHTTPSOptions(options);
  if (opts.signal?.aborted) return;
  await new Promise<void>((resolve, reject) => {
    const req = (url.protocol === 'http:' ? httpRequest : httpsRequest)(url, { ...options, signal: opts.signal }, (res) => {
      res.setEncoding('utf8');
      if (res.statusCode !== 200) {
        let body = '';
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          let message = body;
          try {
            message = (JSON.parse(body) as { message?: string }).message ?? body;
          } catch {
            // not a Status
          }
          reject(new Error(`the log of ${ns}/${pod}: HTTP ${res.statusCode}: ${message.slice(0, 300)}`));
        });
        return;
      }
      res.on('data', (c: string) => onText(c));
      res.on('end', () => resolve());
      res.on('error', (err) => (opts.signal?.aborted ? resolve() : reject(err)));
    });
    req.on('error', (err) => (opts.signal?.aborted ? resolve() : reject(err)));
    req.end();
  });
}
