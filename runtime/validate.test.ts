import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { platformValidator } from '../operator/api/platform/verdict.ts';
import { formatRefusals, setting, validateForLaunch } from './validate.ts';

after(() => platformValidator().close());

const cartpole = { algorithm: { name: 'DQN', batch_size: 64 }, environment: { name: 'CartPole-v1', num_envs: 4 }, training: { max_steps: 2000, pop_size: 2 } };

test('a manifest the platform accepts launches, with the platform resolved payload', async () => {
  const r = await validateForLaunch(cartpole);
  assert.ok(r.ok, r.ok ? '' : formatRefusals(r.refusals));
  assert.equal(setting(r.payload, 'apiVersion'), 'agilerl.com/v1');
  assert.equal(setting(r.payload, 'environment.env_type'), 'gym', 'the platform fills in what the algorithm implies');
});

const REFUSED: { name: string; manifest: unknown; field: string; message: RegExp }[] = [
  { name: 'a field the platform does not know', manifest: { ...cartpole, network: { hidden_size: [64] } }, field: 'network.hidden_size', message: /Extra inputs/ },
  { name: 'a bound the platform sets', manifest: { ...cartpole, training: { pop_size: 0 } }, field: 'training.pop_size', message: /greater than/ },
  { name: 'an unregistered algorithm', manifest: { ...cartpole, algorithm: { name: 'PPO2' } }, field: 'algorithm', message: /not a registered algorithm/ },
  { name: 'another contract version', manifest: { ...cartpole, apiVersion: 'agilerl.com/v2' }, field: 'apiVersion', message: /Unsupported manifest apiVersion/ },
  { name: 'not a mapping', manifest: ['DQN'], field: '', message: /valid dictionary/ },
];

for (const c of REFUSED) {
  test(`refused: ${c.name}`, async () => {
    const r = await validateForLaunch(c.manifest);
    assert.equal(r.ok, false);
    if (r.ok) return;
    const refusal = r.refusals.find((x) => x.field === c.field);
    assert.ok(refusal, `a refusal naming ${c.field || 'the manifest'}: ${formatRefusals(r.refusals)}`);
    assert.match(refusal.message, c.message);
    assert.match(refusal.fix, /kubectl arena manifest validate/);
  });
}

test('setting reads dotted paths and stops at non-objects', () => {
  assert.equal(setting({ a: { b: { c: 3 } } }, 'a.b.c'), 3);
  assert.equal(setting({ a: 1 }, 'a.b'), undefined);
  assert.equal(setting(null, 'a'), undefined);
});

test('many refusals are cut to what a status message holds', () => {
  const many = Array.from({ length: 300 }, (_, i) => ({ field: `training.k${i}`, message: 'Extra inputs are not permitted', fix: '' }));
  const text = formatRefusals(many);
  assert.ok(text.length < 2200, `${text.length}`);
  assert.match(text, /^training\.k0: Extra inputs are not permitted; /);
  assert.match(text, /; and \d+ more$/);
  assert.equal(formatRefusals(many.slice(0, 1)), 'training.k0: Extra inputs are not permitted');
});
