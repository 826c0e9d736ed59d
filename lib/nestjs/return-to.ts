import { safeReturnTo } from '../web/redirects.js';
import { sessionOf, setSessionValue, type SessionLike } from '../store/session-reference.js';

/** A session read through get() (@fastify/secure-session, @fastify/session) or as a plain object (express-session). */
function readSession(session: SessionLike, key: string): unknown {
  const get = (session as { get?: unknown }).get;
  return typeof get === 'function' ? (get as (key: string) => unknown).call(session, key) : session[key];
}

/**
 * The page to go back to after the callback: the path kept with the sign-in (the URL that
 * `LogtoAuthenticatedGuard({ redirect })` turned away, or the sign-in's `returnTo`), taken from the
 * session so that it is used once, or `fallback`. Only a same-origin path is ever returned.
 */
export function takeReturnTo(req: object, fallback = '/'): string {
  let session: SessionLike;
  try {
    session = sessionOf(req);
  } catch {
    return fallback;
  }
  const returnTo = safeReturnTo(readSession(session, 'returnTo'));
  setSessionValue(session, 'returnTo', undefined);
  return returnTo ?? fallback;
}
