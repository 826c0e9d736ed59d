import assert from 'node:assert/strict';
import type { RunningApp } from './app.js';

/** Where an app of any host listens: what the flows need of it. */
export type AppAddress = Pick<RunningApp, 'url' | 'callbackURL'>;
import { signInAtProvider, TestBrowser } from './http-client.js';
import type { TestProvider, TestUser } from './provider/index.js';

/** Starts a sign-in at the app and returns the authorization URL it redirects to. */
export async function startSignIn(browser: TestBrowser, app: AppAddress, path = '/sign-in'): Promise<URL> {
  const response = await browser.get(`${app.url}${path}`);
  assert.equal(response.status, 302, `sign-in should redirect, got ${response.status}: ${response.text}`);
  assert.ok(response.location, 'sign-in redirect has a location');
  return new URL(response.location);
}

/** The callback URL that Logto sends the browser to after the user signs in. */
export async function callbackAfterSignIn(
  browser: TestBrowser,
  provider: TestProvider,
  app: AppAddress,
  path = '/sign-in',
  user: TestUser = provider.users.demo,
): Promise<string> {
  const authorizationUrl = await startSignIn(browser, app, path);
  return signInAtProvider(browser, authorizationUrl.href, user, app.callbackURL);
}

/** Signs in completely; returns where the callback sent the browser. */
export async function signIn(
  browser: TestBrowser,
  provider: TestProvider,
  app: AppAddress,
  path = '/sign-in',
  user: TestUser = provider.users.demo,
): Promise<string | undefined> {
  const callback = await callbackAfterSignIn(browser, provider, app, path, user);
  const response = await browser.get(callback);
  assert.equal(response.status, 302, `callback should redirect, got ${response.status}: ${response.text}`);
  return response.location;
}

export async function getJson<T = Record<string, unknown>>(browser: TestBrowser, url: string): Promise<{ status: number; body: T }> {
  const response = await browser.get(url);
  return { status: response.status, body: JSON.parse(response.text) as T };
}

export interface HomeBody {
  user: Record<string, unknown> | null;
  sessionID: string;
  authenticated: boolean;
}

export interface SessionBody {
  sessionID: string;
  /** `logto` holds only the id of the sign-in's token record. */
  session: Record<string, unknown> & { logto?: unknown };
}

export interface TokensBody {
  idToken: string | null;
  refreshToken: string | null;
  authenticated: boolean;
}

/** The tokens the helper holds for the browser's session. */
export async function tokensOf(browser: TestBrowser, app: RunningApp): Promise<TokensBody> {
  return (await getJson<TokensBody>(browser, `${app.url}/tokens`)).body;
}

/** The refresh-token grants Logto received, with each one's refresh token and arrival time. */
export function refreshRequests(provider: TestProvider): Array<{ refreshToken: string; at: number }> {
  return provider.requests
    .filter((r) => r.path === '/oidc/token' && r.params.grant_type === 'refresh_token')
    .map((r) => ({ refreshToken: r.params.refresh_token ?? '', at: r.at }));
}

/** Logto never saw a refresh token again after its 3-second grace, so it revoked no grant. */
export function assertNoLateReuse(provider: TestProvider, grantsBefore: number): void {
  const firstSeen = new Map<string, number>();
  for (const { refreshToken, at } of refreshRequests(provider)) {
    const first = firstSeen.get(refreshToken) ?? at;
    firstSeen.set(refreshToken, first);
    assert.ok(at - first < 3000, `a refresh token was sent again ${at - first} ms after its first use`);
  }
  assert.equal(provider.revokedGrants(), grantsBefore, 'Logto revoked no grant');
}
