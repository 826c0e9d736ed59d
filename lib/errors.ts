import { errors as joseErrors } from 'jose';

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
  /** A `prompt=none` sign-in that Logto could not complete without showing the user a page. */
  | 'sign_in_required'
  /** The ID token failed verification: signature, algorithm, issuer, audience, time or nonce. */
  | 'invalid_id_token'
  /** A JWT access token failed verification. */
  | 'invalid_access_token'
  /** Logto refused a token request with an OAuth error such as `invalid_grant`. */
  | 'token_request_failed'
  /** Logto refused the app's credentials (`invalid_client`): a wrong app secret or authentication method. */
  | 'invalid_client'
  /** Logto refused the redirect URI: `callbackURL` is not registered, or the code was issued for another one. */
  | 'invalid_redirect_uri'
  /** `endpoint` does not lead to a Logto tenant: its discovery document is missing, not JSON, or names another issuer. */
  | 'invalid_endpoint'
  /** Logto does not know an API resource in `resources` (`invalid_target`): it is not created in the Logto Console under that identifier. */
  | 'invalid_target'
  /** The sign-in came back to another host than the one it started on, so the browser did not send its cookie. */
  | 'callback_host_mismatch'
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
  /** MemoryTokenStore was full and dropped this sign-in's tokens: raise `maxEntries` or use a shared store. */
  | 'token_store_evicted'
  /** An organization token was refused because the user is not a member of that organization. */
  | 'not_organization_member'
  /** A token getter was called before the sign-in's tokens were loaded: use the route guard or `await client.load()`. */
  | 'not_loaded'
  /** LogtoTenants or LogtoBearerTenants serve no tenant at the request's host or path (a spoofed Host header, say). */
  | 'unknown_tenant'
  /** The web framework gives passport-logto no way to do what it needs (answer a request, set a cookie, log in). */
  | 'unsupported_host'
  /** LogtoTenants (or one of its tenants' strategies) was given to the adapter of another host than Express. */
  | 'tenants_express_only';

/** Who caused a failure: the user or the request, or the infrastructure (Logto, a store, the app's setup). */
export type LogtoErrorCausedBy = 'request' | 'infrastructure';

/**
 * Every code, frozen, with who caused it and the HTTP status an app answers with. What the request
 * caused goes to Passport's `fail` (so `failureRedirect` and `failureMessage` apply); everything else
 * is an infrastructure fault for `error`. 503 marks what may work again in a moment (Logto or a
 * store being down); 500 a setup or programming mistake.
 */
export const logtoErrorCodes = Object.freeze({
  invalid_config: { causedBy: 'infrastructure', httpStatus: 500 },
  session_required: { causedBy: 'infrastructure', httpStatus: 500 },
  invalid_callback: { causedBy: 'request', httpStatus: 400 },
  invalid_state: { causedBy: 'request', httpStatus: 400 },
  issuer_mismatch: { causedBy: 'request', httpStatus: 401 },
  authorization_failed: { causedBy: 'request', httpStatus: 401 },
  sign_in_required: { causedBy: 'request', httpStatus: 401 },
  invalid_id_token: { causedBy: 'request', httpStatus: 401 },
  // A LogtoBearerError answers 400, 401 or 403 as RFC 6750 says; see its httpStatus.
  invalid_access_token: { causedBy: 'request', httpStatus: 401 },
  token_request_failed: { causedBy: 'request', httpStatus: 401 },
  // Set-up mistakes: retrying never helps, so 500, not the 503 of Logto being down.
  invalid_client: { causedBy: 'infrastructure', httpStatus: 500 },
  invalid_redirect_uri: { causedBy: 'infrastructure', httpStatus: 500 },
  invalid_endpoint: { causedBy: 'infrastructure', httpStatus: 500 },
  invalid_target: { causedBy: 'infrastructure', httpStatus: 500 },
  // The browser's doing (it opened the app at another host), so Passport's fail and failureMessage.
  callback_host_mismatch: { causedBy: 'request', httpStatus: 400 },
  not_authenticated: { causedBy: 'request', httpStatus: 401 },
  missing_scope_organizations: { causedBy: 'infrastructure', httpStatus: 500 },
  invalid_resource: { causedBy: 'infrastructure', httpStatus: 500 },
  userinfo_mismatch: { causedBy: 'request', httpStatus: 401 },
  // OpenID Connect Back-Channel Logout 1.0, 2.8: a refused logout request gets 400.
  invalid_logout_token: { causedBy: 'request', httpStatus: 400 },
  provider_unreachable: { causedBy: 'infrastructure', httpStatus: 503 },
  provider_timeout: { causedBy: 'infrastructure', httpStatus: 503 },
  provider_error: { causedBy: 'infrastructure', httpStatus: 503 },
  invalid_provider_response: { causedBy: 'infrastructure', httpStatus: 503 },
  session_store_failed: { causedBy: 'infrastructure', httpStatus: 503 },
  token_store_failed: { causedBy: 'infrastructure', httpStatus: 503 },
  token_store_evicted: { causedBy: 'infrastructure', httpStatus: 503 },
  not_organization_member: { causedBy: 'request', httpStatus: 403 },
  not_loaded: { causedBy: 'infrastructure', httpStatus: 500 },
  // Anyone can send any Host header or path: a request outside every tenant is not the app's fault.
  unknown_tenant: { causedBy: 'request', httpStatus: 404 },
  unsupported_host: { causedBy: 'infrastructure', httpStatus: 500 },
  tenants_express_only: { causedBy: 'infrastructure', httpStatus: 500 },
} as const satisfies Record<LogtoErrorCode, { causedBy: LogtoErrorCausedBy; httpStatus: number }>);

/** A code outside the table (from a caller without types) counts as an infrastructure fault. */
function entryOf(code: LogtoErrorCode): { causedBy: LogtoErrorCausedBy; httpStatus: number } {
  return Object.hasOwn(logtoErrorCodes, code) ? logtoErrorCodes[code] : { causedBy: 'infrastructure', httpStatus: 500 };
}

export interface LogtoErrorOptions {
  /** The OAuth error code that Logto sent, when there was one (`access_denied`, `invalid_grant`, ...). */
  oauthError?: string;
  /** The HTTP status that Logto answered with, when there was one; it becomes `providerStatus`. */
  providerStatus?: number;
  /** @deprecated The name 0.1.0 gave `providerStatus`; still read as it. */
  status?: number;
  /** For `unknown_tenant`: the request's method, host and path, which the client chose (see {@link LogtoError.requestTarget}). */
  requestTarget?: string;
  cause?: unknown;
}

/**
 * A passport-logto error. Its `cause` chain never holds a token: the errors of openid-client carry
 * the token response (access, refresh and ID tokens), the raw JWT or the HTTP response, and apps
 * log errors whole. Such causes are replaced by copies that keep the name, message, stack and the
 * plain fields (`code`, `error`, `error_description`, `status`) and drop the rest.
 */
export class LogtoError extends Error {
  override readonly name = 'LogtoError';
  readonly code: LogtoErrorCode;
  readonly oauthError: string | undefined;
  /** The HTTP status that Logto answered with, when Logto answered (`token_request_failed`, `provider_error`). */
  readonly providerStatus: number | undefined;
  /**
   * For `unknown_tenant`: the method, host and path that no tenant serves, as the client sent them
   * (cut to 200 characters), for logs. Kept out of `message`, which Passport's `failureMessage`
   * stores in the session and apps show to users: the client chose this text.
   */
  readonly requestTarget: string | undefined;

  constructor(code: LogtoErrorCode, message: string, options: LogtoErrorOptions = {}) {
    const cause = options.cause === undefined ? undefined : withoutTokens(options.cause, 0);
    super(redactJwts(message), cause === undefined ? undefined : { cause });
    this.code = code;
    this.oauthError = options.oauthError;
    this.providerStatus = options.providerStatus ?? options.status;
    this.requestTarget = options.requestTarget;
  }

  /** Who caused this failure, from the code's entry in the table of codes. */
  get causedBy(): LogtoErrorCausedBy {
    return entryOf(this.code).causedBy;
  }

  /**
   * The HTTP status to answer the browser or API client with: 400, 401, 403 or 404 for what the
   * request caused, 500 or 503 for the rest. Not Logto's status, which `providerStatus` holds.
   */
  get httpStatus(): number {
    return entryOf(this.code).httpStatus;
  }

  /**
   * `httpStatus` under the names that Express's default error handler (finalhandler) and
   * http-errors-style handlers read (`status` first, then `statusCode`), so that an error an app
   * passes to `next()` unhandled is answered 4xx when the request caused it, not 500. Before 0.2.0,
   * `status` held Logto's status, now `providerStatus`.
   */
  get status(): number {
    return this.httpStatus;
  }

  /** `httpStatus`, as {@link status}. */
  get statusCode(): number {
    return this.httpStatus;
  }

  /** Whether the message may be shown to the client (http-errors' convention): only for what the request caused. */
  get expose(): boolean {
    return this.causedBy === 'request';
  }
}

export function isLogtoError(value: unknown, code?: LogtoErrorCode): value is LogtoError {
  return value instanceof LogtoError && (code === undefined || value.code === code);
}

/** Whether the user or the request caused the failure, so that it goes to Passport's `fail`. */
export function isCausedByRequest(error: LogtoError): boolean {
  return error.causedBy === 'request';
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

/** A compact JWS or JWE: its header is base64url JSON, so it starts with `eyJ` (`{"`). */
const jwtPattern = /eyJ[\w-]*\.[\w-]*\.[\w.-]*/;
const jwtsPattern = new RegExp(jwtPattern.source, 'g');
/** Names of fields that hold tokens, credentials or whole response bodies. */
const secretFieldPattern = /token|jwt|body|secret|password|verifier|assertion|authorization|cookie|response|claims|header/i;
const maxCauseDepth = 8;

function redactJwts(text: string): string {
  return text.replace(jwtsPattern, '[redacted JWT]');
}

/** jose's errors name the failed check and hold claims at most, never the token; code relies on their classes. */
function isJoseError(value: Error): boolean {
  return value instanceof joseErrors.JOSEError;
}

/** Whether an error can be kept as it is: nothing but plain, token-free fields, down its cause chain. */
function isClean(error: Error, depth: number): boolean {
  if (error instanceof LogtoError || isJoseError(error)) return true;
  if (depth >= maxCauseDepth || jwtPattern.test(error.message)) return false;
  for (const key of Object.getOwnPropertyNames(error)) {
    if (key === 'stack' || key === 'message') continue;
    const value: unknown = (error as unknown as Record<string, unknown>)[key];
    if (key === 'cause') {
      if (value !== undefined && !(value instanceof Error && isClean(value, depth + 1))) return false;
    } else if (secretFieldPattern.test(key) || (value !== null && typeof value === 'object') || typeof value === 'function') {
      return false;
    } else if (typeof value === 'string' && jwtPattern.test(value)) {
      return false;
    }
  }
  return true;
}

/**
 * The cause to keep: a clean error as it is (so that `instanceof` and identity still hold), a
 * copy without the tokens otherwise, a string with JWTs redacted, and no other kind of value
 * (plain objects are response bodies or claims).
 */
function withoutTokens(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactJwts(value);
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (!(value instanceof Error)) return undefined;
  if (isClean(value, depth)) return value;
  const nested = depth < maxCauseDepth ? withoutTokens(value.cause, depth + 1) : undefined;
  const copy = new Error(redactJwts(value.message), nested === undefined ? undefined : { cause: nested });
  Object.defineProperty(copy, 'name', { value: value.name, configurable: true, writable: true });
  if (typeof value.stack === 'string') copy.stack = redactJwts(value.stack);
  const fields = copy as unknown as Record<string, unknown>;
  for (const key of Object.keys(value)) {
    const field: unknown = (value as unknown as Record<string, unknown>)[key];
    if (key === 'cause' || secretFieldPattern.test(key)) continue;
    if (typeof field === 'string') fields[key] = redactJwts(field);
    else if (typeof field === 'number' || typeof field === 'boolean') fields[key] = field;
  }
  // openid-client keeps the HTTP response out of sight; its status is the useful part.
  const response: unknown = (value as { response?: unknown }).response;
  if (fields.status === undefined && response instanceof Response) fields.status = response.status;
  return copy;
}
