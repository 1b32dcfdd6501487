import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TrainingCluster } from '../api/v1alpha1/trainingcluster.ts';
import { createLogger } from '../observability/log.ts';
import { HEARTBEAT_PATH, PlatformLink, type HeartbeatResult, type SecretKeyRef } from './heartbeat.ts';

interface Received {
  path: string;
  authorization?: string;
  body: Record<string, unknown>;
}

/** A stand-in for the platform on 127.0.0.1: records heartbeats and answers with the status the test sets. */
class Receiver {
  readonly received: Received[] = [];
  answer: number | 'hang' = 200;
  private server!: Server;
  url = '';
  private waiters: (() => void)[] = [];

  async start(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        this.received.push({ path: req.url ?? '', authorization: req.headers.authorization, body: JSON.parse(data) as Record<string, unknown> });
        for (const w of this.waiters.splice(0)) w();
        if (this.answer === 'hang') return;
        res.writeHead(this.answer).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function cluster(url: string, interval = 5): TrainingCluster {
  return {
    metadata: { name: 'onprem' },
    spec: {
      setupBundle: { version: '1.0.0', images: { runtime: 'r:1' } },
      checkpointStorage: { hostPath: { path: '/c' } },
      platform: { url: `${url}/`, tokenSecretRef: { name: 'platform-token', namespace: 'arena-system' }, heartbeatIntervalSeconds: interval },
    },
  };
}

/** Resolves once the link reports a health with this reason. */
function healthReason(changes: string[], reason: string, link: PlatformLink): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`no ${reason}; saw ${changes.join(', ')}`)), 10_000);
    const check = () => {
      if (link.health('onprem')?.reason === reason) {
        clearTimeout(deadline);
        resolve();
      } else setTimeout(check, 10);
    };
    check();
  });
}

describe('platform heartbeat', () => {
  const receiver = new Receiver();
  before(() => receiver.start());
  after(() => receiver.stop());

  test('posts the summary with the cluster token, reports health, backs off on failure and recovers', async () => {
    let token: string | undefined = 'cluster-token';
    const refs: SecretKeyRef[] = [];
    const changes: string[] = [];
    const results: HeartbeatResult[] = [];
    const link = new PlatformLink({
      readToken: async (ref) => (refs.push(ref), token),
      summary: () => ({ kind: 'ClusterStatus', marker: 42 }),
      onHealthChange: (name) => changes.push(name),
      onResult: (r) => results.push(r),
      logger: createLogger({ silent: true }),
      initialBackoffMs: 50,
      maxBackoffMs: 200,
      // Long enough for a loaded test machine; the hung-platform step waits it out once.
      timeoutMs: 2000,
    });
    try {
      const first = receiver.next();
      link.sync(cluster(receiver.url));
      await first;
      const got = receiver.received.at(-1)!;
      assert.equal(got.path, HEARTBEAT_PATH);
      assert.equal(got.authorization, 'Bearer cluster-token');
      assert.deepEqual(got.body.status, { kind: 'ClusterStatus', marker: 42 });
      assert.equal(got.body.trainingCluster, 'onprem');
      assert.deepEqual(refs[0], { namespace: 'arena-system', name: 'platform-token', key: 'token' });
      await healthReason(changes, 'HeartbeatAccepted', link);
      assert.ok(changes.length >= 1 && changes.every((n) => n === 'onprem'), 'health changes wake the cluster\'s reconcile');

      // Re-syncing the same spec does not restart the loop (no extra heartbeat right away).
      const count = receiver.received.length;
      link.sync(cluster(receiver.url));
      assert.equal(receiver.received.length, count);

      // A new interval is a new configuration: the loop restarts and beats at once; the platform now refuses.
      receiver.answer = 401;
      link.sync(cluster(receiver.url, 6));
      await healthReason(changes, 'PlatformRejectedToken', link);
      receiver.answer = 503;
      await healthReason(changes, 'PlatformError', link);
      // A hung platform times out per request and does not stall the loop.
      receiver.answer = 'hang';
      await healthReason(changes, 'PlatformUnreachable', link);
      token = undefined;
      await healthReason(changes, 'TokenUnavailable', link);
      token = 'cluster-token';
      receiver.answer = 200;
      await healthReason(changes, 'HeartbeatAccepted', link);
      assert.ok(results.includes('rejected') && results.includes('error') && results.includes('unreachable') && results.includes('no_token'));

      // spec.platform removed: the loop ends and its health is gone.
      const { platform: _, ...spec } = cluster(receiver.url).spec;
      link.sync({ metadata: { name: 'onprem' }, spec });
      assert.equal(link.health('onprem'), undefined);
      const after = receiver.received.length;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(receiver.received.length, after, 'no heartbeat after the platform was unset');
    } finally {
      await link.stop();
    }
  });
});
