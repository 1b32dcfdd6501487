import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClassTeams, UNASSIGNED, borrowedGpus, namespaceOf, quotaRefusal, teamUsage } from './teams.ts';
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
