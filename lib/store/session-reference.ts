import { LogtoError } from '../errors.js';
import { digest, type StoredAccessToken, type TokenRecord } from './token-record.js';

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

/**
 * The id under which the request's session lives in its store, for back-channel logout to
 * destroy it there: express-session's `req.sessionID`, or @fastify/session's
 * `request.session.sessionId`. Undefined for a session kept in its cookie (cookie-session,
 * @fastify/secure-session, koa-session), which has no id: then only the sign-in's record ends.
 */
export function sessionIdOf(req: object): string | undefined {
  const express = (req as { sessionID?: unknown }).sessionID;
  if (typeof express === 'string') return express;
  const session = (req as RequestWithSession).session;
  const fastify = session && typeof session === 'object' ? session.sessionId : undefined;
  return typeof fastify === 'string' && fastify !== '' ? fastify : undefined;
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
export type SessionSignIn = { readonly signInId: string; readonly legacy?: TokenRecord } | undefined;

/**
 * The id of a sign-in's record in a session's value for it: `<id>` (0.2.0, and a 0.1.0 session's
 * adopted tokens) or `<id>.<mark>` ({@link SessionReference.noteUser}). Record ids are base64url
 * or UUIDs, so they hold no `.`.
 */
export function signInIdOf(value: string): string {
  const end = value.indexOf(markSeparator);
  return end === -1 ? value : value.slice(0, end);
}

const markSeparator = '.';
/** Characters of the mark kept (48 bits): enough to tell one login from another, never a secret. */
const markLength = 8;

/**
 * The session's share of a sign-in: one string under the strategy's key, the id of its token
 * record and a short mark of the Passport login it made, so that the session express-session
 * loads, hashes and saves on every request stays nearly as light as bare Passport's (each byte
 * there is read and written several times per request). The tokens live in {@link SignInRecords}.
 */
export class SessionReference {
  /**
   * Where sessions written between 0.2.0 and the mark kept the note of the Passport user the
   * sign-in's login wrote (a 32-character digest): read, and removed with the reference.
   */
  private readonly userKey: string;

  /** The value {@link read} last parsed, and what it read there (its callers never change it). */
  private lastValue = '';
  private lastRead: SessionSignIn;

  constructor(private readonly sessionKey: string) {
    this.userKey = `${sessionKey}/user`;
  }

  read(req: object): SessionSignIn {
    const value = (req as RequestWithSession).session?.[this.sessionKey];
    if (typeof value === 'string' && value !== '') {
      // Every request of a session asks with a new copy of the same text: the last answer is kept.
      if (value === this.lastValue) return this.lastRead;
      const signInId = signInIdOf(value);
      const read = signInId === '' ? undefined : { signInId };
      this.lastValue = value;
      this.lastRead = read;
      return read;
    }
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
    if (!session || typeof session !== 'object') return;
    setSessionValue(session, this.sessionKey, undefined);
    setSessionValue(session, this.userKey, undefined);
  }

  /**
   * Notes, right after the sign-in's Passport login, which user that login put in the session (a
   * mark of Passport's session data, after the reference's id), so that {@link ownsPassportUser}
   * can later tell it from a user that another login put there over it.
   */
  noteUser(req: object): void {
    const signInId = this.read(req)?.signInId;
    if (signInId === undefined) return;
    const session = sessionOf(req);
    setSessionValue(session, this.sessionKey, `${signInId}${markSeparator}${passportUserMark(req).slice(0, markLength)}`);
    setSessionValue(session, this.userKey, undefined);
  }

  /**
   * Whether Passport's user is still the one this sign-in's login put in the session: false once
   * another `req.logIn()` (a local account, "log in as", with `keepSessionInfo`) replaced it.
   * Sessions written before the note existed answer true, as they did.
   */
  ownsPassportUser(req: object): boolean {
    const session = (req as RequestWithSession).session;
    const value = session?.[this.sessionKey];
    const end = typeof value === 'string' ? value.indexOf(markSeparator) : -1;
    if (end !== -1) return (value as string).slice(end + 1) === passportUserMark(req).slice(0, markLength);
    const noted = session?.[this.userKey];
    // A note written before marks were canonical is the digest of the JSON text as it was.
    return typeof noted !== 'string' || noted === passportUserMark(req) || noted === passportUserMark(req, false);
  }

  /** A sign-in that a 0.1.0 session had started before the upgrade, kept in the session itself. */
  legacyPending(req: object, state: string): LegacyPendingSignIn | undefined {
    const value = (req as RequestWithSession).session?.[this.sessionKey];
    const pending = value && typeof value === 'object' ? (value as LegacyBag).pending : undefined;
    return pending && Object.hasOwn(pending, state) ? pending[state] : undefined;
  }
}

/** The session key under which Passport keeps its data: Passport's, @fastify/passport's, or the default. */
function passportKeyOf(req: object): string {
  const express = (req as { _sessionManager?: { _key?: unknown } })._sessionManager?._key;
  if (typeof express === 'string') return express;
  const fastify = (req as { passport?: { sessionManager?: { key?: unknown } } }).passport?.sessionManager?.key;
  return typeof fastify === 'string' ? fastify : 'passport';
}

/**
 * A digest of Passport's data in the session (its serialized user): the same until another login
 * writes it. Of a canonical form (object keys sorted, at every depth): a session store may give
 * the data back with its keys in another order (a jsonb column sorts them), and order is not data.
 */
function passportUserMark(req: object, canonical = true): string {
  const session = (req as RequestWithSession).session;
  const data = session && typeof session === 'object' ? session[passportKeyOf(req)] : undefined;
  try {
    const text = JSON.stringify(data ?? null);
    return digest(canonical ? JSON.stringify(sortedKeys(JSON.parse(text))) : text);
  } catch {
    // Data no session store could keep either: every such user counts as the sign-in's, as before.
    return 'unreadable';
  }
}

/** A JSON value with the keys of its objects in sorted order, at every depth. */
function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value === null || typeof value !== 'object') return value;
  const object = value as Record<string, unknown>;
  // No prototype: a `__proto__` key is data here, as it is in the JSON.
  const sorted = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(object).sort()) sorted[key] = sortedKeys(object[key]);
  return sorted;
}

export type { StoredAccessToken };
