/**
 * byPath() picks the tenant whose routes Express serves, whatever the spelling of the path: other
 * letter case, an absolute-form request target, percent-encoding, `//`, nested prefixes, and an
 * app with `case sensitive routing` whose routers still ignore case. A request is served by the
 * right tenant or answered 404 `unknown_tenant`; a user or token of one tenant never passes
 * another tenant's guard. On Express 5 and Express 4, for LogtoTenants and LogtoBearerTenants.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Express, NextFunction, Request, RequestHandler, Response, Router } from 'express';
import session from 'express-session';
import { byPath, LogtoBearerTenants, LogtoError, LogtoTenants } from '../../lib/index.js';
import { watchForCrashes } from '../support/crash-watch.js';
import { signInAtProvider, TestBrowser } from '../support/http-client.js';
import { API_RESOURCE, startProvider, type TestProvider } from '../support/provider/index.js';
import { rawGet, type RawResponse } from '../support/raw-http.js';
import { loadPassport } from '../support/app.js';

const require = createRequire(import.meta.url);
const crashWatch = watchForCrashes();

type ExpressModule = (() => Express) & { Router: (options?: { caseSensitive?: boolean }) => Router };
/** Logto tenant `main` (served at `/` and `/api`) and tenant `acme` (at `/acme` and `/api/acme`), two Logtos. */
let providers: { main: TestProvider; acme: TestProvider };
const servers: Server[] = [];

before(async () => {
  providers = { main: await startProvider(), acme: await startProvider() };
});
after(async () => {
  await crashWatch.stop();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  await providers.main.close();
  await providers.acme.close();
  crashWatch.assertNone();
});

async function listen(app: Express): Promise<number> {
  const server = createServer(app);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

type Tenant = 'main' | 'acme';
/** What every page and API route answers: which router served the request, and which tenant the strategy picked. */
interface Served {
  router: Tenant;
  tenant: Tenant;
  iss?: string;
  error?: string;
}

function parsed(response: RawResponse): Served {
  return JSON.parse(response.text) as Served;
}

/** The error handler of an app that follows the README: a LogtoError's httpStatus, and its code. */
function answerErrors(error: unknown, _req: Request, res: Response, _next: NextFunction): void {
  res.status(error instanceof LogtoError ? error.httpStatus : 500).json({ error: error instanceof LogtoError ? error.code : String(error) });
}

/**
 * Each way of writing a path, and the router that Express serves it with (in the default
 * configuration: routing ignores letter case and matches the path as sent, not decoded).
 */
function pageTargets(port: number): Array<[string, Tenant]> {
  return [
    ['/acme/admin', 'acme'],
    ['/ACME/admin', 'acme'],
    ['/Acme/Admin/', 'acme'],
    [`http://127.0.0.1:${port}/acme/admin`, 'acme'],
    [`http://127.0.0.1:${port}/ACME/admin?x=1`, 'acme'],
    [`HTTP://evil.example/aCmE/admin`, 'acme'],
    ['/acme/admin#fragment', 'acme'],
    ['/acme/../admin', 'acme'],
    ['/%61cme/admin', 'main'],
    ['/%41CME/admin', 'main'],
    ['/acme%2Fadmin', 'main'],
    ['//acme/admin', 'main'],
    ['/acmecorp/admin', 'main'],
    ['/admin', 'main'],
    [`http://127.0.0.1:${port}/admin`, 'main'],
  ];
}

/**
 * The same for the APIs, mounted flat: `app.use('/api/acme', ...)` and `app.use('/api', ...)`.
 * `unknown_tenant` where the two majors' routers disagree with the target, which no tenant serves.
 */
function apiTargets(port: number, flavor: 'express5' | 'express4'): Array<[string, Tenant | 'unknown_tenant']> {
  return [
    ['/api/acme/items', 'acme'],
    ['/API/ACME/items', 'acme'],
    ['/api/Acme/items', 'acme'],
    [`http://127.0.0.1:${port}/api/acme/items`, 'acme'],
    [`http://127.0.0.1:${port}/Api/ACME/items`, 'acme'],
    ['/api/%61cme/items', 'main'],
    ['/api/acmecorp/items', 'main'],
    // Express 4 drops a slash after a mount path: main's router gets it as /acme/items, which nested routers would route to acme.
    ['/api//acme/items', flavor === 'express4' ? 'unknown_tenant' : 'main'],
    ['/api/items', 'main'],
    ['/API/items', 'main'],
    [`http://127.0.0.1:${port}/api/items`, 'main'],
  ];
}

/**
 * A request of a user or token of tenant `of` to a route that `router` serves: the right tenant
 * lets it through only on its own routes; anything else is refused (401, or 404 unknown_tenant).
 */
function assertServedRight(response: RawResponse, of: Tenant, router: Tenant | 'unknown_tenant', what: string): void {
  if (router === 'unknown_tenant') {
    assert.deepEqual([response.status, parsed(response).error], [404, 'unknown_tenant'], what);
    return;
  }
  if (router === of) {
    assert.equal(response.status, 200, `${what}: ${response.text}`);
    const body = parsed(response);
    assert.deepEqual([body.router, body.tenant, body.iss], [of, of, providers[of].issuer], what);
    return;
  }
  assert.ok(response.status === 401 || response.status === 404, `${what}: ${of}'s credentials on ${router}'s route got ${response.status} ${response.text}`);
  if (response.status === 404) assert.equal(parsed(response).error, 'unknown_tenant', what);
}

for (const flavor of ['express5', 'express4'] as const) {
  describe(`byPath() on ${flavor}: the tenant is the one whose routes Express serves`, () => {
    const express = require(flavor === 'express4' ? 'express4' : 'express') as ExpressModule;
    let port: number;
    let url: string;
    let tenants: LogtoTenants;
    let bearer: LogtoBearerTenants;
    const api = (router: Tenant): RequestHandler => (req, res) => {
      res.json({ router, tenant: bearer.tenantOf(req), iss: (req.authInfo as { claims: { iss: string } }).claims.iss });
    };
    const browsers = { main: new TestBrowser(), acme: new TestBrowser() };
    const tokens: Partial<Record<Tenant, string>> = {};
    const cookieName = `sid-paths-${flavor}`;

    before(async () => {
      const app = express();
      port = await listen(app);
      url = `http://127.0.0.1:${port}`;
      const registered = {
        main: await providers.main.registerApp({ redirectUris: [`${url}/callback`], postLogoutRedirectUris: [`${url}/`] }),
        acme: await providers.acme.registerApp({ redirectUris: [`${url}/acme/callback`], postLogoutRedirectUris: [`${url}/acme/`] }),
      };
      const webOptions = (tenant: Tenant, base: string) => ({
        endpoint: providers[tenant].endpoint,
        appId: registered[tenant].appId,
        appSecret: registered[tenant].appSecret,
        callbackURL: `${base}/callback`,
        resources: [API_RESOURCE],
      });
      tenants = new LogtoTenants({ select: byPath({ '/': 'main', '/acme': 'acme' }), tenants: { main: webOptions('main', url), acme: webOptions('acme', `${url}/acme`) } });
      bearer = new LogtoBearerTenants({
        select: byPath({ '/api': 'main', '/api/acme': 'acme' }),
        tenants: { main: { endpoint: providers.main.endpoint, audience: API_RESOURCE }, acme: { endpoint: providers.acme.endpoint, audience: API_RESOURCE } },
      });
      const passport = loadPassport(flavor === 'express4' ? 'passport06' : 'passport07');
      passport.use(tenants);
      passport.serializeUser((user, done) => done(null, user));
      passport.deserializeUser((user, done) => done(null, user));
      app.use(session({ name: cookieName, secret: 'tenant-paths', resave: false, saveUninitialized: false }));
      app.use(passport.initialize());
      app.use(passport.session());

      const page = (router: Tenant): RequestHandler => (req, res) => {
        res.json({ router, tenant: tenants.tenantOf(req), iss: req.logto?.getIdTokenClaims().iss });
      };
      const tokenRoute = tenants.authenticated({ accessToken: API_RESOURCE }, (req, res) => res.json({ token: req.logto.accessToken }));

      // Each tenant's pages in a router of its own, with a catch-all, so that nothing falls through to another's.
      const acme = express.Router();
      acme.get('/sign-in', passport.authenticate('logto'));
      acme.get('/callback', passport.authenticate('logto', { successRedirect: '/acme/admin' }));
      acme.get('/api-token', tokenRoute);
      acme.use(tenants.authenticated(), page('acme'));
      app.use('/acme', acme);
      // Nested prefixes: /api/acme is acme's API, the rest of /api main's.
      app.use('/api/acme', bearer.middleware(), api('acme'));
      app.use('/api', bearer.middleware(), api('main'));
      app.get('/sign-in', passport.authenticate('logto'));
      app.get('/callback', passport.authenticate('logto', { successRedirect: '/admin' }));
      app.get('/api-token', tokenRoute);
      app.use(tenants.authenticated(), page('main'));
      app.use(answerErrors);

      for (const tenant of ['main', 'acme'] as const) {
        const base = tenant === 'main' ? url : `${url}/acme`;
        const browser = browsers[tenant];
        const start = await browser.get(`${base}/sign-in`);
        assert.ok(start.location?.startsWith(providers[tenant].issuer), `${tenant}'s sign-in goes to its own Logto: ${start.location}`);
        const callback = await browser.get(await signInAtProvider(browser, start.location ?? '', providers[tenant].users.demo, `${base}/callback`));
        assert.equal(callback.status, 302, callback.text);
        const token = await browser.get(`${base}/api-token`);
        assert.equal(token.status, 200, token.text);
        tokens[tenant] = (JSON.parse(token.text) as { token: string }).token;
      }
    });

    const cookieOf = (tenant: Tenant): Record<string, string> => ({ cookie: `${cookieName}=${browsers[tenant].cookie('127.0.0.1', cookieName) ?? ''}` });

    test('LogtoTenants: a page is guarded by the tenant of the router that serves it, however its path is written', async () => {
      for (const [target, router] of pageTargets(port)) {
        for (const tenant of ['main', 'acme'] as const) {
          assertServedRight(await rawGet(port, target, cookieOf(tenant)), tenant, router, `${tenant}'s user, GET ${target}`);
        }
        // Signed out: the guard of the serving router's tenant refuses, as for any page of it.
        assert.equal((await rawGet(port, target)).status, 401, `signed out, GET ${target}`);
      }
    });

    test('LogtoBearerTenants: a token passes only the API of its own tenant, however the path is written; nested prefixes pick the longest', async () => {
      for (const [target, router] of apiTargets(port, flavor)) {
        for (const tenant of ['main', 'acme'] as const) {
          const response = await rawGet(port, target, { authorization: `Bearer ${tokens[tenant] ?? ''}` });
          assertServedRight(response, tenant, router, `${tenant}'s token, GET ${target}`);
        }
      }
    });

    test('APIs mounted one inside the other: `//` after the outer mount path is refused where Express 4 would reach the inner one', async () => {
      const app = express();
      const nestedPort = await listen(app);
      const apis = express.Router();
      apis.use('/acme', bearer.middleware(), api('acme'));
      apis.use(bearer.middleware(), api('main'));
      app.use('/api', apis);
      app.use(answerErrors);
      const cases: Array<[string, Tenant | 'unknown_tenant']> = [
        ['/api/acme/items', 'acme'],
        ['/API/Acme/items', 'acme'],
        ['/api/items', 'main'],
        // Express 4 serves it with the router mounted at /api/acme; Express 5 with main's.
        ['/api//acme/items', flavor === 'express4' ? 'unknown_tenant' : 'main'],
      ];
      for (const [target, router] of cases) {
        for (const tenant of ['main', 'acme'] as const) {
          assertServedRight(await rawGet(nestedPort, target, { authorization: `Bearer ${tokens[tenant] ?? ''}` }), tenant, router, `${tenant}'s token, GET ${target}`);
        }
      }
    });

    test('a path outside every prefix of the bearer tenants is 404 unknown_tenant, not the nearest prefix', async () => {
      // /apix and /ap are not under /api: prefixes match whole segments.
      for (const path of ['/apix/items', '/ap']) {
        const app = express();
        const apiPort = await listen(app);
        app.use(bearer.middleware(), (_req, res) => res.json({ passed: true }));
        const response = await rawGet(apiPort, path, { authorization: `Bearer ${tokens.main ?? ''}` });
        assert.deepEqual([response.status, parsed(response).error], [404, 'unknown_tenant'], path);
      }
    });

    test('with `case sensitive routing`, a path that names a prefix only in other letters gets 404, as express.Router() still ignores case', async () => {
      const app = express();
      app.set('case sensitive routing', true);
      const csPort = await listen(app);
      const whoami = (router: Tenant): RequestHandler => (req, res) => res.json({ router, tenant: tenants.tenantOf(req) });
      // Routes in a router made the usual way, which ignores letter case whatever the app's setting.
      const usual = express.Router();
      usual.get('/acme/whoami', whoami('acme'));
      usual.get('/api/acme/items', bearer.middleware(), (req, res) => res.json({ router: 'acme', tenant: bearer.tenantOf(req) }));
      app.use(usual);
      app.use('/acme', whoami('acme'));
      app.use('/api', bearer.middleware(), (req, res) => res.json({ router: 'main', tenant: bearer.tenantOf(req) }));
      app.use(whoami('main'));
      app.use(answerErrors);

      const cases: Array<[string, Record<string, string>, Served | 'unknown_tenant']> = [
        ['/acme/whoami', {}, { router: 'acme', tenant: 'acme' }],
        ['/acme/other', {}, { router: 'acme', tenant: 'acme' }],
        ['/other', {}, { router: 'main', tenant: 'main' }],
        // Served by acme's route (the router ignores case), but the app's setting says /ACME is not /acme.
        ['/ACME/whoami', {}, 'unknown_tenant'],
        // Not mounted at /acme (the app's setting), so main's catch-all: still not a tenant to guess.
        ['/ACME/other', {}, 'unknown_tenant'],
        ['/api/acme/items', { authorization: `Bearer ${tokens.acme ?? ''}` }, { router: 'acme', tenant: 'acme' }],
        ['/api/items', { authorization: `Bearer ${tokens.main ?? ''}` }, { router: 'main', tenant: 'main' }],
        // Main's token on acme's API route, reached through the case-blind router: never main's tenant.
        ['/api/ACME/items', { authorization: `Bearer ${tokens.main ?? ''}` }, 'unknown_tenant'],
      ];
      for (const [target, headers, expected] of cases) {
        const response = await rawGet(csPort, target, headers);
        if (expected === 'unknown_tenant') assert.deepEqual([response.status, parsed(response).error], [404, 'unknown_tenant'], target);
        else assert.deepEqual([response.status, { router: parsed(response).router, tenant: parsed(response).tenant }], [200, expected], target);
      }
    });

    test('a prefix that Express would read as route syntax, or two spellings of one prefix, is invalid_config at startup', () => {
      for (const prefix of ['/acme/:id', '/acme*', '/a(b)', '/a+b', '/a$b', '/caf\u00e9', '/a b', 'acme']) {
        assert.throws(() => byPath({ [prefix]: 'acme' }), (error: unknown) => error instanceof LogtoError && error.code === 'invalid_config' && /must be a path starting with "\/"/.test(error.message), prefix);
      }
      assert.throws(() => byPath({ '/acme': 'acme', '/ACME/': 'main' }), /"\/acme" and "\/ACME\/" are the same prefix/);
      assert.doesNotThrow(() => byPath({ '/': 'main', '/caf%C3%A9': 'cafe', '/a-b_c.d~e': 'x', '/api/v1': 'api' }));
    });
  });
}
