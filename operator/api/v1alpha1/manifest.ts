// The Arena training manifest, as embedded in Experiment.spec.manifest. Its definition is the platform's own
// TrainingManifest (PyPI agilerl-arena, pinned in python/requirements.lock): the webhook, the operator, the runtime
// and `kubectl arena manifest validate` all ask the platform's validator for the verdict (../platform/verdict.ts),
// so this project holds no copy of the platform's fields, bounds or cross-field rules that could drift from it.
//
// What the CRD declares here is only structure the platform's verdict can never contradict: the sections are
// objects, algorithm and environment are required, and algorithm.name is one of the platform's registered names
// (read from the pinned package, registry.generated.ts). Everything else is kept as written, unknown keys included,
// so the operator sees exactly what the user wrote and the platform's verdict refuses what the platform refuses.
import { Type, type Static } from '@sinclair/typebox';
import { PreserveUnknownObject, Str, StringEnum } from '../schema.ts';
import { MANIFEST_API_VERSION, PLATFORM_ALGORITHMS } from '../platform/registry.generated.ts';

type Registered = (typeof PLATFORM_ALGORITHMS)[number];
export type AlgorithmName = Registered['name'];
/** The platform's algorithm families: single-agent classic RL (with bandits and offline RL), multi-agent, LLM. */
export type AlgorithmFamily = Registered['family'];

export const ALGORITHM_NAMES = PLATFORM_ALGORITHMS.map((a) => a.name) as [AlgorithmName, ...AlgorithmName[]];
export { MANIFEST_API_VERSION };

const BY_NAME = new Map<string, Registered>(PLATFORM_ALGORITHMS.map((a) => [a.name, a]));

export function isAlgorithmName(name: unknown): name is AlgorithmName {
  return typeof name === 'string' && BY_NAME.has(name);
}

export function algorithmFamily(name: AlgorithmName): AlgorithmFamily {
  return BY_NAME.get(name)!.family;
}

/** LLM fine-tuning cannot run without a GPU; the other families can, if slowly. */
export function needsGpu(name: AlgorithmName): boolean {
  return algorithmFamily(name) === 'llm';
}

export type InferencePath = 'get_action' | 'predict' | 'generate';

/** The inference route a deployed checkpoint of this algorithm serves. */
export function inferencePath(name: AlgorithmName): InferencePath {
  return algorithmFamily(name) === 'llm' ? 'generate' : 'get_action';
}

export const LLM_ALGORITHMS = ALGORITHM_NAMES.filter((n) => algorithmFamily(n) === 'llm');

// nullable: a structural schema drops an explicit null before anyone sees it, which would turn `training: null`
// (refused by the platform) into no training section (accepted). Kept, the null reaches the platform's verdict.
const Section = (description: string) =>
  Type.Optional(Type.Unsafe<Record<string, unknown> | null>({ ...PreserveUnknownObject(description), nullable: true }));

const Algorithm = Type.Unsafe<{ name: AlgorithmName } & Record<string, unknown>>({
  type: 'object',
  description:
    "What to train, and the hyperparameters it trains with: `name` picks one of the platform's registered algorithms, and the other keys are that algorithm's own hyperparameters (`kubectl arena manifest schema` lists them).",
  required: ['name'],
  properties: {
    name: StringEnum("One of the Arena platform's registered algorithm names.", ALGORITHM_NAMES),
  },
  'x-kubernetes-preserve-unknown-fields': true,
});

export const Manifest = Type.Unsafe<ManifestShape>({
  type: 'object',
  description:
    "The Arena training manifest, exactly as the Arena platform defines it (agilerl-arena's TrainingManifest). The platform's own validator checks it: `kubectl arena manifest validate FILE` gives its verdict offline and `kubectl arena manifest schema` prints its JSON Schema.",
  required: ['algorithm', 'environment'],
  properties: {
    apiVersion: Type.Optional(Str(`Manifest contract version; the platform speaks ${MANIFEST_API_VERSION} (the default).`, { maxLength: 64 })),
    algorithm: Algorithm,
    environment: Type.Unsafe<Record<string, unknown>>({
      ...PreserveUnknownObject('What to train against: an environment (Gymnasium, PettingZoo, a bandit) or a dataset (offline RL, LLM fine-tuning).'),
      nullable: true,
    }),
    training: Section('How long to train for, and how the population evolves.'),
    network: Section('The model: a network to build from scratch, or a pretrained model to fine-tune.'),
    mutation: Section('What population-based HPO may change between evolution rounds.'),
    replay_buffer: Section('Where collected experience is held before it is learned from.'),
    selection_strategy: Section('How the population is ranked and replaced at each evolution round (also spelt tournament_selection).'),
    tournament_selection: Section('Another spelling of selection_strategy, the one the platform stores.'),
  },
  'x-kubernetes-preserve-unknown-fields': true,
});

type Open = Record<string, unknown>;
interface ManifestShape {
  apiVersion?: string;
  algorithm: { name: AlgorithmName } & Open;
  environment: Open;
  training?: Open | null;
  network?: Open | null;
  mutation?: Open | null;
  replay_buffer?: Open | null;
  selection_strategy?: Open | null;
  tournament_selection?: Open | null;
  [key: string]: unknown;
}
export type Manifest = Static<typeof Manifest>;
