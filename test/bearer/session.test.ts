/**
 * Bearer authentication never touches the session: an API route that forgets `{ session: false }`
 * must not create a session for a token, nor regenerate or rewrite the session of a browser that
 * happens to send its cookie along. Real express-session, real Passport (0.6 and 0.7), Express 4 and 5.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import session from 'express-session';
import { LogtoBearerStrategy } from '../../lib/index.js';
import { watchForCrashes } from '../support/crash-watch.js';
import { API_RESOURCE, startProvider, type TestProvider } from '../support/provider/index.js';

const require = createRequire(import.meta.url);
const crashWatch = watchForCrashes();

interface PassportLike {
  initialize(): RequestHandler;
  session(): RequestHandler;
  use(strategy: LogtoBearerStrategy): void;
  authenticate(name: string, options?: object): RequestHandler;
  serializeUser(fn: (user: unknown, done: (error: unknown, id?: unknown) => void) => void): void;
  deserializeUser(fn: (id: unknown, done: (error: unknown, user?: unknown) => void) => void): void;
}

/**
 * A MemoryStore that counts what is written to it. `touch` is left out: express-session touches
 * a loaded session on every request by itself (a bare GET does too), whatever the route does.
 */
class CountingStore extends session.MemoryStore {
  writes = 0;
  override set(sid: string, data: session.SessionData, callback?: (error?: unknown) => void): void {
    this.writes += 1;
    super.set(sid, data, callback);
  }
  override destroy(sid: string, callback?: (error?: unknown) => void): void {
    this.writes += 1;
    super.destroy(sid, callback);
  }
  snapshot(): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      this.all((error, sessions) => (error ? reject(error) : resolve(JSON.parse(JSON.stringify(sessions ?? {})) as Record<string, unknown>)));
    });
  }
}

interface RunningApi {
  url: string;
  store: CountingStore;
  /** The options object of the route that forgot `{ session: false }`, to check it is left as it was. */
  routeOptions: Record<string, unknown>;
  errors: unknown[];
  close(): Promise<void>;
}

async function startApi(provider: TestProvider, flavor: { express: string; passport: string }): Promise<RunningApi> {
  const express = require(flavor.express) as () => Express;
  const { Passport } = require(flavor.passport) as { Passport: new () => PassportLike };
  const app = express();
  const passport = new Passport();
  passport.use(new LogtoBearerStrategy({ endpoint: provider.endpoint, audience: API_RESOURCE }));
  passport.serializeUser((user, done) => done(null, user));
  passport.deserializeUser((user, done) => done(null, user));
  const store = new CountingStore();
  app.use(session({ name: 'sid', secret: 'test-secret', resave: false, saveUninitialized: false, store }));
  app.use(passport.initialize());
  app.use(passport.session());

  // A browser session, signed in the ordinary way.
  app.post('/login', (req, res, next) => {
    req.login({ id: 'browser-user' }, (error) => (error ? next(error) : res.json({ sessionID: req.sessionID })));
  });
  app.get('/whoami', (req, res) => {
    res.json({ user: req.user ?? null, sessionID: req.sessionID });
  });
  const routeOptions: Record<string, unknown> = {};
  app.get('/api/items', passport.authenticate('logto-bearer', routeOptions), (req, res) => {
    res.json({ user: req.user, authInfo: req.authInfo });
  });
  const errors: unknown[] = [];
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    errors.push(error);
    res.status(500).json({ error: error instanceof Error ? error.message : String(error) });
  });

  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    store,
    routeOptions,
    errors,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

let provider: TestProvider;
before(async () => {
  provider = await startProvider();
});
after(async () => {
  await crashWatch.stop();
  await provider.close();
  crashWatch.assertNone();
});

function accessToken(): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return provider.sign(
    { iss: provider.issuer, sub: provider.users.demo.sub, aud: API_RESOURCE, client_id: provider.app.appId, scope: 'read:items', iat: now, exp: now + 300, jti: randomUUID() },
    { typ: 'at+jwt' },
  );
}

const flavors = [
  { express: 'express', passport: 'passport' },
  { express: 'express4', passport: 'passport06' },
];

for (const flavor of flavors) {
  describe(`a bearer route without { session: false } (${flavor.express}, ${flavor.passport})`, () => {
    let api: RunningApi;
    before(async () => {
      api = await startApi(provider, flavor);
    });
    after(() => api.close());

    test('a token alone: authenticated, but no session is created (no Set-Cookie, nothing stored)', async () => {
      const writes = api.store.writes;
      const response = await fetch(`${api.url}/api/items`, { headers: { authorization: `Bearer ${await accessToken()}` } });
      assert.equal(response.status, 200, await response.clone().text());
      const body = (await response.json()) as { user: { sub: string }; authInfo: { scopes: string[] } };
      assert.equal(body.user.sub, provider.users.demo.sub);
      assert.deepEqual(body.authInfo.scopes, ['read:items']);
      assert.deepEqual(response.headers.getSetCookie(), []);
      assert.equal(api.store.writes, writes, 'no store write');
      assert.deepEqual(await api.store.snapshot(), {});
      assert.deepEqual(api.routeOptions, {}, 'the route\'s options are left as they were');
      assert.deepEqual(api.errors, []);
    });

    test('a token sent with a signed-in browser\'s cookie: that session is neither regenerated nor rewritten', async () => {
      const login = await fetch(`${api.url}/login`, { method: 'POST' });
      assert.equal(login.status, 200);
      const cookie = (login.headers.getSetCookie()[0] ?? '').split(';')[0] ?? '';
      assert.match(cookie, /^sid=/);
      const { sessionID } = (await login.json()) as { sessionID: string };
      const stored = await api.store.snapshot();
      const writes = api.store.writes;

      const response = await fetch(`${api.url}/api/items`, { headers: { authorization: `Bearer ${await accessToken()}`, cookie } });
      assert.equal(response.status, 200, await response.clone().text());
      assert.equal(((await response.json()) as { user: { sub: string } }).user.sub, provider.users.demo.sub, 'the token decides req.user');
      assert.deepEqual(response.headers.getSetCookie(), []);
      assert.equal(api.store.writes, writes, 'no store write');
      assert.deepEqual(await api.store.snapshot(), stored, 'the stored session is unchanged');

      const whoami = (await (await fetch(`${api.url}/whoami`, { headers: { cookie } })).json()) as { user: unknown; sessionID: string };
      assert.deepEqual(whoami, { user: { id: 'browser-user' }, sessionID }, 'the browser is still signed in as before, in the same session');
      assert.deepEqual(api.routeOptions, {});
      assert.deepEqual(api.errors, []);
    });

    test('a refused token does not touch the session either', async () => {
      const writes = api.store.writes;
      const response = await fetch(`${api.url}/api/items`, { headers: { authorization: 'Bearer not-a-jwt' } });
      assert.equal(response.status, 401);
      assert.deepEqual(response.headers.getSetCookie(), []);
      assert.equal(api.store.writes, writes);
    });
  });
}
