import { decodeJwt } from 'jose';
import { organizationDetailsOf, organizationsOf, type AccessTokenClaims, type IdTokenClaims, type UserInfoResponse, type UserOrganization, type UserOrganizationDetails } from '../logto/claims.js';
import { LogtoError } from '../errors.js';
import { cachedToken } from '../store/refresh.js';
import { answerWindow } from '../store/sign-in-records.js';
import { checkClearRequest, checkTokenRequest } from './token-requests.js';
import { UserScope } from '../logto/scopes.js';
import { accessTokenKey, type StoredAccessToken, type TokenRecord } from '../store/token-record.js';
import type { LogtoContext } from './context.js';
import type { SessionSignIn } from '../store/session-reference.js';

/** Options of the token getters. */
export interface GetAccessTokenOptions {
  /**
   * Ask Logto for a new token even when the cached one is still valid: after the user's roles or
   * organization memberships changed, the cached token still carries the old scopes.
   */
  forceRefresh?: boolean;
}

/**
 * Which cached access tokens `clearAccessTokens()` drops. Neither: all of them. `resource`: that
 * API resource's tokens, organization-scoped ones included. `organizationId`: that organization's
 * token and its organization-scoped API tokens. Both: that one organization-scoped API token.
 */
export interface ClearAccessTokensOptions {
  resource?: string;
  organizationId?: string;
}

interface PassportRequest {
  isAuthenticated?: () => boolean;
}

/** This request's sign-in: its id and its record, once loaded (null when there is none). */
type Loaded = { signInId: string; record: TokenRecord } | null;

/**
 * The per-request helper over the tokens of the session's sign-in: claims, userinfo, and access
 * tokens for API resources and organizations, refreshed when due. The tokens live in their own
 * record outside the session; `load()` reads it (the route guard does so before the handler
 * runs), after which the getters answer synchronously.
 */
export class LogtoClient {
  /** Set by `logto.authenticated({ fetchUserInfo: true })`. */
  userInfo: UserInfoResponse | undefined;
  /** Set by `logto.authenticated({ accessToken })`. */
  accessToken: string | undefined;
  /** Set by `logto.authenticated({ organizationTokens: true })`: a token per organization of the user, by ID. */
  organizationTokens: Record<string, string> | undefined;
  private loaded: Loaded | undefined;
  /**
   * The start of the store read this helper's load came from, its own or the one that made the
   * copy it took (at most 1 s old): its answer is as old as that. Its synchronous getters answer
   * until 2 s after it, so never for a sign-in ended more than 2 s ago, and a handler right after
   * the guard still has at least 1 s.
   */
  private loadedAt = 0;
  private loading: Promise<Loaded> | undefined;

  constructor(
    private readonly req: object,
    private readonly context: Pick<LogtoContext, 'config' | 'provider' | 'records' | 'refresher' | 'session' | 'index'>,
    /**
     * For the route guard and `logto.session()`: a copy of the record this process read at most 1 s
     * ago counts as a load. `true` reads the session's reference; the reference itself saves that read.
     */
    fromRecentCopy: boolean | NonNullable<SessionSignIn> = false,
  ) {
    if (fromRecentCopy !== false) this.loadFromRecentCopy(fromRecentCopy === true ? context.session.read(req) : fromRecentCopy);
  }

  /**
   * Reads this sign-in's tokens from the token store (or from this process's copy, when it is at
   * most 1 s old); the getters need it. Resolves to the helper.
   */
  async load(): Promise<this> {
    await this.current();
    return this;
  }

  /**
   * Whether the getters can answer now, without `await load()`: until 2 s after the store read
   * that this helper's `load()` came from began (at least 1 s after the load; the route guard
   * loads `req.logto`), or when the session refers to no sign-in or
   * the load found it ended. The same on every instance: a copy of the record that this process
   * happens to hold does not count.
   */
  isLoaded(): boolean {
    if (this.loaded !== undefined) return this.loaded === null || Date.now() - this.loadedAt < copyFreshness;
    if (this.context.session.read(this.req)) return false;
    this.settle(null);
    return true;
  }

  /**
   * {@link isLoaded}, with at least `ms` of the getters' window left: the route guard's test, so
   * that a load taken early in the request (by `logto.session()`) leaves the route time to answer.
   * @internal
   */
  isLoadedFor(ms: number): boolean {
    if (this.loaded === undefined) return this.isLoaded();
    return this.loaded === null || Date.now() - this.loadedAt + ms < copyFreshness;
  }

  /**
   * Whether this helper's load found the sign-in alive, however long ago it loaded: for
   * `logto.session()`, which decides Passport's user from its own read. False before a load.
   * @internal
   */
  loadedAlive(): boolean {
    return Boolean(this.live());
  }

  /**
   * Signed in through this strategy, with tokens that can still be used. Loaded, it answers from
   * the record. Before `load()` it never throws: false when the session refers to no sign-in, or
   * to one this process knows has ended (or read as ended in the last 2 s); otherwise it answers
   * from the session. Mount `logto.session()` so that a sign-in ended anywhere turns Passport's
   * user away on every instance within 2 s; the route guard always loads first.
   */
  isAuthenticated(): boolean {
    const passportSaysSignedIn = (this.req as PassportRequest).isAuthenticated?.() ?? true;
    if (!passportSaysSignedIn) return false;
    let record: TokenRecord | null | undefined;
    if (this.loaded === undefined) {
      const reference = this.context.session.read(this.req);
      if (!reference) return false;
      record = reference.legacy ?? this.context.records.recent(reference.signInId);
      if (record === undefined) return true;
    } else {
      record = this.answering()?.record;
    }
    if (!record) return false;
    return record.refreshToken !== undefined || this.context.refresher.isFresh(record.accessToken);
  }

  getIdToken(): string | undefined {
    return this.loadedRecord()?.idToken;
  }

  getRefreshToken(): string | undefined {
    return this.loadedRecord()?.refreshToken;
  }

  /**
   * The scopes Logto granted at sign-in (Logto's `getContext().scopes`): the `scope` of its
   * token endpoint's answer to the code exchange, which can be fewer than were asked for (Logto
   * drops `offline_access` without consent, say). Empty when signed out. Needs the tokens loaded,
   * as the other getters.
   */
  get scopes(): string[] {
    const granted = this.loadedRecord()?.accessToken?.scope;
    return granted === undefined ? [] : granted.split(' ').filter(Boolean);
  }

  /** The claims of the stored ID token, verified when it was stored. */
  getIdTokenClaims(): IdTokenClaims {
    const record = this.loadedRecord();
    if (!record) throw notSignedIn();
    return decodeJwt<IdTokenClaims>(record.idToken) as IdTokenClaims;
  }

  /** Asks Logto's userinfo endpoint, which alone returns custom_data, identities and organization_data. */
  async fetchUserInfo(): Promise<UserInfoResponse> {
    const accessToken = await this.getAccessToken();
    const userInfo = await this.context.provider.fetchUserInfo(accessToken, this.getIdTokenClaims().sub);
    return userInfo as UserInfoResponse;
  }

  /**
   * An access token: for `resource`, for an organization, for both (an organization-scoped API
   * token), or without either the token for userinfo. The cached one while it stays valid for
   * longer than the safety margin; otherwise a new one from the refresh token.
   */
  getAccessToken(resource?: string, organizationId?: string, options?: GetAccessTokenOptions): Promise<string> {
    try {
      // A loaded, still valid token needs no async step: the common case, kept cheap.
      const force = options?.forceRefresh === true;
      const now = Date.now();
      const loaded = force ? undefined : this.live();
      if (loaded && now - this.loadedAt < copyFreshness) {
        checkTokenRequest(this.context.config, resource, organizationId);
        const cached = cachedToken(loaded.record, accessTokenKey(resource, organizationId));
        if (this.context.refresher.isFresh(cached)) return Promise.resolve(cached.token);
      }
      return this.tokenFor(resource, organizationId, force).then((token) => token.token);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async getAccessTokenClaims(resource?: string, organizationId?: string, options: GetAccessTokenOptions = {}): Promise<AccessTokenClaims> {
    if (resource === undefined && organizationId === undefined) {
      throw new LogtoError('invalid_resource', 'The access token for userinfo is opaque and has no claims; name an API resource or an organization.');
    }
    return decodeJwt<AccessTokenClaims>(await this.getAccessToken(resource, organizationId, options)) as AccessTokenClaims;
  }

  /** The organization token, whose audience is `urn:logto:organization:<id>`. */
  async getOrganizationToken(organizationId: string, options: GetAccessTokenOptions = {}): Promise<string> {
    return this.getAccessToken(undefined, organizationId, options);
  }

  async getOrganizationTokenClaims(organizationId: string, options: GetAccessTokenOptions = {}): Promise<AccessTokenClaims> {
    return this.getAccessTokenClaims(undefined, organizationId, options);
  }

  /**
   * Drops cached access tokens, for every instance (the record in the token store changes), so
   * that the next getter asks Logto for new ones: as Logto's `clearAccessToken()`, after the
   * user's roles or memberships changed. The ID and refresh tokens stay. See
   * {@link ClearAccessTokensOptions} for which tokens go. Signed out, there is nothing to drop.
   */
  async clearAccessTokens(options: ClearAccessTokensOptions = {}): Promise<void> {
    const { resource, organizationId } = options;
    checkClearRequest(this.context.config, resource, organizationId);
    const loaded = await this.current();
    if (!loaded) return;
    const store = this.context.records.storeFor(this.req);
    const updated = await this.context.refresher.clearAccessTokens(store, loaded.signInId, { resource, organizationId });
    this.settle(updated ? { signInId: loaded.signInId, record: updated } : null);
  }

  /**
   * The user's organizations with their roles, from the ID token (`organizations` and
   * `organization_roles`): as they were at sign-in or at the last refresh. Needs
   * `UserScope.Organizations` (and `UserScope.OrganizationRoles` for the roles).
   */
  getOrganizations(): UserOrganization[] {
    this.requireOrganizationsScope();
    return organizationsOf(this.getIdTokenClaims());
  }

  /**
   * The user's organizations as Logto knows them now, from userinfo: each with its name,
   * description and the user's roles there (`organization_data` and `organization_roles`).
   */
  async fetchOrganizations(): Promise<UserOrganizationDetails[]> {
    this.requireOrganizationsScope();
    return organizationDetailsOf(await this.fetchUserInfo());
  }

  /** Refreshes now (after the user's roles changed, say), replacing the stored ID token. */
  async refresh(): Promise<void> {
    await this.tokenFor(undefined, undefined, true);
  }

  private requireOrganizationsScope(): void {
    if (!this.context.config.scopes.includes(UserScope.Organizations)) {
      throw new LogtoError(
        'missing_scope_organizations',
        `The user's organizations come with the scope ${UserScope.Organizations}: add UserScope.Organizations to \`scopes\` and sign in again.`,
      );
    }
  }

  /**
   * {@link load}, reading again unless the getters' window has at least `ms` left: the route
   * guard's load. @internal
   */
  async loadFor(ms: number): Promise<this> {
    await this.current(ms);
    return this;
  }

  /** What this helper loaded, read again from the store once it is more than 2 s (less `margin`) old. */
  private async current(margin = 0): Promise<Loaded> {
    const loaded = this.live();
    if (loaded !== undefined && (loaded === null || Date.now() - this.loadedAt + margin < copyFreshness)) return loaded;
    this.loading ??= this.read().then(
      (read) => {
        this.loading = undefined;
        return this.settle(read.loaded, read.at);
      },
      (error: unknown) => {
        this.loading = undefined;
        throw error;
      },
    );
    return this.loading;
  }

  private settle(loaded: Loaded, at: number = Date.now()): Loaded {
    this.loaded = loaded;
    this.loadedAt = at;
    return loaded;
  }

  /** The guard's fast path: a copy this process read at most 1 s ago, without a promise. */
  private loadFromRecentCopy(reference: SessionSignIn): void {
    if (!reference) {
      this.settle(null);
      return;
    }
    if (reference.legacy) return;
    const copy = this.context.records.recentCopy(reference.signInId);
    if (copy) this.settle(copy.record ? { signInId: reference.signInId, record: copy.record } : null, copy.at);
  }

  /** The sign-in's record, with when the read it came from began. */
  private async read(): Promise<{ loaded: Loaded; at: number }> {
    const started = Date.now();
    const reference = this.context.session.read(this.req);
    if (!reference) return { loaded: null, at: started };
    const { records, session } = this.context;
    const store = records.storeFor(this.req);
    if (reference.legacy) {
      // A session written by 0.1.0: its tokens move into their own record, once, if Logto says
      // the grant is alive. Should the store already hold that sign-in's record, or its end, the
      // store's answer holds.
      const record = await this.context.refresher.adoptLegacy(store, reference.signInId, reference.legacy);
      if (!record) {
        session.clear(this.req);
        return { loaded: null, at: started };
      }
      // It joins the back-channel logout index, which lives as long as the records.
      const sessionId = (this.req as { sessionID?: unknown }).sessionID;
      await this.context.index()?.adopt(store, { signInId: reference.signInId, sessionId: typeof sessionId === 'string' ? sessionId : undefined }, record);
      session.write(this.req, reference.signInId);
      return { loaded: { signInId: reference.signInId, record }, at: started };
    }
    const { record, at } = await records.readRecent(store, reference.signInId);
    return { loaded: record ? { signInId: reference.signInId, record } : null, at };
  }

  /** The loaded record for the synchronous getters; `not_loaded` before a load, on every instance alike. */
  private loadedRecord(): TokenRecord | undefined {
    if (this.loaded === undefined && !this.isLoaded()) {
      throw new LogtoError(
        'not_loaded',
        "This sign-in's tokens are not loaded yet: put logto.authenticated() before the route, or `await logto.client(req).load()` first.",
      );
    }
    return this.answering()?.record;
  }

  /**
   * What the synchronous getters answer from: what this helper loaded, while that is at most 2 s
   * old. Past that they refuse with `not_loaded` rather than answer from a load that may predate
   * an end elsewhere, on every instance alike: a newer copy this process happens to hold (another
   * request's) does not count, or the answer would depend on the instance's traffic.
   */
  private answering(): Loaded {
    const loaded = this.live() ?? null;
    if (loaded && Date.now() - this.loadedAt >= copyFreshness) {
      throw new LogtoError(
        'not_loaded',
        "This helper's tokens were loaded more than 2 s ago and may be out of date (the sign-in may have ended on another instance): `await client.load()` again.",
      );
    }
    return loaded;
  }

  /**
   * What this helper loaded, unless the sign-in has ended since as far as this process knows
   * (sign-out, `endSignIn()`, a back-channel logout, a dead grant, or a read by another request
   * that found it ended): a helper held across the end says signed out too.
   */
  private live(): Loaded | undefined {
    const loaded = this.loaded;
    if (!loaded) return loaded;
    if (this.context.records.hasEnded(loaded.signInId)) return this.settle(null);
    return loaded;
  }

  private async tokenFor(resource: string | undefined, organizationId: string | undefined, force: boolean): Promise<StoredAccessToken> {
    checkTokenRequest(this.context.config, resource, organizationId);
    const loaded = await this.current();
    if (!loaded) throw notSignedIn();
    const cached = cachedToken(loaded.record, accessTokenKey(resource, organizationId));
    if (!force && this.context.refresher.isFresh(cached)) return cached;
    if (loaded.record.refreshToken === undefined && !this.context.config.scopes.includes(UserScope.OfflineAccess)) {
      throw new LogtoError(
        'not_authenticated',
        'There is no refresh token to get this access token with: `includeReservedScopes: false` left out offline_access. Add UserScope.OfflineAccess to `scopes` and sign in again.',
      );
    }
    const store = this.context.records.storeFor(this.req);
    try {
      const outcome = await this.context.refresher.refresh(store, loaded.signInId, { resource, organizationId, force });
      this.settle({ signInId: loaded.signInId, record: outcome.record });
      return outcome.token;
    } catch (error) {
      if (error instanceof LogtoError && error.code === 'not_authenticated') {
        // The sign-in is over (a dead grant, or signed out elsewhere): stop treating it as signed in.
        this.settle(null);
      }
      throw error;
    }
  }
}

/** How long after its read began a load answers: past it, the token store is asked again. */
const copyFreshness = answerWindow;

function notSignedIn(): LogtoError {
  return new LogtoError('not_authenticated', 'The user is not signed in with Logto; send them to sign in.');
}
