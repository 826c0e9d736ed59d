/**
 * Where each sign-in's tokens live: a small key-value interface that any shared store can offer,
 * with an in-memory implementation for a single process.
 */

/**
 * A key-value store for passport-logto's records (each sign-in's tokens, callback claims, refresh
 * locks). Values are strings; `ttl` is in milliseconds. Give it with the `tokenStore` option; by
 * default the app's express-session store (`req.sessionStore`) is used.
 *
 * The two atomic operations are optional. Without them passport-logto emulates them with `get`
 * and `set` plus a read-back, which keeps two instances apart in practice but not with certainty;
 * a store that offers them (as {@link RedisTokenStore} does) makes a storm of requests across
 * instances cost exactly one refresh.
 */
export interface TokenStore {
  get(key: string): Promise<string | null | undefined>;
  set(key: string, value: string, ttl: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Sets `key` only when it is absent, atomically; true when it was set. */
  setIfAbsent?(key: string, value: string, ttl: number): Promise<boolean>;
  /** Deletes `key` only while it holds `value`, atomically. */
  deleteIfEquals?(key: string, value: string): Promise<void>;
  /**
   * Adds `members` to the set at `key` (an empty list only extends it), atomically, and keeps the
   * set at least `ttl` ms from now (a longer life it already has stays). Used for the back-channel
   * logout index; without it, adds take turns under a lock made of `setIfAbsent`.
   */
  addToSet?(key: string, members: string[], ttl: number): Promise<void>;
  /** The members of the set at `key` written by {@link addToSet}; an empty list when there is none. */
  setMembers?(key: string): Promise<string[]>;
}

export interface MemoryTokenStoreOptions {
  /** How many keys are kept at most; the ones closest to expiry go first. Default 100,000. */
  maxEntries?: number;
}

/**
 * A {@link TokenStore} in process memory, with expiry and atomic operations. Right for one app
 * instance (with cookie-session, say); several instances need a shared store.
 */
export class MemoryTokenStore implements TokenStore {
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();
  private readonly maxEntries: number;

  constructor(options: MemoryTokenStoreOptions = {}) {
    this.maxEntries = options.maxEntries ?? 100_000;
  }

  get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.live(key));
  }

  set(key: string, value: string, ttl: number): Promise<void> {
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: Date.now() + ttl });
    this.prune();
    return Promise.resolve();
  }

  delete(key: string): Promise<void> {
    this.entries.delete(key);
    return Promise.resolve();
  }

  setIfAbsent(key: string, value: string, ttl: number): Promise<boolean> {
    if (this.live(key) !== undefined) return Promise.resolve(false);
    return this.set(key, value, ttl).then(() => true);
  }

  deleteIfEquals(key: string, value: string): Promise<void> {
    if (this.live(key) === value) this.entries.delete(key);
    return Promise.resolve();
  }

  addToSet(key: string, members: string[], ttl: number): Promise<void> {
    const entry = this.live(key) === undefined ? undefined : this.entries.get(key);
    if (!entry && members.length === 0) return Promise.resolve();
    const all = new Set(entry ? this.membersOf(entry.value) : []);
    for (const member of members) all.add(member);
    const expiresAt = Math.max(entry?.expiresAt ?? 0, Date.now() + ttl);
    return this.set(key, JSON.stringify([...all]), expiresAt - Date.now());
  }

  setMembers(key: string): Promise<string[]> {
    const value = this.live(key);
    return Promise.resolve(value === undefined ? [] : this.membersOf(value));
  }

  private membersOf(value: string): string[] {
    try {
      const parsed: unknown = JSON.parse(value);
      return Array.isArray(parsed) ? parsed.filter((member): member is string => typeof member === 'string') : [];
    } catch {
      return [];
    }
  }

  private live(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Drops expired keys from the oldest writes on, and the oldest while over the bound. */
  private prune(): void {
    const now = Date.now();
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt > now && this.entries.size <= this.maxEntries) break;
      this.entries.delete(key);
    }
  }
}
