/**
 * The whole flow, driven against an app of another host than Express (Fastify, Koa) that serves
 * the routes below the way that host's documentation writes a session-based Passport app. Each
 * host's test file builds its app and hands it here; what is checked is what a browser, an API
 * client or Logto sees.
 *
 * Routes of a host app:
 * - GET /sign-in, GET /callback (successReturnToOrRedirect '/', failureRedirect '/sign-in-failed', failureMessage)
 * - GET /sign-in-failed: 401 `{ messages }` from the session
 * - GET /: `{ user, authenticated }`, Passport's user or null and its isAuthenticated()
 * - GET /unloaded: the helper, not loaded by the route: `{ isLoaded, sub }` (sub from its claims, or null if they throw)
 * - GET /refresh-now: the helper, loaded, refreshes its tokens: `{ refreshed: true }`, or 401 once the sign-in ended
 * - GET /tokens: the helper, loaded: `{ idToken, refreshToken, authenticated }`
 * - GET /protected: the guard with `redirect: '/sign-in'`, then `{ claims }`; counts its runs in `hits`
 * - GET /api/profile: the guard (401 JSON), then `{ claims }`; counts its runs in `hits`
 * - GET /api/preloaded: the guard with an API resource token and organization tokens ready: `{ accessToken, organizations }`
 * - GET /api/items: the Bearer strategy (`logto-bearer`, no session): `{ sub, scopes }`
 * - GET /sign-out: the adapter's signOut(); POST /log-out: the adapter's logOut(), then `{ loggedOut: true }`
 * - GET /page: the adapter's silentSignIn({ retryAfter: 1 }), then `{ user }` (Passport's user id or null)
 * - POST /backchannel-logout: the adapter's backchannelLogout()
 * Every request goes through the adapter's session check (`session()`) after Passport's session.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { MemoryTokenStore, UserScope, type LogtoStrategyOptions } from '../../lib/index.js';
import { watchForCrashes } from './crash-watch.js';
import { getJson, refreshRequests, signIn, startSignIn } from './flows.js';
import { cancelAtProvider, endSessionAtProvider, TestBrowser, type TestResponse } from './http-client.js';
import { API_RESOURCE, organizationAudience, ORGANIZATIONS } from './provider/clients-and-users.js';
import { startProvider, type TestApp, type TestProvider } from './provider/index.js';

export interface HostApp {
  url: string;
  callbackURL: string;
  registered: TestApp;
  /** The name of the app's session cookie. */
  sessionCookie: string;
  /** The cookies that carry the session (the session cookie and, say, its signature). */
  sessionCookies: string[];
  /** How many times each guarded handler ran, by path. */
  hits: Map<string, number>;
  close(): Promise<void>;
}

/** What a host's test file builds its app from: its URL is chosen before the strategy exists. */
export interface HostAppSetup {
  /** The strategy's options for this app (endpoint, credentials, URLs, scopes, resources, tokenStore). */
  strategyOptions: LogtoStrategyOptions;
  /** The Bearer strategy's options. */
  bearerOptions: { endpoint: string; audience: string };
  registered: TestApp;
}

// As in Logto, API and organization permissions are scopes that the sign-in asks for.
const scopes = [UserScope.Email, UserScope.Organizations, UserScope.OrganizationRoles, 'read:items', 'read:members'];

/** Registers an app at `url` with the provider and gives the options to build its strategies from. */
export async function hostAppSetup(provider: TestProvider, url: string): Promise<HostAppSetup> {
  const callbackURL = `${url}/callback`;
  const registered = await provider.registerApp({
    redirectUris: [callbackURL],
    postLogoutRedirectUris: [`${url}/`],
    backchannelLogoutUri: `${url}/backchannel-logout`,
  });
  return {
    registered,
    strategyOptions: {
      endpoint: provider.endpoint,
      appId: registered.appId,
      appSecret: registered.appSecret,
      callbackURL,
      postLogoutRedirectUri: `${url}/`,
      jwksCooldown: 0,
      scopes,
      resources: [API_RESOURCE],
      backchannelLogout: true,
      // Neither koa-session's cookies nor @fastify/secure-session have a store to keep tokens in.
      tokenStore: new MemoryTokenStore(),
    },
    bearerOptions: { endpoint: provider.endpoint, audience: API_RESOURCE },
  };
}

/** A logout token for the user `sub`, as Logto posts it to the app's back-channel logout route. */
export async function logoutToken(provider: TestProvider, app: Pick<HostApp, 'registered'>, sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return provider.sign(
    {
      iss: provider.issuer,
      aud: app.registered.appId,
      iat: now,
      exp: now + 120,
      jti: `jti-${now}-${Math.random()}`,
      sub,
      events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
    },
    { typ: 'logout+jwt' },
  );
}

const page = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

/** Follows redirects as a browser's page navigation would; returns every hop. */
async function navigate(browser: TestBrowser, url: string): Promise<{ last: TestResponse; hops: TestResponse[] }> {
  const hops: TestResponse[] = [];
  let response = await browser.request(url, { headers: page, raw: true });
  hops.push(response);
  while (response.status >= 300 && response.status < 400 && response.location && hops.length < 15) {
    response = await browser.request(response.location, { headers: page, raw: true });
    hops.push(response);
  }
  return { last: response, hops };
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

interface UserBody {
  user: { id?: string } | null;
  authenticated?: boolean;
}

/** Another client that sends the session cookies `browser` holds now, on every request. */
function copyOfSession(browser: TestBrowser, app: HostApp): TestBrowser {
  const hostname = new URL(app.url).hostname;
  const header = app.sessionCookies
    .map((name) => [name, browser.cookie(hostname, name)] as const)
    .filter((entry): entry is readonly [string, string] => entry[1] !== undefined)
    .map(([name, value]) => `${name}=${value}`)
    .join('; ');
  assert.ok(header.includes(`${app.sessionCookie}=`), 'the browser holds a session cookie');
  const copy = new TestBrowser();
  const original = copy.request.bind(copy);
  copy.request = (url, init = {}) => original(url, { ...init, headers: { cookie: header, ...init.headers } });
  return copy;
}

/** Defines the tests of the whole flow for one host, on an app that `start` builds. */
export function describeHostFlows(name: string, start: (provider: TestProvider) => Promise<HostApp>): void {
  describe(name, () => {
    const crashWatch = watchForCrashes();
    let provider: TestProvider;
    let app: HostApp;
    before(async () => {
      provider = await startProvider();
      app = await start(provider);
    });
    after(async () => {
      await crashWatch.stop();
      await app?.close();
      await provider?.close();
      crashWatch.assertNone();
    });

    test('the guard turns a signed-out visitor away, and the route never runs for them', async () => {
      const browser = new TestBrowser();
      const api = await browser.get(`${app.url}/api/profile`);
      assert.equal(api.status, 401);
      assert.deepEqual(JSON.parse(api.text), { error: 'not_authenticated' });
      const pageResponse = await browser.get(`${app.url}/protected?from=guard`);
      assert.equal(pageResponse.status, 302);
      assert.equal(new URL(pageResponse.location ?? '', app.url).pathname, '/sign-in');
      assert.equal(app.hits.get('/api/profile') ?? 0, 0);
      assert.equal(app.hits.get('/protected') ?? 0, 0);
    });

    test('sign-in lands on the guarded page it started from, with the user, the helper and the tokens', async () => {
      const browser = new TestBrowser();
      await browser.get(`${app.url}/protected?from=guard`);
      const landing = new URL((await signIn(browser, provider, app)) ?? '', app.url);
      assert.equal(`${landing.pathname}${landing.search}`, '/protected?from=guard', 'the return path was kept');

      const home = await getJson<UserBody>(browser, `${app.url}/`);
      assert.equal(home.body.user?.id, provider.users.demo.sub, 'Passport has the user');
      const guarded = await getJson<{ claims: { sub: string } }>(browser, `${app.url}/protected?from=guard`);
      assert.equal(guarded.status, 200);
      assert.equal(guarded.body.claims.sub, provider.users.demo.sub);
      const profile = await getJson<{ claims: { sub: string } }>(browser, `${app.url}/api/profile`);
      assert.equal(profile.body.claims.sub, provider.users.demo.sub);
      const tokens = await getJson<{ idToken: string | null; refreshToken: string | null; authenticated: boolean }>(browser, `${app.url}/tokens`);
      assert.equal(tokens.body.authenticated, true);
      assert.equal(decodeJwt(tokens.body.idToken ?? '').sub, provider.users.demo.sub);
      assert.ok(tokens.body.refreshToken, 'a refresh token is kept');
    });

    test('the guard has an API resource token (a refresh) and organization tokens ready; the Bearer strategy accepts the API token', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      const refreshesBefore = refreshRequests(provider).length;
      const preloaded = await getJson<{ accessToken: string; organizations: Record<string, string> }>(browser, `${app.url}/api/preloaded`);
      assert.equal(preloaded.status, 200);
      assert.equal(decodeJwt(preloaded.body.accessToken).aud, API_RESOURCE);
      assert.equal(decodeJwt(preloaded.body.organizations[ORGANIZATIONS[0].id] ?? '').aud, organizationAudience(ORGANIZATIONS[0].id));
      assert.ok(refreshRequests(provider).length > refreshesBefore, 'the tokens came from refresh grants');

      const api = new TestBrowser();
      const items = await api.request(`${app.url}/api/items`, { headers: { authorization: `Bearer ${preloaded.body.accessToken}` } });
      assert.equal(items.status, 200, items.text);
      assert.equal((JSON.parse(items.text) as { sub: string }).sub, provider.users.demo.sub);
      const none = await api.get(`${app.url}/api/items`);
      assert.equal(none.status, 401);
      const forged = await api.request(`${app.url}/api/items`, { headers: { authorization: 'Bearer not.a.token' } });
      assert.equal(forged.status, 401);
    });

    test('logOut() signs out of the app only: the guard turns the browser away', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      const loggedOut = await browser.post(`${app.url}/log-out`, {});
      assert.equal(loggedOut.status, 200, loggedOut.text);
      assert.equal((await getJson<UserBody>(browser, `${app.url}/`)).body.user, null);
      assert.equal((await browser.get(`${app.url}/api/profile`)).status, 401);
      assert.equal((await getJson<{ authenticated: boolean }>(browser, `${app.url}/tokens`)).body.authenticated, false);
    });

    test('silent sign-in brings a visitor with a Logto session back signed in, without a Logto page', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      // The app's session is gone (expired, say); the Logto session stays.
      browser.forgetCookie(new URL(app.url).hostname, app.sessionCookie);
      assert.equal((await getJson<UserBody>(browser, `${app.url}/`)).body.user, null);
      // A first view only sets the silent sign-in's mark: a client that keeps no cookies never leaves.
      assert.equal((await browser.request(`${app.url}/page`, { headers: page, raw: true })).status, 200);
      const { last, hops } = await navigate(browser, `${app.url}/page`);
      assert.equal(last.status, 200, last.text);
      assert.equal((JSON.parse(last.text) as { user: string | null }).user, provider.users.demo.sub);
      const authorization = hops.map((hop) => hop.location ?? '').find((location) => location.startsWith(`${provider.issuer}/auth`));
      assert.equal(new URL(authorization ?? '').searchParams.get('prompt'), 'none');
      assert.ok(hops.every((hop) => hop.status !== 200 || hop.url.startsWith(app.url)), 'no page of Logto was shown');
    });

    test('silent sign-in of a visitor without a Logto session comes back to the same page, signed out', async () => {
      const browser = new TestBrowser();
      assert.equal((await browser.request(`${app.url}/page?x=1`, { headers: page, raw: true })).status, 200, 'a first view stays here');
      const { last, hops } = await navigate(browser, `${app.url}/page?x=1`);
      assert.equal(last.status, 200);
      assert.equal(last.url, `${app.url}/page?x=1`);
      assert.equal((JSON.parse(last.text) as { user: string | null }).user, null);
      assert.ok(hops.length > 1, 'it went through Logto');
      const again = await browser.request(`${app.url}/page?x=1`, { headers: page, raw: true });
      assert.equal(again.status, 200, 'no second attempt right away');
    });

    test('sign-out ends the sign-in and sends the browser to end the Logto session', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      const { idToken } = (await getJson<{ idToken: string }>(browser, `${app.url}/tokens`)).body;
      const signOut = await browser.get(`${app.url}/sign-out`);
      assert.equal(signOut.status, 302);
      const endSession = new URL(signOut.location ?? '');
      assert.equal(`${endSession.origin}${endSession.pathname}`, `${provider.issuer}/session/end`);
      assert.equal(endSession.searchParams.get('id_token_hint'), idToken);
      assert.equal(endSession.searchParams.get('post_logout_redirect_uri'), `${app.url}/`);
      assert.equal((await getJson<UserBody>(browser, `${app.url}/`)).body.user, null);
      assert.equal((await browser.get(`${app.url}/api/profile`)).status, 401);
      const back = await endSessionAtProvider(browser, signOut.location ?? '');
      assert.ok(back.startsWith(`${app.url}/`), `Logto sends the browser back (${back})`);

      const cross = await browser.request(`${app.url}/sign-out`, { headers: { 'sec-fetch-site': 'cross-site' } });
      assert.equal(cross.status, 403);
    });

    test('a cancelled sign-in fails with its error', async () => {
      const browser = new TestBrowser();
      const authorization = await startSignIn(browser, app);
      const callback = await cancelAtProvider(browser, authorization.href, app.callbackURL);
      const answer = await browser.get(callback);
      assert.equal(answer.status, 302);
      assert.equal(new URL(answer.location ?? '', app.url).pathname, '/sign-in-failed');
      const failed = await getJson<{ messages: string[] }>(browser, `${app.url}/sign-in-failed`);
      assert.equal(failed.status, 401);
      assert.match(failed.body.messages.join(' '), /access_denied|cancel/i);
      assert.equal((await getJson<UserBody>(browser, `${app.url}/`)).body.user, null);
    });

    test('back-channel logout ends the sign-in of the user Logto names', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app, '/sign-in', provider.users.alice);
      assert.equal((await browser.get(`${app.url}/api/profile`)).status, 200);
      const token = await logoutToken(provider, app, provider.users.alice.sub);
      const post = (body: string, type = 'application/x-www-form-urlencoded'): Promise<Response> =>
        fetch(`${app.url}/backchannel-logout`, { method: 'POST', headers: { 'content-type': type }, body });
      assert.equal((await post(new URLSearchParams({ logout_token: token }).toString())).status, 200);
      await eventually(async () => (await browser.get(`${app.url}/api/profile`)).status === 401, 'the sign-in to end');
      const replay = await post(new URLSearchParams({ logout_token: token }).toString());
      assert.equal(replay.status, 400);
      assert.match(((await replay.json()) as { error_description: string }).error_description, /already used/);
      assert.equal((await post('logout_token=not-a-jwt')).status, 400);
      assert.equal((await post(`logout_token=${'x'.repeat(20_000)}`)).status, 400, 'a body over 16 KiB is refused');
    });

    test("the session check loads the request's helper: client() answers without load(); a visitor's has no claims", async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      const body = (await getJson<{ isLoaded: boolean; sub: string | null }>(browser, `${app.url}/unloaded`)).body;
      assert.deepEqual(body, { isLoaded: true, sub: provider.users.demo.sub });
      const visitor = new TestBrowser();
      assert.equal((await getJson<{ isLoaded: boolean; sub: string | null }>(visitor, `${app.url}/unloaded`)).body.sub, null, 'a visitor has no claims');
    });

    test('a copy of the session cookie taken while signed in, replayed after sign-out, is signed out', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      const copy = copyOfSession(browser, app);
      const before = await getJson<UserBody>(copy, `${app.url}/`);
      assert.equal(before.body.user?.id, provider.users.demo.sub, 'the copy is signed in before sign-out');
      assert.equal(before.body.authenticated, true);
      assert.equal((await copy.get(`${app.url}/api/profile`)).status, 200);

      const signOut = await browser.get(`${app.url}/sign-out`);
      assert.equal(signOut.status, 302);

      const home = await getJson<UserBody>(copy, `${app.url}/`);
      assert.equal(home.body.user, null, "Passport's user is gone");
      assert.equal(home.body.authenticated, false);
      assert.equal((await copy.get(`${app.url}/api/profile`)).status, 401, 'the guard refuses');
      const hitsBefore = app.hits.get('/protected') ?? 0;
      const guarded = await copy.get(`${app.url}/protected`);
      assert.equal(guarded.status, 302);
      assert.equal(new URL(guarded.location ?? '', app.url).pathname, '/sign-in');
      assert.equal(app.hits.get('/protected') ?? 0, hitsBefore, 'the guarded route never ran');
      assert.equal((await getJson<{ authenticated: boolean }>(copy, `${app.url}/tokens`)).body.authenticated, false);
      assert.equal((await getJson<UserBody>(copy, `${app.url}/`)).body.user, null, 'and stays signed out');
    });

    test('a sign-in ended by Logto (its grant refused on refresh) leaves the user signed out on the next request', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app, '/sign-in', provider.users.alice);
      assert.equal((await getJson<UserBody>(browser, `${app.url}/`)).body.user?.id, provider.users.alice.sub);
      // Alice is suspended at Logto: the next refresh is refused with invalid_grant, ending the sign-in.
      provider.suspendUser(provider.users.alice.sub);
      const refresh = await browser.get(`${app.url}/refresh-now`);
      assert.equal(refresh.status, 401, refresh.text);
      const home = await getJson<UserBody>(browser, `${app.url}/`);
      assert.equal(home.body.user, null, "Passport's user is gone");
      assert.equal(home.body.authenticated, false);
      assert.equal((await browser.get(`${app.url}/api/profile`)).status, 401, 'the guard refuses');
    });
  });
}
