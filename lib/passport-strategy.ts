import type { HostRequest as Request } from './host-types.js';
import { Strategy as PassportStrategyImplementation } from 'passport-strategy';

/*
 * passport-strategy's Strategy, described here rather than through @types/passport-strategy: the
 * published declarations then need no type package at run time (a JavaScript app installs none),
 * and a TypeScript app needs only the @types it already has for Express and Passport.
 */

/** The actions Passport gives a strategy for the duration of `authenticate()`. */
export interface PassportStrategyActions {
  /** Authentication succeeded: log `user` in, with `info` for `req.authInfo`. */
  success(user: object, info?: object | string): void;
  /** Authentication failed: a challenge (message or object) and an HTTP status. */
  fail(challenge?: unknown, status?: number): void;
  /** Send the browser elsewhere. */
  redirect(url: string, status?: number): void;
  /** Let the request go on unauthenticated. */
  pass(): void;
  /** An infrastructure error, for the app's error handler. */
  error(error: Error): void;
}

/** What Passport needs of a strategy besides its `name`, which each subclass declares. */
export interface PassportStrategyBase extends PassportStrategyActions {
  authenticate(req: Request, options?: object): void;
}

/** passport-strategy's `Strategy` class, with the declaration above. */
export const PassportStrategy = PassportStrategyImplementation as unknown as abstract new () => PassportStrategyBase;
