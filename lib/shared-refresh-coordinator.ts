import { randomUUID } from 'node:crypto';
import { MemoryRefreshCoordinator, type GrantState, type RefreshCoordinator } from './refresh-coordinator.js';
import type { StoredAccessToken } from './session-store.js';

/**
 * The few commands that a shared store (Redis, say) must offer for refreshes to be coordinated
 * across app instances. Each is a one-liner over a Redis client; see the README.
 */
export interface CoordinationStore {
  /** Sets `key` to `value` only if it is absent, expiring after `ttl` ms; true when it was set. */
  setIfAbsent(key: string, value: string, ttl: number): Promise<boolean>;
  /** Deletes `key` only while it still holds `value` (so a lock that expired is not taken from its new owner). */
  deleteIfEquals(key: string, value: string): Promise<void>;
  get(key: string): Promise<string | null | undefined>;
  set(key: string, value: string, ttl: number): Promise<void>;
  delete(key: string): Promise<void>;
}

export interface SharedRefreshCoordinatorOptions {
  /** Prefix of the keys it writes. Default `passport-logto`. */
  prefix?: string;
  /** Milliseconds a lock is held at most, should its holder die. Default 30 s: above the request timeout. */
  lockTtl?: number;
  /** Milliseconds between two attempts to take a held lock. Default 25. */
  pollInterval?: number;
  /** Milliseconds to wait for a lock before giving up. Default 30 s. */
  waitTimeout?: number;
  /** Milliseconds the newest tokens of a sign-in are kept. Default 10 minutes. */
  stateTtl?: number;
}

interface SerializedState {
  refreshToken?: string;
  idToken?: string;
  accessTokens: Array<[string, StoredAccessToken]>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A {@link RefreshCoordinator} for several app instances: a lock per sign-in and the newest
 * tokens live in a shared store, so that no instance sends a refresh token another one already
 * used. Within one process, turns are taken in memory first, so only one request per process
 * polls the shared lock.
 */
export class SharedRefreshCoordinator implements RefreshCoordinator {
  private readonly local = new MemoryRefreshCoordinator();
  private readonly prefix: string;
  private readonly lockTtl: number;
  private readonly pollInterval: number;
  private readonly waitTimeout: number;
  private readonly stateTtl: number;

  constructor(
    private readonly store: CoordinationStore,
    options: SharedRefreshCoordinatorOptions = {},
  ) {
    this.prefix = options.prefix ?? 'passport-logto';
    this.lockTtl = options.lockTtl ?? 30_000;
    this.pollInterval = options.pollInterval ?? 25;
    this.waitTimeout = options.waitTimeout ?? 30_000;
    this.stateTtl = options.stateTtl ?? 10 * 60 * 1000;
  }

  exclusive<T>(signInId: string, task: (state: GrantState) => Promise<T>): Promise<T> {
    return this.local.exclusive(signInId, async () => {
      const lockKey = `${this.prefix}:refresh-lock:${signInId}`;
      const owner = randomUUID();
      await this.acquire(lockKey, owner);
      try {
        const state = await this.readState(signInId);
        const result = await task(state);
        await this.store.set(this.stateKey(signInId), JSON.stringify(serialize(state)), this.stateTtl);
        return result;
      } finally {
        await this.store.deleteIfEquals(lockKey, owner);
      }
    });
  }

  async forget(signInId: string): Promise<void> {
    await this.store.delete(this.stateKey(signInId));
  }

  private stateKey(signInId: string): string {
    return `${this.prefix}:refresh-state:${signInId}`;
  }

  private async acquire(lockKey: string, owner: string): Promise<void> {
    const deadline = Date.now() + this.waitTimeout;
    while (!(await this.store.setIfAbsent(lockKey, owner, this.lockTtl))) {
      if (Date.now() > deadline) throw new Error(`passport-logto: timed out waiting for the refresh lock ${lockKey}`);
      await sleep(this.pollInterval);
    }
  }

  private async readState(signInId: string): Promise<GrantState> {
    const raw = await this.store.get(this.stateKey(signInId));
    if (!raw) return { accessTokens: new Map() };
    const parsed = JSON.parse(raw) as SerializedState;
    return {
      ...(parsed.refreshToken === undefined ? {} : { refreshToken: parsed.refreshToken }),
      ...(parsed.idToken === undefined ? {} : { idToken: parsed.idToken }),
      accessTokens: new Map(parsed.accessTokens),
    };
  }
}

function serialize(state: GrantState): SerializedState {
  return {
    ...(state.refreshToken === undefined ? {} : { refreshToken: state.refreshToken }),
    ...(state.idToken === undefined ? {} : { idToken: state.idToken }),
    accessTokens: [...state.accessTokens],
  };
}
