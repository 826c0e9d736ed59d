import type { HostRequest as Request } from '../host-types.js';
import { connectionOptionNames, type LogtoConnectionOptions, type LogtoFetch, resolveEndpoint, resolveFetch, resolveSigningAlgorithms } from '../configuration.js';
import { LogtoError } from '../errors.js';
import { buildOrganizationUrn } from '../logto/scopes.js';
import { invalidOption, nonNegativeNumber, optionalList, optionalString, type RawOptions, refuseUnknownOptions, requireAbsoluteUris, requireString, wordOrWords } from '../options.js';
import { quotable } from './errors.js';

/**
 * Where a client may put its access token (RFC 6750 §2): the `Authorization: Bearer` header, an
 * `access_token` field of a form-encoded body, or an `access_token` query parameter.
 */
export type BearerTokenLocation = 'header' | 'body' | 'query';

/** What `new LogtoBearerStrategy(options)` and `logtoBearer(options)` accept; `name` defaults to `logto-bearer`. */
export interface LogtoBearerOptions extends LogtoConnectionOptions {
  /**
   * The API resource indicator(s) this API accepts as the token's `aud`, as registered in the
   * Logto Console (e.g. `https://api.example.com`). Required unless `organizations` is set.
   */
  audience?: string | readonly string[];
  /**
   * Accept organization tokens, whose `aud` is `urn:logto:organization:<id>`. Default: none.
   * - `true`: the token of the organization the request is about, which `organizationId` names
   *   (required with `true`); a request for which it names none refuses organization tokens.
   * - `'any'`: a token of any organization; the route must then check `req.authInfo.organizationId`
   *   itself, or a member of one organization gets into another's routes.
   * - a list of organization IDs: tokens of those organizations.
   */
  organizations?: boolean | 'any' | readonly string[];
  /** Scopes the token must all have (from its space-separated `scope` claim). Default none. */
  requiredScopes?: readonly string[];
  /**
   * The organization a request is about, e.g. `(req) => req.params.organizationId`. When it gives
   * an ID, the token must belong to that organization: an organization token for it, or an
   * organization-scoped API token whose `organization_id` claim names it (otherwise 403). Its
   * type takes what Express 5 types route parameters as; an array (from a wildcard parameter) is
   * refused as a setup error.
   *
   * Organization-scoped API tokens (a resource token with an `organization_id` claim) are refused
   * (403) whenever no organization is expected for the request, including when this option is
   * not set: their scopes come from the user's roles in one organization, and an API that does
   * not check the organization would take them for global permissions.
   */
  organizationId?: string | ((req: Request) => string | string[] | undefined);
  /**
   * Where tokens are looked for. Default `['header']` only: a token in a query string ends up in
   * access logs, proxy logs and browser history, and one in a body invites CSRF-style misuse.
   * `body` needs a body parser (e.g. `express.urlencoded()`) before the strategy.
   */
  tokenLocations?: readonly BearerTokenLocation[];
  /** The `realm` of the `WWW-Authenticate` challenge. Default: the first `audience`, else `logto`. */
  realm?: string;
}

/** The bearer options after validation, with every default applied. */
export interface BearerSettings {
  readonly issuer: string;
  readonly jwksUri: URL;
  readonly audiences: readonly string[];
  /** Organization tokens of organizations not listed are accepted (`organizations` `true` or `'any'`). */
  readonly anyOrganization: boolean;
  /** `organizations: 'any'`: an organization token is accepted even when no organization is expected. */
  readonly organizationUnchecked: boolean;
  readonly requiredScopes: readonly string[];
  readonly organizationId: string | ((req: Request) => string | string[] | undefined) | undefined;
  readonly tokenLocations: ReadonlySet<BearerTokenLocation>;
  readonly realm: string;
  readonly name: string;
  readonly passReqToCallback: boolean;
  readonly signingAlgorithms: readonly string[];
  readonly clockTolerance: number;
  readonly timeout: number;
  readonly jwksCooldown: number;
  /** The app's `fetch` option, for the JWKS; undefined for the global one. */
  readonly fetch: LogtoFetch | undefined;
}

/** Every option of {@link LogtoBearerOptions}: anything else is refused. */
const bearerOptionNames: ReadonlySet<string> = new Set([
  ...connectionOptionNames, 'audience', 'organizations', 'requiredScopes', 'organizationId', 'tokenLocations', 'realm',
]);

const tokenLocations: readonly BearerTokenLocation[] = ['header', 'body', 'query'];
/** RFC 6749 §3.3 scope-token. */
const scopeTokenPattern = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

const isScopeToken = (scope: unknown): scope is string => typeof scope === 'string' && scopeTokenPattern.test(scope);

/** Scopes the token must have: in the options, a route's options, or verifyAccessToken's. */
export function scopeList(value: unknown, option: string): string[] {
  return optionalList(value, option, isScopeToken, 'scope names (no spaces, quotes or backslashes)');
}

export function resolveBearerSettings(input: LogtoBearerOptions): BearerSettings {
  if (typeof input !== 'object' || input === null) {
    throw new LogtoError('invalid_config', 'passport-logto: new LogtoBearerStrategy(options) needs an options object.');
  }
  const options = input as unknown as RawOptions;
  refuseUnknownOptions(options, bearerOptionNames, 'LogtoBearerStrategy');

  const { endpoint } = resolveEndpoint(options);

  // A copy: organization audiences are added below, and the caller's array must stay as it was.
  const audiences = options.audience === undefined ? [] : [...wordOrWords(options.audience, 'audience')];
  requireAbsoluteUris(audiences, 'audience', ' (resource indicators)');
  let anyOrganization = false;
  const organizations = options.organizations;
  if (organizations === true || organizations === 'any') {
    anyOrganization = true;
  } else if (organizations !== undefined && organizations !== false) {
    if (!Array.isArray(organizations)) throw invalidOption('organizations', 'must be true, \'any\' or an array of organization IDs.');
    audiences.push(...wordOrWords(organizations, 'organizations').map(buildOrganizationUrn));
  }
  if (audiences.length === 0 && !anyOrganization) {
    throw invalidOption('audience', 'is required (an API resource indicator), unless `organizations` is set.');
  }

  const organizationId = options.organizationId;
  if (organizationId !== undefined && typeof organizationId !== 'function') requireString(options, 'organizationId');
  // Without it, a member (even an admin) of one organization would get into every other one's routes.
  if (organizations === true && organizationId === undefined) {
    throw invalidOption(
      'organizationId',
      'is required with `organizations: true`: name the organization each request is about, e.g. (req) => req.params.organizationId. '
        + 'To accept a token of any organization and check `req.authInfo.organizationId` yourself, set `organizations: \'any\'`.',
    );
  }

  const locations = options.tokenLocations === undefined ? ['header'] : options.tokenLocations;
  if (!Array.isArray(locations) || locations.length === 0 || locations.some((item) => !tokenLocations.includes(item as BearerTokenLocation))) {
    throw invalidOption('tokenLocations', `must be a non-empty array of ${tokenLocations.join(', ')}.`);
  }

  const signingAlgorithms = resolveSigningAlgorithms(options);

  const name = optionalString(options, 'name', 'logto-bearer');
  const realm = optionalString(options, 'realm', audiences[0] ?? 'logto');
  if (quotable(realm) !== realm) throw invalidOption('realm', 'must hold printable ASCII without quotes or backslashes.');
  const timeout = nonNegativeNumber(options, 'timeout', 10);
  if (timeout === 0) throw invalidOption('timeout', 'must be more than 0.');

  return {
    issuer: `${endpoint}/oidc`,
    jwksUri: new URL(`${endpoint}/oidc/jwks`),
    audiences,
    anyOrganization,
    organizationUnchecked: organizations === 'any',
    requiredScopes: scopeList(options.requiredScopes, 'requiredScopes'),
    organizationId: organizationId as BearerSettings['organizationId'],
    tokenLocations: new Set(locations as BearerTokenLocation[]),
    realm,
    name,
    passReqToCallback: options.passReqToCallback === true,
    signingAlgorithms,
    clockTolerance: nonNegativeNumber(options, 'clockTolerance', 30),
    timeout,
    jwksCooldown: nonNegativeNumber(options, 'jwksCooldown', 30),
    fetch: resolveFetch(options),
  };
}
