import * as oidc from 'openid-client';
import { Strategy as PassportStrategy } from 'passport-strategy';
import type { Request, RequestHandler } from 'express';
import type { IdTokenClaims, UserInfoResponse } from './claims.js';
import { profileClaims } from './claims.js';
import { resolveConfig, type LogtoStrategyOptions, type ResolvedConfig } from './configuration.js';
import { isCausedByRequest, LogtoError } from './errors.js';
import { backchannelLogoutHandler, SessionIndex, type BackchannelLogoutOptions } from './back-channel-logout.js';
import { LogtoClient, type LogtoClientContext } from './client.js';
import { PendingSignIns } from './pending-sign-ins.js';
import { MemoryRefreshCoordinator } from './refresh-coordinator.js';
import { authenticatedGuard, type AuthenticatedOptions } from './route-guard.js';
import { signOutHandler, type SignOutOptions } from './sign-out.js';
import { LogtoProvider, type TokenEndpointResponse } from './provider.js';
import { keepThroughLogIn } from './log-in.js';
import { safeReturnTo } from './redirects.js';
import { sessionOf, SessionTokenStore, type StoredTokens } from './session-store.js';
import { authorizationParameters, type LogtoSignInOptions } from './sign-in-options.js';
import { runVerify, type VerifyDone, type VerifyResult } from './verify-callback.js';

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
  /** The token response. Keep tokens out of the user object: passport-logto stores them in the session. */
  tokens: LogtoTokenResponse;
  /** The user that passport-logto would log in without a verify function. */
  profile: LogtoUser;
  /** Asks Logto's userinfo endpoint, for claims that only it returns (custom_data, identities, ...). */
  fetchUserInfo(): Promise<UserInfoResponse>;
}

export type VerifyFunction = (context: LogtoVerifyContext, done: VerifyDone) => void | Promise<VerifyResult>;
export type VerifyFunctionWithRequest = (
  req: Request,
  context: LogtoVerifyContext,
  done: VerifyDone,
) => void | Promise<VerifyResult>;

/** Response parameters that must appear at most once in a callback. */
const callbackParameters = ['code', 'state', 'iss', 'error', 'error_description', 'error_uri'];
const maxCallbackParameterLength = 4096;

export class LogtoStrategy extends PassportStrategy {
  name: string;
  readonly config: ResolvedConfig;
  protected readonly provider: LogtoProvider;
  protected readonly store: SessionTokenStore;
  protected readonly pendingSignIns: PendingSignIns;
  private readonly context: LogtoClientContext;
  private readonly sessionIndex: SessionIndex;
  /** Set once the app mounts back-channel logout: only then are sessions indexed at sign-in. */
  private indexSessions = false;
  private readonly verify: VerifyFunction | VerifyFunctionWithRequest | undefined;

  constructor(options: LogtoStrategyOptions & { passReqToCallback: true }, verify: VerifyFunctionWithRequest);
  constructor(options: LogtoStrategyOptions, verify?: VerifyFunction);
  constructor(options: LogtoStrategyOptions, verify?: VerifyFunction | VerifyFunctionWithRequest) {
    super();
    this.config = resolveConfig(options);
    if (verify !== undefined && typeof verify !== 'function') {
      throw new LogtoError('invalid_config', 'passport-logto: the verify argument must be a function.');
    }
    if (this.config.passReqToCallback && verify === undefined) {
      throw new LogtoError('invalid_config', 'passport-logto: option `passReqToCallback` needs a verify function.');
    }
    this.name = this.config.name;
    this.verify = verify;
    this.provider = new LogtoProvider(this.config);
    this.store = new SessionTokenStore(this.config.sessionKey);
    this.pendingSignIns = new PendingSignIns(this.store, this.config.signInTimeout, this.config.maxPendingSignIns);
    this.context = {
      config: this.config,
      provider: this.provider,
      store: this.store,
      coordinator: options.refreshCoordinator ?? new MemoryRefreshCoordinator(),
    };
    this.sessionIndex = new SessionIndex(this.config.sessionKey);
  }

  /** The Logto helper for this request's session: claims, userinfo, access and organization tokens. */
  client(req: Request): LogtoClient {
    return new LogtoClient(req, this.context);
  }

  /** Route guard: signed-in users pass with `req.logto`; others are redirected or get 401 JSON. */
  authenticated(options?: AuthenticatedOptions): RequestHandler {
    return authenticatedGuard((req) => this.client(req), options);
  }

  /** The sign-out route handler. */
  signOut(options?: SignOutOptions): RequestHandler {
    return signOutHandler(this.context, options);
  }

  /**
   * The handler for Logto's back-channel logout POST (register its URL in the Logto Console).
   * From then on, each sign-in is indexed in the session store so that a logout token can end it.
   */
  backchannelLogout(options?: BackchannelLogoutOptions): RequestHandler {
    this.indexSessions = true;
    return backchannelLogoutHandler({ config: this.config, provider: this.provider, index: this.sessionIndex }, options);
  }

  /** Passport calls this for both legs: a request with a code, state or error is a callback. */
  override authenticate(req: Request, options: LogtoSignInOptions = {}): void {
    const parameters = new URLSearchParams(queryStringOf(req));
    const isCallback = [...parameters.keys()].some((name) => callbackParameters.includes(name) || isBracketedCallbackParameter(name));
    void (isCallback ? this.finishSignIn(req, parameters) : this.startSignIn(req, options));
  }

  /** Routes a failure to `fail` when the request caused it, and to `error` otherwise. */
  protected report(error: unknown): void {
    const logtoError = error instanceof LogtoError ? error : new LogtoError('provider_error', String(error), { cause: error });
    if (isCausedByRequest(logtoError)) {
      this.fail(logtoError, logtoError.code === 'invalid_callback' || logtoError.code === 'invalid_state' ? 400 : 401);
    } else {
      this.error(logtoError);
    }
  }

  /** The sign-in leg: remember a pending sign-in and send the browser to Logto. */
  private async startSignIn(req: Request, options: LogtoSignInOptions): Promise<void> {
    try {
      const session = sessionOf(req);
      const codeVerifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const parameters = this.authorizationParameters(options);
      parameters.set('state', state);
      parameters.set('nonce', nonce);
      parameters.set('code_challenge', await oidc.calculatePKCECodeChallenge(codeVerifier));
      parameters.set('code_challenge_method', 'S256');
      const url = await this.provider.authorizationUrl(parameters);

      const returnTo = safeReturnTo(options.returnTo ?? session.returnTo);
      this.pendingSignIns.add(req, state, {
        codeVerifier,
        nonce,
        createdAt: Date.now(),
        ...(returnTo === undefined ? {} : { returnTo }),
      });
      this.redirect(url.href);
    } catch (error) {
      this.report(error);
    }
  }

  /** Authorization parameters for this sign-in, before state, nonce and PKCE are added; a hook to override. */
  protected authorizationParameters(options: LogtoSignInOptions): URLSearchParams {
    return authorizationParameters(this.config, options);
  }

  /** The callback leg: check the response, exchange the code, verify the ID token, log the user in. */
  private async finishSignIn(req: Request, parameters: URLSearchParams): Promise<void> {
    try {
      if ([...parameters.keys()].some(isBracketedCallbackParameter)) {
        throw new LogtoError('invalid_callback', 'The sign-in callback has a parameter that is not a plain string (such as code[]); start the sign-in again.');
      }
      for (const name of callbackParameters) {
        const values = parameters.getAll(name);
        if (values.length > 1 || (values[0]?.length ?? 0) > maxCallbackParameterLength) {
          throw new LogtoError('invalid_callback', `The sign-in callback has a duplicated or oversized "${name}" parameter; start the sign-in again.`);
        }
      }
      const state = parameters.get('state');
      if (!state) {
        throw new LogtoError('invalid_state', 'The sign-in callback has no state; start the sign-in again.');
      }
      const pending = this.pendingSignIns.take(req, state);
      if (pending === 'unknown') {
        throw new LogtoError('invalid_state', 'This sign-in is unknown to this session or was already completed; start the sign-in again.');
      }
      if (pending === 'expired') {
        throw new LogtoError('invalid_state', 'This sign-in took too long and expired; start the sign-in again.');
      }
      // RFC 9207: Logto always sends `iss`; checking it first also refuses a mixed-up error response.
      if (parameters.get('iss') !== this.config.issuer) {
        throw new LogtoError('issuer_mismatch', 'The sign-in response does not come from the configured Logto issuer.');
      }
      if (!parameters.get('error') && !parameters.get('code')) {
        throw new LogtoError('invalid_callback', 'The sign-in callback has neither a code nor an error; start the sign-in again.');
      }

      const callbackUrl = new URL(this.config.callbackURL);
      callbackUrl.search = parameters.toString();
      const response = await this.provider.exchangeCode(callbackUrl, { codeVerifier: pending.codeVerifier, state, nonce: pending.nonce });
      const idToken = response.id_token;
      if (!idToken) throw new LogtoError('invalid_id_token', 'Logto returned no ID token.');
      const claims = await this.provider.verifyJwt<IdTokenClaims>(idToken, { audience: this.config.appId, kind: 'invalid_id_token', fromLogto: true });
      if (claims.nonce !== pending.nonce) throw new LogtoError('invalid_id_token', 'The ID token nonce does not match this sign-in.');

      const user = await this.userFor(req, claims, idToken, response);
      if (user === false) {
        this.fail(new LogtoError('not_authenticated', 'The app refused this user.'), 401);
        return;
      }
      keepThroughLogIn(req, this.store, storedTokensOf(idToken, response), {
        returnTo: pending.returnTo,
        indexing: this.indexSessions ? { index: this.sessionIndex, claims } : undefined,
      });
      this.success(user);
    } catch (error) {
      this.report(error);
    }
  }

  /** Runs the verify function, accepting a callback or a returned promise, or builds the default user. */
  private userFor(req: Request, claims: IdTokenClaims, idToken: string, response: TokenEndpointResponse): Promise<object | false> {
    const profile: LogtoUser = { ...profileClaims(claims), id: claims.sub };
    const verify = this.verify;
    if (!verify) return Promise.resolve(profile);
    const context: LogtoVerifyContext = {
      claims,
      profile,
      tokens: {
        idToken,
        accessToken: response.access_token,
        refreshToken: response.refresh_token,
        expiresIn: response.expiresIn(),
        scope: response.scope,
        tokenType: response.token_type,
      },
      fetchUserInfo: async () => (await this.provider.fetchUserInfo(response.access_token, claims.sub)) as UserInfoResponse,
    };
    const invoke = (done: VerifyDone): void | Promise<VerifyResult> =>
      this.config.passReqToCallback ? (verify as VerifyFunctionWithRequest)(req, context, done) : (verify as VerifyFunction)(context, done);
    return runVerify(invoke).catch((error: unknown) => {
      throw error instanceof LogtoError ? error : new LogtoError('provider_error', `The verify function failed: ${String(error)}`, { cause: error });
    });
  }
}

/** The tokens of a response, in the shape the session keeps. */
export function storedTokensOf(idToken: string, response: TokenEndpointResponse, signInId = crypto.randomUUID()): StoredTokens {
  const expiresIn = response.expiresIn();
  return {
    signInId,
    idToken,
    ...(response.refresh_token === undefined ? {} : { refreshToken: response.refresh_token }),
    accessToken: {
      token: response.access_token,
      expiresAt: Math.floor(Date.now() / 1000) + (expiresIn ?? 0),
      ...(response.scope === undefined ? {} : { scope: response.scope }),
    },
  };
}

/** `code[]` or `state[x]`: an array or object in disguise, which the query parser would build. */
function isBracketedCallbackParameter(name: string): boolean {
  const bracket = name.indexOf('[');
  return bracket > 0 && callbackParameters.includes(name.slice(0, bracket));
}

function queryStringOf(req: Request): string {
  const url = req.originalUrl || req.url || '';
  const index = url.indexOf('?');
  return index === -1 ? '' : url.slice(index + 1);
}
