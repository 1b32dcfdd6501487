// Container image references: [registry/]repository[:tag][@sha256:digest], as Docker parses them (a first path
// component with a dot, a colon or "localhost" is a registry host).

export interface ImageRef {
  registry?: string;
  repository: string;
  tag?: string;
  digest?: string;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const REPOSITORY = /^[a-z0-9]+([._-]+[a-z0-9]+)*(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*$/;

export function parseImageRef(ref: string): ImageRef {
  const bad = (why: string) => new Error(`image reference ${JSON.stringify(ref)}: ${why}`);
  let rest = ref.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad('the digest must be sha256: and 64 lowercase hex digits');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`tag ${JSON.stringify(tag)} is not a valid tag`);
  }
  let registry: string | undefined;
  const slash = rest.indexOf('/');
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  if (!REPOSITORY.test(rest)) throw bad(`repository ${JSON.stringify(rest)} is not a valid repository name`);
  if (tag === 'latest') throw bad('the tag latest is not allowed: a bundle pins what it runs');
  return { ...(registry ? { registry } : {}), repository: rest, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

export function formatImageRef(r: ImageRef): string {
  return `${r.registry ? `${r.registry}/` : ''}${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}
