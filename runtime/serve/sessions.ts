// LLM chat sessions, kept in this process's memory: a session is the transcript a generate call with its
// session_id continues. Bounded in count, in messages and in bytes (per session and in all), so a client cannot
// grow the process without limit with a few long prompts; a pod restart (or another replica) does not see them.

export interface Message {
  role: 'user' | 'assistant';
  content: string;
}

export interface Session {
  session_id: string;
  created_at: string;
  last_updated: string;
  messages: Message[];
}

export const SESSION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface SessionStoreOptions {
  /** Oldest-updated sessions are dropped beyond this; default 1000. */
  maxSessions?: number;
  /** Oldest messages are dropped beyond this; default 200. */
  maxMessages?: number;
  /** Oldest messages of a session are dropped while its text is larger than this (UTF-8 bytes); default 1 MiB. */
  maxSessionBytes?: number;
  /** Oldest-updated sessions are dropped while all text together is larger than this; default 64 MiB. */
  maxTotalBytes?: number;
  now?: () => Date;
}

const bytesOf = (m: Message) => Buffer.byteLength(m.content, 'utf8');

export class SessionStore {
  // Map order is insertion order; a session is re-inserted when updated, so the first entry is the stalest.
  private readonly sessions = new Map<string, Session>();
  private readonly bytes = new Map<string, number>();
  private totalBytes = 0;
  private readonly maxSessions: number;
  private readonly maxMessages: number;
  private readonly maxSessionBytes: number;
  private readonly maxTotalBytes: number;
  private readonly now: () => Date;

  constructor(opts: SessionStoreOptions = {}) {
    this.maxSessions = opts.maxSessions ?? 1000;
    this.maxMessages = opts.maxMessages ?? 200;
    this.maxSessionBytes = opts.maxSessionBytes ?? 1024 * 1024;
    this.maxTotalBytes = opts.maxTotalBytes ?? 64 * 1024 * 1024;
    this.now = opts.now ?? (() => new Date());
  }

  /** UTF-8 bytes of text held in all sessions. */
  get size(): { sessions: number; bytes: number } {
    return { sessions: this.sessions.size, bytes: this.totalBytes };
  }

  list(): Omit<Session, 'messages'>[] {
    return [...this.sessions.values()].reverse().map(({ session_id, created_at, last_updated }) => ({ session_id, created_at, last_updated }));
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  delete(id: string): boolean {
    this.totalBytes -= this.bytes.get(id) ?? 0;
    this.bytes.delete(id);
    return this.sessions.delete(id);
  }

  /** The text the engine continues: the transcript so far, then the new prompt. */
  prompt(id: string | undefined, prompt: string): string {
    const s = id === undefined ? undefined : this.sessions.get(id);
    return s ? s.messages.map((m) => m.content).join('') + prompt : prompt;
  }

  /** Records one exchange, creating the session on first use. */
  append(id: string, prompt: string, completion: string): Session {
    const at = this.now().toISOString();
    const s = this.sessions.get(id) ?? { session_id: id, created_at: at, last_updated: at, messages: [] };
    const added: Message[] = [
      { role: 'user', content: prompt },
      { role: 'assistant', content: completion },
    ];
    s.messages.push(...added);
    let size = (this.bytes.get(id) ?? 0) + added.reduce((n, m) => n + bytesOf(m), 0);
    // The newest exchange is kept even when it alone is over the budget: it is what the next call continues.
    // Whole exchanges go, so that a transcript always starts with the user's turn.
    while (s.messages.length > 2 && (s.messages.length > this.maxMessages || size > this.maxSessionBytes)) {
      for (const m of s.messages.splice(0, 2)) size -= bytesOf(m);
    }
    s.last_updated = at;
    this.delete(id);
    this.sessions.set(id, s);
    this.bytes.set(id, size);
    this.totalBytes += size;
    while (this.sessions.size > this.maxSessions || (this.totalBytes > this.maxTotalBytes && this.sessions.size > 1)) this.delete(this.sessions.keys().next().value!);
    return s;
  }
}
