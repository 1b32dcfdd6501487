// Container log files and the /containerLogs endpoint that `kubectl logs` reaches through the API server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import { ContainerLogWriter, logTail, readLog } from './log-file.ts';
import { KubeletServer } from './kubelet-server.ts';

function fetchText(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('container logs', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'arena-logs-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('lines are stored in the CRI format, split chunks joined, streams kept apart', async () => {
    const path = join(dir, 'a.log');
    const w = new ContainerLogWriter(path);
    w.write('stdout', 'hel');
    w.write('stderr', 'oops\n');
    w.write('stdout', 'lo\nworld');
    await w.close();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    assert.deepEqual(
      lines.map((l) => l.replace(/^\S+ /, '')),
      ['stderr F oops', 'stdout F hello', 'stdout F world'],
    );
    assert.match(lines[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z /);
  });

  test('queries: stream, tailLines, timestamps, sinceTime', async () => {
    const path = join(dir, 'b.log');
    const w = new ContainerLogWriter(path);
    for (let i = 1; i <= 5; i++) w.write(i % 2 ? 'stdout' : 'stderr', `line ${i}\n`);
    await w.close();
    assert.equal((await readLog(path, {})).text, 'line 1\nline 2\nline 3\nline 4\nline 5\n');
    assert.equal((await readLog(path, { tailLines: 2 })).text, 'line 4\nline 5\n');
    assert.equal((await readLog(path, { stream: 'Stderr' })).text, 'line 2\nline 4\n');
    assert.match((await readLog(path, { timestamps: true, tailLines: 1 })).text, /^\S+Z line 5\n$/);
    assert.equal((await readLog(path, { sinceTime: new Date(Date.now() + 60_000) })).text, '');
  });

  test('the tail for a termination message: last lines, at most so many bytes', async () => {
    const path = join(dir, 'd.log');
    const w = new ContainerLogWriter(path);
    for (let i = 1; i <= 100; i++) w.write('stderr', `error line ${i}\n`);
    await w.close();
    assert.equal(logTail(path, 2), 'error line 99\nerror line 100\n');
    assert.equal(logTail(path, 80, 10), ' line 100\n');
    assert.equal(logTail(join(dir, 'missing.log')), '');
  });

  test('a line longer than the record limit comes back whole', async () => {
    const path = join(dir, 'c.log');
    const w = new ContainerLogWriter(path);
    const long = 'x'.repeat(40_000);
    w.write('stdout', `${long}\n`);
    await w.close();
    assert.ok(readFileSync(path, 'utf8').includes(' stdout P '));
    assert.equal((await readLog(path, {})).text, `${long}\n`);
  });
});

describe('kubelet log endpoint', () => {
  let dir: string;
  let server: KubeletServer;
  let writer: ContainerLogWriter;
  let running = true;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'arena-kubelet-'));
    writer = new ContainerLogWriter(join(dir, '0.log'));
    writer.write('stdout', 'first\n');
    server = await KubeletServer.start({
      nodeName: 'n1',
      lookup: (ns, pod, container) =>
        ns === 'ns' && pod === 'p' && container === 'c'
          ? { path: join(dir, '0.log'), running: () => running }
          : { status: 400, message: `container "${container}" in pod "${pod}" is waiting to start: ContainerCreating` },
    });
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('serves a log, with tailLines and limitBytes', async () => {
    await new Promise((r) => setTimeout(r, 50)); // the write stream flushes asynchronously
    assert.deepEqual(await fetchText(server.port, '/containerLogs/ns/p/c'), { status: 200, body: 'first\n' });
    assert.equal((await fetchText(server.port, '/containerLogs/ns/p/c?limitBytes=3')).body, 'fir');
  });

  test('answers 400 with the reason for a container without a log', async () => {
    const res = await fetchText(server.port, '/containerLogs/ns/p/other');
    assert.equal(res.status, 400);
    assert.match(res.body, /is waiting to start: ContainerCreating/);
  });

  test('follow streams new lines until the container has exited', async () => {
    const pending = fetchText(server.port, '/containerLogs/ns/p/c?follow=true');
    await new Promise((r) => setTimeout(r, 300));
    writer.write('stdout', 'second\n');
    await new Promise((r) => setTimeout(r, 300));
    await writer.close();
    running = false;
    assert.deepEqual(await pending, { status: 200, body: 'first\nsecond\n' });
  });
});
