import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { LogtoClient } from '../web/client.js';

/*
 * Express's types for passport-logto's API: loaded by the root entry and passport-logto/express
 * (through a type-only export), never by the other hosts' entries, so that their declarations
 * need no @types/express.
 */

declare module '../host-types.js' {
  interface LogtoHostTypes {
    request: Request;
    response: Response;
    next: NextFunction;
    handler: RequestHandler;
  }
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The Logto helper for this request, set by `logto.authenticated()`. */
      logto?: LogtoClient;
    }
  }
}

export {};
