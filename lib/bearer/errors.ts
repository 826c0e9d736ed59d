import { errors as joseErrors } from 'jose';
import { LogtoError } from '../errors.js';

/** The error codes of RFC 6750 §3.1. */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

/**
 * A request that fails bearer authentication through its own fault. `bearerError` is undefined
 * when the request carried no token at all (RFC 6750 §3.1 then wants no error attribute).
 */
export class LogtoBearerError extends LogtoError {
  readonly bearerError: BearerErrorCode | undefined;
  /** For `insufficient_scope`: every scope the route needs, for the challenge's `scope` attribute. */
  readonly requiredScopes: readonly string[] | undefined;

  constructor(
    bearerError: BearerErrorCode | undefined,
    description: string,
    options: { requiredScopes?: readonly string[]; cause?: unknown } = {},
  ) {
    super(bearerError === undefined ? 'not_authenticated' : 'invalid_access_token', description, { cause: options.cause });
    this.bearerError = bearerError;
    this.requiredScopes = options.requiredScopes;
  }

  /** The status to answer the client with, as RFC 6750 says: 400, 401 or 403 (the table of codes says 401). */
  override get httpStatus(): 400 | 401 | 403 {
    return this.bearerError === 'invalid_request' ? 400 : this.bearerError === 'insufficient_scope' ? 403 : 401;
  }

  /** The `WWW-Authenticate` header value for this failure. */
  challenge(realm: string): string {
    const attributes = [`realm="${quotable(realm)}"`];
    if (this.bearerError !== undefined) {
      attributes.push(`error="${this.bearerError}"`, `error_description="${quotable(this.message)}"`);
      if (this.requiredScopes?.length) attributes.push(`scope="${quotable(this.requiredScopes.join(' '))}"`);
    }
    return `Bearer ${attributes.join(', ')}`;
  }
}

/** RFC 6750 §3 allows only these characters inside the challenge's quoted values. */
export function quotable(text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '?');
}

/** A short reason for the client, written here rather than passed on from jose, whose messages hold quotes. */
export function describeRejection(cause: unknown): string {
  if (cause instanceof joseErrors.JWTExpired) return 'The token has expired.';
  if (cause instanceof joseErrors.JWTClaimValidationFailed) {
    switch (cause.claim) {
      case 'nbf':
        return 'The token is not valid yet.';
      case 'aud':
        return 'The token is not meant for this API.';
      case 'iss':
        return 'The token was not issued by the configured Logto tenant.';
      default:
        return `The token has an invalid ${cause.claim} claim.`;
    }
  }
  if (cause instanceof joseErrors.JOSEAlgNotAllowed) return 'The token is signed with an algorithm that is not accepted.';
  if (cause instanceof joseErrors.JWKSNoMatchingKey) return 'The token is signed with an unknown key.';
  if (cause instanceof joseErrors.JWSSignatureVerificationFailed) return 'The token signature is not valid.';
  return 'The token is malformed.';
}
