// The deployment's API key, from a file (a mounted Secret). The file is checked on every request, so a rotated key
// refuses the old one at once: Kubernetes updates a Secret volume by swapping a symlink, which file watchers miss
// but a stat through the path sees (new inode), and a stat costs about a microsecond. Keys are compared as SHA-256
// digests with timingSafeEqual, so neither the key nor its length leaks through timing; keys are never logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Logger } from 'winston';

export type AuthResult = { ok: true } | { ok: false; status: 401 | 403 | 503; reason: string; message: string };

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

export class ApiKeyFile {
  private version = '';
  // Set when the file was read within a second of its mtime: a second write in the same clock tick (file times are
  // only as fine as the kernel's tick) would keep size and mtime, so such a file is re-read until it is settled.
  private racy = false;
  private digests: Buffer[] = [];
  private problem: string | undefined = 'the API key file has not been read';
  /** Times the file was read after a change (for metrics). */
  reloads = 0;

  constructor(
    readonly path: string,
    private readonly logger?: Logger,
  ) {
    this.refresh();
  }

  /** Re-reads the file when it changed; cheap when it did not. */
  refresh(): void {
    let version: string;
    let changedAt: number;
    try {
      const st = statSync(this.path);
      version = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
      changedAt = Math.max(st.mtimeMs, st.ctimeMs);
    } catch (err) {
      this.fail(`the API key file ${this.path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return;
    }
    if (version === this.version && !this.racy) return;
    let keys: string[];
    try {
      keys = readFileSync(this.path, 'utf8')
        .split(/\r?\n/)
        .map((k) => k.trim())
        .filter((k) => k.length > 0);
    } catch (err) {
      this.fail(`the API key file ${this.path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return;
    }
    const changed = version !== this.version;
    this.version = version;
    this.racy = Date.now() - changedAt < 1000;
    if (changed) this.reloads++;
    if (keys.length === 0) {
      this.fail(`the API key file ${this.path} is empty`);
      return;
    }
    this.digests = keys.map(digest);
    if (this.problem !== undefined) this.logger?.info('API key loaded', { file: this.path, keys: keys.length });
    this.problem = undefined;
  }

  private fail(problem: string): void {
    // Fail closed: no key from a file that cannot be read is accepted.
    this.digests = [];
    this.version = '';
    if (problem !== this.problem) this.logger?.error('No API key: every authenticated request is refused', { reason: problem });
    this.problem = problem;
  }

  /** Ready when a key is loaded; otherwise why not. */
  state(): { ready: true } | { ready: false; reason: string } {
    this.refresh();
    return this.problem === undefined ? { ready: true } : { ready: false, reason: this.problem };
  }

  check(authorization: string | undefined): AuthResult {
    this.refresh();
    if (!authorization) return { ok: false, status: 401, reason: 'Unauthorized', message: 'missing Authorization: Bearer <API key> header' };
    const m = BEARER.exec(authorization);
    if (!m) return { ok: false, status: 401, reason: 'Unauthorized', message: 'the Authorization header must be "Bearer <API key>"' };
    if (this.problem !== undefined) return { ok: false, status: 503, reason: 'ApiKeyUnavailable', message: 'the deployment has no API key loaded yet; retry shortly' };
    const presented = digest(m[1]!);
    let match = false;
    // Every key is compared, so the time taken does not say which one matched.
    for (const d of this.digests) match = timingSafeEqual(presented, d) || match;
    return match ? { ok: true } : { ok: false, status: 403, reason: 'Forbidden', message: 'the API key is not valid for this deployment' };
  }
}
