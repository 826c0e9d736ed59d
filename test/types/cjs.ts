// The app of esm.ts as a CommonJS consumer writes it (import = require), so that it loads
// dist/index.d.cts under every setting; test/types.test.ts type-checks it against the packed
// package with skipLibCheck: false. The @ts-expect-error lines prove the types are real.
import express = require('express');
import session = require('express-session');
import passport = require('passport');
import passportLogto = require('passport-logto');

import type * as esm from 'passport-logto' with { 'resolution-mode': 'import' };
// The app's own user and auth info, which the verify functions and req.authInfo are typed from.
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface User {
      id: string;
    }
    interface AuthInfo extends Partial<LogtoBearerAuthInfo> {}
  }
}

import type { LogtoAuthenticateOptions, LogtoBearerAuthInfo, LogtoBearerRouteOptions, LogtoProfile, LogtoUser, VerifyDone } from 'passport-logto';

const { LogtoBearerStrategy, LogtoError, LogtoStrategy, LogtoTenants, UserScope, byPath, isLogtoError } = passportLogto;

// The CommonJS declarations have every value of the ES module, and the types of its classes.
const everyValue: { [name in keyof typeof esm]: unknown } = passportLogto;
type ClassTypes = [
  passportLogto.LogtoStrategy,
  passportLogto.LogtoBearerStrategy,
  passportLogto.LogtoClient,
  passportLogto.LogtoError,
  passportLogto.LogtoBearerError,
  passportLogto.MemoryTokenStore,
  passportLogto.RedisTokenStore,
  passportLogto.UserScope,
  passportLogto.ReservedResource,
];
const classTypes: ClassTypes | undefined = undefined;
void everyValue;
void classTypes;

const logto = new LogtoStrategy(
  {
    endpoint: 'https://tenant.logto.app',
    appId: 'app-id',
    appSecret: 'app-secret',
    callbackURL: 'http://localhost:3000/callback',
    scopes: [UserScope.Email],
  },
  async ({ profile, claims }) => ({ ...profile, email: claims.email }),
);
passport.use(logto);
passport.use(
  new LogtoBearerStrategy({ endpoint: 'https://tenant.logto.app', audience: 'https://api.example.com' }, (claims, done) => {
    done(null, { id: claims.sub });
  }),
);
passport.serializeUser((user, done) => done(null, user));
passport.deserializeUser((user: LogtoUser, done) => done(null, user));

// @ts-expect-error appId, appSecret and callbackURL are required
new LogtoStrategy({ endpoint: 'https://tenant.logto.app' });

const app = express();
app.use(session({ secret: 'secret', resave: false, saveUninitialized: false }));
app.use(passport.initialize());
app.use(passport.session());

app.get('/sign-in', passport.authenticate('logto'));
// passport-logto's options are not Passport's: they type-check as LogtoAuthenticateOptions only.
const signUp: LogtoAuthenticateOptions = { firstScreen: 'register', scope: ['phone'], loginHint: undefined, failureRedirect: '/' };
app.get('/sign-up', passport.authenticate('logto', signUp));
// @ts-expect-error not one of Passport's options: no other strategy gets firstScreen
app.get('/google', passport.authenticate('google', { firstScreen: 'register' }));
// @ts-expect-error not a screen Logto knows
const typo: LogtoAuthenticateOptions = { firstScreen: 'registr' };
// @ts-expect-error passport-logto makes its own state
const withState: LogtoAuthenticateOptions = { state: 'fixed' };
void typo;
void withState;

// A verify function's user is the app's Express.User; refusing takes a message.
new LogtoStrategy({ endpoint: 'https://tenant.logto.app', appId: 'a', appSecret: 's', callbackURL: 'https://app.example/cb' }, (context, done) => {
  if (context.claims.email === undefined) done(null, false, { message: 'An email address is needed.' });
  else done(null, { id: context.claims.sub });
});
// @ts-expect-error not the app's Express.User
new LogtoStrategy({ endpoint: 'https://tenant.logto.app', appId: 'a', appSecret: 's', callbackURL: 'https://app.example/cb' }, async () => ({ foo: 1 }));
new LogtoStrategy(
  { endpoint: 'https://tenant.logto.app', appId: 'a', appSecret: 's', callbackURL: 'https://app.example/cb' },
  // @ts-expect-error not the app's Express.User
  (_context, done) => done(null, { foo: 1 }),
);
// passport-openidconnect's verify function, with Passport's Profile.
new LogtoStrategy(
  { endpoint: 'https://tenant.logto.app', appId: 'a', appSecret: 's', callbackURL: 'https://app.example/cb' },
  (issuer: string, profile: LogtoProfile, done: VerifyDone) => {
    const standard: passport.Profile = profile;
    done(null, { id: `${issuer}:${standard.id}` });
  },
);
app.get('/callback', passport.authenticate('logto', { successReturnToOrRedirect: '/', failureRedirect: '/' }));
app.post('/sign-out', logto.signOut());
app.post('/log-out', (req, res, next) => {
  const ended: Promise<void> = logto.endSignIn(req);
  ended.then(() => req.logout((error) => (error ? next(error) : res.redirect('/'))), next);
});
const tenants = new LogtoTenants({
  select: byPath({ '/acme': 'acme' }),
  tenants: { acme: { endpoint: 'https://acme.logto.app', appId: 'app-id', appSecret: 'app-secret', callbackURL: 'http://localhost:3000/acme/callback' } },
});
app.post('/log-out-everywhere', (req, res, next) => {
  const ended: Promise<void> = tenants.endSignIns(req);
  ended.then(() => res.redirect('/'), next);
});
app.post('/log-out-helper', (req, res, next) => {
  const loggedOut: Promise<void> = logto.logOut(req);
  loggedOut.then(() => tenants.logOut(req)).then(() => res.redirect('/'), next);
});
const readItems: LogtoBearerRouteOptions = { session: false, requiredScopes: ['read:items'] };
app.get('/api/items', passport.authenticate('logto-bearer', readItems), (req, res) => {
  const scopes: string[] | undefined = req.authInfo?.scopes;
  const organizationId: string | undefined = req.authInfo?.organizationId;
  res.json({ scopes, organizationId });
});

app.get('/me', logto.authenticated(), async (req, res) => {
  const client = req.logto;
  if (client === undefined) return;
  const claims = client.getIdTokenClaims();
  const token: string = await client.getAccessToken('https://api.example.com');
  const granted: string[] = client.scopes;
  res.json({ sub: claims.sub, token: token.length, granted });
});

app.use((error: unknown, _req: express.Request, res: express.Response, next: express.NextFunction) => {
  if (error instanceof LogtoError && error.code === 'invalid_config') {
    res.status(500).send(error.message);
    return;
  }
  if (isLogtoError(error, 'unknown_tenant')) {
    const target: string | undefined = error.requestTarget;
    console.warn('no tenant for', target);
    res.status(error.httpStatus).end();
    return;
  }
  if (isLogtoError(error, 'not_authenticated')) {
    res.redirect('/sign-in');
    return;
  }
  if (error instanceof LogtoError) {
    const status: number = error.status;
    const same: number = error.statusCode;
    const fromLogto: number | undefined = error.providerStatus;
    console.warn(same, fromLogto);
    const shown: boolean = error.expose;
    res.status(status).send(shown ? error.message : 'Something went wrong');
    return;
  }
  next(error);
});

export = app;

// The host sub-paths from CommonJS: /express is the root under the host's name; /koa needs no Koa types.
import passportLogtoExpress = require('passport-logto/express');
import passportLogtoKoa = require('passport-logto/koa');
import type * as koaEsm from 'passport-logto/koa' with { 'resolution-mode': 'import' };
const sameStrategy: typeof LogtoStrategy = passportLogtoExpress.LogtoStrategy;
// The Koa entry's CommonJS declarations have every value of its ES module: the core's too.
const everyKoaValue: { [name in keyof typeof koaEsm]: unknown } = passportLogtoKoa;
const koaStrategy: passportLogtoKoa.LogtoStrategy = new passportLogtoKoa.LogtoStrategy({ endpoint: 'https://tenant.logto.app', appId: 'a', appSecret: 's', callbackURL: 'http://localhost:3000/callback' });
void everyKoaValue;
void koaStrategy;
const koaHandlers: passportLogtoKoa.LogtoKoa = passportLogtoKoa.logtoKoa(new LogtoStrategy({ endpoint: 'https://tenant.logto.app', appId: 'a', appSecret: 's', callbackURL: 'http://localhost:3000/callback' }));
void sameStrategy;
void koaHandlers;
