import { safeReturnTo } from '../web/redirects.js';
import { sessionOf } from '../store/session-reference.js';

/**
 * The page to go back to after the callback: the path kept with the sign-in (the URL that
 * `LogtoAuthenticatedGuard({ redirect })` turned away, or the sign-in's `returnTo`), taken from the
 * session so that it is used once, or `fallback`. Only a same-origin path is ever returned.
 */
export function takeReturnTo(req: object, fallback = '/'): string {
  let session: ReturnType<typeof sessionOf>;
  try {
    session = sessionOf(req);
  } catch {
    return fallback;
  }
  const returnTo = safeReturnTo(session.returnTo);
  delete session.returnTo;
  return returnTo ?? fallback;
}
