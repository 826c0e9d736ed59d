import type { HostNext as NextFunction, HostRequest as Request, HostRequestHandler as RequestHandler, HostResponse as Response } from '../host-types.js';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { createGunzip, createInflate } from 'node:zlib';
import { isCausedByRequest, LogtoError, sessionStoreError } from '../errors.js';
import { formBodyValues, singleValue } from '../request-parameters.js';
import type { SessionStoreLike } from '../store/session-store-adapter.js';
import { digest } from '../store/token-record.js';
import type { LogtoContext } from './context.js';
import { header, nodeAnswer, nodeRequestOf, type HostAnswer } from './http.js';

export type { SessionStoreLike };

export interface BackchannelLogoutOptions {
  /** The session store to end sessions in. Default: `req.sessionStore`, set by express-session. */
  store?: SessionStoreLike;
  /** Seconds: a logout token issued longer ago than this is refused. Default 600. */
  maxTokenAge?: number;
}

const backchannelLogoutEvent = 'http://schemas.openid.net/event/backchannel-logout';
/** Bytes of form body read at most; a logout token is a few hundred. */
const maxLogoutTokenLength = 16 * 1024;
/** Logto sends one parameter; a form of thousands is not worth parsing. */
const maxFormParameters = 10;

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

/**
 * Whether the client went away before its body was read: Node destroys a request whose
 * connection closes before the message is complete, or the connection is gone. body-parser then
 * reads nothing (2.x leaves `req.body` unset) or fails with "stream is not readable" (1.x, a 500),
 * neither of which is the app's setup. Neither flag alone says it: a request read to its end is
 * destroyed too, and one that body-parser refuses at once (a charset) is not complete yet.
 */
function requestGone(req: IncomingMessage): boolean {
  return (req.destroyed && !req.complete) || (req.socket as IncomingMessage['socket'] | null)?.destroyed === true;
}

/** Whether the request says it carries a form. */
function isFormRequest(req: IncomingMessage): boolean {
  return header(req, 'content-type')?.split(';')[0]?.trim().toLowerCase() === 'application/x-www-form-urlencoded';
}

/**
 * Reads `logout_token` from the form body, which Express's own parser (body-parser, with a size
 * limit) reads unless a body parser of the app already did; without Express, Node's stream is read
 * here, with the same limits.
 */
async function logoutTokenOf(req: Request, res: Response, parseForm: RequestHandler | undefined): Promise<string> {
  if (!isFormRequest(req)) {
    throw invalidToken('The logout request must be a POST with an application/x-www-form-urlencoded body carrying logout_token.');
  }
  // A consumed stream means the app's parser ran: read what it left in req.body. Asking body-parser
  // to decide instead would fail when the app's parser is of another major version.
  if (!req.readableEnded) {
    if (parseForm === undefined) return tokenOfForm(await readFormBody(req));
    const failure = await readForm(parseForm, req, res);
    // Checked first: whatever body-parser made of an aborted request, the client caused it.
    if (requestGone(req)) throw invalidToken('The logout request was aborted: the client closed the connection before its body was read.');
    if (failure !== undefined) throw formError(failure);
  }
  const body: unknown = (req as { body?: unknown }).body;
  if (typeof body !== 'object' || body === null || Buffer.isBuffer(body)) {
    throw new LogtoError(
      'invalid_config',
      'passport-logto: the back-channel logout body was read by another body parser, into something other than a form. '
        + 'Mount backchannelLogout() before that parser, or parse forms with express.urlencoded().',
    );
  }
  // The length check is for a body that the app's own parser read, with a limit of its own.
  return tokenOfValues(formBodyValues(req, 'logout_token'));
}

function tokenOfValues(values: unknown[]): string {
  const token = singleValue(values, (value) => value !== '' && value.length <= maxLogoutTokenLength);
  if (typeof token !== 'string') throw invalidToken('The request must carry exactly one logout_token, of at most 16 KiB.');
  return token;
}

function tokenOfForm(form: URLSearchParams): string {
  return tokenOfValues(form.getAll('logout_token'));
}

function unreadable(detail: string): LogtoError {
  return invalidToken(`The logout request's body could not be read as a form (${detail}): Logto sends one form-encoded logout_token, and this handler reads at most 16 KiB.`);
}

/**
 * Reads a small form body from Node's stream, for hosts without Express's parser: UTF-8 only,
 * gzip or deflate allowed, at most {@link maxLogoutTokenLength} bytes once decoded and
 * {@link maxFormParameters} parameters; whatever breaks these is the request's fault.
 */
export async function readFormBody(req: IncomingMessage): Promise<URLSearchParams> {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(header(req, 'content-type') ?? '')?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') throw unreadable(`unsupported charset "${charset.toUpperCase()}"`);
  const encoding = (header(req, 'content-encoding') ?? 'identity').trim().toLowerCase();
  const declared = Number(header(req, 'content-length') ?? 0);
  if (encoding === 'identity' && declared > maxLogoutTokenLength) throw unreadable('request entity too large');
  let stream: NodeJS.ReadableStream = req;
  if (encoding === 'gzip' || encoding === 'deflate') stream = req.pipe(encoding === 'gzip' ? createGunzip() : createInflate());
  else if (encoding !== 'identity') throw unreadable(`unsupported content encoding "${encoding}"`);
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      length += bytes.length;
      if (length > maxLogoutTokenLength) throw unreadable('request entity too large');
      chunks.push(bytes);
    }
  } catch (error) {
    if (error instanceof LogtoError) throw error;
    if (requestGone(req)) throw invalidToken('The logout request was aborted: the client closed the connection before its body was read.');
    throw unreadable(error instanceof Error ? error.message : String(error));
  } finally {
    if (stream !== req) req.unpipe();
  }
  if (requestGone(req)) throw invalidToken('The logout request was aborted: the client closed the connection before its body was read.');
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.split('&').length > maxFormParameters) throw unreadable('too many parameters');
  return new URLSearchParams(text);
}

/** Express's form parser, when Express can be loaded: an optional peer, needed only here. */
let expressFormParser: RequestHandler | undefined | null = null;

function loadExpressFormParser(): RequestHandler | undefined {
  if (expressFormParser === null) {
    try {
      const express = createRequire(import.meta.url)('express') as { urlencoded(options: object): RequestHandler };
      expressFormParser = express.urlencoded({ extended: false, limit: maxLogoutTokenLength, parameterLimit: maxFormParameters });
    } catch {
      expressFormParser = undefined;
    }
  }
  return expressFormParser;
}

/** Runs body-parser; resolves with its error, if any, for {@link formError} to judge. */
function readForm(parseForm: RequestHandler, req: Request, res: Response): Promise<unknown> {
  return new Promise((resolve) => {
    parseForm(req, res, (error?: unknown) => resolve(error === null ? undefined : error));
  });
}

/**
 * What body-parser refuses (too large, too many parameters, an unknown charset or content
 * encoding, a corrupt compressed body: its 4xx errors) is the request's fault; anything else (the
 * stream was already read, or set to a text encoding) is the app's setup.
 */
function formError(error: unknown): LogtoError {
  const detail = error instanceof Error ? error.message : String(error);
  const status = (error as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' && status >= 400 && status < 500
    ? invalidToken(`The logout request's body could not be read as a form (${detail}): Logto sends one form-encoded logout_token, and this handler reads at most 16 KiB.`)
    : new LogtoError(
      'invalid_config',
      `passport-logto: backchannelLogout() could not read the request's body (${detail}). Mount no middleware that reads the body before it, other than express.urlencoded().`,
      { cause: error },
    );
}

/** Checks what the signature check leaves open (OpenID Connect Back-Channel Logout 1.0, 2.6). */
function checkLogoutClaims(claims: LogoutTokenClaims, maxAge: number, clockTolerance: number): void {
  if (typeof claims.events?.[backchannelLogoutEvent] !== 'object' || claims.events[backchannelLogoutEvent] === null) {
    throw invalidToken('The logout token lacks the back-channel logout event.');
  }
  if (claims.nonce !== undefined) throw invalidToken('A logout token must not carry a nonce.');
  if (typeof claims.iat !== 'number') throw invalidToken('The logout token has no iat.');
  if (typeof claims.exp !== 'number') throw invalidToken('The logout token has no exp.');
  if (claims.iat < Date.now() / 1000 - maxAge - clockTolerance) throw invalidToken('The logout token was issued too long ago.');
  if (typeof claims.sid !== 'string' && typeof claims.sub !== 'string') throw invalidToken('The logout token names neither sid nor sub.');
  if (typeof claims.jti !== 'string' || claims.jti === '') throw invalidToken('The logout token has no jti.');
}

/**
 * Logto's back-channel logout POST, on any host: verifies the logout token, ends the matching
 * sign-ins (their token records, and their sessions in the session store), so those users' next
 * request is signed out on every instance. Answers 200, or 400 JSON for a refused request; rejects
 * for what the host's error handling must see (a store down, the app's setup).
 */
export function hostBackchannelLogout(
  context: Pick<LogtoContext, 'config' | 'provider' | 'records' | 'sessionIndex' | 'endSessionSignIns' | 'endLinkedSignIns'>,
  options: BackchannelLogoutOptions = {},
  /** Reads the logout token off the request: the host's way to read a form body. */
  readToken: (req: object) => Promise<string> = (req) => readFormBody(nodeRequestOf(req)).then(tokenOfForm),
): (req: object, answer: HostAnswer) => Promise<void> {
  const maxAge = options.maxTokenAge ?? 600;

  const handle = async (req: object, answer: HostAnswer): Promise<void> => {
    const sessionStore = options.store ?? (req as { sessionStore?: SessionStoreLike }).sessionStore;
    const tokenStore = context.records.storeFor(options.store ? { sessionStore: options.store } : req);
    const token = await readToken(req);
    const claims = await context.provider.verifyJwt<LogoutTokenClaims>(token, {
      audience: context.config.appId,
      kind: 'invalid_logout_token',
    });
    checkLogoutClaims(claims, maxAge, context.config.clockTolerance);
    const jti = claims.jti as string;
    const seenKey = `logout-jti:${digest(`${context.config.issuer} ${jti}`)}`;
    if (await context.records.getMark(tokenStore, seenKey)) throw invalidToken('This logout token was already used.');

    await context.sessionIndex.endSignIns(
      tokenStore,
      sessionStore,
      claims,
      (session) => context.endSessionSignIns(session, sessionStore),
      (linked) => context.endLinkedSignIns(linked, sessionStore),
    );
    // Recorded only now: had ending the sessions failed, Logto's retry must still be accepted.
    const remaining = Math.max(1, (claims.exp as number) - Date.now() / 1000 + context.config.clockTolerance) * 1000;
    await context.records.setMark(tokenStore, seenKey, 1, remaining);
    answer.empty(200);
  };

  return (req, answer) =>
    handle(req, answer).catch((error: unknown) => {
      if (!(error instanceof LogtoError && isCausedByRequest(error))) throw error;
      // Also when the client has gone (Node discards the answer): every refusal ends the same way.
      answer.json(400, { error: 'invalid_request', error_description: error.message });
    });
}

/** The back-channel logout handler for Express; see {@link hostBackchannelLogout}. */
export function backchannelLogoutHandler(context: Pick<LogtoContext, 'config' | 'provider' | 'records' | 'sessionIndex' | 'endSessionSignIns' | 'endLinkedSignIns'>, options: BackchannelLogoutOptions = {}): RequestHandler {
  const responses = new WeakMap<object, Response>();
  const backchannelLogout = hostBackchannelLogout(context, options, (req) =>
    logoutTokenOf(req as Request, responses.get(req) as Response, loadExpressFormParser()),
  );
  return (req: Request, res: Response, next: NextFunction): void => {
    responses.set(req, res);
    backchannelLogout(req, nodeAnswer(res)).catch(next);
  };
}
