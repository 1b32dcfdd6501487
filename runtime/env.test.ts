import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_STOP_GRACE_SECONDS, readWorkerEnv } from './env.ts';

const POD = {
  ARENA_EXPERIMENT: 'cartpole',
  ARENA_NAMESPACE: 'ml',
  ARENA_RUN: '2',
  ARENA_ATTEMPT: '3',
  ARENA_WORKER_RANK: '1',
  ARENA_MANIFEST: '/etc/arena/manifest.json',
  ARENA_CHECKPOINT_DIR: '/checkpoints/ml/cartpole',
  ARENA_REPORT_URL: 'https://arena-operator.arena-system.svc:8082/',
  ARENA_REPORT_CA_FILE: '/var/run/arena/report-ca/ca.crt',
  ARENA_RUN_TOKEN_FILE: '/var/run/arena/run-token/token',
  MASTER_ADDR: 'w0.cartpole-r2.ml.svc',
  MASTER_PORT: '29500',
  WORLD_SIZE: '2',
  RANK: '1',
  NODE_NAME: 'gpu-node-7',
};

test('reads the environment the operator gives a worker pod', () => {
  const r = readWorkerEnv(POD);
  assert.ok(r.ok, r.ok ? '' : r.errors.join('; '));
  assert.deepEqual(r.env, {
    experiment: 'cartpole',
    namespace: 'ml',
    run: 2,
    attempt: 3,
    rank: 1,
    manifestPath: '/etc/arena/manifest.json',
    checkpointDir: '/checkpoints/ml/cartpole',
    reportUrl: 'https://arena-operator.arena-system.svc:8082',
    reportCaFile: '/var/run/arena/report-ca/ca.crt',
    runToken: undefined,
    runTokenFile: '/var/run/arena/run-token/token',
    resumeFrom: undefined,
    resumeStep: undefined,
    stopGraceSeconds: DEFAULT_STOP_GRACE_SECONDS,
    progressIntervalSeconds: 5,
    flushTimeoutSeconds: 60,
    nodeName: 'gpu-node-7',
    worldSize: 2,
    masterAddr: 'w0.cartpole-r2.ml.svc',
    masterPort: 29500,
  });
});

test('a run by hand may give the token itself', () => {
  const r = readWorkerEnv({ ...POD, ARENA_RUN_TOKEN_FILE: undefined, ARENA_RUN_TOKEN: 'secret' });
  assert.ok(r.ok);
  assert.equal(r.env.runToken, 'secret');
});

test('resume and tuning variables', () => {
  const r = readWorkerEnv({ ...POD, ARENA_RESUME_FROM: '/checkpoints/ml/cartpole/run-1/step-4000.json', ARENA_RESUME_STEP: '4000', ARENA_STOP_GRACE_SECONDS: '90', ARENA_PROGRESS_INTERVAL_SECONDS: '0.5' });
  assert.ok(r.ok);
  assert.equal(r.env.resumeFrom, '/checkpoints/ml/cartpole/run-1/step-4000.json');
  assert.equal(r.env.resumeStep, 4000);
  assert.equal(r.env.stopGraceSeconds, 90);
  assert.equal(r.env.progressIntervalSeconds, 0.5);
});

test('names every missing or malformed variable', () => {
  const cases: [Record<string, string | undefined>, RegExp][] = [
    [{ ARENA_EXPERIMENT: undefined }, /ARENA_EXPERIMENT is not set/],
    [{ ARENA_RUN: 'one' }, /ARENA_RUN must be an integer >= 1/],
    [{ ARENA_ATTEMPT: '0' }, /ARENA_ATTEMPT must be an integer >= 1/],
    [{ ARENA_MANIFEST: '' }, /ARENA_MANIFEST is not set/],
    [{ ARENA_RUN_TOKEN_FILE: undefined }, /neither ARENA_RUN_TOKEN_FILE nor ARENA_RUN_TOKEN is set/],
    [{ ARENA_REPORT_URL: 'operator:8082' }, /must be an http\(s\) URL/],
    [{ ARENA_STOP_GRACE_SECONDS: '-1' }, /ARENA_STOP_GRACE_SECONDS must be a positive number/],
  ];
  for (const [change, error] of cases) {
    const env: Record<string, string | undefined> = { ...POD, ...change };
    const r = readWorkerEnv(env);
    assert.equal(r.ok, false, JSON.stringify(change));
    if (!r.ok) assert.match(r.errors.join('; '), error);
  }
  const offline = readWorkerEnv({ ...POD, ARENA_REPORT_URL: undefined, ARENA_RUN_TOKEN_FILE: undefined });
  assert.ok(offline.ok, 'no operator URL: runs without reporting');
});

test('a run token is never sent over plain http across the network; loopback (local development) is the one exception', () => {
  const refused = (env: Record<string, string | undefined>) => {
    const r = readWorkerEnv({ ...POD, ...env });
    return r.ok ? [] : r.errors;
  };
  assert.match(refused({ ARENA_REPORT_URL: 'http://arena-operator.arena-system.svc:8080', ARENA_REPORT_CA_FILE: undefined }).join(), /ARENA_REPORT_URL is plain http to arena-operator.arena-system.svc:8080: the run token would cross the network unencrypted/);
  assert.match(refused({ ARENA_REPORT_URL: 'http://arena-operator:8080' }).join(), /ARENA_REPORT_CA_FILE is set: the operator serves TLS; use its https URL/);
  assert.match(refused({ ARENA_REPORT_URL: 'ftp://op' }).join(), /ARENA_REPORT_URL must be an http\(s\) URL/);
  assert.deepEqual(refused({ ARENA_REPORT_URL: 'http://127.0.0.1:9000', ARENA_REPORT_CA_FILE: undefined }), []);
  assert.deepEqual(refused({ ARENA_REPORT_URL: 'http://[::1]:9000', ARENA_REPORT_CA_FILE: undefined }), []);
  assert.deepEqual(refused({ ARENA_REPORT_URL: 'https://op.example', ARENA_REPORT_CA_FILE: undefined }), [], 'https without a CA file verifies against the system CAs');
});
