/**
 * The whole flow of a NestJS app against the test provider, shared by the NestJS 10 and 11 test
 * files: sign-in, the signed-in guard, tokens, refresh, organization tokens, sign-out, a
 * cancelled sign-in, and the Bearer strategy for an API route.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { callbackAfterSignIn, getJson, refreshRequests, signIn, startSignIn, tokensOf, type HomeBody } from '../support/flows.js';
import { cancelAtProvider, endSessionAtProvider, TestBrowser, type TestResponse } from '../support/http-client.js';
import { API_RESOURCE, startProvider, type TestProvider } from '../support/provider/index.js';
import { captureWarnings } from '../support/warnings.js';
import type * as NestApp from './nest-app.js';
import type { RunningNestApp } from './nest-app.js';

export interface NestFlowSetup {
  /** Loads nest-app.ts once the right NestJS is in place. */
  load(): Promise<typeof NestApp>;
  /** Nest's HTTP platform; default Express. */
  platform?: 'express' | 'fastify';
}

interface ExceptionBody {
  statusCode: number;
  error: string;
  message: string;
}

export function nestFlow({ load, platform = 'express' }: NestFlowSetup): void {
  let provider: TestProvider;
  let app: RunningNestApp;
  let loaded: Awaited<ReturnType<NestFlowSetup['load']>>;
  const apps: RunningNestApp[] = [];

  before(async () => {
    loaded = await load();
    provider = await startProvider();
    app = await loaded.startNestApp(provider, { platform });
    apps.push(app);
  });
  after(async () => {
    for (const running of apps) await running.close();
    await provider.close();
  });

  /** The LogtoError behind the last exception that reached the app's filter, checked to be an HttpException. */
  function lastException(running: RunningNestApp): { status: number; cause: unknown } {
    const exception = running.exceptions.at(-1);
    assert.ok(exception instanceof loaded.HttpException, `an HttpException reached the filter, got ${String(exception)}`);
    const http = exception as Error & { getStatus(): number };
    return { status: http.getStatus(), cause: http.cause };
  }

  describe('sign-in behind LogtoAuthGuard', () => {
    test('a full sign-in logs the user in through validate(), keeps the session, and the session holds only a reference', async () => {
      const browser = new TestBrowser();
      const authorization = await startSignIn(browser, app);
      assert.equal(`${authorization.origin}${authorization.pathname}`, `${provider.issuer}/auth`);
      assert.equal(authorization.searchParams.get('code_challenge_method'), 'S256');

      const landed = await signIn(browser, provider, app);
      assert.equal(landed, `${app.url}/`);
      const home = (await getJson<HomeBody>(browser, `${app.url}/`)).body;
      assert.equal(home.authenticated, true, 'the next request is signed in: the session was kept');
      assert.deepEqual(home.user, { id: provider.users.demo.sub, name: 'Demo User', email: provider.users.demo.email });

      const tokens = await tokensOf(browser, app);
      assert.equal(decodeJwt(String(tokens.idToken)).sub, provider.users.demo.sub);
      assert.equal(typeof tokens.refreshToken, 'string');
    });

    test('a cancelled sign-in reaches the exception filter as 401 authorization_failed', async () => {
      const browser = new TestBrowser();
      const authorization = await startSignIn(browser, app);
      const callback = await cancelAtProvider(browser, authorization.href, app.callbackURL);
      assert.equal(new URL(callback).searchParams.get('error'), 'access_denied');
      const response = await browser.get(callback);
      assert.equal(response.status, 401);
      const body = JSON.parse(response.text) as ExceptionBody;
      assert.equal(body.error, 'authorization_failed');
      assert.equal(body.statusCode, 401);
      const { status, cause } = lastException(app);
      assert.equal(status, 401);
      assert.ok(cause instanceof loaded.LogtoError && cause.code === 'authorization_failed' && cause.oauthError === 'access_denied');
      assert.equal((await getJson<HomeBody>(browser, `${app.url}/`)).body.authenticated, false);
    });

    test('Logto down at sign-in is 503 provider_unreachable, with a message that does not blame the user', async () => {
      const down = await startProvider();
      const running = await loaded.startNestApp(down, { name: 'logto-down', platform });
      apps.push(running);
      await down.pause();
      try {
        const response = await new TestBrowser().get(`${running.url}/sign-in`);
        assert.equal(response.status, 503);
        const body = JSON.parse(response.text) as ExceptionBody;
        assert.equal(body.error, 'provider_unreachable');
        assert.doesNotMatch(body.message, /127\.0\.0\.1/, 'the internal message stays in the cause, for logs');
        const { status, cause } = lastException(running);
        assert.equal(status, 503);
        assert.ok(cause instanceof loaded.LogtoError && cause.code === 'provider_unreachable');
      } finally {
        await down.close();
      }
    });

    test('a callback with an unknown state is 400 invalid_state, and nobody is signed in', async () => {
      const browser = new TestBrowser();
      const response = await browser.get(`${app.callbackURL}?code=abc&state=${'s'.repeat(43)}&iss=${encodeURIComponent(provider.issuer)}`);
      assert.equal(response.status, 400);
      assert.equal((JSON.parse(response.text) as ExceptionBody).error, 'invalid_state');
      assert.equal((await getJson<HomeBody>(browser, `${app.url}/`)).body.user, null);
    });
  });

  describe('LogtoAuthenticatedGuard', () => {
    test('a signed-out API request gets 401 not_authenticated through the exception filter', async () => {
      const response = await new TestBrowser().get(`${app.url}/api/profile`);
      assert.equal(response.status, 401);
      assert.deepEqual(JSON.parse(response.text), { statusCode: 401, error: 'not_authenticated', message: 'Sign in to use this route.' });
      const { cause } = lastException(app);
      assert.ok(cause instanceof loaded.LogtoError && cause.code === 'not_authenticated');
    });

    test('a signed-out page visit goes to sign-in and, signed in, comes back to the same URL', async () => {
      const browser = new TestBrowser();
      const turnedAway = await browser.get(`${app.url}/protected?tab=2`);
      assert.equal(turnedAway.status, 302);
      assert.equal(turnedAway.location, `${app.url}/sign-in`);
      const landed = await signIn(browser, provider, app);
      assert.equal(landed, `${app.url}/protected?tab=2`, 'the return path is kept');
      const page = (await getJson<{ page: string; sub: string; query: object }>(browser, `${app.url}/protected?tab=2`)).body;
      assert.deepEqual(page, { page: 'protected', sub: provider.users.demo.sub, query: { tab: '2' } });
    });

    test('signed in, the guard loads req.logto with the ID token claims', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      const { status, body } = await getJson<{ claims: { sub: string; email: string } }>(browser, `${app.url}/api/profile`);
      assert.equal(status, 200);
      assert.equal(body.claims.sub, provider.users.demo.sub);
      assert.equal(body.claims.email, provider.users.demo.email);
    });
  });

  describe('tokens', () => {
    test('an API resource token comes from a refresh, which rotates the refresh token; a second request reuses it', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      const before = await tokensOf(browser, app);
      const refreshesBefore = refreshRequests(provider).length;

      const first = await getJson<{ accessToken: string }>(browser, `${app.url}/api/token`);
      assert.equal(first.status, 200);
      const claims = decodeJwt(first.body.accessToken);
      assert.equal(claims.aud, API_RESOURCE);
      assert.equal(claims.sub, provider.users.demo.sub);
      assert.equal(refreshRequests(provider).length, refreshesBefore + 1, 'one refresh_token grant');
      const afterRefresh = await tokensOf(browser, app);
      assert.notEqual(afterRefresh.refreshToken, before.refreshToken, 'the rotated refresh token was stored');

      const second = await getJson<{ accessToken: string }>(browser, `${app.url}/api/token`);
      assert.equal(second.body.accessToken, first.body.accessToken, 'the cached token is reused');
      assert.equal(refreshRequests(provider).length, refreshesBefore + 1);
    });

    test('organization tokens for the user\'s organizations; another organization is 403 not_organization_member', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      const { status, body } = await getJson<{ organizationTokens: Record<string, string> }>(browser, `${app.url}/organizations`);
      assert.equal(status, 200);
      assert.deepEqual(Object.keys(body.organizationTokens), ['org-acme']);
      assert.equal(decodeJwt(body.organizationTokens['org-acme'] ?? '').aud, 'urn:logto:organization:org-acme');

      const refused = await browser.get(`${app.url}/organizations/globex`);
      assert.equal(refused.status, 403);
      assert.equal((JSON.parse(refused.text) as ExceptionBody).error, 'not_organization_member');
      assert.equal((await getJson<HomeBody>(browser, `${app.url}/`)).body.authenticated, true, 'the refusal does not sign the user out');
    });
  });

  describe('sign-out behind LogtoSignOutGuard', () => {
    test('revokes the refresh token, logs out of the session and ends the Logto session', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      const { refreshToken } = await tokensOf(browser, app);

      const response = await browser.get(`${app.url}/sign-out`);
      assert.equal(response.status, 302);
      const endSession = new URL(response.location ?? '');
      assert.equal(`${endSession.origin}${endSession.pathname}`, `${provider.issuer}/session/end`);
      assert.equal(endSession.searchParams.get('post_logout_redirect_uri'), `${app.url}/`);
      assert.equal(await endSessionAtProvider(browser, endSession.href), `${app.url}/`);

      const home = (await getJson<HomeBody>(browser, `${app.url}/`)).body;
      assert.equal(home.authenticated, false);
      assert.equal(home.user, null);
      assert.equal((await browser.get(`${app.url}/api/profile`)).status, 401);
      const refresh = await fetch(`${provider.issuer}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${app.registered.appId}:${app.registered.appSecret}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: String(refreshToken) }),
      });
      assert.equal(refresh.status, 400, 'the refresh token was revoked');

      // Logto's session ended too: the next sign-in asks for the password again.
      const authorization = await startSignIn(browser, app);
      const page = await browser.get(authorization.href);
      assert.ok(page.status === 200 || page.status === 303 || page.status === 302);
      assert.ok(!(page.location ?? '').startsWith(app.callbackURL), 'no silent sign-in after the sign-out');
    });

    test('a cross-site sign-out is refused with 403 and keeps the user signed in', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      const response = await browser.request(`${app.url}/sign-out`, { headers: { 'sec-fetch-site': 'cross-site' } });
      assert.equal(response.status, 403);
      assert.equal((await getJson<HomeBody>(browser, `${app.url}/`)).body.authenticated, true);
    });
  });

  describe('LogtoBearerGuard on an API route', () => {
    test('a Logto access token passes; none is 401 with a challenge; a missing scope is 403 insufficient_scope', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      const { accessToken } = (await getJson<{ accessToken: string }>(browser, `${app.url}/api/token`)).body;
      const api = new TestBrowser();

      const ok = await api.request(`${app.url}/api/items`, { headers: { authorization: `Bearer ${accessToken}` } });
      assert.equal(ok.status, 200);
      const body = JSON.parse(ok.text) as { user: { id: string }; scopes: string[] };
      assert.equal(body.user.id, provider.users.demo.sub);
      assert.ok(body.scopes.includes('read:items'));

      const none = await api.get(`${app.url}/api/items`);
      assert.equal(none.status, 401);
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer realm=/);

      const forged = await api.request(`${app.url}/api/items`, { headers: { authorization: 'Bearer not.a.token' } });
      assert.equal(forged.status, 401);
      assert.equal((JSON.parse(forged.text) as ExceptionBody).error, 'invalid_access_token');
      assert.match(forged.headers.get('www-authenticate') ?? '', /error="invalid_token"/);

      const scoped = await api.request(`${app.url}/api/items/delete`, { headers: { authorization: `Bearer ${accessToken}` } });
      assert.equal(scoped.status, 403);
      assert.match(scoped.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
      assert.equal((await getJson<HomeBody>(api, `${app.url}/`)).body.user, null, 'a bearer request starts no session');
    });
  });

  describe('logOut(req), silent sign-in and back-channel logout', () => {
    const page = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

    /** Follows redirects as a browser's page navigation; returns the last answer and every hop. */
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

    test('logOut(req) logs out of the app only: the helper and the session are signed out, the refresh token is revoked', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      const { refreshToken } = await tokensOf(browser, app);
      const loggedOut = await browser.request(`${app.url}/log-out`, { method: 'POST', headers: { origin: app.url } });
      assert.equal(loggedOut.status, 201);
      assert.deepEqual(JSON.parse(loggedOut.text), { loggedOut: true });
      const home = (await getJson<HomeBody>(browser, `${app.url}/`)).body;
      assert.equal(home.authenticated, false);
      assert.equal(home.user, null);
      assert.equal((await browser.get(`${app.url}/api/profile`)).status, 401);
      assert.equal((await tokensOf(browser, app)).refreshToken, null);
      const refresh = await fetch(`${provider.issuer}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${app.registered.appId}:${app.registered.appSecret}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: String(refreshToken) }),
      });
      assert.equal(refresh.status, 400, 'the refresh token was revoked');
    });

    test('a visitor whose app session is gone but whose Logto session is not comes back signed in from a page visit, through Logto', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      browser.forgetCookie('127.0.0.1', `sid-${new URL(app.url).port}`);
      assert.equal((await getJson<HomeBody>(browser, `${app.url}/`)).body.authenticated, false);
      // A first view only sets silent sign-in's mark: a client that keeps no cookies never leaves.
      const first = await navigate(browser, `${app.url}/?tab=1`);
      assert.equal(first.hops.length, 1, 'the first view stays here');

      const { last, hops } = await navigate(browser, `${app.url}/?tab=1`);
      assert.equal(last.status, 200);
      assert.equal(last.url, `${app.url}/?tab=1`, 'back on the same page');
      const home = JSON.parse(last.text) as HomeBody;
      assert.equal(home.authenticated, true, 'signed in without a Logto page');
      assert.equal(home.user?.id, provider.users.demo.sub);
      const detour = hops.map((hop) => hop.location ?? '').find((location) => location.startsWith(`${provider.issuer}/auth`));
      assert.equal(new URL(detour ?? 'http://x/').searchParams.get('prompt'), 'none');
      assert.ok(hops.every((hop) => hop.status !== 200 || hop.url.startsWith(app.url)), 'no page of Logto was shown');
    });

    test('silent sign-in brings a visitor without a Logto session back to the same page, signed out', async () => {
      const { last } = await navigate(new TestBrowser(), `${app.url}/?tab=3`);
      assert.equal(last.status, 200);
      assert.equal(last.url, `${app.url}/?tab=3`);
      assert.equal((JSON.parse(last.text) as HomeBody).user, null);
    });

    test('a back-channel logout token from Logto ends the user\'s sessions here', async () => {
      const browser = new TestBrowser();
      await signIn(browser, provider, app, '/sign-in', provider.users.alice);
      assert.equal((await getJson<HomeBody>(browser, `${app.url}/`)).body.authenticated, true);
      const now = Math.floor(Date.now() / 1000);
      const token = await provider.sign(
        {
          iss: provider.issuer,
          aud: app.registered.appId,
          iat: now,
          exp: now + 120,
          jti: `jti-${now}-${Math.random()}`,
          sub: provider.users.alice.sub,
          events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
        },
        { typ: 'logout+jwt' },
      );
      const post = (): Promise<Response> =>
        fetch(`${app.url}/backchannel-logout`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ logout_token: token }),
        });
      assert.equal((await post()).status, 200);
      assert.equal((await browser.get(`${app.url}/api/profile`)).status, 401, 'the sign-in ended');
      // The session is gone from the store (express-session's, or @fastify/session's), Passport's user with it.
      const home = (await getJson<HomeBody>(browser, `${app.url}/`)).body;
      assert.equal(home.user, null);
      assert.equal(home.authenticated, false);
      assert.equal((await post()).status, 400, 'a replayed logout token is refused');
    });
  });

  describe('a plain AuthGuard on the callback', () => {
    test('is never silent: the session stays signed out and the developer is told once what to add', async () => {
      const plain = await loaded.startNestApp(provider, { name: 'logto-plain', callbackGuard: 'plain', platform });
      apps.push(plain);
      const capture = captureWarnings(['PASSPORT_LOGTO_LOGIN_NOT_CALLED']);
      try {
        for (let round = 0; round < 2; round += 1) {
          const browser = new TestBrowser();
          const landed = await signIn(browser, provider, plain);
          assert.equal(landed, `${plain.url}/`, 'the route ran with req.user set for that one request');
          const home = (await getJson<HomeBody>(browser, `${plain.url}/`)).body;
          assert.equal(home.authenticated, false, 'AuthGuard does not log in: the session is not kept');
          assert.equal((await browser.get(`${plain.url}/api/profile`)).status, 401);
        }
        const told = await capture.stop();
        assert.equal(told.length, 1, 'told once');
        assert.match(told[0]?.message ?? '', /super\.logIn\(request\)/);
      } finally {
        await capture.stop();
      }
    });
  });

  describe('the guard of NestJS\'s session documentation (AuthGuard, then super.logIn())', () => {
    test('signs in and keeps the session; a cancelled sign-in is refused', async () => {
      const docs = await loaded.startNestApp(provider, { name: 'logto-docs', callbackGuard: 'docs', platform });
      apps.push(docs);
      const browser = new TestBrowser();
      assert.equal(await signIn(browser, provider, docs), `${docs.url}/`);
      const home = (await getJson<HomeBody>(browser, `${docs.url}/`)).body;
      assert.equal(home.authenticated, true);
      assert.equal(home.user?.id, provider.users.demo.sub);
      assert.equal((await getJson<{ claims: { sub: string } }>(browser, `${docs.url}/api/profile`)).body.claims.sub, provider.users.demo.sub);

      const visitor = new TestBrowser();
      const authorization = await startSignIn(visitor, docs);
      const cancelled = await visitor.get(await cancelAtProvider(visitor, authorization.href, docs.callbackURL));
      assert.equal(cancelled.status, 401, 'AuthGuard refuses the failed sign-in');
      assert.equal((await getJson<HomeBody>(visitor, `${docs.url}/`)).body.authenticated, false);
    });
  });

  describe('two tabs', () => {
    test('two sign-ins at once in one browser both land signed in', async () => {
      const browser = new TestBrowser();
      const firstTab = await callbackAfterSignIn(browser, provider, app);
      const secondTab = await callbackAfterSignIn(browser, provider, app);
      assert.equal((await browser.get(secondTab)).location, `${app.url}/`);
      assert.equal((await browser.get(firstTab)).location, `${app.url}/`);
      assert.equal((await getJson<HomeBody>(browser, `${app.url}/`)).body.authenticated, true);
    });
  });
}
