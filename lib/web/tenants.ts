import { Strategy as PassportStrategy } from 'passport-strategy';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { BackchannelLogoutOptions } from './back-channel-logout.js';
import type { LogtoBearerOptions } from '../bearer/configuration.js';
import {
  LogtoBearerStrategy,
  type BearerVerifyFunction,
  type BearerVerifyFunctionWithRequest,
  type LogtoBearerRouteOptions,
} from '../bearer/strategy.js';
import type { LogtoClient } from './client.js';
import type { LogtoStrategyOptions } from '../configuration.js';
import { LogtoError } from '../errors.js';
import { withLogto, type AuthenticatedOptions, type LogtoHandler } from './route-guard.js';
import type { LogtoSignInOptions } from './sign-in-options.js';
import type { SignOutOptions } from './sign-out.js';
import { LogtoStrategy } from './strategy.js';
import type { VerifyFunction, VerifyFunctionWithRequest } from './verify-context.js';

/** Picks the tenant (a key of `tenants`) that serves a request; undefined when none does. */
export type TenantSelector = (req: Request) => string | undefined;

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

/** A bearer tenant's options: those of {@link LogtoBearerStrategy}, less what {@link LogtoBearerTenants} sets. */
export type LogtoBearerTenantOptions = Omit<LogtoBearerOptions, 'name' | 'passReqToCallback'>;

export interface LogtoBearerTenantsOptions {
  /** The Passport strategy name. Default `logto-bearer`. */
  name?: string;
  /**
   * The Logto tenants, by a name of your choice: the options of a {@link LogtoBearerStrategy} for
   * each (its own issuer, audience and JWKS cache). A token is checked only against the tenant
   * that the request selects, so a token of one tenant never passes on another's routes.
   */
  tenants: Readonly<Record<string, LogtoBearerTenantOptions>>;
  /** Picks the tenant for each request: {@link byHost}, {@link byPath}, or a function of your own. */
  select: TenantSelector;
  /** Pass `req` to the verify function as its first argument. */
  passReqToCallback?: boolean;
}

const tenantNamePattern = /^[A-Za-z0-9_.-]+$/;

function invalidConfig(message: string): LogtoError {
  return new LogtoError('invalid_config', `passport-logto: ${message}`);
}

function pathOf(req: Request): string {
  const url = req.originalUrl || req.url || '/';
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

/** The request's host name without the port; Express's `req.hostname` (which honours `trust proxy`) when there is one. */
function hostnameOf(req: Request): string | undefined {
  const fromExpress = (req as { hostname?: unknown }).hostname;
  if (typeof fromExpress === 'string' && fromExpress !== '') return fromExpress.toLowerCase();
  const header = req.headers.host;
  if (typeof header !== 'string' || header === '') return undefined;
  return URL.canParse(`http://${header}`) ? new URL(`http://${header}`).hostname.toLowerCase() : undefined;
}

/**
 * Selects the tenant by the request's host name (without port; `req.hostname`, so set Express's
 * `trust proxy` behind a proxy that sets `X-Forwarded-Host`): `byHost({ 'acme.example.com': 'acme' })`.
 */
export function byHost(hosts: Readonly<Record<string, string>>): TenantSelector {
  if (typeof hosts !== 'object' || hosts === null) throw invalidConfig('byHost() needs an object of host names to tenant names.');
  const table = new Map<string, string>();
  for (const [host, tenant] of Object.entries(hosts)) {
    if (host === '' || /[\s/]/.test(host) || (/:/.test(host) && !host.startsWith('['))) {
      throw invalidConfig(`byHost(): "${host}" is not a host name (give it without scheme, port or path).`);
    }
    table.set(host.toLowerCase(), tenant);
  }
  return (req) => {
    const host = hostnameOf(req);
    return host === undefined ? undefined : table.get(host);
  };
}

/**
 * Selects the tenant by the start of the path: `byPath({ '/acme': 'acme', '/globex': 'globex' })`.
 * A prefix matches whole segments (`/acme` matches `/acme` and `/acme/x`, not `/acmex`); the
 * longest one wins. It reads `req.originalUrl`, so it works inside routers mounted on a prefix.
 */
export function byPath(prefixes: Readonly<Record<string, string>>): TenantSelector {
  if (typeof prefixes !== 'object' || prefixes === null) throw invalidConfig('byPath() needs an object of path prefixes to tenant names.');
  const table = Object.entries(prefixes).map(([prefix, tenant]) => {
    if (!prefix.startsWith('/') || /[\s?#]/.test(prefix)) throw invalidConfig(`byPath(): "${prefix}" must be a path starting with "/".`);
    return { prefix: prefix.replace(/\/+$/, ''), tenant };
  });
  table.sort((a, b) => b.prefix.length - a.prefix.length);
  return (req) => {
    const path = pathOf(req);
    return table.find(({ prefix }) => prefix === '' || path === prefix || path.startsWith(`${prefix}/`))?.tenant;
  };
}

/** The tenants of one strategy, and the choice among them for a request. */
class TenantTable<S> {
  readonly names: readonly string[];

  constructor(
    private readonly owner: string,
    private readonly strategies: ReadonlyMap<string, S>,
    private readonly select: TenantSelector,
  ) {
    this.names = [...strategies.keys()];
  }

  get(tenant: string): S {
    const strategy = this.strategies.get(tenant);
    if (strategy === undefined) {
      throw invalidConfig(`${this.owner} has no tenant "${tenant}"; its tenants are ${this.names.join(', ')}.`);
    }
    return strategy;
  }

  /**
   * The tenant for this request. A request that no tenant serves is the app's routing mistake (a
   * route of the strategy reached on a host or path that `select` does not know), so it is an
   * `invalid_config` error for the error handler, never a guess among the tenants.
   */
  nameFor(req: Request): string {
    const tenant = this.select(req);
    if (tenant === undefined) {
      throw invalidConfig(
        `${this.owner} has no tenant for ${req.method} ${hostnameOf(req) ?? '(no host)'}${pathOf(req)}: select() gave none. `
          + 'Mount its routes only where select() names a tenant.',
      );
    }
    if (typeof tenant !== 'string' || !this.strategies.has(tenant)) {
      throw invalidConfig(`${this.owner}: select() gave "${String(tenant)}", which is not one of its tenants (${this.names.join(', ')}).`);
    }
    return tenant;
  }
}

function tenantEntries<T extends object>(owner: string, tenants: unknown, forbidden: readonly string[]): Array<[string, T]> {
  if (typeof tenants !== 'object' || tenants === null) throw invalidConfig(`${owner} needs \`tenants\`: an object of tenant names to options.`);
  const entries = Object.entries(tenants) as Array<[string, T]>;
  if (entries.length === 0) throw invalidConfig(`${owner} needs at least one tenant.`);
  for (const [tenant, options] of entries) {
    if (!tenantNamePattern.test(tenant)) throw invalidConfig(`${owner}: tenant name "${tenant}" may hold only letters, digits, "_", "-" and ".".`);
    if (typeof options !== 'object' || options === null) throw invalidConfig(`${owner}: tenant "${tenant}" needs an options object.`);
    for (const option of forbidden) {
      // Set per tenant by the owner, so that tenants can never share a session key or a cookie.
      if (option in options) throw invalidConfig(`${owner}: tenant "${tenant}" must not set \`${option}\`; it is derived from the strategy name.`);
    }
  }
  return entries;
}

function checkCommon(owner: string, options: unknown): { name: string | undefined; select: TenantSelector; passReqToCallback: boolean } {
  if (typeof options !== 'object' || options === null) throw invalidConfig(`new ${owner}(options) needs an options object.`);
  const { name, select, passReqToCallback } = options as Record<string, unknown>;
  if (name !== undefined && (typeof name !== 'string' || name === '')) throw invalidConfig(`${owner}: option \`name\` must be a non-empty string.`);
  if (typeof select !== 'function') throw invalidConfig(`${owner} needs option \`select\`: a function of the request, byHost() or byPath().`);
  if (passReqToCallback !== undefined && typeof passReqToCallback !== 'boolean') throw invalidConfig(`${owner}: option \`passReqToCallback\` must be a boolean.`);
  return { name, select: select as TenantSelector, passReqToCallback: passReqToCallback === true };
}

type Fail = (challenge?: unknown, status?: number) => void;
/** What Passport adds to a strategy for one request. */
interface PassportActions {
  success(user: unknown, info?: unknown): void;
  fail: Fail;
  redirect(url: string, status?: number): void;
  pass(): void;
  error(error: unknown): void;
}

/**
 * The tenant's strategy, acting for this request: Passport gives each request its own copy of a
 * strategy with `success`, `fail`, ... attached (Object.create), and so does this, passing the
 * tenant's outcome on to the copy Passport made of the outer strategy.
 */
function actingFor<S extends object>(strategy: S, outer: PassportActions, after: () => void): S {
  const acting = Object.create(strategy) as S & PassportActions;
  acting.success = (user, info) => {
    try {
      outer.success(user, info);
    } finally {
      after();
    }
  };
  acting.fail = (challenge, status) => {
    after();
    outer.fail(challenge, status);
  };
  acting.redirect = (url, status) => {
    after();
    outer.redirect(url, status);
  };
  acting.pass = () => {
    after();
    outer.pass();
  };
  acting.error = (error) => {
    after();
    outer.error(error);
  };
  return acting;
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
  private readonly table: TenantTable<LogtoStrategy>;
  /** The session key that says which tenant Passport's user (`req.user`) came from. */
  private readonly userTenantKey: string;

  constructor(options: LogtoTenantsOptions & { passReqToCallback: true }, verify: VerifyFunctionWithRequest);
  constructor(options: LogtoTenantsOptions, verify?: VerifyFunction);
  constructor(options: LogtoTenantsOptions, verify?: VerifyFunction | VerifyFunctionWithRequest) {
    super();
    const common = checkCommon('LogtoTenants', options);
    this.name = common.name ?? 'logto';
    // Not a valid tenant name, so it can never be a tenant's session key.
    this.userTenantKey = `${this.name}:/user`;
    const strategies = new Map<string, LogtoStrategy>();
    for (const [tenant, tenantOptions] of tenantEntries<LogtoTenantOptions>('LogtoTenants', options.tenants, ['name', 'sessionKey', 'passReqToCallback'])) {
      const strategyOptions: LogtoStrategyOptions = { ...tenantOptions, name: `${this.name}:${tenant}` };
      strategies.set(
        tenant,
        common.passReqToCallback
          ? new LogtoStrategy({ ...strategyOptions, passReqToCallback: true }, verify as VerifyFunctionWithRequest)
          : new LogtoStrategy(strategyOptions, verify as VerifyFunction | undefined),
      );
    }
    this.table = new TenantTable(`LogtoTenants "${this.name}"`, strategies, common.select);
  }

  /** The tenant names, in the order of `tenants`. */
  get tenantNames(): readonly string[] {
    return this.table.names;
  }

  /** A tenant's own {@link LogtoStrategy}, for what is not about a request (`getOidcConfig()`, say). */
  tenant(name: string): LogtoStrategy {
    return this.table.get(name);
  }

  /** The tenant serving this request; throws `invalid_config` when `select` names none. */
  tenantOf(req: Request): string {
    return this.table.nameFor(req);
  }

  /** The Logto helper of this request's tenant; see {@link LogtoStrategy.client}. */
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
   * Sign-out of this request's tenant; see {@link LogtoStrategy.signOut}. Passport's logout, which
   * empties the whole session, runs only when `req.user` came from this tenant or no other tenant
   * is signed in; otherwise only this tenant's sign-in ends and the others stay.
   */
  signOut(options?: SignOutOptions): RequestHandler {
    const handlers = this.perTenant((strategy) => strategy.signOut(options));
    return this.dispatch((req, res, next, tenant) => {
      const handler = handlers.get(tenant) as RequestHandler;
      if (!this.othersKeepPassportUser(sessionBagOf(req), tenant)) {
        handler(req, res, next);
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
   * The handler for Logto's back-channel logout POST of this request's tenant (register each
   * tenant's URL in its Logto Console); see {@link LogtoStrategy.backchannelLogout}. It ends that
   * tenant's sign-ins. It destroys a session only when that tenant's sign-in was the session's
   * last login: Passport gives the session a new id at each login, so a session in which another
   * tenant signed in later is no longer the one indexed, and keeps the other tenant's sign-in.
   */
  backchannelLogout(options?: BackchannelLogoutOptions): RequestHandler {
    // Mounting turns on the index of sign-ins for every tenant at once, before the first sign-in.
    const handlers = this.perTenant((strategy) => strategy.backchannelLogout(options));
    return this.dispatch((req, res, next, tenant) => (handlers.get(tenant) as RequestHandler)(req, res, next));
  }

  /** Passport calls this for both legs of the sign-in; the request's tenant handles it. */
  override authenticate(req: Request, options?: LogtoSignInOptions): void {
    const outer = this as unknown as PassportActions;
    let tenant: string;
    try {
      tenant = this.table.nameFor(req);
    } catch (error) {
      outer.error(error);
      return;
    }
    const restoreLogIn = this.keepOtherTenantsThroughLogIn(req, tenant);
    actingFor(this.table.get(tenant), outer, restoreLogIn).authenticate(req, options);
  }

  private perTenant<H>(make: (strategy: LogtoStrategy) => H): ReadonlyMap<string, H> {
    return new Map(this.table.names.map((tenant) => [tenant, make(this.table.get(tenant))]));
  }

  private dispatch(handle: (req: Request, res: Response, next: NextFunction, tenant: string) => void): RequestHandler {
    return (req, res, next) => {
      let tenant: string;
      try {
        tenant = this.table.nameFor(req);
      } catch (error) {
        next(error);
        return;
      }
      handle(req, res, next, tenant);
    };
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
        .map((other) => [this.sessionKeyOf(other), before[this.sessionKeyOf(other)]] as const)
        .filter(([, value]) => typeof value === 'string' && value !== '');
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

/**
 * Several Logto tenants protecting one API: each request's bearer token is verified only
 * against the tenant that `select` picks, with that tenant's issuer, audience and JWKS, so a
 * token of tenant A gets 401 on tenant B's routes.
 */
export class LogtoBearerTenants extends PassportStrategy {
  name: string;
  private readonly table: TenantTable<LogtoBearerStrategy>;

  constructor(options: LogtoBearerTenantsOptions & { passReqToCallback: true }, verify: BearerVerifyFunctionWithRequest);
  constructor(options: LogtoBearerTenantsOptions, verify?: BearerVerifyFunction);
  constructor(options: LogtoBearerTenantsOptions, verify?: BearerVerifyFunction | BearerVerifyFunctionWithRequest) {
    super();
    const common = checkCommon('LogtoBearerTenants', options);
    this.name = common.name ?? 'logto-bearer';
    const strategies = new Map<string, LogtoBearerStrategy>();
    for (const [tenant, tenantOptions] of tenantEntries<LogtoBearerTenantOptions>('LogtoBearerTenants', options.tenants, ['name', 'passReqToCallback'])) {
      const strategyOptions: LogtoBearerOptions = { ...tenantOptions, name: `${this.name}:${tenant}` };
      strategies.set(
        tenant,
        common.passReqToCallback
          ? new LogtoBearerStrategy({ ...strategyOptions, passReqToCallback: true }, verify as BearerVerifyFunctionWithRequest)
          : new LogtoBearerStrategy(strategyOptions, verify as BearerVerifyFunction | undefined),
      );
    }
    this.table = new TenantTable(`LogtoBearerTenants "${this.name}"`, strategies, common.select);
  }

  /** The tenant names, in the order of `tenants`. */
  get tenantNames(): readonly string[] {
    return this.table.names;
  }

  /** A tenant's own {@link LogtoBearerStrategy}, e.g. for `verifyAccessToken()` outside a request. */
  tenant(name: string): LogtoBearerStrategy {
    return this.table.get(name);
  }

  /** The tenant serving this request; throws `invalid_config` when `select` names none. */
  tenantOf(req: Request): string {
    return this.table.nameFor(req);
  }

  /** Passport entry point: the request's tenant verifies the token. */
  override authenticate(req: Request, options?: LogtoBearerRouteOptions): void {
    const outer = this as unknown as PassportActions;
    let tenant: string;
    try {
      tenant = this.table.nameFor(req);
    } catch (error) {
      outer.error(error);
      return;
    }
    actingFor(this.table.get(tenant), outer, () => undefined).authenticate(req, options);
  }

  /** Plain Express middleware of the request's tenant; see {@link LogtoBearerStrategy.middleware}. */
  middleware(options: LogtoBearerRouteOptions = {}): RequestHandler {
    const handlers = new Map(this.table.names.map((tenant) => [tenant, this.table.get(tenant).middleware(options)]));
    return (req, res, next) => {
      let tenant: string;
      try {
        tenant = this.table.nameFor(req);
      } catch (error) {
        next(error);
        return;
      }
      (handlers.get(tenant) as RequestHandler)(req, res, next);
    };
  }
}
