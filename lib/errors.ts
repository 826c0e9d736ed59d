/**
 * Every failure that passport-logto reports is a LogtoError with a stable `code`, so that an
 * app can branch on the code instead of parsing messages.
 */
export type LogtoErrorCode =
  /** A strategy option is missing or invalid; thrown by the constructor. */
  | 'invalid_config'
  /** No session middleware ran before Passport, or it gave no `req.session`. */
  | 'session_required'
  /** The callback carried duplicated, oversized or non-string parameters. */
  | 'invalid_callback'
  /** The callback's `state` is missing, unknown, expired, or was already used. */
  | 'invalid_state'
  /** The callback's `iss` response parameter is missing or names another issuer (RFC 9207). */
  | 'issuer_mismatch'
  /** Logto sent the user back with an `error` (the user cancelled, consent was refused, ...). */
  | 'authorization_failed'
  /** The ID token failed verification: signature, algorithm, issuer, audience, time or nonce. */
  | 'invalid_id_token'
  /** A JWT access token failed verification. */
  | 'invalid_access_token'
  /** Logto refused a token request with an OAuth error such as `invalid_grant`. */
  | 'token_request_failed'
  /** The signed-in session holds no usable tokens, or its grant is gone. */
  | 'not_authenticated'
  /** An organization token was asked for, but the organizations scope is not configured. */
  | 'missing_scope_organizations'
  /** An access token was asked for a resource that was not declared in `resources`. */
  | 'invalid_resource'
  /** Userinfo named another subject than the ID token. */
  | 'userinfo_mismatch'
  /** The back-channel logout token failed verification. */
  | 'invalid_logout_token'
  /** Logto could not be reached (connection refused, DNS, reset). */
  | 'provider_unreachable'
  /** Logto did not answer within the configured timeout. */
  | 'provider_timeout'
  /** Logto answered with a 5xx status. */
  | 'provider_error'
  /** Logto answered with something that is not the expected JSON (an HTML error page, say). */
  | 'invalid_provider_response'
  /** The session store failed to load or save the session. */
  | 'session_store_failed'
  /** The token store failed to read or write a sign-in's tokens, or a lock on them timed out. */
  | 'token_store_failed'
  /** An organization token was refused because the user is not a member of that organization. */
  | 'not_organization_member'
  /** A token getter was called before the sign-in's tokens were loaded: use the route guard or `await client.load()`. */
  | 'not_loaded';

export interface LogtoErrorOptions {
  /** The OAuth error code that Logto sent, when there was one (`access_denied`, `invalid_grant`, ...). */
  oauthError?: string;
  /** The HTTP status that Logto answered with, when there was one. */
  status?: number;
  cause?: unknown;
}

export class LogtoError extends Error {
  override readonly name = 'LogtoError';
  readonly code: LogtoErrorCode;
  readonly oauthError: string | undefined;
  readonly status: number | undefined;

  constructor(code: LogtoErrorCode, message: string, options: LogtoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.oauthError = options.oauthError;
    this.status = options.status;
  }
}

export function isLogtoError(value: unknown, code?: LogtoErrorCode): value is LogtoError {
  return value instanceof LogtoError && (code === undefined || value.code === code);
}

/**
 * Codes caused by what the user or the request did. Passport's `fail` reports these, so that
 * `failureRedirect` and `failureMessage` apply; everything else is an infrastructure fault for
 * `error`.
 */
const requestCausedCodes: ReadonlySet<LogtoErrorCode> = new Set<LogtoErrorCode>([
  'invalid_callback',
  'invalid_state',
  'issuer_mismatch',
  'authorization_failed',
  'invalid_id_token',
  'invalid_access_token',
  'token_request_failed',
  'not_authenticated',
  'not_organization_member',
  'userinfo_mismatch',
  'invalid_logout_token',
]);

export function isCausedByRequest(error: LogtoError): boolean {
  return requestCausedCodes.has(error.code);
}

/**
 * A failure of the session machinery that Passport reports (the store failing to regenerate or
 * save the session), as a LogtoError that keeps the original as its cause.
 */
export function sessionStoreError(error: unknown, during: string): LogtoError {
  if (error instanceof LogtoError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new LogtoError('session_store_failed', `The session store failed ${during}: ${detail}`, { cause: error });
}
