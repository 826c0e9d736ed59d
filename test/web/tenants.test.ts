// Several Logto tenants (two test providers) and apps (two apps of one provider) in one Express
// app, through LogtoTenants and LogtoBearerTenants, by path and by host.
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express, { type NextFunction, type Request, type Response } from 'express';
import session from 'express-session';
import cookieSession from 'cookie-session';
import { decodeJwt } from 'jose';
import { Passport } from 'passport';
import { byHost, byPath, isLogtoError, LogtoBearerTenants, LogtoError, LogtoStrategy, LogtoTenants, MemoryTokenStore, type LogtoTenantOptions } from '../../lib/index.js';
import { logtoFastify } from '../../lib/fastify/index.js';
import { logtoKoa } from '../../lib/koa/index.js';
import { signInAtProvider, TestBrowser } from '../support/http-client.js';
import { API_RESOURCE, startProvider, type TestApp, type TestProvider } from '../support/provider/index.js';

let providerA: TestProvider;
let providerB: TestProvider;
let server: Server;
let url: string;
/** The same port on the other loopback name, for selection by host. */
let otherHostUrl: string;
let tenants: LogtoTenants;
let hostTenants: LogtoTenants;
/** The session store, which is also the tokens' home (the default). */
const store = new session.MemoryStore();
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
        // Their back-channel logout handler is mounted below: index sign-ins for it (leaving the option out is deprecated).
        a: { ...tenantOptions(providerA, appA, `${url}/a`), backchannelLogout: true },
        b: { ...tenantOptions(providerB, appB, `${url}/b`), backchannelLogout: true },
        c: { ...tenantOptions(providerA, appC, `${url}/c`), backchannelLogout: true },
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
  hostTenants = new LogtoTenants({
    name: 'logto-host',
    select: byHost({ '127.0.0.1': 'a', localhost: 'b' }),
    tenants: {
      a: { ...tenantOptions(providerA, byHostA, `${url}/h`), backchannelLogout: true },
      b: { ...tenantOptions(providerB, byHostB, `${otherHostUrl}/h`), backchannelLogout: true },
    },
  });
  const hostBearer = new LogtoBearerTenants({
    name: 'logto-bearer-host',
    select: byHost({ '127.0.0.1': 'a', localhost: 'b' }),
    tenants: { a: { endpoint: providerA.endpoint, audience: API_RESOURCE }, b: { endpoint: providerB.endpoint, audience: API_RESOURCE } },
  });
  // An app's own select function, reading a header that the client controls.
  const headerTenants = new LogtoTenants({
    name: 'logto-header',
    select: (req) => req.get('x-tenant'),
    tenants: { a: tenantOptions(providerA, byHostA, `${url}/h`) },
  });

  const passport = new Passport();
  passport.use(tenants);
  passport.use(bearer);
  passport.use(hostTenants);
  passport.use(hostBearer);
  passport.serializeUser((user, done) => done(null, user));
  passport.deserializeUser((user: Express.User, done) => done(null, user));
  app.use(session({ secret: 'tenants-test', resave: false, saveUninitialized: false, store }));
  app.use(passport.initialize());
  app.use(passport.session());

  for (const prefix of [...Object.keys(prefixes), '/elsewhere', '/ax']) {
    app.get(`${prefix}/sign-in`, passport.authenticate('logto'));
    app.get(`${prefix}/callback`, (req, res, next) => {
      // A custom callback, so that the test reads the failure's code.
      passport.authenticate('logto', (error: unknown, user: unknown, info: unknown, status: unknown) => {
        if (error) return next(error);
        if (!user) return res.status(typeof status === 'number' ? status : 401).json(isLogtoError(info) ? { error: info.code, error_description: info.message } : { error: String(info) });
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
  app.get('/h/callback', (req, res, next) => {
    passport.authenticate('logto-host', (error: unknown, user: unknown, info: unknown, status: unknown) => {
      if (error) return next(error);
      if (!user) return res.status(typeof status === 'number' ? status : 401).json(isLogtoError(info) ? { error: info.code, error_description: info.message } : { error: String(info) });
      req.logIn(user as Express.User, (logInError) => (logInError ? next(logInError) : res.redirect('/h/me')));
    })(req, res, next);
  });
  app.get('/h/me', hostTenants.authenticated(), (req, res) => {
    res.json({ iss: req.logto?.getIdTokenClaims().iss, tenant: hostTenants.tenantOf(req) });
  });
  app.get('/h/sign-out', hostTenants.signOut());
  app.post('/h/backchannel-logout', hostTenants.backchannelLogout());
  app.get('/h/api-token', hostTenants.authenticated({ accessToken: API_RESOURCE }, (req, res) => {
    res.json({ token: req.logto.accessToken });
  }));
  app.get('/h/api', passport.authenticate('logto-bearer-host', { session: false }), (req, res) => {
    res.json({ iss: (req.authInfo as { claims: { iss: string } }).claims.iss });
  });
  app.get('/h/api-callback', (req, res, next) => {
    passport.authenticate('logto-bearer-host', { session: false }, (error: unknown, user: unknown, info: unknown, status: unknown) => {
      if (error) return next(error);
      if (!user) return res.status(typeof status === 'number' ? status : 401).json(isLogtoError(info) ? { error: info.code, error_description: info.message } : { error: String(info) });
      res.json({ signedIn: true });
    })(req, res, next);
  });
  app.get('/h/api-middleware', hostBearer.middleware(), (req, res) => {
    res.json({ iss: (req.authInfo as { claims: { iss: string } }).claims.iss });
  });
  app.get('/x/me', headerTenants.authenticated(), (_req, res) => res.json({ signedIn: true }));
  app.get('/session', (req, res) => res.json(req.session));
  // Outside every tenant's paths: logging out of the app ends every tenant's sign-in, as the README shows.
  app.post('/log-out', (req, res, next) => {
    tenants
      .endSignIns(req)
      .then(() => req.logout((error) => (error ? next(error) : res.json({ loggedOut: true }))))
      .catch(next);
  });
  // The same with the helper that does both.
  app.post('/log-out-helper', (req, res, next) => {
    tenants.logOut(req).then(() => res.json({ loggedOut: true }), next);
  });
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    errors.push(error);
    // As the README's Errors section says: a LogtoError's httpStatus is the status to answer with.
    res.status(error instanceof LogtoError ? error.httpStatus : 500).json({ error: error instanceof LogtoError ? error.code : 'internal_error', message: String(error) });
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
    assert.deepEqual((await json(browser, `${url}/ax/me`)).body.error, 'unknown_tenant');
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
    assert.deepEqual([atC.status, atC.body.error], [400, 'invalid_state']);
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

  test('a sign-out that ends the session ends the other tenant\'s sign-in too, its refresh token revoked', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${url}/b`, providerB);
    await signInTo(browser, `${url}/a`, providerA); // Passport's user is A's
    const tokenOfB = (await json(browser, `${url}/b/tokens`)).body.refreshToken;
    assert.equal(typeof tokenOfB, 'string');
    const copy = JSON.stringify(await storeContents());
    assert.ok(copy.includes(String(tokenOfB)));
    await browser.get(`${url}/a/sign-out`);
    assert.equal(providerB.countRequests('/oidc/token/revocation', (r) => r.params.token === tokenOfB), 1, 'B\'s refresh token revoked');
    assert.equal(JSON.stringify(await storeContents()).includes(String(tokenOfB)), false, 'B\'s record ended');
  });

  test('a back-channel logout that destroys a session ends the other tenant\'s sign-in in it, its refresh token revoked', async () => {
    // Two tenants of `tenants` in one session, then A's Logto logs the user out: B's sign-in goes too.
    const both = new TestBrowser();
    await signInTo(both, `${url}/b`, providerB);
    await signInTo(both, `${url}/a`, providerA);
    const refreshOfB = (await json(both, `${url}/b/tokens`)).body.refreshToken;
    assert.equal((await postLogout('/a', await logoutToken(providerA, tenants.tenant('a').config.appId, userOf(providerA).sub))).status, 200);
    assert.equal((await json(both, `${url}/b/me`)).status, 401);
    assert.equal(providerB.countRequests('/oidc/token/revocation', (r) => r.params.token === refreshOfB), 1, 'B\'s refresh token revoked');
    assert.equal(JSON.stringify(await storeContents()).includes(String(refreshOfB)), false, 'B\'s record ended');
  });

  test('endSignIns(req) before req.logout() ends every tenant\'s sign-in, from a route outside every tenant', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${url}/a`, providerA);
    await signInTo(browser, `${url}/b`, providerB);
    const refreshTokens = [(await json(browser, `${url}/a/tokens`)).body.refreshToken, (await json(browser, `${url}/b/tokens`)).body.refreshToken];
    for (const token of refreshTokens) assert.ok(JSON.stringify(await storeContents()).includes(String(token)));
    const refreshesBefore = providerA.countRequests('/oidc/token') + providerB.countRequests('/oidc/token');

    const loggedOut = await browser.post(`${url}/log-out`, {});
    assert.equal(loggedOut.status, 200, loggedOut.text);
    for (const prefix of ['/a', '/b']) {
      assert.equal((await json(browser, `${url}${prefix}/me`)).status, 401, prefix);
      assert.deepEqual((await json(browser, `${url}${prefix}/tokens`)).body, { idToken: null, refreshToken: null }, prefix);
      const token = await json(browser, `${url}${prefix}/api-token`);
      assert.equal(token.status, 401, prefix);
    }
    const contents = JSON.stringify(await storeContents());
    for (const token of refreshTokens) assert.equal(contents.includes(String(token)), false, 'no tenant\'s tokens left in the store');
    assert.equal(providerA.countRequests('/oidc/token') + providerB.countRequests('/oidc/token'), refreshesBefore, 'no refresh reached either Logto');
    assert.equal((await json(browser, `${url}/session`)).body.passport, undefined, 'Passport\'s login ended too');
  });

  test('logOut(req) does the same: every tenant\'s sign-in ends, then Passport\'s login', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${url}/a`, providerA);
    await signInTo(browser, `${url}/b`, providerB);
    const refreshTokens = [(await json(browser, `${url}/a/tokens`)).body.refreshToken, (await json(browser, `${url}/b/tokens`)).body.refreshToken];
    const loggedOut = await browser.post(`${url}/log-out-helper`, {});
    assert.equal(loggedOut.status, 200, loggedOut.text);
    for (const prefix of ['/a', '/b']) assert.equal((await json(browser, `${url}${prefix}/me`)).status, 401, prefix);
    const contents = JSON.stringify(await storeContents());
    for (const token of refreshTokens) assert.equal(contents.includes(String(token)), false, 'no tenant\'s tokens left in the store');
    assert.equal(providerA.countRequests('/oidc/token/revocation', (r) => r.params.token === refreshTokens[0]), 1);
    assert.equal(providerB.countRequests('/oidc/token/revocation', (r) => r.params.token === refreshTokens[1]), 1);
    assert.equal((await json(browser, `${url}/session`)).body.passport, undefined, 'Passport\'s login ended too');
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

  test('a route outside every tenant answers 404 unknown_tenant, never another tenant\'s, never a 500', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${url}/a`, providerA);
    const errorsBefore = errors.length;
    // The guard, the callback, sign-out and the bearer middleware answer with the code; the helper throws it to the error handler.
    for (const path of ['/elsewhere/me', '/elsewhere/callback?code=x&state=y', '/elsewhere/sign-out', '/elsewhere/api-middleware', '/elsewhere/tokens']) {
      const response = await json(browser, `${url}${path}`);
      assert.deepEqual([response.status, response.body.error], [404, 'unknown_tenant'], path);
      const message = String(response.body.error_description ?? response.body.message);
      assert.match(message, /serves no tenant at this request's host and path/, path);
      assert.match(message, /map them to a tenant in byHost\(\) or byPath\(\)/, path);
      assert.doesNotMatch(message, /elsewhere/, `${path}: the client's path stays out of the message`);
    }
    assert.equal(errors.length, errorsBefore + 1, 'only the helper\'s throw reached the error handler');
    const thrown = errors.at(-1);
    assert.ok(isLogtoError(thrown, 'unknown_tenant'));
    assert.equal(thrown.requestTarget, 'GET 127.0.0.1/elsewhere/tokens', 'the host and path are on the error, for logs');
    // Passport's own answer for a failure without a callback: the status, and no challenge.
    for (const path of ['/elsewhere/sign-in', '/elsewhere/api']) {
      const response = await browser.get(`${url}${path}`);
      assert.deepEqual([response.status, response.text], [404, 'Not Found'], path);
      assert.equal(response.headers.get('www-authenticate'), null, path);
      assert.equal(response.location, undefined, path);
    }
    const logout = await postLogout('/elsewhere', await logoutToken(providerA, tenants.tenant('a').config.appId, userOf(providerA).sub));
    assert.deepEqual([logout.status, ((await logout.json()) as { error: string }).error], [404, 'unknown_tenant']);
    assert.equal((await json(browser, `${url}/a/me`)).status, 200, 'none of it touched the sign-in of tenant a');
  });

  test('an app\'s select function that names a tenant there is not: 404 unknown_tenant', async () => {
    const named = await new TestBrowser().request(`${url}/x/me`, { headers: { 'x-tenant': 'zz' } });
    assert.equal(named.status, 404);
    const body = JSON.parse(named.text) as { error: string; error_description: string };
    assert.equal(body.error, 'unknown_tenant');
    assert.match(body.error_description, /select\(\) named a tenant that is not one of its tenants \(a\)/);
    assert.doesNotMatch(body.error_description, /zz/, 'the name came from a header: it stays out of the message');
    assert.equal((await new TestBrowser().request(`${url}/x/me`, { headers: { 'x-tenant': 'a' } })).status, 401, 'a known tenant, signed out');
  });
});

describe('LogtoTenants with cookie-session: no session on the server', () => {
  let cookieServer: Server;
  let cookieUrl: string;
  let cookieTenants: LogtoTenants;

  before(async () => {
    const app = express();
    cookieServer = createServer(app);
    await new Promise<void>((resolve) => cookieServer.listen(0, '127.0.0.1', resolve));
    cookieUrl = `http://127.0.0.1:${(cookieServer.address() as AddressInfo).port}`;
    const tokenStore = new MemoryTokenStore();
    const options = async (provider: TestProvider, base: string): Promise<LogtoTenantOptions> => {
      const registered = await provider.registerApp({ redirectUris: [`${base}/callback`], postLogoutRedirectUris: [`${base}/`] });
      return { endpoint: provider.endpoint, appId: registered.appId, appSecret: registered.appSecret, callbackURL: `${base}/callback`, tokenStore, backchannelLogout: true };
    };
    cookieTenants = new LogtoTenants({
      name: 'logto-cookie',
      select: byPath({ '/a': 'a', '/b': 'b' }),
      tenants: { a: await options(providerA, `${cookieUrl}/a`), b: await options(providerB, `${cookieUrl}/b`) },
    });
    const passport = new Passport();
    passport.use(cookieTenants);
    passport.serializeUser((user, done) => done(null, user));
    passport.deserializeUser((user: Express.User, done) => done(null, user));
    app.use(cookieSession({ name: 'tenants-cookie', keys: ['tenants-cookie-secret'] }));
    app.use((req, _res, next) => {
      // Passport 0.6+ calls these; cookie-session has neither.
      const bag = req.session as unknown as { regenerate?: unknown; save?: unknown } | null | undefined;
      if (bag && !bag.regenerate) bag.regenerate = (done: () => void) => done();
      if (bag && !bag.save) bag.save = (done: () => void) => done();
      next();
    });
    app.use(passport.initialize());
    app.use(passport.session());
    app.use(cookieTenants.session());
    for (const prefix of ['/a', '/b']) {
      app.get(`${prefix}/sign-in`, passport.authenticate('logto-cookie'));
      app.get(`${prefix}/callback`, passport.authenticate('logto-cookie', { successRedirect: `${prefix}/me`, failWithError: true }));
      app.get(`${prefix}/me`, cookieTenants.authenticated({}, (req, res) => {
        res.json({ sub: req.logto.getIdTokenClaims().sub, iss: req.logto.getIdTokenClaims().iss });
      }));
      app.get(`${prefix}/tokens`, (req, res, next) => {
        cookieTenants.client(req).load().then((client) => res.json({ refreshToken: client.getRefreshToken() ?? null }), next);
      });
      app.post(`${prefix}/backchannel-logout`, cookieTenants.backchannelLogout());
    }
    // Another way in over the tenants' sign-ins (a local account), keeping the session's data.
    app.get('/local-login', (req, res, next) => {
      req.login({ id: 'local-bob' }, { session: true, keepSessionInfo: true }, (error?: unknown) => (error ? next(error) : res.json({ ok: true })));
    });
    app.get('/whoami', (req, res) => {
      res.json({ user: req.user ?? null });
    });
    app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
      errors.push(error);
      res.status(500).json({ error: String(error) });
    });
  });
  after(async () => {
    cookieServer.closeAllConnections();
    await new Promise<void>((resolve) => cookieServer.close(() => resolve()));
  });

  /** Logto's back-channel logout of the demo user, posted to tenant `tenant`'s route. */
  const logOutAt = async (prefix: string, provider: TestProvider, tenant: string): Promise<number> => {
    const appId = cookieTenants.tenant(tenant).config.appId;
    const response = await fetch(`${cookieUrl}${prefix}/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: await logoutToken(provider, appId, userOf(provider).sub) }),
    });
    return response.status;
  };

  test('a back-channel logout of the tenant Passport\'s user came from ends every tenant\'s sign-in of that cookie at once, refresh tokens revoked', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${cookieUrl}/a`, providerA);
    await signInTo(browser, `${cookieUrl}/b`, providerB); // Passport's user is B's now
    const refreshOfA = (await json(browser, `${cookieUrl}/a/tokens`)).body.refreshToken;
    assert.equal(typeof refreshOfA, 'string');
    const revokedBefore = providerA.countRequests('/oidc/token/revocation', (r) => r.params.token === refreshOfA);
    assert.equal(await logOutAt('/b', providerB, 'b'), 200);
    // The cookie has not come back: only the link from B's sign-in can have reached A's.
    assert.equal(providerA.countRequests('/oidc/token/revocation', (r) => r.params.token === refreshOfA), revokedBefore + 1, 'A\'s refresh token revoked at once');
    assert.equal((await json(browser, `${cookieUrl}/a/me`)).status, 401, 'A\'s sign-in ended');
    assert.equal((await json(browser, `${cookieUrl}/b/me`)).status, 401, 'B\'s sign-in ended');
  });

  test('a back-channel logout of a tenant that signed in before Passport\'s user\'s ends only that tenant\'s sign-in, as with express-session', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${cookieUrl}/a`, providerA);
    await signInTo(browser, `${cookieUrl}/b`, providerB);
    assert.equal(await logOutAt('/a', providerA, 'a'), 200);
    assert.equal((await json(browser, `${cookieUrl}/a/me`)).status, 401, 'A\'s sign-in ended');
    assert.equal((await json(browser, `${cookieUrl}/b/me`)).status, 200, 'B\'s sign-in (Passport\'s user) stays');
  });

  test('the end of the tenant\'s sign-in that Passport\'s user came from leaves a user that another login put over it', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${cookieUrl}/a`, providerA);
    assert.equal((await json(browser, `${cookieUrl}/local-login`)).status, 200);
    assert.equal(await logOutAt('/a', providerA, 'a'), 200);
    assert.equal((await json(browser, `${cookieUrl}/a/me`)).status, 401, 'A\'s sign-in ended');
    assert.deepEqual((await json(browser, `${cookieUrl}/whoami`)).body.user, { id: 'local-bob' }, 'the local user stays');
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

/** A request with the Host header of the client's choice, carrying the browser's cookies for the real host. */
async function spoofed(browser: TestBrowser, target: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; text: string }> {
  return browser.request(target, { raw: true, headers: { host: 'evil.example', ...headers } });
}

/** A POST with a spoofed Host header, through node:http (fetch sets Host itself). */
function spoofedPost(target: string, form: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  const body = new URLSearchParams(form).toString();
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      target,
      { method: 'POST', headers: { host: 'evil.example', 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** Everything in the session store, which also holds the sign-ins' token records. */
function storeContents(): Promise<unknown> {
  return new Promise((resolve, reject) => store.all((error, sessions) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(sessions))));
}

/** Runs `request` and checks that it answered 404 `unknown_tenant`, set no cookie and wrote nothing to the store. */
async function refusedAsUnknown(what: string, request: () => Promise<{ status: number; headers: Headers | IncomingHttpHeaders; text: string }>, json = true): Promise<void> {
  const before = JSON.stringify(await storeContents());
  const response = await request();
  assert.equal(response.status, 404, `${what}: ${response.text}`);
  if (json) {
    const body = JSON.parse(response.text) as { error: string; error_description: string };
    assert.equal(body.error, 'unknown_tenant', what);
    assert.match(body.error_description, /serves no tenant at this request's host and path .*map them to a tenant in byHost\(\) or byPath\(\)/, what);
    assert.doesNotMatch(body.error_description, /evil/, `${what}: the spoofed host stays out of the message`);
  }
  const setCookie = response.headers instanceof Headers ? response.headers.getSetCookie() : (response.headers['set-cookie'] ?? []);
  assert.deepEqual(setCookie, [], `${what} sets no cookie`);
  assert.equal(JSON.stringify(await storeContents()), before, `${what} wrote nothing to the session store or the tokens' records`);
}

describe('LogtoTenants and LogtoBearerTenants: a spoofed Host header', () => {
  test('sign-in, callback, guarded route, sign-out and back-channel logout answer 404 unknown_tenant and change nothing', async () => {
    const browser = new TestBrowser();
    await refusedAsUnknown('sign-in', () => spoofed(browser, `${url}/h/sign-in`), false);

    // A sign-in started on the real host: its callback, replayed with a spoofed Host, spends nothing.
    const callback = new URL(await callbackFor(browser, `${url}/h`, providerA));
    await refusedAsUnknown('callback', () => spoofed(browser, callback.href));
    const finished = await browser.get(callback.href);
    assert.equal(finished.location, `${url}/h/me`, 'the real callback still finishes the sign-in');
    assert.equal((await json(browser, `${url}/h/me`)).status, 200);

    // The session's cookie with a spoofed Host: no tenant's data, no sign-out, no logout.
    await refusedAsUnknown('guarded route', () => spoofed(browser, `${url}/h/me`));
    await refusedAsUnknown('sign-out', () => spoofed(browser, `${url}/h/sign-out`));
    const token = await logoutToken(providerA, hostTenants.tenant('a').config.appId, userOf(providerA).sub);
    await refusedAsUnknown('back-channel logout', () => spoofedPost(`${url}/h/backchannel-logout`, { logout_token: token }));
    assert.equal((await json(browser, `${url}/h/me`)).status, 200, 'the sign-in is still there');

    // The same logout token on the real host does end it: it was a valid one.
    assert.equal((await postLogout('/h', token)).status, 200);
    assert.equal((await json(browser, `${url}/h/me`)).status, 401);
  });

  test('the bearer tenants answer 404 unknown_tenant before looking at the token', async () => {
    const browser = new TestBrowser();
    await signInTo(browser, `${url}/a`, providerA);
    const token = (await json(browser, `${url}/a/api-token`)).body.token as string;
    const authorization = { authorization: `Bearer ${token}` };
    // Tenant a's token, which the real host accepts.
    assert.equal((await browser.request(`${url}/h/api`, { headers: authorization })).status, 200);
    await refusedAsUnknown('bearer middleware', () => spoofed(browser, `${url}/h/api-middleware`, authorization));
    await refusedAsUnknown('passport.authenticate with a callback', () => spoofed(browser, `${url}/h/api-callback`, authorization));
    const plain = await spoofed(browser, `${url}/h/api`, authorization);
    assert.deepEqual([plain.status, plain.text], [404, 'Not Found'], 'passport.authenticate without a callback');
    assert.equal(plain.headers.get('www-authenticate'), null, 'no challenge: a token would not help');
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

  test('byHost() and byPath() naming a tenant that does not exist fail at construction, with invalid_config', () => {
    assert.match(code(() => new LogtoTenants({ select: byHost({ 'acme.example': 'acme', 'globex.example': 'globx' }), tenants: { acme: base, globex: base } })) ?? '',
      /^invalid_config: .*select names tenant "globx", which is not one of its tenants \(acme, globex\)/);
    assert.match(code(() => new LogtoBearerTenants({ select: byPath({ '/acme': 'acme', '/b': 'b' }), tenants: { acme: { endpoint: base.endpoint, audience: 'https://api.example' } } })) ?? '',
      /^invalid_config: .*select names tenant "b"/);
    assert.match(code(() => byHost({ 'acme.example': 1 as unknown as string })) ?? '', /^invalid_config: .*must be a tenant name/);
  });

  test("the Fastify and Koa adapters refuse LogtoTenants and its tenants' strategies with tenants_express_only (500), saying what to do instead", () => {
    const tenants = new LogtoTenants({ select: byPath({ '/acme': 'acme' }), tenants: { acme: base } });
    // Its type is not a LogtoStrategy's; a JavaScript app (or a cast) gets this far.
    const given = [tenants as unknown as LogtoStrategy, tenants.tenant('acme')];
    for (const adapter of [logtoFastify, logtoKoa]) {
      for (const strategy of given) {
        assert.throws(() => adapter(strategy), (error: unknown) => {
          assert.ok(isLogtoError(error, 'tenants_express_only'), String(error));
          assert.equal(error.httpStatus, 500);
          assert.match(error.message, /serve Express apps only.*a LogtoStrategy of its own/s);
          return true;
        });
      }
    }
    // What the message advises is accepted.
    assert.equal(typeof logtoFastify(new LogtoStrategy(base)).plugin, 'function');
  });
});
