import type { ResolvedConfig } from './configuration.js';
import { LogtoError } from './errors.js';

/** Screens that Logto can open first. */
export type FirstScreen =
  | 'sign_in'
  | 'register'
  | 'reset_password'
  | 'identifier:sign_in'
  | 'identifier:register'
  | 'single_sign_on';

export type SignInIdentifier = 'email' | 'phone' | 'username';

/** Per-request sign-in options, given to `passport.authenticate('logto', options)`. */
export interface LogtoSignInOptions {
  /** The screen Logto shows first, e.g. `register` for a sign-up link. */
  firstScreen?: FirstScreen;
  /** The identifiers the first screen offers. */
  identifiers?: readonly SignInIdentifier[];
  /** Prefills the identifier (an email address, say). */
  loginHint?: string;
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
  if (options.loginHint) parameters.set('login_hint', options.loginHint);
  if (options.directSignIn) {
    parameters.set('direct_sign_in', `${options.directSignIn.method}:${options.directSignIn.target}`);
  }
  if (options.organizationId) parameters.set('organization_id', options.organizationId);
  if (options.uiLocales) parameters.set('ui_locales', options.uiLocales);
  return parameters;
}
