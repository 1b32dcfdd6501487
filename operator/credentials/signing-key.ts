// The operator's signing key: 32 random bytes in one Secret of the operator's own namespace, made by the leader
// the first time it needs it and never changed afterwards (the Secret is immutable). Every replica watches that
// one Secret by name, so a new leader checks the tokens the old one handed out. Run tokens and agent API keys are
// derived from it (derive.ts).
import { randomBytes } from 'node:crypto';
import type { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import type { Informer, InformerOptions } from '../kube/informer.ts';
import { namedSecretInformer, type NamedSecret } from '../kube/named-secret.ts';
import { isAlreadyExists } from '../kube/errors.ts';
import type { Logger } from '../observability/log.ts';
import { MIN_SIGNING_KEY_BYTES } from './derive.ts';

export const DEFAULT_SIGNING_KEY_SECRET = 'arena-operator-signing-key';
const DATA_KEY = 'key';

type KeySecret = NamedSecret<{ key?: Buffer }>;

export interface SigningKeyOptions {
  informerBase: Pick<InformerOptions<KeySecret>, 'kc' | 'logger' | 'transport' | 'metrics'>;
  core: CoreV1Api;
  namespace: string;
  name?: string;
  logger: Logger;
}

function decode(data: Record<string, string> | undefined): Buffer | undefined {
  const raw = data?.[DATA_KEY];
  return raw === undefined ? undefined : Buffer.from(raw, 'base64');
}

export class SigningKey {
  readonly informer: Informer<KeySecret>;
  readonly namespace: string;
  readonly name: string;
  /** What this replica created or read itself, until the watch shows it (or shows it deleted). */
  private own?: Buffer;
  private reported?: string;
  /** One create-or-read at a time: the first admissions of a new leader all ask at once. */
  private pending?: Promise<Buffer>;

  constructor(private readonly o: SigningKeyOptions) {
    this.namespace = o.namespace;
    this.name = o.name ?? DEFAULT_SIGNING_KEY_SECRET;
    this.informer = namedSecretInformer(o.informerBase, { namespace: this.namespace, name: this.name }, (data) => ({ key: decode(data) }));
    this.informer.on('delete', () => (this.own = undefined));
  }

  /** Where the key lives, for messages. */
  get ref(): string {
    return `Secret ${this.namespace}/${this.name}`;
  }

  /** The key when it is known and usable; undefined before the Secret exists or when it holds no usable key. */
  current(): Buffer | undefined {
    const cached = this.informer.get(`${this.namespace}/${this.name}`);
    if (!cached) return this.own;
    if (!this.usable(cached.key)) {
      this.reportUnusable(cached.metadata.resourceVersion);
      return undefined;
    }
    return cached.key;
  }

  /**
   * The key, creating the Secret when there is none yet. Only the leader calls this. An unusable key an admin put
   * there is never overwritten: the error says how to fix it.
   */
  async ensure(): Promise<Buffer> {
    const known = this.current();
    if (known) return known;
    if (this.informer.get(`${this.namespace}/${this.name}`)) throw new Error(this.unusableMessage());
    this.pending ??= this.createOrRead().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async createOrRead(): Promise<Buffer> {
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        labels: { 'app.kubernetes.io/managed-by': 'arena-operator', 'app.kubernetes.io/component': 'signing-key' },
        annotations: {
          'arena.agilerl.com/purpose':
            'Derives the run tokens of training workers and the API keys of agents. Deleting it invalidates the tokens of running workers.',
        },
      },
      type: 'Opaque',
      immutable: true,
      data: { [DATA_KEY]: randomBytes(MIN_SIGNING_KEY_BYTES).toString('base64') },
    };
    let secret: V1Secret;
    try {
      secret = await this.o.core.createNamespacedSecret({ namespace: this.namespace, body });
      this.o.logger.info('signing key created', { namespace: this.namespace, name: this.name });
    } catch (err) {
      // Another replica (or an earlier term of this one) made it first: use theirs.
      if (!isAlreadyExists(err)) throw err;
      secret = await this.o.core.readNamespacedSecret({ namespace: this.namespace, name: this.name });
    }
    const key = decode(secret.data);
    if (!this.usable(key)) throw new Error(this.unusableMessage());
    this.own = key;
    return key;
  }

  private usable(key: Buffer | undefined): key is Buffer {
    return key !== undefined && key.length >= MIN_SIGNING_KEY_BYTES;
  }

  private unusableMessage(): string {
    return `${this.ref} must hold at least ${MIN_SIGNING_KEY_BYTES} random bytes under data.${DATA_KEY}; delete it and the operator creates a new one`;
  }

  private reportUnusable(version: string | undefined): void {
    // Once per version of the Secret, not once per report checked.
    if (this.reported === version) return;
    this.reported = version;
    this.o.logger.error('signing key unusable', { namespace: this.namespace, name: this.name, error: this.unusableMessage() });
  }
}
