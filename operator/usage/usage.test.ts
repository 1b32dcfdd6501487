import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Experiment } from '../api/v1alpha1/experiment.ts';
import type { ResourceClass } from '../api/v1alpha1/resourceclass.ts';
import { computeUsage, hours, spanDays, totalsByDayAndClass, usageSpans } from './usage.ts';
import { csvField, usageCsv } from './csv.ts';

const t = (s: string) => Date.parse(s);
const cls: ResourceClass = { metadata: { name: 'a100' }, spec: { trainingCluster: 'c', nodes: 2, worker: { gpus: 4 }, creditsPerNodeHour: 3 } };

function exp(name: string, status: Experiment['status'], ns = 'team'): Experiment {
  return {
    metadata: { name, namespace: ns, creationTimestamp: new Date('2026-03-01T00:00:00Z') },
    spec: { resourceClass: 'a100', manifest: {} as Experiment['spec']['manifest'] },
    status,
  };
}

const window = { fromMs: t('2026-03-01T00:00:00Z'), toMs: t('2026-04-01T00:00:00Z') };
const q = (nowIso: string, namespace?: string) => ({ window, nowMs: t(nowIso), classOf: () => cls, ...(namespace ? { namespace } : {}) });

describe('usage spans', () => {
  test('a finished run: status.usage over startedAt..finishedAt', () => {
    const e = exp('done', {
      phase: 'Succeeded',
      startedAt: '2026-03-10T22:00:00Z',
      finishedAt: '2026-03-11T02:00:00Z',
      usage: { nodeSeconds: 4 * 3600 * 2, gpuSeconds: 4 * 3600 * 8, credits: 24 },
    });
    assert.deepEqual(usageSpans(e, cls, t('2026-03-20T00:00:00Z')), [
      { startMs: t('2026-03-10T22:00:00Z'), endMs: t('2026-03-11T02:00:00Z'), nodeSeconds: 28800, gpuSeconds: 115200, credits: 24, live: false },
    ]);
  });

  test('a running attempt adds a live span: workers × time since attemptStartedAt, at the class rates', () => {
    const e = exp('run', { phase: 'Running', attemptStartedAt: '2026-03-05T10:00:00Z', workers: { desired: 2, scheduled: 2, running: 2 } });
    const [live] = usageSpans(e, cls, t('2026-03-05T11:30:00Z'));
    assert.deepEqual(live, { startMs: t('2026-03-05T10:00:00Z'), endMs: t('2026-03-05T11:30:00Z'), nodeSeconds: 10800, gpuSeconds: 43200, credits: 9, live: true });
  });

  test('recorded days place usage exactly; what they do not cover is spread before the first listed day', () => {
    const e = exp('days', {
      phase: 'Succeeded',
      startedAt: '2026-03-08T00:00:00Z',
      finishedAt: '2026-03-11T02:00:00Z',
      usage: {
        nodeSeconds: 7200 + 3600 + 1800,
        gpuSeconds: 4 * (7200 + 3600 + 1800),
        credits: 10.5,
        days: [
          { date: '2026-03-10', nodeSeconds: 3600, gpuSeconds: 14400, credits: 3 },
          { date: '2026-03-11', nodeSeconds: 1800, gpuSeconds: 7200, credits: 1.5 },
        ],
      },
    });
    assert.deepEqual(usageSpans(e, cls, t('2026-03-20T00:00:00Z')), [
      { startMs: t('2026-03-10T00:00:00Z'), endMs: t('2026-03-11T00:00:00Z'), nodeSeconds: 3600, gpuSeconds: 14400, credits: 3, live: false },
      // The last day ends where the run did.
      { startMs: t('2026-03-11T00:00:00Z'), endMs: t('2026-03-11T02:00:00Z'), nodeSeconds: 1800, gpuSeconds: 7200, credits: 1.5, live: false },
      // 7,200 node-seconds recorded before days were: spread over the 8th and 9th.
      { startMs: t('2026-03-08T00:00:00Z'), endMs: t('2026-03-10T00:00:00Z'), nodeSeconds: 7200, gpuSeconds: 28800, credits: 6, live: false },
    ]);
    const daily = computeUsage([e], q('2026-03-20T00:00:00Z')).daily.map((d) => [d.date, d.nodeSeconds]);
    assert.deepEqual(daily.sort(), [
      ['2026-03-08', 3600],
      ['2026-03-09', 3600],
      ['2026-03-10', 3600],
      ['2026-03-11', 1800],
    ]);
  });

  test('days that cover the totals leave nothing to spread, whatever the rounding of credits', () => {
    const e = exp('exact', {
      phase: 'Succeeded',
      startedAt: '2026-03-10T22:00:00Z',
      finishedAt: '2026-03-11T02:00:00Z',
      usage: {
        nodeSeconds: 3000,
        gpuSeconds: 12000,
        credits: 2.5,
        days: [
          { date: '2026-03-10', nodeSeconds: 1000, gpuSeconds: 4000, credits: 0.833333 },
          { date: '2026-03-11', nodeSeconds: 2000, gpuSeconds: 8000, credits: 1.666666 },
        ],
      },
    });
    assert.equal(usageSpans(e, cls, t('2026-03-20T00:00:00Z')).length, 2);
  });

  test('nothing used, nothing listed', () => {
    assert.deepEqual(usageSpans(exp('draft', { phase: 'Draft' }), cls, t('2026-03-05T00:00:00Z')), []);
    assert.deepEqual(usageSpans(exp('zero', { phase: 'Failed', usage: { nodeSeconds: 0, gpuSeconds: 0, credits: 0 } }), cls, t('2026-03-05T00:00:00Z')), []);
  });
});

describe('day split', () => {
  test('cut at UTC midnight, proportional, clipped to the window', () => {
    const span = { startMs: t('2026-03-10T18:00:00Z'), endMs: t('2026-03-12T06:00:00Z') };
    assert.deepEqual(spanDays(span, window), [
      ['2026-03-10', 6 / 36],
      ['2026-03-11', 24 / 36],
      ['2026-03-12', 6 / 36],
    ]);
    assert.deepEqual(spanDays(span, { fromMs: t('2026-03-11T00:00:00Z'), toMs: t('2026-03-11T12:00:00Z') }), [['2026-03-11', 12 / 36]]);
    assert.deepEqual(spanDays({ startMs: t('2026-03-10T18:00:00Z'), endMs: t('2026-03-10T18:00:00Z') }, window), [['2026-03-10', 1]]);
    assert.deepEqual(spanDays(span, { fromMs: t('2026-05-01T00:00:00Z'), toMs: t('2026-05-02T00:00:00Z') }), []);
  });
});

describe('usage report', () => {
  const experiments = [
    exp('done', { phase: 'Succeeded', startedAt: '2026-03-10T22:00:00Z', finishedAt: '2026-03-11T02:00:00Z', usage: { nodeSeconds: 28800, gpuSeconds: 115200, credits: 24 } }),
    exp('run', { phase: 'Running', attemptStartedAt: '2026-03-11T01:00:00Z', workers: { desired: 2, scheduled: 2, running: 2 } }),
    exp('other', { phase: 'Stopped', startedAt: '2026-03-11T00:00:00Z', finishedAt: '2026-03-11T01:00:00Z', usage: { nodeSeconds: 3600, gpuSeconds: 0, credits: 0 } }, 'elsewhere'),
  ];

  test('per experiment, per day and class, and totals agree', () => {
    const r = computeUsage(experiments, q('2026-03-11T03:00:00Z'));
    assert.deepEqual(
      r.experiments.map((e) => [e.namespace, e.name, hours(e.nodeSeconds), hours(e.liveNodeSeconds), e.credits]),
      [
        ['elsewhere', 'other', 1, 0, 0],
        ['team', 'done', 8, 0, 24],
        ['team', 'run', 4, 4, 12],
      ],
    );
    assert.equal(hours(r.totals.nodeSeconds), 13);
    const byDay = totalsByDayAndClass(r.daily).map((d) => [d.date, d.namespace, d.experiments, hours(d.nodeSeconds)]);
    assert.deepEqual(byDay, [
      ['2026-03-10', 'team', 1, 4],
      ['2026-03-11', 'elsewhere', 1, 1],
      ['2026-03-11', 'team', 2, 8],
    ]);
    const sum = r.daily.reduce((s, d) => s + d.nodeSeconds, 0);
    assert.ok(Math.abs(sum - r.totals.nodeSeconds) < 1e-6);
  });

  test('namespace filter and window', () => {
    const r = computeUsage(experiments, { ...q('2026-03-11T03:00:00Z', 'elsewhere') });
    assert.deepEqual(r.experiments.map((e) => e.name), ['other']);
    const day = computeUsage(experiments, { ...q('2026-03-11T03:00:00Z'), window: { fromMs: t('2026-03-10T00:00:00Z'), toMs: t('2026-03-11T00:00:00Z') } });
    assert.deepEqual(day.experiments.map((e) => [e.name, hours(e.nodeSeconds)]), [['done', 4]]);
  });

  test('CSV: header, one row per day and experiment, CRLF', () => {
    const r = computeUsage(experiments, q('2026-03-11T03:00:00Z', 'team'));
    const lines = usageCsv(r.daily).split('\r\n');
    assert.equal(lines[0], 'date,namespace,class,experiment,node_hours,gpu_hours,credits,includes_running_attempt');
    assert.deepEqual(lines.slice(1), ['2026-03-10,team,a100,done,4,16,12,false', '2026-03-11,team,a100,done,4,16,12,false', '2026-03-11,team,a100,run,4,16,12,true', '']);
  });
});

test('CSV fields are escaped', () => {
  const cases: [string | number | boolean, string][] = [
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    [' padded', '" padded"'],
    ['=SUM(A1)', "'=SUM(A1)"],
    ['-1+1', "'-1+1"],
    [1.5, '1.5'],
    [-2, '-2'],
    [Number.NaN, ''],
    [true, 'true'],
  ];
  for (const [v, want] of cases) assert.equal(csvField(v), want, String(v));
});
