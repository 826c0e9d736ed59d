/**
 * An app's code that throws after the bearer strategy has verified the token: a custom
 * `passport.authenticate('logto-bearer', callback)` callback, Passport's `failureFlash` without
 * connect-flash, or the continuation given to `logtoBearer()`. Verification is asynchronous, so
 * these run outside Express's own try/catch: the error must still reach Express's error handler,
 * once, without hanging the request, calling the callback twice, or an unhandled rejection.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import { LogtoBearerStrategy, logtoBearer } from '../../lib/index.js';
import { watchForCrashes } from '../support/crash-watch.js';
import { API_RESOURCE, startProvider, type TestProvider } from '../support/provider/index.js';

const require = createRequire(import.meta.url);
const crashWatch = watchForCrashes();

interface PassportLike {
  initialize(): RequestHandler;
  use(strategy: LogtoBearerStrategy): void;
  authenticate(name: string, options?: object | AuthenticateCallback, callback?: AuthenticateCallback): RequestHandler;
}
type AuthenticateCallback = (error: unknown, user: unknown, info: unknown) => void;

interface RunningApi {
  url: string;
  /** Errors that reached the error handler, by message. */
  handled: string[];
  /** How often each callback or continuation ran, by route. */
  calls: Map<string, number>;
  close(): Promise<void>;
}

let provider: TestProvider;
before(async () => {
  provider = await startProvider();
});
after(async () => {
  await crashWatch.stop();
  await provider.close();
  crashWatch.assertNone();
});

async function startApi(flavor: { express: string; passport: string }): Promise<RunningApi> {
  const express = require(flavor.express) as () => Express;
  const { Passport } = require(flavor.passport) as { Passport: new () => PassportLike };
  const app = express();
  const passport = new Passport();
  const endpoint = provider.endpoint;
  passport.use(new LogtoBearerStrategy({ endpoint, audience: API_RESOURCE }));
  passport.use(new LogtoBearerStrategy({ endpoint, audience: API_RESOURCE, name: 'failing-verify' }, (_claims, done) => done(new Error('user directory down'))));
  app.use(passport.initialize());

  const calls = new Map<string, number>();
  const count = (route: string): void => {
    calls.set(route, (calls.get(route) ?? 0) + 1);
  };
  const throwing = (route: string): AuthenticateCallback => () => {
    count(route);
    throw new Error(`${route} broke`);
  };

  // The callback as the middleware itself, and called from the app's own handler (Passport's docs).
  app.get('/callback-direct', passport.authenticate('logto-bearer', { session: false }, throwing('callback-direct')));
  app.get('/callback-nested', (req, res, next) => {
    passport.authenticate('logto-bearer', { session: false }, throwing('callback-nested'))(req, res, next);
  });
  app.get('/callback-error', passport.authenticate('failing-verify', { session: false }, throwing('callback-error')));
  app.get('/failure-flash', passport.authenticate('logto-bearer', { session: false, failureFlash: true }), (_req, res) => {
    res.json({ ok: true });
  });

  const middleware = logtoBearer({ endpoint, audience: API_RESOURCE });
  app.get('/middleware-continuation', (req, res) => {
    middleware(req, res, () => {
      count('middleware-continuation');
      throw new Error('middleware-continuation broke');
    });
  });
  app.get('/middleware-handler', middleware, () => {
    count('middleware-handler');
    throw new Error('middleware-handler broke');
  });
  app.get('/ping', (_req, res) => {
    res.json({ ok: true });
  });

  const handled: string[] = [];
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    handled.push(error instanceof Error ? error.message : String(error));
    if (!res.headersSent) res.status(500).json({ error: 'handled' });
  });

  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    handled,
    calls,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function accessToken(): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return provider.sign(
    { iss: provider.issuer, sub: provider.users.demo.sub, aud: API_RESOURCE, client_id: provider.app.appId, scope: 'read:items', iat: now, exp: now + 300, jti: randomUUID() },
    { typ: 'at+jwt' },
  );
}

const flavors = [
  { express: 'express', passport: 'passport' },
  { express: 'express4', passport: 'passport06' },
];

for (const flavor of flavors) {
  describe(`app code that throws after bearer authentication (${flavor.express}, ${flavor.passport})`, () => {
    let api: RunningApi;
    before(async () => {
      api = await startApi(flavor);
    });
    after(() => api.close());

    /**
     * Calls a route and checks that its error reached the error handler exactly once. The signal
     * only bounds a hanging request, so that a regression fails instead of stalling the run.
     */
    async function expectHandledOnce(route: string, token: string | undefined, message: string, calls: number | undefined): Promise<void> {
      const handledBefore = api.handled.length;
      const callsBefore = api.calls.get(route) ?? 0;
      const response = await fetch(`${api.url}/${route}`, {
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(response.status, 500);
      assert.deepEqual(await response.json(), { error: 'handled' });
      // A later request on the same server: whatever a second call would have done is done by now.
      assert.equal((await fetch(`${api.url}/ping`)).status, 200, 'the process serves on');
      assert.deepEqual(api.handled.slice(handledBefore), [message], 'the error handler saw the error once');
      if (calls !== undefined) assert.equal((api.calls.get(route) ?? 0) - callsBefore, calls, 'the callback ran once');
    }

    for (const route of ['callback-direct', 'callback-nested']) {
      test(`${route}: a throwing callback after a success, and after a refusal`, async () => {
        await expectHandledOnce(route, await accessToken(), `${route} broke`, 1);
        await expectHandledOnce(route, undefined, `${route} broke`, 1);
        await expectHandledOnce(route, 'not-a-jwt', `${route} broke`, 1);
      });
    }

    test('a throwing callback given the verify function\'s error', async () => {
      await expectHandledOnce('callback-error', await accessToken(), 'callback-error broke', 1);
    });

    test('failureFlash without connect-flash', async () => {
      await expectHandledOnce('failure-flash', undefined, 'req.flash is not a function', undefined);
    });

    test('logtoBearer(): a continuation that throws is not called again with its own error', async () => {
      await expectHandledOnce('middleware-continuation', await accessToken(), 'middleware-continuation broke', 1);
    });

    test('logtoBearer(): a route handler that throws after it', async () => {
      await expectHandledOnce('middleware-handler', await accessToken(), 'middleware-handler broke', 1);
    });
  });
}
