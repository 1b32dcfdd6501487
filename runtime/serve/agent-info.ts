// /status's agent description, from the deployment's training manifest (or, without one, from the checkpoint).
// The platform's client reads it to pick and guard its calls, so each flag must say what the served model is.
import { algorithmFamily, type Manifest } from '../../operator/api/v1alpha1/manifest.ts';
import type { AgentInfo } from './models.ts';

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
    // The platform's registry has no supervised algorithm, so no validated manifest is served on /predict.
    supervised: false,
  };
}
