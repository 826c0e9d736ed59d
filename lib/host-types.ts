import type { IncomingMessage, ServerResponse } from 'node:http';

/*
 * The request, response and handler types of passport-logto's host-neutral API (the strategy, the
 * helper, the guard...), so that its declarations need the types of no host. lib/express/types.ts
 * (loaded by the root entry and passport-logto/express) fills LogtoHostTypes with Express's; the
 * entries of the other hosts leave it empty, and the types are Node's, with what Passport adds.
 */

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    /*
     * Declared (empty) here as @types/passport declares them, with which they merge when it is
     * there: the types below resolve without it, and an app's own augmentation of either types
     * what its verify function returns and what `req.authInfo` holds.
     */
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type
    interface User {}
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type
    interface AuthInfo {}
  }
}

/**
 * The host's request, response, `next` and handler types, when a host entry declares them
 * (`request`, `response`, `next`, `handler`); empty otherwise, so that the Node types below apply.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface LogtoHostTypes {}

/** What `req.logIn()` and `req.logOut()` call back with. */
export type PassportDone = (error?: unknown) => void;

/** What Passport (0.6 and 0.7) adds to Node's request in `passport.initialize()`, and a session middleware's session. */
export interface PassportRequestAdditions {
  user?: Express.User | undefined;
  authInfo?: Express.AuthInfo | undefined;
  session?: object | null | undefined;
  isAuthenticated(): boolean;
  isUnauthenticated(): boolean;
  logIn(user: Express.User, done: PassportDone): void;
  logIn(user: Express.User, options: object, done: PassportDone): void;
  login(user: Express.User, done: PassportDone): void;
  login(user: Express.User, options: object, done: PassportDone): void;
  logOut(done: PassportDone): void;
  logOut(options: object, done: PassportDone): void;
  logout(done: PassportDone): void;
  logout(options: object, done: PassportDone): void;
}

/** Node's request as Passport leaves it: the request type when no host's types are loaded. */
export type PassportRequest = IncomingMessage & PassportRequestAdditions;

/** The request of a handler: Express's `Request` with the Express types, else {@link PassportRequest}. */
export type HostRequest = LogtoHostTypes extends { request: infer Request } ? Request : PassportRequest;
/** The response of a handler: Express's `Response` with the Express types, else Node's. */
export type HostResponse = LogtoHostTypes extends { response: infer Response } ? Response : ServerResponse;
/** What a handler calls to go on, or to hand an error on. */
export type HostNext = LogtoHostTypes extends { next: infer Next } ? Next : (error?: unknown) => void;
/** A middleware: Express's `RequestHandler` with the Express types, else a connect-style function. */
export type HostRequestHandler = LogtoHostTypes extends { handler: infer Handler } ? Handler : (req: HostRequest, res: HostResponse, next: HostNext) => void;

/**
 * Passport's options of `passport.authenticate()` (0.6 and 0.7), declared here so that the
 * declarations need no @types/passport (which brings @types/express): the same fields, so that a
 * value of this type passes where Passport's `AuthenticateOptions` is expected, on every host.
 */
export interface PassportAuthenticateOptions {
  /** Whether to set `req.authInfo` from the strategy's info. Default true. */
  authInfo?: boolean | undefined;
  /** Put the user in this request property instead of logging in. */
  assignProperty?: string | undefined;
  failureFlash?: string | boolean | undefined;
  /** Keep the failure's message in `req.session.messages` (or this message). */
  failureMessage?: boolean | string | undefined;
  failureRedirect?: string | undefined;
  /** Hand failures to the error handler as an AuthenticationError instead of answering 401. */
  failWithError?: boolean | undefined;
  /** Carry the session's other data through the login's session regeneration. */
  keepSessionInfo?: boolean | undefined;
  /** Log the user into the session. Default true. */
  session?: boolean | undefined;
  scope?: string | string[] | undefined;
  successFlash?: string | boolean | undefined;
  successMessage?: boolean | string | undefined;
  successRedirect?: string | undefined;
  /** Redirect to the session's `returnTo`, or here without one. */
  successReturnToOrRedirect?: string | undefined;
  state?: string | undefined;
  pauseStream?: boolean | undefined;
  userProperty?: string | undefined;
  passReqToCallback?: boolean | undefined;
  prompt?: string | undefined;
}
