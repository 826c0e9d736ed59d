import * as oidc from 'openid-client';
import { decodeJwt, type JWTPayload } from 'jose';
import type { LogtoFetch, LogtoFetchInit, ResolvedConfig } from '../configuration.js';
import { LogtoError } from '../errors.js';
import type { IdTokenClaims } from './claims.js';
import { toLogtoError, type ErrorSubject } from './provider-errors.js';
import { TokenVerifier, type JwtExpectations } from './token-verifier.js';

/** The fields of a token endpoint response that passport-logto uses. */
export type TokenEndpointResponse = oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;

/**
 * Logto's discovery document (`/oidc/.well-known/openid-configuration`) as it serves it, plus the
 * camelCase names that Logto's SDKs (`getOidcConfig()` of @logto/client) give its endpoints.
 */
export interface LogtoOidcConfig {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  userinfo_endpoint: string;
  jwks_uri: string;
  end_session_endpoint: string;
  revocation_endpoint: string;
  /** Every other field of the discovery document (scopes_supported, claims_supported, ...). */
  [field: string]: unknown;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  userinfoEndpoint: string;
  jwksUri: string;
  endSessionEndpoint: string;
  revocationEndpoint: string;
}

/** The endpoints that Logto's SDKs rely on, by their camelCase name. */
const logtoEndpoints = {
  authorizationEndpoint: 'authorization_endpoint',
  tokenEndpoint: 'token_endpoint',
  userinfoEndpoint: 'userinfo_endpoint',
  jwksUri: 'jwks_uri',
  endSessionEndpoint: 'end_session_endpoint',
  revocationEndpoint: 'revocation_endpoint',
} as const;

/**
 * What an ID token must match besides Logto's signature, issuer, audience and times: at sign-in
 * the nonce sent with it; at a refresh the user of the ID token it replaces.
 */
export type IdTokenExpectation = { nonce: string } | { replacing: string };

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
export class LogtoConnection {
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
      fetch: config.fetch,
    });
  }

  /** The openid-client configuration, discovered on first use. */
  configuration(): Promise<oidc.Configuration> {
    this.discovered ??= this.discover().catch((error: unknown) => {
      this.discovered = undefined;
      throw this.discoveryError(error);
    });
    return this.discovered;
  }

  /**
   * A discovery document that is missing, not JSON or about another issuer means that `endpoint`
   * is wrong (a typo, `/oidc` added, another site): a set-up mistake, not Logto being down.
   */
  private discoveryError(error: unknown): LogtoError {
    const url = `${this.config.issuer}/.well-known/openid-configuration`;
    const converted = toLogtoError(error, 'discover Logto', undefined, { url });
    if (converted.code !== 'invalid_provider_response' && converted.code !== 'token_request_failed') return converted;
    const detail = error instanceof oidc.ClientError ? error.cause : undefined;
    const status = detail instanceof Response ? detail.status : converted.status;
    const issuer = (detail as { attribute?: unknown; body?: { issuer?: unknown } } | undefined)?.attribute === 'issuer'
      ? (detail as { body: { issuer?: unknown } }).body.issuer
      : undefined;
    const what = status !== undefined
      ? `answered HTTP ${status}`
      : typeof issuer === 'string'
        ? `names the issuer "${issuer}", not "${this.config.issuer}"`
        : 'is not an OpenID Connect discovery document';
    return new LogtoError(
      'invalid_endpoint',
      `\`endpoint\` (${this.config.endpoint}) does not lead to a Logto tenant: its discovery document ${url} ${what}. `
        + 'Set `endpoint` to the endpoint the Logto Console shows (https://<tenant>.logto.app or your custom domain), without /oidc.',
      // No `status` (Logto's 404 would be answered by Express's error handler): the message names it.
      { cause: error },
    );
  }

  /** What error messages may name about this app and the endpoint tried. */
  private subject(url: string | undefined): ErrorSubject {
    const { appId, callbackURL, resources } = this.config;
    return { appId, callbackURL, resources, ...(url === undefined ? {} : { url }) };
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
      this.useAppFetch(configuration);
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
      {
        execute: allowInsecureRequests ? [oidc.allowInsecureRequests] : [],
        timeout,
        ...(this.config.fetch === undefined ? {} : { [oidc.customFetch]: this.customFetch(this.config.fetch) }),
      },
    );
    configuration.timeout = timeout;
    this.useAppFetch(configuration);
    return configuration;
  }

  /** Sends the token, userinfo and revocation requests of this configuration through the `fetch` option. */
  private useAppFetch(configuration: oidc.Configuration): void {
    if (this.config.fetch !== undefined) configuration[oidc.customFetch] = this.customFetch(this.config.fetch);
  }

  private customFetch(appFetch: LogtoFetch): oidc.CustomFetch {
    // openid-client checks that the answer is a Response (undici's passes), so the shape is enough here.
    return async (url, options) => (await appFetch(url, options as LogtoFetchInit)) as Response;
  }

  /**
   * Logto's discovery metadata, discovered once and shared (a failed discovery is tried again).
   * Each call gets its own copy (openid-client's serverMetadata() clones), so a caller that
   * changes it changes nothing here.
   */
  async oidcConfig(): Promise<LogtoOidcConfig> {
    const metadata = (await this.configuration()).serverMetadata() as Record<string, unknown>;
    const camelCase: Record<string, string> = {};
    for (const [name, field] of Object.entries(logtoEndpoints)) {
      const value = metadata[field];
      if (typeof value !== 'string') {
        throw new LogtoError('invalid_provider_response', `Logto's discovery document has no ${field}; check that \`endpoint\` is a Logto tenant.`);
      }
      camelCase[name] = value;
    }
    return { ...metadata, ...camelCase } as LogtoOidcConfig;
  }

  /** Verifies a JWT that Logto signed; see {@link TokenVerifier}. */
  verifyJwt<Claims extends JWTPayload>(token: string, expect: JwtExpectations): Promise<Claims> {
    return this.verifier.verify<Claims>(token, expect);
  }

  /**
   * Verifies an ID token that came from Logto's token endpoint, at sign-in or at a refresh; any
   * mismatch is invalid_id_token.
   */
  async verifyIdToken(idToken: string, expect: IdTokenExpectation): Promise<IdTokenClaims> {
    const claims = await this.verifyJwt<IdTokenClaims>(idToken, { audience: this.config.appId, kind: 'invalid_id_token', fromLogto: true });
    if ('nonce' in expect) {
      if (claims.nonce !== expect.nonce) throw new LogtoError('invalid_id_token', 'The ID token nonce does not match this sign-in.');
    } else if (claims.sub !== decodeJwt(expect.replacing).sub) {
      throw new LogtoError('invalid_id_token', 'The refreshed ID token is about another user.');
    }
    return claims;
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
      const converted = toLogtoError(error, 'exchange the authorization code', undefined, this.subject(configuration.serverMetadata().token_endpoint));
      if (converted.code !== 'token_request_failed' || converted.oauthError !== 'invalid_grant') throw converted;
      // Logto keeps the reason to itself ("grant request is invalid"): name every likely one.
      throw new LogtoError(
        'token_request_failed',
        `${converted.message} The code was used already, expired, or was issued for another redirect URI than \`callbackURL\` `
          + `(${this.config.callbackURL}): every instance must use the same callbackURL. Start the sign-in again.`,
        { cause: converted, oauthError: 'invalid_grant', ...(converted.providerStatus === undefined ? {} : { providerStatus: converted.providerStatus }) },
      );
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
      const converted = toLogtoError(error, 'refresh the tokens', undefined, this.subject(configuration.serverMetadata().token_endpoint));
      // The Refresher reads token_request_failed as "Logto answered with an OAuth error" (nothing
      // was rotated, so no retry) and translates it by oauthError; a set-up code keeps that code
      // for it, with the message that says what to fix.
      if (converted.oauthError !== undefined && converted.causedBy === 'infrastructure' && converted.code !== 'provider_error') {
        throw new LogtoError('token_request_failed', converted.message, {
          cause: converted,
          oauthError: converted.oauthError,
          ...(converted.providerStatus === undefined ? {} : { providerStatus: converted.providerStatus }),
        });
      }
      throw converted;
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
      throw toLogtoError(error, 'fetch userinfo', undefined, this.subject(configuration.serverMetadata().userinfo_endpoint));
    }
  }

  async revokeRefreshToken(refreshToken: string): Promise<void> {
    const configuration = await this.configuration();
    try {
      await oidc.tokenRevocation(configuration, refreshToken, { token_type_hint: 'refresh_token' });
    } catch (error) {
      throw toLogtoError(error, 'revoke the refresh token', undefined, this.subject(configuration.serverMetadata().revocation_endpoint));
    }
  }

  async endSessionUrl(parameters: Record<string, string>): Promise<URL> {
    return oidc.buildEndSessionUrl(await this.configuration(), parameters);
  }
}

