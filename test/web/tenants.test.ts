// Several Logto tenants (two test providers) and apps (two apps of one provider) in one Express
// app, through LogtoTenants and LogtoBearerTenants, by path and by host.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express, { type NextFunction, type Request, type Response } from 'express';
import session from 'express-session';
import { decodeJwt } from 'jose';
import { Passport } from 'passport';
import { byHost, byPath, isLogtoError, LogtoBearerTenants, LogtoError, LogtoTenants, type LogtoTenantOptions } from '../../lib/index.js';
import { signInAtProvider, TestBrowser } from '../support/http-client.js';
import { API_RESOURCE, startProvider, type TestApp, type TestProvider } from '../support/provider/index.js';

let providerA: TestProvider;
let providerB: TestProvider;
let server: Server;
let url: string;
/** The same port on the other loopback name, for selection by host. */
let otherHostUrl: string;
let tenants: LogtoTenants;
const errors: unknown[] = [];

const prefixes = { '/a': 'a', '/b': 'b', '/c': 'c' } as const;

before(async () => {
  providerA = await startProvider();
  providerB = await startProvider();
  const app = express();
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  url = `http://127.0.0.1:${port}`;
  otherHostUrl = `http://localhost:${port}`;

  const register = (provider: TestProvider, base: string): Promise<TestApp> =>
    provider.registerApp({ redirectUris: [`${base}/callback`], postLogoutRedirectUris: [`${base}/`] });
  // Tenants a and b are two Logto tenants; c is a second app of tenant a's Logto.
  const appA = await register(providerA, `${url}/a`);
  const appB = await register(providerB, `${url}/b`);
  const appC = await register(providerA, `${url}/c`);
  const tenantOptions = (provider: TestProvider, registered: TestApp, base: string): LogtoTenantOptions => ({
    endpoint: provider.endpoint,
    appId: registered.appId,
    appSecret: registered.appSecret,
    callbackURL: `${base}/callback`,
    postLogoutRedirectUri: `${base}/`,
    resources: [API_RESOURCE],
  });
  tenants = new LogtoTenants(
    {
      select: byPath(prefixes),
      passReqToCallback: true,
      tenants: {
        a: tenantOptions(providerA, appA, `${url}/a`),
        b: tenantOptions(providerB, appB, `${url}/b`),
        c: tenantOptions(providerA, appC, `${url}/c`),
      },
    },
    (req, { profile }, done) => done(null, { id: profile.id, tenant: tenants.tenantOf(req) }),
  );
  const bearer = new LogtoBearerTenants({
    select: byPath(prefixes),
    tenants: {
      a: { endpoint: providerA.endpoint, audience: API_RESOURCE },
      b: { endpoint: providerB.endpoint, audience: API_RESOURCE },
      c: { endpoint: providerA.endpoint, audience: API_RESOURCE },
    },
  });

  // By host: 127.0.0.1 is tenant a's second app, localhost is tenant b's, on the same paths.
  const byHostA = await register(providerA, `${url}/h`);
  const byHostB = await register(providerB, `${otherHostUrl}/h`);
  const hostTenants = new LogtoTenants({
    name: 'logto-host',
    select: byHost({ '127.0.0.1': 'a', localhost: 'b' }),
    tenants: { a: tenantOptions(providerA, byHostA, `${url}/h`), b: tenantOptions(providerB, byHostB, `${otherHostUrl}/h`) },
  });

  const passport = new Passport();
  passport.use(tenants);
  passport.use(bearer);
  passport.use(hostTenants);
  passport.serializeUser((user, done) => done(null, user));
  passport.deserializeUser((user: Express.User, done) => done(null, user));
  app.use(session({ secret: 'tenants-test', resave: false, saveUninitialized: false }));
  app.use(passport.initialize());
  app.use(passport.session());

  for (const prefix of [...Object.keys(prefixes), '/elsewhere', '/ax']) {
    app.get(`${prefix}/sign-in`, passport.authenticate('logto'));
    app.get(`${prefix}/callback`, (req, res, next) => {
      // A custom callback, so that the test reads the failure's code.
      passport.authenticate('logto', (error: unknown, user: unknown, info: unknown) => {
        if (error) return next(error);
        if (!user) return res.status(401).json({ error: isLogtoError(info) ? info.code : String(info) });
        req.logIn(user as Express.User, (logInError) => (logInError ? next(logInError) : res.redirect(`${prefix}/me`)));
      })(req, res, next);
    });
    app.get(`${prefix}/me`, tenants.authenticated({}, (req, res) => {
      const claims = req.logto.getIdTokenClaims();
      res.json({ sub: claims.sub, iss: claims.iss, user: req.user ?? null });
    }));
    app.get(`${prefix}/tokens`, (req, res, next) => {
      tenants.client(req).load().then((client) => res.json({ idToken: client.getIdToken() ?? null, refreshToken: client.getRefreshToken() ?? null }), next);
    });
    app.get(`${prefix}/api-token`, tenants.authenticated({ accessToken: API_RESOURCE }, (req, res) => {
      res.json({ token: req.logto.accessToken });
    }));
    app.get(`${prefix}/sign-out`, tenants.signOut());
    app.post(`${prefix}/backchannel-logout`, tenants.backchannelLogout());
    app.get(`${prefix}/api`, passport.authenticate('logto-bearer', { session: false }), (req, res) => {
      res.json({ iss: (req.authInfo as { claims: { iss: string } }).claims.iss });
    });
    app.get(`${prefix}/api-middleware`, bearer.middleware(), (req, res) => {
      res.json({ iss: (req.authInfo as { claims: { iss: string } }).claims.iss });
    });
  }
  app.get('/h/sign-in', passport.authenticate('logto-host'));
  app.get('/h/callback', passport.authenticate('logto-host', { successRedirect: '/h/me', failureRedirect: '/h/failed' }));
  app.get('/h/me', hostTenants.authenticated(), (req, res) => {
    res.json({ iss: req.logto?.getIdTokenClaims().iss, tenant: hostTenants.tenantOf(req) });
  });
  app.get('/session', (req, res) => res.json(req.session));
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    errors.push(error);
    res.status(500).json({ error: error instanceof LogtoError ? error.code : 'internal_error', message: String(error) });
  });
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await providerA.close();
  await providerB.close();
});

const userOf = (provider: TestProvider) => provider.users.demo;

/** Starts a sign-in at `base` and signs in at that tenant's Logto; returns the callback URL, not yet requested. */
async function callbackFor(browser: TestBrowser, base: string, provider: TestProvider, user = userOf(provider)): Promise<string> {
  const start = await browser.get(`${base}/sign-in`);
  assert.equal(start.status, 302, `sign-in at ${base} should redirect: ${start.text}`);
  assert.ok(start.location?.startsWith(provider.issuer), `sign-in at ${base} goes to ${provider.issuer}, not ${start.location}`);
  return signInAtProvider(browser, start.location ?? "", user, `${base}/callback`);
}

async function signInTo(browser: TestBrowser, base: string, provider: TestProvider, user = userOf(provider)): Promise<void> {
  const callback = await browser.get(await callbackFor(browser, base, provider, user));
  assert.equal(callback.status, 302, `callback at ${base}: ${callback.text}`);
  assert.equal(callback.location, `${base}/me`);
}

async function json(browser: TestBrowser, target: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await browser.get(target);
  return { status: response.status, body: JSON.parse(response.text) as Record<string, unknown> };
}

function logoutToken(provider: TestProvider, appId: string, sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return provider.sign(
    { iss: provider.issuer, aud: appId, iat: now, exp: now + 120, jti: `jti-${Math.random()}`, sub, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } },
    { typ: 'logout+jwt' },
  );
}

function postLogout(prefix: string, token: string): Promise<globalThis.Response> {
  return fetch(`${url}${prefix}/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
  });
}

describe('LogtoTenants: several tenants in one app', () => {
  test('a sign-in of tenant A passes only A\'s guard, and B\'s helper never returns A\'s tokens', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${url}/a`, providerA);
    const onA = await json(browser, `${url}/a/me`);
    assert.equal(onA.status, 200);
    assert.equal(onA.body.iss, providerA.issuer);
    assert.deepEqual(onA.body.user, { id: userOf(providerA).sub, tenant: 'a' }, 'the verify function learns the tenant');
    // Passport says the session is signed in (as A's user); B's guard still refuses.
    assert.equal((await json(browser, `${url}/b/me`)).status, 401);
    assert.equal((await json(browser, `${url}/c/me`)).status, 401, 'another app of the same Logto tenant is apart too');
    assert.deepEqual((await json(browser, `${url}/b/tokens`)).body, { idToken: null, refreshToken: null });
    const tokensA = (await json(browser, `${url}/a/tokens`)).body;
    assert.equal(decodeJwt(tokensA.idToken as string).iss, providerA.issuer);
    // Prefixes match whole path segments: /ax is not tenant a's.
    assert.deepEqual((await json(browser, `${url}/ax/me`)).body.error, 'invalid_config');
  });

  test('both tenants signed in at once in one session, each route seeing its own', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${url}/a`, providerA);
    await signInTo(browser, `${url}/b`, providerB);
    const onA = await json(browser, `${url}/a/me`);
    const onB = await json(browser, `${url}/b/me`);
    assert.equal(onA.status, 200, 'signing in to B kept the sign-in of A');
    assert.equal(onA.body.iss, providerA.issuer);
    assert.equal(onB.status, 200);
    assert.equal(onB.body.iss, providerB.issuer);
    assert.deepEqual(onB.body.user, { id: userOf(providerB).sub, tenant: 'b' }, 'req.user is the last sign-in\'s user');
    const tokensA = (await json(browser, `${url}/a/tokens`)).body;
    const tokensB = (await json(browser, `${url}/b/tokens`)).body;
    assert.equal(decodeJwt(tokensA.idToken as string).iss, providerA.issuer);
    assert.equal(decodeJwt(tokensB.idToken as string).iss, providerB.issuer);
    assert.notEqual(tokensA.refreshToken, tokensB.refreshToken);
    const stored = (await json(browser, `${url}/session`)).body;
    assert.equal(typeof stored['logto:a'], 'string');
    assert.equal(typeof stored['logto:b'], 'string');
    assert.notEqual(stored['logto:a'], stored['logto:b']);
  });

  test('a callback started for one tenant or app fails at another\'s callback, and still finishes at its own', async () => {
    const browser = new TestBrowser();
    const callback = new URL(await callbackFor(browser, `${url}/a`, providerA));
    // Another Logto tenant: its issuer is not B's.
    const atB = await json(browser, `${url}/b/callback${callback.search}`);
    assert.deepEqual([atB.status, atB.body.error], [401, 'issuer_mismatch']);
    // Another app of the same Logto: same issuer, but the started sign-in is not C's.
    const atC = await json(browser, `${url}/c/callback${callback.search}`);
    assert.deepEqual([atC.status, atC.body.error], [401, 'invalid_state']);
    assert.equal((await json(browser, `${url}/c/me`)).status, 401);
    // Neither spent the code.
    const own = await browser.get(callback.href);
    assert.equal(own.location, `${url}/a/me`);
    assert.equal((await json(browser, `${url}/a/me`)).status, 200);
  });

  test('discovery and JWKS are fetched once per tenant, however many sign-ins', async () => {
    const discovery = '/oidc/.well-known/openid-configuration';
    // Earlier tests signed in to each tenant; more sign-ins change nothing.
    for (const user of [providerA.users.alice, providerA.users.demo]) {
      const browser = new TestBrowser();
      await signInTo(browser, `${url}/a`, providerA, user);
      await signInTo(browser, `${url}/b`, providerB, user);
      await signInTo(browser, `${url}/c`, providerA, user);
    }
    // Provider A serves tenants a and c, two apps with a LogtoStrategy each; B serves b alone.
    assert.equal(providerA.countRequests(discovery), 2);
    assert.equal(providerA.countRequests('/oidc/jwks'), 2);
    assert.equal(providerB.countRequests(discovery), 1);
    assert.equal(providerB.countRequests('/oidc/jwks'), 1);
  });

  test('back-channel logout of tenant A ends only A\'s sign-ins', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${url}/a`, providerA);
    await signInTo(browser, `${url}/b`, providerB);
    const onlyA = new TestBrowser();
    await signInTo(onlyA, `${url}/a`, providerA);
    const user = userOf(providerA).sub;

    // A logout token of tenant B sent to A's route is refused and ends nothing.
    const wrongTenant = await postLogout('/a', await logoutToken(providerB, tenants.tenant('b').config.appId, user));
    assert.equal(wrongTenant.status, 400);
    assert.equal((await json(browser, `${url}/a/me`)).status, 200);

    assert.equal((await postLogout('/a', await logoutToken(providerA, tenants.tenant('a').config.appId, user))).status, 200);
    assert.equal((await json(browser, `${url}/a/me`)).status, 401, 'A\'s sign-in ended');
    assert.equal((await json(onlyA, `${url}/a/me`)).status, 401);
    const onB = await json(browser, `${url}/b/me`);
    assert.equal(onB.status, 200, 'B\'s sign-in in the same session stays');
    assert.equal(onB.body.iss, providerB.issuer);
    assert.equal((await json(onlyA, `${url}/session`)).body['logto:a'], undefined, 'a session of A alone is destroyed');
  });

  test('back-channel logout of the tenant whose user Passport holds ends the session, as without tenants', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${url}/b`, providerB);
    await signInTo(browser, `${url}/a`, providerA);
    assert.equal((await postLogout('/a', await logoutToken(providerA, tenants.tenant('a').config.appId, userOf(providerA).sub))).status, 200);
    assert.equal((await json(browser, `${url}/a/me`)).status, 401);
    assert.equal((await json(browser, `${url}/b/me`)).status, 401, 'req.user was A\'s, so the session went');
  });

  test('signing out of one tenant keeps the other\'s sign-in when Passport\'s user is the other\'s', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${url}/a`, providerA);
    await signInTo(browser, `${url}/b`, providerB);
    const signOutA = await browser.get(`${url}/a/sign-out`);
    assert.equal(signOutA.status, 302);
    assert.ok(signOutA.location?.startsWith(`${providerA.issuer}/session/end`), `A's Logto ends A's session: ${signOutA.location}`);
    assert.equal((await json(browser, `${url}/a/me`)).status, 401);
    const onB = await json(browser, `${url}/b/me`);
    assert.equal(onB.status, 200);
    assert.deepEqual(onB.body.user, { id: userOf(providerB).sub, tenant: 'b' });

    const signOutB = await browser.get(`${url}/b/sign-out`);
    assert.ok(signOutB.location?.startsWith(`${providerB.issuer}/session/end`));
    assert.equal((await json(browser, `${url}/b/me`)).status, 401);
    assert.equal((await json(browser, `${url}/session`)).body.passport, undefined, 'Passport\'s login ended with B');

    // The other way round, req.user is A's: signing out of A must not leave A's user logged in.
    const reversed = new TestBrowser();
    await signInTo(reversed, `${url}/b`, providerB);
    await signInTo(reversed, `${url}/a`, providerA);
    await reversed.get(`${url}/a/sign-out`);
    assert.equal((await json(reversed, `${url}/session`)).body.passport, undefined, 'Passport\'s login (A\'s user) ended');
    assert.equal((await json(reversed, `${url}/b/me`)).status, 401);
  });

  test('a bearer token of tenant A is refused on tenant B\'s API routes', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${url}/a`, providerA);
    await signInTo(browser, `${url}/b`, providerB);
    const tokenA = (await json(browser, `${url}/a/api-token`)).body.token as string;
    const tokenB = (await json(browser, `${url}/b/api-token`)).body.token as string;
    assert.equal(decodeJwt(tokenA).iss, providerA.issuer);
    const call = (path: string, token: string): Promise<globalThis.Response> => fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    for (const route of ['api', 'api-middleware']) {
      const ownA = await call(`/a/${route}`, tokenA);
      assert.equal(ownA.status, 200, route);
      assert.equal(((await ownA.json()) as { iss: string }).iss, providerA.issuer);
      assert.equal((await call(`/b/${route}`, tokenB)).status, 200, route);
      const crossed = await call(`/b/${route}`, tokenA);
      assert.equal(crossed.status, 401, route);
      assert.match(crossed.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
      assert.equal((await call(`/a/${route}`, tokenB)).status, 401, route);
    }
  });

  test('a route outside every tenant is an invalid_config error, never another tenant\'s', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${url}/a`, providerA);
    for (const path of ['/elsewhere/me', '/elsewhere/sign-in', '/elsewhere/tokens', '/elsewhere/api']) {
      const response = await json(browser, `${url}${path}`);
      assert.deepEqual([response.status, response.body.error], [500, 'invalid_config'], path);
      assert.match(String(response.body.message), /no tenant for GET 127\.0\.0\.1\/elsewhere/, path);
    }
  });
});

describe('LogtoTenants: selection by host', () => {
  test('each host signs in with its own tenant, in its own session', async () => {
    const browser = new TestBrowser();
    const viaA = await browser.get(await callbackFor(browser, `${url}/h`, providerA));
    assert.equal(viaA.location, `${url}/h/me`);
    const viaB = await browser.get(await callbackFor(browser, `${otherHostUrl}/h`, providerB));
    assert.equal(viaB.location, `${otherHostUrl}/h/me`);
    assert.deepEqual((await json(browser, `${url}/h/me`)).body, { iss: providerA.issuer, tenant: 'a' });
    assert.deepEqual((await json(browser, `${otherHostUrl}/h/me`)).body, { iss: providerB.issuer, tenant: 'b' });
  });
});

describe('LogtoTenants options', () => {
  const base = { endpoint: 'http://127.0.0.1:1', appId: 'id', appSecret: 'secret', callbackURL: 'http://127.0.0.1:2/callback' };
  const code = (make: () => unknown): string | undefined => {
    try {
      make();
    } catch (error) {
      return isLogtoError(error) ? `${error.code}: ${error.message}` : String(error);
    }
    return undefined;
  };

  test('tenants cannot set their own name or session key, and need a select function', () => {
    assert.match(code(() => new LogtoTenants({ select: () => 'a', tenants: { a: { ...base, sessionKey: 'shared' } as LogtoTenantOptions } })) ?? '', /^invalid_config: .*must not set `sessionKey`/);
    assert.match(code(() => new LogtoTenants({ select: () => 'a', tenants: {} })) ?? '', /^invalid_config: .*at least one tenant/);
    assert.match(code(() => new LogtoTenants({ select: undefined as unknown as () => string, tenants: { a: base } })) ?? '', /^invalid_config: .*needs option `select`/);
    assert.match(code(() => new LogtoTenants({ select: () => 'a', tenants: { 'a b': base } })) ?? '', /^invalid_config: .*tenant name/);
    assert.match(code(() => byPath({ acme: 'a' })) ?? '', /^invalid_config: .*must be a path/);
    assert.match(code(() => byHost({ 'acme.example:8080': 'a' })) ?? '', /^invalid_config: .*not a host name/);
    assert.match(code(() => new LogtoTenants({ select: () => 'a', tenants: { a: base } }).tenant('z')) ?? '', /^invalid_config: .*no tenant "z"; its tenants are a/);
  });
});
