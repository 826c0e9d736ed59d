import type { HostNext as NextFunction, HostRequest as Request, HostRequestHandler as RequestHandler, HostResponse as Response } from '../host-types.js';
import type { LogtoContext } from './context.js';
import { LogtoClient } from './client.js';

/** What the token store says of the session's sign-in. */
export type SignInState = 'none' | 'alive' | 'ended';

/**
 * The helper for a request whose session refers to a sign-in, already loaded when this process
 * read its record at most 1 s ago (or saw it end); undefined when the session refers to none.
 * Unloaded, its `load()` reads the store, once for the requests of one sign-in that arrive
 * together, and also moves a 0.1.0 session's tokens into their record, or finds them ended.
 */
export function checkSignIn(
  context: Pick<LogtoContext, 'config' | 'provider' | 'records' | 'refresher' | 'session' | 'index'>,
  req: Request,
): LogtoClient | undefined {
  const reference = context.session.read(req);
  if (!reference) return undefined;
  return new LogtoClient(req, context, reference);
}

/**
 * Whether a loaded helper's sign-in is alive, as the token store said: a missing record is an
 * ended sign-in. From the load itself, even when a slow store answered after the getters' 2 s.
 */
export function stateOf(loaded: LogtoClient): SignInState {
  return loaded.loadedAlive() ? 'alive' : 'ended';
}

/**
 * Takes Passport's user off this request and out of its session, as Passport's own logout does,
 * without regenerating the session: nothing else of the session changes, and with cookie-session
 * the cookie is written again without the user.
 */
export function forgetPassportUser(req: Request): void {
  const property = (req as { _userProperty?: string })._userProperty ?? 'user';
  const holder = req as unknown as Record<string, unknown>;
  if (holder[property] !== undefined) holder[property] = null;
  const key = (req as { _sessionManager?: { _key?: string } })._sessionManager?._key ?? 'passport';
  const session = (req as unknown as { session?: Record<string, unknown> | null }).session;
  const passportData = session?.[key];
  if (passportData && typeof passportData === 'object' && 'user' in passportData) delete (passportData as { user?: unknown }).user;
}

/**
 * The middleware behind `logto.session()`: after `passport.session()`, a request whose sign-in has
 * ended (sign-out or back-channel logout on any instance, a dead grant, an expired record) is
 * signed out: `req.user` is gone, `req.isAuthenticated()` is false, and the session no longer
 * refers to the sign-in. This is what makes a copy of a cookie-session cookie, replayed after
 * the end, signed out everywhere within 2 s.
 */
export function sessionCheckHandler(
  state: (req: Request) => SignInState | Promise<SignInState>,
  ended: (req: Request) => void | Promise<void>,
): RequestHandler {
  const settle = (outcome: SignInState, req: Request, next: NextFunction): void => {
    if (outcome !== 'ended') {
      next();
      return;
    }
    try {
      const done = ended(req);
      if (done instanceof Promise) done.then(() => next(), next);
      else next();
    } catch (error) {
      next(error);
    }
  };
  return (req: Request, _res: Response, next: NextFunction): void => {
    let outcome: SignInState | Promise<SignInState>;
    try {
      outcome = state(req);
    } catch (error) {
      next(error);
      return;
    }
    if (typeof outcome === 'string') settle(outcome, req, next);
    else outcome.then((known) => settle(known, req, next), next);
  };
}
