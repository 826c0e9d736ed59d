import { LogtoError } from './errors.js';
import {
  absoluteUrl,
  invalidOption,
  isLoopbackHost,
  nonNegativeNumber,
  optionalBoolean,
  optionalString,
  positiveSeconds,
  type RawOptions,
  refuseUnknownOptions,
  requireAbsoluteUris,
  scopeOptions,
  requireString,
  wordList,
} from './options.js';
import type { TokenStore } from './store/token-store.js';
import { signInResources, signInScopes } from './logto/scopes.js';

/** What passport-logto passes to `fetch` besides the URL. */
export interface LogtoFetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | URLSearchParams | null;
  redirect?: 'follow' | 'manual' | 'error';
  signal?: AbortSignal | null;
}

/**
 * What passport-logto reads of `fetch`'s answer: a WHATWG `Response`. Declared by its shape, so
 * that undici's own `Response` fits as well as the global one.
 */
export interface LogtoFetchResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null };
  json(): Promise<unknown>;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/**
 * The `fetch` that passport-logto uses for every request to Logto: discovery, the token endpoint,
 * userinfo, revocation and the JWKS. Called with the URL as a string and a {@link LogtoFetchInit};
 * the global `fetch` fits, so does undici's `fetch`, and so does a wrapper that adds a proxy,
 * tracing headers or mTLS. It must answer with a real `Response` (the global one or undici's).
 */
export type LogtoFetch = (url: string, init: LogtoFetchInit) => Promise<LogtoFetchResponse>;

/** Options that LogtoStrategy and LogtoBearerStrategy share: where Logto is and how to trust it. */
export interface LogtoConnectionOptions {
  /** The Logto endpoint, such as `https://your-tenant.logto.app`; the issuer is `${endpoint}/oidc`. */
  endpoint: string;
  /** The name to register with Passport. */
  name?: string;
  /** Pass the request to the verify function as its first argument. Default false. */
  passReqToCallback?: boolean;
  /**
   * Allow an `http:` endpoint that is not on a loopback host. Default false: tokens, secrets and
   * signing keys would cross the network in the clear.
   */
  allowInsecureEndpoint?: boolean;
  /** Accepted token signing algorithms. Default RS256, PS256, ES256, ES384, ES512; never `none` or HS*. */
  signingAlgorithms?: readonly string[];
  /** Seconds of clock difference tolerated when checking token times. Default 30. */
  clockTolerance?: number;
  /** Seconds to wait for each request to Logto before giving up. Default 10. */
  timeout?: number;
  /**
   * Seconds between two JWKS downloads caused by a token whose key id is unknown. Default 30; the
   * pause keeps forged key ids from turning into a flood of requests to Logto.
   */
  jwksCooldown?: number;
  /**
   * Used instead of the global `fetch` for every request to Logto, the JWKS included: for a proxy,
   * tracing or mTLS (an undici `fetch` with its own dispatcher, say). Default: the global `fetch`.
   */
  fetch?: LogtoFetch;
}

/** What `new LogtoStrategy(options)` accepts; `name` defaults to `logto`. */
export interface LogtoStrategyOptions extends LogtoConnectionOptions {
  /** The application ID from the Logto Console ("Traditional web" app). */
  appId: string;
  /** The application secret from the Logto Console. */
  appSecret: string;
  /** The absolute callback URL, registered as a redirect URI in Logto. */
  callbackURL: string;
  /** Where Logto sends the browser after sign-out; registered as a post sign-out redirect URI. */
  postLogoutRedirectUri?: string;
  /** Extra scopes; `openid`, `offline_access` and `profile` are added (see `includeReservedScopes`). */
  scopes?: readonly string[];
  /**
   * Passport's name for `scopes`, as other strategies take it: an array, or a space-separated
   * string. Given with `scopes`, both count.
   */
  scope?: string | readonly string[];
  /**
   * Add `offline_access` and `profile` to the scopes, as Logto's SDKs do. Default true. With
   * false, only `openid` is added: no refresh token (so no API resource or organization tokens,
   * and the sign-in ends when the first access token expires) and no profile claims, unless
   * `scopes` lists them.
   */
  includeReservedScopes?: boolean;
  /** API resource indicators to declare at sign-in, so that access tokens can be had for them later. */
  resources?: readonly string[];
  /** The `prompt` sent at sign-in. Default `consent`: Logto issues a refresh token only with it. */
  prompt?: string | readonly string[];
  /** The key under `req.session` where the strategy keeps its state. Default: the strategy name. */
  sessionKey?: string;
  /** Seconds that a started sign-in stays valid for its callback. Default 600. */
  signInTimeout?: number;
  /**
   * How many started sign-ins one browser keeps at once (tabs); starting one more drops the
   * oldest. Default 5. Each waits in a small cookie of its own.
   */
  maxPendingSignIns?: number;
  /** Seconds before an access token's expiry at which it is refreshed instead of used. Default 60. */
  accessTokenExpiryMargin?: number;
  /**
   * Where each sign-in's tokens live. Default: the app's express-session store
   * (`req.sessionStore`), which every instance shares when it is shared (connect-redis, say).
   * Give one with cookie-session, or a {@link RedisTokenStore} for strictly one refresh per storm
   * across instances with any session store.
   */
  tokenStore?: TokenStore;
  /** Seconds a sign-in's token record is kept after its last change. Default 14 days: Logto's refresh token lifetime. */
  tokenTtl?: number;
  /**
   * Seconds to wait for Logto's answer to one refresh attempt. Default 2 (or `timeout`, if shorter): shorter than Logto's
   * 3-second grace for a used refresh token, so that a lost answer can be asked for again in time.
   */
  refreshTimeout?: number;
  /**
   * Seconds after a refresh token was first sent during which an unanswered refresh is tried
   * again with it. Default 2.5. It must stay below Logto's 3-second grace: after that, sending the
   * token again could make Logto revoke the whole sign-in, so it is dropped instead.
   */
  refreshRetryWindow?: number;
  /**
   * Index each sign-in by its Logto session and user from the first one, so that back-channel
   * logout, wherever it is mounted, can end it. False forbids `backchannelLogout()`; unset
   * (deprecated), indexing starts only when this instance mounts it.
   */
  backchannelLogout?: boolean;
}

/** Options that {@link LogtoConnectionOptions} lists; each strategy refuses every other option of its own. */
export const connectionOptionNames: readonly string[] = [
  'endpoint', 'name', 'passReqToCallback', 'allowInsecureEndpoint', 'signingAlgorithms', 'clockTolerance', 'timeout', 'jwksCooldown', 'fetch',
];

/** Every option of {@link LogtoStrategyOptions}: anything else is refused (see refuseUnknownOptions). */
const strategyOptionNames: ReadonlySet<string> = new Set([
  ...connectionOptionNames,
  'appId', 'appSecret', 'callbackURL', 'postLogoutRedirectUri', 'scopes', 'scope', 'includeReservedScopes', 'resources', 'prompt',
  'sessionKey', 'signInTimeout', 'maxPendingSignIns', 'accessTokenExpiryMargin', 'tokenStore', 'tokenTtl', 'refreshTimeout',
  'refreshRetryWindow', 'backchannelLogout',
]);

/** The options after validation, with every default applied. */
export interface ResolvedConfig {
  readonly endpoint: string;
  readonly issuer: string;
  readonly appId: string;
  readonly appSecret: string;
  readonly callbackURL: string;
  readonly postLogoutRedirectUri: string | undefined;
  /** Every scope asked for at sign-in. */
  readonly scopes: readonly string[];
  /** Every resource declared at sign-in. */
  readonly resources: readonly string[];
  readonly prompt: string;
  readonly name: string;
  readonly passReqToCallback: boolean;
  readonly allowInsecureRequests: boolean;
  readonly signingAlgorithms: readonly string[];
  readonly clockTolerance: number;
  readonly timeout: number;
  readonly sessionKey: string;
  readonly signInTimeout: number;
  readonly accessTokenExpiryMargin: number;
  readonly maxPendingSignIns: number;
  readonly jwksCooldown: number;
  readonly tokenStore: TokenStore | undefined;
  /** The app's `fetch` option; undefined for the global one. */
  readonly fetch: LogtoFetch | undefined;
  /** Seconds. */
  readonly recordTtl: number;
  /** Seconds. */
  readonly refreshTimeout: number;
  /** Seconds. */
  readonly refreshRetryWindow: number;
  /** The `backchannelLogout` option; undefined when the app left it unset. */
  readonly backchannelLogout: boolean | undefined;
}

const defaultSigningAlgorithms = ['RS256', 'PS256', 'ES256', 'ES384', 'ES512'];
const knownPrompts = new Set(['none', 'login', 'consent', 'select_account']);

/*
 * The checks of the options in LogtoConnectionOptions, which both strategies run; the generic
 * checkers they use are in options.ts.
 */

/** `endpoint` without a trailing slash, and whether it is plain http:, allowed on loopback hosts only. */
export function resolveEndpoint(options: RawOptions): { endpoint: string; insecure: boolean } {
  const url = absoluteUrl(requireString(options, 'endpoint'), 'endpoint');
  if (url.search) throw invalidOption('endpoint', 'must not contain a query string.');
  optionalBoolean(options, 'passReqToCallback', false);
  const allowInsecure = optionalBoolean(options, 'allowInsecureEndpoint', false);
  const insecure = url.protocol === 'http:';
  if (insecure && !isLoopbackHost(url.hostname) && !allowInsecure) {
    throw invalidOption(
      'endpoint',
      `uses http: on a non-loopback host (${url.host}): tokens, secrets and signing keys would cross the network in the clear. Use https:, or set allowInsecureEndpoint: true if you really mean it.`,
    );
  }
  return { endpoint: url.href.replace(/\/+$/, ''), insecure };
}

/** `signingAlgorithms`: asymmetric algorithms only, since a symmetric one would accept tokens forged with the public key. */
export function resolveSigningAlgorithms(options: RawOptions): string[] {
  const algorithms = options.signingAlgorithms === undefined ? defaultSigningAlgorithms : wordList(options, 'signingAlgorithms');
  if (algorithms.length === 0 || algorithms.some((alg) => alg.toLowerCase() === 'none' || alg.toUpperCase().startsWith('HS'))) {
    throw invalidOption('signingAlgorithms', 'must list asymmetric algorithms only (no "none", no HS*).');
  }
  return algorithms;
}

/** The `fetch` option: a function, or undefined for the global `fetch`. */
export function resolveFetch(options: RawOptions): LogtoFetch | undefined {
  const value = options.fetch;
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw invalidOption('fetch', 'must be a function like the global fetch: (url, init) => Promise<Response>.');
  return value as LogtoFetch;
}

/**
 * The absolute callback URL. A relative one (passport-oauth2 resolves it against each request's
 * Host header) is refused: the host is the client's to choose, and Logto accepts only a redirect
 * URI registered exactly, so the one sure value is the one the app registered.
 */
function resolveCallbackURL(options: RawOptions): string {
  const value = requireString(options, 'callbackURL');
  if (!URL.canParse(value)) {
    throw invalidOption(
      'callbackURL',
      `must be an absolute URL, such as https://app.example.com${value.startsWith('/') ? value : '/callback'}, exactly as registered as a redirect URI in the Logto Console, got "${value}". `
        + 'passport-logto does not build it from the request: the Host header is the client\'s to choose, and Logto accepts only the registered URI.',
    );
  }
  return absoluteUrl(value, 'callbackURL').href;
}

function resolvePrompt(value: unknown): string {
  if (value === undefined) return 'consent';
  const prompts = typeof value === 'string' ? value.split(' ').filter(Boolean) : value;
  if (!Array.isArray(prompts) || prompts.length === 0 || prompts.some((item) => !knownPrompts.has(item as string))) {
    throw invalidOption('prompt', `must be one or more of ${[...knownPrompts].join(', ')}.`);
  }
  return prompts.join(' ');
}

/** Checks the options once, at construction, so that a mistake shows at start-up and not at sign-in. */
export function resolveConfig(input: LogtoStrategyOptions): ResolvedConfig {
  if (typeof input !== 'object' || input === null) {
    throw new LogtoError('invalid_config', 'passport-logto: new LogtoStrategy(options) needs an options object.');
  }
  const options = input as unknown as RawOptions;
  refuseUnknownOptions(options, strategyOptionNames, 'LogtoStrategy');

  const { endpoint, insecure } = resolveEndpoint(options);

  const callbackURL = resolveCallbackURL(options);
  const logoutRedirect = optionalString(options, 'postLogoutRedirectUri', undefined);
  const postLogoutRedirectUri = logoutRedirect === undefined ? undefined : absoluteUrl(logoutRedirect, 'postLogoutRedirectUri').href;

  const configuredScopes = scopeOptions(options);
  const configuredResources = wordList(options, 'resources');
  requireAbsoluteUris(configuredResources, 'resources');
  const scopes = signInScopes(configuredScopes, optionalBoolean(options, 'includeReservedScopes', true));

  const signingAlgorithms = resolveSigningAlgorithms(options);

  const name = optionalString(options, 'name', 'logto');
  const sessionKey = optionalString(options, 'sessionKey', name);
  const maxPendingSignIns = nonNegativeNumber(options, 'maxPendingSignIns', 5);
  if (!Number.isInteger(maxPendingSignIns) || maxPendingSignIns < 1) {
    throw invalidOption('maxPendingSignIns', 'must be a whole number of at least 1.');
  }
  const tokenStore = options.tokenStore as TokenStore | undefined;
  if (tokenStore !== undefined && (typeof tokenStore !== 'object' || tokenStore === null || ['get', 'set', 'delete'].some((method) => typeof (tokenStore as unknown as RawOptions)[method] !== 'function'))) {
    throw invalidOption('tokenStore', 'must offer get, set and delete (see TokenStore), such as new MemoryTokenStore() or new RedisTokenStore(client).');
  }
  const refreshRetryWindow = nonNegativeNumber(options, 'refreshRetryWindow', 2.5);
  if (refreshRetryWindow >= 3) {
    throw invalidOption('refreshRetryWindow', 'must be below 3 seconds: Logto revokes the whole sign-in when a used refresh token comes back after 3 seconds.');
  }
  const timeout = nonNegativeNumber(options, 'timeout', 10);
  const refreshTimeout = positiveSeconds(options, 'refreshTimeout', Math.min(2, timeout));
  const recordTtl = positiveSeconds(options, 'tokenTtl', 14 * 24 * 60 * 60);
  if (options.backchannelLogout !== undefined && typeof options.backchannelLogout !== 'boolean') throw invalidOption('backchannelLogout', 'must be a boolean.');
  return {
    endpoint,
    issuer: `${endpoint}/oidc`,
    appId: requireString(options, 'appId'),
    appSecret: requireString(options, 'appSecret'),
    callbackURL,
    postLogoutRedirectUri,
    scopes,
    resources: signInResources(configuredResources, scopes),
    prompt: resolvePrompt(options.prompt),
    name,
    passReqToCallback: options.passReqToCallback === true,
    allowInsecureRequests: insecure,
    signingAlgorithms,
    clockTolerance: nonNegativeNumber(options, 'clockTolerance', 30),
    timeout,
    sessionKey,
    signInTimeout: nonNegativeNumber(options, 'signInTimeout', 600),
    maxPendingSignIns,
    accessTokenExpiryMargin: nonNegativeNumber(options, 'accessTokenExpiryMargin', 60),
    jwksCooldown: nonNegativeNumber(options, 'jwksCooldown', 30),
    tokenStore,
    fetch: resolveFetch(options),
    recordTtl,
    refreshTimeout,
    refreshRetryWindow,
    backchannelLogout: options.backchannelLogout as boolean | undefined,
  };
}
