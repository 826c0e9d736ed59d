import type { PassportAuthenticateOptions as AuthenticateOptions } from '../host-types.js';
import type { ResolvedConfig } from '../configuration.js';
import { LogtoError } from '../errors.js';
import { signInResources } from '../logto/scopes.js';
import { refuseUnknownRequestOptions } from '../options.js';

/** Screens that Logto can open first (`first_screen`). */
export const FirstScreen = {
  SignIn: 'sign_in',
  Register: 'register',
  ResetPassword: 'reset_password',
  IdentifierSignIn: 'identifier:sign_in',
  IdentifierRegister: 'identifier:register',
  SingleSignOn: 'single_sign_on',
} as const;

export type FirstScreen = (typeof FirstScreen)[keyof typeof FirstScreen];

/** Values of the `prompt` parameter, with the names Logto's SDKs give them. */
export const Prompt = {
  /** Sign in only if Logto already has a session; never show a page. */
  None: 'none',
  /** Ask for consent; Logto issues a refresh token only with it. */
  Consent: 'consent',
  /** Ask the user to sign in again even with a Logto session. */
  Login: 'login',
} as const;

export type Prompt = (typeof Prompt)[keyof typeof Prompt];

export type SignInIdentifier = 'email' | 'phone' | 'username';

/**
 * Per-request sign-in options, given to `passport.authenticate('logto', options)`. Every field
 * takes `undefined` as "not given", so that they type-check with `exactOptionalPropertyTypes`.
 */
export interface LogtoSignInOptions {
  /** The screen Logto shows first, e.g. `register` for a sign-up link. */
  firstScreen?: FirstScreen | undefined;
  /** The identifiers the first screen offers. */
  identifiers?: readonly SignInIdentifier[] | undefined;
  /**
   * Prefills the identifier (an email address, say). With `oneTimeToken`, the email address the
   * token was issued for.
   */
  loginHint?: string | undefined;
  /**
   * A one-time token from Logto's Management API (`POST /api/one-time-tokens`), for magic links and
   * organization invitations: Logto signs the user in without a password, once. Needs `loginHint`
   * set to the email address the token was issued for.
   */
  oneTimeToken?: string | undefined;
  /** Skips Logto's page and goes straight to a social or enterprise SSO connector. */
  directSignIn?: { method: 'social' | 'sso'; target: string } | undefined;
  /** Overrides the configured `prompt` for this sign-in. */
  prompt?: string | undefined;
  /** Uses this organization's sign-in experience. It does not produce an organization token. */
  organizationId?: string | undefined;
  /** Preferred languages of Logto's pages, e.g. `fr-CA fr en`. */
  uiLocales?: string | undefined;
  /**
   * Scopes to ask for in this sign-in on top of the configured ones (which it never removes): an
   * array, or a space-separated string. Passport's name for it; `scopes` is the same. Typed as
   * Passport types it, so that a {@link LogtoAuthenticateOptions} passes for its `AuthenticateOptions`.
   */
  scope?: string | string[] | undefined;
  /** Scopes to ask for in this sign-in on top of the configured ones; see `scope`. */
  scopes?: readonly string[] | undefined;
  /** More authorization parameters; they cannot replace the ones passport-logto sets for security. */
  extraParams?: Readonly<Record<string, string>> | undefined;
  /** A same-origin path to land on after sign-in; `req.session.returnTo` is used when absent. */
  returnTo?: string | undefined;
}

/**
 * What `passport.authenticate('logto', options)` takes: Passport's own options (`failureRedirect`,
 * `successReturnToOrRedirect`, ...) and {@link LogtoSignInOptions}. passport-logto does not add its
 * options to Passport's global `AuthenticateOptions`, so that they do not type-check for other
 * strategies; give them through a value of this type:
 * `const signUp: LogtoAuthenticateOptions = { firstScreen: 'register' }; passport.authenticate('logto', signUp)`.
 * Passport's `state` is left out: passport-logto makes its own and refuses one given.
 */
export interface LogtoAuthenticateOptions extends Omit<AuthenticateOptions, 'scope' | 'state' | 'prompt'>, LogtoSignInOptions {}

/** The keys of {@link LogtoSignInOptions}. */
const signInOptionNames = new Set([
  'firstScreen', 'identifiers', 'loginHint', 'oneTimeToken', 'directSignIn', 'prompt', 'organizationId', 'uiLocales', 'scope', 'scopes',
  'extraParams', 'returnTo',
]);

/**
 * Refuses a per-request option that neither passport-logto nor Passport knows (`state`, `callbackURL`,
 * a misspelt `firstscreen`, ...): ignored, it would leave the app believing it took effect.
 */
export function checkAuthenticateOptions(options: unknown): LogtoSignInOptions {
  refuseUnknownRequestOptions(options, signInOptionNames, 'a sign-in option of passport-logto or Passport (see LogtoAuthenticateOptions)');
  return (options ?? {}) as LogtoSignInOptions;
}

/** The scopes of `scope` and `scopes`, each a list of words (or, for `scope`, a space-separated string). */
function requestScopes(options: LogtoSignInOptions): string[] {
  const scopes: string[] = [];
  for (const option of ['scope', 'scopes'] as const) {
    const value: unknown = options[option];
    if (value === undefined) continue;
    const list: unknown = typeof value === 'string' && option === 'scope' ? value.split(/\s+/).filter(Boolean) : value;
    if (!Array.isArray(list) || !list.every((item) => typeof item === 'string' && item !== '' && !/\s/.test(item))) {
      throw new LogtoError(
        'invalid_config',
        `passport-logto: the sign-in option \`${option}\` must be an array of scope names without spaces${option === 'scope' ? ', or a space-separated string' : ''}; check where the route takes it from (req.query values can be arrays of anything).`,
      );
    }
    scopes.push(...(list as string[]));
  }
  return scopes;
}

/** Parameters that passport-logto sets for security and that `extraParams` may not replace. */
const reservedAuthorizationParameters = new Set([
  'client_id', 'redirect_uri', 'response_type', 'scope', 'state', 'nonce', 'code_challenge',
  'code_challenge_method', 'resource', 'response_mode',
]);

function optionalText(options: LogtoSignInOptions, option: 'loginHint' | 'oneTimeToken'): string | undefined {
  const value: unknown = options[option];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') {
    throw new LogtoError('invalid_config', `passport-logto: the sign-in option \`${option}\` must be a string; check where the route takes it from (req.query values can be arrays).`);
  }
  return value;
}

/** Authorization parameters for a sign-in, before state, nonce and PKCE are added. */
export function authorizationParameters(config: ResolvedConfig, options: LogtoSignInOptions): URLSearchParams {
  const parameters = new URLSearchParams();
  for (const [name, value] of Object.entries(options.extraParams ?? {})) {
    if (reservedAuthorizationParameters.has(name)) {
      throw new LogtoError('invalid_config', `passport-logto: extraParams may not set "${name}"; passport-logto sets it.`);
    }
    parameters.set(name, String(value));
  }
  parameters.set('redirect_uri', config.callbackURL);
  parameters.set('response_type', 'code');
  // The configured scopes (with the reserved ones) stay: refreshes and organization tokens count on them.
  const scopes = [...new Set([...config.scopes, ...requestScopes(options)])];
  parameters.set('scope', scopes.join(' '));
  for (const resource of signInResources(config.resources, scopes)) parameters.append('resource', resource);
  parameters.set('prompt', options.prompt ?? config.prompt);
  if (options.firstScreen) parameters.set('first_screen', options.firstScreen);
  if (options.identifiers?.length) parameters.set('identifier', options.identifiers.join(' '));
  const loginHint = optionalText(options, 'loginHint');
  const oneTimeToken = optionalText(options, 'oneTimeToken');
  if (oneTimeToken !== undefined && loginHint === undefined) {
    // Logto only accepts a one-time token together with the email address it was issued for.
    throw new LogtoError('invalid_config', 'passport-logto: the sign-in option `oneTimeToken` needs `loginHint` set to the email address the token was issued for.');
  }
  if (loginHint !== undefined) parameters.set('login_hint', loginHint);
  if (oneTimeToken !== undefined) parameters.set('one_time_token', oneTimeToken);
  if (options.directSignIn) {
    parameters.set('direct_sign_in', `${options.directSignIn.method}:${options.directSignIn.target}`);
  }
  if (options.organizationId) parameters.set('organization_id', options.organizationId);
  if (options.uiLocales) parameters.set('ui_locales', options.uiLocales);
  return parameters;
}
