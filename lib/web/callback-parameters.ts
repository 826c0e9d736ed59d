import type { HostRequest as Request } from '../host-types.js';
import { LogtoError } from '../errors.js';
import { queryParameters, singleValue } from '../request-parameters.js';

/** Response parameters that must appear at most once in a callback. */
const callbackParameters = ['code', 'state', 'iss', 'error', 'error_description', 'error_uri'];
const maxCallbackParameterLength = 4096;

/** The callback's parameters when `req` is a callback: it carries a code, state or error, even a mangled one. */
export function callbackParametersOf(req: Request): URLSearchParams | undefined {
  const parameters = queryParameters(req);
  const isCallback = [...parameters.keys()].some((name) => callbackParameters.includes(name) || isBracketed(name));
  return isCallback ? parameters : undefined;
}

/** `code[]` or `state[x]`: an array or object in disguise, which the query parser would build. */
function isBracketed(name: string): boolean {
  const bracket = name.indexOf('[');
  return bracket > 0 && callbackParameters.includes(name.slice(0, bracket));
}

/**
 * Checks that each response parameter appears at most once, as a plain string of bounded length,
 * and returns the callback's state.
 */
export function readCallback(parameters: URLSearchParams): string {
  if ([...parameters.keys()].some(isBracketed)) {
    throw new LogtoError('invalid_callback', 'The sign-in callback has a parameter that is not a plain string (such as code[]); start the sign-in again.');
  }
  for (const name of callbackParameters) {
    if (singleValue(parameters.getAll(name), (value) => value.length <= maxCallbackParameterLength) === null) {
      throw new LogtoError('invalid_callback', `The sign-in callback has a duplicated or oversized "${name}" parameter; start the sign-in again.`);
    }
  }
  const state = parameters.get('state');
  if (!state) throw new LogtoError('invalid_state', 'The sign-in callback has no state; start the sign-in again.');
  return state;
}

/** RFC 9207: Logto always sends `iss`; checked before Logto's error answer, it also refuses a mixed-up one. */
export function checkIssuer(parameters: URLSearchParams, issuer: string): void {
  if (parameters.get('iss') !== issuer) {
    throw new LogtoError('issuer_mismatch', 'The sign-in response does not come from the configured Logto issuer.');
  }
}
