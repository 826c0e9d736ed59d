/**
 * The apps of bench/hosts.ts, one per host and variant, each in its own process (bench/host-server.ts):
 * passport-logto as the README's section for its host sets it up (the adapter, the session check,
 * the guard, `getAccessToken(resource)` on the route), and the bare host with Passport, the same
 * session plugin, a logged-in `req.user` and the same JSON body. passport-logto is the built
 * package (dist/), loaded by its name, as an app would load it.
 *
 * Routes of every app: GET /sign-in, GET /callback (redirects to /), GET / and GET /api/token, which
 * answers `{ tokenLength }`. The session cookie is `bench.sid` everywhere (koa-session adds its
 * signature, `bench.sid.sig`).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import type * as LogtoPackage from '../lib/index.js';
import type * as LogtoFastifyEntry from '../lib/fastify/index.js';
import type * as LogtoKoaEntry from '../lib/koa/index.js';
import type { HostConfig } from './protocol.js';

/** The session cookie's name, as in bench/variants.ts (which this process does not load: it imports lib/). */
export const sessionCookieName = 'bench.sid';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** A built app: its request handler, and what the parent asks of it. */
export interface HostApp {
  handler: RequestHandler;
  /** The user the last login put in the session, as the serializer got it. */
  loggedInUser(): unknown;
}

/** What an app counts while it runs (bench/host-server.ts reports it). */
export interface StoreReads {
  count: number;
}

/**
 * `name` as an app imports it: `passport-logto` resolves to this package's own dist/ through its
 * `exports`. A specifier TypeScript does not follow keeps the type check independent of dist/;
 * the types are lib/'s, which dist/ is built from.
 */
export async function importBuilt<T>(name: string): Promise<T> {
  const specifier: string = name;
  return (await import(specifier)) as T;
}

/**
 * Counts the reads of passport-logto's records (keys for which `isRecord` holds) from `store`:
 * the per-process copy answers for 2 s, so how often a request reads the store depends on how
 * fast the process runs (see bench/hosts.ts). Wraps the instance's own `get`, so that the store
 * keeps its class (passport-logto recognises express-session's MemoryStore by it).
 */
export function countReads<S extends { get: (key: string, ...rest: never[]) => unknown }>(store: S, reads: StoreReads, isRecord: (key: string) => boolean): S {
  const get = store.get.bind(store) as (key: string, ...rest: unknown[]) => unknown;
  (store as { get: unknown }).get = (key: string, ...rest: unknown[]) => {
    if (isRecord(key)) reads.count += 1;
    return get(key, ...rest);
  };
  return store;
}

/** passport-logto's options for a host app: the README's, with the API resource declared. */
export function strategyOptions(config: HostConfig): LogtoPackage.LogtoStrategyOptions {
  return {
    endpoint: config.endpoint,
    appId: config.appId,
    appSecret: config.appSecret,
    callbackURL: `${config.url}/callback`,
    postLogoutRedirectUri: `${config.url}/`,
    scopes: config.scopes,
    resources: [config.resource],
  };
}

/** The user bare Passport logs in: passport-logto's, handed over by the parent. */
function bareUser(config: HostConfig): Record<string, unknown> {
  if (!config.user) throw new Error('bare app: no user to log in (the parent passes passport-logto\'s)');
  return config.user;
}

const notSignedIn = { error: 'not_authenticated' };

/** Fastify 5 with @fastify/passport, and @fastify/secure-session or @fastify/session. */
async function fastifyApp(config: HostConfig, server: Server, reads: StoreReads): Promise<HostApp> {
  const { default: Fastify } = await import('fastify');
  const { Authenticator } = await import('@fastify/passport');
  let handler: RequestHandler | undefined;
  // Fastify answers on the process's server, which listened before the app was built (its URL is the callback's).
  const app = Fastify({
    serverFactory: (handle) => {
      handler = handle;
      return server;
    },
  });
  if (config.host === 'fastify-secure-session') {
    const { default: fastifySecureSession } = await import('@fastify/secure-session');
    await app.register(fastifySecureSession, { key: randomBytes(32), cookieName: sessionCookieName, cookie: { path: '/', httpOnly: true } });
  } else {
    const { default: fastifyCookie } = await import('@fastify/cookie');
    const { default: fastifySession } = await import('@fastify/session');
    await app.register(fastifyCookie);
    await app.register(fastifySession, { secret: randomBytes(32).toString('hex'), cookieName: sessionCookieName, cookie: { secure: false }, saveUninitialized: false });
  }
  const passport = new Authenticator();
  let loggedIn: unknown;
  passport.registerUserSerializer(async (user) => {
    loggedIn = user;
    return user;
  });
  passport.registerUserDeserializer(async (user) => user);
  await app.register(passport.initialize());
  await app.register(passport.secureSession());

  if (config.variant === 'passport-logto') {
    const { LogtoStrategy, MemoryTokenStore } = await importBuilt<typeof LogtoPackage>('passport-logto');
    const { logtoFastify } = await importBuilt<typeof LogtoFastifyEntry>('passport-logto/fastify');
    const tokenStore = countReads(new MemoryTokenStore(), reads, () => true);
    const strategy = new LogtoStrategy({ ...strategyOptions(config), tokenStore });
    const logto = logtoFastify(strategy);
    passport.use(strategy);
    await app.register(logto.plugin);
    app.addHook('preValidation', logto.session());
    app.get('/sign-in', { preValidation: passport.authenticate('logto') }, async () => undefined);
    app.get('/callback', { preValidation: passport.authenticate('logto', { successReturnToOrRedirect: '/', failureRedirect: '/sign-in-failed' }) }, async () => undefined);
    app.get('/', async () => ({ page: 'home' }));
    app.get('/api/token', { preHandler: logto.authenticated() }, async (request) => ({
      tokenLength: (await (request.logto as LogtoPackage.LogtoClient).getAccessToken(config.resource)).length,
    }));
  } else {
    const user = bareUser(config);
    app.get('/sign-in', async (request, reply) => {
      await request.logIn(user);
      return reply.redirect('/');
    });
    app.get('/', async () => ({ page: 'home' }));
    app.get(
      '/api/token',
      {
        preHandler: async (request, reply) => {
          if (!request.isAuthenticated()) return reply.code(401).send(notSignedIn);
          return undefined;
        },
      },
      async () => ({ tokenLength: config.tokenLength ?? 0 }),
    );
  }
  await app.ready();
  if (!handler) throw new Error('Fastify did not hand over its request handler');
  return { handler, loggedInUser: () => loggedIn };
}

/** Koa 3 with @koa/router, koa-passport and koa-session. */
async function koaApp(config: HostConfig, reads: StoreReads): Promise<HostApp> {
  const { default: Koa } = await import('koa');
  const { default: Router } = await import('@koa/router');
  const { default: session } = await import('koa-session');
  const { KoaPassport } = await import('koa-passport');
  const passport = new KoaPassport();
  let loggedIn: unknown;
  passport.serializeUser((user, done) => {
    loggedIn = user;
    done(null, user);
  });
  passport.deserializeUser((user, done) => done(null, user as Express.User));
  const app = new Koa();
  app.keys = ['bench-session-secret'];
  app.use(session({ key: sessionCookieName }, app));
  app.use(passport.initialize());
  app.use(passport.session());
  const router = new Router();

  if (config.variant === 'passport-logto') {
    const { LogtoStrategy, MemoryTokenStore } = await importBuilt<typeof LogtoPackage>('passport-logto');
    const { logtoKoa } = await importBuilt<typeof LogtoKoaEntry>('passport-logto/koa');
    const tokenStore = countReads(new MemoryTokenStore(), reads, () => true);
    const strategy = new LogtoStrategy({ ...strategyOptions(config), tokenStore });
    passport.use(strategy);
    const logto = logtoKoa(strategy);
    app.use(logto.middleware());
    app.use(logto.session());
    router.get('/sign-in', passport.authenticate('logto'));
    router.get('/callback', passport.authenticate('logto', { successReturnToOrRedirect: '/', failureRedirect: '/sign-in-failed' }));
    router.get('/', (ctx) => {
      ctx.body = { page: 'home' };
    });
    router.get('/api/token', logto.authenticated(), async (ctx) => {
      ctx.body = { tokenLength: (await (ctx.state.logto as LogtoPackage.LogtoClient).getAccessToken(config.resource)).length };
    });
  } else {
    const user = bareUser(config);
    router.get('/sign-in', async (ctx) => {
      await ctx.login(user);
      ctx.redirect('/');
    });
    router.get('/', (ctx) => {
      ctx.body = { page: 'home' };
    });
    router.get(
      '/api/token',
      async (ctx, next) => {
        if (!ctx.isAuthenticated()) {
          ctx.status = 401;
          ctx.body = notSignedIn;
          return;
        }
        await next();
      },
      (ctx) => {
        ctx.body = { tokenLength: config.tokenLength ?? 0 };
      },
    );
  }
  app.use(router.routes());
  return { handler: app.callback(), loggedInUser: () => loggedIn };
}

/** The NestJS apps, whose decorators need the test tsconfig's `experimentalDecorators` (as test/nestjs/load-nest-app.ts). */
async function nestApp(config: HostConfig, server: Server, reads: StoreReads): Promise<HostApp> {
  const module = (await tsImport('./host-nest.ts', {
    parentURL: import.meta.url,
    tsconfig: fileURLToPath(new URL('../tsconfig.test.json', import.meta.url)),
  })) as typeof import('./host-nest.js');
  return module.buildNestApp(config, server, reads);
}

export async function buildHostApp(config: HostConfig, server: Server, reads: StoreReads): Promise<HostApp> {
  switch (config.host) {
    case 'fastify-secure-session':
    case 'fastify-session':
      return fastifyApp(config, server, reads);
    case 'koa':
      return koaApp(config, reads);
    case 'nest-express':
    case 'nest-fastify':
      return nestApp(config, server, reads);
  }
}
