// The reference trainer as a process, started by the supervisor (runtime/supervisor.ts): it reads the worker
// environment, trains, writes checkpoints and speaks the event protocol on $ARENA_EVENTS_FD. SIGTERM asks it to
// stop: it writes a final checkpoint and exits 0.
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Manifest } from '../../../operator/api/v1alpha1/manifest.ts';
import { TrainerEventWriter } from '../../events.ts';
import { readCheckpoint } from './checkpoint.ts';
import { dqnConfig, unsupported } from './config.ts';
import { trainDqn } from './trainer.ts';

async function main(): Promise<number> {
  const env = process.env;
  const events = TrainerEventWriter.fromEnv(env);
  if (!env.ARENA_MANIFEST) {
    events.emit({ event: 'error', reason: 'InvalidConfiguration', message: 'ARENA_MANIFEST is not set', retryable: false });
    return 2;
  }
  const manifest = JSON.parse(readFileSync(env.ARENA_MANIFEST, 'utf8')) as Manifest;
  const why = unsupported(manifest);
  if (why) {
    events.emit({ event: 'error', reason: 'TrainerUnavailable', message: why, retryable: false });
    return 2;
  }
  const cfg = dqnConfig(manifest);
  const resume = env.ARENA_RESUME_FROM ? readCheckpoint(env.ARENA_RESUME_FROM) : undefined;
  if (resume && cfg.hiddenFromManifest) {
    const want = [resume.checkpoint.network.sizes[0], ...cfg.hidden, resume.checkpoint.network.sizes.at(-1)].join('x');
    const have = resume.checkpoint.network.sizes.join('x');
    if (want !== have) {
      throw new Error(`RuntimeError: Error(s) in loading state_dict for QNetwork: size mismatch: the checkpoint has layers ${have}, the manifest asks for ${want}`);
    }
  }
  let stop = false;
  const requestStop = () => {
    if (!stop) console.log('dqn-cartpole: stop requested, writing a final checkpoint');
    stop = true;
  };
  process.on('SIGTERM', requestStop);
  process.on('SIGINT', requestStop);
  console.log(
    `dqn-cartpole: population ${cfg.popSize}, ${cfg.numEnvs} envs, ${cfg.maxSteps} steps, evolution every ${cfg.evoSteps}, seed ${cfg.seed}` +
      (resume ? `, resuming from ${resume.path} at step ${resume.checkpoint.step}` : ''),
  );
  const result = await trainDqn(cfg, {
    checkpointDir: env.ARENA_CHECKPOINT_DIR ?? join(tmpdir(), 'arena-checkpoints'),
    run: env.ARENA_RUN ?? '0',
    resume,
    emit: (e) => events.emit(e),
    stopRequested: () => stop,
  });
  const last = result.checkpoints.at(-1);
  console.log(`dqn-cartpole: ${result.outcome} at step ${result.step}; last checkpoint ${last ? `${last.path} (evaluation ${last.evaluationScore.toFixed(1)})` : 'none'}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
