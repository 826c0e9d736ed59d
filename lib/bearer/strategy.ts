import { STATUS_CODES } from 'node:http';
import { PassportStrategy } from '../passport-strategy.js';
import type { HostRequest as Request, HostRequestHandler as RequestHandler, PassportAuthenticateOptions as AuthenticateOptions } from '../host-types.js';
import { resolveBearerSettings, scopeList, type BearerSettings, type LogtoBearerOptions } from './configuration.js';
import { LogtoBearerError } from './errors.js';
import { addChallengeOnResponse, bearerTokenOf, tokenPattern } from './request.js';
import type { AccessTokenClaims } from '../logto/claims.js';
import { LogtoError } from '../errors.js';
import { refuseUnknownRequestOptions } from '../options.js';
import { AccessTokenChecks, scopesOf } from './token-checks.js';
import { checkVerifyArgument, runVerify, type VerifyDone, type VerifyResult } from '../verify-callback.js';

/**
 * Per-route options: `strategy.middleware({ requiredScopes })`, or
 * `const route: LogtoBearerRouteOptions = { session: false, requiredScopes }; passport.authenticate('logto-bearer', route)`:
 * passport-logto does not add them to Passport's global `AuthenticateOptions`.
 */
export interface LogtoBearerRouteOptions extends AuthenticateOptions {
  /** Scopes this route needs on top of the strategy's `requiredScopes`. */
  requiredScopes?: readonly string[] | undefined;
}

/** What `req.authInfo` holds after a successful bearer authentication. */
export interface LogtoBearerAuthInfo {
  /** The token's scopes. */
  scopes: string[];
  /** The verified token claims. */
  claims: AccessTokenClaims;
  /**
   * The organization the token belongs to: an organization token's `urn:logto:organization:<id>`
   * audience, or an organization-scoped API token's `organization_id`. Absent for other tokens.
   */
  organizationId?: string;
}

export type BearerVerifyFunction = (claims: AccessTokenClaims, done: VerifyDone) => void | Promise<VerifyResult>;
export type BearerVerifyFunctionWithRequest = (
  req: Request,
  claims: AccessTokenClaims,
  done: VerifyDone,
) => void | Promise<VerifyResult>;

/** Options of {@link LogtoBearerStrategy.verifyAccessToken}. */
export interface VerifyAccessTokenOptions {
  /** Scopes needed on top of the strategy's `requiredScopes`. */
  requiredScopes?: readonly string[];
  /** The organization the token must belong to. Default: the `organizationId` option when it is a string. */
  organizationId?: string;
}

/** The keys of {@link LogtoBearerRouteOptions} besides Passport's. */
const bearerRouteOptionNames: ReadonlySet<string> = new Set(['requiredScopes']);
const routeOptionsWhat = 'an option of LogtoBearerStrategy\'s routes (`requiredScopes`) or of Passport; scopes a route needs go in `requiredScopes`';

type Outcome =
  | { kind: 'success'; user: object; info: LogtoBearerAuthInfo }
  | { kind: 'failure'; failure: LogtoBearerError }
  | { kind: 'error'; error: Error };

/**
 * Protects an API with Logto access tokens: each JWT is verified locally against Logto's JWKS,
 * which is downloaded once and kept, so that a request costs no call to Logto. Failures answer as
 * RFC 6750 says: 401 `invalid_token`, 403 `insufficient_scope`, 400 `invalid_request`, and a bare
 * 401 challenge when there is no token. Logto being unreachable is an error for the app's error
 * handler, never a 401 that blames the client.
 */
export class LogtoBearerStrategy extends PassportStrategy {
  name: string;
  private readonly settings: BearerSettings;
  private readonly checks: AccessTokenChecks;
  private readonly verify: BearerVerifyFunction | BearerVerifyFunctionWithRequest | undefined;

  constructor(options: LogtoBearerOptions & { passReqToCallback: true }, verify: BearerVerifyFunctionWithRequest);
  constructor(options: LogtoBearerOptions, verify?: BearerVerifyFunction);
  constructor(options: LogtoBearerOptions, verify?: BearerVerifyFunction | BearerVerifyFunctionWithRequest) {
    super();
    this.settings = resolveBearerSettings(options);
    checkVerifyArgument(verify, this.settings.passReqToCallback, 2, '(claims, done) or async (claims) => user');
    this.name = this.settings.name;
    this.verify = verify;
    this.checks = new AccessTokenChecks(this.settings);
  }

  /**
   * Passport entry point; `options.requiredScopes` adds scopes for this route. Bearer
   * authentication never logs the user in to a session, even when the route forgot
   * `{ session: false }`: each request carries its own token.
   */
  override authenticate(req: Request, options: LogtoBearerRouteOptions = {}): void {
    let routeScopes: readonly string[];
    try {
      refuseUnknownRequestOptions(options, bearerRouteOptionNames, routeOptionsWhat);
      routeScopes = scopeList(options.requiredScopes, 'requiredScopes');
    } catch (error) {
      this.error(asError(error));
      return;
    }
    // outcomeFor never rejects and deliver catches what Passport or the app throws; the last
    // catch only guards against the fallback itself failing, so no rejection goes unhandled.
    this.outcomeFor(req, routeScopes)
      .then((outcome) => this.deliver(req, options, outcome))
      .catch(() => answerServerError(req));
  }

  /**
   * Hands the outcome to Passport, which runs the app's custom callback, or the next middleware,
   * synchronously from here. After the await, a throw there would escape Express's own
   * try/catch and leave the request hanging; it goes to Express's error handler instead, once,
   * and the callback is not called a second time with it.
   */
  private deliver(req: Request, options: LogtoBearerRouteOptions, outcome: Outcome): void {
    try {
      switch (outcome.kind) {
        case 'success':
          this.succeedWithoutSession(options, outcome.user, outcome.info);
          return;
        case 'failure': {
          const challenge = outcome.failure.challenge(this.settings.realm);
          // Passport writes the challenge itself only for 401; this covers 400 and 403.
          if (req.res) addChallengeOnResponse(req.res, outcome.failure.httpStatus, challenge);
          this.fail(challenge, outcome.failure.httpStatus);
          return;
        }
        case 'error':
          this.error(outcome.error);
      }
    } catch (error) {
      forwardToExpress(req, error, undefined);
    }
  }

  /**
   * Passport's `success` logs the user in to the session unless the route's options say
   * `session: false`, regenerating the session and setting a cookie for a mere API call. Passport
   * reads that option synchronously at the start of `req.logIn`, so it is set for this call only
   * and put back as it was: the same options object serves every request of the route, and maybe
   * other strategies.
   */
  private succeedWithoutSession(options: LogtoBearerRouteOptions, user: object, info: LogtoBearerAuthInfo): void {
    const routeOptions = options as Record<string, unknown>;
    const hadOwn = Object.hasOwn(routeOptions, 'session');
    const previous = routeOptions.session;
    const masked = previous !== false && Reflect.set(routeOptions, 'session', false);
    try {
      this.success(user, info);
    } finally {
      if (masked) {
        if (hadOwn) routeOptions.session = previous;
        else delete routeOptions.session;
      }
    }
  }

  /**
   * Plain Express middleware sharing this strategy's JWKS cache: sets `req.user` and
   * `req.authInfo` and calls `next()`, or answers 400/401/403 with a `WWW-Authenticate` challenge.
   */
  middleware(options: LogtoBearerRouteOptions = {}): RequestHandler {
    refuseUnknownRequestOptions(options, bearerRouteOptionNames, routeOptionsWhat);
    const routeScopes = scopeList(options.requiredScopes, 'requiredScopes');
    return (req, res, next) => {
      this.outcomeFor(req, routeScopes)
        .then((outcome) => {
          // `next` is called once at most: a `next` that throws (an app calling this middleware
          // from its own handler with its own continuation) must not get its error back.
          try {
            switch (outcome.kind) {
              case 'success':
                req.user = outcome.user;
                req.authInfo = outcome.info;
                next();
                return;
              case 'failure':
                res.statusCode = outcome.failure.httpStatus;
                res.setHeader('WWW-Authenticate', outcome.failure.challenge(this.settings.realm));
                res.setHeader('Content-Type', 'text/plain; charset=utf-8');
                res.end(STATUS_CODES[outcome.failure.httpStatus]);
                return;
              case 'error':
                next(outcome.error);
            }
          } catch (error) {
            forwardToExpress(req, error, next);
          }
        })
        .catch(() => answerServerError(req));
    };
  }

  /**
   * Verifies an access token outside of an HTTP request (a WebSocket handshake, a queue message).
   * Throws a {@link LogtoBearerError} when the token is refused, and another LogtoError when Logto
   * cannot be reached. The verify function is not called.
   */
  async verifyAccessToken(token: string, options: VerifyAccessTokenOptions = {}): Promise<AccessTokenClaims> {
    if (typeof token !== 'string' || !tokenPattern.test(token)) {
      throw new LogtoBearerError('invalid_token', 'The token is not a well-formed JWT.');
    }
    const fixedOrganization = typeof this.settings.organizationId === 'string' ? this.settings.organizationId : undefined;
    const checked = await this.checks.check(token, scopeList(options.requiredScopes, 'requiredScopes'), options.organizationId ?? fixedOrganization);
    return checked.claims;
  }

  /** Never rejects: every failure becomes an outcome, so no request can end in an unhandled rejection. */
  private async outcomeFor(req: Request, routeScopes: readonly string[]): Promise<Outcome> {
    try {
      const token = bearerTokenOf(req, this.settings.tokenLocations);
      const expectedOrganization =
        typeof this.settings.organizationId === 'function' ? this.settings.organizationId(req) : this.settings.organizationId;
      if (expectedOrganization !== undefined && (typeof expectedOrganization !== 'string' || expectedOrganization === '')) {
        throw new LogtoError('invalid_config', 'passport-logto: option `organizationId` must give a non-empty string or undefined (a wildcard route parameter gives an array: name the parameter that holds the ID).');
      }
      const { claims, organizationId } = await this.checks.check(token, routeScopes, expectedOrganization);
      const user = await this.userFor(req, claims);
      if (user === false) throw new LogtoBearerError('invalid_token', 'The app refused this token.');
      const info: LogtoBearerAuthInfo = { scopes: scopesOf(claims), claims };
      if (organizationId !== undefined) info.organizationId = organizationId;
      return { kind: 'success', user, info };
    } catch (error) {
      return error instanceof LogtoBearerError ? { kind: 'failure', failure: error } : { kind: 'error', error: asError(error) };
    }
  }

  /** Runs the verify function (callback or promise), or uses the claims themselves as the user. */
  private userFor(req: Request, claims: AccessTokenClaims): Promise<object | false> {
    const verify = this.verify;
    if (!verify) return Promise.resolve(claims);
    const withRequest = this.settings.passReqToCallback;
    // As for LogtoStrategy: a function that declares `done` may call it after its promise resolves.
    return runVerify(
      (done) => (withRequest ? (verify as BearerVerifyFunctionWithRequest)(req, claims, done) : (verify as BearerVerifyFunction)(claims, done)),
      verify.length >= (withRequest ? 3 : 2),
    ).then((verified) => verified.user);
  }
}

/**
 * Express middleware that protects a route with Logto access tokens, for APIs that do not use
 * Passport. Each call has its own JWKS cache: for many routes, create one `LogtoBearerStrategy`
 * and use its `middleware({ requiredScopes })`.
 */
export function logtoBearer(options: LogtoBearerOptions & { passReqToCallback: true }, verify: BearerVerifyFunctionWithRequest): RequestHandler;
export function logtoBearer(options: LogtoBearerOptions, verify?: BearerVerifyFunction): RequestHandler;
export function logtoBearer(options: LogtoBearerOptions, verify?: BearerVerifyFunction | BearerVerifyFunctionWithRequest): RequestHandler {
  const strategy = options.passReqToCallback === true
    ? new LogtoBearerStrategy({ ...options, passReqToCallback: true }, verify as BearerVerifyFunctionWithRequest)
    : new LogtoBearerStrategy(options, verify as BearerVerifyFunction | undefined);
  return strategy.middleware();
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Sends an error thrown by the app's continuation to Express's error handler through `req.next`,
 * which Express (4 and 5) sets to the router's `next` for the current layer. `calledNext` is the
 * continuation that threw, which must not be called again.
 */
function forwardToExpress(req: Request, error: unknown, calledNext: ((error?: unknown) => void) | undefined): void {
  const routerNext: unknown = (req as { next?: unknown }).next;
  if (typeof routerNext === 'function' && routerNext !== calledNext) {
    (routerNext as (error: unknown) => void)(asError(error));
    return;
  }
  answerServerError(req);
}

/** Outside Express, or when even that failed: a bare 500 rather than a request left hanging. */
function answerServerError(req: Request): void {
  const res = req.res;
  if (!res || res.headersSent || res.writableEnded) return;
  res.statusCode = 500;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(STATUS_CODES[500]);
}
