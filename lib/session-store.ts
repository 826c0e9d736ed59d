import { LogtoError } from './errors.js';

/** An access token as kept in the session. */
export interface StoredAccessToken {
  token: string;
  /** Seconds since the epoch. */
  expiresAt: number;
  scope?: string;
}

/** The tokens of one sign-in, as kept in the session. Never copied into `req.user`. */
export interface StoredTokens {
  /** Random id of this sign-in; refreshes of the same sign-in are coordinated under it. */
  signInId: string;
  idToken: string;
  refreshToken?: string;
  /** The opaque token for Logto's userinfo endpoint. */
  accessToken?: StoredAccessToken;
  /** JWT access tokens for API resources and organizations, by {@link accessTokenKey}. */
  resourceTokens?: Record<string, StoredAccessToken>;
}

/** A sign-in that was started and waits for its callback, kept under its `state`. */
export interface PendingSignIn {
  codeVerifier: string;
  nonce: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  returnTo?: string;
}

/** What the strategy keeps under its key in `req.session`. */
export interface SessionBag {
  tokens?: StoredTokens;
  pending?: Record<string, PendingSignIn>;
}

/** The parts of an express-session session that passport-logto touches. */
export interface SessionLike {
  [key: string]: unknown;
  regenerate?(callback: (error?: unknown) => void): unknown;
  save?(callback?: (error?: unknown) => void): unknown;
}

interface RequestWithSession {
  session?: SessionLike | null;
}

export function sessionOf(req: object): SessionLike {
  const session = (req as RequestWithSession).session;
  if (!session || typeof session !== 'object') {
    throw new LogtoError(
      'session_required',
      'passport-logto keeps sign-ins and tokens in req.session: add express-session (or another session middleware) before passport.',
    );
  }
  return session;
}

/** The key of an access token for a resource, an organization, or both. */
export function accessTokenKey(resource: string | undefined, organizationId: string | undefined): string {
  return `${resource ?? ''}#${organizationId ?? ''}`;
}

/** Reads and writes the strategy's bag in the session, under the configured key. */
export class SessionTokenStore {
  constructor(private readonly sessionKey: string) {}

  bag(req: object): SessionBag {
    const session = sessionOf(req);
    const existing = session[this.sessionKey];
    if (existing && typeof existing === 'object') return existing as SessionBag;
    const created: SessionBag = {};
    session[this.sessionKey] = created;
    return created;
  }

  /** The tokens, without creating anything in a session that has none. */
  read(req: object): StoredTokens | undefined {
    const session = (req as RequestWithSession).session;
    const bag = session?.[this.sessionKey] as SessionBag | undefined;
    return bag?.tokens;
  }

  write(req: object, tokens: StoredTokens): void {
    this.bag(req).tokens = tokens;
  }

  clear(req: object): void {
    const session = (req as RequestWithSession).session;
    const bag = session?.[this.sessionKey] as SessionBag | undefined;
    if (bag) delete bag.tokens;
  }
}
