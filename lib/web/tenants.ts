import { PassportStrategy } from '../passport-strategy.js';
import type { HostNext as NextFunction, HostRequest as Request, HostRequestHandler as RequestHandler, HostResponse as Response } from '../host-types.js';
import type { BackchannelLogoutOptions } from './back-channel-logout.js';
import type { LogtoClient } from './client.js';
import type { LogtoStrategyOptions } from '../configuration.js';
import { withLogto, type AuthenticatedOptions, type LogtoHandler } from './route-guard.js';
import type { LogtoAuthenticateOptions } from './sign-in-options.js';
import { logOutOfPassport, type SignOutOptions } from './sign-out.js';
import { LogtoStrategy } from './strategy.js';
import { markExpressOnly } from './host-handlers.js';
import { forgetPassportUser, sessionCheckHandler, type SignInState } from './session-check.js';
import type { SessionStoreLike } from '../store/session-store-adapter.js';
import type { LinkedSignIn } from '../store/token-record.js';
import { signInIdOf } from '../store/session-reference.js';
import {
  actingFor,
  checkCommon,
  reportSelectionFailure,
  tenantEntries,
  tenantHandler,
  TenantTable,
  type PassportActions,
  type TenantSelector,
} from './tenant-selection.js';
import type {
  AnyVerifyFunction,
  ProfileVerifyFunction,
  ProfileVerifyFunctionWithRequest,
  VerifyFunction,
  VerifyFunctionWithRequest,
} from './verify-context.js';

/** A tenant's options: those of {@link LogtoStrategy}, less what {@link LogtoTenants} sets for every tenant. */
export type LogtoTenantOptions = Omit<LogtoStrategyOptions, 'name' | 'sessionKey' | 'passReqToCallback'>;

export interface LogtoTenantsOptions {
  /**
   * The Passport strategy name. Default `logto`. Tenant `acme` keeps its sign-in under the session
   * key `logto:acme` and its started sign-ins in cookies named `logto:acme.signin.*`.
   */
  name?: string;
  /**
   * The Logto tenants or apps, by a name of your choice (letters, digits, `_`, `-`, `.`): the options
   * of a {@link LogtoStrategy} for each. Each gets its own strategy, so discovery, JWKS, tokens and
   * the back-channel logout index stay per tenant.
   */
  tenants: Readonly<Record<string, LogtoTenantOptions>>;
  /** Picks the tenant for each request: {@link byHost}, {@link byPath}, or a function of your own. */
  select: TenantSelector;
  /**
   * Pass `req` to the verify function as its first argument; it can call `tenants.tenantOf(req)`
   * to learn the tenant (the verified claims' `iss` names it too).
   */
  passReqToCallback?: boolean;
}

/**
 * A tenant's strategy: its sign-ins end with the session's other tenants' (a back-channel logout
 * that destroys a session ends every sign-in in it), and {@link LogtoTenants} reads its state.
 */
class TenantStrategy extends LogtoStrategy {
  /** Set once every tenant exists: ends the other tenants' sign-ins of a destroyed session. */
  siblings: (self: TenantStrategy, session: object, sessionStore: SessionStoreLike | undefined) => Promise<void> = () => Promise.resolve();

  /** Set once every tenant exists: the other tenants' sign-ins in a request's session. */
  others: (self: TenantStrategy, req: Request) => LinkedSignIn[] = () => [];
  /** Set once every tenant exists: ends other tenants' sign-ins by tenant and id. */
  endLinkedOf: (self: TenantStrategy, linked: LinkedSignIn[], sessionStore: SessionStoreLike | undefined) => Promise<void> = () => Promise.resolve();

  protected override sessionEnded(session: object, sessionStore: SessionStoreLike | undefined): Promise<void> {
    return this.siblings(this, session, sessionStore);
  }

  protected override linkedSignIns(req: Request): LinkedSignIn[] {
    return this.others(this, req);
  }

  protected override linkedEnded(linked: LinkedSignIn[], sessionStore: SessionStoreLike | undefined): Promise<void> {
    return this.endLinkedOf(this, linked, sessionStore);
  }

  stateOf(req: Request): SignInState | Promise<SignInState> {
    return this.signInState(req);
  }

  ownsUser(req: Request): boolean {
    return this.ownsPassportUser(req);
  }

  forget(req: Request): void {
    this.forgetReference(req);
  }

  endById(signInId: string, sessionStore: SessionStoreLike | undefined): Promise<void> {
    return this.endSignInById(signInId, sessionStore);
  }

  get referenceKey(): string {
    return this.sessionKey;
  }
}

type LogIn = (user: unknown, options: unknown, done?: unknown) => void;
type LogOut = (options: unknown, done?: unknown) => void;
type SessionBag = Record<string, unknown>;

function sessionBagOf(req: Request): SessionBag | undefined {
  const session = (req as { session?: unknown }).session;
  return typeof session === 'object' && session !== null ? (session as SessionBag) : undefined;
}

/**
 * Several Logto tenants or apps behind one Passport strategy: each request is served by the
 * tenant that `select` picks, through a {@link LogtoStrategy} of its own. A sign-in started for
 * one tenant finishes only there (its cookie, state and issuer are that tenant's), and its tokens
 * are reachable only through that tenant's helper.
 *
 * One session may hold a sign-in of each tenant at once. Passport keeps one user per session,
 * though: `req.user` is the user of the tenant signed in last. On a tenant's routes, read the
 * user from `req.logto` (the guard gives that tenant's helper).
 */
export class LogtoTenants extends PassportStrategy {
  name: string;
  private readonly table: TenantTable<TenantStrategy>;
  /** The session key that says which tenant Passport's user (`req.user`) came from. */
  private readonly userTenantKey: string;

  constructor(options: LogtoTenantsOptions & { passReqToCallback: true }, verify: VerifyFunctionWithRequest);
  constructor(options: LogtoTenantsOptions & { passReqToCallback: true }, verify: ProfileVerifyFunctionWithRequest);
  constructor(options: LogtoTenantsOptions, verify?: VerifyFunction);
  constructor(options: LogtoTenantsOptions, verify: ProfileVerifyFunction);
  constructor(options: LogtoTenantsOptions, verify?: AnyVerifyFunction) {
    super();
    const common = checkCommon('LogtoTenants', options);
    this.name = common.name ?? 'logto';
    // Not a valid tenant name, so it can never be a tenant's session key.
    this.userTenantKey = `${this.name}:/user`;
    const strategies = new Map<string, TenantStrategy>();
    for (const [tenant, tenantOptions] of tenantEntries<LogtoTenantOptions>('LogtoTenants', options.tenants, ['name', 'sessionKey', 'passReqToCallback'])) {
      const strategyOptions: LogtoStrategyOptions = { ...tenantOptions, name: `${this.name}:${tenant}` };
      strategies.set(
        tenant,
        common.passReqToCallback
          ? new TenantStrategy({ ...strategyOptions, passReqToCallback: true }, verify as VerifyFunctionWithRequest)
          : new TenantStrategy(strategyOptions, verify as VerifyFunction | undefined),
      );
    }
    this.table = new TenantTable(`LogtoTenants "${this.name}"`, strategies, common.select);
    markExpressOnly(this);
    for (const strategy of strategies.values()) {
      markExpressOnly(strategy);
      strategy.siblings = (self, session, sessionStore) => this.endOthersIn(self, session, sessionStore);
      strategy.others = (self, req) => this.otherSignIns(self, req);
      strategy.endLinkedOf = (self, linked, sessionStore) => this.endLinked(self, linked, sessionStore);
    }
  }

  /** The tenant names, in the order of `tenants`. */
  get tenantNames(): readonly string[] {
    return this.table.names;
  }

  /** A tenant's own {@link LogtoStrategy}, for what is not about a request (`getOidcConfig()`, say). */
  tenant(name: string): LogtoStrategy {
    return this.table.get(name);
  }

  /**
   * The tenant serving this request. Throws a LogtoError `unknown_tenant` (`httpStatus` 404) when
   * `select` names none of the tenants.
   */
  tenantOf(req: Request): string {
    return this.table.nameFor(req);
  }

  /** The Logto helper of this request's tenant (throws as {@link tenantOf} does); see {@link LogtoStrategy.client}. */
  client(req: Request): LogtoClient {
    return this.table.get(this.table.nameFor(req)).client(req);
  }

  /**
   * Route guard of this request's tenant: passes only with a sign-in of that tenant, however many
   * other tenants the session is signed in to. See {@link LogtoStrategy.authenticated}.
   */
  authenticated(options?: AuthenticatedOptions): RequestHandler;
  authenticated(options: AuthenticatedOptions, handler: LogtoHandler): RequestHandler[];
  authenticated(options?: AuthenticatedOptions, handler?: LogtoHandler): RequestHandler | RequestHandler[] {
    const guards = this.perTenant((strategy) => strategy.authenticated(options));
    const guard = this.dispatch((req, _res, next, tenant) => {
      (guards.get(tenant) as RequestHandler)(req, _res, next);
    });
    return handler === undefined ? guard : [guard, withLogto(handler)];
  }

  /**
   * Middleware for after `passport.session()`; see {@link LogtoStrategy.session}. Each tenant's
   * sign-in that has ended leaves the session. When the one Passport's user came from has ended,
   * the user is signed out and the session's other tenants' sign-ins end too: ending a session
   * ends every sign-in in it.
   */
  session(): RequestHandler {
    return sessionCheckHandler(
      (req) => this.sessionState(req),
      (req) => this.endSession(req),
    );
  }

  /** 'ended' when Passport's user came from a tenant whose sign-in has ended; other ended tenants just leave the session. */
  private sessionState(req: Request): SignInState | Promise<SignInState> {
    const session = sessionBagOf(req);
    if (!session) return 'none';
    const present = this.table.names.filter((tenant) => typeof session[this.sessionKeyOf(tenant)] === 'string');
    if (present.length === 0) return 'none';
    const states = present.map((tenant) => this.table.get(tenant).stateOf(req));
    const judge = (known: SignInState[]): SignInState => {
      const ended = present.filter((_, index) => known[index] === 'ended');
      if (ended.length === 0) return 'alive';
      const userTenant = session[this.userTenantKey];
      const userEnded = typeof userTenant === 'string' ? ended.includes(userTenant) : ended.length === present.length;
      // Passport's user came from another login made over the tenant's (keepSessionInfo): that
      // user stays, and only the ended sign-ins leave the session.
      const owned = userEnded && (typeof userTenant !== 'string' || this.table.get(userTenant).ownsUser(req));
      if (owned) return 'ended';
      if (userEnded) delete session[this.userTenantKey];
      for (const tenant of ended) this.table.get(tenant).forget(req);
      return 'alive';
    };
    if (states.every((state): state is SignInState => typeof state === 'string')) return judge(states);
    return Promise.all(states).then(judge);
  }

  /** Passport's user's sign-in ended: the user leaves, and every other tenant's sign-in of the session ends. */
  private async endSession(req: Request): Promise<void> {
    await this.endSignIns(req);
    const session = sessionBagOf(req);
    if (session) delete session[this.userTenantKey];
    forgetPassportUser(req);
  }

  /** A back-channel logout destroyed a session holding `self`'s sign-in: the other tenants' sign-ins in it end too. */
  private async endOthersIn(self: TenantStrategy, session: object, sessionStore: SessionStoreLike | undefined): Promise<void> {
    const bag = session as SessionBag;
    const others = this.table.names.map((tenant) => this.table.get(tenant)).filter((strategy) => strategy !== self);
    const results = await Promise.allSettled(
      others.map(async (strategy) => {
        const value = bag[strategy.referenceKey];
        const signInId = typeof value === 'string' ? signInIdOf(value) : undefined;
        if (signInId !== undefined && signInId !== '') await strategy.endById(signInId, sessionStore);
      }),
    );
    const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failure) throw failure.reason;
  }

  /** The other tenants' sign-ins in the request's session, as a new sign-in of `self` links them. */
  private otherSignIns(self: TenantStrategy, req: Request): LinkedSignIn[] {
    const bag = sessionBagOf(req);
    if (!bag) return [];
    return this.table.names
      .filter((tenant) => this.table.get(tenant) !== self)
      .map((tenant) => {
        const value = bag[this.sessionKeyOf(tenant)];
        return { t: tenant, i: typeof value === 'string' ? signInIdOf(value) : value };
      })
      .filter((link): link is LinkedSignIn => typeof link.i === 'string' && link.i !== '');
  }

  /**
   * A back-channel logout ended a sign-in of `self` whose session the server cannot read
   * (cookie-session): the other tenants' sign-ins it linked end too, their refresh tokens revoked.
   */
  private async endLinked(self: TenantStrategy, linked: LinkedSignIn[], sessionStore: SessionStoreLike | undefined): Promise<void> {
    const results = await Promise.allSettled(
      linked
        .filter((link) => this.table.names.includes(link.t) && this.table.get(link.t) !== self)
        .map((link) => this.table.get(link.t).endById(link.i, sessionStore)),
    );
    const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failure) throw failure.reason;
  }

  /**
   * Sign-out of this request's tenant; see {@link LogtoStrategy.signOut}. Passport's logout, which
   * empties the whole session, runs only when `req.user` came from this tenant or no other tenant
   * is signed in; otherwise only this tenant's sign-in ends and the others stay.
   */
  signOut(options?: SignOutOptions): RequestHandler {
    const handlers = this.perTenant((strategy) => strategy.signOut(options));
    return this.dispatch((req, res, next, tenant) => {
      const handler = handlers.get(tenant) as RequestHandler;
      if (!this.othersKeepPassportUser(sessionBagOf(req), tenant)) {
        // Passport's logout ends the whole session: every other tenant's sign-in in it ends first.
        const others = this.table.names.filter((other) => other !== tenant).map((other) => this.table.get(other).endSignIn(req));
        Promise.all(others).then(() => handler(req, res, next), next);
        return;
      }
      const target = req as unknown as { logout?: LogOut; logOut?: LogOut };
      const original = { logout: target.logout, logOut: target.logOut };
      const restore = (): void => {
        target.logout = original.logout;
        target.logOut = original.logOut;
      };
      // Passport's user belongs to a tenant that stays signed in: keep the Passport login.
      const keepLogin: LogOut = (options, done) => {
        restore();
        (typeof options === 'function' ? options : (done as (error?: unknown) => void))();
      };
      target.logout = keepLogin;
      target.logOut = keepLogin;
      handler(req, res, (error?: unknown) => {
        restore();
        next(error);
      });
    });
  }

  /**
   * Ends the session's sign-ins of every tenant, without sending the browser to Logto; see
   * {@link LogtoStrategy.endSignIn}. It does not need the request's tenant, so a log-out route can
   * sit outside every tenant's hosts and paths. Call it before `req.logout()`, which drops the
   * session's references to them; {@link logOut} does both in that order. Each sign-in is ended
   * even when another fails; the first failure is then thrown.
   */
  async endSignIns(req: Request): Promise<void> {
    const results = await Promise.allSettled(this.table.names.map((tenant) => this.table.get(tenant).endSignIn(req)));
    const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failure) throw failure.reason;
  }

  /**
   * Logs out of the app only: {@link endSignIns} (every tenant's sign-in of the session), then
   * Passport's `req.logout()`; see {@link LogtoStrategy.logOut}. Like `endSignIns`, it needs no
   * tenant for the request. If a sign-in cannot be ended, it rejects before `req.logout()`.
   */
  async logOut(req: Request): Promise<void> {
    await this.endSignIns(req);
    await logOutOfPassport(req, 'at log-out');
  }

  /**
   * The handler for Logto's back-channel logout POST of this request's tenant (register each
   * tenant's URL in its Logto Console); see {@link LogtoStrategy.backchannelLogout}. It ends that
   * tenant's sign-ins. It destroys a session only when that tenant's sign-in was the session's
   * last login: Passport gives the session a new id at each login, so a session in which another
   * tenant signed in later is no longer the one indexed, and keeps the other tenant's sign-in.
   */
  backchannelLogout(options?: BackchannelLogoutOptions): RequestHandler {
    // Each tenant's own `backchannelLogout` option applies; left unset, this turns on the index for every tenant at once.
    const handlers = this.perTenant((strategy) => strategy.backchannelLogout(options));
    return this.dispatch((req, res, next, tenant) => (handlers.get(tenant) as RequestHandler)(req, res, next));
  }

  /**
   * Passport calls this for both legs of the sign-in; the request's tenant handles it. A request
   * that no tenant serves fails with `unknown_tenant` and 404.
   */
  override authenticate(req: Request, options?: LogtoAuthenticateOptions): void {
    const outer = this as unknown as PassportActions;
    let tenant: string;
    try {
      tenant = this.table.nameFor(req);
    } catch (error) {
      reportSelectionFailure(outer, error);
      return;
    }
    const restoreLogIn = this.keepOtherTenantsThroughLogIn(req, tenant);
    actingFor(this.table.get(tenant), outer, restoreLogIn).authenticate(req, options);
  }

  private perTenant<H>(make: (strategy: LogtoStrategy) => H): ReadonlyMap<string, H> {
    return new Map(this.table.names.map((tenant) => [tenant, make(this.table.get(tenant))]));
  }

  /** A handler of the request's tenant; a request that no tenant serves gets 404 `unknown_tenant`. */
  private dispatch(handle: (req: Request, res: Response, next: NextFunction, tenant: string) => void): RequestHandler {
    return tenantHandler(this.table, handle);
  }

  private sessionKeyOf(tenant: string): string {
    return `${this.name}:${tenant}`;
  }

  /** Whether Passport's user came from another tenant that is still signed in in this session. */
  private othersKeepPassportUser(session: SessionBag | undefined, tenant: string): boolean {
    if (!session) return false;
    const userTenant = session[this.userTenantKey];
    return typeof userTenant === 'string' && userTenant !== tenant && this.table.names.includes(userTenant)
      && typeof session[this.sessionKeyOf(userTenant)] === 'string';
  }

  /**
   * Passport 0.6+ regenerates the session at login, which would drop the other tenants' sign-ins:
   * for this request, `req.logIn` carries their session keys into the new session and notes
   * which tenant Passport's user comes from. Returns the function that puts `req.logIn` back.
   */
  private keepOtherTenantsThroughLogIn(req: Request, tenant: string): () => void {
    const target = req as unknown as { logIn?: LogIn; login?: LogIn };
    const original = target.logIn;
    // Without passport.initialize() the tenant's strategy reports session_required itself.
    if (typeof original !== 'function') return () => undefined;
    const restore = (): void => {
      target.logIn = original;
      target.login = original;
    };
    const wrapped: LogIn = (user, logInOptions, done) => {
      const callback = (typeof logInOptions === 'function' ? logInOptions : done) as (error?: unknown) => void;
      const settings = (typeof logInOptions === 'object' && logInOptions !== null ? logInOptions : {}) as { session?: boolean };
      restore();
      const before = sessionBagOf(req) ?? {};
      const kept = this.table.names
        .filter((other) => other !== tenant)
        // Their ids only: the mark of the user they logged in is no longer Passport's user.
        .map((other) => [this.sessionKeyOf(other), before[this.sessionKeyOf(other)]] as const)
        .filter((entry): entry is readonly [string, string] => typeof entry[1] === 'string' && entry[1] !== '')
        .map(([key, value]) => [key, signInIdOf(value)] as const);
      original.call(req, user, settings, (error?: unknown) => {
        const after = sessionBagOf(req);
        if (!error && settings.session !== false && after) {
          for (const [key, value] of kept) after[key] = value;
          after[this.userTenantKey] = tenant;
        }
        callback(error);
      });
    };
    target.logIn = wrapped;
    target.login = wrapped;
    return restore;
  }
}
