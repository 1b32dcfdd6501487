// What the inference server serves: the agent description of /status and the model behind the inference route.
// A model gets decoded arrays and throws badRequest(field, ...) for input it cannot take; the server does the
// wire format, batching rules, auth, limits and metrics.
import type { NpyTree } from '../npy/tree.ts';

/** /status's agent: lets the platform's client pick the route and guard calls. */
export interface AgentInfo {
  algo: string;
  multi_agent: boolean;
  llm: boolean;
  recurrent: boolean;
  supervised: boolean;
}

export interface ActionRequest {
  /** One array, a dict/tuple of arrays (dict and tuple spaces), or for multi-agent a dict keyed by agent id. */
  obs: NpyTree;
  /** Every array in obs has this leading axis. */
  batchSize: number;
  hiddenState?: NpyTree;
  actionMask?: NpyTree;
  envDefinedActions?: NpyTree;
}

export interface ActionResult {
  /** Leading axis batchSize on every array; keyed like obs for multi-agent models. */
  action: NpyTree;
  /** Recurrent models only. */
  hiddenState?: NpyTree;
}

/** A classic RL policy (POST /get_action). */
export interface ActionModel {
  /** One line for logs, e.g. "DQN CartPole-v1, step 20000". */
  readonly description: string;
  getAction(request: ActionRequest): ActionResult | Promise<ActionResult>;
}

/** A supervised or LatentPPO model (POST /predict). No such model ships with this runtime; an image plugs one in. */
export interface Predictor {
  readonly description: string;
  /** `inputs` has leading axis batchSize on every array; so must the results. */
  predict(inputs: NpyTree, batchSize: number): NpyTree | Promise<NpyTree>;
}
