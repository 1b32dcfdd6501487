// /status's agent description, from the deployment's training manifest (or, without one, from the checkpoint).
// The platform's client reads it to pick and guard its calls, so each flag must say what the served model is.
import { algorithmFamily, type Manifest } from '../../operator/api/v1alpha1/manifest.ts';
import type { AgentInfo } from './models.ts';

// Served on POST /predict. The platform's registry names none of these today; an image that plugs in a predictor
// for one sets `supervised`, and with it the route, from the name.
const SUPERVISED = new Set(['Supervised', 'LatentPPO']);
// Their specs refuse recurrent: false, so a manifest of them need not say it.
const ALWAYS_RECURRENT = new Set(['Recurrent PPO', 'RecurrentPPO']);

export function agentInfoFromManifest(manifest: Manifest): AgentInfo {
  const name: string = manifest.algorithm.name;
  const family = algorithmFamily(manifest.algorithm.name);
  return {
    algo: name,
    multi_agent: family === 'multi-agent',
    llm: family === 'llm',
    recurrent: manifest.algorithm.recurrent === true || ALWAYS_RECURRENT.has(name),
    supervised: SUPERVISED.has(name),
  };
}
