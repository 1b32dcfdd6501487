// A container's environment, computed the way the kubelet does: envFrom sources in order, then env entries in
// order, each value able to refer to the variables before it with $(NAME); values from the downward API
// (fieldRef, resourceFieldRef) and from ConfigMaps and Secrets read through the API.
import { parseCpuMilli, parseMemoryBytes } from '../../operator/scheduler/quantity.ts';
import type { Container, ObjectReader, Pod } from './kube-types.ts';

/** A container cannot be created from its spec and the objects it names (the kubelet's CreateContainerConfigError). */
export class ContainerConfigError extends Error {
  override readonly name = 'ContainerConfigError';
}

/** Facts about a pod that live outside its spec. */
export interface PodFacts {
  podIP?: string;
  hostIP: string;
}

/** What the node can give a container whose limits are unset (resourceFieldRef limits.* fall back to it). */
export type Allocatable = Record<string, string>;

/** Expands $(NAME) references with `vars`; $$ is a literal $, unknown references stay as written (kubelet rules). */
export function expandVars(input: string, vars: Readonly<Record<string, string>>): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const ch = input[i];
    if (ch !== '$' || i + 1 >= input.length) {
      out += ch;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const end = input.indexOf(')', i + 2);
      if (end < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, end);
      out += Object.hasOwn(vars, name) ? vars[name] : `$(${name})`;
      i = end;
    } else {
      out += ch;
    }
  }
  return out;
}

const mapKey = /^metadata\.(labels|annotations)\['(.*)'\]$/;

function formatMap(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(map![k])}`)
    .join('\n');
}

/** The value of a downward-API fieldRef. Whole label/annotation maps are allowed only in volumes. */
export function fieldValue(pod: Pod, fieldPath: string, facts: PodFacts, allowMaps = false): string {
  const m = pod.metadata ?? {};
  const keyed = mapKey.exec(fieldPath);
  if (keyed) {
    const map = keyed[1] === 'labels' ? m.labels : m.annotations;
    return map?.[keyed[2]!] ?? '';
  }
  switch (fieldPath) {
    case 'metadata.name':
      return m.name ?? '';
    case 'metadata.namespace':
      return m.namespace ?? '';
    case 'metadata.uid':
      return m.uid ?? '';
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP':
    case 'status.hostIPs':
      return facts.hostIP;
    case 'status.podIP':
    case 'status.podIPs':
      return facts.podIP ?? '';
    case 'metadata.labels':
    case 'metadata.annotations':
      if (allowMaps) return formatMap(fieldPath === 'metadata.labels' ? m.labels : m.annotations);
  }
  throw new ContainerConfigError(`unsupported fieldRef fieldPath ${JSON.stringify(fieldPath)}`);
}

/** The value of a resourceFieldRef: the quantity divided by the divisor, rounded up (kubelet rules). */
export function resourceValue(container: Container, resource: string, divisor: string | undefined, allocatable: Allocatable): string {
  const dot = resource.indexOf('.');
  const kind = resource.slice(0, dot);
  const name = resource.slice(dot + 1);
  if (dot < 0 || (kind !== 'limits' && kind !== 'requests')) {
    throw new ContainerConfigError(`unsupported resourceFieldRef resource ${JSON.stringify(resource)}`);
  }
  const set = kind === 'limits' ? container.resources?.limits : container.resources?.requests;
  // Like the kubelet: an unset limit is the node's allocatable amount; an unset request is zero.
  const quantity = set?.[name] ?? (kind === 'limits' ? allocatable[name] : undefined) ?? '0';
  // The API server defaults an unset divisor to "0", which means 1 (as the kubelet reads it).
  if (name === 'cpu') {
    const d = parseCpuMilli(divisor ?? '1', 'divisor') || 1000;
    return String(Math.ceil(parseCpuMilli(quantity, resource) / d));
  }
  if (name === 'memory' || name === 'ephemeral-storage' || name.startsWith('hugepages-')) {
    const d = parseMemoryBytes(divisor ?? '1', 'divisor') || 1;
    return String(Math.ceil(parseMemoryBytes(quantity, resource) / d));
  }
  throw new ContainerConfigError(`unsupported resourceFieldRef resource ${JSON.stringify(resource)}`);
}

function decode(data: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  return out;
}

export interface EnvInput {
  pod: Pod;
  container: Container;
  /** Variables every process gets (PATH, HOME, HOSTNAME, POD_IP, the image's env); the spec overrides them. */
  base: Record<string, string>;
  facts: PodFacts;
  allocatable: Allocatable;
  reader: ObjectReader;
}

export async function containerEnv(input: EnvInput): Promise<Record<string, string>> {
  const { pod, container, reader } = input;
  const ns = pod.metadata?.namespace ?? 'default';
  const env: Record<string, string> = { ...input.base };

  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    let data: Record<string, string> | undefined;
    if (from.configMapRef) {
      const cm = await reader.configMap(ns, from.configMapRef.name ?? '');
      if (!cm && !from.configMapRef.optional) throw new ContainerConfigError(`configmap "${from.configMapRef.name}" not found`);
      data = { ...cm?.data, ...decode(cm?.binaryData) };
    } else if (from.secretRef) {
      const secret = await reader.secret(ns, from.secretRef.name ?? '');
      if (!secret && !from.secretRef.optional) throw new ContainerConfigError(`secret "${from.secretRef.name}" not found`);
      data = decode(secret?.data);
    }
    for (const [k, v] of Object.entries(data ?? {})) {
      if (!k.includes('=')) env[prefix + k] = v;
    }
  }

  for (const e of container.env ?? []) {
    const src = e.valueFrom;
    if (!src) {
      env[e.name] = expandVars(e.value ?? '', env);
      continue;
    }
    let value: string | undefined;
    if (src.fieldRef) {
      value = fieldValue(pod, src.fieldRef.fieldPath, input.facts);
    } else if (src.resourceFieldRef) {
      const r = src.resourceFieldRef;
      value = resourceValue(container, r.resource, r.divisor, input.allocatable);
    } else if (src.configMapKeyRef) {
      const ref = src.configMapKeyRef;
      const cm = await reader.configMap(ns, ref.name ?? '');
      if (!cm) {
        if (ref.optional) continue;
        throw new ContainerConfigError(`configmap "${ref.name}" not found`);
      }
      value = cm.data?.[ref.key] ?? (cm.binaryData?.[ref.key] !== undefined ? decode(cm.binaryData)[ref.key] : undefined);
      if (value === undefined) {
        if (ref.optional) continue;
        throw new ContainerConfigError(`couldn't find key ${ref.key} in ConfigMap ${ns}/${ref.name}`);
      }
    } else if (src.secretKeyRef) {
      const ref = src.secretKeyRef;
      const secret = await reader.secret(ns, ref.name ?? '');
      if (!secret) {
        if (ref.optional) continue;
        throw new ContainerConfigError(`secret "${ref.name}" not found`);
      }
      value = decode(secret.data)[ref.key];
      if (value === undefined) {
        if (ref.optional) continue;
        throw new ContainerConfigError(`couldn't find key ${ref.key} in Secret ${ns}/${ref.name}`);
      }
    } else {
      throw new ContainerConfigError(`env ${e.name}: unsupported valueFrom source`);
    }
    env[e.name] = value;
  }
  return env;
}
