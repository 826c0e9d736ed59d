/**
 * Where a sign-in's tokens live: a record of their own outside the session. Single-process cases
 * against the test provider with Logto's rules (a used refresh token works for 3 s, after which
 * Logto revokes the whole grant); test/store/multi-instance.test.ts covers several processes.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import type { Express, NextFunction, Request, Response } from 'express';
import session from 'express-session';
import cookieSession from 'cookie-session';
import { createHmac } from 'node:crypto';
import { LogtoError, LogtoStrategy, MemoryTokenStore, UserScope } from '../../lib/index.js';
import { startApp, type PassportFlavor, type RunningApp } from '../support/app.js';
import { assertNoLateReuse, getJson, refreshRequests, signIn, tokensOf, type HomeBody, type SessionBody } from '../support/flows.js';
import { endSessionAtProvider, signInAtProvider, TestBrowser } from '../support/http-client.js';
import { API_RESOURCE, startProvider, type TestProvider } from '../support/provider/index.js';

const require = createRequire(import.meta.url);
/** express-session's signed cookie value for a session id. */
const sign = (sid: string, secret: string): string => `${sid}.${createHmac('sha256', secret).update(sid).digest('base64').replace(/=+$/, '')}`;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const resource = encodeURIComponent(API_RESOURCE);

let provider: TestProvider;
before(async () => {
  // Tokens that live 5 s: long enough to stay valid through a burst on a busy machine.
  provider = await startProvider({ accessTokenTtl: 5 });
});
after(() => provider.close());
const expire = (): Promise<void> => sleep(5100);

function tokenRoutes(app: Express, logto: LogtoStrategy): void {
  app.get('/token', (req, res, next) => {
    const { resource: wanted, org } = req.query as Record<string, string | undefined>;
    logto.client(req).getAccessToken(wanted, org).then((token) => res.json({ token }), next);
  });
}

const scopes = [UserScope.Organizations, 'read:items', 'read:members'];

describe('one home per sign-in, with MemoryStore', () => {
  test('the session holds only a short reference; the tokens are read from their record', async () => {
    const running = await startApp(provider, { strategy: { scopes, resources: [API_RESOURCE] } });
    try {
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      const { session: stored } = (await getJson<SessionBody>(browser, `${running.url}/session`)).body;
      const ours = JSON.stringify({ logto: stored.logto });
      assert.ok(ours.length <= 60, `the session grows by ${ours.length} bytes only`);
      const tokens = await tokensOf(browser, running);
      assert.equal(typeof tokens.idToken, 'string');
      assert.equal(typeof tokens.refreshToken, 'string');
      assert.equal(JSON.stringify(stored).includes(String(tokens.refreshToken)), false);
    } finally {
      await running.close();
    }
  });

  test('two different tokens refreshed at once, then a restart: the next refresh still uses the newest refresh token', async () => {
    const store = new session.MemoryStore();
    const options = { store, cookieName: 'restart-sid', strategy: { scopes, resources: [API_RESOURCE], accessTokenExpiryMargin: 0 }, routes: tokenRoutes };
    let running: RunningApp = await startApp(provider, options);
    const browser = new TestBrowser();
    try {
      await signIn(browser, provider, running);
      await expire();
      const grants = provider.revokedGrants();
      provider.resetRequests();
      const [api, org] = await Promise.all([
        getJson<{ token?: string }>(browser, `${running.url}/token?resource=${resource}`),
        getJson<{ token?: string }>(browser, `${running.url}/token?org=org-acme`),
      ]);
      assert.equal(api.status, 200, JSON.stringify(api.body));
      assert.equal(org.status, 200, JSON.stringify(org.body));
      assert.equal(refreshRequests(provider).length, 2);

      // A new process on the same session store: nothing of the old one's memory survives.
      const registered = running.registered;
      await running.close();
      running = await startApp(provider, { ...options, instanceOf: registered });
      await expire();
      const later = await getJson<{ token?: string }>(browser, `${running.url}/token?resource=${resource}&org=org-acme`);
      assert.equal(later.status, 200, JSON.stringify(later.body));
      assertNoLateReuse(provider, grants);
    } finally {
      await running.close();
    }
  });

  test("a refreshed ID token that cannot be checked (JWKS down after a key rotation) does not lose the rotated refresh token", async () => {
    const running = await startApp(provider, { strategy: { scopes, resources: [API_RESOURCE], accessTokenExpiryMargin: 0, jwksCooldown: 0 }, routes: tokenRoutes });
    try {
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      await expire();
      const grants = provider.revokedGrants();
      provider.resetRequests();
      await provider.rotateSigningKey();
      provider.setFault('/oidc/jwks', { status: 503, body: '{"error":"unavailable"}' });
      try {
        const failed = await getJson<{ error?: string }>(browser, `${running.url}/token?resource=${resource}`);
        assert.equal(failed.status, 500);
        assert.equal(failed.body.error, 'provider_error');
      } finally {
        provider.setFault('/oidc/jwks', undefined);
      }
      await sleep(3200);
      const later = await getJson<{ token?: string }>(browser, `${running.url}/token?org=org-acme`);
      assert.equal(later.status, 200, JSON.stringify(later.body));
      assertNoLateReuse(provider, grants);
    } finally {
      await running.close();
    }
  });

  test('a gateway that answers 504 after Logto rotated the token: the refresh token is kept, and its late use ends only this sign-in', async () => {
    // A proxy in front of Logto: the refresh goes through, the answer is lost behind a 504.
    let gatewayDown = false;
    const gateway = async (url: string, init: RequestInit): Promise<globalThis.Response> => {
      const response = await fetch(url, init);
      if (gatewayDown && url.endsWith('/oidc/token')) return new globalThis.Response('<h1>504 Gateway Timeout</h1>', { status: 504, headers: { 'content-type': 'text/html' } });
      return response;
    };
    const running = await startApp(provider, { strategy: { scopes, resources: [API_RESOURCE], accessTokenExpiryMargin: 0, fetch: gateway }, routes: tokenRoutes });
    try {
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      await expire();
      const grants = provider.revokedGrants();
      provider.resetRequests();
      gatewayDown = true;
      const lost = await getJson<{ error?: string }>(browser, `${running.url}/token?resource=${resource}`);
      gatewayDown = false;
      assert.equal(lost.body.error, 'provider_error');
      await sleep(3200);
      // Logto rotated it: its late use is Logto's word that this sign-in is over, as dropping it would have said.
      const later = await getJson<{ error?: string }>(browser, `${running.url}/token?resource=${resource}`);
      assert.equal(later.body.error, 'not_authenticated', 'signing in again is the way back');
      assert.ok(provider.revokedGrants() <= grants + 1, 'at most this sign-in\'s grant ended');
      assert.equal(await signIn(browser, provider, running), `${running.url}/`);
    } finally {
      await running.close();
    }
  });

  test('a request in flight when the user signs out does not sign them back in', async () => {
    const running = await startApp(provider, {
      strategy: { scopes, resources: [API_RESOURCE], accessTokenExpiryMargin: 0 },
      routes: (express, logto) => {
        express.get('/dashboard', logto.authenticated({ redirect: '/sign-in', accessToken: API_RESOURCE }), (_req, res) => res.json({ ok: true }));
      },
    });
    try {
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      const cookieName = `sid-${new URL(running.url).port}`;
      const oldSession = `${cookieName}=${browser.cookie('127.0.0.1', cookieName) ?? ''}`;
      await expire();
      provider.setTokenResponseTamper(async (body, params) => {
        if (params.grant_type === 'refresh_token') await sleep(800);
        return body;
      });
      try {
        const inFlight = browser.get(`${running.url}/dashboard`);
        await sleep(200);
        assert.equal((await browser.get(`${running.url}/sign-out`)).status, 302);
        await inFlight;
      } finally {
        provider.setTokenResponseTamper(undefined);
      }
      assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.user, null, 'the browser stays signed out');
      const old = JSON.parse((await new TestBrowser().request(`${running.url}/`, { headers: { cookie: oldSession } })).text) as HomeBody;
      assert.equal(old.user, null, 'the old session id stays signed out');
    } finally {
      await running.close();
    }
  });

  test('a callback that failed on a JWKS outage finishes on a reload, with one code exchange', async () => {
    const running = await startApp(provider, { strategy: { jwksCooldown: 0 } });
    try {
      const browser = new TestBrowser();
      const started = await browser.get(`${running.url}/sign-in`);
      const callback = await signInAtProvider(browser, started.location ?? '', provider.users.demo, running.callbackURL);
      await provider.rotateSigningKey();
      provider.resetRequests();
      provider.setFault('/oidc/jwks', { status: 503, body: '{"error":"unavailable"}' });
      try {
        assert.equal((await browser.get(callback)).status, 500);
      } finally {
        provider.setFault('/oidc/jwks', undefined);
      }
      const reloaded = await browser.get(callback);
      assert.equal(reloaded.location, `${running.url}/`, reloaded.text);
      assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.authenticated, true);
      assert.equal(provider.countRequests('/oidc/token', (r) => r.params.grant_type === 'authorization_code'), 1);
    } finally {
      await running.close();
    }
  });

  test('a session written by 0.1.0 (tokens inside it) keeps working, and is moved to a record once', async () => {
    const store = new session.MemoryStore();
    const running = await startApp(provider, { store, strategy: { scopes, resources: [API_RESOURCE] }, routes: tokenRoutes });
    try {
      // Sign in with one browser to get real tokens, then plant them in a session of the old shape.
      const source = new TestBrowser();
      await signIn(source, provider, running);
      const tokens = await tokensOf(source, running);
      const user = (await getJson<HomeBody>(source, `${running.url}/`)).body.user;
      const sid = 'legacy-session-0-1-0';
      const legacy = {
        cookie: { originalMaxAge: null, expires: null, httpOnly: true, path: '/' },
        passport: { user },
        logto: {
          tokens: {
            signInId: 'c0ffee00-0000-4000-8000-000000000001',
            idToken: tokens.idToken,
            refreshToken: tokens.refreshToken,
            accessToken: { token: 'expired-opaque-token', expiresAt: 1 },
          },
        },
      };
      await new Promise<void>((resolve, reject) => store.set(sid, legacy as unknown as session.SessionData, (error) => (error ? reject(error) : resolve())));
      // The first browser signs out locally only, so that its refresh token stays the legacy session's.
      const browser = new TestBrowser();
      const cookie = `sid-${new URL(running.url).port}=${encodeURIComponent(`s:${sign(sid, 'test-secret')}`)}`;
      const get = async <T>(path: string): Promise<{ status: number; body: T }> => {
        const response = await browser.request(`${running.url}${path}`, { headers: { cookie } });
        return { status: response.status, body: JSON.parse(response.text) as T };
      };
      assert.equal((await get<HomeBody>('/')).body.authenticated, true);
      const read = await get<{ refreshToken: string | null }>('/tokens');
      assert.ok(read.body.refreshToken);
      assert.notEqual(read.body.refreshToken, tokens.refreshToken, 'moving it asked Logto whether the grant is alive: the rotated refresh token is kept');
      const { session: moved } = (await get<SessionBody>('/session')).body;
      assert.equal(moved.logto, 'c0ffee00-0000-4000-8000-000000000001', 'the session now refers to the record');
      const refreshed = await get<{ token?: string }>(`/token?resource=${resource}`);
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
      assert.notEqual((await get<{ refreshToken: string | null }>('/tokens')).body.refreshToken, read.body.refreshToken, 'the rotated refresh token is kept');
    } finally {
      await running.close();
    }
  });

  test("a page's requests arriving together at an instance without a copy of the record share one store read", async () => {
    /** Holds record reads until released, so that the requests overlap as on a slow store. */
    class GatedStore extends MemoryTokenStore {
      recordReads = 0;
      gated = false;
      private waiting: Array<() => void> = [];
      override get(key: string): Promise<string | undefined> {
        if (!key.startsWith('tokens:') || !this.gated) return super.get(key);
        this.recordReads += 1;
        return new Promise<void>((resolve) => this.waiting.push(resolve)).then(() => super.get(key));
      }
      release(): void {
        this.gated = false;
        for (const resolve of this.waiting.splice(0)) resolve();
      }
    }
    const tokenStore = new GatedStore();
    let arrived = 0;
    const options = {
      store: new session.MemoryStore(),
      cookieName: 'shared-read-sid',
      // The guard's own read is counted here, without logto.session() reading first.
      sessionCheck: false,
      strategy: { scopes, resources: [API_RESOURCE], tokenStore },
      routes: (app: Express, logto: LogtoStrategy) => {
        app.get('/gated', (_req, _res, next) => void (arrived += 1, next()), logto.authenticated(), (req, res) => res.json({ sub: req.logto?.getIdTokenClaims().sub }));
      },
    };
    const first = await startApp(provider, options);
    const browser = new TestBrowser();
    let second: RunningApp | undefined;
    try {
      await signIn(browser, provider, first);
      // Another instance on the same stores: it has read nothing yet.
      second = await startApp(provider, { ...options, instanceOf: first.registered });
      tokenStore.gated = true;
      const answers = Promise.all(Array.from({ length: 8 }, () => getJson<{ sub?: string }>(browser, `${second?.url}/gated`)));
      while (arrived < 8) await new Promise((resolve) => setImmediate(resolve));
      tokenStore.release();
      for (const answer of await answers) {
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        assert.equal(typeof answer.body.sub, 'string');
      }
      assert.equal(tokenStore.recordReads, 1, 'eight requests, one read of the record');
    } finally {
      await first.close();
      await second?.close();
    }
  });

  test('`tokenStore` must be a store; a session middleware without a store needs one', async () => {
    assert.throws(
      () => new LogtoStrategy({ endpoint: provider.endpoint, appId: 'a', appSecret: 's', callbackURL: 'http://127.0.0.1:1/callback', tokenStore: {} as never }),
      (error: unknown) => error instanceof LogtoError && error.code === 'invalid_config' && /tokenStore/.test(error.message),
    );
  });
});

/** A real cookie-session app, with the two no-op methods that Passport 0.6+ calls on a session. */
async function cookieSessionApp(flavor: PassportFlavor, tokenStore: MemoryTokenStore | undefined): Promise<{ url: string; close(): Promise<void> }> {
  const express = require('express') as () => Express;
  const { Passport } = require(flavor === 'passport06' ? 'passport06' : 'passport') as { Passport: new () => import('passport').PassportStatic };
  const app = express();
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const registered = await provider.registerApp({ redirectUris: [`${url}/callback`], postLogoutRedirectUris: [`${url}/`] });
  const logto = new LogtoStrategy({
    endpoint: provider.endpoint,
    appId: registered.appId,
    appSecret: registered.appSecret,
    callbackURL: `${url}/callback`,
    postLogoutRedirectUri: `${url}/`,
    scopes,
    resources: [API_RESOURCE],
    accessTokenExpiryMargin: 0,
    ...(tokenStore ? { tokenStore } : {}),
  });
  const passport = new Passport();
  passport.use(logto);
  passport.serializeUser((user, done) => done(null, user));
  passport.deserializeUser((user: Express.User, done) => done(null, user));
  app.use(cookieSession({ name: `cs-${new URL(url).port}`, keys: ['cookie-session-key'] }));
  app.use((req: Request, _res: Response, next: NextFunction) => {
    const current = req.session as unknown as { regenerate?: unknown; save?: unknown } | null | undefined;
    if (current && !current.regenerate) current.regenerate = (done: () => void) => done();
    if (current && !current.save) current.save = (done: () => void) => done();
    next();
  });
  app.use(passport.initialize());
  app.use(passport.session());
  app.get('/sign-in', passport.authenticate('logto'));
  app.get('/callback', passport.authenticate('logto', { successReturnToOrRedirect: '/', failureRedirect: '/failed' }));
  app.get('/', (req, res) => res.json({ user: req.user ?? null, authenticated: logto.client(req).isAuthenticated() }));
  app.get('/claims', logto.authenticated(), (req, res) => res.json(req.logto?.getIdTokenClaims()));
  tokenRoutes(app, logto);
  app.get('/sign-out', logto.signOut());
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    res.status(500).json({ error: error instanceof LogtoError ? error.code : 'internal_error', message: String(error) });
  });
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('cookie-session', () => {
  for (const flavor of ['passport06', 'passport07'] as const) {
    test(`${flavor} with a token store: sign in, claims, refresh, sign out`, async () => {
      const running = await cookieSessionApp(flavor, new MemoryTokenStore());
      try {
        const browser = new TestBrowser();
        const started = await browser.get(`${running.url}/sign-in`);
        const callback = await signInAtProvider(browser, started.location ?? '', provider.users.demo, `${running.url}/callback`);
        assert.equal((await browser.get(callback)).location, `${running.url}/`);
        const home = (await getJson<{ user: { id: string } | null; authenticated: boolean }>(browser, `${running.url}/`)).body;
        assert.equal(home.user?.id, provider.users.demo.sub);
        assert.equal(home.authenticated, true);
        assert.equal((await getJson<{ sub: string }>(browser, `${running.url}/claims`)).body.sub, provider.users.demo.sub);
        await expire();
        assert.equal((await getJson(browser, `${running.url}/token?resource=${resource}`)).status, 200);
        const out = await browser.get(`${running.url}/sign-out`);
        assert.equal(out.status, 302);
        await endSessionAtProvider(browser, out.location ?? '');
        assert.equal((await getJson<{ user: unknown }>(browser, `${running.url}/`)).body.user, null);
        assert.equal((await browser.get(`${running.url}/claims`)).status, 401);
      } finally {
        await running.close();
      }
    });
  }

  test('without a token store, the callback says what to add', async () => {
    const running = await cookieSessionApp('passport07', undefined);
    try {
      const browser = new TestBrowser();
      const started = await browser.get(`${running.url}/sign-in`);
      const callback = await signInAtProvider(browser, started.location ?? '', provider.users.demo, `${running.url}/callback`);
      const failed = await browser.get(callback);
      assert.equal(failed.status, 500);
      const body = JSON.parse(failed.text) as { error: string; message: string };
      assert.equal(body.error, 'session_required');
      assert.match(body.message, /tokenStore/);
    } finally {
      await running.close();
    }
  });
});
