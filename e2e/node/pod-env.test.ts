import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ContainerConfigError, containerEnv, expandVars, fieldValue, resourceValue } from './pod-env.ts';
import type { Container, ObjectReader, Pod } from './kube-types.ts';

const pod: Pod = {
  metadata: { name: 'p', namespace: 'ns', uid: 'u-1', labels: { app: 'x', tier: 'web' }, annotations: { note: 'hi "there"' } },
  spec: { nodeName: 'n1', serviceAccountName: 'sa', containers: [] },
};
const facts = { podIP: '127.200.0.7', hostIP: '127.0.0.1' };
const b64 = (s: string) => Buffer.from(s).toString('base64');

const reader: ObjectReader = {
  configMap: async (_ns, name) => (name === 'cm' ? { data: { a: '1', b: '2', 'bad=key': 'x' } } : undefined),
  secret: async (_ns, name) => (name === 's' ? { data: { pw: b64('secret!') } } : undefined),
};

function container(more: Partial<Container>): Container {
  return { name: 'c', ...more };
}

describe('expandVars', () => {
  const vars = { A: 'x', B: 'y' };
  const cases: [string, string][] = [
    ['$(A)-$(B)', 'x-y'],
    ['$$(A)', '$(A)'],
    ['$(MISSING)', '$(MISSING)'],
    ['cost $5', 'cost $5'],
    ['$(A', '$(A'],
    ['trailing $', 'trailing $'],
  ];
  for (const [input, want] of cases) test(JSON.stringify(input), () => assert.equal(expandVars(input, vars), want));
});

describe('fieldValue', () => {
  const cases: [string, string][] = [
    ['metadata.name', 'p'],
    ['metadata.namespace', 'ns'],
    ['metadata.uid', 'u-1'],
    ["metadata.labels['tier']", 'web'],
    ["metadata.annotations['note']", 'hi "there"'],
    ["metadata.labels['none']", ''],
    ['spec.nodeName', 'n1'],
    ['spec.serviceAccountName', 'sa'],
    ['status.podIP', '127.200.0.7'],
    ['status.podIPs', '127.200.0.7'],
    ['status.hostIP', '127.0.0.1'],
  ];
  for (const [path, want] of cases) test(path, () => assert.equal(fieldValue(pod, path, facts), want));

  test('whole label maps only in volumes, one key="value" per line', () => {
    assert.throws(() => fieldValue(pod, 'metadata.labels', facts), ContainerConfigError);
    assert.equal(fieldValue(pod, 'metadata.labels', facts, true), 'app="x"\ntier="web"');
  });
});

describe('resourceValue', () => {
  const c = container({ resources: { limits: { cpu: '1500m', memory: '1Gi' }, requests: { cpu: '250m' } } });
  const allocatable = { cpu: '8', memory: '32Gi' };
  const cases: [string, string, string | undefined, string][] = [
    ['cpu limit rounds up to whole cores', 'limits.cpu', undefined, '2'],
    ['cpu limit in millicores', 'limits.cpu', '1m', '1500'],
    ['server-defaulted divisor 0 means 1', 'limits.cpu', '0', '2'],
    ['memory in Mi', 'limits.memory', '1Mi', '1024'],
    ['cpu request', 'requests.cpu', '1m', '250'],
    ['unset request is zero', 'requests.memory', undefined, '0'],
  ];
  for (const [name, resource, divisor, want] of cases) test(name, () => assert.equal(resourceValue(c, resource, divisor, allocatable), want));

  test('an unset limit is the node allocatable', () => {
    assert.equal(resourceValue(container({}), 'limits.memory', '1Gi', allocatable), '32');
  });
});

describe('containerEnv', () => {
  test('envFrom, then env in order, with references, downward API, ConfigMap and Secret keys', async () => {
    const env = await containerEnv({
      pod,
      facts,
      reader,
      allocatable: {},
      base: { PATH: '/bin', HOME: '/root' },
      container: container({
        envFrom: [{ configMapRef: { name: 'cm' }, prefix: 'CM_' }, { secretRef: { name: 'missing', optional: true } }],
        env: [
          { name: 'HOME', value: '/home/app' },
          { name: 'NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'GREETING', value: 'hello $(NAME) from $(CM_a)' },
          { name: 'PW', valueFrom: { secretKeyRef: { name: 's', key: 'pw' } } },
          { name: 'B', valueFrom: { configMapKeyRef: { name: 'cm', key: 'b' } } },
          { name: 'OPT', valueFrom: { configMapKeyRef: { name: 'cm', key: 'nope', optional: true } } },
        ],
      }),
    });
    assert.deepEqual(env, {
      PATH: '/bin',
      HOME: '/home/app',
      CM_a: '1',
      CM_b: '2',
      NAME: 'p',
      GREETING: 'hello p from 1',
      PW: 'secret!',
      B: '2',
    });
  });

  const failures: Record<string, { env: Container['env']; envFrom?: Container['envFrom']; message: RegExp }> = {
    'missing secret': { env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'nope', key: 'k' } } }], message: /secret "nope" not found/ },
    'missing key': { env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'cm', key: 'zz' } } }], message: /couldn't find key zz in ConfigMap ns\/cm/ },
    'missing envFrom configmap': { env: [], envFrom: [{ configMapRef: { name: 'nope' } }], message: /configmap "nope" not found/ },
  };
  for (const [name, f] of Object.entries(failures)) {
    test(`${name} is a CreateContainerConfigError`, async () => {
      await assert.rejects(
        containerEnv({ pod, facts, reader, allocatable: {}, base: {}, container: container({ env: f.env, envFrom: f.envFrom }) }),
        (err: Error) => err instanceof ContainerConfigError && f.message.test(err.message),
      );
    });
  }
});
