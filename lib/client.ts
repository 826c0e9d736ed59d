import { decodeJwt } from 'jose';
import type { AccessTokenClaims, IdTokenClaims, UserInfoResponse } from './claims.js';
import type { ResolvedConfig } from './configuration.js';
import { LogtoError } from './errors.js';
import type { LogtoProvider } from './provider.js';
import { cachedToken, type Refresher } from './refresh.js';
import { UserScope } from './scopes.js';
import type { SessionReference } from './session-store.js';
import { accessTokenKey, type SignInRecords, type StoredAccessToken, type TokenRecord } from './sign-in-records.js';

/** What a {@link LogtoClient} works with; one per strategy, shared by every request. */
export interface LogtoClientContext {
  config: ResolvedConfig;
  provider: LogtoProvider;
  records: SignInRecords;
  refresher: Refresher;
  session: SessionReference;
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
  private loading: Promise<Loaded> | undefined;

  constructor(
    private readonly req: object,
    private readonly context: LogtoClientContext,
  ) {}

  /** Reads this sign-in's tokens from the token store; the getters need it. Resolves to the helper. */
  async load(): Promise<this> {
    await this.current();
    return this;
  }

  /**
   * Signed in through this strategy with tokens that can still be used. Before `load()`, it can
   * only say whether the session refers to a sign-in; the route guard loads first.
   */
  isAuthenticated(): boolean {
    const passportSaysSignedIn = (this.req as PassportRequest).isAuthenticated?.() ?? true;
    if (!passportSaysSignedIn) return false;
    if (this.loaded === undefined) {
      const reference = this.context.session.read(this.req);
      if (!reference) return false;
      const known = reference.legacy ?? this.context.records.peek(reference.signInId);
      if (known === undefined) return true;
      return known !== null && (known.refreshToken !== undefined || this.context.refresher.isFresh(known.accessToken));
    }
    if (this.loaded === null) return false;
    const { record } = this.loaded;
    return record.refreshToken !== undefined || this.context.refresher.isFresh(record.accessToken);
  }

  getIdToken(): string | undefined {
    return this.loadedRecord()?.idToken;
  }

  getRefreshToken(): string | undefined {
    return this.loadedRecord()?.refreshToken;
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
  async getAccessToken(resource?: string, organizationId?: string): Promise<string> {
    return (await this.tokenFor(resource, organizationId, false)).token;
  }

  async getAccessTokenClaims(resource?: string, organizationId?: string): Promise<AccessTokenClaims> {
    if (resource === undefined && organizationId === undefined) {
      throw new LogtoError('invalid_resource', 'The access token for userinfo is opaque and has no claims; name an API resource or an organization.');
    }
    return decodeJwt<AccessTokenClaims>(await this.getAccessToken(resource, organizationId)) as AccessTokenClaims;
  }

  /** The organization token, whose audience is `urn:logto:organization:<id>`. */
  async getOrganizationToken(organizationId: string): Promise<string> {
    return this.getAccessToken(undefined, organizationId);
  }

  async getOrganizationTokenClaims(organizationId: string): Promise<AccessTokenClaims> {
    return this.getAccessTokenClaims(undefined, organizationId);
  }

  /** Refreshes now (after the user's roles changed, say), replacing the stored ID token. */
  async refresh(): Promise<void> {
    await this.tokenFor(undefined, undefined, true);
  }

  private async current(): Promise<Loaded> {
    if (this.loaded !== undefined) return this.loaded;
    this.loading ??= this.read().then(
      (loaded) => (this.loaded = loaded),
      (error: unknown) => {
        this.loading = undefined;
        throw error;
      },
    );
    return this.loading;
  }

  private async read(): Promise<Loaded> {
    const reference = this.context.session.read(this.req);
    if (!reference) return null;
    const { records, session } = this.context;
    const store = records.storeFor(this.req);
    if (reference.legacy) {
      // A session written by 0.1.0: move its tokens into their own record, once.
      const record = await records.adopt(store, reference.signInId, reference.legacy);
      session.write(this.req, reference.signInId);
      return { signInId: reference.signInId, record };
    }
    const record = await records.read(store, reference.signInId, false);
    return record ? { signInId: reference.signInId, record } : null;
  }

  private loadedRecord(): TokenRecord | undefined {
    if (this.loaded === undefined) {
      // Without a reference in the session there is nothing to load: signed out.
      const reference = this.context.session.read(this.req);
      if (reference === undefined) return undefined;
      // This process's own copy answers when it has one (it signed the user in, or served them lately).
      const known = reference.legacy ?? this.context.records.peek(reference.signInId);
      if (known !== undefined) return known ?? undefined;
      throw new LogtoError(
        'not_loaded',
        "This sign-in's tokens are not loaded yet: put logto.authenticated() before the route, or `await logto.client(req).load()` first.",
      );
    }
    return this.loaded?.record;
  }

  private async tokenFor(resource: string | undefined, organizationId: string | undefined, force: boolean): Promise<StoredAccessToken> {
    this.checkRequest(resource, organizationId);
    const loaded = await this.current();
    if (!loaded) throw notSignedIn();
    const cached = cachedToken(loaded.record, accessTokenKey(resource, organizationId));
    if (!force && this.context.refresher.isFresh(cached)) return cached;
    const store = this.context.records.storeFor(this.req);
    try {
      const outcome = await this.context.refresher.refresh(store, loaded.signInId, { resource, organizationId, force });
      this.loaded = { signInId: loaded.signInId, record: outcome.record };
      return outcome.token;
    } catch (error) {
      if (error instanceof LogtoError && error.code === 'not_authenticated') {
        // The sign-in is over (a dead grant, or signed out elsewhere): stop treating it as signed in.
        this.loaded = null;
      }
      throw error;
    }
  }

  /** Refuses, without a network call, what Logto would refuse anyway. */
  private checkRequest(resource: string | undefined, organizationId: string | undefined): void {
    if (resource !== undefined && !this.context.config.resources.includes(resource)) {
      throw new LogtoError(
        'invalid_resource',
        `The resource "${resource}" was not declared in the \`resources\` option at sign-in, so Logto will not grant it. Add it and sign in again.`,
      );
    }
    if (organizationId !== undefined) {
      if (typeof organizationId !== 'string' || organizationId === '') {
        throw new LogtoError('invalid_resource', 'The organization ID must be a non-empty string.');
      }
      if (!this.context.config.scopes.includes(UserScope.Organizations)) {
        throw new LogtoError(
          'missing_scope_organizations',
          `Organization tokens need the scope ${UserScope.Organizations}: add UserScope.Organizations to \`scopes\` and sign in again.`,
        );
      }
    }
  }
}

function notSignedIn(): LogtoError {
  return new LogtoError('not_authenticated', 'The user is not signed in with Logto; send them to sign in.');
}
