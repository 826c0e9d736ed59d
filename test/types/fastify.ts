// A Fastify app's use of passport-logto/fastify, as an ES module consumer writes it; test/types.test.ts
// type-checks it against the packed package with skipLibCheck: false in a project that has neither
// @types/express nor @types/passport, and checks that neither is in the program. The @ts-expect-error
// lines prove the types are real.
//
// @fastify/passport is left out: its own declarations import Passport's types (`from 'passport'`),
// so an app that type-checks them installs @types/passport, which brings @types/express. What this
// proves is that passport-logto's declarations need neither.
import Fastify from 'fastify';
import fastifySecureSession from '@fastify/secure-session';
import {
  LogtoBearerStrategy,
  LogtoError,
  LogtoStrategy,
  MemoryTokenStore,
  UserScope,
  isLogtoError,
  logtoFastify,
  type LogtoClient,
  type LogtoFastify,
  type LogtoVerifyContext,
} from 'passport-logto/fastify';

// The app's own user, which the verify function is typed from, as on Express.
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
    scopes: [UserScope.Email],
    tokenStore: new MemoryTokenStore(),
  },
  async ({ claims }: LogtoVerifyContext) => ({ id: claims.sub }),
);
const bearer = new LogtoBearerStrategy({ endpoint: 'https://tenant.logto.app', audience: 'https://api.example.com' });
const logto: LogtoFastify = logtoFastify(strategy);

const app = Fastify();
await app.register(fastifySecureSession, { key: Buffer.alloc(32), cookie: { path: '/', httpOnly: true } });
await app.register(logto.plugin);
app.addHook('preValidation', logto.session());

app.get('/profile', { preHandler: logto.authenticated({ redirect: '/sign-in', accessToken: 'https://api.example.com' }) }, async (request) => {
  const client: LogtoClient | null = request.logto;
  return { sub: client?.getIdTokenClaims().sub, token: client?.accessToken };
});
app.get('/api/token', async (request) => {
  const token: string = await logto.client(request).getAccessToken('https://api.example.com');
  return { length: token.length };
});
app.post('/sign-out', logto.signOut({ postLogoutRedirectUri: 'http://localhost:3000/' }));
app.post('/log-out', async (request) => {
  await logto.logOut(request);
  return { loggedOut: true };
});
app.get('/page', { preHandler: logto.silentSignIn({ skip: (request) => request.url.startsWith('/api/') }) }, async () => 'page');
await app.register(logto.backchannelLogout({ path: '/backchannel-logout' }));

app.setErrorHandler(async (error, _request, reply) => {
  if (isLogtoError(error, 'not_authenticated')) return reply.redirect('/sign-in');
  if (error instanceof LogtoError) return reply.code(error.httpStatus).send({ error: error.code });
  throw error;
});

// @ts-expect-error the guard's options are typed
logto.authenticated({ redirect: 42 });
// @ts-expect-error the helper is read off a Fastify request
logto.client('request');
// @ts-expect-error not the app's Express.User
new LogtoStrategy({ endpoint: 'https://tenant.logto.app', appId: 'a', appSecret: 's', callbackURL: 'https://app.example/cb' }, async () => ({ foo: 1 }));
// @ts-expect-error the adapter takes a LogtoStrategy
logtoFastify(bearer);

export default app;
