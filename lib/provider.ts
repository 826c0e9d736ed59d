import * as oidc from 'openid-client';
import type { JWTPayload } from 'jose';
import type { ResolvedConfig } from './configuration.js';
import { LogtoError } from './errors.js';
import { toLogtoError } from './provider-errors.js';
import { TokenVerifier, type JwtExpectations } from './token-verifier.js';

/** The fields of a token endpoint response that passport-logto uses. */
export type TokenEndpointResponse = oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;

/** Parameters of a refresh_token grant that Logto understands. */
export interface RefreshParameters {
  resource?: string;
  organizationId?: string;
}

/**
 * Everything passport-logto says to Logto goes through here: discovery, the JWKS, and each
 * protocol step that openid-client performs. Discovery and the JWKS are fetched once per process
 * and shared by every request; a failed discovery is tried again on the next use, so that the app
 * starts while Logto is down.
 */
export class LogtoProvider {
  private discovered: Promise<oidc.Configuration> | undefined;
  private refreshing: Promise<oidc.Configuration> | undefined;
  private readonly verifier: TokenVerifier;

  constructor(private readonly config: ResolvedConfig) {
    this.verifier = new TokenVerifier({
      issuer: config.issuer,
      jwksUri: async () => {
        const jwksUri = (await this.configuration()).serverMetadata().jwks_uri;
        if (!jwksUri) throw new LogtoError('invalid_provider_response', 'Logto\'s discovery document names no jwks_uri.');
        return new URL(jwksUri);
      },
      algorithms: config.signingAlgorithms,
      clockTolerance: config.clockTolerance,
      timeout: config.timeout,
      cooldown: config.jwksCooldown,
    });
  }

  /** The openid-client configuration, discovered on first use. */
  configuration(): Promise<oidc.Configuration> {
    this.discovered ??= this.discover().catch((error: unknown) => {
      this.discovered = undefined;
      throw toLogtoError(error, 'discover Logto');
    });
    return this.discovered;
  }

  /**
   * The same client with the shorter per-attempt timeout for refreshes: an attempt that gets no
   * answer must leave time to ask again within Logto's 3-second reuse grace.
   */
  private refreshConfiguration(): Promise<oidc.Configuration> {
    this.refreshing ??= this.configuration().then((discovered) => {
      const { appId, appSecret, clockTolerance, refreshTimeout, allowInsecureRequests } = this.config;
      const configuration = new oidc.Configuration(
        discovered.serverMetadata(),
        appId,
        { [oidc.clockTolerance]: clockTolerance },
        oidc.ClientSecretBasic(appSecret),
      );
      if (allowInsecureRequests) oidc.allowInsecureRequests(configuration);
      configuration.timeout = refreshTimeout;
      return configuration;
    });
    this.refreshing.catch(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async discover(): Promise<oidc.Configuration> {
    const { issuer, appId, appSecret, clockTolerance, timeout, allowInsecureRequests } = this.config;
    const configuration = await oidc.discovery(
      new URL(issuer),
      appId,
      { [oidc.clockTolerance]: clockTolerance },
      oidc.ClientSecretBasic(appSecret),
      { execute: allowInsecureRequests ? [oidc.allowInsecureRequests] : [], timeout },
    );
    configuration.timeout = timeout;
    return configuration;
  }

  /** Verifies a JWT that Logto signed; see {@link TokenVerifier}. */
  verifyJwt<Claims extends JWTPayload>(token: string, expect: JwtExpectations): Promise<Claims> {
    return this.verifier.verify<Claims>(token, expect);
  }

  async authorizationUrl(parameters: URLSearchParams): Promise<URL> {
    return oidc.buildAuthorizationUrl(await this.configuration(), parameters);
  }

  /** Exchanges the authorization code; openid-client checks state, `iss`, PKCE and the ID token claims. */
  async exchangeCode(callbackUrl: URL, checks: { codeVerifier: string; state: string; nonce: string }): Promise<TokenEndpointResponse> {
    const configuration = await this.configuration();
    try {
      return await oidc.authorizationCodeGrant(configuration, callbackUrl, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      throw toLogtoError(error, 'exchange the authorization code');
    }
  }

  /** Discovery, ready before anything is sent: a failure here means nothing reached the token endpoint. */
  async ready(): Promise<void> {
    await this.refreshConfiguration();
  }

  async refresh(refreshToken: string, parameters: RefreshParameters = {}): Promise<TokenEndpointResponse> {
    const configuration = await this.refreshConfiguration();
    const body: Record<string, string> = {};
    if (parameters.resource !== undefined) body.resource = parameters.resource;
    if (parameters.organizationId !== undefined) body.organization_id = parameters.organizationId;
    try {
      return await oidc.refreshTokenGrant(configuration, refreshToken, body);
    } catch (error) {
      throw toLogtoError(error, 'refresh the tokens');
    }
  }

  async fetchUserInfo(accessToken: string, expectedSubject: string): Promise<oidc.UserInfoResponse> {
    const configuration = await this.configuration();
    try {
      return await oidc.fetchUserInfo(configuration, accessToken, expectedSubject);
    } catch (error) {
      if (error instanceof oidc.ClientError && error.code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') {
        throw new LogtoError('userinfo_mismatch', 'Logto\'s userinfo names another user than the ID token.', { cause: error });
      }
      throw toLogtoError(error, 'fetch userinfo');
    }
  }

  async revokeRefreshToken(refreshToken: string): Promise<void> {
    const configuration = await this.configuration();
    try {
      await oidc.tokenRevocation(configuration, refreshToken, { token_type_hint: 'refresh_token' });
    } catch (error) {
      throw toLogtoError(error, 'revoke the refresh token');
    }
  }

  async endSessionUrl(parameters: Record<string, string>): Promise<URL> {
    return oidc.buildEndSessionUrl(await this.configuration(), parameters);
  }
}

