// LLM chat sessions, kept in this process's memory: a session is the transcript a generate call with its
// session_id continues. Bounded in count and length so a client cannot grow the process without limit; a pod
// restart (or another replica) does not see them.

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
  now?: () => Date;
}

export class SessionStore {
  // Map order is insertion order; a session is re-inserted when updated, so the first entry is the stalest.
  private readonly sessions = new Map<string, Session>();
  private readonly maxSessions: number;
  private readonly maxMessages: number;
  private readonly now: () => Date;

  constructor(opts: SessionStoreOptions = {}) {
    this.maxSessions = opts.maxSessions ?? 1000;
    this.maxMessages = opts.maxMessages ?? 200;
    this.now = opts.now ?? (() => new Date());
  }

  list(): Omit<Session, 'messages'>[] {
    return [...this.sessions.values()].reverse().map(({ session_id, created_at, last_updated }) => ({ session_id, created_at, last_updated }));
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  delete(id: string): boolean {
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
    s.messages.push({ role: 'user', content: prompt }, { role: 'assistant', content: completion });
    if (s.messages.length > this.maxMessages) s.messages.splice(0, s.messages.length - this.maxMessages);
    s.last_updated = at;
    this.sessions.delete(id);
    this.sessions.set(id, s);
    while (this.sessions.size > this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    return s;
  }
}
