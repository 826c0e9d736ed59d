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

/** What a message may name, so that it says what to fix. None of it is secret. */
export interface ErrorSubject {
  /** The URL that was tried. */
  url?: string;
  appId?: string;
  callbackURL?: string;
  resources?: readonly string[];
}

const quoted = (value: string | undefined): string => (value === undefined ? 'the app' : `"${value}"`);

/**
 * An OAuth error that a misconfiguration causes, as its own code with a message that says what to
 * fix; undefined for the others. Retrying never helps with these, so none of them reads as Logto
 * being down.
 */
function setupError(oauthError: string, description: string | undefined, action: string, subject: ErrorSubject, cause: unknown): LogtoError | undefined {
  const said = `"${oauthError}"${description ? `: ${description}` : ''}`;
  // No `status`: Express's error handler would answer Logto's 400 or 401 for the app's own set-up
  // mistake; Logto's status stays in `cause`.
  const options = { cause, oauthError };
  if (oauthError === 'invalid_client') {
    return new LogtoError(
      'invalid_client',
      `Logto refused the credentials of the app ${quoted(subject.appId)} when trying to ${action} (${said}). `
        + `Check that \`appSecret\` is that app's App secret in the Logto Console, and that the app is a "Traditional web" app, `
        + 'which authenticates with its secret (client_secret_basic).',
      options,
    );
  }
  if (oauthError === 'invalid_redirect_uri' || (oauthError === 'invalid_grant' && /redirect_uri/i.test(description ?? ''))) {
    const uri = subject.callbackURL === undefined ? '`callbackURL`' : `\`callbackURL\` (${subject.callbackURL})`;
    return new LogtoError(
      'invalid_redirect_uri',
      `Logto refused the redirect URI when trying to ${action} (${said}). Register ${uri} exactly among the Redirect URIs of the app `
        + `${quoted(subject.appId)} in the Logto Console, and start every sign-in with the same \`callbackURL\`.`,
      options,
    );
  }
  if (oauthError === 'invalid_target') {
    const listed = subject.resources?.length ? ` (${subject.resources.join(', ')})` : '';
    return new LogtoError(
      'invalid_target',
      `Logto does not know an API resource asked for when trying to ${action} (${said}). Create each resource in \`resources\`${listed} `
        + 'in the Logto Console (API resources) with exactly that identifier, or remove it from `resources`.',
      options,
    );
  }
  return undefined;
}

/** The error and description of a `WWW-Authenticate` challenge (Logto's answer to a wrong app secret sent with HTTP Basic). */
function challengeOf(error: oidc.WWWAuthenticateChallengeError): { error?: string; description?: string } {
  const parameters = error.cause[0]?.parameters;
  return {
    ...(typeof parameters?.error === 'string' ? { error: parameters.error } : {}),
    ...(typeof parameters?.error_description === 'string' ? { description: parameters.error_description } : {}),
  };
}

/**
 * Turns what openid-client, jose and fetch throw into a LogtoError whose code tells the app
 * whether the request was at fault, Logto was, or the app's setup is: Logto's answers are
 * classified by what Logto says, not only by their status. The useful parts (Logto's OAuth error,
 * the HTTP status, a message) are read here; the original goes on as `cause`, which the LogtoError
 * constructor strips of response bodies and JWTs (openid-client keeps the token response there).
 */
export function toLogtoError(error: unknown, action: string, jwtKind: JwtKind = 'invalid_id_token', subject: ErrorSubject = {}): LogtoError {
  if (error instanceof LogtoError) return error;
  const cause = { cause: error };

  if (error instanceof oidc.AuthorizationResponseError) {
    const setup = setupError(error.error, error.error_description, action, subject, error);
    if (setup) return setup;
    const description = error.error_description ? `: ${error.error_description}` : '';
    return new LogtoError('authorization_failed', `Logto ended the sign-in with "${error.error}"${description}.`, {
      ...cause,
      oauthError: error.error,
    });
  }
  if (error instanceof oidc.ResponseBodyError) {
    const setup = setupError(error.error, error.error_description, action, subject, error);
    if (setup) return setup;
    const description = error.error_description ? `: ${error.error_description}` : '';
    const code: LogtoErrorCode = error.status >= 500 ? 'provider_error' : 'token_request_failed';
    return new LogtoError(code, `Logto refused to ${action} with "${error.error}"${description}.`, {
      ...cause,
      oauthError: error.error,
      providerStatus: error.status,
    });
  }
  if (error instanceof oidc.WWWAuthenticateChallengeError) {
    const challenge = challengeOf(error);
    // A 401 challenge without an error parameter is still a refusal of the client's credentials.
    const oauthError = challenge.error ?? (error.status === 401 ? 'invalid_client' : undefined);
    const setup = oauthError === undefined ? undefined : setupError(oauthError, challenge.description, action, subject, error);
    if (setup) return setup;
    const code: LogtoErrorCode = error.status >= 500 ? 'provider_error' : 'token_request_failed';
    return new LogtoError(code, `Logto refused to ${action} with HTTP ${error.status}${oauthError === undefined ? '' : ` and "${oauthError}"`}.`, {
      ...cause,
      ...(oauthError === undefined ? {} : { oauthError }),
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
    const where = subject.url === undefined ? '' : ` at ${subject.url}`;
    return new LogtoError(
      'provider_unreachable',
      `Logto could not be reached${where} when trying to ${action}: ${describeNetworkError(error)}. Check that \`endpoint\` names a running Logto.`,
      cause,
    );
  }
  return new LogtoError('provider_error', `Failed to ${action}: ${error instanceof Error ? error.message : String(error)}.`, cause);
}

function describeNetworkError(error: TypeError): string {
  const detail = error.cause;
  if (detail instanceof Error) return 'code' in detail && typeof detail.code === 'string' ? detail.code : detail.message;
  return error.message;
}
