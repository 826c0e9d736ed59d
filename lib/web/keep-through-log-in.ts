import type { Request } from 'express';
import type { SessionIndex } from '../store/session-index.js';
import type { IdTokenClaims } from '../logto/claims.js';
import { LogtoError, sessionStoreError } from '../errors.js';
import { safeReturnTo } from './redirects.js';
import { sessionOf, type SessionReference } from '../store/session-reference.js';
import type { TokenStore } from '../store/token-store.js';

type LogIn = (user: unknown, options: unknown, done?: unknown) => void;
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
}

/**
 * Passport 0.6+ regenerates the session in `req.logIn`, which drops anything written before it.
 * For this one request, `req.logIn` is wrapped so that the reference to the sign-in's record and
 * the return path are written into the new session once the login is done, whatever the app's
 * serializeUser keeps; the session middleware saves them with the response.
 */
export function keepThroughLogIn(req: Request, reference: SessionReference, options: KeepThroughLogInOptions): void {
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
    const callback = (typeof logInOptions === 'function' ? logInOptions : done) as (error?: unknown) => void;
    const settings = (typeof logInOptions === 'object' && logInOptions !== null ? logInOptions : {}) as { session?: boolean };
    restore();
    original.call(req, user, settings, (error?: unknown) => {
      // Passport's login regenerates and saves the session (and runs serializeUser in between).
      if (error) return callback(sessionStoreError(error, 'at sign-in (session store or serializeUser)'));
      if (settings.session !== false) {
        reference.write(req, options.signInId);
        // With keepSessionInfo, Passport carries an unchecked returnTo into the new session.
        const session = sessionOf(req);
        if (options.returnTo !== undefined) session.returnTo = options.returnTo;
        else if (safeReturnTo(session.returnTo) === undefined) delete session.returnTo;
        const { indexing } = options;
        if (indexing) {
          // cookie-session has no session id: then only the record can be ended.
          const sessionId = typeof req.sessionID === 'string' ? req.sessionID : undefined;
          indexing.index.add(indexing.store, { sessionId, signInId: options.signInId }, indexing.claims).then(() => callback(), callback);
          return;
        }
      }
      callback();
    });
  };
  target.logIn = wrapped;
  target.login = wrapped;
}
