/**
 * One app instance in a process of its own, as a deployment behind a load balancer runs it:
 * real Express, Passport, express-session with connect-redis, and the strategy. The parent
 * (test/support/instances.ts) passes the configuration as JSON in argv and waits for 'ready'.
 */
import { createServer } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { Passport } from 'passport';
import { createClient } from 'redis';
import { createClient as createClient4 } from 'redis4';
import { createClient as createClient5 } from 'redis5';
import { Redis as IoRedis } from 'ioredis';
import { LogtoError, LogtoStrategy, RedisTokenStore, type TokenStore } from '../../lib/index.js';

export type TokenStoreKind = 'session-store' | 'node-redis-4' | 'node-redis-5' | 'ioredis';

export interface InstanceConfig {
  port: number;
  endpoint: string;
  appId: string;
  appSecret: string;
  /** Shared by every instance, as behind a load balancer. */
  callbackURL: string;
  postLogoutRedirectUri: string;
  redisUrl: string;
  tokenStore: TokenStoreKind;
  cookieName: string;
  scopes: string[];
  resources: string[];
  accessTokenExpiryMargin: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as InstanceConfig;

async function tokenStoreFor(kind: TokenStoreKind): Promise<TokenStore | undefined> {
  switch (kind) {
    case 'session-store':
      return undefined;
    case 'node-redis-4':
      return new RedisTokenStore(await createClient4({ url: config.redisUrl }).connect());
    case 'node-redis-5':
      return new RedisTokenStore(await createClient5({ url: config.redisUrl }).connect());
    case 'ioredis':
      return new RedisTokenStore(new IoRedis(config.redisUrl));
  }
}

const sessionClient = await createClient({ url: config.redisUrl }).connect();
const tokenStore = await tokenStoreFor(config.tokenStore);
const logto = new LogtoStrategy({
  endpoint: config.endpoint,
  appId: config.appId,
  appSecret: config.appSecret,
  callbackURL: config.callbackURL,
  postLogoutRedirectUri: config.postLogoutRedirectUri,
  scopes: config.scopes,
  resources: config.resources,
  accessTokenExpiryMargin: config.accessTokenExpiryMargin,
  jwksCooldown: 0,
  ...(tokenStore ? { tokenStore } : {}),
});
const passport = new Passport();
passport.use(logto);
passport.serializeUser((user, done) => done(null, user));
passport.deserializeUser((user: Express.User, done) => done(null, user));

const app = express();
app.use(session({ name: config.cookieName, secret: 'instances-secret', resave: false, saveUninitialized: false, store: new RedisStore({ client: sessionClient }) }));
app.use(passport.initialize());
app.use(passport.session());
app.use(logto.session());
app.get('/sign-in', passport.authenticate('logto'));
app.get('/callback', passport.authenticate('logto', { successReturnToOrRedirect: '/', failureRedirect: '/sign-in-failed', failureMessage: true }));
app.get('/sign-in-failed', (req, res) => {
  res.status(401).json({ messages: (req.session as unknown as { messages?: string[] }).messages ?? [] });
});
app.get('/', (req, res) => {
  res.json({ user: req.user ?? null, authenticated: logto.client(req).isAuthenticated(), port: config.port });
});
app.get('/token', (req, res, next) => {
  const { resource, org } = req.query as Record<string, string | undefined>;
  logto.client(req).getAccessToken(resource, org).then((token) => res.json({ token }), next);
});
app.get('/tokens', logto.authenticated(), (req, res) => {
  res.json({ refreshToken: req.logto?.getRefreshToken() ?? null, idToken: req.logto?.getIdToken() ?? null });
});
app.get('/sign-out', logto.signOut());
app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
  const code = error instanceof LogtoError ? error.code : 'internal_error';
  res.status(code === 'not_authenticated' ? 401 : 500).json({ error: code, message: error instanceof Error ? error.message : String(error) });
});

const server = createServer(app);
server.listen(config.port, '127.0.0.1', () => process.send?.({ type: 'ready' }));
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
