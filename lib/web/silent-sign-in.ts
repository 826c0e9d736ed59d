import type { HostNext as NextFunction, HostRequest as Request, HostRequestHandler as RequestHandler, HostResponse as Response } from '../host-types.js';
import { invalidOption } from '../options.js';
import type { LogtoContext } from './context.js';
import { header, nodeAnswer, requestPath, requestTarget, type HostAnswer } from './http.js';
import { appendCookie, requestCookie } from './pending-sign-ins.js';
import { safeReturnTo } from './redirects.js';

export interface SilentSignInOptions {
  /** Seconds before the same visitor is tried again after an attempt. Default 3600. */
  retryAfter?: number;
  /** Requests never to try on, beside the callback route (which is always left alone). */
  skip?: (req: Request) => boolean;
}

/**
 * Only a person's page navigation may take the detour through Logto: a script's fetch, an API
 * call, a form post or an iframe would get a redirect it cannot follow to a page.
 */
function isPageNavigation(req: object): boolean {
  if ((req as { method?: string }).method !== 'GET') return false;
  const mode = header(req, 'sec-fetch-mode');
  if (mode !== undefined && mode !== 'navigate') return false;
  const dest = header(req, 'sec-fetch-dest');
  if (dest !== undefined && dest !== 'document') return false;
  if (header(req, 'x-requested-with') !== undefined) return false;
  return (header(req, 'accept') ?? '').includes('text/html');
}

/** The mark's value once set, before any attempt; afterwards it holds the time of the last attempt. */
const seen = '0';
/** Seconds the mark is kept: it holds the time of the last attempt, so it outlives `retryAfter`. */
const markLifetime = 180 * 24 * 3600;
/** Ends the `state` of a silent attempt, so that its callback knows it even without the attempt's cookie. */
const silentStateSuffix = '.s';

/** A `state` for a silent attempt. */
export function silentState(random: string): string {
  return random + silentStateSuffix;
}

/** Whether a callback's `state` is a silent attempt's: base64url never holds a dot. */
export function isSilentState(state: string): boolean {
  return state.endsWith(silentStateSuffix);
}

/**
 * Silent sign-in on any host: false when the request goes on as it is (at once, without a promise),
 * or a promise of true once it sent the browser to Logto (the request is answered).
 */
export function hostSilentSignIn(
  context: Pick<LogtoContext, 'config' | 'startSignIn'>,
  options: SilentSignInOptions = {},
  /** The request as `skip` sees it (on Express, the request itself). */
  skipView: (req: object) => unknown = (req) => req,
): (req: object, answer: HostAnswer) => false | Promise<true> {
  const retryAfter = options.retryAfter ?? 3600;
  if (typeof retryAfter !== 'number' || !Number.isFinite(retryAfter) || retryAfter <= 0) {
    throw invalidOption('retryAfter', 'of silentSignIn() must be a positive number of seconds.');
  }
  const callback = new URL(context.config.callbackURL);
  /** `0` once set (the browser keeps cookies), then the time of the last attempt. */
  const markCookie = `${context.config.name}.silent`;
  const secure = callback.protocol === 'https:';
  const skip = options.skip as ((req: unknown) => boolean) | undefined;

  return (req, answer) => {
    const signedIn = (req as { isAuthenticated?: () => boolean }).isAuthenticated?.() === true;
    if (signedIn || !isPageNavigation(req) || requestPath(req) === callback.pathname || skip?.(skipView(req)) === true) {
      return false;
    }
    const mark = requestCookie(req, markCookie);
    const lastTry = mark === undefined || mark === seen ? undefined : Number(mark);
    try {
      if (mark !== seen && (lastTry === undefined || !Number.isFinite(lastTry))) {
        // A first visit only sets the mark: a client that keeps no cookies never leaves for Logto.
        appendCookie(req, markCookie, seen, { maxAge: markLifetime, path: '/', secure });
        return false;
      }
      if (lastTry !== undefined && Date.now() - lastTry < retryAfter * 1000) return false;
      // Marked before leaving, so that whatever Logto answers, the visitor is not sent again for a while.
      appendCookie(req, markCookie, String(Date.now()), { maxAge: markLifetime, path: '/', secure });
    } catch (error) {
      return Promise.reject(error);
    }
    return context.startSignIn(req, { prompt: 'none', returnTo: safeReturnTo(requestTarget(req)) }, true).then((url) => {
      answer.redirect(url.href);
      return true as const;
    });
  };
}

/** The silent sign-in middleware for Express; see `LogtoStrategy.silentSignIn`. */
export function silentSignInHandler(context: Pick<LogtoContext, 'config' | 'startSignIn'>, options: SilentSignInOptions = {}): RequestHandler {
  const silentSignIn = hostSilentSignIn(context, options);
  return (req: Request, res: Response, next: NextFunction): void => {
    let started: false | Promise<true>;
    try {
      started = silentSignIn(req, nodeAnswer(res));
    } catch (error) {
      next(error);
      return;
    }
    if (started === false) next();
    else started.catch(next);
  };
}
