// Conditional GETs for pollers: each answer carries an ETag (a digest of its body), a poll that sends it back in
// If-None-Match gets 304 with no body. Serialised answers are kept per URL and cache version, so polls between
// changes cost a map lookup rather than a projection, a JSON.stringify and a hash.
import { createHash } from 'node:crypto';

/** A strong validator: the same body always gives the same tag, on every replica. */
export function etagOf(body: string | Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`;
}

/**
 * RFC 9110 If-None-Match: "*" or a list of tags; comparison is weak (a W/ prefix is ignored), as the RFC requires
 * for If-None-Match.
 */
export function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const bare = (t: string) => t.trim().replace(/^W\//, '');
  const want = bare(etag);
  return header.split(',').some((t) => t.trim() === '*' || bare(t) === want);
}

export interface CachedAnswer {
  body: string;
  etag: string;
  contentType: string;
}

/**
 * Answers by key, each valid for one version string. Bounded by count and by the characters held (usage exports
 * run to megabytes); least recently used go first.
 */
export class AnswerCache {
  private readonly entries = new Map<string, { version: string; answer: CachedAnswer }>();
  private chars = 0;

  constructor(
    private readonly max = 512,
    private readonly maxChars = 32 * 2 ** 20,
  ) {}

  get(key: string, version: string): CachedAnswer | undefined {
    const e = this.entries.get(key);
    if (e === undefined || e.version !== version) return undefined;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.answer;
  }

  set(key: string, version: string, answer: CachedAnswer): void {
    this.drop(key);
    this.entries.set(key, { version, answer });
    this.chars += answer.body.length;
    while (this.entries.size > this.max || (this.chars > this.maxChars && this.entries.size > 1)) this.drop(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    this.chars -= e.answer.body.length;
    this.entries.delete(key);
  }
}
