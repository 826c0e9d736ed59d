import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { ResolvedConfig } from './configuration.js';
import { isCausedByRequest, LogtoError, sessionStoreError } from './errors.js';
import type { LogtoProvider } from './provider.js';

/** The parts of an express-session store that back-channel logout uses. */
export interface SessionStoreLike {
  get(id: string, callback: (error: unknown, session?: object | null) => void): void;
  set(id: string, session: object, callback?: (error?: unknown) => void): void;
  destroy(id: string, callback?: (error?: unknown) => void): void;
}

export interface BackchannelLogoutOptions {
  /** The session store to end sessions in. Default: `req.sessionStore`, set by express-session. */
  store?: SessionStoreLike;
}

const backchannelLogoutEvent = 'http://schemas.openid.net/event/backchannel-logout';
/** How long an index entry lives in the store: Logto's refresh token lifetime. */
const indexLifetime = 14 * 24 * 60 * 60 * 1000;
const maxSessionsPerIndexEntry = 50;
const maxLogoutTokenLength = 16 * 1024;

interface IndexEntry {
  /** Present so that stores can derive the entry's lifetime, as they do for sessions. */
  cookie: { expires: string; originalMaxAge: number };
  sessionIds: string[];
}

function storeCall<T>(run: (callback: (error: unknown, value?: T) => void) => void): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    run((error, value) => {
      if (error) reject(sessionStoreError(error, 'during back-channel logout'));
      else resolve(value);
    });
  });
}

/**
 * Which sessions belong to a Logto session (`sid`) or user (`sub`), kept in the session store
 * itself so that every app instance sees it. Session stores cannot be searched by content, and
 * a logout token names only the Logto session or user.
 */
export class SessionIndex {
  constructor(private readonly prefix: string) {}

  private key(kind: 'sid' | 'sub', value: string): string {
    return `${this.prefix}:logout-index:${kind}:${value}`;
  }

  async add(store: SessionStoreLike, sessionId: string, claims: { sub: string; sid?: string | undefined }): Promise<void> {
    const keys = [this.key('sub', claims.sub)];
    if (claims.sid) keys.push(this.key('sid', claims.sid));
    for (const key of keys) {
      const existing = (await storeCall<object | null>((done) => store.get(key, done))) as IndexEntry | null | undefined;
      const sessionIds = [...(existing?.sessionIds ?? []).filter((id) => id !== sessionId), sessionId].slice(-maxSessionsPerIndexEntry);
      const entry: IndexEntry = {
        cookie: { expires: new Date(Date.now() + indexLifetime).toISOString(), originalMaxAge: indexLifetime },
        sessionIds,
      };
      await storeCall((done) => store.set(key, entry, done));
    }
  }

  /**
   * Ends every indexed session of the Logto session `sid`; of the user `sub` when no session was
   * indexed under that `sid` (ID tokens carry `sid` only when the app asks for session-bound
   * logout), which ends more sessions rather than too few.
   */
  async endSessions(store: SessionStoreLike, claims: { sub?: string | undefined; sid?: string | undefined }): Promise<number> {
    const keys = [claims.sid && this.key('sid', claims.sid), claims.sub && this.key('sub', claims.sub)].filter(
      (key): key is string => typeof key === 'string',
    );
    for (const key of keys) {
      const entry = (await storeCall<object | null>((done) => store.get(key, done))) as IndexEntry | null | undefined;
      if (!entry?.sessionIds?.length) continue;
      for (const sessionId of entry.sessionIds) await storeCall((done) => store.destroy(sessionId, done));
      await storeCall((done) => store.destroy(key, done));
      return entry.sessionIds.length;
    }
    return 0;
  }
}

/** Logout token ids already used, kept until the token would have expired anyway. */
class SeenTokenIds {
  private readonly expiries = new Map<string, number>();

  constructor(private readonly max = 10_000) {}

  /** Records `jti`; false when it was seen before. */
  remember(jti: string, expiresAt: number): boolean {
    const now = Date.now() / 1000;
    for (const [id, expiry] of this.expiries) {
      if (expiry > now && this.expiries.size < this.max) break;
      this.expiries.delete(id);
    }
    if (this.expiries.has(jti)) return false;
    this.expiries.set(jti, expiresAt);
    return true;
  }
}

export interface BackchannelLogoutContext {
  config: ResolvedConfig;
  provider: LogtoProvider;
  index: SessionIndex;
}

interface LogoutTokenClaims {
  sub?: string;
  sid?: string;
  jti?: string;
  iat?: number;
  exp?: number;
  nonce?: unknown;
  events?: Record<string, unknown>;
  [claim: string]: unknown;
}

function invalidToken(message: string): LogtoError {
  return new LogtoError('invalid_logout_token', message);
}

/** Reads `logout_token` from a form body, parsing it unless a body parser already did. */
async function logoutTokenOf(req: Request): Promise<string> {
  const parsed = (req as { body?: unknown }).body;
  if (parsed && typeof parsed === 'object' && !Buffer.isBuffer(parsed)) {
    const value = (parsed as Record<string, unknown>).logout_token;
    if (typeof value !== 'string' || value === '') throw invalidToken('The request has no logout_token.');
    return value;
  }
  if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    throw invalidToken('The logout request must be application/x-www-form-urlencoded.');
  }
  let body = '';
  for await (const chunk of req as AsyncIterable<Buffer>) {
    body += chunk.toString('utf8');
    if (body.length > maxLogoutTokenLength) throw invalidToken('The logout request is too large.');
  }
  const values = new URLSearchParams(body).getAll('logout_token');
  if (values.length !== 1 || !values[0]) throw invalidToken('The request must carry exactly one logout_token.');
  return values[0];
}

/**
 * The handler for Logto's back-channel logout POST: verifies the logout token and ends the
 * matching sessions in the session store, so those users' next request is signed out.
 */
export function backchannelLogoutHandler(context: BackchannelLogoutContext, options: BackchannelLogoutOptions = {}): RequestHandler {
  const seen = new SeenTokenIds();

  const handle = async (req: Request, res: Response): Promise<void> => {
    const store = options.store ?? (req as { sessionStore?: SessionStoreLike }).sessionStore;
    if (!store) {
      throw new LogtoError('session_required', 'Back-channel logout needs the session store: mount it after express-session, or pass { store }.');
    }
    const token = await logoutTokenOf(req);
    const claims = await context.provider.verifyJwt<LogoutTokenClaims>(token, {
      audience: context.config.appId,
      kind: 'invalid_logout_token',
    });
    if (typeof claims.events?.[backchannelLogoutEvent] !== 'object' || claims.events[backchannelLogoutEvent] === null) {
      throw invalidToken('The logout token lacks the back-channel logout event.');
    }
    if (claims.nonce !== undefined) throw invalidToken('A logout token must not carry a nonce.');
    if (typeof claims.iat !== 'number') throw invalidToken('The logout token has no iat.');
    if (typeof claims.sid !== 'string' && typeof claims.sub !== 'string') throw invalidToken('The logout token names neither sid nor sub.');
    if (typeof claims.jti !== 'string' || claims.jti === '') throw invalidToken('The logout token has no jti.');
    if (!seen.remember(claims.jti, claims.exp ?? claims.iat + 600)) throw invalidToken('This logout token was already used.');

    await context.index.endSessions(store, claims);
    res.set('Cache-Control', 'no-store').status(200).end();
  };

  return (req: Request, res: Response, next: NextFunction): void => {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof LogtoError && isCausedByRequest(error)) {
        res.set('Cache-Control', 'no-store').status(400).json({ error: 'invalid_request', error_description: error.message });
      } else {
        next(error);
      }
    });
  };
}
