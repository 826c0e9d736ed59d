import type { ResolvedConfig } from '../configuration.js';
import { debug } from '../debug.js';
import { isProxied, type SignInHosts } from './sign-in-host.js';

/** Emitted once per process each: the warnings are about the app's setup, not about each sign-in. */
let warnedOtherHost = false;
let warnedNoConsent = false;

/**
 * What a started sign-in tells the developer: the debug log's line about it, and a warning (once)
 * for a set-up that cannot work: a start on another host than callbackURL's, whose cookie will
 * not come back, or offline_access without prompt=consent, which Logto drops.
 */
export function noteSignInStart(
  req: object,
  config: Pick<ResolvedConfig, 'callbackURL' | 'appId'>,
  hosts: SignInHosts,
  startHost: string | undefined,
  parameters: URLSearchParams,
  silent: boolean,
): void {
  if (startHost !== undefined && !hosts.sharesCookies(startHost, hosts.callbackHost)) warnOtherHost(req, startHost, hosts.callbackHost);
  if (!silent) warnNoConsent(parameters);
  debug(
    'sign-in: sending the browser to Logto%s with redirect_uri=%s, prompt=%s, scope=%s%s (if Logto answers invalid_redirect_uri, register that URI for the app %s)',
    silent ? ' silently' : '',
    config.callbackURL,
    parameters.get('prompt'),
    parameters.get('scope'),
    parameters.has('resource') ? `, resource=${parameters.getAll('resource').join(' ')}` : '',
    config.appId,
  );
}

function warnNoConsent(parameters: URLSearchParams): void {
  const prompt = parameters.get('prompt') ?? '';
  if (!(parameters.get('scope') ?? '').split(' ').includes('offline_access') || prompt.split(' ').includes('consent')) return;
  const message = `a sign-in asks for offline_access with prompt=${prompt}, but Logto grants offline_access only when prompt includes consent: `
    + 'this sign-in will get no refresh token, so access tokens, organization tokens and refresh() will fail for it. '
    + 'Keep the default prompt (consent), or add consent to it.';
  debug('sign-in: %s', message);
  if (warnedNoConsent) return;
  warnedNoConsent = true;
  process.emitWarning(`passport-logto: ${message}`, { code: 'PASSPORT_LOGTO_NO_REFRESH_TOKEN' });
}

function warnOtherHost(req: object, startHost: string, callbackHost: string): void {
  debug('sign-in: started on %s, but Logto will send the browser back to %s (callbackURL); the started sign-in\'s cookie will not be there', startHost, callbackHost);
  // Behind a proxy the Host header may be the proxy's own name, not the browser's: no warning then.
  if (warnedOtherHost || isProxied(req)) return;
  warnedOtherHost = true;
  process.emitWarning(
    `passport-logto: a sign-in started on ${startHost}, but callbackURL is on ${callbackHost}. Browsers keep cookies per host, so the `
      + `callback will not find the started sign-in. Open the app at ${callbackHost}, or redirect other hosts to it.`,
    { code: 'PASSPORT_LOGTO_SIGN_IN_HOST' },
  );
}
