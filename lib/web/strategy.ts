import * as oidc from 'openid-client';
import { Strategy as PassportStrategy } from 'passport-strategy';
import type { Request, RequestHandler } from 'express';
import type { IdTokenClaims, UserInfoResponse } from '../logto/claims.js';
import { profileClaims } from '../logto/claims.js';
import { resolveConfig, type LogtoStrategyOptions, type ResolvedConfig } from '../configuration.js';
import { isCausedByRequest, LogtoError } from '../errors.js';
import { backchannelLogoutHandler, SessionIndex, type BackchannelLogoutOptions } from './back-channel-logout.js';
import { LogtoClient, type LogtoClientContext } from './client.js';
import { appendCookie, PendingSignIns, requestCookie } from './pending-sign-ins.js';
import { Refresher } from '../store/refresh.js';
import { authenticatedGuard, withLogto, type AuthenticatedOptions, type LogtoHandler } from './route-guard.js';
import { signOutHandler, type SignOutOptions } from './sign-out.js';
import { silentSignInHandler, type SilentSignInOptions } from './silent-sign-in.js';
import { LogtoConnection, type LogtoOidcConfig } from '../logto/connection.js';
import { safeReturnTo } from './redirects.js';
import { sessionOf, SessionReference } from '../store/session-reference.js';
import { callbackParameters, isBracketedCallbackParameter, SignInCallback, type CallbackOutcome } from './sign-in-callback.js';
import { SignInRecords, type TokenRecord } from '../store/sign-in-records.js';
import { authorizationParameters, type LogtoSignInOptions } from './sign-in-options.js';
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
  /** Asks Logto's userinfo endpoint, for claims that only it returns (custom_data, identities, ...). */
  fetchUserInfo(): Promise<UserInfoResponse>;
}

export type VerifyFunction = (context: LogtoVerifyContext, done: VerifyDone) => void | Promise<VerifyResult>;
export type VerifyFunctionWithRequest = (
  req: Request,
  context: LogtoVerifyContext,
  done: VerifyDone,
) => void | Promise<VerifyResult>;

export class LogtoStrategy extends PassportStrategy {
  name: string;
  readonly config: ResolvedConfig;
  protected readonly provider: LogtoConnection;
  protected readonly pendingSignIns: PendingSignIns;
  private readonly records: SignInRecords;
  private readonly session: SessionReference;
  private readonly refresher: Refresher;
  private readonly context: LogtoClientContext;
  private readonly callback: SignInCallback;
  private readonly sessionIndex: SessionIndex;
  /** Where the route guard keeps the page to come back to after the next sign-in. */
  private get returnToCookie(): string {
    return `${this.config.name}.return`;
  }
  /** Set once the app mounts back-channel logout: only then are sign-ins indexed. */
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
    this.provider = new LogtoConnection(this.config);
    this.records = new SignInRecords({ tokenStore: this.config.tokenStore, recordTtl: this.config.recordTtl * 1000 });
    this.session = new SessionReference(this.config.sessionKey);
    this.refresher = new Refresher(this.config, this.provider, this.records);
    this.pendingSignIns = new PendingSignIns({
      appSecret: this.config.appSecret,
      callbackURL: this.config.callbackURL,
      timeout: this.config.signInTimeout,
      cookiePrefix: `${this.config.name}.signin`,
      maxPending: this.config.maxPendingSignIns,
    });
    this.context = { config: this.config, provider: this.provider, records: this.records, refresher: this.refresher, session: this.session };
    this.sessionIndex = new SessionIndex(this.records, `${this.config.issuer} ${this.config.appId}`);
    this.callback = new SignInCallback({
      config: this.config,
      provider: this.provider,
      records: this.records,
      session: this.session,
      pendingSignIns: this.pendingSignIns,
      index: () => (this.indexSessions ? this.sessionIndex : undefined),
      userFor: (req, claims, record) => this.userFor(req, claims, record),
    });
  }

  /**
   * The Logto helper for this request's sign-in: claims, userinfo, access and organization tokens.
   * Outside `logto.authenticated()`, `await` its `load()` before reading tokens synchronously.
   */
  client(req: Request): LogtoClient {
    return new LogtoClient(req, this.context);
  }

  /**
   * Route guard: signed-in users pass with `req.logto` loaded (and whatever `options` asks to have
   * ready); others are redirected or get 401 JSON. Given a handler, it returns the guard and the
   * handler together, and the handler's `req.logto` is typed as present.
   */
  authenticated(options?: AuthenticatedOptions): RequestHandler;
  authenticated(options: AuthenticatedOptions, handler: LogtoHandler): RequestHandler[];
  authenticated(options?: AuthenticatedOptions, handler?: LogtoHandler): RequestHandler | RequestHandler[] {
    const guard = authenticatedGuard((req) => this.client(req), options, (req, returnTo) =>
      appendCookie(req, this.returnToCookie, returnTo, { maxAge: this.config.signInTimeout, path: '/', secure: this.config.callbackURL.startsWith('https:') }),
    );
    return handler === undefined ? guard : [guard, withLogto(handler)];
  }

  /**
   * Logto's discovery metadata (as @logto/client's `getOidcConfig()`): the endpoints, in Logto's
   * snake_case and in the SDK's camelCase, and the rest of the document. Discovered once and
   * shared with sign-in; rejects with a `LogtoError` while Logto cannot be reached.
   */
  getOidcConfig(): Promise<LogtoOidcConfig> {
    return this.provider.oidcConfig();
  }

  /** The sign-out route handler. */
  signOut(options?: SignOutOptions): RequestHandler {
    return signOutHandler(this.context, options);
  }

  /**
   * The handler for Logto's back-channel logout POST (register its URL in the Logto Console).
   * From then on, each sign-in is indexed in the token store so that a logout token can end it.
   */
  backchannelLogout(options?: BackchannelLogoutOptions): RequestHandler {
    this.indexSessions = true;
    return backchannelLogoutHandler(
      {
        config: this.config,
        provider: this.provider,
        records: this.records,
        index: this.sessionIndex,
      },
      options,
    );
  }

  /** Passport calls this for both legs: a request with a code, state or error is a callback. */
  override authenticate(req: Request, options: LogtoSignInOptions = {}): void {
    const parameters = new URLSearchParams(queryStringOf(req));
    const isCallback = [...parameters.keys()].some((name) => callbackParameters.includes(name) || isBracketedCallbackParameter(name));
    if (isCallback) {
      void this.callback.handle(req, parameters).then((outcome) => this.settle(req, () => this.finish(outcome)));
    } else {
      void this.startSignIn(req, options);
    }
  }

  /** Routes a failure to `fail` with its code's status when the request caused it, and to `error` otherwise. */
  protected report(error: unknown): void {
    if (!(error instanceof LogtoError)) {
      // The app's own error (a throwing verify function, say) goes to its error handler unchanged.
      this.error(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (isCausedByRequest(error)) {
      this.fail(error, error.httpStatus);
    } else {
      this.error(error);
    }
  }

  private finish(outcome: CallbackOutcome): void {
    switch (outcome.kind) {
      case 'success':
        this.success(outcome.user, outcome.info);
        return;
      case 'redirect':
        this.redirect(outcome.url);
        return;
      case 'refused':
        this.fail(outcome.info ?? new LogtoError('not_authenticated', 'The app refused this user.'), 401);
        return;
      case 'failure':
        this.report(outcome.error);
    }
  }

  /**
   * Hands an outcome to Passport. Passport runs the app's custom callback (or failureFlash)
   * inside these calls; if that throws, the error goes to Express's error handler once, instead
   * of becoming an unhandled rejection or a second call of the callback.
   */
  private settle(req: Request, hand: () => void): void {
    try {
      hand();
    } catch (error) {
      const next = (req as { next?: (error: unknown) => void }).next;
      if (typeof next === 'function') {
        next(error);
        return;
      }
      // Outside Express there is no error handler to hand it to: answer 500 rather than hang.
      const res = (req as { res?: { headersSent?: boolean; statusCode: number; end(body?: string): void } }).res;
      if (res && !res.headersSent) {
        res.statusCode = 500;
        res.end('Internal Server Error');
      }
    }
  }

  /** The sign-in leg: remember the started sign-in in its cookie and send the browser to Logto. */
  private async startSignIn(req: Request, options: LogtoSignInOptions): Promise<void> {
    let url: URL;
    try {
      url = await this.prepareSignIn(req, options, false);
    } catch (error) {
      this.settle(req, () => this.report(error));
      return;
    }
    this.settle(req, () => this.redirect(url.href));
  }

  /** Keeps a started sign-in in its cookie and gives the URL to send the browser to. */
  private async prepareSignIn(req: Request, options: LogtoSignInOptions, silent: boolean): Promise<URL> {
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
    const remembered = requestCookie(req, this.returnToCookie);
    if (remembered !== undefined) {
      appendCookie(req, this.returnToCookie, '', { maxAge: 0, path: '/', secure: this.config.callbackURL.startsWith('https:') });
    }
    const returnTo = safeReturnTo(options.returnTo ?? remembered ?? session.returnTo);
    await this.pendingSignIns.add(req, { state, codeVerifier, nonce, ...(returnTo === undefined ? {} : { returnTo }), ...(silent ? { silent } : {}) });
    return url;
  }

  /**
   * Silent sign-in (express-openid-connect's attemptSilentLogin): once per visitor and
   * `retryAfter`, an anonymous page navigation goes to Logto with `prompt=none`, and comes back
   * signed in if the visitor has a Logto session, or to the same page signed out if not. Mount it
   * after the sign-in, callback and sign-out routes.
   */
  silentSignIn(options?: SilentSignInOptions): RequestHandler {
    return silentSignInHandler(
      { config: this.config, start: (req, returnTo) => this.prepareSignIn(req, { prompt: 'none', returnTo }, true) },
      options,
    );
  }

  /** Authorization parameters for this sign-in, before state, nonce and PKCE are added; a hook to override. */
  protected authorizationParameters(options: LogtoSignInOptions): URLSearchParams {
    return authorizationParameters(this.config, options);
  }

  /** Runs the verify function, accepting a callback or a returned promise, or builds the default user. */
  private userFor(req: Request, claims: IdTokenClaims, record: TokenRecord): Promise<Verified> {
    const profile: LogtoUser = { ...profileClaims(claims), id: claims.sub };
    const verify = this.verify;
    if (!verify) return Promise.resolve({ user: profile, info: undefined });
    const accessToken = record.accessToken;
    const context: LogtoVerifyContext = {
      claims,
      profile,
      tokens: {
        idToken: record.idToken,
        accessToken: accessToken?.token ?? '',
        refreshToken: record.refreshToken,
        expiresIn: accessToken ? Math.max(0, accessToken.expiresAt - Math.floor(Date.now() / 1000)) : undefined,
        scope: accessToken?.scope,
        tokenType: 'Bearer',
      },
      fetchUserInfo: async () => (await this.provider.fetchUserInfo(accessToken?.token ?? '', claims.sub)) as UserInfoResponse,
    };
    if (this.config.passReqToCallback) {
      const withRequest = verify as VerifyFunctionWithRequest;
      return runVerify((done) => withRequest(req, context, done), withRequest.length >= 3);
    }
    const plain = verify as VerifyFunction;
    return runVerify((done) => plain(context, done), plain.length >= 2);
  }
}

function queryStringOf(req: Request): string {
  const url = req.originalUrl || req.url || '';
  const index = url.indexOf('?');
  return index === -1 ? '' : url.slice(index + 1);
}
