import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { ResolvedConfig } from './configuration.js';
import { LogtoError, sessionStoreError } from './errors.js';
import type { LogtoProvider } from './provider.js';
import { safePostLogoutRedirect } from './redirects.js';
import type { RefreshCoordinator } from './refresh-coordinator.js';
import type { SessionTokenStore } from './session-store.js';

export interface SignOutOptions {
  /**
   * Where Logto sends the browser afterwards: an absolute URL on the app's origin (registered in
   * Logto) or a path. Default: the strategy's `postLogoutRedirectUri`.
   */
  postLogoutRedirectUri?: string;
}

export interface SignOutContext {
  config: ResolvedConfig;
  provider: LogtoProvider;
  store: SessionTokenStore;
  coordinator: RefreshCoordinator;
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
 * The sign-out handler: revokes the refresh token (best effort), logs the user out of Passport
 * (which gives the session a new id), removes the tokens, and sends the browser to Logto's
 * end-session endpoint so that the Logto session ends too.
 */
export function signOutHandler(context: SignOutContext, options: SignOutOptions = {}): RequestHandler {
  const { config, provider, store, coordinator } = context;
  const allowedOrigins = [config.postLogoutRedirectUri, config.callbackURL].filter((url): url is string => url !== undefined);
  let target = config.postLogoutRedirectUri;
  if (options.postLogoutRedirectUri !== undefined) {
    target = safePostLogoutRedirect(options.postLogoutRedirectUri, allowedOrigins);
    if (target === undefined) {
      throw new LogtoError(
        'invalid_config',
        `passport-logto: signOut({ postLogoutRedirectUri }) must be a path or a URL on the app's origin, got "${options.postLogoutRedirectUri}".`,
      );
    }
  }

  const signOut = async (req: Request, res: Response): Promise<void> => {
    const tokens = store.read(req);
    if (tokens?.refreshToken) {
      // Best effort: the user is signed out locally and at Logto whether or not this works.
      await provider.revokeRefreshToken(tokens.refreshToken).catch(() => undefined);
    }
    store.clear(req);
    if (tokens) await coordinator.forget(tokens.signInId);
    await logOutOfPassport(req);

    const parameters: Record<string, string> = { client_id: config.appId };
    if (tokens?.idToken) parameters.id_token_hint = tokens.idToken;
    if (target !== undefined) parameters.post_logout_redirect_uri = target;
    res.redirect((await provider.endSessionUrl(parameters)).href);
  };

  return (req: Request, res: Response, next: NextFunction): void => {
    signOut(req, res).catch(next);
  };
}
