import { randomUUID } from 'node:crypto';
import { LogtoError } from '../errors.js';
import { InProcessSessionStoreTokenStore, isInProcessStore, SessionStoreTokenStore, type SessionStoreLike } from './session-store-adapter.js';
import { RedisTokenStore, redisClientOfSessionStore } from './redis-token-store.js';
import type { TokenStore } from './token-store.js';
import { digest, type TokenRecord } from './token-record.js';

/** What a record key holds: the tokens, or the mark that the sign-in has ended. */
type StoredRecord = TokenRecord | { ended: number };

/** A set kept as one value, for stores without sets of their own: its members and its expiry (ms). */
interface EmulatedSet {
  m: string[];
  e: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface SignInRecordsOptions {
  /** The store from the `tokenStore` option; undefined to use each request's session store. */
  tokenStore: TokenStore | undefined;
  /** Milliseconds a record lives after its last write. */
  recordTtl: number;
}

/**
 * The one owner of stored tokens and of the short-lived marks around them (callback claims,
 * refresh locks, refresh markers). Everything else asks it; nothing else reads or writes a record.
 *
 * An ended sign-in never answers alive again, whatever order an end and a refresh's write land in:
 * - With `setIfEquals` (MemoryTokenStore, RedisTokenStore and so connect-redis 8, express-session's
 *   MemoryStore): a refresh replaces the record only while it is the one it read, and an end
 *   replaces it with a mark, so a late write is refused; a read needs the record key alone.
 * - Without it (another session store through the adapter, connect-redis 7's hidden client, a
 *   custom TokenStore with `get`, `set` and `delete` only): a late write may land, so every store
 *   read of a record also reads the end flag, in parallel, and the flag outlives any record
 *   (`recordTtl` plus the time a refresh may still be in flight). The refresh also checks the
 *   flag after its write and ends the sign-in again if it finds it.
 * Either way a store read happens at most once per {@link cacheFreshness} per sign-in and process
 * while its requests keep coming.
 */
export class SignInRecords {
  private readonly sessionStores = new WeakMap<object, TokenStore>();
  private readonly fromSessionStores = new WeakSet<TokenStore>();
  /**
   * Records whose save failed after Logto had answered (the store was down): the newest refresh
   * token exists only here, so it is written again before the store's copy is used.
   */
  private readonly unsaved = new Map<string, TokenRecord>();
  /** The slowest recent write without an atomic command, in ms; it sizes the wait for racing writers. */
  private slowestWrite = 0;
  /** Per-process queues, so that only one request per process waits on a shared lock. */
  private readonly localTails = new Map<string, Promise<void>>();
  /**
   * The records this process wrote or read lately, newest last. A request within
   * {@link cacheFreshness} of the last read skips the store; refreshes always read the store.
   * A copy older than that answers nothing: the store is the one authority on whether a sign-in
   * is alive.
   */
  private readonly cache = new Map<string, { record: TokenRecord | undefined; at: number }>();
  /**
   * The sign-ins this process ended or saw ended, newest last. Ids are never reused, so an end is
   * final: no store read still in flight, nor any copy, can bring one back here.
   */
  private readonly endedHere = new Set<string>();
  /**
   * Store reads in flight for requests that take a copy a few seconds old (never for refreshes),
   * with when each began: its answer is as old as its start, so only a read begun within
   * {@link cacheFreshness} is joined.
   */
  private readonly sharedReads = new Map<string, { started: number; reading: Promise<TokenRecord | undefined> }>();

  constructor(private readonly options: SignInRecordsOptions) {}

  /** The store for this request: the configured one, or the app's session store. */
  storeFor(req: object): TokenStore {
    if (this.options.tokenStore) return this.options.tokenStore;
    const sessionStore = (req as { sessionStore?: SessionStoreLike }).sessionStore;
    if (!sessionStore || typeof sessionStore.get !== 'function') {
      throw new LogtoError(
        'session_required',
        'passport-logto keeps tokens in the express-session store; with another session middleware (cookie-session, say), pass a `tokenStore` such as new MemoryTokenStore() or new RedisTokenStore(client).',
      );
    }
    let store = this.sessionStores.get(sessionStore);
    if (!store) {
      const redis = redisClientOfSessionStore(sessionStore);
      store = redis
        ? new RedisTokenStore(redis)
        : isInProcessStore(sessionStore)
          ? new InProcessSessionStoreTokenStore(sessionStore)
          : new SessionStoreTokenStore(sessionStore);
      this.sessionStores.set(sessionStore, store);
      this.fromSessionStores.add(store);
    }
    return store;
  }

  /**
   * The record from this process's copy of the last second, or else from the store, with when the
   * store read it came from began: its answer is as old as that, whoever takes it.
   */
  async readRecent(store: TokenStore, signInId: string): Promise<{ record: TokenRecord | undefined; at: number }> {
    const copy = this.recentCopy(signInId);
    if (copy) return { record: copy.record ?? undefined, at: copy.at };
    // A page's requests that arrive together after a pause share one store read and its outcome,
    // but not one begun so long ago that its answer may predate an end.
    const now = Date.now();
    const shared = this.sharedReads.get(signInId);
    if (shared && now - shared.started < cacheFreshness) return { record: await shared.reading, at: shared.started };
    const entry = { started: now, reading: this.read(store, signInId) };
    this.sharedReads.set(signInId, entry);
    try {
      return { record: await entry.reading, at: now };
    } finally {
      if (this.sharedReads.get(signInId) === entry) this.sharedReads.delete(signInId);
    }
  }

  /** The record, from the store. */
  async read(store: TokenStore, signInId: string): Promise<TokenRecord | undefined> {
    const kept = this.unsaved.get(signInId);
    if (kept) {
      // The newest refresh token exists only here: written back before the store's copy is used,
      // and only over a live record, so that it never brings an ended sign-in back.
      return store.setIfEquals ? this.update(store, signInId, () => kept) : this.writeBackUnconditionally(store, signInId, kept);
    }
    const started = Date.now();
    const stored = await this.readLive(store, signInId);
    if (stored === 'ended') {
      this.markEnded(signInId);
      return undefined;
    }
    // Ended by this process while the read was in flight: its answer predates the end.
    if (this.endedHere.has(signInId)) return undefined;
    this.remember(signInId, stored, started);
    return stored;
  }

  /** The unsaved record written back with a store that cannot write conditionally: the end flag decides. */
  private async writeBackUnconditionally(store: TokenStore, signInId: string, kept: TokenRecord): Promise<TokenRecord | undefined> {
    if (await this.guard(store, store.get(endedKey(signInId)), 'read the sign-in')) {
      this.unsaved.delete(signInId);
      this.markEnded(signInId);
      return undefined;
    }
    await this.guard(store, store.set(recordKey(signInId), JSON.stringify(kept), this.options.recordTtl), 'save the refreshed tokens');
    this.unsaved.delete(signInId);
    this.remember(signInId, kept);
    return kept;
  }

  /**
   * The stored record, or 'ended'. With a store that writes records conditionally, the record key
   * alone says it; with one that cannot, a write may land after the end, so the end flag is read
   * along (in parallel) and wins.
   */
  private async readLive(store: TokenStore, signInId: string): Promise<TokenRecord | 'ended' | undefined> {
    if (store.setIfEquals) {
      const stored = await this.readStored(store, signInId);
      return stored && 'ended' in stored ? 'ended' : stored;
    }
    const [stored, flag] = await Promise.all([this.readStored(store, signInId), this.guard(store, store.get(endedKey(signInId)), 'read the sign-in')]);
    return flag || (stored && 'ended' in stored) ? 'ended' : stored;
  }

  /**
   * This process's copy of a record if it is at most {@link cacheFreshness} old, without a store
   * read (so without a promise: the cached-token route stays synchronous). Null when the copy says
   * there is no record; undefined when there is no copy that recent.
   */
  recent(signInId: string): TokenRecord | null | undefined {
    return this.recentCopy(signInId)?.record;
  }

  /**
   * {@link recent}, with when the store read (or write) that made the copy began: whoever answers
   * from the copy answers until {@link answerWindow} after that, not after taking it.
   */
  recentCopy(signInId: string): { record: TokenRecord | null; at: number } | undefined {
    if (this.endedHere.has(signInId)) return { record: null, at: Date.now() };
    const cached = this.cache.get(signInId);
    if (!cached || Date.now() - cached.at >= cacheFreshness) return undefined;
    return { record: cached.record ?? null, at: cached.at };
  }

  /** Whether this process ended the sign-in, or saw it ended: final, whatever a copy says. */
  hasEnded(signInId: string): boolean {
    return this.endedHere.has(signInId);
  }

  async create(store: TokenStore, signInId: string, record: TokenRecord): Promise<void> {
    if (this.endedHere.has(signInId)) throw new LogtoError('invalid_state', 'This sign-in has already ended; start the sign-in again.');
    await this.guard(store, store.set(recordKey(signInId), JSON.stringify(record), this.options.recordTtl), 'save the sign-in');
    this.remember(signInId, record);
  }

  /**
   * Reads the record fresh, applies `change`, and writes it back, unless the sign-in has ended: a
   * refresh that finishes after sign-out must not bring the tokens back. With a store that has
   * `setIfEquals`, the write replaces only the very record that was read, so an end that lands at
   * any moment wins, on every instance (a record changed by another writer is read again). Without
   * it, the write may land after an end; every read then also reads the end flag (see
   * {@link readLive}), which outlives any record, and the flag is checked again after the write.
   */
  async update(store: TokenStore, signInId: string, change: (record: TokenRecord) => TokenRecord): Promise<TokenRecord | undefined> {
    if (!store.setIfEquals) return this.updateUnconditionally(store, signInId, change);
    for (let attempt = 1; ; attempt += 1) {
      const raw = await this.guard(store, store.get(recordKey(signInId)), 'read the sign-in');
      const stored = parseStored(raw);
      if (!raw || !stored || 'ended' in stored) {
        this.unsaved.delete(signInId);
        if (stored && 'ended' in stored) this.markEnded(signInId);
        return undefined;
      }
      // A record whose save failed holds the newest refresh token: it is the current one.
      const updated = change(this.unsaved.get(signInId) ?? stored);
      let replaced: boolean;
      try {
        replaced = await this.guard(store, store.setIfEquals(recordKey(signInId), raw, JSON.stringify(updated), this.options.recordTtl), 'save the refreshed tokens');
      } catch (error) {
        this.remember(signInId, updated);
        this.keepUnsaved(signInId, updated);
        throw error;
      }
      if (replaced) {
        this.unsaved.delete(signInId);
        this.remember(signInId, updated);
        return updated;
      }
      if (attempt >= maxUpdateAttempts) {
        throw new LogtoError('token_store_failed', 'The sign-in\'s record kept changing while its refreshed tokens were saved; try again.');
      }
    }
  }

  private async updateUnconditionally(store: TokenStore, signInId: string, change: (record: TokenRecord) => TokenRecord): Promise<TokenRecord | undefined> {
    const current = await this.read(store, signInId);
    if (!current) return undefined;
    const updated = change(current);
    this.remember(signInId, updated);
    try {
      await this.guard(store, store.set(recordKey(signInId), JSON.stringify(updated), this.options.recordTtl), 'save the refreshed tokens');
    } catch (error) {
      this.keepUnsaved(signInId, updated);
      throw error;
    }
    if (await this.guard(store, store.get(endedKey(signInId)), 'read the sign-in')) {
      await this.end(store, signInId);
      return undefined;
    }
    return updated;
  }

  /**
   * Moves a 0.1.0 session's sign-in into a record of its own, once, and resolves to the record
   * that holds, or undefined when the sign-in has ended. The session's tokens never override the
   * store: a record already there (another tab, another instance) or its end answers. Otherwise
   * `prove` asks Logto whether the grant is alive, since 0.1.0's sign-out left no mark anywhere:
   * its answer (the new tokens, or 'ended') is kept, and an outage rejects, so that a later
   * request tries again. Each adoption leaves a mark under its refresh token that outlives any
   * 0.1.0 cookie: a copy of the cookie that comes back once the record has ended or expired is
   * not adopted again. Without a refresh token there is nothing to prove the grant with: refused.
   */
  async adopt(
    store: TokenStore,
    signInId: string,
    legacy: TokenRecord,
    prove: (record: TokenRecord & { refreshToken: string }) => Promise<TokenRecord | 'ended'>,
    lock: { lockTtl: number; wait: number },
  ): Promise<TokenRecord | undefined> {
    const refreshToken = legacy.refreshToken;
    if (this.endedHere.has(signInId) || refreshToken === undefined) return undefined;
    const markKey = adoptedKey(refreshToken);
    const alreadyThere = async (): Promise<TokenRecord | 'none' | undefined> => {
      const current = await this.read(store, signInId);
      if (current) {
        // Adopted before this mark existed: marked now, so that its end is final too.
        if (current.adopted) await this.claimMark(store, markKey, 1, adoptedEndedMarkTtl);
        return current;
      }
      if (this.endedHere.has(signInId) || (await this.getMark(store, markKey)) !== undefined) return undefined;
      return 'none';
    };
    const first = await alreadyThere();
    if (first !== 'none') return first;
    // One adoption at a time across instances: a page's requests from one 0.1.0 cookie share it.
    return this.exclusive(
      store,
      `adopt:${markKey}`,
      async () => {
        const current = await alreadyThere();
        if (current !== 'none') return current;
        const proven = await prove({ ...legacy, refreshToken, adopted: true });
        const adopted: TokenRecord | undefined = proven === 'ended' ? undefined : { ...proven, adopted: true };
        if (adopted) await this.create(store, signInId, adopted);
        else await this.end(store, signInId, { fromSession: true });
        await this.setMark(store, markKey, 1, adoptedEndedMarkTtl);
        return adopted;
      },
      lock,
    );
  }

  /**
   * Ends a sign-in at once, for every instance: the record becomes a mark that outlives any
   * refresh still in flight, and a flag tells such a refresh not to write the tokens back.
   */
  async end(store: TokenStore, signInId: string, options: { fromSession?: boolean } = {}): Promise<void> {
    let adopted = options.fromSession === true || this.cache.get(signInId)?.record?.adopted === true;
    if (!adopted && this.cache.get(signInId)?.record === undefined) {
      // Not read here (a back-channel logout, say): the stored record says whether a 0.1.0 cookie carries it.
      const stored = await this.readStored(store, signInId).catch(() => undefined);
      adopted = stored !== undefined && !('ended' in stored) && stored.adopted === true;
    }
    this.markEnded(signInId);
    this.unsaved.delete(signInId);
    // A 0.1.0 session carries its tokens in the cookie itself, which can be replayed long after:
    // the end of such a sign-in must outlive any copy of that cookie, not just a refresh in flight.
    const ttl = adopted ? adoptedEndedMarkTtl : endedMarkTtl;
    // Without conditional writes a refresh may write the record back after this: the flag, which
    // every read then consults, outlives any record written before or after it.
    const flagTtl = store.setIfEquals ? ttl : Math.max(ttl, this.options.recordTtl + endedMarkTtl);
    await this.guard(store, store.set(endedKey(signInId), '1', flagTtl), 'end the sign-in');
    await this.guard(store, store.set(recordKey(signInId), JSON.stringify({ ended: Date.now() }), ttl), 'end the sign-in');
  }

  /**
   * Runs `task` alone among the tasks for `name`: in turn within this process, and under a lock
   * in the store across instances.
   */
  async exclusive<T>(store: TokenStore, name: string, task: () => Promise<T>, options: { lockTtl: number; wait: number }): Promise<T> {
    const previous = this.localTails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.localTails.set(name, tail);
    try {
      await previous;
      const key = lockKey(name);
      const owner = randomUUID();
      await this.acquire(store, key, owner, options);
      try {
        return await task();
      } finally {
        await this.releaseLock(store, key, owner).catch(() => undefined);
      }
    } finally {
      release();
      if (this.localTails.get(name) === tail) this.localTails.delete(name);
    }
  }

  /** Reads a short-lived mark (a callback claim, a refresh marker). */
  async getMark<T>(store: TokenStore, key: string): Promise<T | undefined> {
    const raw = await this.guard(store, store.get(key), 'read the token store');
    if (!raw) return undefined;
    try {
      // A value being claimed without an atomic command carries a tag after a NUL; see setIfAbsent.
      return JSON.parse(raw.split('\u0000', 1)[0] ?? '') as T;
    } catch {
      return undefined;
    }
  }

  async setMark(store: TokenStore, key: string, value: unknown, ttl: number): Promise<void> {
    await this.guard(store, store.set(key, JSON.stringify(value), ttl), 'write the token store');
  }

  async deleteMark(store: TokenStore, key: string): Promise<void> {
    await this.guard(store, store.delete(key), 'write the token store');
  }

  /** Sets a mark only if absent: atomically when the store can, else by writing and reading back. */
  async claimMark(store: TokenStore, key: string, value: unknown, ttl: number): Promise<boolean> {
    return this.setIfAbsent(store, key, JSON.stringify(value), ttl);
  }

  /**
   * Adds `members` to the set at `key` (none: only extends it), and keeps the set at least `ttl`
   * ms from now. Atomic with a store that offers sets; otherwise the adds take turns under the
   * store's lock, which holds as well as that lock does (see the README on stores without atomic
   * commands).
   */
  async addToSet(store: TokenStore, key: string, members: string[], ttl: number): Promise<void> {
    if (store.addToSet) {
      await this.guard(store, store.addToSet(key, members, ttl), 'write the token store');
      return;
    }
    await this.exclusive(
      store,
      `set:${key}`,
      async () => {
        const current = await this.emulatedSet(store, key);
        const expiresAt = Math.max(current?.e ?? 0, Date.now() + ttl);
        const all = [...new Set([...(current?.m ?? []), ...members])];
        const value: EmulatedSet = { m: all, e: expiresAt };
        await this.guard(store, store.set(key, JSON.stringify(value), expiresAt - Date.now()), 'write the token store');
      },
      { lockTtl: 10_000, wait: 10_000 },
    );
  }

  /** The members of the set at `key`; none when there is no set. */
  async setMembers(store: TokenStore, key: string): Promise<string[]> {
    if (store.setMembers) return this.guard(store, store.setMembers(key), 'read the token store');
    return (await this.emulatedSet(store, key))?.m ?? [];
  }

  private async emulatedSet(store: TokenStore, key: string): Promise<EmulatedSet | undefined> {
    const value = await this.getMark<Partial<EmulatedSet>>(store, key);
    return value && Array.isArray(value.m) && typeof value.e === 'number' ? { m: value.m.filter((member) => typeof member === 'string'), e: value.e } : undefined;
  }

  private keepUnsaved(signInId: string, record: TokenRecord): void {
    this.unsaved.delete(signInId);
    this.unsaved.set(signInId, record);
    for (const oldest of this.unsaved.keys()) {
      if (this.unsaved.size <= maxCachedRecords) break;
      this.unsaved.delete(oldest);
    }
  }

  private markEnded(signInId: string): void {
    this.cache.delete(signInId);
    this.endedHere.delete(signInId);
    this.endedHere.add(signInId);
    for (const oldest of this.endedHere) {
      if (this.endedHere.size <= maxCachedRecords) break;
      this.endedHere.delete(oldest);
    }
  }

  private remember(signInId: string, record: TokenRecord | undefined, at = Date.now()): void {
    if (this.endedHere.has(signInId)) return;
    this.cache.delete(signInId);
    this.cache.set(signInId, { record, at });
    for (const oldest of this.cache.keys()) {
      if (this.cache.size <= maxCachedRecords) break;
      this.cache.delete(oldest);
    }
  }

  private async readStored(store: TokenStore, signInId: string): Promise<StoredRecord | undefined> {
    return parseStored(await this.guard(store, store.get(recordKey(signInId)), 'read the sign-in'));
  }

  private async setIfAbsent(store: TokenStore, key: string, value: string, ttl: number): Promise<boolean> {
    if (store.setIfAbsent) return this.guard(store, store.setIfAbsent(key, value, ttl), 'write the token store');
    // Without an atomic command: write, let any racing writer land, and see whose value stayed.
    if ((await this.guard(store, store.get(key), 'read the token store')) != null) return false;
    const tagged = `${value}\u0000${randomUUID()}`;
    const started = Date.now();
    await this.guard(store, store.set(key, tagged, ttl), 'write the token store');
    // Long enough for a racing write to land: a slow store gets a longer wait.
    const took = Date.now() - started;
    this.slowestWrite = Math.max(this.slowestWrite * 0.9, took);
    await sleep(Math.max(emulationSettle, 3 * this.slowestWrite));
    if ((await this.guard(store, store.get(key), 'read the token store')) !== tagged) return false;
    await this.guard(store, store.set(key, value, ttl), 'write the token store');
    return true;
  }

  private async acquire(store: TokenStore, key: string, owner: string, options: { lockTtl: number; wait: number }): Promise<void> {
    const deadline = Date.now() + options.wait;
    let pause = 10;
    while (!(await this.setIfAbsent(store, key, owner, options.lockTtl))) {
      if (Date.now() > deadline) {
        throw new LogtoError('token_store_failed', 'Timed out waiting for another instance to finish refreshing this sign-in\'s tokens.');
      }
      await sleep(pause);
      pause = Math.min(pause * 2, 100);
    }
  }

  private async releaseLock(store: TokenStore, key: string, owner: string): Promise<void> {
    if (store.deleteIfEquals) {
      await store.deleteIfEquals(key, owner);
      return;
    }
    if ((await store.get(key)) === owner) await store.delete(key);
  }

  /**
   * Store failures become a LogtoError that keeps the store's error as cause:
   * `session_store_failed` when the tokens live in the app's session store, `token_store_failed`
   * for a store of their own.
   */
  private async guard<T>(store: TokenStore, operation: Promise<T>, action: string): Promise<T> {
    try {
      return await operation;
    } catch (error) {
      if (error instanceof LogtoError) throw error;
      const detail = error instanceof Error ? error.message : String(error);
      const inSessionStore = this.fromSessionStores.has(store);
      const which = inSessionStore ? 'session store' : 'token store';
      throw new LogtoError(inSessionStore ? 'session_store_failed' : 'token_store_failed', `The ${which} failed to ${action}: ${detail}. Check that it is reachable.`, {
        cause: error,
      });
    }
  }
}

/** Long enough for any refresh in flight at sign-out to have given up. */
const endedMarkTtl = 10 * 60 * 1000;
/** A year: how long the end of a sign-in adopted from a 0.1.0 session (whose cookie holds its tokens) is kept. */
const adoptedEndedMarkTtl = 365 * 24 * 60 * 60 * 1000;
/**
 * How long, in ms from the start of the store read it came from, an answer about a sign-in may be
 * given: a sign-in ended anywhere is ended everywhere after that (docs/sessions-and-stores.md).
 */
export const answerWindow = 2000;
/**
 * Milliseconds during which a request may take this process's copy of a record (or join a store
 * read in flight) instead of reading the store: half the window, so that whoever takes it still
 * has at least the other half to answer from it.
 */
const cacheFreshness = answerWindow / 2;
const maxCachedRecords = 10_000;
/** Conditional writes of one record tried before giving up: only a record changing all the time exhausts them. */
const maxUpdateAttempts = 3;

function parseStored(raw: string | null | undefined): StoredRecord | undefined {
  if (!raw) return undefined;
  try {
    // A value being claimed without an atomic command carries a tag after a NUL; see setIfAbsent.
    return JSON.parse(raw.split('\u0000', 1)[0] ?? '') as StoredRecord;
  } catch {
    return undefined;
  }
}
/** How long a write is given to land before it is read back, when the store has no atomic command. */
const emulationSettle = 25;

export const recordKey = (signInId: string): string => `tokens:${signInId}`;
const endedKey = (signInId: string): string => `ended:${signInId}`;
const lockKey = (name: string): string => `lock:${name}`;
/** The mark that a 0.1.0 sign-in was adopted, under a digest of the refresh token its cookie carries. */
const adoptedKey = (refreshToken: string): string => `adopted:${digest(refreshToken)}`;
