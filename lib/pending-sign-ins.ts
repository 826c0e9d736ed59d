import type { PendingSignIn, SessionTokenStore } from './session-store.js';

/**
 * Sign-ins that were started and wait for their callback, kept per `state` so that two tabs can
 * sign in at once. Each is taken out when its callback arrives, so it works once; expired ones
 * are dropped, and the oldest go when a session starts more than its share.
 */
export class PendingSignIns {
  constructor(
    private readonly store: SessionTokenStore,
    /** Seconds. */
    private readonly timeout: number,
    private readonly maxPerSession: number,
  ) {}

  add(req: object, state: string, signIn: PendingSignIn): void {
    const bag = this.store.bag(req);
    const pending = this.live(bag.pending ?? {}, signIn.createdAt);
    pending[state] = signIn;
    const states = Object.keys(pending).sort((a, b) => (pending[a]?.createdAt ?? 0) - (pending[b]?.createdAt ?? 0));
    for (const oldest of states.slice(0, Math.max(0, states.length - this.maxPerSession))) delete pending[oldest];
    bag.pending = pending;
  }

  /**
   * Removes the sign-in for `state` and returns it, or says why there is none. The removal
   * happens before the code is exchanged, so a replayed callback finds nothing.
   */
  take(req: object, state: string, now = Date.now()): PendingSignIn | 'unknown' | 'expired' {
    const bag = this.store.bag(req);
    const signIn = bag.pending && Object.hasOwn(bag.pending, state) ? bag.pending[state] : undefined;
    if (bag.pending) {
      delete bag.pending[state];
      bag.pending = this.live(bag.pending, now);
      if (Object.keys(bag.pending).length === 0) delete bag.pending;
    }
    if (!signIn) return 'unknown';
    return this.isExpired(signIn, now) ? 'expired' : signIn;
  }

  private isExpired(signIn: PendingSignIn, now: number): boolean {
    return now - signIn.createdAt > this.timeout * 1000;
  }

  private live(pending: Record<string, PendingSignIn>, now: number): Record<string, PendingSignIn> {
    return Object.fromEntries(Object.entries(pending).filter(([, signIn]) => !this.isExpired(signIn, now)));
  }
}
