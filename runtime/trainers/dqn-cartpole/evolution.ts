// Evolutionary HPO as AgileRL does it for a population of off-policy agents: evaluate every agent, keep the best
// (elitism), fill the rest of the population by tournament selection, then mutate the newcomers'
// hyperparameters or weights.
import { greedyAction, INTEGER_HYPERPARAMETERS, type DqnAgent, type DqnHyperparameters } from './agent.ts';
import { CartPole, MAX_EPISODE_STEPS, OBSERVATION_SIZE } from './cartpole.ts';
import type { DqnConfig, MutationKind } from './config.ts';
import type { Rng } from './rng.ts';

/**
 * Mean greedy return of `episodes` parallel episodes, `loops` times over, each episode cut at `maxSteps`
 * (the environment's own 500-step limit applies anyway).
 */
export function evaluate(agent: DqnAgent, opts: { episodes: number; loops: number; maxSteps?: number }, rng: Rng): number {
  const n = opts.episodes;
  const limit = Math.min(opts.maxSteps ?? MAX_EPISODE_STEPS, MAX_EPISODE_STEPS);
  const envs = Array.from({ length: n }, () => new CartPole(rng));
  const obs = new Float32Array(n * OBSERVATION_SIZE);
  const nA = agent.actions;
  let total = 0;
  for (let loop = 0; loop < opts.loops; loop++) {
    const returns = new Float64Array(n);
    const done = new Uint8Array(n);
    for (const env of envs) env.reset();
    let alive = n;
    for (let step = 0; step < limit && alive > 0; step++) {
      for (let k = 0; k < n; k++) envs[k]!.observe(obs, k * OBSERVATION_SIZE);
      const q = agent.online.forward(obs, n);
      for (let k = 0; k < n; k++) {
        if (done[k]) continue;
        const r = envs[k]!.step(greedyAction(q, k * nA, nA));
        returns[k]! += r.reward;
        if (r.terminated || r.truncated) {
          done[k] = 1;
          alive--;
        }
      }
    }
    total += returns.reduce((a, b) => a + b, 0) / n;
  }
  return total / opts.loops;
}

/** The best agent's index: the highest latest fitness, the lowest index on ties. */
export function bestIndex(population: readonly DqnAgent[]): number {
  let best = 0;
  for (let i = 1; i < population.length; i++) {
    if ((population[i]!.fitness.at(-1) ?? -Infinity) > (population[best]!.fitness.at(-1) ?? -Infinity)) best = i;
  }
  return best;
}

/** Tournament selection: slot 0 is a copy of the best agent when `elitism`, every other slot a tournament winner. */
export function tournamentSelection(population: readonly DqnAgent[], opts: { tournamentSize: number; elitism: boolean }, rng: Rng): DqnAgent[] {
  const next: DqnAgent[] = [];
  if (opts.elitism) next.push(population[bestIndex(population)]!.clone(0));
  const k = Math.min(opts.tournamentSize, population.length);
  while (next.length < population.length) {
    const entrants = Array.from({ length: k }, () => population[rng.int(population.length)]!);
    next.push(entrants[bestIndex(entrants)]!.clone(next.length));
  }
  return next;
}

export interface MutationOutcome {
  agent: number;
  kind: MutationKind;
  detail?: string;
}

function pick(probabilities: Record<MutationKind, number>, rng: Rng): MutationKind {
  const kinds = Object.keys(probabilities) as MutationKind[];
  const total = kinds.reduce((s, k) => s + Math.max(0, probabilities[k]), 0);
  let x = rng.next() * total;
  for (const k of kinds) {
    x -= Math.max(0, probabilities[k]);
    if (x < 0) return k;
  }
  return 'no_mut';
}

/** Gaussian noise on a tenth of the weights, scaled to each weight's magnitude (AgileRL's parameter mutation, simplified). */
export function mutateWeights(agent: DqnAgent, sd: number, rng: Rng): void {
  const p = agent.online.params;
  const count = Math.max(1, Math.floor(p.length * 0.1));
  for (let c = 0; c < count; c++) {
    const i = rng.int(p.length);
    p[i]! += rng.normal() * sd * Math.max(Math.abs(p[i]!), 1e-2);
  }
  agent.target.params.set(p);
}

export function mutateHyperparameter(agent: DqnAgent, ranges: DqnConfig['mutation']['hpRanges'], rng: Rng): string | undefined {
  const names = Object.keys(ranges) as (keyof DqnHyperparameters)[];
  if (names.length === 0) return undefined;
  const name = names[rng.int(names.length)]!;
  const range = ranges[name]!;
  const factor = rng.next() < 0.5 ? range.grow_factor : range.shrink_factor;
  let value = Math.min(range.max, Math.max(range.min, agent.hp[name] * factor));
  if (INTEGER_HYPERPARAMETERS.has(name)) value = Math.max(1, Math.round(value));
  const before = agent.hp[name];
  agent.hp = { ...agent.hp, [name]: value };
  return `${name} ${before} -> ${value}`;
}

/**
 * Mutates every agent except the elite. The network's architecture is fixed in this trainer, so architecture,
 * new-layer and activation mutations leave the agent unchanged.
 */
export function mutatePopulation(population: DqnAgent[], cfg: DqnConfig, rng: Rng): MutationOutcome[] {
  const outcomes: MutationOutcome[] = [];
  population.forEach((agent, i) => {
    if (i === 0 && cfg.selection.elitism) return;
    const kind = pick(cfg.mutation.probabilities, rng);
    if (kind === 'params_mut') {
      mutateWeights(agent, cfg.mutation.sd, rng);
      outcomes.push({ agent: i, kind });
    } else if (kind === 'rl_hp_mut') {
      outcomes.push({ agent: i, kind, detail: mutateHyperparameter(agent, cfg.mutation.hpRanges, rng) });
    } else {
      outcomes.push({ agent: i, kind });
    }
  });
  return outcomes;
}
