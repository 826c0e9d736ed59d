import { decodeJwt } from 'jose';
import { sessionStoreError } from '../errors.js';
import type { SessionStoreLike } from './session-store-adapter.js';
import type { SignInRecords } from './sign-in-records.js';
import { digest, type LinkedSignIn, type TokenRecord } from './token-record.js';
import type { TokenStore } from './token-store.js';

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
  ) {}

  private key(kind: 'sid' | 'sub', value: string): string {
    return `logout-set:${kind}:${digest(`${this.scope} ${value}`)}`;
  }

  /** Where 0.1.0 kept the same entry, as one JSON list (read until its 14 days are over). */
  private legacyKey(key: string): string {
    return key.replace('logout-set:', 'logout-index:');
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
   * A 0.1.0 session's sign-in, moved into its own record: the 0.1.0 index entries of its Logto
   * session and user join the sets, so that they live as long as the records from now on.
   */
  async adopt(store: TokenStore, record: TokenRecord): Promise<void> {
    let claims: { sub?: unknown; sid?: unknown };
    try {
      claims = decodeJwt(record.idToken);
    } catch {
      return;
    }
    for (const key of this.keysOf(claims)) {
      const legacyList = await this.records.getMark<unknown[]>(store, this.legacyKey(key));
      if (!Array.isArray(legacyList) || legacyList.length === 0) continue;
      const members = legacyList
        .map((entry) => memberOf(JSON.stringify(entry)))
        .filter((entry): entry is IndexedSignIn => entry !== undefined)
        .map((entry) => JSON.stringify({ i: entry.signInId, ...(entry.sessionId === undefined ? {} : { s: entry.sessionId }) } satisfies Member));
      await this.records.addToSet(store, key, members, this.lifetime);
    }
  }

  /**
   * Ends every indexed sign-in of the Logto session `sid`; of the user `sub` when none was indexed
   * under that `sid` (ID tokens carry `sid` only when the app asks for session-bound logout),
   * which ends more sessions rather than too few. Each one is tried even when another fails; the
   * first failure is then reported, so that Logto retries. `ended` runs for each ended sign-in
   * whose session was destroyed, with that session as it was: other sign-ins in it end too.
   * `endLinked` runs for each ended sign-in whose session was not found (cookie-session keeps
   * none on the server), with the other tenants' sign-ins its record links: they end too.
   */
  async endSignIns(
    tokenStore: TokenStore,
    sessionStore: SessionStoreLike | undefined,
    claims: { sub?: string | undefined; sid?: string | undefined },
    ended: (session: object) => Promise<void> = () => Promise.resolve(),
    endLinked: (linked: LinkedSignIn[]) => Promise<void> = () => Promise.resolve(),
  ): Promise<number> {
    const keys = [claims.sid && this.key('sid', claims.sid), claims.sub && this.key('sub', claims.sub)].filter(
      (key): key is string => typeof key === 'string',
    );
    for (const key of keys) {
      const members = (await this.records.setMembers(tokenStore, key)).map(memberOf);
      const legacyList = (await this.records.getMark<unknown[]>(tokenStore, this.legacyKey(key))) ?? [];
      // A 0.1.0 entry is a sign-in whose session cookie may carry its tokens: its end is kept long.
      const legacy = (Array.isArray(legacyList) ? legacyList : []).map((entry) => memberOf(JSON.stringify(entry)));
      const entries = [...members.map((entry) => entry && { ...entry, fromSession: false }), ...legacy.map((entry) => entry && { ...entry, fromSession: true })]
        .filter((entry): entry is IndexedSignIn & { fromSession: boolean } => entry !== undefined);
      if (entries.length === 0) continue;
      const results = await Promise.allSettled(
        entries.map(async (entry) => {
          // Read before the end: the record says which other tenants' sign-ins go with it.
          const linked = (await this.records.read(tokenStore, entry.signInId))?.linked ?? [];
          await this.records.end(tokenStore, entry.signInId, { fromSession: entry.fromSession });
          if (entry.sessionId !== undefined && sessionStore) {
            const session = await readSession(sessionStore, entry.sessionId);
            await destroySession(sessionStore, entry.sessionId);
            if (session) await ended(session);
          } else if (linked.length > 0) {
            // No session id (cookie-session): the links stand for the session's other sign-ins.
            await endLinked(linked);
          }
        }),
      );
      const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failure) throw failure.reason;
      // The set stays: a sign-in added while this ran must stay reachable (ending one twice is
      // harmless), and the set expires with the newest of its records.
      await this.records.deleteMark(tokenStore, this.legacyKey(key));
      return entries.length;
    }
    return 0;
  }
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
