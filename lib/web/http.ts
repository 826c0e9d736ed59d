import { IncomingMessage, ServerResponse } from 'node:http';
import { stringifySetCookie } from 'cookie';
import { LogtoError } from '../errors.js';

/**
 * The few things passport-logto's handlers say to a browser, in a form every host can carry out.
 * Express answers through Node's ServerResponse; Fastify and Koa keep headers of their own (a
 * session cookie among them) that must not be overwritten, so their adapters answer through the
 * host's reply or context instead.
 */
export interface HostAnswer {
  /** Adds one Set-Cookie header to the answer, keeping those already there. */
  appendSetCookie(cookie: string): void;
  /** A 302 to `url`. */
  redirect(url: string): void;
  /** A JSON body with its status, never cached. */
  json(status: number, body: object): void;
  /** An empty body with its status, never cached. */
  empty(status: number): void;
  /** Runs `listener` once the response is over (sent, or its connection gone). */
  onEnd(listener: () => void): void;
}

/**
 * Where an adapter binds its answer on a request: a property, not a WeakMap entry. The answer
 * refers back to its request (through the reply or context), and V8's young-generation collector
 * then kept every request of a WeakMap alive until the next full collection: on Fastify, some
 * 3 MB promoted per scavenge and ten times bare Fastify's GC time (bench/RESULTS.md, "Every host").
 */
const answerKey = Symbol('passport-logto: how to answer this request');

/**
 * Makes `answer` the way to answer `request` (and any request object behind it: Fastify's and
 * Koa's request objects wrap Node's, which Passport strategies may be handed instead).
 */
export function bindAnswer(request: object, answer: HostAnswer): void {
  (request as Record<symbol, HostAnswer>)[answerKey] = answer;
}

/** What Node's own request and response carry: how any host's request reaches them. */
interface RequestLike {
  headers?: Record<string, string | string[] | undefined>;
  method?: string;
  url?: string;
  originalUrl?: string;
  path?: string;
  protocol?: string;
  /** Express (and Node through Express): the response of the request. */
  res?: unknown;
  /** Fastify: Node's request behind Fastify's. */
  raw?: unknown;
  /** Koa: Node's request behind Koa's request (and koa-passport's request for strategies). */
  req?: unknown;
  socket?: { encrypted?: boolean } | null;
}

/**
 * How to answer `req`: the answer a host's adapter bound to it (or to the Node request behind it),
 * else Node's response that Express links from `req.res`. None is a host passport-logto cannot
 * serve without its adapter: an `unsupported_host` error that says what to add.
 */
export function answerOf(req: object, purpose: string): HostAnswer {
  const answer = findAnswer(req);
  if (answer) return answer;
  throw new LogtoError(
    'unsupported_host',
    `passport-logto cannot reach this request's response ${purpose}: the request has no Node response in req.res (Express sets it). `
      + 'On Fastify, register the plugin of passport-logto/fastify; on Koa, mount the middleware of passport-logto/koa, before Passport.',
  );
}

const boundTo = (request: object): HostAnswer | undefined => (request as Record<symbol, HostAnswer | undefined>)[answerKey];

/** How to answer `req`, if passport-logto can. */
export function findAnswer(req: object): HostAnswer | undefined {
  const request = req as RequestLike;
  const bound = boundTo(req)
    ?? (isObject(request.raw) ? boundTo(request.raw) : undefined)
    ?? (isObject(request.req) ? boundTo(request.req) : undefined);
  if (bound) return bound;
  return request.res instanceof ServerResponse ? nodeAnswer(request.res) : undefined;
}

/** Node's request behind a host's request object (Fastify's `raw`, Koa's `req`), or the request itself. */
export function nodeRequestOf(req: object): IncomingMessage {
  const request = req as RequestLike;
  if (request.raw instanceof IncomingMessage) return request.raw;
  if (request.req instanceof IncomingMessage) return request.req;
  return req as IncomingMessage;
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

/** The answer through Node's ServerResponse (Express's `res` is one). */
export function nodeAnswer(res: ServerResponse): HostAnswer {
  // A class rather than an object of closures, and none kept per response: the route guard asks
  // for one on every request, and this is one small allocation that dies young.
  return new NodeAnswer(res);
}

class NodeAnswer implements HostAnswer {
  constructor(private readonly res: ServerResponse) {}

  appendSetCookie(cookie: string): void {
    const existing = this.res.getHeader('Set-Cookie');
    const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
    this.res.setHeader('Set-Cookie', [...list, cookie]);
  }

  redirect(url: string): void {
    const res = this.res;
    res.statusCode = 302;
    res.setHeader('Location', url);
    res.setHeader('Content-Length', '0');
    res.end();
  }

  json(status: number, body: object): void {
    const res = this.res;
    const text = JSON.stringify(body);
    res.statusCode = status;
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.end(text);
  }

  empty(status: number): void {
    const res = this.res;
    res.statusCode = status;
    res.setHeader('Cache-Control', 'no-store');
    res.end();
  }

  onEnd(listener: () => void): void {
    // 'close' comes after 'finish', and also when the client went away first.
    if (this.res.closed) listener();
    else this.res.once('close', listener);
  }
}

/** A request header as one string (the first of repeated ones), or undefined. */
export function header(req: object, name: string): string | undefined {
  const value = (req as RequestLike).headers?.[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** The request target as the client sent it (Express's `originalUrl`, which mounting does not cut). */
export function requestTarget(req: object): string {
  const request = req as RequestLike;
  return request.originalUrl || request.url || '/';
}

/** The path the router sees: Express's mount-relative `req.path`, else the target's path. */
export function requestPath(req: object): string {
  const request = req as RequestLike;
  if (typeof request.path === 'string') return request.path;
  const target = requestTarget(req);
  const end = target.search(/[?#]/);
  return end === -1 ? target : target.slice(0, end);
}

/** `http` or `https`, as the host reads it (Express, Fastify and Koa honour their proxy settings). */
export function protocolOf(req: object): string {
  const request = req as RequestLike;
  if (typeof request.protocol === 'string') return request.protocol.replace(/:$/, '');
  return request.socket?.encrypted ? 'https' : 'http';
}

export interface CookieOptions {
  maxAge: number;
  path: string;
  secure: boolean;
}

/** Sets an HttpOnly, SameSite=Lax cookie on the request's answer. */
export function setCookie(req: object, name: string, value: string, options: CookieOptions): void {
  answerOf(req, 'to set its cookie').appendSetCookie(cookieHeader(name, value, options));
}

/** The Set-Cookie value of an HttpOnly, SameSite=Lax cookie. */
export function cookieHeader(name: string, value: string, options: CookieOptions): string {
  return stringifySetCookie(name, value, {
    httpOnly: true,
    // Lax: the cookie comes back on Logto's top-level redirect to the callback, and on nothing cross-site else.
    sameSite: 'lax',
    secure: options.secure,
    path: options.path,
    maxAge: Math.floor(options.maxAge),
  });
}

/**
 * Calls a host's `logIn`, `logout` or `regenerate`, whichever way it reports: Passport's call
 * back, @fastify/passport's return a promise, koa-passport's `ctx.logout` returns one and takes no
 * callback. Settles once, on the first report; a method that can take no callback and returns no
 * promise is done when it returns.
 */
export function settleHostCall(method: (...args: never[]) => unknown, callbackIndex: number, call: (done: (error?: unknown) => void) => unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      if (error) reject(error);
      else resolve();
    };
    let returned: unknown;
    try {
      returned = call(done);
    } catch (error) {
      done(error ?? new Error('The host threw nothing.'));
      return;
    }
    if (isPromiseLike(returned)) {
      returned.then(() => done(), (error: unknown) => done(error ?? new Error('The host rejected with nothing.')));
    } else if (method.length <= callbackIndex) {
      done();
    }
  });
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return isObject(value) && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * The parts of a Fastify reply that an answer needs, typed here so that neither the Fastify
 * adapter's nor the NestJS adapter's declarations need Fastify's own types.
 */
export interface ReplyLike {
  raw: { closed?: boolean; once(event: 'close', listener: () => void): unknown };
  code(statusCode: number): ReplyLike;
  header(key: string, value: string): ReplyLike;
  redirect(url: string): ReplyLike;
  send(payload?: unknown): ReplyLike;
}

/** Answers through a Fastify reply, so that its hooks (the session cookie's among them) still run. */
export function replyAnswer(reply: ReplyLike): HostAnswer {
  return {
    // Fastify adds a set-cookie header to those already there (the session's comes later).
    appendSetCookie: (cookie) => void reply.header('set-cookie', cookie),
    redirect: (url) => void reply.redirect(url),
    json: (status, body) => void reply.code(status).header('cache-control', 'no-store').send(body),
    empty: (status) => void reply.code(status).header('cache-control', 'no-store').send(),
    onEnd: (listener) => {
      if (reply.raw.closed) listener();
      else reply.raw.once('close', listener);
    },
  };
}
