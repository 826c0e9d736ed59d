import { LogtoError } from '../errors.js';
import type { StoredAccessToken, TokenRecord } from './token-record.js';

/** The parts of a session (express-session or cookie-session) that passport-logto touches. */
export interface SessionLike {
  [key: string]: unknown;
  regenerate?(callback: (error?: unknown) => void): unknown;
  save?(callback?: (error?: unknown) => void): unknown;
}

/**
 * A session written through `get` and `set` (@fastify/secure-session, whose session is a proxy that
 * reads and sets properties but ignores `in` and `delete`; @fastify/session has both styles).
 */
interface GetSetSession {
  get(key: string): unknown;
  set(key: string, value: unknown): void;
}

function isGetSet(session: object): session is GetSetSession {
  return typeof (session as Partial<GetSetSession>).get === 'function' && typeof (session as Partial<GetSetSession>).set === 'function';
}

/** Sets `key`, or removes it when `value` is undefined. */
export function setSessionValue(session: SessionLike, key: string, value: unknown): void {
  if (isGetSet(session)) {
    // Only when it changes: a set marks a secure-session as changed, which rewrites its cookie.
    if (value !== undefined || session.get(key) !== undefined) session.set(key, value);
  } else if (value !== undefined) {
    session[key] = value;
  } else if (key in session) {
    delete session[key];
  }
}

interface RequestWithSession {
  session?: SessionLike | null;
}

export function sessionOf(req: object): SessionLike {
  const session = (req as RequestWithSession).session;
  if (!session || typeof session !== 'object') {
    throw new LogtoError(
      'session_required',
      'passport-logto needs req.session: add express-session (or cookie-session) before passport.',
    );
  }
  return session;
}

/** How 0.1.0 kept the tokens: inside the session, under the strategy's key. */
interface LegacyBag {
  tokens?: TokenRecord & { signInId: string };
  pending?: Record<string, LegacyPendingSignIn>;
}

export interface LegacyPendingSignIn {
  codeVerifier: string;
  nonce: string;
  createdAt: number;
  returnTo?: string;
}

/** What a session says about its sign-in: nothing, a reference to a record, or 0.1.0's tokens. */
export type SessionSignIn = { signInId: string; legacy?: TokenRecord } | undefined;

/**
 * The session's share of a sign-in: only the id of its token record, under the strategy's key,
 * so that the session express-session loads and saves on every request stays as light as bare
 * Passport's. The tokens themselves live in {@link SignInRecords}.
 */
export class SessionReference {
  constructor(private readonly sessionKey: string) {}

  read(req: object): SessionSignIn {
    const value = (req as RequestWithSession).session?.[this.sessionKey];
    if (typeof value === 'string' && value !== '') return { signInId: value };
    const legacy = value && typeof value === 'object' ? (value as LegacyBag).tokens : undefined;
    if (legacy && typeof legacy.signInId === 'string' && typeof legacy.idToken === 'string') {
      const { signInId, ...record } = legacy;
      return { signInId, legacy: record };
    }
    return undefined;
  }

  write(req: object, signInId: string): void {
    sessionOf(req)[this.sessionKey] = signInId;
  }

  clear(req: object): void {
    const session = (req as RequestWithSession).session;
    if (session && typeof session === 'object') setSessionValue(session, this.sessionKey, undefined);
  }

  /** A sign-in that a 0.1.0 session had started before the upgrade, kept in the session itself. */
  legacyPending(req: object, state: string): LegacyPendingSignIn | undefined {
    const value = (req as RequestWithSession).session?.[this.sessionKey];
    const pending = value && typeof value === 'object' ? (value as LegacyBag).pending : undefined;
    return pending && Object.hasOwn(pending, state) ? pending[state] : undefined;
  }
}

export type { StoredAccessToken };
