import type { HostRequest as Request } from '../host-types.js';
import type { IdTokenClaims, UserInfoResponse } from '../logto/claims.js';
import { profileClaims } from '../logto/claims.js';
import type { LogtoConnection } from '../logto/connection.js';
import { profileOf, type LogtoProfile } from '../logto/profile.js';
import type { TokenRecord } from '../store/token-record.js';
import { runVerify, type Verified, type VerifyDone, type VerifyResult } from '../verify-callback.js';

/** The tokens of a sign-in, handed to the verify function only. */
export interface LogtoTokenResponse {
  idToken: string;
  accessToken: string;
  refreshToken: string | undefined;
  /** Seconds. */
  expiresIn: number | undefined;
  scope: string | undefined;
  tokenType: string;
}

/** The user that `req.user` holds when no verify function is given. */
export interface LogtoUser {
  /** The ID token's `sub`: the Logto user ID. */
  id: string;
  [claim: string]: unknown;
}

/** What the verify function receives about a completed sign-in. */
export interface LogtoVerifyContext {
  /** The verified ID token claims. */
  claims: IdTokenClaims;
  /** The sign-in's tokens. Keep them out of the user object: passport-logto stores them in their own record. */
  tokens: LogtoTokenResponse;
  /** The user that passport-logto would log in without a verify function. */
  profile: LogtoUser;
  /** The same user as Passport's normalized profile (`provider: 'logto'`, `displayName`, `emails`, ...). */
  passportProfile: LogtoProfile;
  /** Asks Logto's userinfo endpoint, for claims that only it returns (custom_data, identities, ...). */
  fetchUserInfo(): Promise<UserInfoResponse>;
}

export type VerifyFunction = (context: LogtoVerifyContext, done: VerifyDone) => void | Promise<VerifyResult>;
export type VerifyFunctionWithRequest = (
  req: Request,
  context: LogtoVerifyContext,
  done: VerifyDone,
) => void | Promise<VerifyResult>;
/**
 * passport-openidconnect's verify function `(issuer, profile, done)`, which an app that moves from
 * it keeps: told apart from {@link VerifyFunction} by its three parameters. `issuer` is Logto's
 * (`${endpoint}/oidc`).
 */
export type ProfileVerifyFunction = (issuer: string, profile: LogtoProfile, done: VerifyDone) => void | Promise<void>;
/** {@link ProfileVerifyFunction} with `passReqToCallback: true`: `(req, issuer, profile, done)`. */
export type ProfileVerifyFunctionWithRequest = (req: Request, issuer: string, profile: LogtoProfile, done: VerifyDone) => void | Promise<void>;

/** Every form of LogtoStrategy's verify function. */
export type AnyVerifyFunction = VerifyFunction | VerifyFunctionWithRequest | ProfileVerifyFunction | ProfileVerifyFunctionWithRequest;

/** The verify functions' signatures, for the message that refuses one with too many parameters. */
export const verifySignatures = '(context, done), async (context) => user, or (issuer, profile, done) as with passport-openidconnect';

/** How many parameters a verify function may declare, `req` aside: passport-openidconnect's form has three. */
export const maxVerifyParameters = 3;

/** What {@link verifiedUser} needs of the strategy. */
export interface VerifySetting {
  verify: AnyVerifyFunction | undefined;
  passReqToCallback: boolean;
  provider: LogtoConnection;
}

/** Runs the verify function, accepting a callback or a returned promise, or builds the default user. */
export function verifiedUser(setting: VerifySetting, req: Request, claims: IdTokenClaims, record: TokenRecord): Promise<Verified> {
  const { verify, provider } = setting;
  const profile: LogtoUser = { ...profileClaims(claims), id: claims.sub };
  if (!verify) return Promise.resolve({ user: profile, info: undefined });
  const passportProfile = profileOf(claims);
  const offset = setting.passReqToCallback ? 1 : 0;
  if (verify.length - offset >= 3) {
    // passport-openidconnect's (issuer, profile, done): it gets the profile, not the context.
    const issuer = claims.iss;
    if (setting.passReqToCallback) {
      const withRequest = verify as ProfileVerifyFunctionWithRequest;
      return runVerify((done) => withRequest(req, issuer, passportProfile, done), true);
    }
    const plain = verify as ProfileVerifyFunction;
    return runVerify((done) => plain(issuer, passportProfile, done), true);
  }
  const accessToken = record.accessToken;
  const context: LogtoVerifyContext = {
    claims,
    profile,
    passportProfile,
    tokens: {
      idToken: record.idToken,
      accessToken: accessToken?.token ?? '',
      refreshToken: record.refreshToken,
      expiresIn: accessToken ? Math.max(0, accessToken.expiresAt - Math.floor(Date.now() / 1000)) : undefined,
      scope: accessToken?.scope,
      tokenType: 'Bearer',
    },
    fetchUserInfo: async () => (await provider.fetchUserInfo(accessToken?.token ?? '', claims.sub)) as UserInfoResponse,
  };
  if (setting.passReqToCallback) {
    const withRequest = verify as VerifyFunctionWithRequest;
    return runVerify((done) => withRequest(req, context, done), withRequest.length >= 3);
  }
  const plain = verify as VerifyFunction;
  return runVerify((done) => plain(context, done), plain.length >= 2);
}
