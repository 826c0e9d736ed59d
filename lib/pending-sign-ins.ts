import { hkdfSync } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { parseCookie, stringifySetCookie } from 'cookie';
import { EncryptJWT, jwtDecrypt, errors as joseErrors } from 'jose';
import { LogtoError } from './errors.js';

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
}

/**
 * Sign-ins waiting for their callback, each in a short-lived encrypted cookie of its own that the
 * browser sends only to the callback path. Tabs that start sign-ins at once never overwrite each
 * other, no session is written for a visitor who never comes back, and the server keeps nothing.
 * The cookie is bound to its `state` and expires with the sign-in.
 */
export class PendingSignIns {
  private readonly key: Uint8Array;
  private readonly path: string;
  private readonly secure: boolean;

  constructor(private readonly options: PendingSignInsOptions) {
    this.key = new Uint8Array(hkdfSync('sha256', options.appSecret, 'passport-logto', 'pending sign-in cookie', 32));
    const callback = new URL(options.callbackURL);
    this.path = callback.pathname;
    this.secure = callback.protocol === 'https:';
  }

  async add(req: object, signIn: PendingSignIn): Promise<void> {
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

  /**
   * The sign-in for `state`, or why there is none. Its cookie is cleared in the same answer, so a
   * reload of the callback finds nothing in the browser.
   */
  async take(req: object, state: string): Promise<PendingSignIn | 'unknown' | 'expired'> {
    const name = this.cookieName(state);
    const value = requestCookie(req, name);
    if (value === undefined) return 'unknown';
    this.setCookie(req, name, '', 0);
    try {
      const { payload } = await jwtDecrypt<PendingClaims>(value, this.key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
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

  private cookieName(state: string): string {
    // A part of the state keeps names short and apart; the whole state is checked inside.
    return `${this.options.cookiePrefix}.${state.slice(0, 16).replace(/[^A-Za-z0-9_-]/g, '_')}`;
  }

  private setCookie(req: object, name: string, value: string, maxAge: number): void {
    appendCookie(req, name, value, { maxAge, path: this.path, secure: this.secure });
  }
}

/** Adds a Set-Cookie for an HttpOnly, SameSite=Lax cookie to the request's response. */
export function appendCookie(req: object, name: string, value: string, options: { maxAge: number; path: string; secure: boolean }): void {
  const res = (req as { res?: ServerResponse }).res;
  if (!res || typeof res.getHeader !== 'function') {
    throw new LogtoError('session_required', 'passport-logto needs Express (req.res) to keep a started sign-in in a cookie.');
  }
  const cookie = stringifySetCookie(name, value, {
    httpOnly: true,
    // Lax: the cookie comes back on Logto's top-level redirect to the callback, and on nothing cross-site else.
    sameSite: 'lax',
    secure: options.secure,
    path: options.path,
    maxAge: Math.floor(options.maxAge),
  });
  const existing = res.getHeader('Set-Cookie');
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
  res.setHeader('Set-Cookie', [...list, cookie]);
}

/** The value of a request cookie, if any. */
export function requestCookie(req: object, name: string): string | undefined {
  const header = (req as { headers?: Record<string, string | string[] | undefined> }).headers?.cookie;
  return typeof header === 'string' ? parseCookie(header)[name] : undefined;
}
