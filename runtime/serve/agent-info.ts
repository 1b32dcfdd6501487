// /status's agent description, from the deployment's training manifest (or, without one, from the checkpoint).
import { algorithmFamily, type Manifest } from '../../operator/api/v1alpha1/manifest.ts';
import type { AgentInfo } from './models.ts';

export function agentInfoFromManifest(manifest: Manifest): AgentInfo {
  const family = algorithmFamily(manifest.algorithm.name);
  return {
    algo: manifest.algorithm.name,
    multi_agent: family === 'multi-agent',
    llm: family === 'llm',
    recurrent: manifest.algorithm.recurrent === true,
    // LatentPPO is served like Supervised (POST /predict), and the client guards /predict on this flag.
    supervised: family === 'supervised' || family === 'latent-ppo',
  };
}
