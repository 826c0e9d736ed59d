import { createHash, randomUUID } from 'node:crypto';
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
}

/** The key of an access token for a resource, an organization, or both. */
export function accessTokenKey(resource: string | undefined, organizationId: string | undefined): string {
  return `${resource ?? ''}#${organizationId ?? ''}`;
}

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

export function newSignInId(): string {
  return randomUUID();
}

/** A short, fixed-length key part for values that may be long or secret (state, refresh tokens). */
export function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 32);
}
