/**
 * The apps under test, each built the way its library's documentation builds it, with the same
 * Express 5 and the same express-session settings wherever a library keeps its state in
 * express-session, so that the libraries are what differs. Every protected route answers
 * `{ tokenLength }` for the access token it got, so the responses are the same size.
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import session from 'express-session';
import cookieSession from 'cookie-session';
import passport from 'passport';
import eoc from 'express-openid-connect';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { LogtoStrategy, MemoryTokenStore, RedisTokenStore, type TokenStore } from '../lib/index.js';
import type { VariantConfig } from './protocol.js';

export interface BuiltVariant {
  app: Express;
  /** The express-session store, where the variant keeps its sessions there. */
  store: session.MemoryStore | undefined;
  /** Reads of a sign-in's token record from its store (passport-logto), counted by key. */
  storeReads: () => number;
}

const noStoreReads = (): number => 0;

/**
 * Counts reads of token records (`<prefix>tokens:<id>`) through a store's `get`: how often the
 * per-process copy of a record was older than 2 s and the store was asked again.
 */
function countRecordReads<T extends { get: (key: string, ...rest: never[]) => unknown }>(store: T, prefix: string): () => number {
  let reads = 0;
  const get = store.get.bind(store) as (key: string, ...rest: unknown[]) => unknown;
  const counted = (key: string, ...rest: unknown[]): unknown => {
    if (key.startsWith(prefix)) reads += 1;
    return get(key, ...rest);
  };
  store.get = counted as T['get'];
  return () => reads;
}

export const sessionCookieName = 'bench.sid';

/** The part of @logto/express this benchmark uses (see loadLogtoExpress for why it is declared here). */
interface LogtoExpressModule {
  handleAuthRoutes(config: LogtoExpressConfig): express.Router;
  withLogto(config: LogtoExpressConfig): (req: Request, res: Response, next: NextFunction) => Promise<void>;
}
interface LogtoExpressConfig {
  endpoint: string;
  appId: string;
  appSecret: string;
  baseUrl: string;
  scopes: string[];
  resources: string[];
  getAccessToken?: boolean;
  resource?: string;
}
interface LogtoContext {
  isAuthenticated: boolean;
  accessToken?: string;
}

/**
 * @logto/node's and @logto/express's declarations augment `http.IncomingMessage` with a
 * `user: LogtoContext` and a `session: Record<string, string>`, which would retype `req.user` and
 * `req.session` in every file that `tsc -p tsconfig.test.json` checks, tests included. A specifier
 * that TypeScript does not resolve keeps those declarations out of the program.
 */
async function loadLogtoExpress(): Promise<LogtoExpressModule> {
  const specifier: string = '@logto/express';
  return (await import(specifier)) as LogtoExpressModule;
}

const errorsShown = { count: 0 };

/** Answers errors as JSON 500s; the first few are printed, since a benchmark run has no other log. */
function errorHandler(error: unknown, _req: Request, res: Response, _next: NextFunction): void {
  if (errorsShown.count < 5) {
    errorsShown.count += 1;
    console.error('[bench app]', error);
  }
  if (res.headersSent) return;
  res.status(500).json({ error: error instanceof Error ? error.message : String(error) });
}

function sessionMiddleware(store: session.Store): express.RequestHandler {
  return session({ name: sessionCookieName, secret: 'bench-session-secret', resave: false, saveUninitialized: false, store });
}

const noOp = (done?: () => void): void => done?.();

/**
 * cookie-session as docs/sessions-and-stores.md sets it up: the session in a signed cookie, and
 * the `regenerate` and `save` that Passport 0.6+ calls added as no-ops.
 */
function cookieSessionMiddleware(app: Express): void {
  app.use(cookieSession({ name: sessionCookieName, keys: ['bench-session-secret'] }));
  app.use((req, _res, next) => {
    const held = req.session as { regenerate?: unknown; save?: unknown } | null | undefined;
    if (held && !held.regenerate) held.regenerate = noOp;
    if (held && !held.save) held.save = noOp;
    next();
  });
}

function notSignedIn(res: Response): void {
  res.status(401).json({ error: 'not_authenticated' });
}

/** The baseline: Passport sessions with a trivially serialized user and no identity provider. */
function bare(config: VariantConfig): BuiltVariant {
  const app = express();
  const store = config.session === 'cookie-session' ? undefined : new session.MemoryStore();
  // Counted as passport-logto's is, so that both apps' store pays for the same wrapper.
  const storeReads = store ? countRecordReads(store, 'passport-logto:tokens:') : noStoreReads;
  if (store) app.use(sessionMiddleware(store));
  else cookieSessionMiddleware(app);
  app.use(passport.initialize());
  app.use(passport.session());
  passport.serializeUser((user, done) => done(null, user));
  passport.deserializeUser((user: Express.User, done) => done(null, user));
  // The same user object as passport-logto's, so that the sessions differ only by what
  // passport-logto adds to them.
  const user = (config.user ?? { id: 'demo00user01', name: 'Demo User' }) as Express.User;
  // The same routes, in the same order, as the passport-logto app: Express matches a request
  // against each route before its own, so that both routers do the same work.
  app.get('/sign-in', (req, res, next) => {
    req.login(user, (error) => (error ? next(error) : res.redirect('/')));
  });
  app.get('/callback', (_req, res) => {
    res.redirect('/');
  });
  app.get('/sign-in-failed', (_req, res) => {
    res.status(401).json({ error: 'sign_in_failed' });
  });
  app.get('/', (_req, res) => {
    res.json({ page: 'home' });
  });
  app.get('/api/token', (req, res) => {
    if (!req.isAuthenticated()) return notSignedIn(res);
    res.json({ tokenLength: config.tokenLength ?? 0 });
  });
  app.get('/api/me', readUser);
  app.use(errorHandler);
  return { app, store, storeReads };
}

/** A route that reads only `req.user`: the same handler in both apps. */
function readUser(req: Request, res: Response): void {
  if (!req.isAuthenticated()) return notSignedIn(res);
  res.json({ id: (req.user as { id?: string }).id });
}

/**
 * passport-logto as its README builds it, with the API resource declared and `logto.session()`
 * after `passport.session()`: MemoryStore and the default token home (the session store), or
 * cookie-session with a `MemoryTokenStore`, or, for the instances of a deployment, connect-redis
 * with or without `tokenStore: new RedisTokenStore(client)`.
 */
async function passportLogto(config: VariantConfig): Promise<BuiltVariant> {
  const app = express();
  const cookies = config.session === 'cookie-session' && config.redisUrl === undefined;
  const memoryStore = config.redisUrl === undefined && !cookies ? new session.MemoryStore() : undefined;
  let sessionStore: session.Store | undefined = memoryStore;
  let tokenStore: TokenStore | undefined;
  let storeReads = noStoreReads;
  if (memoryStore) storeReads = countRecordReads(memoryStore, 'passport-logto:tokens:');
  if (cookies) {
    const memoryTokens = new MemoryTokenStore();
    storeReads = countRecordReads(memoryTokens, 'tokens:');
    tokenStore = memoryTokens;
  }
  if (config.redisUrl !== undefined) {
    const client = await createClient({ url: config.redisUrl }).connect();
    sessionStore = new RedisStore({ client });
    // Its own connection, as an app would give it; the default instead reuses connect-redis's client.
    if (config.redisTokenStore) tokenStore = new RedisTokenStore(await createClient({ url: config.redisUrl }).connect());
  }
  const logto = new LogtoStrategy({
    endpoint: config.endpoint,
    appId: config.appId,
    appSecret: config.appSecret,
    callbackURL: config.callbackURL ?? `${config.url}/callback`,
    scopes: config.scopes,
    resources: [config.resource],
    ...(config.accessTokenExpiryMargin === undefined ? {} : { accessTokenExpiryMargin: config.accessTokenExpiryMargin }),
    ...(tokenStore ? { tokenStore } : {}),
  });
  passport.use(logto);
  passport.serializeUser((user, done) => done(null, user));
  passport.deserializeUser((user: Express.User, done) => done(null, user));
  if (cookies) cookieSessionMiddleware(app);
  else app.use(sessionMiddleware(sessionStore as session.Store));
  app.use(passport.initialize());
  app.use(passport.session());
  // As the README's Quick start: a session whose sign-in has ended, on any instance, is signed out.
  app.use(logto.session());
  app.get('/sign-in', passport.authenticate(logto.name));
  app.get('/callback', passport.authenticate(logto.name, { successRedirect: '/', failureRedirect: '/sign-in-failed' }));
  app.get('/sign-in-failed', (_req, res) => {
    res.status(401).json({ error: 'sign_in_failed' });
  });
  app.get('/', (_req, res) => {
    res.json({ page: 'home' });
  });
  app.get('/api/token', logto.authenticated(), (req, res, next) => {
    req.logto?.getAccessToken(config.resource).then((token) => res.json({ tokenLength: token.length }), next);
  });
  // A route that never touches a token: what passport-logto costs there is its session alone.
  app.get('/api/me', readUser);
  app.use(errorHandler);
  return { app, store: memoryStore, storeReads };
}

/**
 * @logto/express as Logto's Express quick start builds it: express-session, `handleAuthRoutes`
 * for /logto/sign-in and /logto/sign-in-callback, and `withLogto` on the route, here with
 * `getAccessToken: true` for the API resource.
 */
async function logtoExpress(config: VariantConfig): Promise<BuiltVariant> {
  const { handleAuthRoutes, withLogto } = await loadLogtoExpress();
  const app = express();
  const store = new session.MemoryStore();
  const logtoConfig: LogtoExpressConfig = {
    endpoint: config.endpoint,
    appId: config.appId,
    appSecret: config.appSecret,
    baseUrl: config.url,
    scopes: config.scopes,
    resources: [config.resource],
  };
  app.use(sessionMiddleware(store));
  app.use(handleAuthRoutes(logtoConfig));
  app.get('/', (_req, res) => {
    res.json({ page: 'home' });
  });
  app.get('/api/token', withLogto({ ...logtoConfig, getAccessToken: true, resource: config.resource }), (req, res) => {
    const context = (req as unknown as { user: LogtoContext }).user;
    if (!context.isAuthenticated || !context.accessToken) return notSignedIn(res);
    res.json({ tokenLength: context.accessToken.length });
  });
  app.use(errorHandler);
  return { app, store, storeReads: noStoreReads };
}

/**
 * express-openid-connect with the authorization code flow (its default is the implicit id_token
 * flow, which gives no access token), the resource at the authorization and token endpoints so
 * that its access token is the API resource's, and its default encrypted cookie session.
 */
function expressOpenidConnect(config: VariantConfig): BuiltVariant {
  const app = express();
  app.use(
    eoc.auth({
      issuerBaseURL: config.issuer,
      baseURL: config.url,
      clientID: config.appId,
      clientSecret: config.appSecret,
      secret: 'bench-cookie-secret-that-is-long-enough-for-hkdf',
      authRequired: false,
      idTokenSigningAlg: config.idTokenAlg,
      authorizationParams: {
        response_type: 'code',
        scope: ['openid', 'offline_access', 'profile', ...config.scopes].join(' '),
        resource: config.resource,
        // Logto issues a refresh token only with prompt=consent.
        prompt: 'consent',
      },
      tokenEndpointParams: { resource: config.resource },
    }),
  );
  app.get('/', (_req, res) => {
    res.json({ page: 'home' });
  });
  // The refresh as its README shows it: check isExpired(), then refresh().
  app.get('/api/token', eoc.requiresAuth(), async (req, res, next) => {
    try {
      let accessToken = req.oidc.accessToken;
      if (!accessToken) return notSignedIn(res);
      if (accessToken.isExpired()) accessToken = await accessToken.refresh();
      res.json({ tokenLength: accessToken.access_token.length });
    } catch (error) {
      next(error);
    }
  });
  app.use(errorHandler);
  return { app, store: undefined, storeReads: noStoreReads };
}

export async function buildVariant(config: VariantConfig): Promise<BuiltVariant> {
  switch (config.variant) {
    case 'bare':
      return bare(config);
    case 'passport-logto':
      return passportLogto(config);
    case 'logto-express':
      return logtoExpress(config);
    case 'express-openid-connect':
      return expressOpenidConnect(config);
  }
}
