import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
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
  /** The body of the answer; none by default, as a platform that names no bundle version answers. */
  reply: string | undefined;
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
        res.writeHead(this.answer, this.reply === undefined ? {} : { 'content-type': 'application/json' }).end(this.reply);
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

/** Resolves once pred holds, polling; rejects with what after 10 s. */
function until(pred: () => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 10_000);
    const check = () => {
      if (pred()) {
        clearTimeout(deadline);
        resolve();
      } else setTimeout(check, 10);
    };
    check();
  });
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

  test('takes the current bundle version from accepted replies; keeps the last one through unusable replies and logs each kind once', async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    let changes = 0;
    const link = new PlatformLink({
      readToken: async () => 'cluster-token',
      summary: () => ({}),
      onHealthChange: () => changes++,
      logger: createLogger({ stream }),
      timeoutMs: 2000,
      initialBackoffMs: 20,
      maxBackoffMs: 50,
    });
    const beats = (n: number) => {
      const target = receiver.received.length + n;
      return until(() => receiver.received.length >= target, `${n} more heartbeats`);
    };
    const warnings = () => lines.filter((l) => l.msg === 'platform heartbeat reply has no usable currentBundleVersion; keeping the last known one');
    try {
      receiver.answer = 200;
      receiver.reply = JSON.stringify({ currentBundleVersion: '1.0.0' });
      // Heartbeats every 50 ms: below what the CRD allows, so several replies arrive within one loop.
      link.sync(cluster(receiver.url, 0.05));
      await until(() => link.currentBundle('onprem')?.version === '1.0.0', 'version 1.0.0');
      assert.deepEqual(link.currentBundle('onprem'), { version: '1.0.0' });

      receiver.reply = JSON.stringify({ currentBundleVersion: '1.1.0', other: 'ignored' });
      const beforeMove = changes;
      await until(() => link.currentBundle('onprem')?.version === '1.1.0', 'version 1.1.0');
      assert.ok(changes > beforeMove, 'a new version wakes the reconciler');

      receiver.reply = '<html>maintenance</html>';
      await until(() => link.currentBundle('onprem')?.problem !== undefined, 'the malformed reply to be seen');
      assert.deepEqual(link.currentBundle('onprem'), { version: '1.1.0', problem: 'is not JSON' });
      const settled = changes;
      await beats(4);
      assert.equal(changes, settled, 'the same bad reply again changes nothing, so nothing is rewritten');
      assert.equal(warnings().length, 1, 'logged once');
      assert.equal(warnings()[0]!.kept, '1.1.0');
      assert.equal(link.health('onprem')?.reason, 'HeartbeatAccepted', 'the platform did accept the heartbeat');

      receiver.reply = JSON.stringify({ currentBundleVersion: 'latest' });
      await until(() => /not a semantic version/.test(link.currentBundle('onprem')?.problem ?? ''), 'the non-semver reply');
      receiver.reply = JSON.stringify({ other: true });
      await until(() => link.currentBundle('onprem')?.problem === 'has no currentBundleVersion', 'the reply without the field');
      await beats(3);
      assert.equal(link.currentBundle('onprem')?.version, '1.1.0');
      assert.equal(warnings().length, 3, 'one line per kind of problem');

      // A failing platform keeps the version too.
      receiver.answer = 503;
      await until(() => link.health('onprem')?.reason === 'PlatformError', 'PlatformError');
      assert.equal(link.currentBundle('onprem')?.version, '1.1.0');

      receiver.answer = 200;
      receiver.reply = JSON.stringify({ currentBundleVersion: '1.2.0' });
      await until(() => link.currentBundle('onprem')?.version === '1.2.0', 'version 1.2.0');
      assert.deepEqual(link.currentBundle('onprem'), { version: '1.2.0' }, 'a good reply clears the problem');
      assert.ok(lines.some((l) => l.msg === 'platform reports the current setup bundle' && l.version === '1.2.0' && l.previous === '1.1.0'));
    } finally {
      await link.stop();
      receiver.answer = 200;
      receiver.reply = undefined;
    }
  });

  test('sends status.credits.spent and takes the credit balance from accepted replies, with the spent it answered', async () => {
    let changes = 0;
    let spent: number | undefined = 12.5;
    const link = new PlatformLink({
      readToken: async () => 'cluster-token',
      summary: () => ({}),
      onHealthChange: () => changes++,
      creditsSpent: () => spent,
      logger: createLogger({ silent: true }),
      timeoutMs: 2000,
      initialBackoffMs: 20,
      maxBackoffMs: 50,
    });
    try {
      receiver.answer = 200;
      receiver.reply = JSON.stringify({ currentBundleVersion: '1.0.0', credits: { balance: 80 } });
      link.sync(cluster(receiver.url, 0.05));
      await until(() => link.credits('onprem')?.balance === 80, 'balance 80');
      assert.deepEqual(receiver.received.at(-1)?.body.credits, { spent: 12.5 }, 'the heartbeat reports what was spent');
      assert.equal(link.credits('onprem')?.spentAtReport, 12.5);
      const seen = changes;
      const receivedAt = link.credits('onprem')?.receivedAt;
      const target = receiver.received.length + 3;
      await until(() => receiver.received.length >= target, 'three more heartbeats');
      assert.equal(changes, seen, 'the same answer to the same report wakes nothing');
      assert.equal(link.credits('onprem')?.receivedAt, receivedAt);

      // A reply without a balance, or with one that is not a number, keeps the last.
      receiver.reply = JSON.stringify({ currentBundleVersion: '1.0.0', credits: { balance: 'lots' } });
      const more = receiver.received.length + 3;
      await until(() => receiver.received.length >= more, 'three more heartbeats');
      assert.equal(link.credits('onprem')?.balance, 80);

      spent = 20;
      receiver.reply = JSON.stringify({ currentBundleVersion: '1.0.0', credits: { balance: 0 } });
      await until(() => link.credits('onprem')?.balance === 0, 'balance 0');
      assert.equal(link.credits('onprem')?.spentAtReport, 20);
    } finally {
      await link.stop();
      receiver.reply = undefined;
    }
  });
});
