import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { lintDockerfile, parseDockerfile, projectDockerfiles, requiredBuildArgs } from './dockerfile-lint.ts';

const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;

/** A Dockerfile that passes every rule; each case below breaks one thing. */
function dockerfile(parts: { base?: string; from?: string; user?: string | null; labels?: string | null; extra?: string; entrypoint?: string } = {}): string {
  return [
    `ARG BASE=${parts.base ?? `node:24.21.0-bookworm-slim@${DIGEST}`}`,
    `FROM ${parts.from ?? '${BASE}'} AS build`,
    'RUN echo build',
    'FROM ${BASE}',
    'ARG VERSION',
    'ARG REVISION',
    parts.labels === null
      ? ''
      : (parts.labels ??
        'LABEL org.opencontainers.image.version="${VERSION}" \\\n  org.opencontainers.image.revision="${REVISION}" \\\n  org.opencontainers.image.source="https://example.com/x"'),
    'COPY --from=build /x /x',
    parts.extra ?? '',
    parts.user === null ? '' : `USER ${parts.user ?? '65532:65532'}`,
    `ENTRYPOINT ${parts.entrypoint ?? '["app"]'}`,
  ].join('\n');
}

const rules = (text: string) => lintDockerfile(text).map((p) => p.rule);

describe('Dockerfile lint', () => {
  const cases: { name: string; text: string; expect: string[] }[] = [
    { name: 'a pinned base through an ARG, a numeric user, OCI labels', text: dockerfile(), expect: [] },
    { name: 'a base ARG with a tag only', text: dockerfile({ base: 'node:24-bookworm-slim' }), expect: ['pinned-base'] },
    { name: 'a base ARG defaulting to latest', text: dockerfile({ base: 'node:latest' }), expect: ['no-latest', 'pinned-base'] },
    { name: 'a base ARG without a default (the build passes it)', text: dockerfile({ base: '' }).replace('ARG BASE=', 'ARG BASE'), expect: [] },
    { name: 'a literal FROM without a digest', text: dockerfile({ from: 'debian:bookworm' }), expect: ['pinned-base'] },
    { name: 'a literal FROM with latest', text: dockerfile({ from: 'debian:latest' }), expect: ['pinned-base', 'no-latest'] },
    { name: 'a literal FROM pinned by digest', text: dockerfile({ from: `debian:bookworm@${DIGEST}` }), expect: [] },
    { name: 'a FROM naming an undeclared ARG', text: dockerfile({ from: '${OTHER}' }), expect: ['pinned-base'] },
    { name: 'no USER in the final stage', text: dockerfile({ user: null }), expect: ['non-root-user'] },
    { name: 'USER root by name', text: dockerfile({ user: 'root' }), expect: ['non-root-user'] },
    { name: 'USER 0', text: dockerfile({ user: '0:0' }), expect: ['non-root-user'] },
    { name: 'a user name instead of a uid', text: dockerfile({ user: 'node' }), expect: ['non-root-user'] },
    { name: 'no OCI labels', text: dockerfile({ labels: null }), expect: ['oci-labels', 'oci-labels', 'oci-labels'] },
    {
      name: 'a label naming an ARG the final stage lacks',
      text: dockerfile({ labels: 'LABEL org.opencontainers.image.version="${TAG}" org.opencontainers.image.revision=x org.opencontainers.image.source=y' }),
      expect: ['oci-labels'],
    },
    { name: 'ADD of a URL', text: dockerfile({ extra: 'ADD https://example.com/tool.tgz /tmp/' }), expect: ['no-add-url'] },
    { name: 'ADD of a local file is fine', text: dockerfile({ extra: 'ADD tool.tgz /tmp/' }), expect: [] },
    { name: 'ENTRYPOINT in shell form', text: dockerfile({ entrypoint: 'app --serve' }), expect: ['exec-form'] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(rules(c.text).sort(), [...c.expect].sort(), JSON.stringify(lintDockerfile(c.text), null, 1));
    });
  }

  test('continuation lines and comments are joined into one instruction at its first line', () => {
    const parsed = parseDockerfile('# syntax=docker/dockerfile:1\nFROM x AS a\nRUN a \\\n  # comment\n  && b\nUSER 1\n');
    assert.deepEqual(
      parsed.map((i) => [i.line, i.keyword, i.args]),
      [
        [2, 'FROM', 'x AS a'],
        [3, 'RUN', 'a && b'],
        [6, 'USER', '1'],
      ],
    );
  });

  test('a base ARG without a default is reported as a required build argument', () => {
    assert.deepEqual(requiredBuildArgs('ARG BASE\nFROM ${BASE}\nUSER 1\n'), ['BASE']);
    assert.deepEqual(requiredBuildArgs(dockerfile()), []);
  });

  test('the project\'s Dockerfiles pass', async () => {
    const files = await projectDockerfiles();
    assert.ok(files.length >= 2, `found ${files.join(', ')}`);
    for (const file of files) {
      const problems = lintDockerfile(await readFile(file, 'utf8'));
      assert.deepEqual(problems, [], `${file}: ${JSON.stringify(problems)}`);
    }
  });
});
