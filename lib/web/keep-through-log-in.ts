import type { HostRequest as Request } from '../host-types.js';
import type { SessionIndex } from '../store/session-index.js';
import type { IdTokenClaims } from '../logto/claims.js';
import { LogtoError, sessionStoreError } from '../errors.js';
import { safeReturnTo } from './redirects.js';
import { sessionIdOf, sessionOf, setSessionValue, type SessionReference } from '../store/session-reference.js';
import { settleHostCall } from './http.js';
import type { TokenStore } from '../store/token-store.js';

type LogIn = (user: unknown, options: unknown, done?: unknown) => unknown;
interface LogInCapable {
  logIn?: LogIn;
  login?: LogIn;
}

export interface KeepThroughLogInOptions {
  /** The sign-in whose record the new session refers to. */
  signInId: string;
  /** The checked return path of this sign-in. */
  returnTo: string | undefined;
  /** Set when back-channel logout is mounted: the new session is indexed under these claims. */
  indexing: { index: SessionIndex; store: TokenStore; claims: IdTokenClaims } | undefined;
  /**
   * Ends the sign-in that the session referred to before this one, if another: once the login is
   * done, nothing refers to it but copies of the old session (a cookie-session cookie), which
   * must not stay signed in.
   */
  endReplaced?: () => Promise<unknown>;
}

/** The callbacks whose `req.logIn` was wrapped and has not run yet, with their sign-in. */
const awaiting = new WeakMap<object, string>();

/** The sign-in whose callback has not had Passport's `logIn` run yet, if any. */
export function awaitingLogIn(req: object): string | undefined {
  return awaiting.get(req);
}

/** Forgets that `req` waits for its `logIn`: the caller deals with it. */
export function stopAwaitingLogIn(req: object): void {
  awaiting.delete(req);
}

/**
 * Passport 0.6+ regenerates the session in `req.logIn`, which drops anything written before it.
 * For this one request, `req.logIn` is wrapped so that the reference to the sign-in's record and
 * the return path are written into the new session once the login is done, whatever the app's
 * serializeUser keeps; the session middleware saves them with the response.
 */
export function keepThroughLogIn(req: object, reference: SessionReference, options: KeepThroughLogInOptions): void {
  const target = req as unknown as LogInCapable;
  const original = target.logIn;
  if (typeof original !== 'function') {
    throw new LogtoError('session_required', 'passport-logto needs passport.initialize() (Passport 0.6 or later) before the callback route.');
  }
  const restore = (): void => {
    target.logIn = original;
    target.login = original;
  };
  const wrapped: LogIn = (user, logInOptions, done) => {
    const callback = (typeof logInOptions === 'function' ? logInOptions : typeof done === 'function' ? done : undefined) as
      | ((error?: unknown) => void)
      | undefined;
    const settings = (typeof logInOptions === 'object' && logInOptions !== null ? logInOptions : {}) as { session?: boolean };
    restore();
    awaiting.delete(req);
    // Passport's login regenerates and saves the session (and runs serializeUser in between); the
    // host's version may call back (Passport, koa-passport) or return a promise (@fastify/passport).
    const loggedIn = settleHostCall(original, 2, (finish) => original.call(req, user, settings, finish)).then(
      async () => {
        if (settings.session === false) return;
        reference.write(req, options.signInId);
        reference.noteUser(req);
        // With keepSessionInfo, Passport carries an unchecked returnTo into the new session.
        const session = sessionOf(req);
        if (options.returnTo !== undefined) setSessionValue(session, 'returnTo', options.returnTo);
        else if (safeReturnTo(session.returnTo) === undefined) setSessionValue(session, 'returnTo', undefined);
        const { indexing } = options;
        // A session kept in its cookie has no id (see sessionIdOf): then only the record can be ended.
        if (indexing) {
          await indexing.index.add(indexing.store, { sessionId: sessionIdOf(req), signInId: options.signInId }, indexing.claims);
        }
        await options.endReplaced?.();
      },
      (error: unknown) => {
        throw sessionStoreError(error, 'at sign-in (session store or serializeUser)');
      },
    );
    if (callback) {
      loggedIn.then(() => callback(), callback).catch((error: unknown) => {
        // What runs after the login (Passport's redirect, the app's callback) threw: Express's error handler gets it, never an unhandled rejection.
        const next = (req as { next?: (error: unknown) => void }).next;
        if (typeof next === 'function') next(error);
      });
      return undefined;
    }
    return loggedIn;
  };
  target.logIn = wrapped;
  target.login = wrapped;
  awaiting.set(req, options.signInId);
}
