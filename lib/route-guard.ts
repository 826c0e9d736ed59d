import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { LogtoClient } from './client.js';
import { LogtoError } from './errors.js';
import { safeReturnTo } from './redirects.js';
import { sessionOf } from './session-store.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The Logto helper for this request, set by `logto.authenticated()`. */
      logto?: LogtoClient;
    }
  }
}

export interface AuthenticatedOptions {
  /**
   * Where to send a signed-out user, such as `/sign-in`; the original URL is kept in
   * `req.session.returnTo` so that sign-in lands there. Without it, the answer is 401 JSON.
   */
  redirect?: string;
  /** Fetch userinfo into `req.logto.userInfo` before the route runs. */
  fetchUserInfo?: boolean;
}

/** Route-guard middleware: lets signed-in users through with `req.logto`, turns others away. */
export function authenticatedGuard(clientFor: (req: Request) => LogtoClient, options: AuthenticatedOptions = {}): RequestHandler {
  const turnAway = (req: Request, res: Response): void => {
    if (options.redirect === undefined) {
      res.status(401).json({ error: 'not_authenticated' });
      return;
    }
    const returnTo = req.method === 'GET' ? safeReturnTo(req.originalUrl) : undefined;
    if (returnTo !== undefined) sessionOf(req).returnTo = returnTo;
    res.redirect(options.redirect);
  };

  const admit = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const client = await clientFor(req).load();
    if (!client.isAuthenticated()) {
      turnAway(req, res);
      return;
    }
    req.logto = client;
    if (options.fetchUserInfo) {
      try {
        client.userInfo = await client.fetchUserInfo();
      } catch (error) {
        if (error instanceof LogtoError && error.code === 'not_authenticated') {
          turnAway(req, res);
          return;
        }
        throw error;
      }
    }
    next();
  };

  return (req: Request, res: Response, next: NextFunction): void => {
    admit(req, res, next).catch(next);
  };
}
