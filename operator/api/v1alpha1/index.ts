// The arena.agilerl.com/v1alpha1 API: every kind, by name.
import { trainingClusterKind, type TrainingCluster } from './trainingcluster.ts';
import { resourceClassKind, type ResourceClass } from './resourceclass.ts';
import { experimentKind, type Experiment } from './experiment.ts';
import { deploymentKind, type Deployment } from './deployment.ts';

export * from './common.ts';
export * from './trainingcluster.ts';
export * from './resourceclass.ts';
export * from './experiment.ts';
export * from './deployment.ts';
export * from './manifest.ts';

export const kinds = {
  TrainingCluster: trainingClusterKind,
  ResourceClass: resourceClassKind,
  Experiment: experimentKind,
  Deployment: deploymentKind,
} as const;

export type KindName = keyof typeof kinds;

export const KIND_NAMES = Object.keys(kinds) as KindName[];

export interface ResourceByKind {
  TrainingCluster: TrainingCluster;
  ResourceClass: ResourceClass;
  Experiment: Experiment;
  Deployment: Deployment;
}

export function isKindName(value: unknown): value is KindName {
  return typeof value === 'string' && Object.hasOwn(kinds, value);
}
