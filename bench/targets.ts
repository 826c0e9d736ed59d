/**
 * The parent's view of an app under test: starting it (registered with the provider under its
 * own redirect URI), signing in to it over HTTP as a browser would, and reading its cookies.
 */
import { signInAtProvider, TestBrowser } from '../test/support/http-client.js';
import type { RecordedRequest, TestProvider } from '../test/support/provider/index.js';
import { assertLoopback } from './load.js';
import { AppProcess, type CallgrindRun, type SessionMiddleware, type VariantConfig, type VariantName } from './protocol.js';
import { sessionCookieName } from './variants.js';

export interface TargetOptions {
  resource: string;
  scopes: string[];
  accessTokenExpiryMargin?: number;
  /** Bare Passport: the user /login logs in. */
  user?: Record<string, unknown>;
  /** Bare Passport: the token length /api/token reports (see VariantConfig). */
  tokenLength?: number;
  /** Bare Passport and passport-logto: express-session (the default) or cookie-session. */
  session?: SessionMiddleware;
  /** Under callgrind: how many times slower the app's clock runs (see VariantConfig). */
  clockScale?: number;
}

export interface Target {
  variant: VariantName;
  url: string;
  app: AppProcess;
  /** Where a sign-in starts, and the callback it ends at (both paths). */
  signInPath: string;
  callbackPath: string;
}

const routes: Record<VariantName, { signIn: string; callback: string }> = {
  bare: { signIn: '/sign-in', callback: '/' },
  'passport-logto': { signIn: '/sign-in', callback: '/callback' },
  'logto-express': { signIn: '/logto/sign-in', callback: '/logto/sign-in-callback' },
  'express-openid-connect': { signIn: '/login', callback: '/callback' },
};

export async function startTarget(provider: TestProvider, variant: VariantName, options: TargetOptions, callgrind?: CallgrindRun): Promise<Target> {
  const app = await AppProcess.start(callgrind);
  assertLoopback(app.url);
  const { signIn, callback } = routes[variant];
  const registered =
    variant === 'bare'
      ? { appId: 'unused', appSecret: 'unused' }
      : await provider.registerApp({ redirectUris: [`${app.url}${callback}`], postLogoutRedirectUris: [`${app.url}/`] });
  const config: VariantConfig = {
    variant,
    url: app.url,
    endpoint: provider.endpoint,
    issuer: provider.issuer,
    appId: registered.appId,
    appSecret: registered.appSecret,
    resource: options.resource,
    scopes: options.scopes,
    idTokenAlg: 'ES384',
    ...(options.accessTokenExpiryMargin === undefined ? {} : { accessTokenExpiryMargin: options.accessTokenExpiryMargin }),
    ...(options.user === undefined ? {} : { user: options.user }),
    ...(options.tokenLength === undefined ? {} : { tokenLength: options.tokenLength }),
    ...(options.session === undefined ? {} : { session: options.session }),
    ...(options.clockScale === undefined ? {} : { clockScale: options.clockScale }),
  };
  await app.send({ type: 'configure', config });
  return { variant, url: app.url, app, signInPath: signIn, callbackPath: callback };
}

/**
 * `count` passport-logto processes of one Logto application behind an imaginary load balancer:
 * one callback URL (the first instance's), sessions in connect-redis on one Redis, so that any
 * request of a browser may go to any instance (the browser's cookies ignore the port).
 */
export async function startInstances(
  provider: TestProvider,
  count: number,
  options: TargetOptions & { redisUrl: string; redisTokenStore: boolean },
): Promise<Target[]> {
  const apps = await Promise.all(Array.from({ length: count }, () => AppProcess.start()));
  try {
    for (const app of apps) assertLoopback(app.url);
    const callbackURL = `${apps[0]?.url}/callback`;
    const registered = await provider.registerApp({ redirectUris: [callbackURL], postLogoutRedirectUris: [`${apps[0]?.url}/`] });
    for (const app of apps) {
      const config: VariantConfig = {
        variant: 'passport-logto',
        url: app.url,
        endpoint: provider.endpoint,
        issuer: provider.issuer,
        appId: registered.appId,
        appSecret: registered.appSecret,
        resource: options.resource,
        scopes: options.scopes,
        idTokenAlg: 'ES384',
        callbackURL,
        redisUrl: options.redisUrl,
        redisTokenStore: options.redisTokenStore,
        ...(options.accessTokenExpiryMargin === undefined ? {} : { accessTokenExpiryMargin: options.accessTokenExpiryMargin }),
      };
      await app.send({ type: 'configure', config });
    }
  } catch (error) {
    await Promise.all(apps.map((app) => app.close()));
    throw error;
  }
  return apps.map((app) => ({ variant: 'passport-logto', url: app.url, app, signInPath: '/sign-in', callbackPath: '/callback' }));
}

function expectRedirect(response: { status: number; text: string; url: string; location: string | undefined }, what: string): string {
  if (response.status < 300 || response.status >= 400 || !response.location) {
    throw new Error(`${what}: expected a redirect, got ${response.status} at ${response.url}: ${response.text.slice(0, 300)}`);
  }
  return response.location;
}

/** Everything of a sign-in up to the callback, which is returned unrequested (its code is fresh). */
export async function prepareCallback(browser: TestBrowser, target: Target, provider: TestProvider): Promise<string> {
  const authorizationUrl = expectRedirect(await browser.get(`${target.url}${target.signInPath}`), `${target.variant} sign-in`);
  return signInAtProvider(browser, authorizationUrl, provider.users.demo, `${target.url}${target.callbackPath}`);
}

/** The app's callback request; a redirect back into the app is a completed sign-in. */
export async function completeCallback(browser: TestBrowser, target: Target, callbackUrl: string): Promise<void> {
  const location = expectRedirect(await browser.get(callbackUrl), `${target.variant} callback`);
  if (new URL(location).origin !== target.url || location.includes('failed')) {
    throw new Error(`${target.variant} callback: the sign-in failed (redirected to ${location})`);
  }
}

/** A complete sign-in in a new browser. */
export async function signIn(target: Target, provider: TestProvider): Promise<TestBrowser> {
  const browser = new TestBrowser();
  if (target.variant === 'bare') {
    expectRedirect(await browser.get(`${target.url}${target.signInPath}`), 'bare login');
    return browser;
  }
  await completeCallback(browser, target, await prepareCallback(browser, target, provider));
  return browser;
}

const appSessionCookies = ['appSession', ...Array.from({ length: 8 }, (_, index) => `appSession.${index}`)];

/** The app's own session cookie(s) as a Cookie header (the browser also holds the provider's). */
export function sessionCookie(browser: TestBrowser, target: Target): string {
  // cookie-session's cookie comes with its signature's; express-session's has none.
  const names = target.variant === 'express-openid-connect' ? appSessionCookies : [sessionCookieName, `${sessionCookieName}.sig`];
  const pairs = names.flatMap((name) => {
    const value = browser.cookie('127.0.0.1', name);
    return value === undefined ? [] : [`${name}=${value}`];
  });
  if (pairs.length === 0) throw new Error(`${target.variant}: no session cookie after sign-in`);
  return pairs.join('; ');
}

/** Bytes of the session that the browser carries in cookies (express-openid-connect). */
export function cookieBytes(browser: TestBrowser): number {
  return appSessionCookies.reduce((sum, name) => sum + (browser.cookie('127.0.0.1', name)?.length ?? 0), 0);
}

/** express-session's cookie is `s:<id>.<signature>`, URI-encoded. */
export function sessionIdOf(browser: TestBrowser): string {
  const value = browser.cookie('127.0.0.1', sessionCookieName);
  if (!value) throw new Error('no express-session cookie');
  const decoded = decodeURIComponent(value);
  return decoded.slice(2, decoded.lastIndexOf('.'));
}

/** Requests an app sent to the provider itself: not the browser's visits to /oidc/auth or sign-out. */
export function backChannel(requests: RecordedRequest[]): RecordedRequest[] {
  return requests.filter((request) => !request.path.startsWith('/oidc/auth') && request.path !== '/oidc/session/end');
}

export type RequestKind = 'discovery' | 'jwks' | 'token: code' | 'token: refresh' | 'other';

export function kindOf(request: RecordedRequest): RequestKind {
  if (request.path.endsWith('/.well-known/openid-configuration')) return 'discovery';
  if (request.path === '/oidc/jwks') return 'jwks';
  if (request.path === '/oidc/token' && request.params.grant_type === 'authorization_code') return 'token: code';
  if (request.path === '/oidc/token' && request.params.grant_type === 'refresh_token') return 'token: refresh';
  return 'other';
}

export function countKinds(requests: RecordedRequest[]): Record<RequestKind, number> {
  const counts: Record<RequestKind, number> = { discovery: 0, jwks: 0, 'token: code': 0, 'token: refresh': 0, other: 0 };
  for (const request of backChannel(requests)) counts[kindOf(request)] += 1;
  return counts;
}
