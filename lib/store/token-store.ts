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
