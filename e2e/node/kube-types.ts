// API objects as they arrive from list/watch: plain JSON, timestamps as strings.
import type {
  V1ConfigMap,
  V1Container,
  V1ContainerState,
  V1ContainerStateTerminated,
  V1ContainerStatus,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1PodCondition,
  V1PodStatus,
  V1Probe,
  V1Secret,
  V1Volume,
} from '@kubernetes/client-node';
import type { Wire } from '../../operator/kube/informer.ts';

export type Pod = Wire<V1Pod>;
export type Container = Wire<V1Container>;
export type Volume = Wire<V1Volume>;
export type Probe = Wire<V1Probe>;
export type PodStatus = Wire<V1PodStatus>;
export type PodCondition = Wire<V1PodCondition>;
export type ContainerStatus = Wire<V1ContainerStatus>;
export type ContainerState = Wire<V1ContainerState>;
export type TerminatedState = Wire<V1ContainerStateTerminated>;
export type ConfigMap = Wire<V1ConfigMap>;
export type Secret = Wire<V1Secret>;
export type PersistentVolumeClaim = Wire<V1PersistentVolumeClaim>;
export type PersistentVolume = Wire<V1PersistentVolume>;

/** Reads the objects a pod refers to; undefined when the object does not exist. */
export interface ObjectReader {
  configMap(namespace: string, name: string): Promise<ConfigMap | undefined>;
  secret(namespace: string, name: string): Promise<Secret | undefined>;
}

/** 'namespace/name' */
export function podKey(pod: Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}

/** RFC 3339 with whole seconds, the precision metav1.Time keeps, so a status read back compares equal. */
export function kubeTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
