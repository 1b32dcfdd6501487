// The reference trainer's loop: an evolving population of DQN agents on vectorised CartPole, following AgileRL's
// off-policy training loop (collect, learn every learn_step transitions, evaluate and evolve every evo_steps),
// writing a checkpoint of the best agent after evolution rounds and a final one when asked to stop.
import { DqnAgent } from './agent.ts';
import { ACTIONS, CartPole, OBSERVATION_SIZE } from './cartpole.ts';
import { checkpointFile, encodeWeights, writeCheckpoint, type DqnCheckpoint } from './checkpoint.ts';
import type { DqnConfig } from './config.ts';
import { bestIndex, evaluate, mutatePopulation, tournamentSelection } from './evolution.ts';
import { ReplayBuffer } from './replay.ts';
import { Rng } from './rng.ts';
import type { TrainerEvent } from '../../events.ts';

export interface TrainOptions {
  checkpointDir: string;
  /** Names the run's checkpoint folder, run-<run>. */
  run: string;
  resume?: { checkpoint: DqnCheckpoint; params: Float32Array };
  emit: (event: TrainerEvent) => void;
  /** Polled between environment steps; true ends training with a final checkpoint. */
  stopRequested: () => boolean;
  /** Milliseconds of work between yields to the event loop (which is when signals are seen). */
  yieldEveryMs?: number;
}

export interface TrainResult {
  outcome: 'finished' | 'stopped';
  step: number;
  checkpoints: { step: number; path: string; evaluationScore: number; trainingScore?: number; sizeBytes: number }[];
}

interface Worker {
  agent: DqnAgent;
  envs: CartPole[];
  obs: Float32Array;
  nextObs: Float32Array;
  actions: Uint8Array;
  returns: Float64Array;
  epsilon: number;
  steps: number;
  losses: number[];
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);

export async function trainDqn(cfg: DqnConfig, opts: TrainOptions): Promise<TrainResult> {
  const rng = new Rng(cfg.seed);
  const sizes = opts.resume?.checkpoint.network.sizes ?? [OBSERVATION_SIZE, ...cfg.hidden, ACTIONS];
  const startStep = opts.resume?.checkpoint.step ?? 0;
  const vecSteps = (steps: number) => Math.ceil(steps / cfg.numEnvs);
  // Exploration continues where the checkpointed run left it.
  const startEpsilon = Math.max(cfg.epsEnd, cfg.epsStart * cfg.epsDecay ** vecSteps(startStep));

  const workers: Worker[] = Array.from({ length: cfg.popSize }, (_, i) => {
    const agentRng = rng.fork();
    const agent = opts.resume
      ? DqnAgent.fromWeights(i, sizes, { ...cfg.hp, ...opts.resume.checkpoint.hyperparameters }, opts.resume.params)
      : DqnAgent.create(i, sizes, cfg.hp, agentRng);
    agent.double = cfg.double;
    const envs = Array.from({ length: cfg.numEnvs }, () => new CartPole(agentRng));
    const obs = new Float32Array(cfg.numEnvs * OBSERVATION_SIZE);
    envs.forEach((e, k) => e.observe(obs, k * OBSERVATION_SIZE));
    return {
      agent,
      envs,
      obs,
      nextObs: new Float32Array(OBSERVATION_SIZE),
      actions: new Uint8Array(cfg.numEnvs),
      returns: new Float64Array(cfg.numEnvs),
      epsilon: startEpsilon,
      steps: startStep,
      losses: [],
    };
  });
  const buffer = new ReplayBuffer(cfg.bufferSize, OBSERVATION_SIZE);
  const evalRng = rng.fork();
  const learnRng = rng.fork();
  const evolveRng = rng.fork();
  const result: TrainResult = { outcome: 'finished', step: startStep, checkpoints: [] };
  const yieldEvery = opts.yieldEveryMs ?? 25;
  let lastYield = performance.now();
  let lastCheckpointStep = startStep;
  let step = startStep;
  const started = performance.now();
  let stopped = false;

  // Environment steps of the whole population per second of wall time.
  const stepsPerSecond = (at: number) => Math.round(((at - startStep) * cfg.popSize) / Math.max((performance.now() - started) / 1000, 1e-3));

  const checkpoint = (agent: DqnAgent, at: number, evaluationScore: number, trainingScore: number | undefined, final: boolean) => {
    const ck: DqnCheckpoint = {
      format: 'arena.dqn-cartpole/v1',
      step: at,
      trainingScore,
      evaluationScore,
      createdAt: new Date().toISOString(),
      environment: 'CartPole-v1',
      seed: cfg.seed,
      hyperparameters: { ...agent.hp },
      network: { sizes: [...sizes], activation: 'relu', weights: encodeWeights(agent.online.params) },
      ...(final ? { final: true } : {}),
    };
    const { path, sizeBytes } = writeCheckpoint(checkpointFile(opts.checkpointDir, opts.run, at), ck);
    opts.emit({
      event: 'checkpoint',
      step: at,
      path,
      evaluation_score: evaluationScore,
      ...(trainingScore === undefined ? {} : { training_score: trainingScore }),
      size_bytes: sizeBytes,
      ...(final ? { final: true } : {}),
    });
    result.checkpoints.push({ step: at, path, evaluationScore, trainingScore, sizeBytes });
    lastCheckpointStep = at;
  };

  const collect = async (w: Worker, steps: number): Promise<boolean> => {
    const n = cfg.numEnvs;
    const learnEvery = cfg.numEnvs < w.agent.hp.learn_step ? Math.floor(w.agent.hp.learn_step / n) : 0;
    if (opts.stopRequested()) return false;
    for (let v = 0; v < vecSteps(steps); v++) {
      w.agent.act(w.obs, n, w.epsilon, learnRng, w.actions);
      for (let k = 0; k < n; k++) {
        const env = w.envs[k]!;
        const r = env.step(w.actions[k]!);
        env.observe(w.nextObs);
        buffer.add(w.obs, k * OBSERVATION_SIZE, w.actions[k]!, r.reward, w.nextObs, 0, r.terminated);
        w.returns[k]! += r.reward;
        if (r.terminated || r.truncated) {
          w.agent.recentReturns.push(w.returns[k]!);
          w.returns[k] = 0;
          env.reset();
        }
        env.observe(w.obs, k * OBSERVATION_SIZE);
      }
      w.steps += n;
      w.epsilon = Math.max(cfg.epsEnd, w.epsilon * cfg.epsDecay);
      // Between evolution rounds only step counts are new; slot 0 collects first, so its count leads and never goes back.
      if (w === workers[0] && Math.floor(w.steps / cfg.reportingInterval) > Math.floor((w.steps - n) / cfg.reportingInterval)) {
        opts.emit({ event: 'progress', step: w.steps, max_steps: cfg.maxSteps, steps_per_second: stepsPerSecond(w.steps) });
      }
      if (buffer.size >= w.agent.hp.batch_size && buffer.counter > cfg.learningDelay) {
        // AgileRL: one learning step per learn_step transitions, however many environments produced them.
        const learns = learnEvery > 0 ? (v % learnEvery === 0 ? 1 : 0) : Math.floor(n / w.agent.hp.learn_step);
        for (let l = 0; l < learns; l++) w.losses.push(w.agent.learn(buffer, learnRng));
      }
      if (performance.now() - lastYield >= yieldEvery) {
        await new Promise((resolve) => setImmediate(resolve));
        lastYield = performance.now();
        if (opts.stopRequested()) return false;
      }
    }
    return true;
  };

  while (step < cfg.maxSteps) {
    const chunk = Math.min(cfg.evoSteps, cfg.maxSteps - step);
    for (const w of workers) {
      if (!(await collect(w, chunk))) {
        stopped = true;
        break;
      }
    }
    if (stopped) break;
    step = Math.max(...workers.map((w) => w.steps));

    for (const w of workers) {
      w.agent.fitness.push(evaluate(w.agent, { episodes: cfg.numEnvs, loops: cfg.evalLoop, maxSteps: cfg.evalSteps }, evalRng));
    }
    const best = workers[bestIndex(workers.map((w) => w.agent))]!;
    const evaluationScore = best.agent.fitness.at(-1)!;
    const trainingScore = mean(best.agent.recentReturns);
    opts.emit({
      event: 'progress',
      step,
      max_steps: cfg.maxSteps,
      evaluation_score: evaluationScore,
      ...(trainingScore === undefined ? {} : { training_score: trainingScore }),
      steps_per_second: stepsPerSecond(step),
    });
    opts.emit({
      event: 'metrics',
      step,
      values: {
        loss: mean(best.losses) ?? 0,
        epsilon: best.epsilon,
        lr: best.agent.hp.lr,
        batch_size: best.agent.hp.batch_size,
        learn_step: best.agent.hp.learn_step,
        mean_fitness: mean(workers.map((w) => w.agent.fitness.at(-1)!))!,
      },
    });

    const done = step >= cfg.maxSteps || (cfg.targetScore !== undefined && evaluationScore >= cfg.targetScore);
    if (step - lastCheckpointStep >= cfg.checkpointSteps || done) checkpoint(best.agent, step, evaluationScore, trainingScore, false);

    const agents = tournamentSelection(
      workers.map((w) => w.agent),
      cfg.selection,
      evolveRng,
    );
    mutatePopulation(agents, cfg, evolveRng);
    // The new agents keep their slot's environments, exploration and step count: only the learner changes.
    workers.forEach((w, i) => {
      w.agent = agents[i]!;
      w.agent.recentReturns = [];
      w.losses = [];
    });
    if (done) break;
  }

  if (stopped) {
    const w = workers[0]!;
    const last = result.checkpoints.at(-1);
    result.outcome = 'stopped';
    result.step = w.steps;
    if (last && last.step === w.steps) {
      // Stopped right after a checkpoint, before slot 0 (the elite's copy) trained on: that checkpoint is final.
      opts.emit({
        event: 'checkpoint',
        step: last.step,
        path: last.path,
        evaluation_score: last.evaluationScore,
        ...(last.trainingScore === undefined ? {} : { training_score: last.trainingScore }),
        size_bytes: last.sizeBytes,
        final: true,
      });
      return result;
    }
    // The elite sits in slot 0 and has trained on since its last evaluation: evaluate it now for the final score.
    const score = evaluate(w.agent, { episodes: cfg.numEnvs, loops: cfg.evalLoop, maxSteps: cfg.evalSteps }, evalRng);
    checkpoint(w.agent, w.steps, score, mean(w.agent.recentReturns), true);
    return result;
  }
  result.step = step;
  opts.emit({ event: 'finished', step });
  return result;
}
