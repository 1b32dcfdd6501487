// The plugin's API access: the kubeconfig chosen by the flags (as kubectl chooses it), the namespace, and typed reads
// and writes of the arena.agilerl.com kinds through CustomObjectsApi. A missing object becomes an error that names
// the closest existing ones.
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { GROUP, VERSION, kinds } from '../api/v1alpha1/index.ts';
import type { Experiment } from '../api/v1alpha1/experiment.ts';
import type { Deployment } from '../api/v1alpha1/deployment.ts';
import type { ResourceClass } from '../api/v1alpha1/resourceclass.ts';
import type { TrainingCluster } from '../api/v1alpha1/trainingcluster.ts';
import { isNotFound, toKubeError } from '../kube/errors.ts';
import { PluginError } from './format.ts';
import { closest } from './suggest.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export interface ConnectionFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

export function loadKubeConfig(flags: ConnectionFlags): KubeConfig {
  const kc = new KubeConfig();
  if (flags.kubeconfig) kc.loadFromFile(flags.kubeconfig);
  else kc.loadFromDefault();
  if (flags.context) {
    const names = kc.getContexts().map((c) => c.name);
    if (!names.includes(flags.context)) {
      throw new PluginError(`context ${JSON.stringify(flags.context)} is not in the kubeconfig; it has: ${names.join(', ') || 'none'}`);
    }
    kc.setCurrentContext(flags.context);
  }
  if (!kc.getCurrentCluster()) throw new PluginError('no cluster to talk to: set KUBECONFIG, or pass --kubeconfig and --context');
  return kc;
}

type NamespacedKind = 'Experiment' | 'Deployment';

/** A conditional write lost to another writer (the operator writing status counts): read again and redo. */
export class ConflictError extends PluginError {}
const what: Record<NamespacedKind, string> = { Experiment: 'experiment', Deployment: 'agent (Deployment)' };

/** A message for people from any API failure. */
export function describeApiError(err: unknown, doing: string): PluginError {
  if (err instanceof PluginError) return err;
  const e = toKubeError(err);
  const detail = e.causes?.length ? `: ${e.causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join('; ')}` : '';
  const hint =
    e.reason === 'Forbidden'
      ? ' (your account is not allowed to; ask your cluster admin)'
      : e.reason === 'NetworkError'
        ? ' (is the cluster reachable? check kubectl config current-context)'
        : e.reason === 'NotFound' && /the server could not find the requested resource/i.test(e.message)
          ? ' (the arena.agilerl.com CRDs are not installed in this cluster)'
          : '';
  return new PluginError(`${doing}: ${e.message}${detail}${hint}`);
}

export class ArenaClient {
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;

  constructor(
    readonly kc: KubeConfig,
    readonly namespace: string,
  ) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
  }

  static connect(flags: ConnectionFlags): ArenaClient {
    const kc = loadKubeConfig(flags);
    const ns = flags.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
    return new ArenaClient(kc, ns);
  }

  private base(kind: keyof typeof kinds) {
    return { group: GROUP, version: VERSION, plural: kinds[kind].plural };
  }

  async get<T extends Experiment | Deployment>(kind: NamespacedKind, name: string): Promise<T> {
    try {
      return (await this.custom.getNamespacedCustomObject({ ...this.base(kind), namespace: this.namespace, name })) as T;
    } catch (err) {
      if (!isNotFound(err)) throw describeApiError(err, `reading ${what[kind]} ${name}`);
      throw await this.notFound(kind, name);
    }
  }

  /** "not found" with the names it might have been, here and (if the account may list them) in other namespaces. */
  private async notFound(kind: NamespacedKind, name: string): Promise<PluginError> {
    const here = await this.list<Experiment | Deployment>(kind).catch(() => undefined);
    const names = (here ?? []).map((o) => o.metadata!.name!);
    const near = closest(name, names);
    let msg = `${what[kind]} ${JSON.stringify(name)} not found in namespace ${this.namespace}`;
    if (near.length) msg += `; did you mean ${near.map((n) => JSON.stringify(n)).join(' or ')}?`;
    else if (here && names.length === 0) msg += ` (there are none there)`;
    const elsewhere = await this.custom
      .listClusterCustomObject({ ...this.base(kind), fieldSelector: `metadata.name=${name}` })
      .then((l) => ((l as { items: Experiment[] }).items ?? []).map((o) => o.metadata!.namespace!))
      .catch(() => []);
    if (elsewhere.length) msg += `. It exists in namespace ${elsewhere.join(', ')}: add -n ${elsewhere[0]}`;
    else if (!near.length && names.length) msg += `. ${kind === 'Experiment' ? 'kubectl get experiments' : 'kubectl get agents'} lists them`;
    return new PluginError(msg);
  }

  async list<T>(kind: keyof typeof kinds, opts: { allNamespaces?: boolean } = {}): Promise<T[]> {
    const scope = kinds[kind].scope;
    const res =
      scope === 'Cluster' || opts.allNamespaces
        ? await this.custom.listClusterCustomObject(this.base(kind))
        : await this.custom.listNamespacedCustomObject({ ...this.base(kind), namespace: this.namespace });
    return ((res as { items?: T[] }).items ?? []) as T[];
  }

  async getClusterScoped<T extends ResourceClass | TrainingCluster>(kind: 'ResourceClass' | 'TrainingCluster', name: string): Promise<T | undefined> {
    try {
      return (await this.custom.getClusterCustomObject({ ...this.base(kind), name })) as T;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw describeApiError(err, `reading ${kind} ${name}`);
    }
  }

  async patch<T>(kind: NamespacedKind, name: string, body: object): Promise<T> {
    try {
      return (await this.custom.patchNamespacedCustomObject({ ...this.base(kind), namespace: this.namespace, name, body }, mergePatch)) as T;
    } catch (err) {
      if (toKubeError(err).reason === 'Conflict') throw new ConflictError(`${what[kind]} ${name} kept changing while this command ran; run it again`);
      throw describeApiError(err, `updating ${what[kind]} ${name}`);
    }
  }

  async create<T>(kind: NamespacedKind, body: Experiment | Deployment): Promise<T> {
    try {
      return (await this.custom.createNamespacedCustomObject({ ...this.base(kind), namespace: this.namespace, body })) as T;
    } catch (err) {
      if (toKubeError(err).reason === 'AlreadyExists') {
        throw new PluginError(`${what[kind]} ${body.metadata?.name} already exists in namespace ${this.namespace}: choose another --name`);
      }
      throw describeApiError(err, `creating ${what[kind]} ${body.metadata?.name}`);
    }
  }

  async exists(kind: NamespacedKind, name: string): Promise<boolean> {
    try {
      await this.custom.getNamespacedCustomObject({ ...this.base(kind), namespace: this.namespace, name });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw describeApiError(err, `reading ${what[kind]} ${name}`);
    }
  }
}
