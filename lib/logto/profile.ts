import { profileClaims, type IdTokenClaims, type UserClaims } from './claims.js';

/**
 * The user as Passport's OAuth and OpenID Connect strategies describe one (passport-openidconnect,
 * passport-google-oauth20): the normalized profile of Passport's docs, made from Logto's claims.
 * It fits @types/passport's `Profile`.
 */
export interface LogtoProfile {
  provider: 'logto';
  /** The Logto user ID (`sub`). */
  id: string;
  /** `name`, else `username`, else an empty string. */
  displayName: string;
  /** `username` (Logto's), else `preferred_username`. */
  username?: string;
  /** From `given_name`, `family_name` and `middle_name`; present when one of them is. */
  name?: { familyName: string; givenName: string; middleName?: string };
  /** `email`, with `email_verified` (scope `email`). */
  emails?: Array<{ value: string; verified: boolean }>;
  /** `picture`. */
  photos?: Array<{ value: string }>;
  /** `_json` as JSON text. */
  _raw: string;
  /** The user's claims: the ID token's, without the protocol ones (`iss`, `aud`, `exp`, `nonce`, ...). */
  _json: UserClaims;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The profile of a user from their claims; absent or empty claims (Logto sends `null`) leave their field out. */
export function profileOf(claims: IdTokenClaims): LogtoProfile {
  const json = { ...profileClaims(claims), sub: claims.sub } as UserClaims;
  const username = text(claims.username) ?? text(claims.preferred_username);
  const givenName = text(claims.given_name);
  const familyName = text(claims.family_name);
  const middleName = text(claims.middle_name);
  const email = text(claims.email);
  const picture = text(claims.picture);
  return {
    provider: 'logto',
    id: claims.sub,
    displayName: text(claims.name) ?? username ?? '',
    ...(username === undefined ? {} : { username }),
    ...(givenName ?? familyName ?? middleName) === undefined
      ? {}
      : { name: { familyName: familyName ?? '', givenName: givenName ?? '', ...(middleName === undefined ? {} : { middleName }) } },
    ...(email === undefined ? {} : { emails: [{ value: email, verified: claims.email_verified === true }] }),
    ...(picture === undefined ? {} : { photos: [{ value: picture }] }),
    _raw: JSON.stringify(json),
    _json: json,
  };
}
