import { hkdfSync } from 'node:crypto';
import { parseCookie } from 'cookie';
import { EncryptJWT, jwtDecrypt, errors as joseErrors } from 'jose';
import { setCookie, type CookieOptions } from './http.js';

/** A sign-in that was started and waits for its callback. */
export interface PendingSignIn {
  state: string;
  codeVerifier: string;
  nonce: string;
  returnTo?: string;
  /** Started by silent sign-in: a refusal from Logto sends the browser back, not to a failure. */
  silent?: boolean;
}

interface PendingClaims {
  st: string;
  cv: string;
  n: string;
  rt?: string;
  sl?: 1;
}

export interface PendingSignInsOptions {
  /** The app secret, from which the cookies' encryption key is derived. */
  appSecret: string;
  callbackURL: string;
  /** Seconds a started sign-in stays valid. */
  timeout: number;
  /** Cookie names start with this. */
  cookiePrefix: string;
  /** How many started sign-ins a browser keeps at once; starting one more drops the oldest. */
  maxPending: number;
}

/**
 * Sign-ins waiting for their callback, each in a short-lived encrypted cookie of its own. Tabs
 * that start sign-ins at once never overwrite each other, no session is written for a visitor who
 * never comes back, and the server keeps nothing. The cookie is bound to its `state` and expires
 * with the sign-in; a browser holds a few at most, so that repeated starts cannot grow its
 * requests until the server refuses them.
 */
export class PendingSignIns {
  private readonly key: Uint8Array;
  private readonly secure: boolean;
  /** `/`: the sign-in route must see the others to keep their number bounded. */
  private readonly path = '/';

  constructor(private readonly options: PendingSignInsOptions) {
    this.key = new Uint8Array(hkdfSync('sha256', options.appSecret, 'passport-logto', 'pending sign-in cookie', 32));
    this.secure = new URL(options.callbackURL).protocol === 'https:';
  }

  async add(req: object, signIn: PendingSignIn): Promise<void> {
    await this.dropOldest(req, this.options.maxPending - 1);
    const claims: PendingClaims = { st: signIn.state, cv: signIn.codeVerifier, n: signIn.nonce };
    if (signIn.returnTo !== undefined) claims.rt = signIn.returnTo;
    if (signIn.silent) claims.sl = 1;
    const value = await new EncryptJWT({ ...claims })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .setIssuedAt()
      .setExpirationTime(`${Math.max(1, Math.floor(this.options.timeout))}s`)
      .encrypt(this.key);
    // The cookie outlives the sign-in a little, so that a late callback hears "expired", not "unknown".
    this.setCookie(req, this.cookieName(signIn.state), value, this.options.timeout + 300);
  }

  /** The sign-in for `state`, or why there is none. The cookie stays until {@link clear}. */
  async take(req: object, state: string): Promise<PendingSignIn | 'unknown' | 'expired'> {
    const value = requestCookie(req, this.cookieName(state));
    if (value === undefined) return 'unknown';
    try {
      const { payload } = await this.decrypt(value);
      if (payload.st !== state || typeof payload.cv !== 'string' || typeof payload.n !== 'string') return 'unknown';
      return {
        state,
        codeVerifier: payload.cv,
        nonce: payload.n,
        ...(typeof payload.rt === 'string' ? { returnTo: payload.rt } : {}),
        ...(payload.sl === 1 ? { silent: true } : {}),
      };
    } catch (error) {
      return error instanceof joseErrors.JWTExpired ? 'expired' : 'unknown';
    }
  }

  /**
   * Forgets the sign-in for `state` in the browser, once its callback has ended one way or the
   * other (an infrastructure failure keeps it, so that a reload can finish the sign-in).
   */
  clear(req: object, state: string): void {
    if (requestCookie(req, this.cookieName(state)) !== undefined) this.setCookie(req, this.cookieName(state), '', 0);
  }

  private decrypt(value: string): ReturnType<typeof jwtDecrypt<PendingClaims>> {
    return jwtDecrypt<PendingClaims>(value, this.key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
  }

  /**
   * Keeps at most `keep` of this app's started sign-ins in the browser, the newest. Only the last
   * {@link lookedAt} cookies of the prefix are decrypted (browsers send older cookies first); any
   * before them are expired by name unread, so that a request stuffed with such cookies costs no
   * more than a few decryptions.
   */
  private async dropOldest(req: object, keep: number): Promise<void> {
    const prefix = `${this.options.cookiePrefix}.`;
    const header = (req as { headers?: Record<string, string | string[] | undefined> }).headers?.cookie;
    if (typeof header !== 'string' || !header.includes(prefix)) return;
    const named = Object.entries(parseCookie(header)).filter(
      (entry): entry is [string, string] => entry[0].startsWith(prefix) && entry[1] !== undefined && entry[1] !== '',
    );
    const lookedAt = this.options.maxPending + extraLookedAt;
    const unread = named.slice(0, Math.max(0, named.length - lookedAt));
    for (const [name] of unread) this.setCookie(req, name, '', 0);
    const started: Array<{ name: string; issuedAt: number }> = [];
    for (const [name, value] of named.slice(unread.length)) {
      // Only this app's cookies decrypt; another app's on the same host is left alone.
      const issuedAt = await this.decrypt(value).then(
        ({ payload }) => payload.iat ?? 0,
        (error: unknown) => (error instanceof joseErrors.JWTExpired ? 0 : undefined),
      );
      if (issuedAt !== undefined) started.push({ name, issuedAt });
    }
    started.sort((a, b) => a.issuedAt - b.issuedAt);
    for (const { name } of started.slice(0, Math.max(0, started.length - keep))) this.setCookie(req, name, '', 0);
  }

  private cookieName(state: string): string {
    // A part of the state keeps names short and apart; the whole state is checked inside.
    return `${this.options.cookiePrefix}.${state.slice(0, 16).replace(/[^A-Za-z0-9_-]/g, '_')}`;
  }

  private setCookie(req: object, name: string, value: string, maxAge: number): void {
    appendCookie(req, name, value, { maxAge, path: this.path, secure: this.secure });
  }
}

/**
 * How many cookies of the prefix beyond `maxPending` a sign-in start decrypts at most: room for a
 * few of another app's on the same host, which do not decrypt and are left alone.
 */
const extraLookedAt = 3;

/** Adds a Set-Cookie for an HttpOnly, SameSite=Lax cookie to the request's answer, on any host. */
export function appendCookie(req: object, name: string, value: string, options: CookieOptions): void {
  setCookie(req, name, value, options);
}

/** The value of a request cookie, if any. */
export function requestCookie(req: object, name: string): string | undefined {
  const header = (req as { headers?: Record<string, string | string[] | undefined> }).headers?.cookie;
  return typeof header === 'string' ? parseCookie(header)[name] : undefined;
}
