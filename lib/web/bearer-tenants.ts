import { PassportStrategy } from '../passport-strategy.js';
import type { HostRequest as Request, HostRequestHandler as RequestHandler } from '../host-types.js';
import type { LogtoBearerOptions } from '../bearer/configuration.js';
import {
  LogtoBearerStrategy,
  type BearerVerifyFunction,
  type BearerVerifyFunctionWithRequest,
  type LogtoBearerRouteOptions,
} from '../bearer/strategy.js';
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

  /**
   * The tenant serving this request. Throws a LogtoError `unknown_tenant` (`httpStatus` 404) when
   * `select` names none of the tenants.
   */
  tenantOf(req: Request): string {
    return this.table.nameFor(req);
  }

  /**
   * Passport entry point: the request's tenant verifies the token. A request that no tenant
   * serves fails with `unknown_tenant` and 404, before any token is looked at.
   */
  override authenticate(req: Request, options?: LogtoBearerRouteOptions): void {
    const outer = this as unknown as PassportActions;
    let tenant: string;
    try {
      tenant = this.table.nameFor(req);
    } catch (error) {
      reportSelectionFailure(outer, error);
      return;
    }
    actingFor(this.table.get(tenant), outer, () => undefined).authenticate(req, options);
  }

  /**
   * Plain Express middleware of the request's tenant; see {@link LogtoBearerStrategy.middleware}.
   * A request that no tenant serves gets 404 JSON `{ error: 'unknown_tenant' }`.
   */
  middleware(options: LogtoBearerRouteOptions = {}): RequestHandler {
    const handlers = new Map(this.table.names.map((tenant) => [tenant, this.table.get(tenant).middleware(options)]));
    return tenantHandler(this.table, (req, res, next, tenant) => (handlers.get(tenant) as RequestHandler)(req, res, next));
  }
}
