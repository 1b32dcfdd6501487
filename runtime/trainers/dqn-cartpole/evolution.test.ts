import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DqnAgent, type DqnHyperparameters } from './agent.ts';
import { dqnConfig, type DqnConfig } from './config.ts';
import { bestIndex, evaluate, mutateHyperparameter, mutatePopulation, mutateWeights, tournamentSelection } from './evolution.ts';
import { Rng } from './rng.ts';

const HP: DqnHyperparameters = { batch_size: 64, lr: 1e-3, learn_step: 2, gamma: 0.99, tau: 0.01 };
const SIZES = [4, 8, 2];

function population(fitness: number[], seed = 1): DqnAgent[] {
  const rng = new Rng(seed);
  return fitness.map((f, i) => {
    const a = DqnAgent.create(i, SIZES, HP, rng);
    a.fitness.push(f);
    return a;
  });
}

const config = (over: Partial<DqnConfig> = {}): DqnConfig => ({ ...dqnConfig({ algorithm: { name: 'DQN' }, environment: { name: 'CartPole-v1' } }), ...over });

test('bestIndex takes the highest latest fitness, the first on ties', () => {
  assert.equal(bestIndex(population([10, 30, 30, 5])), 1);
  const pop = population([50, 10]);
  pop[0]!.fitness.push(1);
  assert.equal(bestIndex(pop), 1, 'only the latest evaluation counts');
});

test('tournament selection with elitism keeps a copy of the best in slot 0', () => {
  const picked = new Map<number, number>();
  for (let seed = 1; seed <= 20; seed++) {
    const pop = population([10, 90, 40, 20]);
    const next = tournamentSelection(pop, { tournamentSize: 2, elitism: true }, new Rng(seed));
    assert.equal(next.length, 4);
    assert.deepEqual([...next[0]!.online.params], [...pop[1]!.online.params], 'the elite');
    assert.notEqual(next[0]!.online.params, pop[1]!.online.params, 'a copy, not the same arrays');
    for (const a of next.slice(1)) picked.set(a.fitness.at(-1)!, (picked.get(a.fitness.at(-1)!) ?? 0) + 1);
  }
  // A tournament of two picks the best of four with probability 7/16 and the worst with 1/16.
  assert.ok((picked.get(90) ?? 0) > 3 * (picked.get(10) ?? 0), `picks by fitness: ${JSON.stringify([...picked])}`);
  const all = tournamentSelection(population([1, 2, 3]), { tournamentSize: 3, elitism: false }, new Rng(3));
  assert.ok(all.every((a) => a.fitness.at(-1)! >= 1));
});

test('hyperparameter mutation stays within its range and keeps integers whole', () => {
  const rng = new Rng(9);
  const agent = population([0])[0]!;
  const ranges = {
    batch_size: { min: 32, max: 128, grow_factor: 1.2, shrink_factor: 0.8 },
    lr: { min: 1e-4, max: 5e-3, grow_factor: 1.2, shrink_factor: 0.8 },
  };
  for (let i = 0; i < 200; i++) {
    const detail = mutateHyperparameter(agent, ranges, rng);
    assert.match(detail!, /^(batch_size|lr) /);
    assert.ok(agent.hp.batch_size >= 32 && agent.hp.batch_size <= 128 && Number.isInteger(agent.hp.batch_size));
    assert.ok(agent.hp.lr >= 1e-4 && agent.hp.lr <= 5e-3);
  }
  assert.equal(mutateHyperparameter(agent, {}, rng), undefined);
});

test('weight mutation changes about a tenth of the weights and resets the target network', () => {
  const agent = population([0])[0]!;
  const before = Float32Array.from(agent.online.params);
  agent.target.params.fill(0);
  mutateWeights(agent, 0.5, new Rng(4));
  const changed = before.filter((v, i) => v !== agent.online.params[i]).length;
  assert.ok(changed > 0 && changed <= Math.ceil(before.length * 0.1), `${changed} of ${before.length}`);
  assert.deepEqual([...agent.target.params], [...agent.online.params]);
});

test('mutatePopulation spares the elite and follows the probabilities', () => {
  const onlyHp = config({ mutation: { probabilities: { no_mut: 0, arch_mut: 0, new_layer: 0, params_mut: 0, act_mut: 0, rl_hp_mut: 1 }, hpRanges: { lr: { min: 1e-5, max: 1, grow_factor: 2, shrink_factor: 0.5 } }, sd: 0.1 } });
  const pop = population([5, 4, 3]);
  const eliteWeights = [...pop[0]!.online.params];
  const outcomes = mutatePopulation(pop, onlyHp, new Rng(8));
  assert.deepEqual(outcomes.map((o) => [o.agent, o.kind]), [
    [1, 'rl_hp_mut'],
    [2, 'rl_hp_mut'],
  ]);
  assert.deepEqual([...pop[0]!.online.params], eliteWeights);
  assert.equal(pop[0]!.hp.lr, HP.lr);
  assert.ok(pop.slice(1).every((a) => a.hp.lr !== HP.lr));

  const noElitism = config({ selection: { tournamentSize: 2, elitism: false } });
  assert.equal(mutatePopulation(population([1, 2]), noElitism, new Rng(1)).length, 2, 'without elitism every agent may mutate');
  const archOnly = config({ mutation: { ...onlyHp.mutation, probabilities: { no_mut: 0, arch_mut: 1, new_layer: 0, params_mut: 0, act_mut: 0, rl_hp_mut: 0 } } });
  const fixed = population([1, 2]);
  const weights = [...fixed[1]!.online.params];
  assert.equal(mutatePopulation(fixed, archOnly, new Rng(1))[0]!.kind, 'arch_mut');
  assert.deepEqual([...fixed[1]!.online.params], weights, 'architecture mutations leave the fixed network unchanged');
});

test('evaluate averages greedy returns, capped by the step limit', () => {
  const agent = population([0])[0]!;
  const score = evaluate(agent, { episodes: 4, loops: 2 }, new Rng(1));
  assert.ok(score >= 8 && score <= 500, `score ${score}`);
  assert.equal(evaluate(agent, { episodes: 4, loops: 1, maxSteps: 1 }, new Rng(1)), 1);
  assert.equal(evaluate(agent, { episodes: 3, loops: 2 }, new Rng(5)), evaluate(agent, { episodes: 3, loops: 2 }, new Rng(5)), 'reproducible');
});
