import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClassTeams, UNASSIGNED, borrowedGpus, namespaceOf, quotaRefusal, teamOrder, teamUsage, type QueuedTeamGang } from './teams.ts';
import { req } from './testing.ts';

const teams = new ClassTeams('a100', [
  { name: 'vision', namespaces: ['cv', 'cv-dev'], gpus: 16, borrowingLimit: 8 },
  { name: 'nlp', namespaces: ['nlp'], gpus: 8, weight: 3 },
]);

test('a namespace maps to its team, and one no team lists to unassigned with no quota and no limit', () => {
  assert.equal(teams.teamOf('cv-dev'), 'vision');
  assert.equal(teams.teamOf('scratch'), UNASSIGNED);
  assert.deepEqual(teams.quota(UNASSIGNED), { name: UNASSIGNED, gpus: 0, borrowingLimit: Infinity, weight: 1 });
  assert.deepEqual([...teams.weights()], [['vision', 1], ['nlp', 3]]);
  assert.equal(namespaceOf('cv/run-1'), 'cv');
});

test('team usage counts only the class\'s gangs, by the namespace of each', () => {
  const usage = new Map([
    ['cv/a', req(8)],
    ['cv-dev/b', req(8)],
    ['cv/other-class', req(8)],
    ['scratch/c', req(4)],
  ]);
  const used = teamUsage(teams, usage, (k) => (k.endsWith('other-class') ? 'h100' : 'a100'));
  assert.equal(used.get('vision')?.gpus, 16);
  assert.equal(used.get(UNASSIGNED)?.gpus, 4);
  assert.equal(used.has('nlp'), false);
  assert.equal(borrowedGpus(teams, 'vision', used), 0);
  assert.equal(borrowedGpus(teams, UNASSIGNED, used), 4);
});

test('the ceiling is quota plus borrowing limit, and the refusal says what to change', () => {
  const rows: [string, number, number, RegExp | undefined][] = [
    ['vision', 16, 8, undefined],
    ['vision', 24, 0, undefined],
    ['vision', 24, 8, /^Team vision uses 24 GPU\(s\) of class a100 against a quota of 16 and a borrowing limit of 8; this run needs 8 more\..*raise spec\.teams\[vision\]\.gpus or \.borrowingLimit\)\.$/],
    ['nlp', 1000, 8, undefined],
    [UNASSIGNED, 1000, 8, undefined],
  ];
  for (const [team, used, gpus, want] of rows) {
    const got = quotaRefusal(teams, team, used, gpus);
    if (want === undefined) assert.equal(got, undefined, `${team} ${used}+${gpus}`);
    else assert.match(got ?? '', want);
  }
  const none = new ClassTeams('a100', [{ name: 'x', namespaces: ['x'], gpus: 0, borrowingLimit: 0 }]);
  assert.match(quotaRefusal(none, 'x', 0, 8) ?? '', /quota of 0 and a borrowing limit of 0/);
});

describe('the queue order of a class with teams', () => {
  const two = new ClassTeams('a100', [
    { name: 'a', namespaces: ['a'], gpus: 16 },
    { name: 'b', namespaces: ['b'], gpus: 16 },
  ]);
  const total = req(32, 64, 64);
  const g = (key: string, arrivalMs: number, priority = 0, gpus = 8): QueuedTeamGang => ({ key, priority, arrivalMs, request: req(gpus) });
  /** Keys in the order GangScheduler takes them: tier, priority (higher first), then orderMs. */
  const sorted = (places: Map<string, { tier: number; orderMs: number }>, gangs: QueuedTeamGang[]) =>
    [...gangs]
      .sort((x, y) => places.get(x.key)!.tier - places.get(y.key)!.tier || y.priority - x.priority || places.get(x.key)!.orderMs - places.get(y.key)!.orderMs)
      .map((x) => x.key);

  const rows: { name: string; used: [string, number][]; gangs: QueuedTeamGang[]; want: string[] }[] = [
    {
      name: 'within one priority, fair share: a team running nothing goes before another team\'s older gangs',
      used: [],
      gangs: [g('a/1', 1), g('a/2', 2), g('a/3', 3), g('b/1', 4)],
      want: ['a/1', 'b/1', 'a/2', 'a/3'],
    },
    {
      name: 'a gang that fits its team\'s quota goes before a borrower of higher priority',
      used: [['b', 16]],
      gangs: [g('b/urgent', 1, 500), g('a/1', 2, 0)],
      want: ['a/1', 'b/urgent'],
    },
    {
      name: 'a team\'s quota counts what it holds and its earlier gangs: the second borrows and goes after the other team',
      used: [['a', 8]],
      gangs: [g('a/1', 1), g('a/2', 2), g('b/1', 3)],
      want: ['b/1', 'a/1', 'a/2'],
    },
    {
      name: 'among borrowers, fair share counts the gangs that go first',
      used: [['a', 16], ['b', 8]],
      gangs: [g('a/x', 1), g('b/x', 2), g('b/y', 3)],
      want: ['b/x', 'a/x', 'b/y'],
    },
    {
      name: 'priority still orders within a tier',
      used: [],
      gangs: [g('a/low', 1, 0), g('b/high', 2, 10)],
      want: ['b/high', 'a/low'],
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const used = new Map(row.used.map(([t, n]) => [t, req(n, 0, 0)]));
      const places = teamOrder(two, used, total, row.gangs);
      assert.deepEqual(sorted(places, row.gangs), row.want);
      // The class's arrival times are handed out again, not made up.
      assert.deepEqual([...places.values()].map((p) => p.orderMs).sort(), row.gangs.map((x) => x.arrivalMs).sort());
    });
  }
});
