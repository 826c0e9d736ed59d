/**
 * An app without an error handler of its own: Express's default one (finalhandler) answers a
 * LogtoError that reaches `next()` with its `statusCode`, so a spoofed Host is a 404 and a
 * signed-out user a 401, not a 500. And the host and path that a client chose never land in an
 * error's message, so neither in a page nor, through Passport's `failureMessage`, in the session.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Express, RequestHandler } from 'express';
import session from 'express-session';
import { byHost, LogtoBearerTenants, LogtoTenants } from '../../lib/index.js';
import { watchForCrashes } from '../support/crash-watch.js';
import { API_RESOURCE, startProvider, type TestProvider } from '../support/provider/index.js';
import { rawGet } from '../support/raw-http.js';
import { loadPassport } from '../support/app.js';

const require = createRequire(import.meta.url);
const crashWatch = watchForCrashes();

let provider: TestProvider;
const servers: Server[] = [];

before(async () => {
  provider = await startProvider();
});
after(async () => {
  await crashWatch.stop();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  await provider.close();
  crashWatch.assertNone();
});

/** A Host header as an attacker writes it: markup, to see whether it reaches a page or the session. */
const spoofedHost = 'attacker.example"<img src=x onerror=alert(1)>';

for (const [flavor, passportFlavor] of [['express5', 'passport'], ['express4', 'passport06']] as const) {
  describe(`Express's default error handler and unknown_tenant, on ${flavor} with ${passportFlavor}`, () => {
    let port: number;
    let store: session.MemoryStore;

    before(async () => {
      const app = (require(flavor === 'express4' ? 'express4' : 'express') as () => Express)();
      const server = createServer(app);
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
      const url = `http://127.0.0.1:${port}`;
      const registered = await provider.registerApp({ redirectUris: [`${url}/callback`], postLogoutRedirectUris: [`${url}/`] });
      const tenants = new LogtoTenants({
        select: byHost({ '127.0.0.1': 'main' }),
        tenants: { main: { endpoint: provider.endpoint, appId: registered.appId, appSecret: registered.appSecret, callbackURL: `${url}/callback`, resources: [API_RESOURCE] } },
      });
      const bearer = new LogtoBearerTenants({ select: byHost({ '127.0.0.1': 'main' }), tenants: { main: { endpoint: provider.endpoint, audience: API_RESOURCE } } });
      const passport = loadPassport(passportFlavor === 'passport06' ? 'passport06' : 'passport07');
      passport.use(tenants);
      passport.serializeUser((user, done) => done(null, user));
      passport.deserializeUser((user, done) => done(null, user));
      store = new session.MemoryStore();
      // 'test' only keeps Express from printing each error's stack; the answers are those of any env but 'production'.
      app.set('env', 'test');
      app.use(session({ secret: 'default-error-handler', resave: false, saveUninitialized: false, store }));
      app.use(passport.initialize());
      app.use(passport.session());
      app.get('/callback', passport.authenticate('logto', { failureRedirect: '/failed', failureMessage: true }));
      app.get('/failed', (req, res) => res.json({ messages: (req.session as unknown as { messages?: string[] }).messages ?? [] }));
      // App routes that read the helper and hand its errors to next(), with no error handler after them.
      app.get('/profile', (req, res, next) => {
        tenants.client(req).load().then((client) => res.json({ signedIn: client.isAuthenticated() }), next);
      });
      app.get('/api-token', (req, res, next) => {
        tenants
          .client(req)
          .load()
          .then((client) => client.getAccessToken(API_RESOURCE))
          .then((token) => res.json({ token }), next);
      });
      app.get('/tenant', (req, res) => res.json({ tenant: bearer.tenantOf(req) }));
      app.get('/misconfigured', (_req, res) => res.json({ strategy: tenants.tenant('no-such-tenant').name }));
    });

    test('a spoofed Host on routes that call tenants.client(req) or tenantOf(req) gets 404, and the page does not repeat the host', async () => {
      for (const path of ['/profile', '/api-token', '/tenant']) {
        const response = await rawGet(port, path, { host: spoofedHost });
        assert.equal(response.status, 404, `${path}: ${response.text}`);
        assert.doesNotMatch(response.text, /attacker|<img/, `${path}: the page holds none of the client's Host`);
      }
    });

    test('other request-caused LogtoErrors get their 4xx; the app\'s own mistakes still get 500', async () => {
      // Signed out: not_authenticated.
      assert.equal((await rawGet(port, '/api-token')).status, 401);
      assert.equal((await rawGet(port, '/profile')).status, 200, 'the right host, signed out: no error at all');
      // A tenant name that is not configured is the app's bug: invalid_config.
      assert.equal((await rawGet(port, '/misconfigured')).status, 500);
    });

    test('failureMessage stores a fixed message for a spoofed Host, nothing of what the client sent', async () => {
      for (let attempt = 0; attempt < 2; attempt += 1) {
        const response = await rawGet(port, `/callback?code=x&state=y&attempt=${attempt}`, { host: spoofedHost });
        assert.equal(response.status, 302, response.text);
        assert.equal(response.headers.location, '/failed');
      }
      const sessions = await new Promise<Record<string, unknown>>((resolve, reject) => {
        store.all((error, all) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve((all ?? {}) as Record<string, unknown>)));
      });
      // Passport writes `messages` into a session on any failure with failureMessage: that much is Passport's.
      const stored = JSON.stringify(sessions);
      assert.match(stored, /serves no tenant at this request's host and path/);
      assert.doesNotMatch(stored, /attacker|<img|callback\?/, 'nothing the client chose is in the session store');
    });
  });
}

