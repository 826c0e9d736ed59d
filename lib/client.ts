import { decodeJwt } from 'jose';
import type { AccessTokenClaims, IdTokenClaims, UserInfoResponse } from './claims.js';
import type { ResolvedConfig } from './configuration.js';
import { LogtoError } from './errors.js';
import type { LogtoProvider, RefreshParameters, TokenEndpointResponse } from './provider.js';
import type { GrantState, RefreshCoordinator } from './refresh-coordinator.js';
import { UserScope } from './scopes.js';
import { accessTokenKey, type SessionTokenStore, type StoredAccessToken, type StoredTokens } from './session-store.js';

/** What a {@link LogtoClient} works with; one per strategy, shared by every request. */
export interface LogtoClientContext {
  config: ResolvedConfig;
  provider: LogtoProvider;
  store: SessionTokenStore;
  coordinator: RefreshCoordinator;
}

interface PassportRequest {
  isAuthenticated?: () => boolean;
}

const nowInSeconds = (): number => Math.floor(Date.now() / 1000);

/**
 * The per-request helper over the tokens that the strategy keeps in the session: claims,
 * userinfo, and access tokens for API resources and organizations, refreshed when due.
 */
export class LogtoClient {
  /** Set by `logto.authenticated({ fetchUserInfo: true })`. */
  userInfo: UserInfoResponse | undefined;

  constructor(
    private readonly req: object,
    private readonly context: LogtoClientContext,
  ) {}

  /** Signed in through this strategy, with tokens in the session that can still be used. */
  isAuthenticated(): boolean {
    const passportSaysSignedIn = (this.req as PassportRequest).isAuthenticated?.() ?? true;
    const tokens = this.context.store.read(this.req);
    if (!passportSaysSignedIn || !tokens?.idToken) return false;
    return tokens.refreshToken !== undefined || this.isFresh(tokens.accessToken);
  }

  getIdToken(): string | undefined {
    return this.context.store.read(this.req)?.idToken;
  }

  getRefreshToken(): string | undefined {
    return this.context.store.read(this.req)?.refreshToken;
  }

  /** The claims of the stored ID token, verified when it was stored. */
  getIdTokenClaims(): IdTokenClaims {
    return decodeJwt<IdTokenClaims>(this.signedInTokens().idToken) as IdTokenClaims;
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
    return (await this.accessToken(resource, organizationId)).token;
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
    await this.refreshFor(undefined, undefined, true);
  }

  private signedInTokens(): StoredTokens {
    const tokens = this.context.store.read(this.req);
    if (!tokens?.idToken) {
      throw new LogtoError('not_authenticated', 'The user is not signed in with Logto; send them to sign in.');
    }
    return tokens;
  }

  private isFresh(token: StoredAccessToken | undefined): token is StoredAccessToken {
    return token !== undefined && token.expiresAt - this.context.config.accessTokenExpiryMargin > nowInSeconds();
  }

  private cachedToken(tokens: StoredTokens, key: string): StoredAccessToken | undefined {
    return key === accessTokenKey(undefined, undefined) ? tokens.accessToken : tokens.resourceTokens?.[key];
  }

  private async accessToken(resource: string | undefined, organizationId: string | undefined): Promise<StoredAccessToken> {
    this.checkRequest(resource, organizationId);
    const tokens = this.signedInTokens();
    const cached = this.cachedToken(tokens, accessTokenKey(resource, organizationId));
    if (this.isFresh(cached)) return cached;
    return this.refreshFor(resource, organizationId, false);
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

  /**
   * One refresh at a time per sign-in. A request that waited its turn first looks at what the
   * previous turn got, so that a burst of requests for one token costs one refresh.
   */
  private async refreshFor(resource: string | undefined, organizationId: string | undefined, force: boolean): Promise<StoredAccessToken> {
    const key = accessTokenKey(resource, organizationId);
    return this.context.coordinator.exclusive(this.signedInTokens().signInId, async (state) => {
      // Read again: while this call waited, another one of this request may have saved tokens,
      // or found the grant dead and removed them.
      const tokens = this.signedInTokens();
      const known = state.accessTokens.get(key);
      if (!force && this.isFresh(known)) {
        this.save(tokens, state, key, known);
        return known;
      }
      const refreshToken = state.refreshToken ?? tokens.refreshToken;
      if (!refreshToken) {
        throw new LogtoError('not_authenticated', 'The session has no refresh token (Logto issues one only with prompt=consent); sign in again.');
      }
      const parameters: RefreshParameters = {};
      if (resource !== undefined) parameters.resource = resource;
      if (organizationId !== undefined) parameters.organizationId = organizationId;
      const response = await this.requestRefresh(tokens, refreshToken, parameters);

      if (response.refresh_token) state.refreshToken = response.refresh_token;
      if (response.id_token) state.idToken = await this.verifiedIdToken(response.id_token, tokens);
      const fresh: StoredAccessToken = {
        token: response.access_token,
        expiresAt: nowInSeconds() + (response.expiresIn() ?? 0),
        ...(response.scope === undefined ? {} : { scope: response.scope }),
      };
      state.accessTokens.set(key, fresh);
      this.save(tokens, state, key, fresh);
      return fresh;
    });
  }

  private async requestRefresh(tokens: StoredTokens, refreshToken: string, parameters: RefreshParameters): Promise<TokenEndpointResponse> {
    try {
      return await this.context.provider.refresh(refreshToken, parameters);
    } catch (error) {
      if (error instanceof LogtoError && error.code === 'token_request_failed') {
        if (error.oauthError === 'invalid_grant') {
          // Revoked, expired, or the user was suspended: the tokens are dead, so drop them.
          this.context.store.clear(this.req);
          await this.context.coordinator.forget(tokens.signInId);
          throw new LogtoError('not_authenticated', 'The Logto sign-in has ended (the refresh token was revoked or expired); sign in again.', {
            cause: error,
            oauthError: error.oauthError,
          });
        }
        if (error.oauthError === 'invalid_target') {
          throw new LogtoError('invalid_resource', `Logto refused the resource "${parameters.resource ?? ''}": it was not granted at sign-in. Sign in again.`, {
            cause: error,
            oauthError: error.oauthError,
          });
        }
      }
      throw error;
    }
  }

  /** A refreshed ID token replaces the stored one only once verified and about the same user. */
  private async verifiedIdToken(idToken: string, tokens: StoredTokens): Promise<string> {
    const claims = await this.context.provider.verifyJwt<IdTokenClaims>(idToken, {
      audience: this.context.config.appId,
      kind: 'invalid_id_token',
      fromLogto: true,
    });
    if (claims.sub !== decodeJwt(tokens.idToken).sub) {
      throw new LogtoError('invalid_id_token', 'The refreshed ID token is about another user.');
    }
    return idToken;
  }

  /** Writes the newest tokens into this request's session; the session middleware saves it. */
  private save(tokens: StoredTokens, state: GrantState, key: string, token: StoredAccessToken): void {
    tokens = this.context.store.read(this.req) ?? tokens;
    const updated: StoredTokens = { ...tokens };
    if (state.refreshToken) updated.refreshToken = state.refreshToken;
    if (state.idToken) updated.idToken = state.idToken;
    if (key === accessTokenKey(undefined, undefined)) {
      updated.accessToken = token;
    } else {
      updated.resourceTokens = { ...tokens.resourceTokens, [key]: token };
    }
    this.context.store.write(this.req, updated);
  }
}
