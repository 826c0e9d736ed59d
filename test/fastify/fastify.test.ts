/**
 * Fastify 5 with @fastify/passport, once on @fastify/secure-session and once on @fastify/session
 * (with @fastify/cookie), written as @fastify/passport's README writes a session-based app, and
 * passport-logto/fastify for the guard, sign-out, silent sign-in and back-channel logout: the whole
 * flow against the test provider.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import { Authenticator } from '@fastify/passport';
import fastifySecureSession from '@fastify/secure-session';
import fastifySession, { type SessionStore } from '@fastify/session';
import { LogtoBearerStrategy, LogtoError, LogtoStrategy, type LogtoClient } from '../../lib/index.js';
import { logtoFastify } from '../../lib/fastify/index.js';
import { getJson, signIn } from '../support/flows.js';
import { describeHostFlows, hostAppSetup, logoutToken, type HostApp } from '../support/host-flows.js';
import { TestBrowser } from '../support/http-client.js';
import { API_RESOURCE } from '../support/provider/clients-and-users.js';
import { startProvider, type TestProvider } from '../support/provider/index.js';

type SessionPlugin = 'secure-session' | 'session';

/** A Fastify app on its own Node server, which listens before the routes exist (they need its URL). */
async function listeningFastify(): Promise<{ app: FastifyInstance; server: Server; url: string }> {
  let server: Server | undefined;
  const app = Fastify({
    serverFactory: (handler) => {
      server = createServer(handler);
      return server;
    },
  });
  const raw = server as unknown as Server;
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  return { app, server: raw, url: `http://127.0.0.1:${(raw.address() as AddressInfo).port}` };
}

/** Fastify closes only a server it started listening: this one is closed here. */
async function closeFastify(app: FastifyInstance, server: Server): Promise<void> {
  await app.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** Registers the session plugin (@fastify/session with `store`, if given); returns the session cookie's name. */
async function registerSession(app: FastifyInstance, plugin: SessionPlugin, port: string, store?: SessionStore): Promise<string> {
  // Browsers share cookies across ports of one host, so each app names its own cookie.
  const cookieName = `fastify-${port}`;
  if (plugin === 'secure-session') {
    await app.register(fastifySecureSession, { key: randomBytes(32), cookieName, cookie: { path: '/', httpOnly: true } });
  } else {
    await app.register(fastifyCookie);
    await app.register(fastifySession, { secret: randomBytes(32).toString('hex'), cookieName, cookie: { secure: false }, saveUninitialized: false, ...(store ? { store } : {}) });
  }
  return cookieName;
}

/** The messages Passport's failureMessage kept in the session, on either session plugin. */
function messagesOf(request: FastifyRequest): string[] {
  const session = request.session as unknown as { get(key: string): unknown };
  return (session.get('messages') as string[] | undefined) ?? [];
}

async function startFastifyApp(provider: TestProvider, plugin: SessionPlugin, store?: SessionStore): Promise<HostApp> {
  const { app, server, url } = await listeningFastify();
  const setup = await hostAppSetup(provider, url);
  const passport = new Authenticator();
  const strategy = new LogtoStrategy(setup.strategyOptions);
  passport.use(strategy);
  passport.use(new LogtoBearerStrategy(setup.bearerOptions));
  passport.registerUserSerializer(async (user) => user);
  passport.registerUserDeserializer(async (user) => user);
  const logto = logtoFastify(strategy);
  const hits = new Map<string, number>();
  const hit = (path: string): void => void hits.set(path, (hits.get(path) ?? 0) + 1);
  const helper = (request: FastifyRequest): LogtoClient => request.logto as LogtoClient;

  const sessionCookie = await registerSession(app, plugin, new URL(url).port, store);
  await app.register(passport.initialize());
  await app.register(passport.secureSession());
  await app.register(logto.plugin);
  // The session check works in either hook: in onRequest (after the session plugin's) it removes
  // Passport's user before @fastify/passport loads it; in preValidation, after passport.secureSession(), it removes the loaded user.
  if (plugin === 'secure-session') app.addHook('onRequest', logto.session());
  else app.addHook('preValidation', logto.session());
  // The app reads forms elsewhere; back-channel logout reads its own (see below).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.get('/sign-in', { preValidation: passport.authenticate(strategy.name) }, async () => undefined);
  app.get(
    '/callback',
    { preValidation: passport.authenticate(strategy.name, { successReturnToOrRedirect: '/', failureRedirect: '/sign-in-failed', failureMessage: true }) },
    async () => undefined,
  );
  app.get('/sign-in-failed', async (request, reply) => reply.code(401).send({ messages: messagesOf(request) }));
  app.get('/', async (request) => ({ user: request.user ?? null, authenticated: request.isAuthenticated() }));
  app.get('/unloaded', async (request) => {
    const client = logto.client(request);
    return { isLoaded: client.isLoaded(), sub: (() => { try { return client.getIdTokenClaims().sub; } catch { return null; } })() };
  });
  app.get('/refresh-now', async (request, reply) => {
    try {
      await (await logto.client(request).load()).refresh();
      return { refreshed: true };
    } catch (error) {
      if (!(error instanceof LogtoError && error.code === 'not_authenticated')) throw error;
      return reply.code(401).send({ error: error.code });
    }
  });
  app.get('/tokens', async (request) => {
    const client = await logto.client(request).load();
    return { idToken: client.getIdToken() ?? null, refreshToken: client.getRefreshToken() ?? null, authenticated: client.isAuthenticated() };
  });
  app.get('/protected', { preHandler: logto.authenticated({ redirect: '/sign-in' }) }, async (request) => {
    hit('/protected');
    return { claims: helper(request).getIdTokenClaims() };
  });
  app.get('/api/profile', { preHandler: logto.authenticated() }, async (request) => {
    hit('/api/profile');
    return { claims: helper(request).getIdTokenClaims() };
  });
  app.get('/api/preloaded', { preHandler: logto.authenticated({ accessToken: API_RESOURCE, organizationTokens: true }) }, async (request) => ({
    accessToken: helper(request).accessToken,
    organizations: helper(request).organizationTokens,
  }));
  app.get('/api/items', { preValidation: passport.authenticate('logto-bearer', { session: false }) }, async (request) => ({
    sub: (request.user as { sub: string }).sub,
  }));
  app.get('/sign-out', logto.signOut());
  app.post('/log-out', async (request) => {
    await logto.logOut(request);
    return { loggedOut: true };
  });
  app.get('/page', { preHandler: logto.silentSignIn({ retryAfter: 1 }) }, async (request) => ({
    user: (request.user as { id?: string } | undefined)?.id ?? null,
  }));
  await app.register(logto.backchannelLogout({ path: '/backchannel-logout' }));
  await app.ready();

  return {
    url,
    callbackURL: setup.strategyOptions.callbackURL,
    registered: setup.registered,
    sessionCookie,
    sessionCookies: [sessionCookie],
    hits,
    close: () => closeFastify(app, server),
  };
}

describeHostFlows('Fastify 5 + @fastify/passport + @fastify/secure-session', (provider) => startFastifyApp(provider, 'secure-session'));
describeHostFlows('Fastify 5 + @fastify/passport + @fastify/session', (provider) => startFastifyApp(provider, 'session'));

describe("passport-logto/fastify on @fastify/session with the app's store", () => {
  test("Logto's back-channel logout destroys the session in that store, and its cookie is then signed out", async () => {
    const provider = await startProvider();
    // @fastify/session's MemoryStore over a map that the test reads, as the app configured it.
    const sessions = new Map<string, Record<string, unknown>>();
    const app = await startFastifyApp(provider, 'session', new fastifySession.MemoryStore(sessions as Map<string, never>));
    try {
      const browser = new TestBrowser();
      await signIn(browser, provider, app);
      assert.equal((await getJson<{ user: { id?: string } | null }>(browser, `${app.url}/`)).body.user?.id, provider.users.demo.sub);
      const signedIn = [...sessions].filter(([, session]) => session.passport !== undefined).map(([id]) => id);
      assert.equal(signedIn.length, 1, "the store holds the session with Passport's user");

      const token = await logoutToken(provider, app, provider.users.demo.sub);
      const answer = await fetch(`${app.url}/backchannel-logout`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ logout_token: token }).toString(),
      });
      assert.equal(answer.status, 200);
      assert.equal(sessions.has(signedIn[0] as string), false, 'the session is gone from the store');

      const home = await getJson<{ user: unknown; authenticated: boolean }>(browser, `${app.url}/`);
      assert.deepEqual(home.body, { user: null, authenticated: false }, 'the old cookie is signed out');
    } finally {
      await app.close();
      await provider.close();
    }
  });
});

describe('passport-logto/fastify without its plugin', () => {
  test('a sign-in fails with unsupported_host, naming the plugin to register', async () => {
    const provider = await startProvider();
    const { app, server, url } = await listeningFastify();
    const setup = await hostAppSetup(provider, url);
    const passport = new Authenticator();
    const strategy = new LogtoStrategy(setup.strategyOptions);
    passport.use(strategy);
    const errors: unknown[] = [];
    app.setErrorHandler(async (error, _request, reply) => {
      errors.push(error);
      return reply.code(500).send({ error: 'internal_error' });
    });
    await registerSession(app, 'secure-session', new URL(url).port);
    await app.register(passport.initialize());
    await app.register(passport.secureSession());
    app.get('/sign-in', { preValidation: passport.authenticate(strategy.name) }, async () => undefined);
    await app.ready();
    try {
      const response = await fetch(`${url}/sign-in`, { redirect: 'manual' });
      assert.equal(response.status, 500);
      const [error] = errors;
      assert.ok(error instanceof LogtoError && error.code === 'unsupported_host', String(error));
      assert.match(error.message, /passport-logto\/fastify/);
    } finally {
      await closeFastify(app, server);
      await provider.close();
    }
  });
});
