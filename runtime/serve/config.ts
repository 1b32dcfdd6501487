// `arena-runtime serve` settings from flags, falling back to the environment the operator sets on inference pods.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { DEFAULT_MAX_BODY_BYTES } from './server.ts';
import { DEFAULT_CONNECTION_LIMITS } from './connection-limits.ts';

export interface ServeConfig {
  host: string;
  port: number;
  /** An AgileRL checkpoint: the trainer's step-N folder, a folder of AgileRL .pt files, or one .pt file. */
  checkpoint?: string;
  manifestPath?: string;
  apiKeyFile?: string;
  /** Serve without authentication (local use). */
  noAuth: boolean;
  /** The LLM inference engine of an LLM image. */
  engineUrl: string;
  /** --engine-url or ENGINE_URL was given; without it an LLM checkpoint gets the in-pod transformers engine. */
  engineUrlGiven?: boolean;
  deploymentId: string;
  instanceId: string;
  maxBodyBytes: number;
  maxConnections: number;
  maxConnectionsPerClient: number;
}

export const DEFAULT_PORT = 8000;
export const DEFAULT_ENGINE_URL = 'http://127.0.0.1:30000';

export const SERVE_USAGE = `usage: arena-runtime serve [options]

Serves a checkpoint over the Arena inference API (/status, /get_action, /predict, /generate, ...).

options:
  --port N              listen port (default ${DEFAULT_PORT})
  --host ADDR           listen address (default 0.0.0.0)
  --checkpoint PATH     an AgileRL checkpoint: a step-N folder, or an AgileRL .pt file    [$ARENA_CHECKPOINT]
  --manifest PATH       the experiment's training manifest (JSON or YAML)                 [$ARENA_MANIFEST]
  --api-key-file PATH   file holding the deployment's API key, re-read when it changes   [$ARENA_API_KEY_FILE]
  --engine-url URL      LLM inference engine (default ${DEFAULT_ENGINE_URL}; unset with an
                        LLM checkpoint of the AgileRL trainer: transformers in this pod)  [$ENGINE_URL]
  --deployment-id ID    reported by /status                                               [$ARENA_DEPLOYMENT_ID]
  --max-body-bytes N    largest request body (default ${DEFAULT_MAX_BODY_BYTES})
  --max-connections N   open connections in all (default ${DEFAULT_CONNECTION_LIMITS.maxConnections})
  --max-connections-per-client N
                        open connections from one address (default ${DEFAULT_CONNECTION_LIMITS.maxConnectionsPerClient}); behind a
                        Service or an Ingress the proxy is one client, so keep it above its pool
  --no-auth             serve without an API key (local use only)
  -h, --help            this text

The instance id in /status is $POD_NAME, else $HOSTNAME.
A checkpoint or manifest that cannot be used ends the process at once with a non-zero status and the reason.
`;

export type ParsedServeArgs = { ok: true; help: true } | { ok: true; help?: false; config: ServeConfig } | { ok: false; error: string };

function positiveInt(value: string, flag: string, max: number): number | string {
  const n = Number(value);
  return /^\d+$/.test(value) && n >= 0 && n <= max ? n : `${flag} must be an integer from 0 to ${max}, got ${JSON.stringify(value)}`;
}

export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ParsedServeArgs {
  let values;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        checkpoint: { type: 'string' },
        manifest: { type: 'string' },
        'api-key-file': { type: 'string' },
        'engine-url': { type: 'string' },
        'deployment-id': { type: 'string' },
        'max-body-bytes': { type: 'string' },
        'max-connections': { type: 'string' },
        'max-connections-per-client': { type: 'string' },
        'no-auth': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
  if (values.help) return { ok: true, help: true };
  const port = positiveInt(values.port ?? String(DEFAULT_PORT), '--port', 65535);
  if (typeof port === 'string') return { ok: false, error: port };
  const maxBody = positiveInt(values['max-body-bytes'] ?? String(DEFAULT_MAX_BODY_BYTES), '--max-body-bytes', 1024 * 1024 * 1024);
  if (typeof maxBody === 'string') return { ok: false, error: maxBody };
  const maxConnections = positiveInt(values['max-connections'] ?? String(DEFAULT_CONNECTION_LIMITS.maxConnections), '--max-connections', 1_000_000);
  if (typeof maxConnections === 'string') return { ok: false, error: maxConnections };
  const maxPerClient = positiveInt(values['max-connections-per-client'] ?? String(DEFAULT_CONNECTION_LIMITS.maxConnectionsPerClient), '--max-connections-per-client', 1_000_000);
  if (typeof maxPerClient === 'string') return { ok: false, error: maxPerClient };
  const engineUrl = values['engine-url'] ?? env.ENGINE_URL ?? DEFAULT_ENGINE_URL;
  try {
    const u = new URL(engineUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
  } catch {
    return { ok: false, error: `--engine-url / ENGINE_URL must be an http(s) URL, got ${JSON.stringify(engineUrl)}` };
  }
  const nonEmpty = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
  return {
    ok: true,
    config: {
      host: values.host ?? '0.0.0.0',
      port,
      checkpoint: nonEmpty(values.checkpoint ?? env.ARENA_CHECKPOINT),
      manifestPath: nonEmpty(values.manifest ?? env.ARENA_MANIFEST),
      apiKeyFile: nonEmpty(values['api-key-file'] ?? env.ARENA_API_KEY_FILE),
      noAuth: values['no-auth'] === true,
      engineUrl,
      engineUrlGiven: values['engine-url'] !== undefined || env.ENGINE_URL !== undefined,
      deploymentId: values['deployment-id'] ?? env.ARENA_DEPLOYMENT_ID ?? '',
      instanceId: nonEmpty(env.POD_NAME) ?? nonEmpty(env.HOSTNAME) ?? hostname(),
      maxBodyBytes: maxBody,
      maxConnections,
      maxConnectionsPerClient: maxPerClient,
    },
  };
}
