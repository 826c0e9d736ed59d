import type { HostNext as NextFunction, HostRequest as Request, HostRequestHandler as RequestHandler, HostResponse as Response } from '../host-types.js';
import type { LogtoClient } from './client.js';
import { LogtoError } from '../errors.js';
import { answerWindow } from '../store/sign-in-records.js';
import { nodeAnswer, requestTarget, type HostAnswer } from './http.js';
import { safeReturnTo } from './redirects.js';

export interface AuthenticatedOptions {
  /**
   * Where to send a signed-out user, such as `/sign-in`; the original URL is kept (in a
   * short-lived cookie) so that the next sign-in lands there. Without it, the answer is 401 JSON.
   */
  redirect?: string;
  /** Fetch userinfo into `req.logto.userInfo` before the route runs (@logto/node's `fetchUserInfo`). */
  fetchUserInfo?: boolean;
  /**
   * An access token to have ready in `req.logto.accessToken` before the route runs: an API
   * resource, an organization, or both (@logto/node's `getAccessToken` with `resource`).
   */
  accessToken?: string | { resource?: string; organizationId?: string };
  /** Organization tokens for every organization in the ID token, in `req.logto.organizationTokens` by organization ID. */
  organizationTokens?: boolean;
}

/** A request that passed `logto.authenticated()`: `req.logto` is there. */
export type LogtoRequest = Request & { logto: LogtoClient };

/** A route handler behind `logto.authenticated(options, handler)`, which may be async. */
export type LogtoHandler = (req: LogtoRequest, res: Response, next: NextFunction) => unknown;

/** Runs `handler` with the request as a {@link LogtoRequest}; a throw or a rejection goes to `next`. */
export function withLogto(handler: LogtoHandler): RequestHandler {
  return (req: Request, res: Response, next: NextFunction): void => {
    // Only the guard's admission sets req.logto: a host whose `next` ignores the guard's error
    // (or runs the handler anyway) still never gets here for a request that was not admitted.
    if (!req.logto) {
      if (!res.headersSent) nodeAnswer(res).json(401, { error: 'not_authenticated' });
      return;
    }
    try {
      const returned = handler(req as LogtoRequest, res, next);
      if (returned instanceof Promise) returned.catch(next);
    } catch (error) {
      next(error);
    }
  };
}

/** Everything the guard was asked to have ready, fetched in parallel (refreshes take turns). */
async function preload(client: LogtoClient, options: AuthenticatedOptions): Promise<void> {
  const work: Array<Promise<void>> = [];
  if (options.fetchUserInfo) {
    work.push(client.fetchUserInfo().then((userInfo) => void (client.userInfo = userInfo)));
  }
  const wanted = options.accessToken;
  if (wanted !== undefined) {
    const { resource, organizationId } = typeof wanted === 'string' ? { resource: wanted, organizationId: undefined } : wanted;
    work.push(client.getAccessToken(resource, organizationId).then((token) => void (client.accessToken = token)));
  }
  if (options.organizationTokens) {
    const organizations = client.getIdTokenClaims().organizations ?? [];
    const tokens: Record<string, string> = {};
    client.organizationTokens = tokens;
    for (const organizationId of organizations) {
      work.push(client.getOrganizationToken(organizationId).then((token) => void (tokens[organizationId] = token)));
    }
  }
  const results = await Promise.allSettled(work);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Where the guard's outcome goes: the host's adapter carries each one out its own way. */
export interface GuardOutcome {
  /** A signed-in user, with the helper ready: the route runs. */
  admit(client: LogtoClient): void;
  /** The request was turned away with an answer (401 JSON or a redirect): the route must not run. */
  answered(): void;
  /** A failure (Logto or a store down, the app's setup): for the host's error handling; the route must not run. */
  error(error: unknown): void;
}

/**
 * An outcome that a host adapter reads once the guard has decided: at once when a recent copy of
 * the record answered (most requests), else after `whenSettled()`. One object per request, and a
 * promise only when the guard waits on the store.
 */
export class HeldOutcome implements GuardOutcome {
  settled = false;
  /** The admitted request's helper: undefined when the request was turned away or failed. */
  client: LogtoClient | undefined;
  failure: { error: unknown } | undefined;
  private wake: (() => void) | undefined;

  admit(client: LogtoClient): void {
    this.client = client;
    this.settle();
  }

  answered(): void {
    this.settle();
  }

  error(error: unknown): void {
    this.failure = { error };
    this.settle();
  }

  whenSettled(): Promise<void> {
    if (this.settled) return Promise.resolve();
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  private settle(): void {
    this.settled = true;
    this.wake?.();
  }
}

/** The guard on any host: reads the request, answers through `answer`, reports through `outcome`. */
export type HostGuard = (req: object, answer: HostAnswer, outcome: GuardOutcome) => void;

/**
 * The route guard's logic, host-neutral: lets signed-in users through with their helper, turns
 * others away. Only `admit` lets a request through, so a host that ignores an error passed to its
 * `next` still never runs the route for a signed-out visitor.
 */
export function hostGuard(
  clientFor: (req: object) => LogtoClient,
  options: AuthenticatedOptions = {},
  /**
   * Keeps the page to come back to for the next sign-in. Not in the session: a request that was
   * in flight while the user signed out would save its old session again by writing to it.
   */
  rememberReturnTo: (req: object, answer: HostAnswer, returnTo: string) => void = () => undefined,
): HostGuard {
  const turnAway = (req: object, answer: HostAnswer, outcome: GuardOutcome): void => {
    if (options.redirect === undefined) {
      answer.json(401, { error: 'not_authenticated' });
    } else {
      const returnTo = (req as { method?: string }).method === 'GET' ? safeReturnTo(requestTarget(req)) : undefined;
      if (returnTo !== undefined) rememberReturnTo(req, answer, returnTo);
      answer.redirect(options.redirect);
    }
    outcome.answered();
  };

  const preloads = options.fetchUserInfo === true || options.accessToken !== undefined || options.organizationTokens === true;

  const admit = (client: LogtoClient, req: object, answer: HostAnswer, outcome: GuardOutcome): void => {
    if (!client.isAuthenticated()) {
      turnAway(req, answer, outcome);
      return;
    }
    if (!preloads) {
      outcome.admit(client);
      return;
    }
    preload(client, options)
      .then(
        () => outcome.admit(client),
        (error: unknown) => {
          if (error instanceof LogtoError && error.code === 'not_authenticated') turnAway(req, answer, outcome);
          else outcome.error(error);
        },
      )
      // Turning away can throw too (its cookie): that must reach the error handler, not go unhandled.
      .catch((error: unknown) => outcome.error(error));
  };

  return (req, answer, outcome): void => {
    let client: LogtoClient;
    try {
      client = clientFor(req);
      // A record this process read moments ago admits the request without waiting on a promise,
      // if it leaves the route at least half the getters' window.
      if (client.isLoadedFor(routeMargin)) {
        admit(client, req, answer, outcome);
        return;
      }
    } catch (error) {
      outcome.error(error);
      return;
    }
    client
      .loadFor(routeMargin)
      // A store slower than 2 s gives a load already too old for the getters: one more read.
      .then((loaded) => (loaded.isLoaded() ? loaded : loaded.load()))
      .then((loaded) => admit(loaded, req, answer, outcome))
      .catch((error: unknown) => outcome.error(error));
  };
}

/** Route-guard middleware for Express: lets signed-in users through with `req.logto`, turns others away. */
export function authenticatedGuard(
  clientFor: (req: Request) => LogtoClient,
  options: AuthenticatedOptions = {},
  rememberReturnTo: (req: object, answer: HostAnswer, returnTo: string) => void = () => undefined,
): RequestHandler {
  const guard = hostGuard(clientFor as (req: object) => LogtoClient, options, rememberReturnTo);
  return (req: Request, res: Response, next: NextFunction): void => {
    guard(req, nodeAnswer(res), new ExpressOutcome(req, next));
  };
}

/** The guard's outcome on Express, one object per request rather than three closures. */
class ExpressOutcome implements GuardOutcome {
  constructor(
    private readonly req: Request,
    private readonly next: NextFunction,
  ) {}

  admit(client: LogtoClient): void {
    this.req.logto = client;
    this.next();
  }

  answered(): void {}

  error(error: unknown): void {
    this.next(error);
  }
}

/** The part of the getters' window that the guard leaves the route it admits to. */
const routeMargin = answerWindow / 2;
