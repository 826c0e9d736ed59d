import { LogtoError } from '../errors.js';
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
   * Replaces the value at `key` with `value` (living `ttl` ms from now) only while it still holds
   * `expected`, atomically; true when it was replaced. A refresh writes a sign-in's record through
   * it, so that a record ended meanwhile (on any instance) can never be written back. Without it,
   * every read of a record also reads the sign-in's end flag, which outlives any record: one more
   * `get` per store read (see `SignInRecords`).
   */
  setIfEquals?(key: string, expected: string, value: string, ttl: number): Promise<boolean>;
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
  /**
   * How many sign-in entries are kept at most (token records, ended marks, refresh marks and locks,
   * back-channel logout indexes): expired ones go first, then those closest to expiry, with a
   * warning (once per burst) and a `token_store_evicted` error on each such sign-in's next request.
   * Default 100,000.
   */
  maxEntries?: number;
  /**
   * How many short-lived entries are kept at most, apart from the sign-in entries: callback claims
   * (which any visitor can cause) and back-channel logout replay marks. When full, the expired go
   * first, then those closest to expiry. Default 10,000.
   */
  maxShortLivedEntries?: number;
}

/**
 * Keys of short-lived entries that requests without a sign-in can cause: they never displace a
 * sign-in. Locks and refresh marks are short-lived too, but only a sign-in makes them, and losing
 * one would let two refreshes race: they stay with the sign-ins.
 */
const shortLivedPrefixes = ['callback:', 'logout-jti:'];
/** How many evicted keys are remembered, to answer each one's next read with an error. */
const maxRememberedEvictions = 10_000;
/** Evictions closer together than this make one burst, with one warning. */
const burstGap = 60_000;

/** An entry and its expiry, in ms since the epoch. */
interface Entry<V> {
  value: V;
  expiresAt: number;
}

/**
 * A bounded set of entries, with a heap by expiry so that making room costs O(log n): expired
 * entries go first, then those closest to expiry. Generic in the value, so that a space can hold
 * other kinds of entries than strings.
 */
class Space<V> {
  readonly entries = new Map<string, Entry<V>>();
  /** Min-heap by expiry; an item whose entry was replaced or deleted is skipped when it surfaces. */
  private heap: Array<{ key: string; entry: Entry<V> }> = [];

  constructor(readonly max: number) {}

  /** The entry under `key` unless it has expired (then it goes). */
  live(key: string, now = Date.now()): Entry<V> | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  /** Stores `entry`; returns the keys of live entries that had to go to stay within the bound. */
  put(key: string, entry: Entry<V>): string[] {
    this.entries.set(key, entry);
    this.push({ key, entry });
    if (this.entries.size <= this.max) return [];
    const now = Date.now();
    // Expired entries never count: all of them go before anything live does.
    while (this.heap.length > 0 && this.heap[0]!.entry.expiresAt <= now) this.drop(this.pop()!);
    const evicted: string[] = [];
    while (this.entries.size > this.max && this.heap.length > 0) {
      const item = this.pop()!;
      if (this.drop(item)) evicted.push(item.key);
    }
    return evicted;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Deletes the item's entry if it is still the current one under its key. */
  private drop(item: { key: string; entry: Entry<V> }): boolean {
    if (this.entries.get(item.key) !== item.entry) return false;
    this.entries.delete(item.key);
    return true;
  }

  private push(item: { key: string; entry: Entry<V> }): void {
    // Items of replaced or deleted entries pile up under rewrites: rebuild when they dominate.
    if (this.heap.length > 2 * this.entries.size + 1024) {
      this.heap = [...this.entries].map(([key, entry]) => ({ key, entry })).sort((a, b) => a.entry.expiresAt - b.entry.expiresAt);
    }
    const heap = this.heap;
    heap.push(item);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (heap[parent]!.entry.expiresAt <= item.entry.expiresAt) break;
      heap[index] = heap[parent]!;
      index = parent;
    }
    heap[index] = item;
  }

  private pop(): { key: string; entry: Entry<V> } | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.entry.expiresAt < heap[left]!.entry.expiresAt ? right : left;
      if (heap[child]!.entry.expiresAt >= last.entry.expiresAt) break;
      heap[index] = heap[child]!;
      index = child;
    }
    heap[index] = last;
    return top;
  }
}

/**
 * A {@link TokenStore} in process memory, with expiry and atomic operations. Right for one app
 * instance (with cookie-session, say); several instances need a shared store, and every record
 * is lost when the process restarts.
 *
 * Its limits: at most `maxEntries` sign-in entries (about one per signed-in user, plus a few
 * short-lived ones per refresh) and `maxShortLivedEntries` callback claims, each a few hundred
 * bytes to a few kilobytes (a token record holds the ID, refresh and access tokens). Callback
 * claims, which any visitor can cause, live apart and never displace a sign-in. Expired entries
 * are dropped before anything live. When the sign-in entries are full, those closest to expiry go:
 * a warning is emitted (once per burst) and that sign-in's next request fails with
 * `token_store_evicted`, after which it is signed out. Raise `maxEntries`, or use a shared store
 * such as {@link RedisTokenStore}, if that happens.
 */
export class MemoryTokenStore implements TokenStore {
  /** Entries of sign-ins: what must never go silently. */
  private readonly signIns: Space<string>;
  /** Callback claims and other short-lived entries that any visitor can cause. */
  private readonly shortLived: Space<string>;
  /** Keys of sign-in entries evicted lately, oldest first; the next read of each fails once. */
  private readonly evicted = new Set<string>();
  private lastEviction = -Infinity;

  constructor(options: MemoryTokenStoreOptions = {}) {
    this.signIns = new Space(bound(options.maxEntries, 'maxEntries', 100_000));
    this.shortLived = new Space(bound(options.maxShortLivedEntries, 'maxShortLivedEntries', 10_000));
  }

  get(key: string): Promise<string | undefined> {
    const entry = this.spaceOf(key).live(key);
    if (entry === undefined && this.evicted.delete(key)) {
      return Promise.reject(
        new LogtoError(
          'token_store_evicted',
          `passport-logto: MemoryTokenStore was full (maxEntries ${this.signIns.max}) and dropped this sign-in's tokens; sign in again. Raise maxEntries or use a shared store such as RedisTokenStore.`,
        ),
      );
    }
    return Promise.resolve(entry?.value);
  }

  set(key: string, value: string, ttl: number): Promise<void> {
    this.write(key, value, ttl);
    return Promise.resolve();
  }

  delete(key: string): Promise<void> {
    this.spaceOf(key).delete(key);
    this.evicted.delete(key);
    return Promise.resolve();
  }

  setIfAbsent(key: string, value: string, ttl: number): Promise<boolean> {
    if (this.spaceOf(key).live(key) !== undefined) return Promise.resolve(false);
    this.write(key, value, ttl);
    return Promise.resolve(true);
  }

  deleteIfEquals(key: string, value: string): Promise<void> {
    const space = this.spaceOf(key);
    if (space.live(key)?.value === value) space.delete(key);
    return Promise.resolve();
  }

  setIfEquals(key: string, expected: string, value: string, ttl: number): Promise<boolean> {
    if (this.spaceOf(key).live(key)?.value !== expected) return Promise.resolve(false);
    this.write(key, value, ttl);
    return Promise.resolve(true);
  }

  addToSet(key: string, members: string[], ttl: number): Promise<void> {
    const entry = this.spaceOf(key).live(key);
    if (!entry && members.length === 0) return Promise.resolve();
    const all = new Set(entry ? membersOf(entry.value) : []);
    for (const member of members) all.add(member);
    const expiresAt = Math.max(entry?.expiresAt ?? 0, Date.now() + ttl);
    this.write(key, JSON.stringify([...all]), expiresAt - Date.now());
    return Promise.resolve();
  }

  setMembers(key: string): Promise<string[]> {
    const entry = this.spaceOf(key).live(key);
    return Promise.resolve(entry ? membersOf(entry.value) : []);
  }

  private spaceOf(key: string): Space<string> {
    return shortLivedPrefixes.some((prefix) => key.startsWith(prefix)) ? this.shortLived : this.signIns;
  }

  private write(key: string, value: string, ttl: number): void {
    const space = this.spaceOf(key);
    this.evicted.delete(key);
    const evicted = space.put(key, { value, expiresAt: Date.now() + ttl });
    if (space === this.signIns && evicted.length > 0) this.noteEvictions(evicted);
  }

  /** Remembers evicted sign-in keys (bounded) and warns once per burst of evictions. */
  private noteEvictions(keys: string[]): void {
    for (const key of keys) this.evicted.add(key);
    for (const oldest of this.evicted) {
      if (this.evicted.size <= maxRememberedEvictions) break;
      this.evicted.delete(oldest);
    }
    const now = Date.now();
    if (now - this.lastEviction >= burstGap) {
      process.emitWarning(
        `MemoryTokenStore is full (maxEntries ${this.signIns.max}) and dropped the tokens of signed-in users, who must sign in again. Raise maxEntries or use a shared store such as RedisTokenStore.`,
        { type: 'PassportLogtoWarning', code: 'PASSPORT_LOGTO_TOKEN_STORE_EVICTED' },
      );
    }
    this.lastEviction = now;
  }
}

function membersOf(value: string): string[] {
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed) ? parsed.filter((member): member is string => typeof member === 'string') : [];
  } catch {
    return [];
  }
}

function bound(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new LogtoError('invalid_config', `passport-logto: MemoryTokenStore's ${name} must be a whole number of at least 1.`);
  }
  return value;
}
