import { mixin, type CanActivate, type ExecutionContext, type Type } from '@nestjs/common';
import { AuthGuard, type IAuthGuard } from '@nestjs/passport';
import { LogtoError } from '../errors.js';
import { LogtoBearerError, type BearerErrorCode } from '../bearer/errors.js';
import type { LogtoBearerRouteOptions } from '../bearer/strategy.js';
import { hostHandlersOf } from '../web/host-handlers.js';
import type { HostAnswer } from '../web/http.js';
import { HeldOutcome, type AuthenticatedOptions } from '../web/route-guard.js';
import type { SignOutOptions } from '../web/sign-out.js';
import { toHttpException } from './errors.js';
import { answerFor, passportResponse } from './platform.js';
import { bearerStrategyNamed, logtoStrategyNamed } from './strategies.js';

/** Which registered strategy a guard works with: the name given to `PassportStrategy(LogtoStrategy, name)`. */
export interface LogtoGuardStrategyOption {
  /** Default: `'logto'` (`'logto-bearer'` for {@link LogtoBearerGuard}). */
  strategy?: string;
}

export type LogtoAuthenticatedGuardOptions = AuthenticatedOptions & LogtoGuardStrategyOption;
export type LogtoSignOutGuardOptions = SignOutOptions & LogtoGuardStrategyOption;
export type LogtoBearerGuardOptions = LogtoBearerRouteOptions & LogtoGuardStrategyOption;

interface HttpArguments {
  req: object;
  res: unknown;
}

function httpArguments(context: ExecutionContext): HttpArguments {
  const http = context.switchToHttp();
  return { req: http.getRequest<object>(), res: http.getResponse<unknown>() };
}

/** Runs `work`, turning what it throws into what Nest's exception filters should see. */
function mapped<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw toHttpException(error);
  }
}

/**
 * A guard that answered the browser itself (a redirect) settles never, as @nestjs/passport's
 * AuthGuard on a redirect: the route must not run, and Nest must not answer a second time.
 */
const answeredAlready = (): Promise<never> => new Promise<never>(() => undefined);

const signInGuards = new Map<string, Type<IAuthGuard>>();

/**
 * The guard of the sign-in and callback routes (@nestjs/passport's `AuthGuard(name)` plus the
 * session): on the sign-in route it sends the browser to Logto; on the callback it logs the user
 * in to the session (`super.logIn()`, which keeps the sign-in's tokens with the session), so that
 * later requests are signed in. Failures reach Nest's exception filters as HttpExceptions with the
 * LogtoError's status (a cancelled sign-in: 401 `authorization_failed`). The route's handler runs
 * after a successful callback; read the page to go back to with {@link takeReturnTo}.
 */
export function LogtoAuthGuard(name = 'logto'): Type<IAuthGuard> {
  const existing = signInGuards.get(name);
  if (existing) return existing;
  class LogtoSignInGuard extends AuthGuard(name) {
    override async canActivate(context: ExecutionContext): Promise<boolean> {
      const { req, res } = httpArguments(context);
      mapped(() => answerFor(req, res));
      // Settles only on the callback: the sign-in leg answers with a redirect.
      const passed = (await super.canActivate(context)) as boolean;
      try {
        await super.logIn(this.getRequest(context));
      } catch (error) {
        throw toHttpException(error);
      }
      return passed;
    }

    // AuthGuard hands Passport what this returns (its typings leave the method out).
    getResponse(context: ExecutionContext): unknown {
      return passportResponse(context.switchToHttp().getResponse<unknown>());
    }

    override handleRequest<TUser>(error: unknown, user: unknown, info: unknown): TUser {
      if (error) throw toHttpException(error);
      if (!user) throw toHttpException(info instanceof LogtoError ? info : new LogtoError('not_authenticated', 'The app refused this user.'));
      return user as TUser;
    }
  }
  const guard = mixin(LogtoSignInGuard);
  signInGuards.set(name, guard);
  return guard;
}

/**
 * The guard's answer for Nest: without a redirect, a signed-out request is an exception for Nest's
 * filters, not a 401 written here. Delegates rather than spreads: an answer may keep its methods on
 * a prototype (Node's does).
 */
class ThroughFilters implements HostAnswer {
  refused = false;

  constructor(private readonly answer: HostAnswer) {}

  appendSetCookie(cookie: string): void {
    this.answer.appendSetCookie(cookie);
  }

  redirect(url: string): void {
    this.answer.redirect(url);
  }

  empty(status: number): void {
    this.answer.empty(status);
  }

  onEnd(listener: () => void): void {
    this.answer.onEnd(listener);
  }

  json(status: number, body: object): void {
    if (status === 401) this.refused = true;
    else this.answer.json(status, body);
  }
}

/** What the signed-in guard tells Nest once its outcome is known. */
function decided(outcome: HeldOutcome, req: object, answer: ThroughFilters): boolean | Promise<boolean> {
  if (outcome.failure) return Promise.reject(toHttpException(outcome.failure.error));
  if (outcome.client) {
    (req as { logto?: unknown }).logto = outcome.client;
    return true;
  }
  if (answer.refused) return Promise.reject(toHttpException(new LogtoError('not_authenticated', 'Sign in to use this route.')));
  // A redirect was answered: the route must not run, as answeredAlready() explains.
  return answeredAlready();
}

/**
 * The guard of signed-in routes (`logto.authenticated()` as a Nest guard): a signed-in request
 * passes with `req.logto` loaded, and whatever the options ask for (userinfo, an access token,
 * organization tokens) ready on it. A signed-out request is refused with 401 `not_authenticated`
 * through Nest's exception filters, or, with `redirect`, sent there with its URL kept for the
 * next sign-in. A failure (Logto or a store down) reaches the filters with its status.
 */
export function LogtoAuthenticatedGuard(options: LogtoAuthenticatedGuardOptions = {}): Type<CanActivate> {
  const { strategy: name = 'logto', ...guardOptions } = options;
  class LogtoSignedInGuard implements CanActivate {
    private guard: ReturnType<ReturnType<typeof hostHandlersOf>['guard']> | undefined;

    canActivate(context: ExecutionContext): boolean | Promise<boolean> {
      const { req, res } = httpArguments(context);
      const outcome = new HeldOutcome();
      let answer: ThroughFilters;
      try {
        this.guard ??= hostHandlersOf(logtoStrategyNamed(name)).guard(guardOptions);
        answer = new ThroughFilters(answerFor(req, res));
        this.guard(req, answer, outcome);
      } catch (error) {
        return Promise.reject(toHttpException(error));
      }
      // A record this process read moments ago decides at once: Nest takes the boolean as it is.
      return outcome.settled ? decided(outcome, req, answer) : outcome.whenSettled().then(() => decided(outcome, req, answer));
    }
  }
  return mixin(LogtoSignedInGuard);
}

/**
 * The guard of the sign-out route (`logto.signOut()` as a Nest guard): ends the sign-in, logs out
 * of Passport and sends the browser to Logto's sign-out, which ends the Logto session too. A
 * cross-site sign-out is refused with 403. The route's handler never runs.
 */
export function LogtoSignOutGuard(options: LogtoSignOutGuardOptions = {}): Type<CanActivate> {
  const { strategy: name = 'logto', ...signOutOptions } = options;
  class LogtoSignOutRouteGuard implements CanActivate {
    private signOut: ((req: object, answer: HostAnswer) => Promise<void>) | undefined;

    async canActivate(context: ExecutionContext): Promise<boolean> {
      const { req, res } = httpArguments(context);
      const answer = mapped(() => answerFor(req, res));
      this.signOut ??= mapped(() => hostHandlersOf(logtoStrategyNamed(name)).signOut(signOutOptions));
      try {
        await this.signOut(req, answer);
      } catch (error) {
        throw toHttpException(error);
      }
      return answeredAlready();
    }
  }
  return mixin(LogtoSignOutRouteGuard);
}

interface ResponseWithHeaders {
  setHeader?(name: string, value: string): unknown;
  header?(name: string, value: string): unknown;
}

/**
 * The guard of API routes that take Logto access tokens (@nestjs/passport's `AuthGuard` for a
 * `PassportStrategy(LogtoBearerStrategy, 'logto-bearer')`): `req.user` and `req.authInfo` as
 * the strategy sets them, no session, and failures answered as RFC 6750 says (401, 403
 * `insufficient_scope`, 400) with their `WWW-Authenticate` challenge, through Nest's filters.
 */
export function LogtoBearerGuard(options: LogtoBearerGuardOptions = {}): Type<IAuthGuard> {
  const { strategy: name = 'logto-bearer', requiredScopes } = options;
  class LogtoBearerRouteGuard extends AuthGuard(name) {
    override getAuthenticateOptions(): { session: false; requiredScopes?: readonly string[] } {
      return { session: false, ...(requiredScopes === undefined ? {} : { requiredScopes }) };
    }

    override async canActivate(context: ExecutionContext): Promise<boolean> {
      mapped(() => bearerStrategyNamed(name));
      return (await super.canActivate(context)) as boolean;
    }

    // AuthGuard hands Passport what this returns (its typings leave the method out).
    getResponse(context: ExecutionContext): unknown {
      return passportResponse(context.switchToHttp().getResponse<unknown>());
    }

    override handleRequest<TUser>(error: unknown, user: unknown, info: unknown, context: ExecutionContext): TUser {
      if (error) throw toHttpException(error);
      if (user) return user as TUser;
      if (typeof info === 'string' && info.startsWith('Bearer')) {
        const res = context.switchToHttp().getResponse<ResponseWithHeaders>();
        if (typeof res.setHeader === 'function') res.setHeader('WWW-Authenticate', info);
        else res.header?.('WWW-Authenticate', info);
      }
      throw toHttpException(bearerFailure(info));
    }
  }
  return mixin(LogtoBearerRouteGuard);
}

const bearerErrors: readonly BearerErrorCode[] = ['invalid_request', 'invalid_token', 'insufficient_scope'];

/**
 * The LogtoBearerError behind a failure, read back from its challenge (Passport hands a custom
 * callback the challenge and the status only), so that its status is RFC 6750's.
 */
function bearerFailure(challenge: unknown): LogtoBearerError {
  const text = typeof challenge === 'string' ? challenge : '';
  const code = /error="([^"]*)"/.exec(text)?.[1];
  const bearerError = bearerErrors.find((known) => known === code);
  const description = /error_description="([^"]*)"/.exec(text)?.[1] ?? 'This route needs a Logto access token.';
  return new LogtoBearerError(bearerError, description);
}
