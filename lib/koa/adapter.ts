import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LogtoClient } from '../web/client.js';
import type { BackchannelLogoutOptions } from '../web/back-channel-logout.js';
import { hostHandlersOf } from '../web/host-handlers.js';
import { bindAnswer, type HostAnswer } from '../web/http.js';
import type { AuthenticatedOptions } from '../web/route-guard.js';
import type { SignOutOptions } from '../web/sign-out.js';
import type { LogtoStrategy } from '../web/strategy.js';

/**
 * The parts of Koa's context (Koa 2 and 3) that the adapter uses, so that these types need no
 * Koa types: Koa's own `Context` fits them.
 */
export interface KoaContextLike {
  req: IncomingMessage;
  res: ServerResponse;
  /**
   * Koa's state, where the guard puts the helper (`ctx.state.logto`) and koa-passport the user.
   * Any object, so that a context typed with the app's own state (`Koa<LogtoKoaState>`) fits.
   */
  state: object;
  method: string;
  originalUrl: string;
  path: string;
  protocol: string;
  status: number;
  body: unknown;
  /** koa-session's session (or any session middleware's that sets `ctx.session`). */
  session?: unknown;
  redirect(url: string): void;
  set(field: string, value: string): void;
  append(field: string, value: string | string[]): void;
  /** koa-passport's, on the context. */
  isAuthenticated?(): boolean;
  logout?(options?: object): Promise<void>;
}

/** A Koa middleware, as Koa 2 and 3 call it. */
export type KoaMiddleware = (ctx: KoaContextLike, next: () => Promise<unknown>) => Promise<void>;

/** The state of a context that passed the guard: `ctx.state.logto` is there. */
export interface LogtoKoaState {
  logto: LogtoClient;
}

export interface KoaSilentSignInOptions {
  /** Seconds before the same visitor is tried again after an attempt. Default 3600. */
  retryAfter?: number;
  /** Requests never to try on, beside the callback route (which is always left alone). */
  skip?: (ctx: KoaContextLike) => boolean;
}

/** A LogtoStrategy's handlers as Koa middleware; see {@link logtoKoa}. */
export interface LogtoKoa {
  /**
   * Lets passport-logto answer Koa requests (the started sign-in's cookie, among others): mount it
   * before the sign-in and callback routes, after koa-session and koa-passport.
   */
  middleware(): KoaMiddleware;
  /**
   * For after koa-passport's `passport.session()`: a context whose sign-in has ended (signed out or
   * logged out by Logto on any instance, its grant dead, its record expired) is signed out at once:
   * `ctx.state.user` is gone, `ctx.isAuthenticated()` is false, and the session no longer refers to
   * the sign-in nor holds Passport's user. With koa-session's cookie it is what signs out a copy of
   * the cookie replayed after sign-out. Most requests answer from a copy at most 2 s old.
   */
  session(): KoaMiddleware;
  /**
   * The route guard: signed-in users go on with the helper in `ctx.state.logto` (loaded, with what
   * `options` asks to have ready); others get 401 JSON or the redirect of `options.redirect`, and
   * the rest of the chain never runs for them. Failures are thrown, for Koa's error handling.
   */
  authenticated(options?: AuthenticatedOptions): KoaMiddleware;
  /** The sign-out route: ends the sign-in, logs out of Passport, sends the browser to Logto. */
  signOut(options?: SignOutOptions): KoaMiddleware;
  /** Silent sign-in for anonymous page navigations (see `LogtoStrategy.silentSignIn`). */
  silentSignIn(options?: KoaSilentSignInOptions): KoaMiddleware;
  /** The route for Logto's back-channel logout POST; reads the form body itself (no body parser needed). */
  backchannelLogout(options?: BackchannelLogoutOptions): KoaMiddleware;
  /** The helper for this context's sign-in; `await` its `load()` outside the guard. */
  client(ctx: KoaContextLike): LogtoClient;
  /** `LogtoStrategy.endSignIn` for a Koa context. */
  endSignIn(ctx: KoaContextLike): Promise<void>;
  /** `LogtoStrategy.logOut` for a Koa context: ends the sign-in, then koa-passport's `ctx.logout()`. */
  logOut(ctx: KoaContextLike): Promise<void>;
}

/** Koa's state, as the adapter reads and writes it. */
function stateOf(ctx: KoaContextLike): Record<string, unknown> {
  return ctx.state as Record<string, unknown>;
}

/** The request passport-logto's handlers read, for a Koa context: one per context. */
const views = new WeakMap<KoaContextLike, object>();

function answerFor(ctx: KoaContextLike): HostAnswer {
  return {
    // Koa's append keeps the Set-Cookie headers already there (koa-session's comes after).
    appendSetCookie: (cookie) => ctx.append('Set-Cookie', cookie),
    redirect: (url) => ctx.redirect(url),
    json: (status, body) => {
      ctx.status = status;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = body;
    },
    empty: (status) => {
      ctx.status = status;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = '';
    },
    onEnd: (listener) => {
      if (ctx.res.closed) listener();
      else ctx.res.once('close', listener);
    },
  };
}

/**
 * The context as a request: Node's headers and socket, Koa's URL and protocol (which honour
 * `app.proxy`), the session and koa-passport's methods, and the answer bound to it and to Node's
 * request (which koa-passport's request for strategies leads to).
 */
function viewOf(ctx: KoaContextLike): object {
  let view = views.get(ctx);
  if (view) return view;
  view = {
    get headers() {
      return ctx.req.headers;
    },
    get method() {
      return ctx.method;
    },
    get url() {
      return ctx.originalUrl;
    },
    get originalUrl() {
      return ctx.originalUrl;
    },
    get path() {
      return ctx.path;
    },
    get protocol() {
      return ctx.protocol;
    },
    get socket() {
      return ctx.req.socket;
    },
    get session() {
      return ctx.session;
    },
    get user() {
      return stateOf(ctx).user;
    },
    isAuthenticated: () => ctx.isAuthenticated?.() === true,
    // koa-passport's ctx.logout returns a promise and takes no callback.
    ...(typeof ctx.logout === 'function' ? { logout: (options: object) => (ctx.logout as (options: object) => Promise<void>)(options) } : {}),
    req: ctx.req,
  };
  const answer = answerFor(ctx);
  bindAnswer(view, answer);
  bindAnswer(ctx.req, answer);
  views.set(ctx, view);
  return view;
}

/**
 * Signs koa-passport's user out of this context without regenerating the session, as Passport's
 * logout does to the user: `ctx.state.user` (koa-passport's request reads it there) and the
 * user under the session's Passport key, which koa-session then writes back without it.
 */
function forgetKoaPassportUser(ctx: KoaContextLike): void {
  // koa-passport's initialize leaves passport.js's compatibility handle in ctx.state._passport.
  const state = stateOf(ctx);
  const instance = (state._passport as { instance?: { _userProperty?: unknown; _key?: unknown } } | undefined)?.instance;
  const property = typeof instance?._userProperty === 'string' ? instance._userProperty : 'user';
  const key = typeof instance?._key === 'string' ? instance._key : 'passport';
  if (state[property] !== undefined) state[property] = null;
  const session = ctx.session as Record<string, unknown> | null | undefined;
  const passportData = session && typeof session === 'object' ? session[key] : undefined;
  if (passportData && typeof passportData === 'object' && 'user' in passportData) delete (passportData as { user?: unknown }).user;
}

/** Runs a handler that answers (or throws): the chain after it does not run. */
function answering(handle: (req: object, answer: HostAnswer) => Promise<unknown>): KoaMiddleware {
  return async (ctx) => {
    const view = viewOf(ctx);
    await handle(view, answerFor(ctx));
  };
}

/**
 * The handlers of a LogtoStrategy for Koa 2 and 3 with koa-passport and koa-session. Sign-in and
 * callback stay koa-passport's `passport.authenticate('logto')`; the helper of a guarded route is
 * `ctx.state.logto`, where Koa apps keep what middleware hands on (koa-passport's user is in
 * `ctx.state.user`).
 */
export function logtoKoa(strategy: LogtoStrategy): LogtoKoa {
  const handlers = hostHandlersOf(strategy);
  return {
    middleware: () => async (ctx, next) => {
      viewOf(ctx);
      await next();
    },
    session: () => async (ctx, next) => {
      const view = viewOf(ctx);
      if ((await handlers.signInState(view)) === 'ended') {
        if (handlers.forgetSignIn(view)) forgetKoaPassportUser(ctx);
      }
      await next();
    },
    authenticated(options) {
      const guard = handlers.guard(options);
      return async (ctx, next) => {
        const view = viewOf(ctx);
        const client = await new Promise<LogtoClient | undefined>((resolve, reject) => {
          guard(view, answerFor(ctx), { admit: resolve, answered: () => resolve(undefined), error: reject });
        });
        // Only an admitted request goes on: Koa has no next(error) to ignore.
        if (client === undefined) return;
        stateOf(ctx).logto = client;
        await next();
      };
    },
    signOut: (options) => answering(handlers.signOut(options)),
    silentSignIn(options = {}) {
      // `skip` is handed the context: it is checked here, before the strategy's rules.
      const { skip, ...rest } = options;
      const silentSignIn = handlers.silentSignIn(rest);
      return async (ctx, next) => {
        const view = viewOf(ctx);
        const started = skip?.(ctx) === true ? false : silentSignIn(view, answerFor(ctx));
        if (started === false) await next();
        else await started;
      };
    },
    backchannelLogout: (options) => answering(handlers.backchannelLogout(options)),
    client: (ctx) => handlers.client(viewOf(ctx)),
    endSignIn: (ctx) => handlers.endSignIn(viewOf(ctx)),
    logOut: (ctx) => handlers.logOut(viewOf(ctx)),
  };
}
