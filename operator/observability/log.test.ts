import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createLogger, forObject, type LoggerOptions } from './log.ts';

function capture(opts: LoggerOptions = {}) {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString()));
  const logger = createLogger({ ...opts, stream });
  // Lines pass through winston's streams; one macrotask lets any deferred write land.
  const lines = async () => {
    await new Promise((resolve) => setImmediate(resolve));
    return chunks
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  return { logger, lines };
}

test('each line is one JSON object with timestamp, level, msg and component', async () => {
  const { logger, lines } = capture({ component: 'experiment-controller' });
  logger.info('Reconciled', { phase: 'Running' });
  const [line, ...rest] = await lines();
  assert.equal(rest.length, 0);
  assert.deepEqual(Object.keys(line!), ['timestamp', 'level', 'msg', 'component', 'phase']);
  assert.equal(line!.level, 'info');
  assert.equal(line!.msg, 'Reconciled');
  assert.equal(line!.component, 'experiment-controller');
  assert.ok(!Number.isNaN(Date.parse(String(line!.timestamp))));
});

test('forObject carries the namespace and name on every line', async () => {
  const { logger, lines } = capture();
  const log = forObject(logger, { namespace: 'team-a', name: 'run-1', kind: 'Experiment' });
  log.warn('Pending', { why: 'no GPUs' });
  forObject(logger, { name: 'a100-pool' }).info('cluster-scoped');
  const [first, second] = await lines();
  assert.equal(first!.namespace, 'team-a');
  assert.equal(first!.name, 'run-1');
  assert.equal(first!.kind, 'Experiment');
  assert.equal(first!.why, 'no GPUs');
  assert.equal(second!.name, 'a100-pool');
  assert.ok(!('namespace' in second!), 'no namespace key for a cluster-scoped object');
});

test('the level filters lines; LOG_LEVEL is the default', async () => {
  const saved = process.env.LOG_LEVEL;
  try {
    process.env.LOG_LEVEL = 'warn';
    const { logger, lines } = capture();
    logger.info('hidden');
    logger.error('shown');
    assert.deepEqual(
      (await lines()).map((l) => l.msg),
      ['shown'],
    );
    const debug = capture({ level: 'debug' });
    debug.logger.debug('visible');
    assert.equal((await debug.lines()).length, 1);
  } finally {
    if (saved === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = saved;
  }
  assert.throws(() => createLogger({ level: 'loud' }), /log level "loud"/);
});

test('errors in fields keep their message; silent writes nothing', async () => {
  const { logger, lines } = capture();
  logger.error('Reconciler error', { error: Object.assign(new Error('boom'), { code: 'ECONNRESET' }) });
  assert.deepEqual((await lines())[0]!.error, { message: 'boom', code: 'ECONNRESET' });

  const quiet = capture({ silent: true });
  quiet.logger.error('nothing');
  assert.equal((await quiet.lines()).length, 0);
});
