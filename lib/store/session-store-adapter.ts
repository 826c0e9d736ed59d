import type { TokenStore } from './token-store.js';

/** The parts of an express-session store that passport-logto uses. */
export interface SessionStoreLike {
  get(id: string, callback: (error: unknown, session?: object | null) => void): void;
  set(id: string, session: object, callback?: (error?: unknown) => void): void;
  destroy(id: string, callback?: (error?: unknown) => void): void;
}

/** What is written under a key: shaped like a session, so that every store derives its expiry. */
interface StoredEntry {
  cookie: { expires: string; originalMaxAge: number };
  value: string;
}

function call<T>(run: (callback: (error: unknown, value?: T) => void) => void): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    run((error, value) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(value)));
  });
}

/**
 * The default {@link TokenStore}: the app's own express-session store. With connect-redis every
 * instance shares it with no extra code; with MemoryStore it stays in process memory. Entries
 * look like sessions (with a `cookie.expires`) because that is how stores learn their lifetime.
 */
export class SessionStoreTokenStore implements TokenStore {
  constructor(
    private readonly store: SessionStoreLike,
    /** Keeps these keys apart from session ids. */
    private readonly prefix = 'passport-logto:',
  ) {}

  async get(key: string): Promise<string | undefined> {
    const entry = (await call<object | null>((done) => this.store.get(this.prefix + key, done))) as Partial<StoredEntry> | null | undefined;
    if (!entry || typeof entry.value !== 'string') return undefined;
    // Some stores return expired entries and leave expiry to the reader.
    const expires = Date.parse(entry.cookie?.expires ?? '');
    return Number.isFinite(expires) && expires <= Date.now() ? undefined : entry.value;
  }

  async set(key: string, value: string, ttl: number): Promise<void> {
    const entry: StoredEntry = { cookie: { expires: new Date(Date.now() + ttl).toISOString(), originalMaxAge: ttl }, value };
    await call((done) => this.store.set(this.prefix + key, entry, done));
  }

  async delete(key: string): Promise<void> {
    await call((done) => this.store.destroy(this.prefix + key, done));
  }
}

/**
 * The same over a store that lives in this process (express-session's MemoryStore): no other
 * process can write to it, so taking turns in memory makes the conditional writes atomic, and no
 * pause is needed to let racing writers land. Plain writes take their turn too: MemoryStore
 * answers a read after a pause, and a write landing in that pause must not be overwritten.
 */
export class InProcessSessionStoreTokenStore extends SessionStoreTokenStore {
  private readonly turns = new Map<string, Promise<unknown>>();

  override set(key: string, value: string, ttl: number): Promise<void> {
    return this.inTurn(key, () => super.set(key, value, ttl));
  }

  override delete(key: string): Promise<void> {
    return this.inTurn(key, () => super.delete(key));
  }

  setIfAbsent(key: string, value: string, ttl: number): Promise<boolean> {
    return this.inTurn(key, async () => {
      if ((await this.get(key)) !== undefined) return false;
      await super.set(key, value, ttl);
      return true;
    });
  }

  deleteIfEquals(key: string, value: string): Promise<void> {
    return this.inTurn(key, async () => {
      if ((await this.get(key)) === value) await super.delete(key);
    });
  }

  setIfEquals(key: string, expected: string, value: string, ttl: number): Promise<boolean> {
    return this.inTurn(key, async () => {
      if ((await this.get(key)) !== expected) return false;
      await super.set(key, value, ttl);
      return true;
    });
  }

  private inTurn<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.turns.get(key) ?? Promise.resolve();
    const run = previous.then(task, task);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.turns.set(key, settled);
    void settled.then(() => {
      if (this.turns.get(key) === settled) this.turns.delete(key);
    });
    return run;
  }
}

/** Whether a session store keeps its data in this process (express-session's MemoryStore). */
export function isInProcessStore(store: object): boolean {
  return store.constructor?.name === 'MemoryStore';
}
