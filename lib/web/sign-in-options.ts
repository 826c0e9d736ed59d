import type { ResolvedConfig } from '../configuration.js';
import { LogtoError } from '../errors.js';

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

/** Per-request sign-in options, given to `passport.authenticate('logto', options)`. */
export interface LogtoSignInOptions {
  /** The screen Logto shows first, e.g. `register` for a sign-up link. */
  firstScreen?: FirstScreen;
  /** The identifiers the first screen offers. */
  identifiers?: readonly SignInIdentifier[];
  /**
   * Prefills the identifier (an email address, say). With `oneTimeToken`, the email address the
   * token was issued for.
   */
  loginHint?: string;
  /**
   * A one-time token from Logto's Management API (`POST /api/one-time-tokens`), for magic links and
   * organization invitations: Logto signs the user in without a password, once. Needs `loginHint`
   * set to the email address the token was issued for.
   */
  oneTimeToken?: string;
  /** Skips Logto's page and goes straight to a social or enterprise SSO connector. */
  directSignIn?: { method: 'social' | 'sso'; target: string };
  /** Overrides the configured `prompt` for this sign-in. */
  prompt?: string;
  /** Uses this organization's sign-in experience. It does not produce an organization token. */
  organizationId?: string;
  /** Preferred languages of Logto's pages, e.g. `fr-CA fr en`. */
  uiLocales?: string;
  /** More authorization parameters; they cannot replace the ones passport-logto sets for security. */
  extraParams?: Readonly<Record<string, string>>;
  /** A same-origin path to land on after sign-in; `req.session.returnTo` is used when absent. */
  returnTo?: string;
}

declare module 'passport' {
  // Lets `passport.authenticate('logto', { firstScreen: 'register' })` type-check.
  interface AuthenticateOptions extends LogtoSignInOptions {}
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
  parameters.set('scope', config.scopes.join(' '));
  for (const resource of config.resources) parameters.append('resource', resource);
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
