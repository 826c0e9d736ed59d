/*
 * What LogtoTenants and LogtoBearerTenants share: picking a request's tenant (byHost, byPath, or
 * the app's own function), checking the tenants' options, and handing a request to the tenant's
 * own strategy.
 */
import type { HostNext as NextFunction, HostRequest as Request, HostResponse as Response } from '../host-types.js';
import { isCausedByRequest, LogtoError } from '../errors.js';

/** Picks the tenant (a key of `tenants`) that serves a request; undefined when none does. */
export type TenantSelector = (req: Request) => string | undefined;

const tenantNamePattern = /^[A-Za-z0-9_.-]+$/;
/** How much of a request's host and path an unknown_tenant error keeps: the client chose their length. */
const maxTargetLength = 200;

/**
 * The tenants that a selector from byHost() or byPath() can name, so that a strategy checks them
 * when it is built: a misspelt tenant is a setup mistake to report at startup, not a 404 later.
 */
const namedTenants = new WeakMap<TenantSelector, readonly string[]>();

function invalidConfig(message: string): LogtoError {
  return new LogtoError('invalid_config', `passport-logto: ${message}`);
}

function cut(text: string): string {
  return text.length > maxTargetLength ? `${text.slice(0, maxTargetLength)}...` : text;
}

/**
 * The path of the request target as the client sent it (`req.originalUrl`): an origin-form
 * target up to its query, or the path of an absolute-form one (`http://host/path`, which Express
 * routes by its path), not percent-decoded, as Express's router matches it. Undefined for any
 * other form (`*`).
 */
function targetPathOf(req: Request): string | undefined {
  const target = req.originalUrl || req.url;
  if (typeof target !== 'string') return undefined;
  let rest = target;
  if (!target.startsWith('/')) {
    const origin = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target);
    if (origin === null) return undefined;
    rest = target.slice(origin[0].length);
  }
  const end = rest.search(/[?#]/);
  const path = end === -1 ? rest : rest.slice(0, end);
  return path === '' ? '/' : path;
}

/**
 * The path that Express's router matched to reach this handler: `req.baseUrl + req.path` (the
 * mount paths it stripped, and the path of `req.url` after them), which follows a middleware that
 * rewrote `req.url`. Undefined outside Express, or when Express cannot parse `req.url`.
 */
function routedPathOf(req: Request): string | undefined {
  const base = (req as { baseUrl?: unknown }).baseUrl;
  if (typeof base !== 'string') return undefined;
  try {
    // Express's getter parses req.url, which can throw on a malformed target.
    const path: unknown = (req as { path?: unknown }).path;
    return typeof path === 'string' ? base + path : undefined;
  } catch {
    return undefined;
  }
}

/** Whether Express routed this request: it sets `req.baseUrl` on every request it routes. */
function isRoutedByExpress(req: Request): boolean {
  return typeof (req as { baseUrl?: unknown }).baseUrl === 'string';
}

/** Whether the app routes case-sensitively (Express's `case sensitive routing`; off by default). */
function routesCaseSensitively(req: Request): boolean {
  const app = (req as { app?: { get?: (setting: string) => unknown } }).app;
  return typeof app?.get === 'function' && Boolean(app.get('case sensitive routing'));
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
    if (typeof tenant !== 'string') throw invalidConfig(`byHost(): the tenant of "${host}" must be a tenant name.`);
    table.set(host.toLowerCase(), tenant);
  }
  const select: TenantSelector = (req) => {
    const host = hostnameOf(req);
    return host === undefined ? undefined : table.get(host);
  };
  namedTenants.set(select, [...table.values()]);
  return select;
}

/**
 * What a prefix may hold: characters that every Express major reads literally in a mount path
 * (Express 4 passes `$ ^ | +` into its regular expression as they are; Express 5 reads `: * ( ) { }`
 * as parameters and groups), so that the prefix means what the app's own routes mean.
 */
const literalPathPattern = /^\/[A-Za-z0-9\-._~%@&=,;'/]*$/;

/**
 * Selects the tenant by the start of the path: `byPath({ '/acme': 'acme', '/globex': 'globex' })`.
 * A prefix matches as `app.use(prefix, ...)` does, so that the tenant is the one whose routes
 * Express serves: whole segments (`/acme` matches `/acme` and `/acme/x`, not `/acmex`), the path
 * as sent (`/%61cme` is not `/acme`), an absolute-form target by its path, and letter case ignored
 * unless the app sets `case sensitive routing`. The longest prefix wins. It reads both the request
 * target and the path Express routed (`req.baseUrl + req.path`); when they name different tenants
 * (a middleware rewrote `req.url`, say), no tenant serves the request.
 */
export function byPath(prefixes: Readonly<Record<string, string>>): TenantSelector {
  if (typeof prefixes !== 'object' || prefixes === null) throw invalidConfig('byPath() needs an object of path prefixes to tenant names.');
  const seen = new Map<string, string>();
  const table = Object.entries(prefixes).map(([prefix, tenant]) => {
    if (!literalPathPattern.test(prefix)) {
      throw invalidConfig(
        `byPath(): "${prefix}" must be a path starting with "/" that holds only letters, digits and - . _ ~ % @ & = , ; ' / `
          + '(percent-encode anything else, as clients send it; Express reads characters such as : * ? + ( ) as route syntax).',
      );
    }
    if (typeof tenant !== 'string') throw invalidConfig(`byPath(): the tenant of "${prefix}" must be a tenant name.`);
    const trimmed = prefix.replace(/\/+$/, '');
    const other = seen.get(trimmed.toLowerCase());
    if (other !== undefined) throw invalidConfig(`byPath(): "${other}" and "${prefix}" are the same prefix (Express ignores a trailing slash, and letter case by default).`);
    seen.set(trimmed.toLowerCase(), prefix);
    // Express compiles a path into a regular expression, with the `i` flag unless routing is case-sensitive; so does this, to fold case as it does.
    const source = `^${trimmed.replace(/\./g, '\\.')}(?:/|$)`;
    return { length: trimmed.length, sensitive: new RegExp(source), insensitive: new RegExp(source, 'i'), tenant };
  });
  // Longest first, so that the root prefix ('/', which matches every path, as app.use('/') does) comes last.
  table.sort((a, b) => b.length - a.length);
  type Entry = (typeof table)[number];
  const matchOf = (path: string, pattern: (entry: Entry) => RegExp): Entry | undefined =>
    table.find((entry) => entry.length === 0 || pattern(entry).test(path));
  const tenantAt = (path: string, caseSensitive: boolean): string | undefined => {
    const ignoringCase = matchOf(path, (entry) => entry.insensitive);
    if (!caseSensitive) return ignoringCase?.tenant;
    // Routers made with express.Router() ignore case even where the app does not, so a path that
    // names a prefix only in other letters may reach that prefix's routes: no tenant, not a guess.
    const exact = matchOf(path, (entry) => entry.sensitive);
    return exact === ignoringCase ? exact?.tenant : undefined;
  };
  const select: TenantSelector = (req) => {
    const sent = targetPathOf(req);
    if (sent === undefined) return undefined;
    const caseSensitive = routesCaseSensitively(req);
    const tenant = tenantAt(sent, caseSensitive);
    if (!isRoutedByExpress(req)) return tenant;
    // Both must name the same tenant. The routed path follows a rewritten req.url; the target's
    // path catches what the routed one loses: Express 4 drops a slash of `//` after a mount path
    // (`/api//acme` reaches the router mounted at /api as `/acme`, so reads as `/api/acme`).
    const routed = routedPathOf(req);
    return routed !== undefined && tenantAt(routed, caseSensitive) === tenant ? tenant : undefined;
  };
  namedTenants.set(select, table.map(({ tenant }) => tenant));
  return select;
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
    for (const tenant of namedTenants.get(select) ?? []) {
      if (!strategies.has(tenant)) {
        throw invalidConfig(`${owner}: select names tenant "${tenant}", which is not one of its tenants (${this.names.join(', ')}); add it to \`tenants\` or fix the name.`);
      }
    }
  }

  get(tenant: string): S {
    const strategy = this.strategies.get(tenant);
    if (strategy === undefined) {
      throw invalidConfig(`${this.owner} has no tenant "${tenant}"; its tenants are ${this.names.join(', ')}.`);
    }
    return strategy;
  }

  /**
   * The tenant for this request, never a guess among the tenants. A request that no tenant serves
   * is an `unknown_tenant` error (404): the client chose the Host header and the path, so a
   * spoofed host must not look like the app's fault. A select function that gives something other
   * than a name or undefined is a programming mistake (`invalid_config`).
   */
  nameFor(req: Request): string {
    const tenant = this.select(req);
    if (typeof tenant === 'string' && this.strategies.has(tenant)) return tenant;
    if (tenant !== undefined && typeof tenant !== 'string') {
      throw invalidConfig(`${this.owner}: select() must give a tenant name or undefined, not ${tenant === null ? 'null' : typeof tenant}.`);
    }
    // The host and path are the client's text: they go in requestTarget, never in the message,
    // which failureMessage stores in the session and apps show.
    const requestTarget = cut(`${req.method} ${hostnameOf(req) ?? '(no host)'}${targetPathOf(req) ?? ' (a target without a path)'}`);
    throw new LogtoError(
      'unknown_tenant',
      tenant === undefined
        ? `passport-logto: ${this.owner} serves no tenant at this request's host and path (the error's requestTarget names them). If they are yours, map them to a tenant in byHost() or byPath() (or your select function); if not (a spoofed Host header, say), this 404 is the right answer.`
        : `passport-logto: ${this.owner} serves no tenant at this request's host and path (the error's requestTarget names them): select() named a tenant that is not one of its tenants (${this.names.join(', ')}). Add it to \`tenants\` if it should be served.`,
      { requestTarget },
    );
  }
}

/**
 * Passes a failure to pick the tenant to Passport: `fail` with 404 for a request no tenant serves,
 * as for anything else the request caused, and `error` for a broken select function.
 */
export function reportSelectionFailure(outer: PassportActions, error: unknown): void {
  if (error instanceof LogtoError && isCausedByRequest(error)) outer.fail(error, error.httpStatus);
  else outer.error(error);
}

/**
 * A handler that runs `handle` with the request's tenant. A request that no tenant serves is
 * answered 404 here, as the handlers answer what the request caused, rather than handed to an
 * error handler that may log it or answer 500 (anyone can send a spoofed Host). Calling `next()`
 * instead would skip a route guard. Anything else (a select function that throws) goes to `next`.
 */
export function tenantHandler<S>(
  table: TenantTable<S>,
  handle: (req: Request, res: Response, next: NextFunction, tenant: string) => void,
): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    let tenant: string;
    try {
      tenant = table.nameFor(req);
    } catch (error) {
      if (error instanceof LogtoError && isCausedByRequest(error)) answerRequestError(res, error);
      else next(error);
      return;
    }
    handle(req, res, next, tenant);
  };
}

/** Answers as the guard and the back-channel logout handler do: JSON with the code and what to do. */
function answerRequestError(res: Response, error: LogtoError): void {
  res.statusCode = error.httpStatus;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(JSON.stringify({ error: error.code, error_description: error.message }));
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
