import * as oidc from 'openid-client';
import { errors as joseErrors } from 'jose';
import { LogtoError, type LogtoErrorCode } from '../errors.js';

/** Which kind of JWT a verification failure concerns, so that it gets the right error code. */
export type JwtKind = 'invalid_id_token' | 'invalid_access_token' | 'invalid_logout_token';

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
 * whether the request was at fault or Logto was. The useful parts (Logto's OAuth error, the HTTP
 * status, a message) are read here; the original goes on as `cause`, which the LogtoError
 * constructor strips of response bodies and JWTs (openid-client keeps the token response there).
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
      providerStatus: error.status,
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
          return new LogtoError('provider_error', `Logto answered HTTP ${status} when trying to ${action}.`, { ...cause, providerStatus: status });
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
