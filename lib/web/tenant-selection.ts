/*
 * What LogtoTenants and LogtoBearerTenants share: picking a request's tenant (byHost, byPath, or
 * the app's own function), checking the tenants' options, and handing a request to the tenant's
 * own strategy.
 */
import type { Request } from 'express';
import { LogtoError } from '../errors.js';

/** Picks the tenant (a key of `tenants`) that serves a request; undefined when none does. */
export type TenantSelector = (req: Request) => string | undefined;

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
export class TenantTable<S> {
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

export function tenantEntries<T extends object>(owner: string, tenants: unknown, forbidden: readonly string[]): Array<[string, T]> {
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

export function checkCommon(owner: string, options: unknown): { name: string | undefined; select: TenantSelector; passReqToCallback: boolean } {
  if (typeof options !== 'object' || options === null) throw invalidConfig(`new ${owner}(options) needs an options object.`);
  const { name, select, passReqToCallback } = options as Record<string, unknown>;
  if (name !== undefined && (typeof name !== 'string' || name === '')) throw invalidConfig(`${owner}: option \`name\` must be a non-empty string.`);
  if (typeof select !== 'function') throw invalidConfig(`${owner} needs option \`select\`: a function of the request, byHost() or byPath().`);
  if (passReqToCallback !== undefined && typeof passReqToCallback !== 'boolean') throw invalidConfig(`${owner}: option \`passReqToCallback\` must be a boolean.`);
  return { name, select: select as TenantSelector, passReqToCallback: passReqToCallback === true };
}

type Fail = (challenge?: unknown, status?: number) => void;
/** What Passport adds to a strategy for one request. */
export interface PassportActions {
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
export function actingFor<S extends object>(strategy: S, outer: PassportActions, after: () => void): S {
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
