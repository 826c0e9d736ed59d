import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { after, before } from 'node:test';
import type { Express, NextFunction, Request, Response } from 'express';
import session from 'express-session';
import cookieSession from 'cookie-session';
import {
  LogtoError,
  LogtoStrategy,
  type LogtoStrategyOptions,
  type VerifyFunction,
  type VerifyFunctionWithRequest,
} from '../../lib/index.js';
import { watchForCrashes } from './crash-watch.js';
import { startProvider, type TestApp, type TestProvider } from './provider/index.js';

const require = createRequire(import.meta.url);

/** Which Express and Passport majors the app is built with; both pairs are supported. */
export type ExpressFlavor = 'express4' | 'express5';
export type PassportFlavor = 'passport06' | 'passport07';

type ExpressFactory = () => Express;
/** The part of a Passport instance the tests use, for either Passport version. */
export interface PassportLike {
  initialize(): (req: Request, res: Response, next: NextFunction) => void;
  session(): (req: Request, res: Response, next: NextFunction) => void;
  use(strategy: object): void;
  authenticate(name: string, options?: object): (req: Request, res: Response, next: NextFunction) => void;
  serializeUser(fn: (user: unknown, done: (error: unknown, id?: unknown) => void) => void): void;
  deserializeUser(fn: (id: unknown, done: (error: unknown, user?: unknown) => void) => void): void;
}
interface PassportModule {
  Passport: new () => PassportLike;
}

function loadExpress(flavor: ExpressFlavor): ExpressFactory {
  return require(flavor === 'express4' ? 'express4' : 'express') as ExpressFactory;
}

/** A new Passport instance of that version. */
export function loadPassport(flavor: PassportFlavor): PassportLike {
  const module = require(flavor === 'passport06' ? 'passport06' : 'passport') as PassportModule;
  return new module.Passport();
}

export interface StartAppOptions {
  express?: ExpressFlavor;
  passport?: PassportFlavor;
  /** `whole` stores the user object in the session; `id` stores only `user.id`, as many apps do. */
  serialize?: 'whole' | 'id';
  strategy?: Partial<LogtoStrategyOptions>;
  verify?: VerifyFunction;
  /** A verify function that takes the request; sets passReqToCallback. */
  verifyWithRequest?: VerifyFunctionWithRequest;
  store?: session.Store;
  /** Another instance of an app already registered: reuse its credentials, add this instance's URLs. */
  instanceOf?: TestApp;
  /** The session cookie's name; instances of one app share it. Default: one per port. */
  cookieName?: string;
  /** Register `/backchannel-logout` with the provider and mount `logto.backchannelLogout()` there. */
  backchannelLogout?: boolean;
  /** More options for passport.authenticate on the callback route (keepSessionInfo, say). */
  callbackOptions?: object;
  /** Extra routes, added before the standard ones. */
  routes?: (app: Express, logto: LogtoStrategy, passport: PassportLike) => void;
  /** cookie-session instead of express-session (give the strategy a `tokenStore`). */
  cookieSession?: boolean;
  /** Mount `logto.session()` after `passport.session()`, as the README's setup does. Default true. */
  sessionCheck?: boolean;
  /** Called with each error that reaches the app's error handler, e.g. to log it as a real app would. */
  onError?: (error: unknown) => void;
}

export interface RunningApp {
  url: string;
  /** The Logto application this app signs in as. */
  registered: TestApp;
  callbackURL: string;
  logto: LogtoStrategy;
  store: session.Store;
  /** Errors that reached the app's error handler. */
  errors: unknown[];
  close(): Promise<void>;
}

/**
 * A real Express + Passport + express-session app using the strategy, registered with the test
 * provider as its own Logto application.
 */
export async function startApp(provider: TestProvider, options: StartAppOptions = {}): Promise<RunningApp> {
  const express = loadExpress(options.express ?? 'express5');
  const passport = loadPassport(options.passport ?? 'passport07');
  const app = express();
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const callbackURL = `${url}/callback`;
  const postLogoutRedirectUris = [`${url}/`, `${url}/signed-out`];
  let registered: TestApp;
  if (options.instanceOf) {
    registered = options.instanceOf;
    await provider.addRedirectUris(registered.appId, [callbackURL], postLogoutRedirectUris);
  } else {
    registered = await provider.registerApp({
      redirectUris: [callbackURL],
      postLogoutRedirectUris,
      ...(options.backchannelLogout ? { backchannelLogoutUri: `${url}/backchannel-logout` } : {}),
    });
  }

  const strategyOptions: LogtoStrategyOptions = {
    endpoint: provider.endpoint,
    appId: registered.appId,
    appSecret: registered.appSecret,
    callbackURL,
    postLogoutRedirectUri: `${url}/`,
    jwksCooldown: 0,
    // Mounting the handler without the option is deprecated (and warns); only a test of that leaves it out, by passing it as undefined.
    ...(options.backchannelLogout ? { backchannelLogout: true } : {}),
    ...options.strategy,
  };
  const logto = options.verifyWithRequest
    ? new LogtoStrategy({ ...strategyOptions, passReqToCallback: true }, options.verifyWithRequest)
    : new LogtoStrategy(strategyOptions, options.verify);
  passport.use(logto);

  const users = new Map<string, unknown>();
  if (options.serialize === 'id') {
    passport.serializeUser((user, done) => {
      const { id } = user as { id: string };
      users.set(id, user);
      done(null, id);
    });
    passport.deserializeUser((id, done) => done(null, users.get(id as string) ?? false));
  } else {
    passport.serializeUser((user, done) => done(null, user));
    passport.deserializeUser((user, done) => done(null, user));
  }

  const store = options.store ?? new session.MemoryStore();
  // Browsers share cookies across ports of one host, so each app names its own cookie.
  const cookieName = options.cookieName ?? `sid-${new URL(url).port}`;
  if (options.cookieSession) {
    // The session lives in the cookie: a copy of it can be replayed, on any instance.
    app.use(cookieSession({ name: cookieName, keys: ['test-secret'] }));
    app.use((req, _res, next) => {
      const bag = req.session as unknown as { regenerate?: unknown; save?: unknown } | null | undefined;
      if (bag && !bag.regenerate) bag.regenerate = (done: () => void) => done();
      if (bag && !bag.save) bag.save = (done: () => void) => done();
      next();
    });
  } else {
    app.use(session({ name: cookieName, secret: 'test-secret', resave: false, saveUninitialized: false, store }));
  }
  app.use(passport.initialize());
  app.use(passport.session());
  // As the README's setup does: an ended sign-in is signed out, and the helper is loaded.
  if (options.sessionCheck !== false) app.use(logto.session());

  options.routes?.(app, logto, passport);

  app.get('/sign-in', passport.authenticate(logto.name));
  app.get(
    '/callback',
    passport.authenticate(logto.name, { successReturnToOrRedirect: '/', failureRedirect: '/sign-in-failed', failureMessage: true, ...options.callbackOptions }),
  );
  app.get('/sign-in-failed', (req, res) => {
    const messages = (req.session as unknown as { messages?: string[] }).messages ?? [];
    res.status(401).json({ messages });
  });
  app.get('/', (req, res) => {
    res.json({ page: 'home', user: req.user ?? null, sessionID: req.sessionID, authenticated: logto.client(req).isAuthenticated() });
  });
  // What the helper holds for this session, read as an app would (tokens never sit in the session).
  app.get('/tokens', (req, res, next) => {
    logto
      .client(req)
      .load()
      .then((client) => res.json({ idToken: client.getIdToken() ?? null, refreshToken: client.getRefreshToken() ?? null, authenticated: client.isAuthenticated() }), next);
  });
  app.get('/session', (req, res) => {
    res.json({ sessionID: req.sessionID, session: req.session });
  });
  app.get('/protected', logto.authenticated({ redirect: '/sign-in' }), (req, res) => {
    res.json({ page: 'protected', claims: req.logto?.getIdTokenClaims(), query: req.query });
  });
  app.get('/api/profile', logto.authenticated(), (req, res) => {
    res.json({ claims: req.logto?.getIdTokenClaims() });
  });
  app.get('/sign-out', logto.signOut());
  if (options.backchannelLogout) app.post('/backchannel-logout', logto.backchannelLogout());
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    errors.push(error);
    options.onError?.(error);
    // express-session reports a failed save after the answer went out; there is nothing left to send.
    if (res.headersSent) return;
    const code = error instanceof LogtoError ? error.code : 'internal_error';
    const status = error instanceof LogtoError && error.code === 'not_authenticated' ? 401 : 500;
    res.status(status).json({ error: code, message: error instanceof Error ? error.message : String(error) });
  });
  const errors: unknown[] = [];

  return {
    url,
    registered,
    callbackURL,
    logto,
    store,
    errors,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface HardeningSetup {
  /** Starts an app (on the file's provider unless `on` says otherwise) that is closed after the file's tests. */
  app(options?: StartAppOptions, on?: TestProvider): Promise<RunningApp>;
}

export interface HardeningSetupOptions {
  /**
   * Receives the file's provider once it has started, inside the same `before` hook: Node 20 does
   * not wait for one top-level `before` to finish before it runs the next.
   */
  started(provider: TestProvider): void | Promise<void>;
  /** Adds the file's own routes and strategy options to each app's options. */
  appOptions?(options: StartAppOptions): StartAppOptions;
}

/**
 * The hardening files' setup: a crash or a forgotten promise fails the test that caused it, one
 * provider serves the whole file, and every app started through `app` is closed at the end.
 */
export function hardeningSetup({ started, appOptions = (options) => options }: HardeningSetupOptions): HardeningSetup {
  const crashWatch = watchForCrashes();
  let provider: TestProvider | undefined;
  const apps: RunningApp[] = [];
  before(async () => {
    provider = await startProvider();
    await started(provider);
  });
  after(async () => {
    await crashWatch.stop();
    await Promise.all(apps.map((running) => running.close()));
    await provider?.close();
    crashWatch.assertNone();
  });
  return {
    async app(options = {}, on = provider) {
      if (!on) throw new Error('the provider starts in before(); start apps from a hook or a test');
      const running = await startApp(on, appOptions(options));
      apps.push(running);
      return running;
    },
  };
}
