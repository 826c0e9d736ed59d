// What Logto's own SDKs offer (issue 13, items 4 to 8), against the test provider with real
// Express and Passport: fresh scopes after a role change, magic links, Logto's names, discovery
// metadata and a custom fetch, and the user's organizations.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readFile } from 'node:fs/promises';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import passportModule from 'passport';
import session from 'express-session';
import { decodeJwt } from 'jose';
import * as logtoJs from '@logto/js';
import * as passportLogto from '../../lib/index.js';
import {
  FirstScreen,
  LogtoBearerStrategy,
  LogtoError,
  LogtoStrategy,
  Prompt,
  ReservedScope,
  UserScope,
  buildOrganizationUrn,
  getOrganizationIdFromUrn,
  organizationAudience,
  type LogtoFetch,
} from '../../lib/index.js';
import { organizationsOf } from '../../lib/logto/claims.js';
import { startExample, type RunningExample } from '../../example/start.js';
import { startApp, type RunningApp, type StartAppOptions } from '../support/app.js';
import { getJson, signIn, startSignIn } from '../support/flows.js';
import { parseForm, signInAtProvider, TestBrowser } from '../support/http-client.js';
import { API_RESOURCE, ORGANIZATIONS_RESOURCE, startProvider, type TestProvider } from '../support/provider/index.js';

type Client = ReturnType<LogtoStrategy['client']>;
type Query = Record<string, string | undefined>;

/** The app's own Passport, as startApp hands it to `routes`. */
interface AppPassport {
  authenticate(name: string, options?: object): (req: Request, res: Response, next: NextFunction) => void;
}

/** Routes that expose the helper the way an app's own routes use it; LogtoErrors come back as JSON. */
function featureRoutes(app: Express, logto: LogtoStrategy, passport: AppPassport): void {
  const send = (work: (client: Client, query: Query) => Promise<unknown> | unknown) => (req: Request, res: Response): void => {
    logto
      .client(req)
      .load()
      .then((client) => work(client, req.query as Query))
      .then(
        (body) => res.json(body ?? null),
        (error: unknown) => {
          if (!(error instanceof LogtoError)) throw error;
          res.status(400).json({ error: error.code, message: error.message });
        },
      );
  };
  const force = (query: Query) => ({ forceRefresh: query.force === '1' });
  app.get('/t/token', send(async (client, query) => ({ token: await client.getAccessToken(query.resource, query.org, force(query)) })));
  app.get('/t/claims', send((client, query) => client.getAccessTokenClaims(query.resource, query.org, force(query))));
  app.get('/t/organization', send(async (client, query) => ({
    token: await client.getOrganizationToken(query.org ?? '', force(query)),
    claims: await client.getOrganizationTokenClaims(query.org ?? ''),
  })));
  app.get('/t/clear', send(async (client, query) => {
    await client.clearAccessTokens({
      ...(query.resource === undefined ? {} : { resource: query.resource }),
      ...(query.org === undefined ? {} : { organizationId: query.org }),
    });
    return { idToken: client.getIdToken() ?? null, refreshToken: client.getRefreshToken() ?? null };
  }));
  app.get('/t/state', send((client) => ({ idToken: client.getIdToken() ?? null, refreshToken: client.getRefreshToken() ?? null })));
  app.get('/t/id-claims', send((client) => client.getIdTokenClaims()));
  app.get('/t/organizations', send((client) => client.getOrganizations()));
  app.get('/t/fetch-organizations', send((client) => client.fetchOrganizations()));
  app.get('/t/userinfo', send((client) => client.fetchUserInfo()));
  // A magic link, as an app mails it: /magic?token=...&email=...
  app.get('/magic', (req, res, next) => {
    const { token, email } = req.query;
    passport.authenticate(logto.name, {
      ...(typeof token === 'string' ? { oneTimeToken: token } : {}),
      ...(typeof email === 'string' ? { loginHint: email } : {}),
    })(req, res, next);
  });
  // An app that forgot to check what req.query holds.
  app.get('/sign-in-hint', (req, res, next) => {
    passport.authenticate(logto.name, { loginHint: req.query.hint as string })(req, res, next);
  });
}

const appScopes = [UserScope.Email, UserScope.Organizations, UserScope.OrganizationRoles, 'read:items', 'write:items', 'read:members', 'write:members'];

async function appOn(provider: TestProvider, options: StartAppOptions = {}): Promise<RunningApp> {
  return startApp(provider, {
    ...options,
    strategy: { scopes: appScopes, resources: [API_RESOURCE], ...options.strategy },
    routes: featureRoutes,
  });
}

interface TokenBody {
  token: string;
}

/** The refresh_token grants the provider saw, as `<resource>#<organization>`. */
const refreshesOf = (provider: TestProvider): string[] =>
  provider.requests
    .filter((r) => r.path === '/oidc/token' && r.params.grant_type === 'refresh_token')
    // The provider turns an organization token request into one for Logto's reserved resource.
    .map((r) => `${r.params.resource === ORGANIZATIONS_RESOURCE ? '' : (r.params.resource ?? '')}#${r.params.organization_id ?? ''}`);

const q = (value: string): string => encodeURIComponent(value);

describe('fresh scopes: clearAccessTokens() and forceRefresh', () => {
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

  /** Fills the cache with the four kinds of access token, then clears `query` and asks for all four again. */
  async function refreshedAfterClearing(query: string): Promise<string[]> {
    const kinds = [
      '/t/token',
      `/t/token?resource=${q(API_RESOURCE)}`,
      '/t/token?org=org-acme',
      `/t/token?resource=${q(API_RESOURCE)}&org=org-acme`,
    ];
    for (const path of kinds) assert.equal((await getJson(browser, `${running.url}${path}`)).status, 200, path);
    const before = refreshesOf(provider).length;
    const cleared = await getJson<{ idToken: string; refreshToken: string }>(browser, `${running.url}/t/clear${query}`);
    assert.equal(cleared.status, 200);
    for (const path of kinds) assert.equal((await getJson(browser, `${running.url}${path}`)).status, 200, path);
    return refreshesOf(provider).slice(before).sort();
  }

  test('with nothing named, every cached access token goes; the ID and refresh tokens stay', async () => {
    const state = (await getJson<{ idToken: string; refreshToken: string }>(browser, `${running.url}/t/state`)).body;
    const cleared = (await getJson<{ idToken: string; refreshToken: string }>(browser, `${running.url}/t/clear`)).body;
    assert.equal(cleared.idToken, state.idToken);
    assert.equal(cleared.refreshToken, state.refreshToken);
    assert.deepEqual(await refreshedAfterClearing(''), ['#', '#org-acme', `${API_RESOURCE}#`, `${API_RESOURCE}#org-acme`].sort());
  });

  test('a resource: its tokens, organization-scoped ones included', async () => {
    assert.deepEqual(await refreshedAfterClearing(`?resource=${q(API_RESOURCE)}`), [`${API_RESOURCE}#`, `${API_RESOURCE}#org-acme`]);
  });

  test('an organization: its organization token and its organization-scoped API tokens', async () => {
    assert.deepEqual(await refreshedAfterClearing('?org=org-acme'), ['#org-acme', `${API_RESOURCE}#org-acme`]);
  });

  test('both: that one organization-scoped API token', async () => {
    assert.deepEqual(await refreshedAfterClearing(`?resource=${q(API_RESOURCE)}&org=org-acme`), [`${API_RESOURCE}#org-acme`]);
  });

  test('an undeclared resource or an empty organization ID is refused; signed out there is nothing to clear', async () => {
    const undeclared = await getJson<{ error: string }>(browser, `${running.url}/t/clear?resource=${q('https://other.example.com')}`);
    assert.equal(undeclared.body.error, 'invalid_resource');
    const empty = await getJson<{ error: string }>(browser, `${running.url}/t/clear?org=`);
    assert.equal(empty.body.error, 'invalid_resource');
    const stranger = await getJson(new TestBrowser(), `${running.url}/t/clear`);
    assert.equal(stranger.status, 200);
  });

  test('forceRefresh gets a new token though the cached one is valid, on every getter', async () => {
    const first = (await getJson<TokenBody>(browser, `${running.url}/t/token?resource=${q(API_RESOURCE)}`)).body.token;
    const cached = (await getJson<TokenBody>(browser, `${running.url}/t/token?resource=${q(API_RESOURCE)}`)).body.token;
    assert.equal(cached, first);
    const forced = (await getJson<TokenBody>(browser, `${running.url}/t/token?resource=${q(API_RESOURCE)}&force=1`)).body.token;
    assert.notEqual(forced, first);
    const claims = (await getJson<{ jti: string }>(browser, `${running.url}/t/claims?resource=${q(API_RESOURCE)}&force=1`)).body;
    assert.notEqual(claims.jti, decodeJwt(forced).jti);
    const organization = (await getJson<TokenBody>(browser, `${running.url}/t/organization?org=org-acme`)).body.token;
    const forcedOrganization = (await getJson<TokenBody>(browser, `${running.url}/t/organization?org=org-acme&force=1`)).body.token;
    assert.notEqual(forcedOrganization, organization);
  });

  test('after a role change the cached token keeps the old scopes until cleared', async () => {
    const roles = provider.users.demo.organizationRoles;
    const scopeOf = async (): Promise<string> =>
      (await getJson<{ claims: { scope: string } }>(browser, `${running.url}/t/organization?org=org-acme`)).body.claims.scope;
    assert.equal(await scopeOf(), 'read:members');
    roles['org-acme'] = ['admin'];
    try {
      assert.equal(await scopeOf(), 'read:members', 'the cached token was issued before the change');
      await getJson(browser, `${running.url}/t/clear?org=org-acme`);
      assert.deepEqual((await scopeOf()).split(' ').sort(), ['read:members', 'write:members']);
    } finally {
      roles['org-acme'] = ['member'];
    }
  });
});

describe('clearAccessTokens() persists for every instance', () => {
  let provider: TestProvider;
  let first: RunningApp;
  let second: RunningApp;
  before(async () => {
    provider = await startProvider();
    const store = new session.MemoryStore();
    first = await appOn(provider, { store, cookieName: 'sid-shared' });
    second = await appOn(provider, { store, cookieName: 'sid-shared', instanceOf: first.registered });
  });
  after(async () => {
    await first.close();
    await second.close();
    await provider.close();
  });

  test('another instance that reads the record afterwards gets a new token for what was cleared, and the cached one for the rest', async () => {
    const browser = new TestBrowser();
    await signIn(browser, provider, first);
    const apiToken = (await getJson<TokenBody>(browser, `${first.url}/t/token?resource=${q(API_RESOURCE)}`)).body.token;
    const organizationToken = (await getJson<TokenBody>(browser, `${first.url}/t/token?org=org-acme`)).body.token;
    await getJson(browser, `${first.url}/t/clear?resource=${q(API_RESOURCE)}`);
    const refreshes = refreshesOf(provider).length;
    // The second instance has not served this sign-in before, so it reads the shared store.
    const api = (await getJson<TokenBody>(browser, `${second.url}/t/token?resource=${q(API_RESOURCE)}`)).body.token;
    const organization = (await getJson<TokenBody>(browser, `${second.url}/t/token?org=org-acme`)).body.token;
    assert.notEqual(api, apiToken);
    assert.equal(organization, organizationToken);
    assert.deepEqual(refreshesOf(provider).slice(refreshes), [`${API_RESOURCE}#`]);
  });
});

describe('magic links: oneTimeToken and loginHint', () => {
  let provider: TestProvider;
  let running: RunningApp;
  before(async () => {
    provider = await startProvider();
    running = await appOn(provider);
  });
  after(async () => {
    await running.close();
    await provider.close();
  });

  test('a one-time token with its email signs the user in without a password, once', async () => {
    const email = provider.users.demo.email ?? '';
    const token = provider.issueOneTimeToken(email);
    const browser = new TestBrowser();
    const authorization = await startSignIn(browser, running, `/magic?token=${q(token)}&email=${q(email)}`);
    assert.equal(authorization.searchParams.get('one_time_token'), token);
    assert.equal(authorization.searchParams.get('login_hint'), email);
    // No login form on the way: the provider goes straight back to the app.
    const { chain } = await browser.follow(authorization.href, { stopAt: (url) => url.startsWith(running.callbackURL) });
    const callback = chain.at(-1) ?? '';
    assert.ok(callback.startsWith(running.callbackURL), `reached ${callback}`);
    assert.equal((await browser.get(callback)).status, 302);
    const claims = (await getJson<{ sub: string }>(browser, `${running.url}/t/id-claims`)).body;
    assert.equal(claims.sub, provider.users.demo.sub);

    const again = new TestBrowser();
    const second = await startSignIn(again, running, `/magic?token=${q(token)}&email=${q(email)}`);
    const { response, chain: secondChain } = await again.follow(second.href, { stopAt: (url) => url.startsWith(running.callbackURL) });
    assert.ok(!(secondChain.at(-1) ?? '').startsWith(running.callbackURL), 'a used token signs nobody in');
    assert.ok(parseForm(response.text, response.url, 'login'), 'the provider asks for a password instead');
    assert.match(response.text, /already used/);
  });

  test('a token sent with another email signs nobody in', async () => {
    const token = provider.issueOneTimeToken(provider.users.demo.email ?? '');
    const browser = new TestBrowser();
    const authorization = await startSignIn(browser, running, `/magic?token=${q(token)}&email=${q(provider.users.alice.email ?? '')}`);
    const { chain } = await browser.follow(authorization.href, { stopAt: (url) => url.startsWith(running.callbackURL) });
    assert.ok(!(chain.at(-1) ?? '').startsWith(running.callbackURL));
  });

  test('a one-time token without loginHint is refused before Logto, with a message that says what to add', async () => {
    const browser = new TestBrowser();
    const response = await browser.get(`${running.url}/magic?token=abc`);
    assert.equal(response.status, 500);
    const error = running.errors.at(-1);
    assert.ok(error instanceof LogtoError);
    assert.equal(error.code, 'invalid_config');
    assert.match(error.message, /oneTimeToken.*loginHint/);
  });

  test('an array from the query string is refused, not sent as "a,b"', async () => {
    const response = await new TestBrowser().get(`${running.url}/sign-in-hint?hint=a&hint=b`);
    assert.equal(response.status, 500);
    const error = running.errors.at(-1);
    assert.ok(error instanceof LogtoError && error.code === 'invalid_config' && /loginHint/.test(error.message));
  });
});

describe('includeReservedScopes', () => {
  let provider: TestProvider;
  before(async () => {
    provider = await startProvider();
  });
  after(() => provider.close());

  test('by default openid, offline_access and profile are sent', async () => {
    const running = await appOn(provider);
    try {
      const scopes = (await startSignIn(new TestBrowser(), running)).searchParams.get('scope')?.split(' ') ?? [];
      for (const scope of ['openid', 'offline_access', 'profile']) assert.ok(scopes.includes(scope), scope);
    } finally {
      await running.close();
    }
  });

  test('false keeps offline_access and profile out: no refresh token, no profile claims, and a token getter says why', async () => {
    const running = await appOn(provider, { strategy: { includeReservedScopes: false, scopes: [UserScope.Email] } });
    try {
      const browser = new TestBrowser();
      assert.deepEqual((await startSignIn(browser, running)).searchParams.get('scope'), 'openid email');
      await signIn(browser, provider, running);
      const state = (await getJson<{ refreshToken: string | null }>(browser, `${running.url}/t/state`)).body;
      assert.equal(state.refreshToken, null);
      const claims = (await getJson<Record<string, unknown>>(browser, `${running.url}/t/id-claims`)).body;
      assert.equal(claims.email, provider.users.demo.email);
      assert.equal('name' in claims, false, 'no profile scope, no name claim');
      const userInfo = await getJson<{ sub: string }>(browser, `${running.url}/t/userinfo`);
      assert.equal(userInfo.body.sub, provider.users.demo.sub, 'the userinfo token from the sign-in still works');
      const token = await getJson<{ error: string; message: string }>(browser, `${running.url}/t/token?resource=${q(API_RESOURCE)}`);
      assert.equal(token.body.error, 'not_authenticated');
      assert.match(token.body.message, /includeReservedScopes/);
    } finally {
      await running.close();
    }
  });

  test('must be a boolean', () => {
    assert.throws(
      () => new LogtoStrategy({ endpoint: provider.endpoint, appId: 'a', appSecret: 's', callbackURL: 'http://127.0.0.1/cb', includeReservedScopes: 'no' as unknown as boolean }),
      (error: unknown) => error instanceof LogtoError && error.code === 'invalid_config' && /includeReservedScopes/.test(error.message),
    );
  });
});

describe("Logto's names", () => {
  test('the same values as Logto\'s SDK (@logto/js)', () => {
    for (const [name, value] of Object.entries(logtoJs.UserScope)) {
      assert.equal((UserScope as Record<string, string>)[name], value, `UserScope.${name}`);
    }
    assert.equal(UserScope.Sessions, 'urn:logto:scope:sessions');
    assert.equal(UserScope.Address, 'address');
    assert.deepEqual({ ...ReservedScope }, { ...logtoJs.ReservedScope });
    assert.deepEqual({ ...Prompt }, { ...logtoJs.Prompt });
    assert.deepEqual(passportLogto.ReservedResource.Organization, logtoJs.ReservedResource.Organization);
    assert.equal(passportLogto.organizationUrnPrefix, logtoJs.organizationUrnPrefix);
    assert.equal(buildOrganizationUrn('org-1'), logtoJs.buildOrganizationUrn('org-1'));
    assert.equal(getOrganizationIdFromUrn('urn:logto:organization:org-1'), logtoJs.getOrganizationIdFromUrn('urn:logto:organization:org-1'));
    assert.equal(organizationAudience, buildOrganizationUrn);
    // Every screen but Logto's deprecated 'signIn', and nothing Logto does not know.
    const logtoScreens: readonly logtoJs.FirstScreen[] = Object.values(FirstScreen);
    assert.deepEqual([...logtoScreens].sort(), ['identifier:register', 'identifier:sign_in', 'register', 'reset_password', 'sign_in', 'single_sign_on']);
  });

  test('getOrganizationIdFromUrn refuses what is not an organization URN, with a LogtoError', () => {
    for (const urn of ['org-1', 'urn:logto:organization:', 'https://api.example.com']) {
      assert.throws(() => getOrganizationIdFromUrn(urn), (error: unknown) => error instanceof LogtoError && error.code === 'invalid_resource', urn);
    }
  });

  test('code from Logto\'s docs sends what it says', async () => {
    const provider = await startProvider();
    const running = await appOn(provider, { strategy: { scopes: [UserScope.Email, UserScope.Address, UserScope.Sessions], prompt: [Prompt.Login, Prompt.Consent] } });
    try {
      const url = await startSignIn(new TestBrowser(), running);
      assert.equal(url.searchParams.get('prompt'), 'login consent');
      assert.deepEqual(url.searchParams.get('scope')?.split(' '), ['openid', 'offline_access', 'profile', 'email', 'address', 'urn:logto:scope:sessions']);
    } finally {
      await running.close();
      await provider.close();
    }
  });

  test('the CommonJS entry declares every value the ES module exports (core.cts lists them, index.cts re-exports it)', async () => {
    const entry = await readFile(new URL('../../lib/index.cts', import.meta.url), 'utf8');
    assert.match(entry, /^export \* from '\.\/core\.cjs';$/m);
    const declarations = await readFile(new URL('../../lib/core.cts', import.meta.url), 'utf8');
    for (const name of Object.keys(passportLogto)) {
      assert.match(declarations, new RegExp(`export declare const ${name}:`), name);
    }
  });
});

describe('getOidcConfig() and the fetch option', () => {
  let provider: TestProvider;
  before(async () => {
    provider = await startProvider();
  });
  after(() => provider.close());

  test('getOidcConfig() is Logto\'s discovery document, with the SDK\'s camelCase endpoints, a copy per call', async () => {
    const running = await appOn(provider);
    try {
      const served = (await (await fetch(`${provider.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
      const config = await running.logto.getOidcConfig();
      for (const [field, value] of Object.entries(served)) assert.deepEqual(config[field], value, field);
      assert.equal(config.issuer, provider.issuer);
      assert.equal(config.tokenEndpoint, `${provider.issuer}/token`);
      assert.equal(config.userinfoEndpoint, `${provider.issuer}/me`);
      assert.equal(config.jwksUri, `${provider.issuer}/jwks`);
      assert.equal(config.endSessionEndpoint, `${provider.issuer}/session/end`);
      assert.equal(config.revocationEndpoint, `${provider.issuer}/token/revocation`);
      assert.equal(config.authorizationEndpoint, `${provider.issuer}/auth`);
      config.token_endpoint = 'https://evil.example.com/token';
      (config.scopes_supported as string[]).push('evil');
      const again = await running.logto.getOidcConfig();
      assert.equal(again.token_endpoint, `${provider.issuer}/token`);
      assert.deepEqual(again.scopes_supported, served.scopes_supported);
    } finally {
      await running.close();
    }
  });

  test('every request to Logto goes through the fetch option: discovery, token, JWKS, userinfo, revocation', async () => {
    const counted = new Map<string, number>();
    const countingFetch: LogtoFetch = (url, init) => {
      const path = new URL(url).pathname;
      counted.set(path, (counted.get(path) ?? 0) + 1);
      return fetch(url, init);
    };
    const own = await startProvider();
    const running = await appOn(own, { strategy: { fetch: countingFetch } });
    try {
      const browser = new TestBrowser();
      await signIn(browser, own, running);
      assert.equal((await getJson(browser, `${running.url}/t/userinfo`)).status, 200);
      assert.equal((await getJson(browser, `${running.url}/t/token?resource=${q(API_RESOURCE)}`)).status, 200);
      const signedOut = await browser.get(`${running.url}/sign-out`);
      assert.equal(signedOut.status, 302);
      for (const path of ['/oidc/.well-known/openid-configuration', '/oidc/token', '/oidc/jwks', '/oidc/me', '/oidc/token/revocation']) {
        assert.ok((counted.get(path) ?? 0) > 0, `${path} went through the fetch option`);
      }
      // Nothing went around it: the provider saw no request from the app that the wrapper did not.
      const seen = new Map<string, number>();
      for (const request of own.requests) {
        // The browser's own requests: the authorization request, its resumption, the logout page.
        if (request.path.startsWith('/oidc/auth') || request.path.startsWith('/oidc/session/end')) continue;
        seen.set(request.path, (seen.get(request.path) ?? 0) + 1);
      }
      assert.deepEqual(Object.fromEntries([...counted].sort()), Object.fromEntries([...seen].sort()));
    } finally {
      await running.close();
      await own.close();
    }
  });

  test('the bearer strategy downloads the JWKS through it', async () => {
    let calls = 0;
    const passport = new passportModule.Passport();
    passport.use(new LogtoBearerStrategy({
      endpoint: provider.endpoint,
      audience: API_RESOURCE,
      fetch: (url, init) => {
        calls += 1;
        return fetch(url, init);
      },
    }));
    const app = express();
    app.get('/api', passport.authenticate('logto-bearer', { session: false }), (_req, res) => {
      res.json({ ok: true });
    });
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const now = Math.floor(Date.now() / 1000);
      const token = await provider.sign({ iss: provider.issuer, aud: API_RESOURCE, sub: 's', client_id: 'c', iat: now, exp: now + 60, jti: 'j', scope: '' }, { typ: 'at+jwt' });
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(response.status, 200);
      assert.ok(calls > 0, 'the JWKS went through the fetch option');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('a fetch option that is not a function is refused at construction', () => {
    assert.throws(
      () => new LogtoStrategy({ endpoint: provider.endpoint, appId: 'a', appSecret: 's', callbackURL: 'http://127.0.0.1/cb', fetch: 'proxy' as unknown as LogtoFetch }),
      (error: unknown) => error instanceof LogtoError && error.code === 'invalid_config' && /`fetch`/.test(error.message),
    );
    assert.throws(
      () => new LogtoBearerStrategy({ endpoint: provider.endpoint, audience: API_RESOURCE, fetch: 1 as unknown as LogtoFetch }),
      (error: unknown) => error instanceof LogtoError && error.code === 'invalid_config' && /`fetch`/.test(error.message),
    );
  });
});

describe("the user's organizations", () => {
  let provider: TestProvider;
  before(async () => {
    provider = await startProvider();
  });
  after(() => provider.close());

  test('getOrganizations() from the ID token, fetchOrganizations() from userinfo with names', async () => {
    const running = await appOn(provider);
    try {
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      assert.deepEqual((await getJson(browser, `${running.url}/t/organizations`)).body, [{ id: 'org-acme', roles: ['member'] }]);
      assert.deepEqual((await getJson(browser, `${running.url}/t/fetch-organizations`)).body, [
        { id: 'org-acme', roles: ['member'], name: 'Acme', description: 'Acme Corporation, the organization demo belongs to' },
      ]);
      // A user in no organization has none.
      const alice = new TestBrowser();
      await signIn(alice, provider, running, '/sign-in', provider.users.alice);
      assert.deepEqual((await getJson(alice, `${running.url}/t/organizations`)).body, []);
      assert.deepEqual((await getJson(alice, `${running.url}/t/fetch-organizations`)).body, []);
    } finally {
      await running.close();
    }
  });

  test('without UserScope.OrganizationRoles the roles are empty; without UserScope.Organizations the getters say which scope to add', async () => {
    const noRoles = await appOn(provider, { strategy: { scopes: [UserScope.Organizations] } });
    const none = await appOn(provider, { strategy: { scopes: [UserScope.Email] } });
    try {
      const browser = new TestBrowser();
      await signIn(browser, provider, noRoles);
      assert.deepEqual((await getJson(browser, `${noRoles.url}/t/organizations`)).body, [{ id: 'org-acme', roles: [] }]);
      const other = new TestBrowser();
      await signIn(other, provider, none);
      for (const path of ['/t/organizations', '/t/fetch-organizations']) {
        const answer = await getJson<{ error: string; message: string }>(other, `${none.url}${path}`);
        assert.equal(answer.body.error, 'missing_scope_organizations', path);
        assert.match(answer.body.message, /UserScope\.Organizations/);
      }
    } finally {
      await noRoles.close();
      await none.close();
    }
  });

  test('organization_roles entries split at the first colon; organizations only roles name are listed too', () => {
    assert.deepEqual(
      organizationsOf({ organizations: ['a', 'b'], organization_roles: ['a:admin', 'a:billing:read', 'c:member', 'a:admin', 'broken', ':x'] }),
      [
        { id: 'a', roles: ['admin', 'billing:read'] },
        { id: 'b', roles: [] },
        { id: 'c', roles: ['member'] },
      ],
    );
  });
});

describe('the example\'s organization switcher', () => {
  let example: RunningExample;
  before(async () => {
    example = await startExample({ port: 0, baseUrl: undefined, logto: { kind: 'bundled', port: 0 }, sessionSecret: undefined });
  });
  after(() => example.close());

  test('lists the user\'s organizations, remembers the chosen one in the session and shows its token; a stranger\'s is refused', async () => {
    const browser = new TestBrowser();
    const start = await browser.get(`${example.url}/sign-in`);
    const callback = await signInAtProvider(browser, start.location ?? '', { username: 'demo', password: 'demo-password' }, `${example.url}/callback`);
    assert.equal((await browser.get(callback)).status, 302);

    const page = async (): Promise<string> => {
      const response = await browser.get(`${example.url}/protected/organization-switcher`);
      assert.equal(response.status, 200);
      return response.text;
    };
    const empty = await page();
    assert.match(empty, /<li data-switch="org-acme">/);
    // A labelled radio button per organization, and one submit button.
    assert.match(empty, /<label><input type="radio" name="organization" value="org-acme">\s*<strong>Acme<\/strong>/);
    assert.match(empty, /<button class="button" type="submit" id="switch">Switch organization<\/button>/);
    assert.match(empty, /<span class="tag">member<\/span>/);
    assert.match(empty, /id="no-current"/);

    const chosen = await browser.post(`${example.url}/protected/organization-switcher`, { organization: 'org-acme' });
    assert.equal(chosen.status, 303);
    assert.equal(chosen.location, `${example.url}/protected/organization-switcher`);
    const current = await page();
    assert.match(current, /id="current" data-organization="org-acme"/);
    assert.match(current, /<span id="current-name">Acme<\/span>/);
    assert.match(current, /<tr data-claim="aud"><th>aud<\/th><td>urn:logto:organization:org-acme<\/td><\/tr>/);
    assert.match(current, /value="org-acme" checked>/);

    const refused = await browser.post(`${example.url}/protected/organization-switcher`, { organization: 'org-globex' });
    assert.equal(refused.status, 403);
    assert.match(await page(), /id="current" data-organization="org-acme"/, 'the earlier choice stays');

    const stranger = await new TestBrowser().get(`${example.url}/protected/organization-switcher`);
    assert.equal(stranger.status, 302);
  });
});
