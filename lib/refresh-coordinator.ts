import type { StoredAccessToken } from './session-store.js';

/**
 * What the refreshes of one sign-in have produced so far. It is newer than any session copy
 * that was loaded before those refreshes, so a request holding a stale session uses it instead.
 */
export interface GrantState {
  refreshToken?: string;
  idToken?: string;
  accessTokens: Map<string, StoredAccessToken>;
}

/**
 * Serializes the refreshes of one sign-in. Logto revokes the whole grant when a used refresh
 * token is sent again, so concurrent requests of one session must take turns, each starting from
 * the newest refresh token. Implement this over a shared store (Redis, say) when the app runs as
 * several instances; {@link MemoryRefreshCoordinator} covers a single process.
 */
export interface RefreshCoordinator {
  /** Runs `task` alone among the tasks of the same sign-in, handing it the state they left. */
  exclusive<T>(signInId: string, task: (state: GrantState) => Promise<T>): Promise<T>;
  /** Forgets a sign-in (after sign-out or a dead grant). */
  forget(signInId: string): void | Promise<void>;
}

interface Entry {
  state: GrantState;
  /** The end of the queue of tasks for this sign-in. */
  tail: Promise<void>;
  running: number;
  lastUsed: number;
}

export interface MemoryRefreshCoordinatorOptions {
  /** Milliseconds an idle sign-in's state is kept, to heal sessions saved with an older token. Default 10 minutes. */
  retention?: number;
  /** How many idle sign-ins are remembered at most. Default 10,000. */
  maxEntries?: number;
}

/** A {@link RefreshCoordinator} in process memory, bounded in time and size. */
export class MemoryRefreshCoordinator implements RefreshCoordinator {
  private readonly entries = new Map<string, Entry>();
  private readonly retention: number;
  private readonly maxEntries: number;

  constructor(options: MemoryRefreshCoordinatorOptions = {}) {
    this.retention = options.retention ?? 10 * 60 * 1000;
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  exclusive<T>(signInId: string, task: (state: GrantState) => Promise<T>): Promise<T> {
    const entry = this.entryFor(signInId);
    entry.running += 1;
    const result = entry.tail.then(() => task(entry.state));
    entry.tail = result.then(
      () => this.release(signInId, entry),
      () => this.release(signInId, entry),
    );
    return result;
  }

  forget(signInId: string): void {
    const entry = this.entries.get(signInId);
    if (!entry) return;
    entry.state = { accessTokens: new Map() };
    if (entry.running === 0) this.entries.delete(signInId);
  }

  private entryFor(signInId: string): Entry {
    const now = Date.now();
    let entry = this.entries.get(signInId);
    if (entry) {
      // Re-insert so that the map stays ordered from least to most recently used.
      this.entries.delete(signInId);
    } else {
      entry = { state: { accessTokens: new Map() }, tail: Promise.resolve(), running: 0, lastUsed: now };
      this.prune(now);
    }
    entry.lastUsed = now;
    this.entries.set(signInId, entry);
    return entry;
  }

  private release(signInId: string, entry: Entry): void {
    entry.running -= 1;
    entry.lastUsed = Date.now();
    if (entry.running === 0 && entry.state.refreshToken === undefined && entry.state.accessTokens.size === 0) {
      if (this.entries.get(signInId) === entry) this.entries.delete(signInId);
    }
  }

  private prune(now: number): void {
    for (const [signInId, entry] of this.entries) {
      const stale = now - entry.lastUsed > this.retention;
      if (!stale && this.entries.size < this.maxEntries) break;
      if (entry.running === 0) this.entries.delete(signInId);
    }
  }
}
