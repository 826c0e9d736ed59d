import * as oidc from 'openid-client';
import { PassportStrategy } from '../passport-strategy.js';
import type { HostRequest as Request, HostRequestHandler as RequestHandler } from '../host-types.js';
import { resolveConfig, type LogtoStrategyOptions, type ResolvedConfig } from '../configuration.js';
import { isCausedByRequest, LogtoError } from '../errors.js';
import { backchannelLogoutHandler, hostBackchannelLogout, type BackchannelLogoutOptions } from './back-channel-logout.js';
import { SessionIndex } from '../store/session-index.js';
import type { SessionStoreLike } from '../store/session-store-adapter.js';
import { checkSignIn, forgetPassportUser, sessionCheckHandler, stateOf, type SignInState } from './session-check.js';
import { registerHostHandlers } from './host-handlers.js';
import { cookieHeader, findAnswer, nodeRequestOf, requestPath, type HostAnswer } from './http.js';
import { awaitingLogIn, stopAwaitingLogIn } from './keep-through-log-in.js';
import type { TokenStore } from '../store/token-store.js';
import type { LinkedSignIn } from '../store/token-record.js';
import { LogtoClient } from './client.js';
import type { LogtoContext } from './context.js';
import { RequestSlot } from './request-slot.js';
import { appendCookie, PendingSignIns, requestCookie } from './pending-sign-ins.js';
import { Refresher } from '../store/refresh.js';
import { authenticatedGuard, hostGuard, withLogto, type AuthenticatedOptions, type LogtoHandler } from './route-guard.js';
import { endSignIn, endSignInById, hostSignOut, logOutOfPassport, signOutHandler, type SignOutOptions } from './sign-out.js';
import { hostSilentSignIn, silentSignInHandler, silentState, type SilentSignInOptions } from './silent-sign-in.js';
import { LogtoConnection, type LogtoOidcConfig } from '../logto/connection.js';
import { safeReturnTo } from './redirects.js';
import { sessionOf, SessionReference } from '../store/session-reference.js';
import { callbackParametersOf } from './callback-parameters.js';
import { SignInCallback, type CallbackOutcome } from './sign-in-callback.js';
import { SignInRecords } from '../store/sign-in-records.js';
import { authorizationParameters, checkAuthenticateOptions, type LogtoAuthenticateOptions, type LogtoSignInOptions } from './sign-in-options.js';
import {
  maxVerifyParameters,
  verifiedUser,
  verifySignatures,
  type AnyVerifyFunction,
  type ProfileVerifyFunction,
  type ProfileVerifyFunctionWithRequest,
  type VerifyFunction,
  type VerifyFunctionWithRequest,
} from './verify-context.js';
import { checkVerifyArgument } from '../verify-callback.js';
import { SignInHosts } from './sign-in-host.js';
import { noteSignInStart } from './sign-in-notes.js';
import { debug } from '../debug.js';

/** Emitted once per process: the warning is about the app's setup, not about each strategy. */
let warnedImplicitIndexing = false;
/** Emitted once per process, as the one above. */
let warnedLogInNotCalled = false;

export class LogtoStrategy extends PassportStrategy {
  name: string;
  readonly config: ResolvedConfig;
  protected readonly provider: LogtoConnection;
  protected readonly pendingSignIns: PendingSignIns;
  /** What the handlers work with, built once here. */
  private readonly context: LogtoContext;
  private readonly callback: SignInCallback;
  private readonly signInHosts: SignInHosts;
  /** Where the route guard keeps the page to come back to after the next sign-in. */
  private get returnToCookie(): string {
    return `${this.config.name}.return`;
  }
  /** The helpers that {@link session} loaded, by request: `client(req)` hands them out. */
  private readonly checked = new RequestSlot<LogtoClient>('passport-logto: the helper logto.session() loaded');
  /** Whether sign-ins are indexed for back-channel logout: the option, or (deprecated) mounting its handler. */
  private indexSessions: boolean;

  constructor(options: LogtoStrategyOptions & { passReqToCallback: true }, verify: VerifyFunctionWithRequest);
  constructor(options: LogtoStrategyOptions & { passReqToCallback: true }, verify: ProfileVerifyFunctionWithRequest);
  constructor(options: LogtoStrategyOptions, verify?: VerifyFunction);
  constructor(options: LogtoStrategyOptions, verify: ProfileVerifyFunction);
  constructor(options: LogtoStrategyOptions, verify?: AnyVerifyFunction) {
    super();
    this.config = resolveConfig(options);
    checkVerifyArgument(verify, this.config.passReqToCallback, maxVerifyParameters, verifySignatures);
    this.name = this.config.name;
    this.indexSessions = this.config.backchannelLogout === true;
    const config = this.config;
    this.provider = new LogtoConnection(config);
    const provider = this.provider;
    const records = new SignInRecords({ tokenStore: config.tokenStore, recordTtl: config.recordTtl * 1000 });
    const sessionIndex = new SessionIndex(records, `${config.issuer} ${config.appId}`, config.recordTtl * 1000, config.sessionKey);
    const index = (): SessionIndex | undefined => (this.indexSessions ? sessionIndex : undefined);
    this.pendingSignIns = new PendingSignIns({
      appSecret: config.appSecret,
      callbackURL: config.callbackURL,
      timeout: config.signInTimeout,
      cookiePrefix: `${config.name}.signin`,
      maxPending: config.maxPendingSignIns,
    });
    this.context = {
      config,
      provider,
      records,
      refresher: new Refresher(config, provider, records, index),
      session: new SessionReference(config.sessionKey),
      pendingSignIns: this.pendingSignIns,
      sessionIndex,
      index,
      endSessionSignIns: (session, sessionStore) => this.sessionEnded(session, sessionStore),
      linkedSignIns: (req) => this.linkedSignIns(req as Request),
      endLinkedSignIns: (linked, sessionStore) => this.linkedEnded(linked, sessionStore),
      userFor: (req, claims, record) => verifiedUser({ verify, passReqToCallback: config.passReqToCallback, provider }, req, claims, record),
      startSignIn: (req, options, silent) => this.prepareSignIn(req, options, silent),
    };
    this.signInHosts = new SignInHosts(config.appSecret, config.callbackURL);
    this.callback = new SignInCallback(this.context, this.signInHosts);
    const context = this.context;
    registerHostHandlers(this, {
      client: (req) => this.client(req as Request),
      signInState: (req) => this.signInState(req as Request),
      forgetSignIn: (req) => {
        const owned = this.context.session.ownsPassportUser(req);
        this.context.session.clear(req);
        return owned;
      },
      guard: (guardOptions) => hostGuard((req) => this.guardClient(req as Request), guardOptions, this.rememberReturnTo),
      signOut: (signOutOptions) => hostSignOut(context, signOutOptions),
      silentSignIn: (silentOptions, skipView) => hostSilentSignIn(context, silentOptions, skipView),
      backchannelLogout: (backchannelOptions, readToken) => {
        this.indexForBackchannelLogout();
        return hostBackchannelLogout(context, backchannelOptions, readToken);
      },
      endSignIn: (req) => this.endSignIn(req as Request),
      logOut: (req) => this.logOut(req as Request),
    });
  }

  /** The guard's helper: the one logto.session() loaded, or one that a copy at most 1 s old loads at once. */
  private guardClient(req: Request): LogtoClient {
    return this.checked.get(req) ?? new LogtoClient(req, this.context, true);
  }

  /**
   * What else to end when a back-channel logout destroys a session that held this strategy's
   * sign-in: {@link LogtoTenants} ends the other tenants' sign-ins of that session through it.
   */
  protected sessionEnded(_session: object, _sessionStore: SessionStoreLike | undefined): Promise<void> {
    return Promise.resolve();
  }

  /**
   * The other tenants' sign-ins in this request's session, linked to a new sign-in: none without {@link LogtoTenants}.
   * @internal
   */
  protected linkedSignIns(_req: Request): LinkedSignIn[] {
    return [];
  }

  /**
   * Ends the other tenants' sign-ins linked to one that a back-channel logout ended: none without {@link LogtoTenants}.
   * @internal
   */
  protected linkedEnded(_linked: LinkedSignIn[], _sessionStore: SessionStoreLike | undefined): Promise<void> {
    return Promise.resolve();
  }

  /** Keeps the page to come back to after the next sign-in, in a short-lived cookie. */
  private readonly rememberReturnTo = (req: object, answer: HostAnswer, returnTo: string): void => {
    debug('guard: %s %s has no live sign-in; sending the browser to sign in, back here afterwards', nodeRequestOf(req).method, requestPath(req));
    answer.appendSetCookie(cookieHeader(this.returnToCookie, returnTo, { maxAge: this.config.signInTimeout, path: '/', secure: this.config.callbackURL.startsWith('https:') }));
  };

  /**
   * The Logto helper for this request's sign-in: claims, userinfo, access and organization tokens.
   * Outside `logto.authenticated()`, `await` its `load()` before reading tokens synchronously.
   */
  client(req: Request): LogtoClient {
    return this.checked.get(req) ?? new LogtoClient(req, this.context);
  }

  /**
   * Route guard: signed-in users pass with `req.logto` loaded (and whatever `options` asks to have
   * ready); others are redirected or get 401 JSON. Given a handler, it returns the guard and the
   * handler together, and the handler's `req.logto` is typed as present.
   */
  authenticated(options?: AuthenticatedOptions): RequestHandler;
  authenticated(options: AuthenticatedOptions, handler: LogtoHandler): RequestHandler[];
  authenticated(options?: AuthenticatedOptions, handler?: LogtoHandler): RequestHandler | RequestHandler[] {
    const guard = authenticatedGuard((req) => this.guardClient(req), options, this.rememberReturnTo);
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

  /**
   * Middleware for after `passport.session()`: a request whose sign-in has ended (signed out or
   * logged out by Logto on any instance, its grant dead, its record expired) is signed out at
   * once: `req.user` is gone, `req.isAuthenticated()` is false, and the session no longer refers
   * to the sign-in. It answers from this process's copy of the record while that copy is at most
   * 1 s old, so most requests cost no store read. With cookie-session it is what signs out a
   * replayed copy of the cookie; with express-session it also catches a sign-in ended elsewhere.
   */
  session(): RequestHandler {
    return sessionCheckHandler(
      (req) => this.signInState(req),
      (req) => {
        // Passport's user goes only if it came from this sign-in, not from a login made over it.
        const owned = this.context.session.ownsPassportUser(req);
        this.context.session.clear(req);
        if (owned) forgetPassportUser(req);
      },
    );
  }

  /**
   * Whether this request's sign-in of this strategy is alive, as the token store says (for
   * {@link session}). The helper it loaded is the one `client(req)` gives for the rest of the
   * request, so its getters answer without another `load()`.
   */
  protected signInState(req: Request): SignInState | Promise<SignInState> {
    const client = checkSignIn(this.context, req);
    if (!client) return 'none';
    this.checked.set(req, client);
    // Loaded from a recent copy, the answer needs no promise: the common case, kept cheap.
    return client.isLoaded() ? stateOf(client) : client.load().then(stateOf);
  }

  /**
   * Ends one sign-in of this strategy by its id, outside the request that holds it (a session
   * another tenant's back-channel logout destroyed): its record ends and its refresh token is revoked.
   */
  protected async endSignInById(signInId: string, sessionStore: SessionStoreLike | undefined): Promise<void> {
    await endSignInById(this.context, sessionStore ? { sessionStore } : {}, signInId);
  }

  /**
   * Whether Passport's user came from this request's sign-in of this strategy, not from a login made over it.
   * @internal
   */
  protected ownsPassportUser(req: Request): boolean {
    return this.context.session.ownsPassportUser(req);
  }

  /**
   * Drops the session's reference to this strategy's sign-in, without ending it.
   * @internal
   */
  protected forgetReference(req: Request): void {
    this.context.session.clear(req);
  }

  /** The session key under which this strategy keeps its sign-in's reference. */
  protected get sessionKey(): string {
    return this.config.sessionKey;
  }

  /** The sign-out route handler. */
  signOut(options?: SignOutOptions): RequestHandler {
    return signOutHandler(this.context, options);
  }

  /**
   * Ends this request's sign-in of this strategy without sending the browser to Logto: its token
   * record ends for every instance (as at sign-out, so a refresh in flight cannot bring it back),
   * its refresh token is revoked (best effort), and the session no longer refers to it. The Logto
   * session stays, so the next sign-in may not ask for a password. Call it before `req.logout()`,
   * which gives the session a new id and so loses the reference; {@link logOut} does both in that
   * order. Nothing happens when the request has no sign-in; a store failure rejects with
   * `session_store_failed` or `token_store_failed`. A second call while one runs for the same
   * request waits for it.
   */
  async endSignIn(req: Request): Promise<void> {
    // A helper already loaded for this sign-in (req.logto among them) sees the end by itself.
    await endSignIn(this.context, req);
  }

  /**
   * Logs out of the app only: {@link endSignIn}, then Passport's `req.logout()` (which gives the
   * session a new id). The Logto session stays; for a sign-out at Logto too, use {@link signOut}.
   * When the sign-in cannot be ended (a store failure), it rejects before `req.logout()`, so the
   * user stays logged in and can try again, as with `signOut()`. `req.logout()`'s own failure
   * (the session store's) rejects with `session_store_failed`.
   */
  async logOut(req: Request): Promise<void> {
    await this.endSignIn(req);
    await logOutOfPassport(req, 'at log-out');
  }

  /**
   * The handler for Logto's back-channel logout POST (register its URL in the Logto Console).
   * Set the option `backchannelLogout: true` so that every sign-in is indexed for it; left unset,
   * mounting the handler still turns indexing on for this instance, with a deprecation warning.
   */
  backchannelLogout(options?: BackchannelLogoutOptions): RequestHandler {
    this.indexForBackchannelLogout();
    return backchannelLogoutHandler(this.context, options);
  }

  /** Mounting back-channel logout needs sign-ins indexed: the option, or (deprecated) from now on. */
  private indexForBackchannelLogout(): void {
    if (this.config.backchannelLogout === false) {
      throw new LogtoError(
        'invalid_config',
        'passport-logto: backchannelLogout() needs sign-ins indexed, but the option `backchannelLogout` is false: set `backchannelLogout: true`.',
      );
    }
    if (this.config.backchannelLogout === undefined) {
      if (!warnedImplicitIndexing) {
        warnedImplicitIndexing = true;
        process.emitWarning(
          'passport-logto: backchannelLogout() was mounted without the option `backchannelLogout`, so sign-ins are indexed for it '
            + 'only on this instance, from now on. Set `backchannelLogout: true` in the LogtoStrategy options of every instance.',
          { type: 'DeprecationWarning', code: 'PASSPORT_LOGTO_BACKCHANNEL_INDEXING' },
        );
      }
      this.indexSessions = true;
    }
  }

  /** Passport calls this for both legs: a request with a code, state or error is a callback. */
  override authenticate(req: Request, options?: LogtoAuthenticateOptions): void {
    let signInOptions: LogtoSignInOptions;
    try {
      signInOptions = checkAuthenticateOptions(options);
    } catch (error) {
      this.settle(req, () => this.report(error));
      return;
    }
    const parameters = callbackParametersOf(req);
    if (parameters) {
      void this.callback.handle(req, parameters).then((outcome) => {
        this.settle(req, () => this.finish(outcome));
        if (outcome.kind === 'success') this.watchForLogIn(req);
      });
    } else {
      void this.startSignIn(req, signInOptions);
    }
  }

  /**
   * A callback whose response ends without Passport's `logIn` (a custom callback, or the plain
   * AuthGuard of @nestjs/passport, that only sets `req.user`) leaves the session without its
   * sign-in: the record is ended (it would hold a live refresh token for 14 days that nothing
   * refers to) and the developer is told, once, what to add.
   */
  private watchForLogIn(req: object): void {
    if (awaitingLogIn(req) === undefined) return;
    findAnswer(req)?.onEnd(() => {
      const signInId = awaitingLogIn(req);
      if (signInId === undefined) return;
      stopAwaitingLogIn(req);
      let store: TokenStore;
      try {
        store = this.context.records.storeFor(req);
      } catch {
        return;
      }
      // Nobody waits on this answer any more: a store failure leaves the record to expire.
      this.context.records.end(store, signInId).catch(() => undefined);
      if (!warnedLogInNotCalled) {
        warnedLogInNotCalled = true;
        process.emitWarning(
          'passport-logto: a sign-in callback answered without Passport\'s req.logIn() being called, so the session does not refer '
            + 'to the sign-in and its tokens were discarded. Let Passport log the user in: no custom callback on the callback route, '
            + 'or one that calls req.logIn(user, done); with @nestjs/passport, a guard whose canActivate calls '
            + '`await super.logIn(request)` after `await super.canActivate(context)`.',
          { code: 'PASSPORT_LOGTO_LOGIN_NOT_CALLED' },
        );
      }
    });
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
      // koa-passport's stand-in response ends its middleware through `end`; Fastify's request has none.
      const res = (req as { res?: { headersSent?: boolean; statusCode: number; end(body?: string): void } }).res;
      if (res && typeof res.end === 'function') {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end('Internal Server Error');
        }
        return;
      }
      findAnswer(req)?.json(500, { error: 'internal_error' });
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
  private async prepareSignIn(req: object, options: LogtoSignInOptions, silent: boolean): Promise<URL> {
    const session = sessionOf(req);
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const startHost = this.signInHosts.hostOf(req);
    // A silent attempt's state says so, for a callback that comes back without its cookie.
    const state = silent ? silentState(this.signInHosts.state(startHost)) : this.signInHosts.state(startHost);
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
    noteSignInStart(req, this.config, this.signInHosts, startHost, parameters, silent);
    return url;
  }

  /**
   * Silent sign-in (express-openid-connect's attemptSilentLogin): once per visitor and
   * `retryAfter`, an anonymous page navigation goes to Logto with `prompt=none`, and comes back
   * signed in if the visitor has a Logto session, or to the same page signed out if not (never to
   * `failureRedirect`). Only a navigation that brings back the cookie set on an earlier page view
   * is sent, so a client that keeps no cookies never is. Mount it after the sign-in, callback and
   * sign-out routes.
   */
  silentSignIn(options?: SilentSignInOptions): RequestHandler {
    return silentSignInHandler(this.context, options);
  }

  /** Authorization parameters for this sign-in, before state, nonce and PKCE are added; a hook to override. */
  protected authorizationParameters(options: LogtoSignInOptions): URLSearchParams {
    return authorizationParameters(this.config, options);
  }
}
