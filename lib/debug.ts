import { debuglog } from 'node:util';

/**
 * The debug log: `NODE_DEBUG=passport-logto` prints why each sign-in, refresh and guard decision
 * went the way it did, on stderr, through Node's own util.debuglog (no dependency, and nothing
 * is formatted while it is off). Never pass a token, a secret, a code or a cookie value to it.
 */
const log = debuglog('passport-logto');

export function debug(format: string, ...values: unknown[]): void {
  if (log.enabled) log(format, ...values);
}
