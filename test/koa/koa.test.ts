/**
 * Koa 2 and 3 with koa-passport and koa-session, written as koa-passport's README writes a
 * session-based app, and passport-logto/koa for the guard, sign-out, silent sign-in and
 * back-channel logout: the whole flow against the test provider.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import type Koa from 'koa';
import type { Context, Middleware, Next } from 'koa';
import session from 'koa-session';
import { KoaPassport } from 'koa-passport';
import { LogtoBearerStrategy, LogtoError, LogtoStrategy, type LogtoClient } from '../../lib/index.js';
import { logtoKoa } from '../../lib/koa/index.js';
import { describeHostFlows, hostAppSetup, type HostApp } from '../support/host-flows.js';
import { API_RESOURCE } from '../support/provider/clients-and-users.js';
import type { TestProvider } from '../support/provider/index.js';

const require = createRequire(import.meta.url);
type KoaFlavor = 'koa2' | 'koa3';

/** A route: runs `handlers` in turn for `method` and `path`, and passes anything else on. */
function route(method: string, path: string, ...handlers: Middleware[]): Middleware {
  const run = (ctx: Context, index: number): Promise<unknown> =>
    Promise.resolve(handlers[index] ? handlers[index](ctx as never, () => run(ctx, index + 1)) : undefined);
  return async (ctx, next: Next) => {
    if (ctx.method !== method || ctx.path !== path) return next();
    await run(ctx as Context, 0);
  };
}

/** A Koa app of `flavor` with koa-session and koa-passport, serving the routes of test/support/host-flows.ts. */
async function startKoaApp(provider: TestProvider, flavor: KoaFlavor): Promise<HostApp> {
  const KoaApp = require(flavor === 'koa2' ? 'koa2' : 'koa') as typeof Koa;
  const app = new KoaApp();
  app.keys = ['koa-test-secret'];
  // Koa composes its middleware when callback() is called: the routes are added after the URL is known.
  let handle: ReturnType<typeof app.callback> | undefined;
  const server: Server = createServer((req, res) => void (handle ??= app.callback())(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const setup = await hostAppSetup(provider, url);

  const passport = new KoaPassport();
  const strategy = new LogtoStrategy(setup.strategyOptions);
  passport.use(strategy);
  passport.use(new LogtoBearerStrategy(setup.bearerOptions));
  passport.serializeUser((user, done) => done(null, user));
  passport.deserializeUser((user, done) => done(null, user as Express.User));
  const logto = logtoKoa(strategy);
  const hits = new Map<string, number>();
  const hit = (path: string): void => void hits.set(path, (hits.get(path) ?? 0) + 1);
  const helper = (ctx: Context): LogtoClient => ctx.state.logto as LogtoClient;

  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      ctx.status = error instanceof LogtoError ? error.httpStatus : 500;
      ctx.body = { error: error instanceof LogtoError ? error.code : 'internal_error' };
    }
  });
  // Browsers share cookies across ports of one host, so each app names its own cookie.
  const sessionCookie = `koa-${new URL(url).port}`;
  app.use(session({ key: sessionCookie }, app));
  app.use(passport.initialize());
  app.use(passport.session());
  app.use(logto.middleware());
  app.use(logto.session());

  app.use(route('GET', '/sign-in', passport.authenticate(strategy.name)));
  app.use(route('GET', '/callback', passport.authenticate(strategy.name, { successReturnToOrRedirect: '/', failureRedirect: '/sign-in-failed', failureMessage: true })));
  app.use(route('GET', '/sign-in-failed', (ctx) => {
    ctx.status = 401;
    ctx.body = { messages: (ctx.session as unknown as { messages?: string[] } | null)?.messages ?? [] };
  }));
  app.use(route('GET', '/', (ctx) => {
    ctx.body = { user: ctx.state.user ?? null, authenticated: ctx.isAuthenticated() };
  }));
  app.use(route('GET', '/unloaded', (ctx) => {
    const client = logto.client(ctx);
    ctx.body = { isLoaded: client.isLoaded(), sub: (() => { try { return client.getIdTokenClaims().sub; } catch { return null; } })() };
  }));
  app.use(route('GET', '/refresh-now', async (ctx) => {
    try {
      await (await logto.client(ctx).load()).refresh();
      ctx.body = { refreshed: true };
    } catch (error) {
      if (!(error instanceof LogtoError && error.code === 'not_authenticated')) throw error;
      ctx.status = 401;
      ctx.body = { error: error.code };
    }
  }));
  app.use(route('GET', '/tokens', async (ctx) => {
    const client = await logto.client(ctx).load();
    ctx.body = { idToken: client.getIdToken() ?? null, refreshToken: client.getRefreshToken() ?? null, authenticated: client.isAuthenticated() };
  }));
  app.use(route('GET', '/protected', logto.authenticated({ redirect: '/sign-in' }), (ctx) => {
    hit('/protected');
    ctx.body = { claims: helper(ctx).getIdTokenClaims() };
  }));
  app.use(route('GET', '/api/profile', logto.authenticated(), (ctx) => {
    hit('/api/profile');
    ctx.body = { claims: helper(ctx).getIdTokenClaims() };
  }));
  app.use(route('GET', '/api/preloaded', logto.authenticated({ accessToken: API_RESOURCE, organizationTokens: true }), (ctx) => {
    ctx.body = { accessToken: helper(ctx).accessToken, organizations: helper(ctx).organizationTokens };
  }));
  app.use(route('GET', '/api/items', passport.authenticate('logto-bearer', { session: false }), (ctx) => {
    ctx.body = { sub: (ctx.state.user as { sub: string }).sub };
  }));
  app.use(route('GET', '/sign-out', logto.signOut()));
  app.use(route('POST', '/log-out', async (ctx) => {
    await logto.logOut(ctx);
    ctx.body = { loggedOut: true };
  }));
  app.use(route('GET', '/page', logto.silentSignIn({ retryAfter: 1 }), (ctx) => {
    ctx.body = { user: (ctx.state.user as { id?: string } | undefined)?.id ?? null };
  }));
  app.use(route('POST', '/backchannel-logout', logto.backchannelLogout()));

  return {
    url,
    callbackURL: setup.strategyOptions.callbackURL,
    registered: setup.registered,
    sessionCookie,
    sessionCookies: [sessionCookie, `${sessionCookie}.sig`],
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describeHostFlows('Koa 3 + koa-passport + koa-session', (provider) => startKoaApp(provider, 'koa3'));
describeHostFlows('Koa 2 + koa-passport + koa-session', (provider) => startKoaApp(provider, 'koa2'));

describe('passport-logto/koa without its middleware', () => {
  test('a sign-in fails with unsupported_host, naming the middleware to mount', async () => {
    const { startProvider } = await import('../support/provider/index.js');
    const provider = await startProvider();
    const KoaApp = require('koa') as typeof Koa;
    const app = new KoaApp();
    app.keys = ['koa-test-secret'];
    let handle: ReturnType<typeof app.callback> | undefined;
    const server = createServer((req, res) => void (handle ??= app.callback())(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const setup = await hostAppSetup(provider, url);
    const passport = new KoaPassport();
    const strategy = new LogtoStrategy(setup.strategyOptions);
    passport.use(strategy);
    const errors: unknown[] = [];
    app.use(async (ctx, next) => {
      try {
        await next();
      } catch (error) {
        errors.push(error);
        ctx.status = 500;
      }
    });
    app.use(session({ key: 'bare' }, app));
    app.use(passport.initialize());
    app.use(route('GET', '/sign-in', passport.authenticate(strategy.name)));
    try {
      const response = await fetch(`${url}/sign-in`, { redirect: 'manual' });
      assert.equal(response.status, 500);
      const [error] = errors;
      assert.ok(error instanceof LogtoError && error.code === 'unsupported_host', String(error));
      assert.match(error.message, /passport-logto\/koa/);
    } finally {
      server.closeAllConnections();
      server.close();
      await provider.close();
    }
  });
});
