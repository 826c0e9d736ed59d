import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { LogtoError, sessionStoreError } from '../errors.js';
import type { TokenRecord } from '../store/token-record.js';
import type { LogtoContext } from './context.js';
import { safePostLogoutRedirect } from './redirects.js';

export interface SignOutOptions {
  /**
   * Where Logto sends the browser afterwards: an absolute URL on the app's origin (registered in
   * Logto) or a path. Default: the strategy's `postLogoutRedirectUri`.
   */
  postLogoutRedirectUri?: string;
}

type LogOut = (options: object, done: (error?: unknown) => void) => void;

function logOutOfPassport(req: Request): Promise<void> {
  const logOut = (req as unknown as { logout?: LogOut }).logout;
  if (typeof logOut !== 'function') return Promise.resolve();
  return new Promise((resolve, reject) => {
    // Passport's logout only saves and regenerates the session: an error is the store's.
    logOut.call(req, {}, (error) => (error ? reject(sessionStoreError(error, 'at sign-out')) : resolve()));
  });
}

/**
 * A sign-out that another site started (a hidden form or image) would sign the user out against
 * their will: refused when the browser says it is cross-site, or the Origin is not the app's own.
 */
function isCrossSite(req: Request, allowedOrigins: ReadonlySet<string>): boolean {
  if (req.get('sec-fetch-site') === 'cross-site') return true;
  const origin = req.get('origin');
  if (origin === undefined) return false;
  if (allowedOrigins.has(origin)) return false;
  const host = req.get('host');
  return host === undefined || origin !== `${req.protocol}://${host}`;
}

/**
 * Ends this request's sign-in for every instance: its token record becomes an ended mark (a
 * refresh still in flight then cannot write the tokens back), the refresh token is revoked (best
 * effort: nobody can use it once the record is gone, so it should not stay valid at Logto), and the
 * session's reference goes. Returns the ended record, for the sign-out's `id_token_hint`.
 */
export async function endSignIn(context: Pick<LogtoContext, 'provider' | 'records' | 'session'>, req: Request): Promise<TokenRecord | undefined> {
  const { provider, records, session } = context;
  const reference = session.read(req);
  let record: TokenRecord | undefined;
  if (reference) {
    const store = records.storeFor(req);
    record = reference.legacy ?? (await records.read(store, reference.signInId));
    await records.end(store, reference.signInId);
  }
  if (record?.refreshToken) {
    // Best effort: the user is signed out locally (and at Logto, for sign-out) whether or not this works.
    await provider.revokeRefreshToken(record.refreshToken).catch(() => undefined);
  }
  session.clear(req);
  return record;
}

/**
 * The sign-out handler: ends the sign-in's token record for every instance (a refresh still in
 * flight then cannot write the tokens back), revokes the refresh token (best effort), logs
 * the user out of Passport (which gives the session a new id), and sends the browser to Logto's
 * end-session endpoint so that the Logto session ends too.
 */
export function signOutHandler(context: Pick<LogtoContext, 'config' | 'provider' | 'records' | 'session'>, options: SignOutOptions = {}): RequestHandler {
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

  const signOut = async (req: Request, res: Response): Promise<void> => {
    const record = await endSignIn(context, req);
    await logOutOfPassport(req);

    const parameters: Record<string, string> = { client_id: config.appId };
    if (record?.idToken) parameters.id_token_hint = record.idToken;
    if (target !== undefined) parameters.post_logout_redirect_uri = target;
    res.redirect((await provider.endSessionUrl(parameters)).href);
  };

  return (req: Request, res: Response, next: NextFunction): void => {
    if (isCrossSite(req, allowedOrigins)) {
      res.status(403).json({ error: 'cross_site_sign_out', error_description: 'Sign-out was refused: the request came from another site.' });
      return;
    }
    signOut(req, res).catch(next);
  };
}
