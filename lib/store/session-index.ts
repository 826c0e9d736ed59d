import { decodeJwt } from 'jose';
import { sessionStoreError } from '../errors.js';
import type { SessionStoreLike } from './session-store-adapter.js';
import type { SignInRecords } from './sign-in-records.js';
import { digest, type LinkedSignIn, type TokenRecord } from './token-record.js';
import type { TokenStore } from './token-store.js';
import { signInIdOf } from './session-reference.js';

/** One sign-in as the index knows it: its record, and its session when the session store has ids. */
export interface IndexedSignIn {
  sessionId: string | undefined;
  signInId: string;
}

/** A member of an index set: short keys, since a set holds one per sign-in of a Logto session or user. */
interface Member {
  i: string;
  s?: string;
}

/**
 * Which sign-ins belong to a Logto session (`sid`) or user (`sub`), kept in the token store so
 * that every app instance sees it: stores cannot be searched by content, and a logout token names
 * only the Logto session or user. Each entry is a set that grows by atomic adds (on stores
 * without them, adds take turns under the store's lock), has no cap, and lives as long as the
 * newest record it points to: a refresh that gives a record a new life gives its entries one too.
 */
export class SessionIndex {
  constructor(
    private readonly records: SignInRecords,
    /** Keeps apps and tenants that share a store apart: a `sub` or `sid` is unique only per issuer and app. */
    private readonly scope: string,
    /** Milliseconds a record lives after its last write; its entries live as long. */
    private readonly lifetime: number,
    /** The strategy's session key: 0.1.0 prefixed its index entries in the session store with it. */
    private readonly sessionKey: string,
  ) {}

  private key(kind: 'sid' | 'sub', value: string): string {
    return `logout-set:${kind}:${digest(`${this.scope} ${value}`)}`;
  }

  private keysOf(claims: { sub?: unknown; sid?: unknown }): string[] {
    const keys: string[] = [];
    if (typeof claims.sub === 'string') keys.push(this.key('sub', claims.sub));
    if (typeof claims.sid === 'string') keys.push(this.key('sid', claims.sid));
    return keys;
  }

  async add(store: TokenStore, signIn: IndexedSignIn, claims: { sub: string; sid?: string | undefined }): Promise<void> {
    const member: Member = { i: signIn.signInId, ...(signIn.sessionId === undefined ? {} : { s: signIn.sessionId }) };
    await Promise.all(this.keysOf(claims).map((key) => this.records.addToSet(store, key, [JSON.stringify(member)], this.lifetime)));
  }

  /**
   * Gives the entries of a record's sign-in a new life, as long as the record's: called whenever
   * a refresh writes the record. The keys come from the record's ID token, checked when stored.
   */
  async extend(store: TokenStore, record: TokenRecord): Promise<void> {
    let claims: { sub?: unknown; sid?: unknown };
    try {
      claims = decodeJwt(record.idToken);
    } catch {
      return;
    }
    await Promise.all(this.keysOf(claims).map((key) => this.records.addToSet(store, key, [], this.lifetime)));
  }

  /**
   * A 0.1.0 session's sign-in, moved into its own record: it joins the sets of its Logto session
   * and user, which live as long as its record (0.1.0's own entry lasts 14 days at most).
   */
  async adopt(store: TokenStore, signIn: IndexedSignIn, record: TokenRecord): Promise<void> {
    let claims: { sub?: unknown; sid?: unknown };
    try {
      claims = decodeJwt(record.idToken);
    } catch {
      return;
    }
    if (typeof claims.sub !== 'string') return;
    await this.add(store, signIn, { sub: claims.sub, sid: typeof claims.sid === 'string' ? claims.sid : undefined });
  }

  /**
   * Ends every indexed sign-in of the Logto session `sid`; of the user `sub` when none was indexed
   * under that `sid` (ID tokens carry `sid` only when the app asks for session-bound logout),
   * which ends more sessions rather than too few. Each one is tried even when another fails; the
   * first failure is then reported, so that Logto retries. `ended` runs for each ended sign-in
   * whose session was destroyed, with that session as it was: other sign-ins in it end too.
   * `endLinked` runs for each ended sign-in whose session was not found (cookie-session keeps
   * none on the server), with the other tenants' sign-ins its record links: they end too.
   * The entries 0.1.0 wrote into the session store count as well: their sessions are destroyed
   * and their sign-ins ended, adopted into a record or not.
   */
  async endSignIns(
    tokenStore: TokenStore,
    sessionStore: SessionStoreLike | undefined,
    claims: { sub?: string | undefined; sid?: string | undefined },
    ended: (session: object) => Promise<void> = () => Promise.resolve(),
    endLinked: (linked: LinkedSignIn[]) => Promise<void> = () => Promise.resolve(),
  ): Promise<number> {
    const names: Array<['sid' | 'sub', string | undefined]> = [['sid', claims.sid], ['sub', claims.sub]];
    for (const [kind, value] of names) {
      if (typeof value !== 'string') continue;
      const key = this.key(kind, value);
      const entries = (await this.records.setMembers(tokenStore, key)).map(memberOf).filter((entry): entry is IndexedSignIn => entry !== undefined);
      const legacyKey = `${this.sessionKey}:logout-index:${kind}:${value}`;
      const legacySessions = sessionStore ? await legacySessionIds(sessionStore, legacyKey) : [];
      if (entries.length === 0 && legacySessions.length === 0) continue;
      const results = await Promise.allSettled([
        ...entries.map((entry) => this.endOne(tokenStore, sessionStore, entry, ended, endLinked)),
        ...legacySessions.map((sessionId) => this.endLegacySession(tokenStore, sessionStore as SessionStoreLike, sessionId, ended)),
      ]);
      const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failure) throw failure.reason;
      // The set stays: a sign-in added while this ran must stay reachable (ending one twice is
      // harmless), and the set expires with the newest of its records. 0.1.0 wrote no more entries.
      if (legacySessions.length > 0) await destroySession(sessionStore as SessionStoreLike, legacyKey);
      return entries.length + legacySessions.length;
    }
    return 0;
  }

  private async endOne(
    tokenStore: TokenStore,
    sessionStore: SessionStoreLike | undefined,
    entry: IndexedSignIn,
    ended: (session: object) => Promise<void>,
    endLinked: (linked: LinkedSignIn[]) => Promise<void>,
  ): Promise<void> {
    // Read before the end: the record says which other tenants' sign-ins go with it.
    const linked = (await this.records.read(tokenStore, entry.signInId))?.linked ?? [];
    await this.records.end(tokenStore, entry.signInId);
    if (entry.sessionId !== undefined && sessionStore) {
      const session = await readSession(sessionStore, entry.sessionId);
      await destroySession(sessionStore, entry.sessionId);
      if (session) await ended(session);
    } else if (linked.length > 0) {
      // No session id (cookie-session): the links stand for the session's other sign-ins.
      await endLinked(linked);
    }
  }

  /**
   * A session that 0.1.0 indexed: its sign-in ends (its tokens may still be inside it, or it may
   * refer to the record they moved to), and the session is destroyed, as 0.1.0 did.
   */
  private async endLegacySession(
    tokenStore: TokenStore,
    sessionStore: SessionStoreLike,
    sessionId: string,
    ended: (session: object) => Promise<void>,
  ): Promise<void> {
    const session = await readSession(sessionStore, sessionId);
    if (!session) return;
    const value = (session as Record<string, unknown>)[this.sessionKey];
    const tokens = value && typeof value === 'object' ? (value as { tokens?: { signInId?: unknown } }).tokens : undefined;
    const signInId = typeof value === 'string' ? signInIdOf(value) : tokens?.signInId;
    // A 0.1.0 session's tokens can come back in a copy of its cookie: its end is kept long.
    if (typeof signInId === 'string' && signInId !== '') await this.records.end(tokenStore, signInId, { fromSession: true });
    await destroySession(sessionStore, sessionId);
    await ended(session);
  }
}

/** The session ids of an index entry 0.1.0 wrote into the session store (`{ cookie, sessionIds }`). */
async function legacySessionIds(store: SessionStoreLike, key: string): Promise<string[]> {
  const entry = await readSession(store, key);
  const ids = entry && (entry as { sessionIds?: unknown }).sessionIds;
  return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === 'string' && id !== '') : [];
}

function memberOf(raw: string): IndexedSignIn | undefined {
  try {
    const parsed = JSON.parse(raw) as Partial<Member> & { signInId?: unknown; sessionId?: unknown };
    // Entries written before 0.2.0 spelled the names out.
    const signInId = parsed.i ?? parsed.signInId;
    const sessionId = parsed.s ?? parsed.sessionId;
    if (typeof signInId !== 'string') return undefined;
    return { signInId, sessionId: typeof sessionId === 'string' ? sessionId : undefined };
  } catch {
    return undefined;
  }
}

function readSession(store: SessionStoreLike, sessionId: string): Promise<object | undefined> {
  return new Promise((resolve, reject) => {
    store.get(sessionId, (error: unknown, session?: object | null) =>
      error ? reject(sessionStoreError(error, 'during back-channel logout')) : resolve(session ?? undefined));
  });
}

function destroySession(store: SessionStoreLike, sessionId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    store.destroy(sessionId, (error?: unknown) => (error ? reject(sessionStoreError(error, 'during back-channel logout')) : resolve()));
  });
}
