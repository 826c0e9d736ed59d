import type { HostNext as NextFunction, HostRequest as Request, HostRequestHandler as RequestHandler, HostResponse as Response } from '../host-types.js';
import { LogtoError, sessionStoreError } from '../errors.js';
import type { TokenRecord } from '../store/token-record.js';
import type { LogtoContext } from './context.js';
import { header, nodeAnswer, nodeRequestOf, protocolOf, settleHostCall, type HostAnswer } from './http.js';
import { safePostLogoutRedirect } from './redirects.js';

export interface SignOutOptions {
  /**
   * Where Logto sends the browser afterwards: an absolute URL on the app's origin (registered in
   * Logto) or a path. Default: the strategy's `postLogoutRedirectUri`.
   */
  postLogoutRedirectUri?: string;
}

type LogOut = (options: object, done: (error?: unknown) => void) => unknown;

/**
 * Passport's `req.logout()`, as a promise, whether the host's version calls back (Passport), returns
 * a promise (@fastify/passport) or both; nothing to do when Passport is not in use on this request.
 */
export function logOutOfPassport(req: object, during = 'at sign-out'): Promise<void> {
  const logOut = (req as { logout?: LogOut }).logout;
  if (typeof logOut !== 'function') return Promise.resolve();
  // Passport's logout only saves and regenerates the session: an error is the store's.
  return settleHostCall(logOut, 1, (done) => logOut.call(req, {}, done)).catch((error: unknown) => {
    throw sessionStoreError(error, during);
  });
}

/**
 * A sign-out that another page started (a hidden form or image) would sign the user out against
 * their will. A GET is accepted only from the app's own pages or typed in (`Sec-Fetch-Site`
 * `same-origin` or `none`, or a browser that sends no such header): a sibling subdomain is
 * `same-site` and may not. Any method is refused when its Origin is not the app's own.
 */
function refusal(req: object, allowedOrigins: ReadonlySet<string>): string | undefined {
  const site = header(req, 'sec-fetch-site');
  const method = nodeRequestOf(req).method;
  if (method === 'GET' || method === 'HEAD') {
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      return "Sign-out by GET was refused: it did not come from this app's own pages. Sign out with a POST form (<form method=\"post\">) to this address instead.";
    }
  } else if (site === 'cross-site') {
    return 'Sign-out was refused: the request came from another site.';
  }
  const origin = header(req, 'origin');
  if (origin === undefined || allowedOrigins.has(origin)) return undefined;
  const host = header(req, 'host');
  return host !== undefined && origin === `${protocolOf(req)}://${host}` ? undefined : 'Sign-out was refused: the request came from another site.';
}

/** The ends in progress, by request and sign-in: a second call while one runs shares its outcome. */
const ending = new WeakMap<object, Map<string, Promise<TokenRecord | undefined>>>();

/**
 * Ends this request's sign-in for every instance: its token record becomes an ended mark (a
 * refresh still in flight then cannot write the tokens back), the refresh token is revoked (best
 * effort: nobody can use it once the record is gone, so it should not stay valid at Logto), and the
 * session's reference goes. Returns the ended record, for the sign-out's `id_token_hint`. Called
 * again for the same request while it runs, it waits for the first call instead of revoking twice.
 */
export function endSignIn(context: Pick<LogtoContext, 'provider' | 'records' | 'session'>, req: object): Promise<TokenRecord | undefined> {
  const reference = context.session.read(req);
  if (!reference) {
    context.session.clear(req);
    return Promise.resolve(undefined);
  }
  const known = ending.get(req);
  const running = known?.get(reference.signInId);
  if (running) return running;
  const inRequest = known ?? new Map<string, Promise<TokenRecord | undefined>>();
  if (!known) ending.set(req, inRequest);
  const started = end(context, req, reference).finally(() => inRequest.delete(reference.signInId));
  inRequest.set(reference.signInId, started);
  return started;
}

async function end(
  context: Pick<LogtoContext, 'provider' | 'records' | 'session'>,
  req: object,
  reference: { signInId: string; legacy?: TokenRecord },
): Promise<TokenRecord | undefined> {
  const record = await endSignInById(context, req, reference.signInId, reference.legacy);
  context.session.clear(req);
  return record;
}

/**
 * Ends one sign-in by its id, for every instance, and revokes its refresh token (best effort:
 * nobody can use it once the record is gone, so it should not stay valid at Logto). `storeOf` is
 * the request, or `{ sessionStore }` outside one. `legacy`: the tokens a 0.1.0 session carried.
 */
export async function endSignInById(
  { provider, records }: Pick<LogtoContext, 'provider' | 'records'>,
  storeOf: object,
  signInId: string,
  legacy?: TokenRecord,
): Promise<TokenRecord | undefined> {
  const store = records.storeFor(storeOf);
  const record = legacy ?? (await records.read(store, signInId));
  await records.end(store, signInId, { fromSession: legacy !== undefined });
  if (record?.refreshToken) {
    // Best effort: the user is signed out locally (and at Logto, for sign-out) whether or not this works.
    await provider.revokeRefreshToken(record.refreshToken).catch(() => undefined);
  }
  return record;
}

/**
 * The sign-out, on any host: ends the sign-in's token record for every instance (a refresh still in
 * flight then cannot write the tokens back), revokes the refresh token (best effort), logs
 * the user out of Passport (which gives the session a new id), and sends the browser to Logto's
 * end-session endpoint so that the Logto session ends too.
 */
export function hostSignOut(
  context: Pick<LogtoContext, 'config' | 'provider' | 'records' | 'session'>,
  options: SignOutOptions = {},
): (req: object, answer: HostAnswer) => Promise<void> {
  const { config, provider } = context;
  const allowedUrls = [config.postLogoutRedirectUri, config.callbackURL].filter((url): url is string => url !== undefined);
  const allowedOrigins = new Set(allowedUrls.map((url) => new URL(url).origin));
  let target = config.postLogoutRedirectUri;
  if (options.postLogoutRedirectUri !== undefined) {
    target = safePostLogoutRedirect(options.postLogoutRedirectUri, allowedUrls);
    if (target === undefined) {
      throw new LogtoError(
        'invalid_config',
        `passport-logto: signOut({ postLogoutRedirectUri }) must be a path or a URL on the app's origin, got "${options.postLogoutRedirectUri}".`,
      );
    }
  }

  return async (req, answer) => {
    const refused = refusal(req, allowedOrigins);
    if (refused !== undefined) {
      answer.json(403, { error: 'cross_site_sign_out', error_description: refused });
      return;
    }
    const record = await endSignIn(context, req);
    await logOutOfPassport(req);

    const parameters: Record<string, string> = { client_id: config.appId };
    if (record?.idToken) parameters.id_token_hint = record.idToken;
    if (target !== undefined) parameters.post_logout_redirect_uri = target;
    answer.redirect((await provider.endSessionUrl(parameters)).href);
  };
}

/** The sign-out handler for Express; see {@link hostSignOut}. */
export function signOutHandler(context: Pick<LogtoContext, 'config' | 'provider' | 'records' | 'session'>, options: SignOutOptions = {}): RequestHandler {
  const signOut = hostSignOut(context, options);
  return (req: Request, res: Response, next: NextFunction): void => {
    signOut(req, nodeAnswer(res)).catch(next);
  };
}
