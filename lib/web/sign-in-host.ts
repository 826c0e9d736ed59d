import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import * as oidc from 'openid-client';
import { LogtoError } from '../errors.js';

/** What a Host header may hold: a name or address, and a port. Anything else is not named back. */
const hostPattern = /^(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;
const maxHostLength = 255;

/**
 * The started sign-in's cookie belongs to the host the sign-in route was opened on; Logto sends
 * the browser back to `callbackURL`'s host. When the two differ (localhost and 127.0.0.1, www and
 * the bare domain), the callback arrives without the cookie and the sign-in cannot finish. The
 * callback sees only its own host's cookies, so a sign-in started on another host carries its
 * start host in its `state`: not secret (Logto and the browser see it anyway), and followed by a
 * MAC under a key derived from the app secret, so that a callback URL made up by someone else
 * cannot put words in the error message.
 */
export class SignInHosts {
  private readonly key: Buffer;
  private readonly protocol: string;
  /** `callbackURL`'s host, where Logto sends the browser back. */
  readonly callbackHost: string;

  constructor(appSecret: string, callbackURL: string) {
    this.key = Buffer.from(hkdfSync('sha256', appSecret, 'passport-logto', 'sign-in start host', 32));
    const url = new URL(callbackURL);
    this.protocol = url.protocol;
    this.callbackHost = url.host;
  }

  /** The host a request came to, as the browser named it (its Host header), normalized; undefined when unusable. */
  hostOf(req: object): string | undefined {
    const host = (req as { headers?: Record<string, string | string[] | undefined> }).headers?.host;
    return typeof host === 'string' ? this.normalize(host) : undefined;
  }

  /**
   * Whether a cookie set on one host reaches the other: browsers keep cookies per host name,
   * whatever the port (instances of one app on several ports share them).
   */
  sharesCookies(one: string, other: string): boolean {
    return new URL(`${this.protocol}//${one}`).hostname === new URL(`${this.protocol}//${other}`).hostname;
  }

  /** A new `state`; it names the start host only when the callback will come back to another one. */
  state(startHost: string | undefined): string {
    const random = oidc.randomState();
    if (startHost === undefined || this.sharesCookies(startHost, this.callbackHost)) return random;
    const host = Buffer.from(startHost).toString('base64url');
    return `${random}.${host}.${this.mac(random, host)}`;
  }

  /**
   * For a callback that came without its started sign-in: the error that says it started on
   * another host, when its `state` (written by this app) says so; undefined otherwise.
   */
  mismatch(req: object, state: string): LogtoError | undefined {
    const started = this.startHostOf(state);
    const here = this.hostOf(req);
    if (started === undefined || here === undefined || this.sharesCookies(started, here)) return undefined;
    return new LogtoError(
      'callback_host_mismatch',
      `The sign-in started on ${started} but came back to ${here}; open the app at the host of callbackURL (${this.callbackHost}) and sign in again. `
        + 'Browsers keep cookies per host, so the started sign-in could not be found here.',
    );
  }

  private startHostOf(state: string): string | undefined {
    const parts = state.split('.');
    // A silent attempt's state ends in its own mark (see silent-sign-in.ts).
    if (parts.at(-1) === 's') parts.pop();
    const [random, host, mac, ...rest] = parts;
    if (!random || !host || !mac || rest.length > 0) return undefined;
    const expected = Buffer.from(this.mac(random, host));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    return this.normalize(Buffer.from(host, 'base64url').toString());
  }

  private mac(random: string, host: string): string {
    return createHmac('sha256', this.key).update(`${random}.${host}`).digest('base64url').slice(0, 22);
  }

  /** Lower case, without the protocol's default port, as URL.host writes it. */
  private normalize(host: string): string | undefined {
    if (host.length > maxHostLength || !hostPattern.test(host)) return undefined;
    try {
      return new URL(`${this.protocol}//${host}`).host;
    } catch {
      return undefined;
    }
  }
}

/** Whether a proxy stood between the browser and the app: its Host header may not be the browser's. */
export function isProxied(req: object): boolean {
  const headers = (req as { headers?: Record<string, unknown> }).headers ?? {};
  return headers['x-forwarded-host'] !== undefined || headers['x-forwarded-for'] !== undefined || headers.forwarded !== undefined;
}
