import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Express } from 'express';
import { decodeJwt } from 'jose';
import { LogtoError, UserScope, type LogtoStrategy } from '../../lib/index.js';
import { startApp, type RunningApp, type StartAppOptions } from '../support/app.js';
import { getJson, refreshRequests, signIn, type HomeBody } from '../support/flows.js';
import { TestBrowser } from '../support/http-client.js';
import { API_RESOURCE, startProvider, type TestProvider } from '../support/provider/index.js';

interface TokenBody {
  token?: string;
  claims?: Record<string, unknown>;
  error?: string;
  oauthError?: string;
}

/** Routes that expose the helper's results, the way an app's own routes would use them. */
function helperRoutes(express: Express, logto: LogtoStrategy): void {
  const send = (work: (client: ReturnType<LogtoStrategy['client']>, query: Record<string, string | undefined>) => Promise<unknown> | unknown) =>
    (req: import('express').Request, res: import('express').Response): void => {
      const query = req.query as Record<string, string | undefined>;
      // Outside the route guard, the helper loads the sign-in's record first, as the README says.
      logto
        .client(req)
        .load()
        .then((client) => work(client, query))
        .then(
          (body) => res.json(body),
          (error: unknown) => {
            if (!(error instanceof LogtoError)) throw error;
            res.status(error.code === 'not_authenticated' ? 401 : 400).json({ error: error.code, oauthError: error.oauthError, message: error.message });
          },
        );
    };
  express.get('/helper/token', send(async (client, { resource, org }) => {
    const token = await client.getAccessToken(resource, org);
    return { token, claims: resource || org ? await client.getAccessTokenClaims(resource, org) : undefined };
  }));
  express.get('/helper/organization', send(async (client, { org }) => ({
    token: await client.getOrganizationToken(org ?? ''),
    claims: await client.getOrganizationTokenClaims(org ?? ''),
  })));
  express.get('/helper/userinfo', send((client) => client.fetchUserInfo()));
  express.get('/helper/claims', send((client) => client.getIdTokenClaims()));
  express.get('/helper/refresh', send(async (client) => {
    await client.refresh();
    return { claims: client.getIdTokenClaims(), refreshToken: client.getRefreshToken() };
  }));
  express.get('/helper/state', send((client) => ({
    authenticated: client.isAuthenticated(),
    idToken: client.getIdToken() ?? null,
    refreshToken: client.getRefreshToken() ?? null,
  })));
  // The helper as a handler sees it before and after load(), without the guard.
  express.get('/helper/before-load', (req, res, next) => {
    const client = logto.client(req);
    const loadedAtOnce = client.isLoaded();
    let before: string;
    try {
      before = client.getIdToken() === undefined ? 'no ID token' : 'ID token';
    } catch (error) {
      before = error instanceof LogtoError ? error.code : 'other error';
    }
    client.load().then((loaded) => res.json({ loadedAtOnce, before, loadedAfter: loaded.isLoaded(), after: loaded.getIdToken() === undefined ? 'no ID token' : 'ID token' }), next);
  });
  express.get('/guarded-userinfo', logto.authenticated({ fetchUserInfo: true }), (req, res) => {
    res.json(req.logto?.userInfo);
  });
  // Everything ready before the handler, which sees req.logto typed as present.
  express.get(
    '/preloaded',
    logto.authenticated({ fetchUserInfo: true, accessToken: API_RESOURCE, organizationTokens: true }, (req, res) => {
      res.json({
        userInfo: req.logto.userInfo,
        audience: decodeJwt(req.logto.accessToken ?? '').aud,
        organizations: Object.fromEntries(Object.entries(req.logto.organizationTokens ?? {}).map(([id, token]) => [id, decodeJwt(token).aud])),
      });
    }),
  );
}

// As in Logto, API and organization permissions are scopes that the sign-in asks for.
const fullScopes = [UserScope.Email, UserScope.CustomData, UserScope.Organizations, UserScope.OrganizationRoles, UserScope.Roles, 'read:items', 'read:members'];

async function appOn(provider: TestProvider, options: StartAppOptions = {}): Promise<RunningApp> {
  return startApp(provider, {
    ...options,
    strategy: { scopes: fullScopes, resources: [API_RESOURCE], ...options.strategy },
    routes: helperRoutes,
  });
}

/** The refresh tokens sent, in order. */
const refreshTokensSent = (provider: TestProvider): string[] => refreshRequests(provider).map((request) => request.refreshToken);

describe('the helper with long-lived tokens', () => {
  let provider: TestProvider;
  let running: RunningApp;
  let browser: TestBrowser;
  before(async () => {
    provider = await startProvider();
    running = await appOn(provider);
    browser = new TestBrowser();
    await signIn(browser, provider, running);
  });
  after(async () => {
    await running.close();
    await provider.close();
  });

  test('signed out: not authenticated, no tokens, claims refused with not_authenticated', async () => {
    const stranger = new TestBrowser();
    assert.deepEqual((await getJson(stranger, `${running.url}/helper/state`)).body, { authenticated: false, idToken: null, refreshToken: null });
    const claims = await getJson<TokenBody>(stranger, `${running.url}/helper/claims`);
    assert.equal(claims.status, 401);
    assert.equal(claims.body.error, 'not_authenticated');
    const token = await getJson<TokenBody>(stranger, `${running.url}/helper/token?resource=${encodeURIComponent(API_RESOURCE)}`);
    assert.equal(token.body.error, 'not_authenticated');
  });

  test('ID token claims, and userinfo with the claims only it returns', async () => {
    const state = (await getJson<{ authenticated: boolean; idToken: string; refreshToken: string }>(browser, `${running.url}/helper/state`)).body;
    assert.equal(state.authenticated, true);
    assert.equal(decodeJwt(state.idToken).sub, provider.users.demo.sub);
    assert.equal(typeof state.refreshToken, 'string');

    const claims = (await getJson<Record<string, unknown>>(browser, `${running.url}/helper/claims`)).body;
    assert.equal(claims.sub, provider.users.demo.sub);
    assert.equal(claims.email, provider.users.demo.email);
    assert.deepEqual(claims.organizations, ['org-acme']);
    assert.equal(claims.custom_data, undefined, 'custom_data is not in the ID token');
    assert.equal(claims.picture, null, 'an empty claim that was asked for is null');
    assert.equal('phone_number' in claims, false, 'a claim that was not asked for is absent');

    const userInfo = (await getJson<Record<string, unknown>>(browser, `${running.url}/helper/userinfo`)).body;
    assert.equal(userInfo.sub, claims.sub);
    assert.equal(userInfo.email, claims.email);
    assert.deepEqual(userInfo.custom_data, { plan: 'pro' });
    assert.deepEqual((userInfo.organization_data as Array<{ id: string }>).map((org) => org.id), ['org-acme']);
  });

  test('the guard preloads userinfo, an API token and organization tokens in parallel, each refreshed once', async () => {
    const fresh = new TestBrowser();
    await signIn(fresh, provider, running);
    provider.resetRequests();
    const { status, body } = await getJson<{ userInfo: { sub: string }; audience: string; organizations: Record<string, string> }>(fresh, `${running.url}/preloaded`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.userInfo.sub, provider.users.demo.sub);
    assert.equal(body.audience, API_RESOURCE);
    assert.deepEqual(body.organizations, { 'org-acme': 'urn:logto:organization:org-acme' });
    const refreshes = refreshTokensSent(provider);
    assert.equal(refreshes.length, 2, 'one refresh for the API token, one for the organization token');
    assert.equal(new Set(refreshes).size, 2, 'never the same refresh token twice');
    provider.resetRequests();
    assert.equal((await getJson(fresh, `${running.url}/preloaded`)).status, 200);
    assert.equal(refreshTokensSent(provider).length, 0, 'the second time, all comes from the record');
  });

  test('the guard can fetch userinfo for the route', async () => {
    const userInfo = (await getJson<Record<string, unknown>>(browser, `${running.url}/guarded-userinfo`)).body;
    assert.deepEqual(userInfo.custom_data, { plan: 'pro' });
  });

  test('an API resource token: a JWT for that audience, cached without a network call', async () => {
    provider.resetRequests();
    const url = `${running.url}/helper/token?resource=${encodeURIComponent(API_RESOURCE)}`;
    const first = (await getJson<TokenBody>(browser, url)).body;
    assert.equal(first.claims?.aud, API_RESOURCE);
    assert.equal(first.claims?.sub, provider.users.demo.sub);
    assert.match(String(first.claims?.scope), /read:items/);
    assert.equal(refreshTokensSent(provider).length, 1);

    const second = (await getJson<TokenBody>(browser, url)).body;
    assert.equal(second.token, first.token);
    assert.equal(provider.requests.length, 1, 'no network call for a cached token');
  });

  test('the userinfo token is cached from sign-in', async () => {
    provider.resetRequests();
    const body = (await getJson<TokenBody>(browser, `${running.url}/helper/token`)).body;
    assert.equal(typeof body.token, 'string');
    assert.equal(provider.requests.length, 0);
  });

  test('an organization token, and an organization-scoped API token', async () => {
    const org = (await getJson<TokenBody>(browser, `${running.url}/helper/organization?org=org-acme`)).body;
    assert.equal(org.claims?.aud, 'urn:logto:organization:org-acme');
    assert.match(String(org.claims?.scope), /read:members/);

    const scoped = (await getJson<TokenBody>(browser, `${running.url}/helper/token?resource=${encodeURIComponent(API_RESOURCE)}&org=org-acme`)).body;
    assert.equal(scoped.claims?.aud, API_RESOURCE);
    assert.equal(scoped.claims?.organization_id, 'org-acme');
  });

  test('an organization the user is not a member of: not_organization_member, and the session survives', async () => {
    const refused = await getJson<TokenBody>(browser, `${running.url}/helper/organization?org=org-globex`);
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'not_organization_member');
    assert.equal(refused.body.oauthError, 'access_denied');
    assert.equal((await getJson<{ authenticated: boolean }>(browser, `${running.url}/helper/state`)).body.authenticated, true);
  });

  test('an undeclared resource is refused without a network call', async () => {
    provider.resetRequests();
    const refused = await getJson<TokenBody>(browser, `${running.url}/helper/token?resource=${encodeURIComponent('https://other.example')}`);
    assert.equal(refused.body.error, 'invalid_resource');
    assert.match(String((refused.body as { message?: string }).message), /resources/);
    assert.equal(provider.requests.length, 0);
  });

  test('refresh() replaces the ID token and saves the rotated refresh token', async () => {
    const before = (await getJson<{ idToken: string; refreshToken: string }>(browser, `${running.url}/helper/state`)).body;
    await new Promise((resolve) => setTimeout(resolve, 1100)); // a new iat
    const refreshed = (await getJson<{ claims: { iat: number; sub: string }; refreshToken: string }>(browser, `${running.url}/helper/refresh`)).body;
    assert.equal(refreshed.claims.sub, provider.users.demo.sub);
    assert.ok(refreshed.claims.iat > (decodeJwt(before.idToken).iat ?? 0));
    assert.notEqual(refreshed.refreshToken, before.refreshToken);
    const after = (await getJson<{ idToken: string; refreshToken: string }>(browser, `${running.url}/helper/state`)).body;
    assert.equal(after.refreshToken, refreshed.refreshToken, 'the rotated refresh token is in the session');
    assert.notEqual(after.idToken, before.idToken);
  });

  test('without logto.session(), isLoaded() is false and getters throw not_loaded until load(), on every instance alike', async () => {
    const first = await appOn(provider, { cookieName: 'shared.sid', sessionCheck: false });
    const second = await appOn(provider, { instanceOf: first.registered, store: first.store, cookieName: 'shared.sid', sessionCheck: false });
    try {
      const user = new TestBrowser();
      await signIn(user, provider, first);
      const there = await getJson<Record<string, unknown>>(user, `${second.url}/helper/before-load`);
      assert.deepEqual(there.body, { loadedAtOnce: false, before: 'not_loaded', loadedAfter: true, after: 'ID token' });
      // The instance that signed the user in holds a copy of the record, and answers the same.
      const here = await getJson<Record<string, unknown>>(user, `${first.url}/helper/before-load`);
      assert.deepEqual(here.body, there.body);
      const stranger = await getJson<Record<string, unknown>>(new TestBrowser(), `${second.url}/helper/before-load`);
      assert.deepEqual(stranger.body, { loadedAtOnce: true, before: 'no ID token', loadedAfter: true, after: 'no ID token' });
    } finally {
      await second.close();
      await first.close();
    }
  });

  test('without the organizations scope: missing_scope_organizations and no network call', async () => {
    const plain = await appOn(provider, { strategy: { scopes: [UserScope.Email] } });
    try {
      const other = new TestBrowser();
      await signIn(other, provider, plain);
      provider.resetRequests();
      const refused = await getJson<TokenBody>(other, `${plain.url}/helper/organization?org=org-acme`);
      assert.equal(refused.body.error, 'missing_scope_organizations');
      assert.equal(provider.requests.length, 0);
    } finally {
      await plain.close();
    }
  });
});

describe('the helper with expiring tokens', () => {
  let provider: TestProvider;
  before(async () => {
    provider = await startProvider({ accessTokenTtl: 2 });
  });
  after(() => provider.close());

  const expire = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 2100));

  test('an expired token is refreshed, and the rotated refresh token is kept', async () => {
    const running = await appOn(provider, { strategy: { accessTokenExpiryMargin: 0 } });
    try {
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      const url = `${running.url}/helper/token?resource=${encodeURIComponent(API_RESOURCE)}`;
      const first = (await getJson<TokenBody>(browser, url)).body;
      const before = (await getJson<{ refreshToken: string }>(browser, `${running.url}/helper/state`)).body.refreshToken;
      await expire();
      const second = (await getJson<TokenBody>(browser, url)).body;
      assert.notEqual(second.token, first.token);
      const after = (await getJson<{ refreshToken: string }>(browser, `${running.url}/helper/state`)).body.refreshToken;
      assert.equal(typeof after, 'string');
      assert.notEqual(after, before);
    } finally {
      await running.close();
    }
  });

  test('the safety margin refreshes a token before it expires', async () => {
    const running = await appOn(provider, { strategy: { accessTokenExpiryMargin: 5 } });
    try {
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      provider.resetRequests();
      // The userinfo token lives 2 s, less than the 5 s margin: it is never used as it is.
      await getJson(browser, `${running.url}/helper/token`);
      assert.equal(refreshTokensSent(provider).length, 1);
    } finally {
      await running.close();
    }
  });

  test('20 parallel requests that need new tokens: one refresh per token, never the same refresh token twice, all succeed', async () => {
    // Tokens that live 5 s: the ones the burst gets stay valid for the whole burst, even on a busy machine.
    const slower = await startProvider({ accessTokenTtl: 5 });
    const running = await appOn(slower, { strategy: { accessTokenExpiryMargin: 0 } });
    try {
      const browser = new TestBrowser();
      await signIn(browser, slower, running);
      await new Promise((resolve) => setTimeout(resolve, 5100));
      slower.resetRequests();
      const resource = encodeURIComponent(API_RESOURCE);
      const urls = Array.from({ length: 20 }, (_, i) => [
        `${running.url}/helper/token?resource=${resource}`,
        `${running.url}/helper/organization?org=org-acme`,
        `${running.url}/helper/token`,
        `${running.url}/helper/userinfo`,
      ][i % 4] ?? '');
      const results = await Promise.all(urls.map((url) => getJson<TokenBody>(browser, url)));
      for (const result of results) assert.equal(result.status, 200, JSON.stringify(result.body));
      const sent = refreshTokensSent(slower);
      assert.equal(sent.length, 3, 'one refresh each for the resource, the organization and userinfo');
      assert.equal(new Set(sent).size, sent.length, 'no refresh token was sent twice');

      // The grant is still alive once Logto's reuse leeway is over: it did not see a reuse.
      await new Promise((resolve) => setTimeout(resolve, 3500));
      const later = await getJson(browser, `${running.url}/helper/refresh`);
      assert.equal(later.status, 200, JSON.stringify(later.body));
    } finally {
      await running.close();
      await slower.close();
    }
  });

  test('a dead grant signs the user out of the helper: 401 from the API guard, a redirect from the page guard', async () => {
    const running = await appOn(provider, { strategy: { accessTokenExpiryMargin: 0 } });
    try {
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      const refreshToken = (await getJson<{ refreshToken: string }>(browser, `${running.url}/helper/state`)).body.refreshToken;
      const revoke = await fetch(`${provider.issuer}/token/revocation`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${running.logto.config.appId}:${running.logto.config.appSecret}`).toString('base64')}` },
        body: new URLSearchParams({ token: String(refreshToken), token_type_hint: 'refresh_token' }),
      });
      assert.equal(revoke.status, 200);
      await expire();

      const token = await getJson<TokenBody>(browser, `${running.url}/helper/token?resource=${encodeURIComponent(API_RESOURCE)}`);
      assert.equal(token.status, 401);
      assert.equal(token.body.error, 'not_authenticated');
      assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.authenticated, false);
      assert.equal((await browser.get(`${running.url}/api/profile`)).status, 401);
      const page = await browser.get(`${running.url}/protected`);
      assert.equal(page.status, 302);
      assert.equal(page.location, `${running.url}/sign-in`);
    } finally {
      await running.close();
    }
  });

  test('a suspended user: the next refresh ends the sign-in with not_authenticated', async () => {
    const running = await appOn(provider, { strategy: { accessTokenExpiryMargin: 0 } });
    try {
      const browser = new TestBrowser();
      await signIn(browser, provider, running, '/sign-in', provider.users.alice);
      provider.suspendUser(provider.users.alice.sub);
      await expire();
      const userInfo = await getJson<TokenBody>(browser, `${running.url}/guarded-userinfo`);
      assert.equal(userInfo.status, 401);
      assert.deepEqual(userInfo.body, { error: 'not_authenticated' });
    } finally {
      await running.close();
    }
  });
});
