import { createHash, randomBytes } from 'node:crypto';
import type { TokenEndpointResponse } from '../logto/connection.js';

/** An access token as kept in a sign-in's record. */
export interface StoredAccessToken {
  token: string;
  /** Seconds since the epoch. */
  expiresAt: number;
  scope?: string;
}

/** The tokens of one sign-in, kept in their own record outside the session. Never in `req.user`. */
export interface TokenRecord {
  idToken: string;
  refreshToken?: string;
  /** The opaque token for Logto's userinfo endpoint. */
  accessToken?: StoredAccessToken;
  /** JWT access tokens for API resources and organizations, by {@link accessTokenKey}. */
  resourceTokens?: Record<string, StoredAccessToken>;
  /** Moved here from a 0.1.0 session, whose cookie still carries these tokens: its end is kept longer. */
  adopted?: true;
  /**
   * The other tenants' sign-ins (tenant `t`, sign-in id `i`) that the session held when this one
   * signed in ({@link LogtoTenants}): a back-channel logout of this one ends them too, also when
   * no server-side session can be found to read them from (cookie-session).
   * @internal
   */
  linked?: LinkedSignIn[];
}

/**
 * Another tenant's sign-in in the same app session.
 * @internal
 */
export interface LinkedSignIn {
  t: string;
  i: string;
}

/** The key of an access token for a resource, an organization, or both. */
export function accessTokenKey(resource: string | undefined, organizationId: string | undefined): string {
  if (organizationId !== undefined || resource === undefined) return `${resource ?? ''}#${organizationId ?? ''}`;
  // An API resource's key, asked for on every cached-token request: built once, so that looking
  // it up in a record finds a string V8 has already hashed. Only declared resources get this far
  // on the hot path; the bound keeps any other caller's strings from piling up.
  let key = resourceKeys.get(resource);
  if (key === undefined) {
    key = `${resource}#`;
    if (resourceKeys.size < maxResourceKeys) resourceKeys.set(resource, key);
  }
  return key;
}

const resourceKeys = new Map<string, string>();
const maxResourceKeys = 256;

/** An access token as Logto's token endpoint answered it, its lifetime turned into an expiry time. */
export function storedAccessTokenOf(response: TokenEndpointResponse): StoredAccessToken {
  return {
    token: response.access_token,
    expiresAt: Math.floor(Date.now() / 1000) + (response.expiresIn() ?? 0),
    ...(response.scope === undefined ? {} : { scope: response.scope }),
  };
}

/** A new sign-in's record, from the answer to its code exchange. */
export function signInRecordOf(idToken: string, response: TokenEndpointResponse): TokenRecord {
  return {
    idToken,
    ...(response.refresh_token === undefined ? {} : { refreshToken: response.refresh_token }),
    accessToken: storedAccessTokenOf(response),
  };
}

/**
 * A sign-in's id, the session's only share of it: 128 random bits in 22 characters, since
 * express-session parses and hashes the session on every request. Ids written earlier as UUIDs
 * still work: any non-empty string is one.
 */
export function newSignInId(): string {
  return randomBytes(16).toString('base64url');
}

/** A short, fixed-length key part for values that may be long or secret (state, refresh tokens). */
export function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 32);
}
