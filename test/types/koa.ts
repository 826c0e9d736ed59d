// A Koa app with koa-passport and koa-session, as an ES module consumer writes it against
// passport-logto/koa; test/types.test.ts type-checks it against the packed package with
// skipLibCheck: false. The project has no @types/express of its own, but @types/koa-passport
// depends on @types/passport, which depends on @types/express: they are in its program, and
// passport-logto/koa must type-check beside them without taking Express's request types.
// The @ts-expect-error lines prove the types are real.
import Koa from 'koa';
import session from 'koa-session';
import passport from 'koa-passport';
import {
  LogtoBearerStrategy,
  LogtoError,
  LogtoStrategy,
  MemoryTokenStore,
  isLogtoError,
  logtoKoa,
  type LogtoClient,
  type LogtoKoa,
  type LogtoKoaState,
} from 'passport-logto/koa';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface User {
      id: string;
    }
  }
}

const strategy = new LogtoStrategy(
  {
    endpoint: 'https://tenant.logto.app',
    appId: 'app-id',
    appSecret: 'app-secret',
    callbackURL: 'http://localhost:3000/callback',
    tokenStore: new MemoryTokenStore(),
  },
  async ({ claims }) => ({ id: claims.sub }),
);
passport.use(strategy);
passport.use(new LogtoBearerStrategy({ endpoint: 'https://tenant.logto.app', audience: 'https://api.example.com' }));
passport.serializeUser((user, done) => done(null, user));
passport.deserializeUser((user: Express.User, done) => done(null, user));
const logto: LogtoKoa = logtoKoa(strategy);

const app = new Koa<LogtoKoaState>();
app.keys = ['secret'];
app.use(async (ctx, next) => {
  try {
    await next();
  } catch (error) {
    if (isLogtoError(error, 'not_authenticated')) ctx.redirect('/sign-in');
    else if (error instanceof LogtoError) {
      ctx.status = error.httpStatus;
      ctx.body = { error: error.code };
    } else throw error;
  }
});
app.use(session(app));
app.use(passport.initialize());
app.use(passport.session());
app.use(logto.middleware());
app.use(logto.session());
app.use(logto.silentSignIn({ skip: (ctx) => ctx.path.startsWith('/api/') }));

const guard = logto.authenticated({ redirect: '/sign-in' });
app.use(async (ctx, next) => {
  if (ctx.path === '/sign-in' || ctx.path === '/callback') return passport.authenticate('logto', { successReturnToOrRedirect: '/' })(ctx, next);
  if (ctx.path === '/sign-out') return logto.signOut()(ctx, next);
  if (ctx.path === '/api/token') {
    const token: string = await logto.client(ctx).getAccessToken('https://api.example.com');
    ctx.body = { length: token.length };
    return undefined;
  }
  return guard(ctx, async () => {
    const client: LogtoClient = ctx.state.logto;
    ctx.body = client.getIdTokenClaims();
  });
});

// @ts-expect-error the guard's options are typed
logto.authenticated({ fetchUserInfo: 'yes' });
// @ts-expect-error the helper is read off a Koa context
logto.client('ctx');
// @ts-expect-error not the app's Express.User
new LogtoStrategy({ endpoint: 'https://tenant.logto.app', appId: 'a', appSecret: 's', callbackURL: 'https://app.example/cb' }, async () => ({ foo: 1 }));

export default app;
