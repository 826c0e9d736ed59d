import { LogtoError } from '../errors.js';
import type { BackchannelLogoutOptions } from './back-channel-logout.js';
import type { LogtoClient } from './client.js';
import type { HostAnswer } from './http.js';
import type { AuthenticatedOptions, HostGuard } from './route-guard.js';
import type { SignInState } from './session-check.js';
import type { SignOutOptions } from './sign-out.js';
import type { SilentSignInOptions } from './silent-sign-in.js';

/**
 * A strategy's handlers in their host-neutral form: what the adapters of passport-logto/fastify and
 * passport-logto/koa turn into the host's own handlers. Each reads the request, answers through
 * the {@link HostAnswer} it is given, and leaves errors to the host's error handling.
 */
export interface HostHandlers {
  /** The helper for this request's sign-in: the one `signInState` loaded, if it ran. */
  client(req: object): LogtoClient;
  /**
   * Whether the request's sign-in is alive, as the token store says (what `logto.session()` asks);
   * the helper loaded on the way is the one `client(req)` and the guard give for this request.
   */
  signInState(req: object): SignInState | Promise<SignInState>;
  /**
   * Drops the session's reference to its sign-in (once `signInState` found it ended); true when
   * Passport's user came from that sign-in (then it goes too), false when another login replaced it.
   */
  forgetSignIn(req: object): boolean;
  guard(options?: AuthenticatedOptions): HostGuard;
  signOut(options?: SignOutOptions): (req: object, answer: HostAnswer) => Promise<void>;
  /** `skipView` turns the request into what the app's `skip` expects (Koa's context, say). */
  silentSignIn(options?: SilentSignInOptions, skipView?: (req: object) => unknown): (req: object, answer: HostAnswer) => false | Promise<true>;
  /** `readToken` reads the form's `logout_token` the host's way; by default from Node's stream. */
  backchannelLogout(options?: BackchannelLogoutOptions, readToken?: (req: object) => Promise<string>): (req: object, answer: HostAnswer) => Promise<void>;
  endSignIn(req: object): Promise<void>;
  logOut(req: object): Promise<void>;
}

const registry = new WeakMap<object, HostHandlers>();
/** LogtoTenants and its tenants' strategies: their session check, guard and sign-out exist as Express middleware only. */
const expressOnly = new WeakSet<object>();

export function markExpressOnly(strategy: object): void {
  expressOnly.add(strategy);
}

export function registerHostHandlers(strategy: object, handlers: HostHandlers): void {
  registry.set(strategy, handlers);
}

/** The host-neutral handlers of a LogtoStrategy. */
export function hostHandlersOf(strategy: object): HostHandlers {
  if (expressOnly.has(strategy)) {
    throw new LogtoError(
      'tenants_express_only',
      'passport-logto: LogtoTenants, and the strategies of its tenants, serve Express apps only. On Fastify or Koa, give each Logto app '
        + 'a LogtoStrategy of its own (with its own `name`, `callbackURL` and `sessionKey`), its own adapter and its own routes.',
    );
  }
  const handlers = registry.get(strategy);
  if (!handlers) {
    throw new LogtoError('invalid_config', 'passport-logto: the adapters of passport-logto/fastify and passport-logto/koa take a LogtoStrategy.');
  }
  return handlers;
}
