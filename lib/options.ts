import { LogtoError } from './errors.js';

/*
 * The option checkers that LogtoStrategy and LogtoBearerStrategy share. Each throws a LogtoError
 * with code `invalid_config` whose message names the option, so that a mistake shows at start-up
 * with the option to fix, and both strategies word the same mistake the same way.
 */

/** Options as the checkers read them: the app's object, before any check. */
export type RawOptions = Record<string, unknown>;

export function invalidOption(option: string, message: string): LogtoError {
  return new LogtoError('invalid_config', `passport-logto: option \`${option}\` ${message}`);
}

export function requireString(options: RawOptions, option: string): string {
  const value = options[option];
  if (typeof value !== 'string' || value.trim() === '') {
    throw invalidOption(option, 'is required and must be a non-empty string.');
  }
  return value.trim();
}

/** An optional non-empty string, trimmed; `fallback` when it is not given. */
export function optionalString<T>(options: RawOptions, option: string, fallback: T): string | T {
  return options[option] === undefined ? fallback : requireString(options, option);
}

/** An optional boolean; `fallback` when it is not given. */
export function optionalBoolean(options: RawOptions, option: string, fallback: boolean): boolean {
  const value = options[option];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidOption(option, 'must be a boolean.');
  return value;
}

export function nonNegativeNumber(options: RawOptions, option: string, fallback: number): number {
  const value = options[option];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalidOption(option, 'must be a non-negative number.');
  }
  return value;
}

/** A duration that must not be zero: a zero wait would give up before anything could answer. */
export function positiveSeconds(options: RawOptions, option: string, fallback: number): number {
  const value = nonNegativeNumber(options, option, fallback);
  if (value <= 0) throw invalidOption(option, 'must be a positive number of seconds.');
  return value;
}

/** A space or an empty string would merge or split items once lists are joined with spaces. */
function isWord(item: unknown): item is string {
  return typeof item === 'string' && item !== '' && !/\s/.test(item);
}

/** An optional array whose every item passes `isItem`; `[]` when it is not given. `expected` ends the message. */
export function optionalList(value: unknown, option: string, isItem: (item: unknown) => item is string, expected: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every(isItem)) throw invalidOption(option, `must be an array of ${expected}.`);
  return value as string[];
}

/** An optional array of non-empty strings without spaces; `[]` when it is not given. */
export function wordList(options: RawOptions, option: string): string[] {
  return optionalList(options[option], option, isWord, 'non-empty strings without spaces');
}

/** A string, or an array of them, each non-empty and without spaces; given as a list either way. */
export function wordOrWords(value: unknown, option: string): string[] {
  const list: unknown[] = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [undefined];
  if (!list.every(isWord)) {
    throw invalidOption(option, 'must be a string or an array of non-empty strings without spaces.');
  }
  return list as string[];
}

/** Each item must parse as an absolute URI; `what` says which kind, for the message. */
export function requireAbsoluteUris(values: readonly string[], option: string, what = ''): void {
  for (const value of values) {
    if (!URL.canParse(value)) throw invalidOption(option, `must hold absolute URIs${what}, got "${value}".`);
  }
}

/** An absolute http: or https: URL without a fragment, which a redirect would drop. */
export function absoluteUrl(value: string, option: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidOption(option, `must be an absolute URL, got "${value}".`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalidOption(option, `must be an http: or https: URL, got "${value}".`);
  }
  if (url.hash) throw invalidOption(option, 'must not contain a fragment (#...).');
  return url;
}

export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/**
 * Refuses an option outside `known`: one from another strategy (passport-oauth2's `state`,
 * `store` or `pkce`, passport-openidconnect's `issuer`) would otherwise be ignored in silence,
 * and the app would believe it in effect.
 */
export function refuseUnknownOptions(options: RawOptions, known: ReadonlySet<string>, what: string): void {
  for (const option of Object.keys(options)) {
    if (!known.has(option)) {
      const hint = Object.hasOwn(unknownOptionHints, option) ? unknownOptionHints[option] : 'Check its spelling, or remove it.';
      throw invalidOption(option, `is not an option of ${what}; passport-logto ignores nothing it is given. ${hint}`);
    }
  }
}

/** What to do instead, for the options of other strategies (and of passport-logto 0.1.0) that apps bring along. */
const unknownOptionHints: Record<string, string> = {
  state: 'passport-logto always sends a state of its own, and PKCE and a nonce: remove it.',
  pkce: 'passport-logto always uses PKCE (S256): remove it.',
  store: 'passport-logto keeps each started sign-in in a cookie of its own: remove it (tokens go to `tokenStore`).',
  issuer: 'The issuer is `${endpoint}/oidc`: give `endpoint` instead.',
  clientID: 'Give the application ID as `appId`.',
  clientId: 'Give the application ID as `appId`.',
  clientSecret: 'Give the application secret as `appSecret`.',
  callbackUrl: 'The option is `callbackURL`.',
  redirectUri: 'The option is `callbackURL`.',
  refreshCoordinator: 'Removed in 0.2.0: refreshes are coordinated through `tokenStore` (a RedisTokenStore across instances).',
};

/**
 * Scopes given as `scope` (Passport's name: a space-separated string or an array) and as
 * `scopes`, together, without repeats.
 */
export function scopeOptions(options: RawOptions): string[] {
  const scope = options.scope;
  const fromScope = typeof scope === 'string' ? scope.split(/\s+/).filter(Boolean) : optionalList(scope, 'scope', isWord, 'non-empty strings without spaces, or a space-separated string');
  return [...new Set([...fromScope, ...wordList(options, 'scopes')])];
}

/**
 * Options that Passport, or a framework built on it, reads itself and passes on to the strategy:
 * passport's authenticate() middleware, @types/passport's AuthenticateOptions, and @nestjs/passport's
 * `property`. The strategies leave them to their owner.
 */
const passportOptionNames: ReadonlySet<string> = new Set([
  'session', 'keepSessionInfo', 'successRedirect', 'successReturnToOrRedirect', 'failureRedirect', 'failureFlash', 'successFlash',
  'failureMessage', 'successMessage', 'failWithError', 'assignProperty', 'authInfo', 'userProperty', 'pauseStream', 'passReqToCallback',
  'property',
]);

/**
 * Refuses a per-request option (given to `passport.authenticate(name, options)`) that is neither
 * in `known` nor Passport's: passport-oauth2's `state` or `callbackURL`, a misspelt one, a `scope`
 * meant as the bearer's `requiredScopes`. Ignored, it would leave the app believing it in effect.
 */
export function refuseUnknownRequestOptions(options: unknown, known: ReadonlySet<string>, what: string): void {
  if (options === undefined || options === null) return;
  if (typeof options !== 'object') {
    throw new LogtoError('invalid_config', 'passport-logto: passport.authenticate() options must be an object.');
  }
  for (const name of Object.keys(options)) {
    if (!known.has(name) && !passportOptionNames.has(name)) {
      throw new LogtoError(
        'invalid_config',
        `passport-logto: \`${name}\` is not ${what}; passport-logto ignores nothing it is given. Check its spelling, or remove it.`,
      );
    }
  }
}
