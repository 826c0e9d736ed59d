import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import type { Express, RequestHandler, Response as ExpressResponse } from 'express';
import { isLogtoError, LogtoError, LogtoStrategy, type LogtoStrategyOptions } from '../../lib/index.js';
import { startApp, type ExpressFlavor, type RunningApp } from '../support/app.js';
import { watchForCrashes } from '../support/crash-watch.js';
import { getJson, signIn, type HomeBody } from '../support/flows.js';
import { endSessionAtProvider, TestBrowser } from '../support/http-client.js';
import { partialPost } from '../support/raw-http.js';
import { startProvider, type TestProvider } from '../support/provider/index.js';
import { captureWarnings } from '../support/warnings.js';

const require = createRequire(import.meta.url);
// A crash or an unhandled rejection, from a garbage body say, fails the test that caused it.
const crashWatch = watchForCrashes();

let provider: TestProvider;
/** Mounts the handler and leaves the option `backchannelLogout` unset: the deprecated way, which still works. */
let appWithLogout: RunningApp;
let otherApp: RunningApp;

/** Captured before any strategy exists, so that every such warning of this process is seen, and none is printed: they are expected. */
const captured = captureWarnings(['PASSPORT_LOGTO_BACKCHANNEL_INDEXING']);
const indexingWarnings: Error[] = captured.warnings;

before(async () => {
  provider = await startProvider();
  // The deprecated way on purpose: the option left unset.
  appWithLogout = await startApp(provider, { backchannelLogout: true, strategy: { backchannelLogout: undefined } });
  otherApp = await startApp(provider);
});
after(async () => {
  await captured.stop();
  await crashWatch.stop();
  await appWithLogout.close();
  await otherApp.close();
  await provider.close();
  crashWatch.assertNone();
});

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const postLogoutToken = (token: string, app: RunningApp = appWithLogout): Promise<Response> =>
  fetch(`${app.url}/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
  });

describe('back-channel logout', () => {
  test('signing out of Logto in another app ends the session here, through the session store', async () => {
    const browser = new TestBrowser();
    await signIn(browser, provider, appWithLogout);
    await signIn(browser, provider, otherApp); // single sign-on: the same Logto session
    const bystander = new TestBrowser();
    await signIn(bystander, provider, appWithLogout, '/sign-in', provider.users.alice);
    assert.equal((await getJson<HomeBody>(browser, `${appWithLogout.url}/`)).body.authenticated, true);

    const signOut = await browser.get(`${otherApp.url}/sign-out`);
    await endSessionAtProvider(browser, signOut.location ?? '');

    await eventually(async () => (await getJson<HomeBody>(browser, `${appWithLogout.url}/`)).body.user === null, 'the session to end');
    assert.equal((await browser.get(`${appWithLogout.url}/api/profile`)).status, 401);
    assert.equal(provider.countRequests('/backchannel-logout'), 0, 'the logout token goes to the app, not the provider');
    const other = (await getJson<HomeBody>(bystander, `${appWithLogout.url}/`)).body;
    assert.equal(other.user?.id, provider.users.alice.sub, 'other users stay signed in');
  });

  test('a valid logout token is accepted once; a replay and forged tokens get 400', async () => {
    const browser = new TestBrowser();
    await signIn(browser, provider, appWithLogout, '/sign-in', provider.users.alice);
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: provider.issuer,
      aud: appWithLogout.logto.config.appId,
      iat: now,
      exp: now + 120,
      jti: `jti-${now}-${Math.random()}`,
      sub: provider.users.alice.sub,
      events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
    };
    const valid = await provider.sign(claims, { typ: 'logout+jwt' });
    assert.equal((await postLogoutToken(valid)).status, 200);
    assert.equal((await getJson<HomeBody>(browser, `${appWithLogout.url}/`)).body.user, null, 'sessions of that user ended');
    const replay = await postLogoutToken(valid);
    assert.equal(replay.status, 400);
    assert.match(((await replay.json()) as { error_description: string }).error_description, /already used/);

    const forged: Array<[string, Record<string, unknown>]> = [
      ['no event', { ...claims, jti: 'a1', events: {} }],
      ['a nonce', { ...claims, jti: 'a2', nonce: 'n' }],
      ['neither sid nor sub', { ...claims, jti: 'a3', sub: undefined }],
      ['another audience', { ...claims, jti: 'a4', aud: 'another-app' }],
      ['no jti', { ...claims, jti: undefined }],
      ['expired', { ...claims, jti: 'a5', iat: now - 7200, exp: now - 3600 }],
    ];
    for (const [name, payload] of forged) {
      const response = await postLogoutToken(await provider.sign(JSON.parse(JSON.stringify(payload)) as Record<string, unknown>));
      assert.equal(response.status, 400, name);
    }
    assert.equal((await postLogoutToken('not-a-jwt')).status, 400);
    const noToken = await fetch(`${appWithLogout.url}/backchannel-logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    assert.equal(noToken.status, 400);
  });

  test('with `backchannelLogout: true`, a sign-in on an instance that never mounted the handler is ended by one that did', async () => {
    const handling = await startApp(provider, { backchannelLogout: true, strategy: { backchannelLogout: true } });
    // Another instance of the same app, sharing the session store (and so the token store), without the handler.
    const serving = await startApp(provider, { instanceOf: handling.registered, store: handling.store, strategy: { backchannelLogout: true } });
    try {
      const browser = new TestBrowser();
      await signIn(browser, provider, serving, '/sign-in', provider.users.alice);
      assert.equal((await getJson<HomeBody>(browser, `${serving.url}/`)).body.authenticated, true);
      const now = Math.floor(Date.now() / 1000);
      const token = await provider.sign(
        {
          iss: provider.issuer,
          aud: handling.registered.appId,
          iat: now,
          exp: now + 120,
          jti: `jti-indexed-${now}-${Math.random()}`,
          sub: provider.users.alice.sub,
          events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
        },
        { typ: 'logout+jwt' },
      );
      assert.equal((await postLogoutToken(token, handling)).status, 200);
      const home = (await getJson<HomeBody>(browser, `${serving.url}/`)).body;
      assert.equal(home.user, null, 'the serving instance indexed the sign-in from the start');
      assert.equal(home.authenticated, false);
    } finally {
      await serving.close();
      await handling.close();
    }
  });

  const strategyOptions = (): LogtoStrategyOptions => ({
    endpoint: provider.endpoint,
    appId: 'indexing-app',
    appSecret: 'indexing-secret',
    callbackURL: 'http://127.0.0.1:3000/callback',
  });

  test('left unset, mounting the handler turns indexing on (as the first test shows) and warns once per process', async () => {
    const strategy = new LogtoStrategy(strategyOptions());
    strategy.backchannelLogout();
    strategy.backchannelLogout();
    new LogtoStrategy(strategyOptions()).backchannelLogout();
    new LogtoStrategy({ ...strategyOptions(), backchannelLogout: true }).backchannelLogout();
    // process.emitWarning delivers on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(indexingWarnings.length, 1, 'one warning, from appWithLogout, for every mount without the option');
    assert.equal(indexingWarnings[0]?.name, 'DeprecationWarning');
    assert.match(indexingWarnings[0]?.message ?? '', /backchannelLogout: true/);
  });

  test('with `backchannelLogout: false`, mounting the handler throws invalid_config', () => {
    const strategy = new LogtoStrategy({ ...strategyOptions(), backchannelLogout: false });
    assert.throws(
      () => strategy.backchannelLogout(),
      (error: unknown) => error instanceof LogtoError && error.code === 'invalid_config' && /backchannelLogout: true/.test(error.message),
    );
    assert.throws(
      () => new LogtoStrategy({ ...strategyOptions(), backchannelLogout: 'yes' as unknown as boolean }),
      (error: unknown) => error instanceof LogtoError && error.code === 'invalid_config' && /backchannelLogout/.test(error.message),
    );
  });
});

/** The body parsers of the app's own Express major, as an app would mount them. */
function parsersOf(flavor: ExpressFlavor): { urlencoded: (options: object) => RequestHandler; json: () => RequestHandler; raw: (options: object) => RequestHandler } {
  return require(flavor === 'express4' ? 'express4' : 'express') as ReturnType<typeof parsersOf>;
}

/** What the app mounts before the handler on its route. */
type BodyParserBefore = 'none' | 'urlencoded' | 'json' | 'raw';

for (const flavor of ['express5', 'express4'] as const) {
  describe(`the logout request's body, on ${flavor}`, () => {
    const apps = new Map<BodyParserBefore, RunningApp>();

    before(async () => {
      const parsers = parsersOf(flavor);
      const mounted: Record<BodyParserBefore, RequestHandler | undefined> = {
        none: undefined,
        urlencoded: parsers.urlencoded({ extended: true }),
        json: parsers.json(),
        raw: parsers.raw({ type: '*/*' }),
      };
      for (const [before, parser] of Object.entries(mounted) as Array<[BodyParserBefore, RequestHandler | undefined]>) {
        const routes = (app: Express): void => {
          if (parser) app.post('/backchannel-logout', parser);
        };
        apps.set(before, await startApp(provider, { express: flavor, backchannelLogout: true, strategy: { backchannelLogout: true }, routes }));
      }
    });
    after(async () => {
      for (const running of apps.values()) await running.close();
    });

    const appFor = (before: BodyParserBefore): RunningApp => apps.get(before) as RunningApp;

    async function logoutTokenFor(app: RunningApp, sub: string): Promise<string> {
      const now = Math.floor(Date.now() / 1000);
      return provider.sign(
        { iss: provider.issuer, aud: app.registered.appId, iat: now, exp: now + 120, jti: randomUUID(), sub, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } },
        { typ: 'logout+jwt' },
      );
    }

    /** POSTs a body as it is, and reads the answer as a client would. */
    async function post(app: RunningApp, body: string | Uint8Array<ArrayBuffer> | undefined, headers: Record<string, string>): Promise<{ status: number; error?: string; description?: string }> {
      const response = await fetch(`${app.url}/backchannel-logout`, { method: 'POST', headers, ...(body === undefined ? {} : { body }) });
      const text = await response.text();
      const parsed = response.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as { error?: string; error_description?: string }) : {};
      return { status: response.status, ...(parsed.error === undefined ? {} : { error: parsed.error }), ...(parsed.error_description === undefined ? {} : { description: parsed.error_description }) };
    }

    const form = { 'content-type': 'application/x-www-form-urlencoded' };

    test('a valid logout token ends the sign-in whether or not the app parsed the form, or a JSON body, before the handler', async () => {
      for (const before of ['none', 'urlencoded', 'json'] as const) {
        const app = appFor(before);
        const browser = new TestBrowser();
        await signIn(browser, provider, app, '/sign-in', provider.users.alice);
        const answer = await post(app, new URLSearchParams({ logout_token: await logoutTokenFor(app, provider.users.alice.sub) }).toString(), form);
        assert.equal(answer.status, 200, `${before}: ${JSON.stringify(answer)}`);
        assert.equal((await getJson<HomeBody>(browser, `${app.url}/`)).body.user, null, before);
        assert.deepEqual(app.errors, [], before);
      }
    });

    test('a wrong content type or no body gets 400 saying what to send', async () => {
      for (const before of ['none', 'urlencoded', 'json'] as const) {
        const app = appFor(before);
        const token = await logoutTokenFor(app, provider.users.alice.sub);
        const cases: Array<[string, string | undefined, Record<string, string>]> = [
          ['JSON', JSON.stringify({ logout_token: token }), { 'content-type': 'application/json' }],
          ['text', `logout_token=${token}`, { 'content-type': 'text/plain' }],
          ['no body', undefined, {}],
        ];
        for (const [name, body, headers] of cases) {
          const answer = await post(app, body, headers);
          assert.equal(answer.status, 400, `${before}, ${name}`);
          assert.equal(answer.error, 'invalid_request', `${before}, ${name}`);
          assert.match(answer.description ?? '', /application\/x-www-form-urlencoded body carrying logout_token/, `${before}, ${name}`);
        }
        assert.deepEqual(app.errors, [], before);
      }
    });

    test('an oversized or garbage form gets 400 with what was wrong, and reaches no error handler', async () => {
      const app = appFor('none');
      const token = await logoutTokenFor(app, provider.users.alice.sub);
      const cases: Array<[string, string | Uint8Array<ArrayBuffer>, Record<string, string>, RegExp]> = [
        ['20 KiB', `logout_token=${'a'.repeat(20 * 1024)}`, form, /could not be read as a form \(request entity too large\)/],
        ['too many parameters', Array.from({ length: 50 }, (_, index) => `p${index}=1`).join('&'), form, /could not be read as a form \(too many parameters\)/],
        ['an unknown charset', `logout_token=${token}`, { 'content-type': 'application/x-www-form-urlencoded; charset=koi8-r' }, /could not be read as a form \(unsupported charset "KOI8-R"\)/],
        ['gzip that is not', 'not gzip at all', { ...form, 'content-encoding': 'gzip' }, /could not be read as a form/],
        ['an unknown content encoding', 'x', { ...form, 'content-encoding': 'x-garbage' }, /could not be read as a form \(unsupported content encoding "x-garbage"\)/],
        ['two logout tokens', `logout_token=${token}&logout_token=${token}`, form, /exactly one logout_token/],
        ['binary junk', new Uint8Array([0, 255, 254, 37, 37, 61, 38, 1, 2, 3]), form, /exactly one logout_token/],
        ['no logout_token', 'token=x', form, /exactly one logout_token/],
        ['a token of garbage bytes', 'logout_token=%ff%fe%00', form, /The token is not valid/],
      ];
      for (const [name, body, headers, message] of cases) {
        const answer = await post(app, body, headers);
        assert.deepEqual([answer.status, answer.error], [400, 'invalid_request'], `${name}: ${JSON.stringify(answer)}`);
        assert.match(answer.description ?? '', message, name);
      }
      // A compressed form is a form: body-parser inflates it.
      const browser = new TestBrowser();
      await signIn(browser, provider, app, '/sign-in', provider.users.alice);
      const gzipped = gzipSync(new URLSearchParams({ logout_token: await logoutTokenFor(app, provider.users.alice.sub) }).toString());
      assert.equal((await post(app, gzipped, { ...form, 'content-encoding': 'gzip' })).status, 200);
      assert.equal((await getJson<HomeBody>(browser, `${app.url}/`)).body.user, null);
      assert.deepEqual(app.errors, [], 'nothing reached the error handler');
    });

    test('a token over 16 KiB that the app\'s own parser let through is refused all the same', async () => {
      const app = appFor('urlencoded');
      const answer = await post(app, `logout_token=${'a'.repeat(20 * 1024)}`, form);
      assert.deepEqual([answer.status, answer.error], [400, 'invalid_request']);
      assert.match(answer.description ?? '', /exactly one logout_token, of at most 16 KiB/);
      assert.deepEqual(app.errors, []);
    });

    test('a client that closes the connection halfway through its body gets 400 invalid_request, and the app\'s error handler hears nothing', async () => {
      // Before the handler: a middleware ahead of it (a session store, a rate limiter) is still
      // busy when the client goes; here it waits for the connection to close, so the race is
      // always lost. While it reads: the handler is reading the body when the client goes.
      for (const when of ['before the handler', 'while it reads'] as const) {
        let arrived!: () => void;
        const arrival = new Promise<void>((resolve) => (arrived = resolve));
        let answered!: (status: number) => void;
        const answer = new Promise<number>((resolve) => (answered = resolve));
        const routes = (app: Express): void => {
          app.post('/backchannel-logout', (req, res, next) => {
            // The answer that the handler (or an error handler) gives, though the client cannot hear it.
            const end = res.end.bind(res) as (...args: unknown[]) => ExpressResponse;
            res.end = ((...args: unknown[]) => {
              answered(res.statusCode);
              return end(...args);
            }) as ExpressResponse['end'];
            arrived();
            if (when === 'while it reads' || req.socket.destroyed) next();
            else req.socket.once('close', () => next());
          });
        };
        const app = await startApp(provider, { express: flavor, backchannelLogout: true, strategy: { backchannelLogout: true }, routes });
        try {
          const socket = await partialPost(Number(new URL(app.url).port), '/backchannel-logout', form, 2000, 'logout_token=eyJhbGciOiJSUzI1NiJ9.');
          await arrival;
          socket.destroy();
          assert.equal(await answer, 400, when);
          assert.deepEqual(app.errors, [], `${when}: not the app's setup, nothing for its error handler`);
        } finally {
          await app.close();
        }
      }
    });

    test('a body that the app\'s parser read into something other than a form is the app\'s setup: invalid_config for its error handler', async () => {
      const app = appFor('raw');
      const answer = await post(app, new URLSearchParams({ logout_token: 'x' }).toString(), form);
      assert.deepEqual([answer.status, answer.error], [500, 'invalid_config']);
      assert.equal(app.errors.length, 1);
      const [error] = app.errors;
      assert.ok(isLogtoError(error, 'invalid_config'));
      assert.match(error.message, /Mount backchannelLogout\(\) before that parser, or parse forms with express\.urlencoded\(\)/);
      app.errors.length = 0;
    });
  });
}
