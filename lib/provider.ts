import * as oidc from 'openid-client';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { ResolvedConfig } from './configuration.js';
import { LogtoError, type LogtoErrorCode } from './errors.js';

/** The fields of a token endpoint response that passport-logto uses. */
export type TokenEndpointResponse = oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;

/** Which kind of JWT a verification failure concerns, so that it gets the right error code. */
type JwtKind = 'invalid_id_token' | 'invalid_access_token' | 'invalid_logout_token';

export interface JwtExpectations {
  audience: string | readonly string[];
  kind: JwtKind;
  /** Required `typ` header, compared without the `application/` prefix. */
  typ?: string;
}

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
  private remoteKeys: JWTVerifyGetKey | undefined;

  constructor(private readonly config: ResolvedConfig) {}

  /** The openid-client configuration, discovered on first use. */
  configuration(): Promise<oidc.Configuration> {
    this.discovered ??= this.discover().catch((error: unknown) => {
      this.discovered = undefined;
      throw toLogtoError(error, 'discover Logto');
    });
    return this.discovered;
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

  private async keys(): Promise<JWTVerifyGetKey> {
    if (this.remoteKeys) return this.remoteKeys;
    const jwksUri = (await this.configuration()).serverMetadata().jwks_uri;
    if (!jwksUri) throw new LogtoError('invalid_provider_response', 'Logto\'s discovery document names no jwks_uri.');
    this.remoteKeys ??= createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: this.config.timeout * 1000,
      cooldownDuration: this.config.jwksCooldown * 1000,
    });
    return this.remoteKeys;
  }

  /**
   * Verifies a JWT that Logto signed: signature against the cached JWKS (downloaded again on an
   * unknown key id), the algorithm allow-list, issuer, audience and times.
   */
  async verifyJwt<Claims extends JWTPayload>(token: string, expect: JwtExpectations): Promise<Claims> {
    try {
      const { payload } = await jwtVerify<Claims>(token, await this.keys(), {
        algorithms: [...this.config.signingAlgorithms],
        issuer: this.config.issuer,
        audience: typeof expect.audience === 'string' ? expect.audience : [...expect.audience],
        clockTolerance: this.config.clockTolerance,
        ...(expect.typ === undefined ? {} : { typ: expect.typ }),
      });
      return payload;
    } catch (error) {
      throw toLogtoError(error, 'verify a token', expect.kind);
    }
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

  async refresh(refreshToken: string, parameters: RefreshParameters = {}): Promise<TokenEndpointResponse> {
    const configuration = await this.configuration();
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

/** openid-client wraps its processing error, whose own cause holds the JWT header or claims it rejected. */
function hasJwtDetails(error: unknown): boolean {
  for (let cause = error, depth = 0; typeof cause === 'object' && cause !== null && depth < 3; depth += 1) {
    if ('claims' in cause || 'header' in cause) return true;
    cause = (cause as { cause?: unknown }).cause;
  }
  return false;
}

function statusOf(cause: unknown): number | undefined {
  return cause instanceof Response ? cause.status : undefined;
}

/**
 * Turns what openid-client, jose and fetch throw into a LogtoError whose code tells the app
 * whether the request was at fault or Logto was.
 */
export function toLogtoError(error: unknown, action: string, jwtKind: JwtKind = 'invalid_id_token'): LogtoError {
  if (error instanceof LogtoError) return error;
  const cause = { cause: error };

  if (error instanceof oidc.AuthorizationResponseError) {
    const description = error.error_description ? `: ${error.error_description}` : '';
    return new LogtoError('authorization_failed', `Logto ended the sign-in with "${error.error}"${description}.`, {
      ...cause,
      oauthError: error.error,
    });
  }
  if (error instanceof oidc.ResponseBodyError) {
    const description = error.error_description ? `: ${error.error_description}` : '';
    const code: LogtoErrorCode = error.status >= 500 ? 'provider_error' : 'token_request_failed';
    return new LogtoError(code, `Logto refused to ${action} with "${error.error}"${description}.`, {
      ...cause,
      oauthError: error.error,
      status: error.status,
    });
  }
  if (error instanceof oidc.ClientError) {
    switch (error.code) {
      case 'OAUTH_TIMEOUT':
      case 'OAUTH_ABORT':
        return new LogtoError('provider_timeout', `Logto did not answer in time when trying to ${action}.`, cause);
      case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED':
      case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED':
        return new LogtoError(jwtKind, `The token from Logto is not valid (${error.message}).`, cause);
      case 'OAUTH_INVALID_RESPONSE':
        if (hasJwtDetails(error)) {
          return new LogtoError(jwtKind, `The token from Logto is not valid (${error.message}).`, cause);
        }
        break;
      case 'OAUTH_RESPONSE_IS_NOT_CONFORM': {
        const status = statusOf(error.cause);
        if (status !== undefined && status >= 500) {
          return new LogtoError('provider_error', `Logto answered HTTP ${status} when trying to ${action}.`, { ...cause, status });
        }
        break;
      }
    }
    return new LogtoError('invalid_provider_response', `Logto gave an unexpected answer when trying to ${action} (${error.message}).`, cause);
  }
  if (error instanceof joseErrors.JOSEError) {
    switch (error.code) {
      case 'ERR_JWKS_TIMEOUT':
        return new LogtoError('provider_timeout', 'Logto did not serve its signing keys (JWKS) in time.', cause);
      case 'ERR_JWKS_INVALID':
      case 'ERR_JOSE_GENERIC':
        return new LogtoError('invalid_provider_response', `Logto's signing keys (JWKS) could not be loaded: ${error.message}.`, cause);
      default:
        return new LogtoError(jwtKind, `The token is not valid: ${error.message}.`, cause);
    }
  }
  if (error instanceof DOMException && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return new LogtoError('provider_timeout', `Logto did not answer in time when trying to ${action}.`, cause);
  }
  if (error instanceof TypeError && error.message === 'fetch failed') {
    return new LogtoError('provider_unreachable', `Logto could not be reached when trying to ${action}: ${describeNetworkError(error)}.`, cause);
  }
  return new LogtoError('provider_error', `Failed to ${action}: ${error instanceof Error ? error.message : String(error)}.`, cause);
}

function describeNetworkError(error: TypeError): string {
  const detail = error.cause;
  if (detail instanceof Error) return 'code' in detail && typeof detail.code === 'string' ? detail.code : detail.message;
  return error.message;
}
