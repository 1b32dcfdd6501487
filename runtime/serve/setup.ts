// From the serve settings to what the server serves: the manifest decides the route (get_action, predict or
// generate) and /status's agent; the checkpoint is loaded here, before the server listens, so that a checkpoint
// that cannot be served ends the process at once with the reason rather than leaving a pod that is never ready.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Logger } from 'winston';
import { formatErrors, validateManifest } from '../../operator/api/validate.ts';
import { inferencePath, type InferencePath, type Manifest } from '../../operator/api/v1alpha1/manifest.ts';
import { agentInfoFromManifest } from './agent-info.ts';
import { AgileRlActionModel, notAgileRlCheckpoint } from './agilerl-model.ts';
import { ApiKeyFile } from './api-keys.ts';
import type { ServeConfig } from './config.ts';
import { EngineClient } from './engine.ts';
import { isLlmCheckpoint, startLocalLlmEngine } from './llm-engine.ts';
import type { InferenceServerOptions } from './server.ts';

/** Why the process cannot serve: `refused` for settings to correct (exit 2), `failed` for a checkpoint that cannot be loaded (exit 1). */
export type SetupResult = { ok: true; options: InferenceServerOptions } | { ok: false; kind: 'refused' | 'failed'; reason: string };

function readManifest(path: string): { ok: true; manifest: Manifest } | { ok: false; reason: string } {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    return { ok: false, reason: `the manifest ${path} cannot be read: ${(err as Error).message}` };
  }
  const v = validateManifest(raw);
  if (!v.ok) return { ok: false, reason: `the manifest ${path} is not valid: ${formatErrors(v.errors)}` };
  return { ok: true, manifest: raw as Manifest };
}

export interface SetupHooks {
  /**
   * The AgileRL model process ended on its own (it cannot load the checkpoint, or it crashed). Default: log, write
   * the reason to the termination message and exit 1, so that the pod fails with the reason instead of serving 500s.
   */
  onModelExit?: (reason: string) => void;
}

function exitWithReason(logger: Logger, reason: string): void {
  logger.error('Cannot serve', { reason });
  const path = process.env.ARENA_TERMINATION_LOG ?? (existsSync('/dev/termination-log') ? '/dev/termination-log' : undefined);
  try {
    if (path) writeFileSync(path, reason.slice(0, 4000));
  } catch {
    // Not in a container, or read-only: the log line has the reason too.
  }
  process.exit(1);
}

/**
 * setupServe, then for a get_action model waits until its process has loaded the agent, so that a checkpoint that
 * cannot be loaded is a `failed` result (exit 1 with the reason) before the server listens.
 */
export async function setupServeReady(config: ServeConfig, logger: Logger, hooks: SetupHooks = {}): Promise<SetupResult> {
  const r = setupServe(config, logger, hooks);
  if (r.ok && r.options.route === 'generate' && config.checkpoint && !config.engineUrlGiven) return withLocalLlmEngine(r, config.checkpoint, logger, hooks);
  if (!r.ok || !(r.options.actions instanceof AgileRlActionModel)) return r;
  const model = r.options.actions;
  try {
    await model.ready;
  } catch (err) {
    return { ok: false, kind: 'failed', reason: `the checkpoint ${config.checkpoint} cannot be loaded: ${(err as Error).message}` };
  }
  logger.info('Checkpoint loaded', { checkpoint: config.checkpoint, model: model.description });
  return r;
}

export function setupServe(config: ServeConfig, logger: Logger, hooks: SetupHooks = {}): SetupResult {
  const refused = (reason: string): SetupResult => ({ ok: false, kind: 'refused', reason });
  if (!config.noAuth && !config.apiKeyFile) {
    return refused('no API key: set ARENA_API_KEY_FILE (or --api-key-file) to the file holding the deployment key, or pass --no-auth for local use');
  }
  let manifest: Manifest | undefined;
  if (config.manifestPath) {
    const m = readManifest(config.manifestPath);
    if (!m.ok) return refused(m.reason);
    manifest = m.manifest;
  }
  if (!manifest && !config.checkpoint) return refused('nothing to serve: give --checkpoint (ARENA_CHECKPOINT) or --manifest (ARENA_MANIFEST)');

  const agent = manifest ? agentInfoFromManifest(manifest) : undefined;
  // The client calls /predict exactly when /status says supervised, so the route follows that flag.
  const route: InferencePath = !manifest ? 'get_action' : agent?.supervised ? 'predict' : inferencePath(manifest.algorithm.name);
  const base = {
    port: config.port,
    host: config.host,
    route,
    agent,
    deploymentId: config.deploymentId,
    instanceId: config.instanceId,
    apiKeys: config.noAuth ? ('disabled' as const) : new ApiKeyFile(config.apiKeyFile!, logger),
    logger,
    maxBodyBytes: config.maxBodyBytes,
    connections: { maxConnections: config.maxConnections, maxConnectionsPerClient: config.maxConnectionsPerClient },
  };

  switch (route) {
    case 'get_action': {
      if (!config.checkpoint) return refused('no checkpoint: give --checkpoint (ARENA_CHECKPOINT)');
      const checkpoint = config.checkpoint;
      const why = notAgileRlCheckpoint(checkpoint);
      if (why) {
        return {
          ok: false,
          kind: 'failed',
          // "cannot be loaded" is what the operator reads as CheckpointLoadFailed (deployment/pods.ts).
          reason: `the checkpoint ${checkpoint} cannot be loaded: it is not an AgileRL checkpoint (${why}); expected a folder with arena-checkpoint.json (as the trainer writes) or an AgileRL .pt file`,
        };
      }
      let loaded = false;
      let model: AgileRlActionModel;
      try {
        model = AgileRlActionModel.start(checkpoint, {
          logger,
          onExit: (reason) => {
            const message = loaded ? `the model process of ${checkpoint} ended: ${reason}` : `the checkpoint ${checkpoint} cannot be loaded: ${reason}`;
            (hooks.onModelExit ?? ((r: string) => exitWithReason(logger, r)))(message);
          },
        });
      } catch (err) {
        return { ok: false, kind: 'failed', reason: `the checkpoint ${checkpoint} cannot be loaded: ${(err as Error).message}` };
      }
      model.ready.then(
        () => {
          loaded = true;
          logger.info('AgileRL model loaded', { checkpoint, model: model.description });
        },
        () => undefined,
      );
      // The manifest, when given, still decides /status's agent; the model's own (filled in once it has loaded) otherwise.
      return { ok: true, options: { ...base, agent: base.agent ?? model.agent, actions: model } };
    }
    case 'predict':
      logger.warn('This runtime image has no predictor: /predict answers 501 and /readyz stays 503', { algo: manifest!.algorithm.name });
      return { ok: true, options: base };
    case 'generate':
      // The engine loads the weights itself; the server proxies to it and reports ready when it is.
      return { ok: true, options: { ...base, engine: new EngineClient({ url: config.engineUrl, logger }) } };
  }
}

/**
 * An LLM checkpoint of the AgileRL trainer with no engine URL given: the in-pod transformers engine serves it (where
 * no vLLM or SGLang runs), and the server proxies to it as to any engine; /readyz follows its /health.
 */
async function withLocalLlmEngine(r: SetupResult & { ok: true }, checkpoint: string, logger: Logger, hooks: SetupHooks): Promise<SetupResult> {
  if (!isLlmCheckpoint(checkpoint)) {
    return { ok: false, kind: 'failed', reason: `the checkpoint ${checkpoint} cannot be loaded: it is not an LLM checkpoint of the AgileRL trainer (no arena-checkpoint.json with llm: true); give --engine-url for an engine that loads it itself` };
  }
  try {
    const engine = await startLocalLlmEngine(checkpoint, {
      logger,
      onExit: (reason) => (hooks.onModelExit ?? ((m: string) => exitWithReason(logger, m)))(`the checkpoint ${checkpoint} cannot be served: ${reason}`),
    });
    (r.options.engine as EngineClient | undefined)?.stop();
    return { ok: true, options: { ...r.options, engine: new EngineClient({ url: engine.url, logger }) } };
  } catch (err) {
    return { ok: false, kind: 'failed', reason: `the checkpoint ${checkpoint} cannot be loaded: ${(err as Error).message}` };
  }
}
