import type { LogtoClient } from '../web/client.js';
import type { BackchannelLogoutOptions } from '../web/back-channel-logout.js';
import { hostHandlersOf } from '../web/host-handlers.js';
import { bindAnswer, findAnswer, replyAnswer, type HostAnswer } from '../web/http.js';
import { HeldOutcome, type AuthenticatedOptions } from '../web/route-guard.js';
import type { SignInState } from '../web/session-check.js';
import type { SignOutOptions } from '../web/sign-out.js';
import type { LogtoStrategy } from '../web/strategy.js';
import { LogtoError } from '../errors.js';
import { setSessionValue, type SessionLike } from '../store/session-reference.js';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';

/** A route handler or hook, as Fastify calls an async one: it returns the reply once it answered. */
export type FastifyHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;

export interface FastifySilentSignInOptions {
  /** Seconds before the same visitor is tried again after an attempt. Default 3600. */
  retryAfter?: number;
  /** Requests never to try on, beside the callback route (which is always left alone). */
  skip?: (request: FastifyRequest) => boolean;
}

export interface FastifyBackchannelLogoutOptions extends BackchannelLogoutOptions {
  /** The route's path, registered in the Logto Console as the back-channel logout URI. */
  path: string;
}

/** A LogtoStrategy's handlers for Fastify; see {@link logtoFastify}. */
export interface LogtoFastify {
  /**
   * Lets passport-logto answer Fastify requests (the started sign-in's cookie, among others) and
   * declares `request.logto`: register it once, beside `@fastify/passport`.
   */
  plugin: FastifyPluginCallback;
  /**
   * The session check, as a hook for after `@fastify/passport`'s session: register it with
   * `app.addHook('preValidation', logto.session())` after `passport.secureSession()` (whose
   * hook, also `preValidation`, loads the user; hooks run in the order they were added). As an
   * `onRequest` hook (after the session plugin's) it works too: it then takes Passport's user out of
   * the session before `@fastify/passport` would load it; as a route's `preHandler`, for that route. A request
   * whose sign-in has ended (signed out or logged out by Logto on any instance, its grant dead,
   * its record expired) is signed out at once: `request.user` is null, `request.isAuthenticated()`
   * is false, and the session holds neither Passport's user nor the sign-in's reference. With
   * @fastify/secure-session it is what signs out a copy of the cookie replayed after sign-out.
   * Most requests answer from a copy at most 2 s old.
   */
  session(): FastifyHandler;
  /**
   * The route guard, for `preHandler`: signed-in users go on with the helper in `request.logto`
   * (loaded, with what `options` asks to have ready); others get 401 JSON or the redirect of
   * `options.redirect`, and the route never runs for them. Failures are thrown to Fastify's error
   * handler, with their `statusCode`.
   */
  authenticated(options?: AuthenticatedOptions): FastifyHandler;
  /** The sign-out route handler: ends the sign-in, logs out of Passport, sends the browser to Logto. */
  signOut(options?: SignOutOptions): FastifyHandler;
  /** Silent sign-in, for a `preHandler` hook after `@fastify/passport`'s session (see `LogtoStrategy.silentSignIn`). */
  silentSignIn(options?: FastifySilentSignInOptions): FastifyHandler;
  /**
   * A plugin that registers the POST route for Logto's back-channel logout at `options.path`, with
   * its own reading of the form body (at most 16 KiB): no @fastify/formbody needed.
   */
  backchannelLogout(options: FastifyBackchannelLogoutOptions): FastifyPluginCallback;
  /** The helper for this request's sign-in; `await` its `load()` outside the guard. */
  client(request: FastifyRequest): LogtoClient;
  /** `LogtoStrategy.endSignIn` for a Fastify request. */
  endSignIn(request: FastifyRequest): Promise<void>;
  /** `LogtoStrategy.logOut` for a Fastify request: ends the sign-in, then `request.logOut()`. */
  logOut(request: FastifyRequest): Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by passport-logto/fastify's guard: the Logto helper of a signed-in request. */
    logto: LogtoClient | null;
  }
}

/** Fastify's way to let a plugin's hooks and decorators reach the whole app (what fastify-plugin sets). */
const skipOverride = Symbol.for('skip-override');
const formType = 'application/x-www-form-urlencoded';


/** What passport-logto reads of @fastify/passport's Authenticator (`request.passport`). */
interface FastifyPassportLike {
  userProperty?: unknown;
  sessionManager?: { key?: unknown };
}

/**
 * Signs @fastify/passport's user out of this request without regenerating the session, as its
 * logOut does to the user: the request's user property and the session's value under the
 * session manager's key (the serialized user itself), through the session's `set`.
 */
function forgetFastifyPassportUser(request: FastifyRequest): void {
  const passport = (request as unknown as { passport?: FastifyPassportLike }).passport;
  const property = typeof passport?.userProperty === 'string' ? passport.userProperty : 'user';
  const key = typeof passport?.sessionManager?.key === 'string' ? passport.sessionManager.key : 'passport';
  const holder = request as unknown as Record<string, unknown>;
  if (holder[property] !== undefined && holder[property] !== null) holder[property] = null;
  const session = (request as unknown as { session?: SessionLike | null }).session;
  if (session && typeof session === 'object') setSessionValue(session, key, undefined);
}

/** The answer the plugin bound to the request; none means the plugin is missing. */
function answerOfRequest(request: FastifyRequest): HostAnswer {
  const answer = findAnswer(request);
  if (answer) return answer;
  throw new LogtoError(
    'unsupported_host',
    'passport-logto/fastify: this request has no answer bound: register logtoFastify(strategy).plugin with `await app.register(...)` before the routes.',
  );
}

/** What a hook that lets the request go on resolves to (Fastify then runs the next one). */
const settledHook: Promise<undefined> = Promise.resolve(undefined);
/** What a hook that answered returns: the reply, which stops Fastify before the route (as an async hook returning it). */
const answeredHook = async (reply: FastifyReply): Promise<FastifyReply> => reply;

/** After the guard's outcome: admitted, the route runs with `request.logto`; answered, returning the reply stops Fastify before the route. */
function passGuard(outcome: HeldOutcome, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  if (outcome.failure) return Promise.reject(outcome.failure.error as Error);
  if (outcome.client === undefined) return answeredHook(reply);
  request.logto = outcome.client;
  return settledHook;
}

/**
 * The handlers of a LogtoStrategy for Fastify 5 with @fastify/passport, and
 * @fastify/secure-session or @fastify/session. Sign-in and callback stay @fastify/passport's
 * `fastifyPassport.authenticate('logto')`; the helper of a guarded route is `request.logto`.
 */
export function logtoFastify(strategy: LogtoStrategy): LogtoFastify {
  const handlers = hostHandlersOf(strategy);
  /** After the session check's answer: an ended sign-in is forgotten. */
  const settleSession = (state: SignInState, request: FastifyRequest): Promise<undefined> => {
    try {
      if (state === 'ended' && handlers.forgetSignIn(request)) forgetFastifyPassportUser(request);
    } catch (error) {
      return Promise.reject(error);
    }
    return settledHook;
  };

  const plugin: FastifyPluginCallback = (instance, _options, done) => {
    if (!instance.hasRequestDecorator('logto')) instance.decorateRequest('logto', null);
    // Bound to Node's request only: passport-logto finds it through `request.raw`, and Fastify's
    // request keeps the shape its decorators gave it.
    instance.addHook('onRequest', (request, reply, next) => {
      bindAnswer(request.raw, replyAnswer(reply));
      next();
    });
    done();
  };
  Object.assign(plugin, { [skipOverride]: true });

  const answering = (handle: (req: object, answer: HostAnswer) => Promise<unknown>): FastifyHandler =>
    async (request, reply) => {
      await handle(request, answerOfRequest(request));
      return reply;
    };

  return {
    plugin,
    session: () => (request) => {
      let state: SignInState | Promise<SignInState>;
      try {
        state = handlers.signInState(request);
      } catch (error) {
        return Promise.reject(error);
      }
      // Answered from a recent copy of the record, the hook settles without waiting on another promise.
      if (typeof state === 'string') return settleSession(state, request);
      return state.then((known) => settleSession(known, request));
    },
    authenticated(options) {
      const guard = handlers.guard(options);
      return (request, reply) => {
        const outcome = new HeldOutcome();
        try {
          guard(request, answerOfRequest(request), outcome);
        } catch (error) {
          return Promise.reject(error);
        }
        // A record this process read moments ago admits at once: no promise to wait on.
        return outcome.settled ? passGuard(outcome, request, reply) : outcome.whenSettled().then(() => passGuard(outcome, request, reply));
      };
    },
    signOut: (options) => answering(handlers.signOut(options)),
    silentSignIn(options = {}) {
      const { skip, ...rest } = options;
      const silentSignIn = handlers.silentSignIn(rest);
      return async (request, reply) => {
        if (skip?.(request) === true) return undefined;
        const started = silentSignIn(request, answerOfRequest(request));
        if (started === false) return undefined;
        await started;
        return reply;
      };
    },
    backchannelLogout(options) {
      const { path, ...rest } = options;
      const handle = handlers.backchannelLogout(rest);
      // Encapsulated (no skip-override): the form parser below serves this route only.
      return (instance, _options, done) => {
        if (instance.hasContentTypeParser(formType)) instance.removeContentTypeParser(formType);
        // The body is left unread in Node's stream, for the handler to read with its own limits.
        instance.addContentTypeParser(formType, (_request, _payload, parsed) => parsed(null));
        instance.post(path, answering((request, answer) => handle(request, answer)));
        done();
      };
    },
    client: (request) => handlers.client(request),
    endSignIn: (request) => handlers.endSignIn(request),
    logOut: (request) => handlers.logOut(request),
  };
}
