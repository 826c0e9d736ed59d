import { STATUS_CODES, type ServerResponse } from 'node:http';
import { Strategy as PassportStrategy } from 'passport-strategy';
import type { Request, RequestHandler } from 'express';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, type JWTPayload } from 'jose';
import type { AccessTokenClaims } from './claims.js';
import { isLoopbackHost } from './configuration.js';
import { isLogtoError, LogtoError } from './errors.js';
import { organizationAudience } from './scopes.js';
import type { VerifyDone, VerifyResult } from './strategy.js';
import { TokenVerifier } from './token-verifier.js';

/**
 * Where a client may put its access token (RFC 6750 §2): the `Authorization: Bearer` header, an
 * `access_token` field of a form-encoded body, or an `access_token` query parameter.
 */
export type BearerTokenLocation = 'header' | 'body' | 'query';

/** What `new LogtoBearerStrategy(options)` and `logtoBearer(options)` accept. */
export interface LogtoBearerOptions {
  /** The Logto endpoint, such as `https://your-tenant.logto.app`; the issuer is `${endpoint}/oidc`. */
  endpoint: string;
  /**
   * The API resource indicator(s) this API accepts as the token's `aud`, as registered in the
   * Logto Console (e.g. `https://api.example.com`). Required unless `organizations` is set.
   */
  audience?: string | readonly string[];
  /**
   * Accept organization tokens, whose `aud` is `urn:logto:organization:<id>`: `true` for any
   * organization, or a list of organization IDs. Default: none. An API that accepts any
   * organization usually also sets `organizationId`, so that a token for one organization does
   * not open another organization's routes.
   */
  organizations?: boolean | readonly string[];
  /** Scopes the token must all have (from its space-separated `scope` claim). Default none. */
  requiredScopes?: readonly string[];
  /**
   * The organization a request is about, e.g. `(req) => req.params.organizationId`. When it gives
   * an ID, the token must belong to that organization: an organization token for it, or an
   * organization-scoped API token whose `organization_id` claim names it (otherwise 403).
   *
   * Organization-scoped API tokens (a resource token with an `organization_id` claim) are refused
   * (403) whenever no organization is expected for the request, including when this option is
   * not set: their scopes come from the user's roles in one organization, and an API that does
   * not check the organization would take them for global permissions.
   */
  organizationId?: string | ((req: Request) => string | undefined);
  /**
   * Where tokens are looked for. Default `['header']` only: a token in a query string ends up in
   * access logs, proxy logs and browser history, and one in a body invites CSRF-style misuse.
   * `body` needs a body parser (e.g. `express.urlencoded()`) before the strategy.
   */
  tokenLocations?: readonly BearerTokenLocation[];
  /** The `realm` of the `WWW-Authenticate` challenge. Default: the first `audience`, else `logto`. */
  realm?: string;
  /** The name to register with Passport. Default `logto-bearer`. */
  name?: string;
  /** Pass the request to the verify function as its first argument. Default false. */
  passReqToCallback?: boolean;
  /** Allow an `http:` endpoint that is not on a loopback host. Default false. */
  allowInsecureEndpoint?: boolean;
  /** Accepted signing algorithms. Default RS256, PS256, ES256, ES384, ES512; never `none` or HS*. */
  signingAlgorithms?: readonly string[];
  /** Seconds of clock difference tolerated for `exp` and `nbf`. Default 30. */
  clockTolerance?: number;
  /** Seconds to wait for Logto's JWKS. Default 10. */
  timeout?: number;
  /**
   * Seconds between two JWKS downloads caused by a token whose key id is unknown. Default 30: a key
   * rotation is picked up, but forged key ids cannot turn into a flood of requests to Logto.
   */
  jwksCooldown?: number;
}

/** Per-route options: `passport.authenticate('logto-bearer', { requiredScopes })` or `strategy.middleware({ requiredScopes })`. */
export interface LogtoBearerRouteOptions {
  /** Scopes this route needs on top of the strategy's `requiredScopes`. */
  requiredScopes?: readonly string[];
}

declare module 'passport' {
  // Lets `passport.authenticate('logto-bearer', { session: false, requiredScopes: [...] })` type-check.
  interface AuthenticateOptions {
    requiredScopes?: readonly string[];
  }
}

/** What `req.authInfo` holds after a successful bearer authentication. */
export interface LogtoBearerAuthInfo {
  /** The token's scopes. */
  scopes: string[];
  /** The verified token claims. */
  claims: AccessTokenClaims;
}

export type BearerVerifyFunction = (claims: AccessTokenClaims, done: VerifyDone) => void | Promise<VerifyResult>;
export type BearerVerifyFunctionWithRequest = (
  req: Request,
  claims: AccessTokenClaims,
  done: VerifyDone,
) => void | Promise<VerifyResult>;

/** The error codes of RFC 6750 §3.1. */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

/**
 * A request that fails bearer authentication through its own fault. `bearerError` is undefined
 * when the request carried no token at all (RFC 6750 §3.1 then wants no error attribute).
 */
export class LogtoBearerError extends LogtoError {
  readonly bearerError: BearerErrorCode | undefined;
  /** The status to answer the client with: 400, 401 or 403. */
  readonly httpStatus: 400 | 401 | 403;
  /** For `insufficient_scope`: every scope the route needs, for the challenge's `scope` attribute. */
  readonly requiredScopes: readonly string[] | undefined;

  constructor(
    bearerError: BearerErrorCode | undefined,
    description: string,
    options: { requiredScopes?: readonly string[]; cause?: unknown } = {},
  ) {
    super(bearerError === undefined ? 'not_authenticated' : 'invalid_access_token', description, { cause: options.cause });
    this.bearerError = bearerError;
    this.httpStatus = bearerError === 'invalid_request' ? 400 : bearerError === 'insufficient_scope' ? 403 : 401;
    this.requiredScopes = options.requiredScopes;
  }

  /** The `WWW-Authenticate` header value for this failure. */
  challenge(realm: string): string {
    const attributes = [`realm="${quotable(realm)}"`];
    if (this.bearerError !== undefined) {
      attributes.push(`error="${this.bearerError}"`, `error_description="${quotable(this.message)}"`);
      if (this.requiredScopes?.length) attributes.push(`scope="${quotable(this.requiredScopes.join(' '))}"`);
    }
    return `Bearer ${attributes.join(', ')}`;
  }
}

/** Options of {@link LogtoBearerStrategy.verifyAccessToken}. */
export interface VerifyAccessTokenOptions {
  /** Scopes needed on top of the strategy's `requiredScopes`. */
  requiredScopes?: readonly string[];
  /** The organization the token must belong to. Default: the `organizationId` option when it is a string. */
  organizationId?: string;
}

interface BearerSettings {
  readonly issuer: string;
  readonly jwksUri: URL;
  readonly audiences: readonly string[];
  readonly anyOrganization: boolean;
  readonly requiredScopes: readonly string[];
  readonly organizationId: string | ((req: Request) => string | undefined) | undefined;
  readonly tokenLocations: ReadonlySet<BearerTokenLocation>;
  readonly realm: string;
  readonly name: string;
  readonly passReqToCallback: boolean;
  readonly signingAlgorithms: readonly string[];
  readonly clockTolerance: number;
  readonly timeout: number;
  readonly jwksCooldown: number;
}

type Outcome =
  | { kind: 'success'; user: object; info: LogtoBearerAuthInfo }
  | { kind: 'failure'; failure: LogtoBearerError }
  | { kind: 'error'; error: Error };

const organizationAudiencePrefix = organizationAudience('');
const defaultSigningAlgorithms = ['RS256', 'PS256', 'ES256', 'ES384', 'ES512'];
const tokenLocations: readonly BearerTokenLocation[] = ['header', 'body', 'query'];
/** RFC 6750 §2.1: the scheme, then a b64token. */
const bearerHeaderPattern = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
const tokenPattern = /^[A-Za-z0-9\-._~+/]+=*$/;
/** RFC 6749 §3.3 scope-token. */
const scopeTokenPattern = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * Protects an API with Logto access tokens: each JWT is verified locally against Logto's JWKS,
 * which is downloaded once and kept, so that a request costs no call to Logto. Failures answer as
 * RFC 6750 says: 401 `invalid_token`, 403 `insufficient_scope`, 400 `invalid_request`, and a bare
 * 401 challenge when there is no token. Logto being unreachable is an error for the app's error
 * handler, never a 401 that blames the client.
 */
export class LogtoBearerStrategy extends PassportStrategy {
  name: string;
  private readonly settings: BearerSettings;
  private readonly verifier: TokenVerifier;
  private readonly verify: BearerVerifyFunction | BearerVerifyFunctionWithRequest | undefined;

  constructor(options: LogtoBearerOptions & { passReqToCallback: true }, verify: BearerVerifyFunctionWithRequest);
  constructor(options: LogtoBearerOptions, verify?: BearerVerifyFunction);
  constructor(options: LogtoBearerOptions, verify?: BearerVerifyFunction | BearerVerifyFunctionWithRequest) {
    super();
    this.settings = resolveBearerSettings(options);
    if (verify !== undefined && typeof verify !== 'function') {
      throw new LogtoError('invalid_config', 'passport-logto: the verify argument must be a function.');
    }
    if (this.settings.passReqToCallback && verify === undefined) {
      throw new LogtoError('invalid_config', 'passport-logto: option `passReqToCallback` needs a verify function.');
    }
    this.name = this.settings.name;
    this.verify = verify;
    const { jwksUri } = this.settings;
    this.verifier = new TokenVerifier({
      issuer: this.settings.issuer,
      // Logto serves its JWKS at a fixed path, so no discovery request is needed.
      jwksUri: () => Promise.resolve(jwksUri),
      algorithms: this.settings.signingAlgorithms,
      clockTolerance: this.settings.clockTolerance,
      timeout: this.settings.timeout,
      cooldown: this.settings.jwksCooldown,
    });
  }

  /** Passport entry point; `options.requiredScopes` adds scopes for this route. */
  override authenticate(req: Request, options: LogtoBearerRouteOptions = {}): void {
    let delivered = false;
    const deliver = (outcome: Outcome): void => {
      delivered = true;
      switch (outcome.kind) {
        case 'success':
          this.success(outcome.user, outcome.info);
          return;
        case 'failure': {
          const challenge = outcome.failure.challenge(this.settings.realm);
          // Passport writes the challenge itself only for 401; this covers 400 and 403.
          if (req.res) addChallengeOnResponse(req.res, outcome.failure.httpStatus, challenge);
          this.fail(challenge, outcome.failure.httpStatus);
          return;
        }
        case 'error':
          this.error(outcome.error);
      }
    };
    let routeScopes: readonly string[];
    try {
      routeScopes = scopeList(options.requiredScopes, 'requiredScopes');
    } catch (error) {
      deliver({ kind: 'error', error: asError(error) });
      return;
    }
    this.outcomeFor(req, routeScopes)
      .then(deliver)
      .catch((error: unknown) => {
        if (!delivered) this.error(asError(error));
      });
  }

  /**
   * Plain Express middleware sharing this strategy's JWKS cache: sets `req.user` and
   * `req.authInfo` and calls `next()`, or answers 400/401/403 with a `WWW-Authenticate` challenge.
   */
  middleware(options: LogtoBearerRouteOptions = {}): RequestHandler {
    const routeScopes = scopeList(options.requiredScopes, 'requiredScopes');
    return (req, res, next) => {
      this.outcomeFor(req, routeScopes)
        .then((outcome) => {
          switch (outcome.kind) {
            case 'success':
              req.user = outcome.user;
              req.authInfo = outcome.info;
              next();
              return;
            case 'failure':
              res.statusCode = outcome.failure.httpStatus;
              res.setHeader('WWW-Authenticate', outcome.failure.challenge(this.settings.realm));
              res.setHeader('Content-Type', 'text/plain; charset=utf-8');
              res.end(STATUS_CODES[outcome.failure.httpStatus]);
              return;
            case 'error':
              next(outcome.error);
          }
        })
        .catch((error: unknown) => {
          if (!res.headersSent) next(error);
        });
    };
  }

  /**
   * Verifies an access token outside of an HTTP request (a WebSocket handshake, a queue message).
   * Throws a {@link LogtoBearerError} when the token is refused, and another LogtoError when Logto
   * cannot be reached. The verify function is not called.
   */
  async verifyAccessToken(token: string, options: VerifyAccessTokenOptions = {}): Promise<AccessTokenClaims> {
    if (typeof token !== 'string' || !tokenPattern.test(token)) {
      throw new LogtoBearerError('invalid_token', 'The token is not a well-formed JWT.');
    }
    const fixedOrganization = typeof this.settings.organizationId === 'string' ? this.settings.organizationId : undefined;
    return this.check(token, scopeList(options.requiredScopes, 'requiredScopes'), options.organizationId ?? fixedOrganization);
  }

  /** Never rejects: every failure becomes an outcome, so no request can end in an unhandled rejection. */
  private async outcomeFor(req: Request, routeScopes: readonly string[]): Promise<Outcome> {
    try {
      const token = this.tokenOf(req);
      const expectedOrganization =
        typeof this.settings.organizationId === 'function' ? this.settings.organizationId(req) : this.settings.organizationId;
      if (expectedOrganization !== undefined && (typeof expectedOrganization !== 'string' || expectedOrganization === '')) {
        throw new LogtoError('invalid_config', 'passport-logto: option `organizationId` must give a non-empty string or undefined.');
      }
      const claims = await this.check(token, routeScopes, expectedOrganization);
      const user = await this.userFor(req, claims);
      if (user === false) throw new LogtoBearerError('invalid_token', 'The app refused this token.');
      return { kind: 'success', user, info: { scopes: scopesOf(claims), claims } };
    } catch (error) {
      return error instanceof LogtoBearerError ? { kind: 'failure', failure: error } : { kind: 'error', error: asError(error) };
    }
  }

  /** The token of the request, from the configured locations; exactly one is allowed (RFC 6750 §2). */
  private tokenOf(req: Request): string {
    const found: string[] = [];
    const { tokenLocations } = this.settings;
    if (tokenLocations.has('header')) {
      const header = req.headers.authorization;
      if (header !== undefined) {
        const match = bearerHeaderPattern.exec(header);
        if (!match?.[1]) throw new LogtoBearerError('invalid_request', 'The Authorization header must have the form: Bearer <token>.');
        found.push(match[1]);
      }
    }
    if (tokenLocations.has('body') && req.method !== 'GET' && isFormBody(req)) {
      const value: unknown = (req.body as Record<string, unknown>).access_token;
      if (value !== undefined) found.push(singleToken(typeof value === 'string' ? [value] : Array.isArray(value) ? value : [value]));
    }
    if (tokenLocations.has('query')) {
      const url = req.originalUrl || req.url || '';
      const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
      const values = new URLSearchParams(query).getAll('access_token');
      if (values.length > 0) found.push(singleToken(values));
    }
    if (found.length > 1) throw new LogtoBearerError('invalid_request', 'The request carries the token in more than one place.');
    const token = found[0];
    if (token === undefined) throw new LogtoBearerError(undefined, 'The request carries no access token.');
    return token;
  }

  /** Every check of an access token; throws LogtoBearerError for a token to refuse. */
  private async check(token: string, routeScopes: readonly string[], expectedOrganization: string | undefined): Promise<AccessTokenClaims> {
    let typ: unknown;
    try {
      typ = decodeProtectedHeader(token).typ;
    } catch (error) {
      throw new LogtoBearerError('invalid_token', 'The token is not a well-formed JWT.', { cause: error });
    }
    // Logto marks access tokens `at+jwt` (RFC 9068); an ID token or another JWT must not pass as one.
    if (typ !== undefined && (typeof typ !== 'string' || typ.toLowerCase().replace(/^application\//, '') !== 'at+jwt')) {
      throw new LogtoBearerError('invalid_token', 'The token is not an access token.');
    }

    const audiences = this.audiencesFor(token);
    let payload: JWTPayload;
    try {
      payload = await this.verifier.verify<JWTPayload>(token, { audience: audiences, kind: 'invalid_access_token' });
    } catch (error) {
      if (isLogtoError(error, 'invalid_access_token')) {
        throw new LogtoBearerError('invalid_token', describeRejection(error.cause), { cause: error });
      }
      throw error;
    }
    const claims = accessTokenClaimsOf(payload);

    const tokenOrganization = claims.organization_id ?? organizationInAudience(claims.aud, audiences);
    if (expectedOrganization !== undefined && tokenOrganization !== expectedOrganization) {
      throw new LogtoBearerError('insufficient_scope', `The token does not grant access to organization ${expectedOrganization}.`);
    }
    if (expectedOrganization === undefined && claims.organization_id !== undefined) {
      throw new LogtoBearerError('insufficient_scope', 'Organization-scoped tokens are not accepted here; use a token without an organization.');
    }

    const required = [...new Set([...this.settings.requiredScopes, ...routeScopes])];
    const granted = new Set(scopesOf(claims));
    const missing = required.filter((scope) => !granted.has(scope));
    if (missing.length > 0) {
      throw new LogtoBearerError('insufficient_scope', `The token lacks the scope ${missing.join(' ')}.`, { requiredScopes: required });
    }
    return claims;
  }

  /**
   * The audiences to accept for this token. With `organizations: true` the organization audience
   * is read from the unverified token so that jose can compare it; the signature check that
   * follows still decides, so a forged audience gains nothing.
   */
  private audiencesFor(token: string): readonly string[] {
    if (!this.settings.anyOrganization) return this.settings.audiences;
    let aud: unknown;
    try {
      aud = decodeJwt(token).aud;
    } catch {
      return this.settings.audiences;
    }
    const claimed = (Array.isArray(aud) ? aud : [aud]).filter(
      (value): value is string => typeof value === 'string' && value.startsWith(organizationAudiencePrefix) && value.length > organizationAudiencePrefix.length,
    );
    return claimed.length === 0 ? this.settings.audiences : [...this.settings.audiences, ...claimed];
  }

  /** Runs the verify function (callback or promise), or uses the claims themselves as the user. */
  private userFor(req: Request, claims: AccessTokenClaims): Promise<object | false> {
    const verify = this.verify;
    if (!verify) return Promise.resolve(claims);
    return new Promise<object | false>((resolve, reject) => {
      let settled = false;
      const done: VerifyDone = (error, user) => {
        if (settled) return;
        settled = true;
        if (error) reject(error);
        else resolve(user ?? false);
      };
      try {
        const returned = this.settings.passReqToCallback
          ? (verify as BearerVerifyFunctionWithRequest)(req, claims, done)
          : (verify as BearerVerifyFunction)(claims, done);
        if (returned && typeof returned.then === 'function') {
          returned.then((user) => done(null, user ?? false), (error: unknown) => done(error ?? new Error('The verify function rejected.')));
        }
      } catch (error) {
        done(error ?? new Error('The verify function threw.'));
      }
    });
  }
}

/**
 * Express middleware that protects a route with Logto access tokens, for APIs that do not use
 * Passport. Each call has its own JWKS cache: for many routes, create one `LogtoBearerStrategy`
 * and use its `middleware({ requiredScopes })`.
 */
export function logtoBearer(options: LogtoBearerOptions & { passReqToCallback: true }, verify: BearerVerifyFunctionWithRequest): RequestHandler;
export function logtoBearer(options: LogtoBearerOptions, verify?: BearerVerifyFunction): RequestHandler;
export function logtoBearer(options: LogtoBearerOptions, verify?: BearerVerifyFunction | BearerVerifyFunctionWithRequest): RequestHandler {
  const strategy = options.passReqToCallback === true
    ? new LogtoBearerStrategy({ ...options, passReqToCallback: true }, verify as BearerVerifyFunctionWithRequest)
    : new LogtoBearerStrategy(options, verify as BearerVerifyFunction | undefined);
  return strategy.middleware();
}

// --- Options --------------------------------------------------------------------------------

function invalid(option: string, message: string): LogtoError {
  return new LogtoError('invalid_config', `passport-logto: option \`${option}\` ${message}`);
}

function nonEmptyString(value: unknown, option: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalid(option, 'must be a non-empty string.');
  return value.trim();
}

function stringList(value: unknown, option: string): string[] {
  const list: unknown[] = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [undefined];
  if (list.some((item) => typeof item !== 'string' || item === '' || /\s/.test(item))) {
    throw invalid(option, 'must be a string or an array of non-empty strings without spaces.');
  }
  return list as string[];
}

function scopeList(value: unknown, option: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((scope) => typeof scope !== 'string' || !scopeTokenPattern.test(scope))) {
    throw invalid(option, 'must be an array of scope names (no spaces, quotes or backslashes).');
  }
  return value as string[];
}

function seconds(value: unknown, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw invalid(option, 'must be a non-negative number.');
  return value;
}

function resolveBearerSettings(input: LogtoBearerOptions): BearerSettings {
  if (typeof input !== 'object' || input === null) {
    throw new LogtoError('invalid_config', 'passport-logto: new LogtoBearerStrategy(options) needs an options object.');
  }
  const options = input as unknown as Record<string, unknown>;

  const endpointText = options.endpoint === undefined ? undefined : nonEmptyString(options.endpoint, 'endpoint');
  if (endpointText === undefined) throw invalid('endpoint', 'is required and must be a non-empty string.');
  let endpointUrl: URL;
  try {
    endpointUrl = new URL(endpointText);
  } catch {
    throw invalid('endpoint', `must be an absolute URL, got "${endpointText}".`);
  }
  if (endpointUrl.protocol !== 'https:' && endpointUrl.protocol !== 'http:') throw invalid('endpoint', 'must be an http: or https: URL.');
  if (endpointUrl.search || endpointUrl.hash) throw invalid('endpoint', 'must not contain a query string or a fragment.');
  for (const flag of ['passReqToCallback', 'allowInsecureEndpoint'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') throw invalid(flag, 'must be a boolean.');
  }
  if (endpointUrl.protocol === 'http:' && !isLoopbackHost(endpointUrl.hostname) && options.allowInsecureEndpoint !== true) {
    throw invalid(
      'endpoint',
      `uses http: on a non-loopback host (${endpointUrl.host}): the JWKS could be swapped in transit. Use https:, or set allowInsecureEndpoint: true if you really mean it.`,
    );
  }
  const endpoint = endpointUrl.href.replace(/\/+$/, '');

  // A copy: organization audiences are added below, and the caller's array must stay as it was.
  const audiences = options.audience === undefined ? [] : [...stringList(options.audience, 'audience')];
  for (const audience of audiences) {
    if (!URL.canParse(audience)) throw invalid('audience', `must hold absolute URIs (resource indicators), got "${audience}".`);
  }
  let anyOrganization = false;
  const organizations = options.organizations;
  if (organizations === true) {
    anyOrganization = true;
  } else if (organizations !== undefined && organizations !== false) {
    if (!Array.isArray(organizations)) throw invalid('organizations', 'must be a boolean or an array of organization IDs.');
    audiences.push(...stringList(organizations, 'organizations').map(organizationAudience));
  }
  if (audiences.length === 0 && !anyOrganization) {
    throw invalid('audience', 'is required (an API resource indicator), unless `organizations` is set.');
  }

  const organizationId = options.organizationId;
  if (organizationId !== undefined && typeof organizationId !== 'function') nonEmptyString(organizationId, 'organizationId');

  const locations = options.tokenLocations === undefined ? ['header'] : options.tokenLocations;
  if (!Array.isArray(locations) || locations.length === 0 || locations.some((item) => !tokenLocations.includes(item as BearerTokenLocation))) {
    throw invalid('tokenLocations', `must be a non-empty array of ${tokenLocations.join(', ')}.`);
  }

  const configuredAlgorithms = options.signingAlgorithms;
  if (configuredAlgorithms !== undefined && (!Array.isArray(configuredAlgorithms) || configuredAlgorithms.length === 0)) {
    throw invalid('signingAlgorithms', 'must be a non-empty array.');
  }
  const signingAlgorithms = configuredAlgorithms === undefined ? defaultSigningAlgorithms : stringList(configuredAlgorithms, 'signingAlgorithms');
  if (signingAlgorithms.some((alg) => alg.toLowerCase() === 'none' || alg.toUpperCase().startsWith('HS'))) {
    throw invalid('signingAlgorithms', 'must be an array of asymmetric algorithms only (no "none", no HS*).');
  }

  const name = options.name === undefined ? 'logto-bearer' : nonEmptyString(options.name, 'name');
  const realm = options.realm === undefined ? (audiences[0] ?? 'logto') : nonEmptyString(options.realm, 'realm');
  if (quotable(realm) !== realm) throw invalid('realm', 'must hold printable ASCII without quotes or backslashes.');
  const timeout = seconds(options.timeout, 'timeout', 10);
  if (timeout === 0) throw invalid('timeout', 'must be more than 0.');

  return {
    issuer: `${endpoint}/oidc`,
    jwksUri: new URL(`${endpoint}/oidc/jwks`),
    audiences,
    anyOrganization,
    requiredScopes: scopeList(options.requiredScopes, 'requiredScopes'),
    organizationId: organizationId as BearerSettings['organizationId'],
    tokenLocations: new Set(locations as BearerTokenLocation[]),
    realm,
    name,
    passReqToCallback: options.passReqToCallback === true,
    signingAlgorithms,
    clockTolerance: seconds(options.clockTolerance, 'clockTolerance', 30),
    timeout,
    jwksCooldown: seconds(options.jwksCooldown, 'jwksCooldown', 30),
  };
}

// --- Helpers --------------------------------------------------------------------------------

/** RFC 6750 §3 allows only these characters inside the challenge's quoted values. */
function quotable(text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '?');
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function isFormBody(req: Request): boolean {
  const contentType = req.headers['content-type'];
  return typeof contentType === 'string'
    && contentType.split(';')[0]?.trim().toLowerCase() === 'application/x-www-form-urlencoded'
    && typeof req.body === 'object' && req.body !== null;
}

function singleToken(values: readonly unknown[]): string {
  const [value] = values;
  if (values.length !== 1 || typeof value !== 'string' || !tokenPattern.test(value)) {
    throw new LogtoBearerError('invalid_request', 'The access_token parameter must appear once and hold a token.');
  }
  return value;
}

function scopesOf(claims: AccessTokenClaims): string[] {
  return claims.scope === undefined ? [] : claims.scope.split(' ').filter(Boolean);
}

/** Checks the claims that the rest of the code and the AccessTokenClaims type rely on. */
function accessTokenClaimsOf(payload: JWTPayload): AccessTokenClaims {
  const { sub, exp, iat, scope, organization_id: organizationId } = payload;
  // jose checks exp only when present; an access token without one would never expire.
  if (typeof exp !== 'number') throw new LogtoBearerError('invalid_token', 'The token has no expiry.');
  if (typeof sub !== 'string' || sub === '' || typeof iat !== 'number') {
    throw new LogtoBearerError('invalid_token', 'The token lacks its subject or issue time.');
  }
  if (scope !== undefined && typeof scope !== 'string') throw new LogtoBearerError('invalid_token', 'The token has a malformed scope claim.');
  if (organizationId !== undefined && (typeof organizationId !== 'string' || organizationId === '')) {
    throw new LogtoBearerError('invalid_token', 'The token has a malformed organization_id claim.');
  }
  return payload as AccessTokenClaims;
}

/** The organization an organization token is for: its accepted `urn:logto:organization:<id>` audience. */
function organizationInAudience(aud: string | string[], accepted: readonly string[]): string | undefined {
  const match = (Array.isArray(aud) ? aud : [aud]).find((value) => value.startsWith(organizationAudiencePrefix) && accepted.includes(value));
  return match?.slice(organizationAudiencePrefix.length);
}

/** A short reason for the client, written here rather than passed on from jose, whose messages hold quotes. */
function describeRejection(cause: unknown): string {
  if (cause instanceof joseErrors.JWTExpired) return 'The token has expired.';
  if (cause instanceof joseErrors.JWTClaimValidationFailed) {
    switch (cause.claim) {
      case 'nbf':
        return 'The token is not valid yet.';
      case 'aud':
        return 'The token is not meant for this API.';
      case 'iss':
        return 'The token was not issued by the configured Logto tenant.';
      default:
        return `The token has an invalid ${cause.claim} claim.`;
    }
  }
  if (cause instanceof joseErrors.JOSEAlgNotAllowed) return 'The token is signed with an algorithm that is not accepted.';
  if (cause instanceof joseErrors.JWKSNoMatchingKey) return 'The token is signed with an unknown key.';
  if (cause instanceof joseErrors.JWSSignatureVerificationFailed) return 'The token signature is not valid.';
  return 'The token is malformed.';
}

/**
 * Adds the challenge when the response goes out with the failure's status. Passport sets it only
 * for 401; waiting for the response (like the on-headers package does) keeps the header off a
 * redirect, or off a success when a later strategy in a Passport chain accepts the request.
 */
function addChallengeOnResponse(res: ServerResponse, status: number, challenge: string): void {
  const writeHead = res.writeHead;
  const patched = function (this: ServerResponse, ...args: unknown[]): ServerResponse {
    res.writeHead = writeHead;
    const statusCode = typeof args[0] === 'number' ? args[0] : res.statusCode;
    if (statusCode === status && !res.hasHeader('WWW-Authenticate')) res.setHeader('WWW-Authenticate', challenge);
    return (writeHead as (...values: unknown[]) => ServerResponse).apply(this, args);
  };
  res.writeHead = patched as typeof res.writeHead;
}
