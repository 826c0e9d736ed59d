import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { LogtoError, sessionStoreError } from '../errors.js';
import type { TokenRecord } from '../store/token-record.js';
import type { LogtoContext } from './context.js';
import { header, nodeAnswer, protocolOf, settleHostCall, type HostAnswer } from './http.js';
import { safePostLogoutRedirect } from './redirects.js';

export interface SignOutOptions {
  /**
   * Where Logto sends the browser afterwards: an absolute URL on the app's origin (registered in
   * Logto) or a path. Default: the strategy's `postLogoutRedirectUri`.
   */
  postLogoutRedirectUri?: string;
}

type LogOut = (options: object, done: (error?: unknown) => void) => unknown;

/**
 * Passport's `req.logout()`, as a promise, whether the host's version calls back (Passport), returns
 * a promise (@fastify/passport) or both; nothing to do when Passport is not in use on this request.
 */
export function logOutOfPassport(req: object, during = 'at sign-out'): Promise<void> {
  const logOut = (req as { logout?: LogOut }).logout;
  if (typeof logOut !== 'function') return Promise.resolve();
  // Passport's logout only saves and regenerates the session: an error is the store's.
  return settleHostCall(logOut, 1, (done) => logOut.call(req, {}, done)).catch((error: unknown) => {
    throw sessionStoreError(error, during);
  });
}

/**
 * A sign-out that another site started (a hidden form or image) would sign the user out against
 * their will: refused when the browser says it is cross-site, or the Origin is not the app's own.
 */
function isCrossSite(req: object, allowedOrigins: ReadonlySet<string>): boolean {
  if (header(req, 'sec-fetch-site') === 'cross-site') return true;
  const origin = header(req, 'origin');
  if (origin === undefined) return false;
  if (allowedOrigins.has(origin)) return false;
  const host = header(req, 'host');
  return host === undefined || origin !== `${protocolOf(req)}://${host}`;
}

/** The ends in progress, by request and sign-in: a second call while one runs shares its outcome. */
const ending = new WeakMap<object, Map<string, Promise<TokenRecord | undefined>>>();

/**
 * Ends this request's sign-in for every instance: its token record becomes an ended mark (a
 * refresh still in flight then cannot write the tokens back), the refresh token is revoked (best
 * effort: nobody can use it once the record is gone, so it should not stay valid at Logto), and the
 * session's reference goes. Returns the ended record, for the sign-out's `id_token_hint`. Called
 * again for the same request while it runs, it waits for the first call instead of revoking twice.
 */
export function endSignIn(context: Pick<LogtoContext, 'provider' | 'records' | 'session'>, req: object): Promise<TokenRecord | undefined> {
  const reference = context.session.read(req);
  if (!reference) {
    context.session.clear(req);
    return Promise.resolve(undefined);
  }
  let inRequest = ending.get(req);
  const running = inRequest?.get(reference.signInId);
  if (running) return running;
  if (!inRequest) {
    inRequest = new Map();
    ending.set(req, inRequest);
  }
  const started = end(context, req, reference).finally(() => inRequest.delete(reference.signInId));
  inRequest.set(reference.signInId, started);
  return started;
}

async function end(
  { provider, records, session }: Pick<LogtoContext, 'provider' | 'records' | 'session'>,
  req: object,
  reference: { signInId: string; legacy?: TokenRecord },
): Promise<TokenRecord | undefined> {
  const store = records.storeFor(req);
  const record = reference.legacy ?? (await records.read(store, reference.signInId));
  await records.end(store, reference.signInId);
  if (record?.refreshToken) {
    // Best effort: the user is signed out locally (and at Logto, for sign-out) whether or not this works.
    await provider.revokeRefreshToken(record.refreshToken).catch(() => undefined);
  }
  session.clear(req);
  return record;
}

/**
 * The sign-out, on any host: ends the sign-in's token record for every instance (a refresh still in
 * flight then cannot write the tokens back), revokes the refresh token (best effort), logs
 * the user out of Passport (which gives the session a new id), and sends the browser to Logto's
 * end-session endpoint so that the Logto session ends too.
 */
export function hostSignOut(
  context: Pick<LogtoContext, 'config' | 'provider' | 'records' | 'session'>,
  options: SignOutOptions = {},
): (req: object, answer: HostAnswer) => Promise<void> {
  const { config, provider } = context;
  const allowedUrls = [config.postLogoutRedirectUri, config.callbackURL].filter((url): url is string => url !== undefined);
  const allowedOrigins = new Set(allowedUrls.map((url) => new URL(url).origin));
  let target = config.postLogoutRedirectUri;
  if (options.postLogoutRedirectUri !== undefined) {
    target = safePostLogoutRedirect(options.postLogoutRedirectUri, allowedUrls);
    if (target === undefined) {
      throw new LogtoError(
        'invalid_config',
        `passport-logto: signOut({ postLogoutRedirectUri }) must be a path or a URL on the app's origin, got "${options.postLogoutRedirectUri}".`,
      );
    }
  }

  return async (req, answer) => {
    if (isCrossSite(req, allowedOrigins)) {
      answer.json(403, { error: 'cross_site_sign_out', error_description: 'Sign-out was refused: the request came from another site.' });
      return;
    }
    const record = await endSignIn(context, req);
    await logOutOfPassport(req);

    const parameters: Record<string, string> = { client_id: config.appId };
    if (record?.idToken) parameters.id_token_hint = record.idToken;
    if (target !== undefined) parameters.post_logout_redirect_uri = target;
    answer.redirect((await provider.endSessionUrl(parameters)).href);
  };
}

/** The sign-out handler for Express; see {@link hostSignOut}. */
export function signOutHandler(context: Pick<LogtoContext, 'config' | 'provider' | 'records' | 'session'>, options: SignOutOptions = {}): RequestHandler {
  const signOut = hostSignOut(context, options);
  return (req: Request, res: Response, next: NextFunction): void => {
    signOut(req, nodeAnswer(res)).catch(next);
  };
}
