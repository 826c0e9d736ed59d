/**
 * Issue 11, items 4 to 7, as a user of passport-logto meets them: app callbacks that throw
 * around the LogtoStrategy, the verify function's ways of answering, sign-out refused to other
 * sites, and back-channel logout that survives a failing session store and refuses replays.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import express, { type RequestHandler } from 'express';
import session from 'express-session';
import { LogtoError } from '../../lib/index.js';
import { hardeningSetup, type ExpressFlavor, type PassportFlavor, type RunningApp } from '../support/app.js';
import { callbackAfterSignIn, getJson, signIn, startSignIn, tokensOf, type HomeBody, type SessionBody } from '../support/flows.js';
import { cancelAtProvider, endSessionAtProvider, TestBrowser } from '../support/http-client.js';
import type { TestProvider } from '../support/provider/index.js';
import { captureWarnings, type CapturedWarnings } from '../support/warnings.js';

// One provider for the file, its apps closed at the end; a crash or a forgotten promise fails the test that caused it.
let provider: TestProvider;
const { app } = hardeningSetup({
  started: (started) => {
    provider = started;
  },
});

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

async function home(browser: TestBrowser, running: RunningApp): Promise<HomeBody> {
  return (await getJson<HomeBody>(browser, `${running.url}/`)).body;
}

type AuthenticateCallback = (error: unknown, user: unknown, info: unknown) => void;
type Authenticate = (name: string, options: object, callback?: AuthenticateCallback) => RequestHandler;

// ---------------------------------------------------------------------------
// Item 4: app code that Passport runs inside the strategy's calls throws
// ---------------------------------------------------------------------------

const flavors: Array<{ express: ExpressFlavor; passport: PassportFlavor }> = [
  { express: 'express5', passport: 'passport07' },
  { express: 'express4', passport: 'passport06' },
];

for (const flavor of flavors) {
  describe(`item 4: a throwing app callback around LogtoStrategy (${flavor.express}, ${flavor.passport})`, () => {
    let running: RunningApp;
    /** Which handler the callback route uses; the registered redirect URI is fixed, so the route switches. */
    let callbackMode: 'standard' | 'custom-direct' | 'custom-nested' | 'flash' = 'standard';
    const calls = new Map<string, number>();
    const throwing = (route: string): AuthenticateCallback => () => {
      calls.set(route, (calls.get(route) ?? 0) + 1);
      throw new Error(`${route}: app bug`);
    };

    // A callback that throws never logs the user in: the warning for that is expected here.
    let expected: CapturedWarnings | undefined;
    before(async () => {
      expected = captureWarnings(['PASSPORT_LOGTO_LOGIN_NOT_CALLED']);
      running = await app({
        express: flavor.express,
        passport: flavor.passport,
        routes: (expressApp, logto, passport) => {
          const authenticate = passport.authenticate.bind(passport) as unknown as Authenticate;
          const when = (mode: typeof callbackMode): RequestHandler => (_req, _res, next) => (callbackMode === mode ? next() : next('route'));
          // Passport's two documented shapes: the callback as the route's middleware, and called from a handler.
          expressApp.get('/callback', when('custom-direct'), authenticate(logto.name, {}, throwing('custom-direct')));
          expressApp.get('/callback', when('custom-nested'), (req, res, next) => {
            authenticate(logto.name, {}, throwing('custom-nested'))(req, res, next);
          });
          // No connect-flash is installed, so Passport's req.flash call throws.
          expressApp.get('/callback', when('flash'), authenticate(logto.name, { failureRedirect: '/sign-in-failed', failureFlash: true }));
          // A sign-in leg that ends in an error: extraParams may not set `state`.
          expressApp.get('/sign-in-broken', authenticate(logto.name, { extraParams: { state: 'mine' } }, throwing('sign-in')));
        },
      });
    });
    after(async () => {
      callbackMode = 'standard';
      await expected?.stop();
    });

    /**
     * Requests url and checks that exactly `message` reached the app's error handler, the callback
     * ran once, and the process still serves. The signal only bounds a request that would hang.
     */
    async function expectHandledOnce(browser: TestBrowser, url: string, route: string | undefined, message: string): Promise<void> {
      const errorsBefore = running.errors.length;
      const callsBefore = route === undefined ? 0 : (calls.get(route) ?? 0);
      const response = await Promise.race([
        browser.get(url),
        new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`no answer from ${url}: the error was lost`)), 10_000).unref()),
      ]);
      assert.equal(response.status, 500, response.text);
      assert.equal(JSON.parse(response.text).message, message);
      // A later request on the same server: whatever a second call would have done is done by now.
      assert.equal((await new TestBrowser().get(`${running.url}/`)).status, 200, 'the process serves on');
      assert.deepEqual(running.errors.slice(errorsBefore).map(messageOf), [message], 'the error handler saw the error once');
      if (route !== undefined) assert.equal((calls.get(route) ?? 0) - callsBefore, 1, 'the callback ran once');
    }

    for (const mode of ['custom-direct', 'custom-nested'] as const) {
      test(`${mode}: the callback throws after a successful sign-in`, async () => {
        const browser = new TestBrowser();
        const callback = await callbackAfterSignIn(browser, provider, running);
        callbackMode = mode;
        try {
          await expectHandledOnce(browser, callback, mode, `${mode}: app bug`);
        } finally {
          callbackMode = 'standard';
        }
      });

      test(`${mode}: the callback throws after a failure (the user cancelled at Logto)`, async () => {
        const browser = new TestBrowser();
        const callback = await cancelAtProvider(browser, (await startSignIn(browser, running)).href, running.callbackURL);
        callbackMode = mode;
        try {
          await expectHandledOnce(browser, callback, mode, `${mode}: app bug`);
        } finally {
          callbackMode = 'standard';
        }
      });

      test(`${mode}: the callback throws after an error (Logto's token endpoint is down)`, async () => {
        const browser = new TestBrowser();
        const callback = await callbackAfterSignIn(browser, provider, running);
        callbackMode = mode;
        provider.setFault('/oidc/token', { status: 503, body: '{"error":"server_error"}' });
        try {
          await expectHandledOnce(browser, callback, mode, `${mode}: app bug`);
        } finally {
          provider.setFault('/oidc/token', undefined);
          callbackMode = 'standard';
        }
      });
    }

    test('the callback throws on the sign-in leg', async () => {
      await expectHandledOnce(new TestBrowser(), `${running.url}/sign-in-broken`, 'sign-in', `sign-in: app bug`);
    });

    test('failureFlash without connect-flash', async () => {
      const browser = new TestBrowser();
      const callback = await cancelAtProvider(browser, (await startSignIn(browser, running)).href, running.callbackURL);
      callbackMode = 'flash';
      try {
        await expectHandledOnce(browser, callback, undefined, 'req.flash is not a function');
      } finally {
        callbackMode = 'standard';
      }
    });
  });
}

// ---------------------------------------------------------------------------
// Item 5: the verify function
// ---------------------------------------------------------------------------

class AppError extends Error {
  override readonly name = 'AppError';
}

describe('item 5: the verify function', () => {
  const notApproved = { message: 'Your account is not approved' };

  async function expectRefusedWithOwnMessage(running: RunningApp): Promise<void> {
    const browser = new TestBrowser();
    assert.equal(await signIn(browser, provider, running), `${running.url}/sign-in-failed`);
    const failed = await getJson<{ messages: string[] }>(browser, `${running.url}/sign-in-failed`);
    assert.deepEqual(failed.body.messages, [notApproved.message], 'failureMessage shows the app\'s own message');
    assert.equal((await home(browser, running)).user, null);
  }

  async function expectSignedInLater(running: RunningApp): Promise<void> {
    const browser = new TestBrowser();
    assert.equal(await signIn(browser, provider, running), `${running.url}/`);
    const body = await home(browser, running);
    assert.deepEqual(body.user, { id: provider.users.demo.sub, approved: true });
    assert.equal(body.authenticated, true);
  }

  /** The app's error object itself reaches the error handler: not wrapped, not a LogtoError. */
  async function expectOwnError(running: RunningApp, error: AppError): Promise<void> {
    const browser = new TestBrowser();
    const callback = await callbackAfterSignIn(browser, provider, running);
    const errorsBefore = running.errors.length;
    const response = await browser.get(callback);
    assert.equal(response.status, 500);
    assert.deepEqual(JSON.parse(response.text), { error: 'internal_error', message: error.message });
    const handled = running.errors.slice(errorsBefore);
    assert.equal(handled.length, 1);
    assert.equal(handled[0], error, 'the very error the verify function threw');
    assert.ok(!(handled[0] instanceof LogtoError));
    assert.equal((await home(browser, running)).user, null);
  }

  test('done(null, false, info): failureMessage shows the app\'s message', async () => {
    await expectRefusedWithOwnMessage(await app({ verify: (_context, done) => done(null, false, notApproved) }));
  });

  test('done(null, false, info) with passReqToCallback', async () => {
    await expectRefusedWithOwnMessage(await app({ verifyWithRequest: (_req, _context, done) => done(null, false, notApproved) }));
  });

  test('an async verify function that takes done and calls it later signs the user in', async () => {
    await expectSignedInLater(
      await app({
        verify: async (context, done) => {
          setTimeout(() => done(null, { id: context.claims.sub, approved: true }), 50);
        },
      }),
    );
  });

  test('the same with passReqToCallback', async () => {
    await expectSignedInLater(
      await app({
        verifyWithRequest: async (_req, context, done) => {
          setTimeout(() => done(null, { id: context.claims.sub, approved: true }), 50);
        },
      }),
    );
  });

  test('a verify function that throws: the app\'s own error reaches the error handler', async () => {
    const error = new AppError('user database down (sync)');
    await expectOwnError(await app({ verify: () => { throw error; } }), error);
  });

  test('a verify function that rejects, with and without done', async () => {
    const rejected = new AppError('user database down (async)');
    await expectOwnError(await app({ verify: async () => { throw rejected; } }), rejected);
    const rejectedWithDone = new AppError('user database down (async, takes done)');
    await expectOwnError(await app({ verify: async (_context, _done) => { throw rejectedWithDone; } }), rejectedWithDone);
  });

  test('throwing and rejecting with passReqToCallback', async () => {
    const thrown = new AppError('user database down (sync, with req)');
    await expectOwnError(await app({ verifyWithRequest: () => { throw thrown; } }), thrown);
    const rejected = new AppError('user database down (async, with req)');
    await expectOwnError(await app({ verifyWithRequest: async (_req, _context, _done) => { throw rejected; } }), rejected);
  });

  test('a thrown value that is falsy is still an error, not a refusal', async () => {
    // Passport's done() treats a falsy error as none; a throw is never a refusal.
    const running = await app({ verify: () => { throw ''; } });
    const browser = new TestBrowser();
    const callback = await callbackAfterSignIn(browser, provider, running);
    const errorsBefore = running.errors.length;
    const response = await browser.get(callback);
    assert.equal(response.status, 500, `expected the error handler, got ${response.status} ${response.location ?? ''}`);
    assert.equal(running.errors.length - errorsBefore, 1);
  });
});

// ---------------------------------------------------------------------------
// Item 6: sign-out refused to other sites
// ---------------------------------------------------------------------------

describe('item 6: sign-out and cross-site requests', () => {
  let running: RunningApp;
  before(async () => {
    running = await app({
      routes: (expressApp, logto) => {
        // The README's POST form.
        expressApp.post('/sign-out', logto.signOut());
      },
    });
  });

  async function signedInBrowser(): Promise<TestBrowser> {
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    assert.equal((await home(browser, running)).authenticated, true);
    return browser;
  }

  const refusals: Array<[string, { method: 'GET' | 'POST'; headers: Record<string, string> }]> = [
    ['a cross-site GET (Sec-Fetch-Site)', { method: 'GET', headers: { 'sec-fetch-site': 'cross-site' } }],
    ['a cross-site POST (Sec-Fetch-Site, Origin)', { method: 'POST', headers: { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' } }],
    ['a POST with another site\'s Origin', { method: 'POST', headers: { origin: 'https://evil.example' } }],
    ['a GET with another origin (same host, another port)', { method: 'GET', headers: { origin: 'http://127.0.0.1:1' } }],
  ];
  for (const [name, request] of refusals) {
    test(`${name} gets 403 and signs nobody out`, async () => {
      const browser = await signedInBrowser();
      const before = await tokensOf(browser, running);
      provider.resetRequests();
      const response = await browser.request(`${running.url}/sign-out`, {
        method: request.method,
        headers: request.headers,
        ...(request.method === 'POST' ? { form: {} } : {}),
      });
      assert.equal(response.status, 403);
      assert.equal(JSON.parse(response.text).error, 'cross_site_sign_out');
      assert.equal(provider.countRequests('/oidc/token/revocation'), 0, 'no refresh token was revoked');
      const after = await home(browser, running);
      assert.equal(after.authenticated, true, 'still signed in');
      assert.equal(after.user?.id, provider.users.demo.sub);
      assert.deepEqual(await tokensOf(browser, running), before, 'the tokens are untouched');
    });
  }

  const accepted: Array<[string, { method: 'GET' | 'POST'; headers: Record<string, string> }]> = [
    ['a same-origin POST form', { method: 'POST', headers: { 'sec-fetch-site': 'same-origin' } }],
    ['a same-origin POST form (Origin only, no Sec-Fetch-Site)', { method: 'POST', headers: {} }],
    ['a plain GET link (no Origin)', { method: 'GET', headers: {} }],
    ['a same-origin GET link (Sec-Fetch-Site: same-origin)', { method: 'GET', headers: { 'sec-fetch-site': 'same-origin' } }],
  ];
  for (const [name, request] of accepted) {
    test(`${name} signs out`, async () => {
      const browser = await signedInBrowser();
      // A browser sends the app's own origin with a same-origin POST.
      const headers = request.method === 'POST' ? { origin: running.url, ...request.headers } : request.headers;
      const response = await browser.request(`${running.url}/sign-out`, {
        method: request.method,
        headers,
        ...(request.method === 'POST' ? { form: {} } : {}),
      });
      assert.equal(response.status, 302, response.text);
      const endSession = new URL(response.location ?? '');
      assert.equal(`${endSession.origin}${endSession.pathname}`, `${provider.issuer}/session/end`);
      const after = await home(browser, running);
      assert.equal(after.user, null);
      assert.equal(after.authenticated, false);
    });
  }
});

// ---------------------------------------------------------------------------
// Item 7: back-channel logout
// ---------------------------------------------------------------------------

/** A MemoryStore whose `destroy` fails once for the session ids it is told, like a store that blips. */
class FlakyStore extends session.MemoryStore {
  readonly failOnce = new Set<string>();
  override destroy(sessionId: string, callback?: (error?: unknown) => void): void {
    if (this.failOnce.delete(sessionId)) {
      setImmediate(() => callback?.(new Error('session store unavailable')));
      return;
    }
    super.destroy(sessionId, callback);
  }
}

const logoutEvent = { 'http://schemas.openid.net/event/backchannel-logout': {} };

function postLogoutToken(running: RunningApp, token: string): Promise<Response> {
  return fetch(`${running.url}/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
  });
}

async function sessionIdOf(browser: TestBrowser, running: RunningApp): Promise<string> {
  return (await getJson<SessionBody>(browser, `${running.url}/session`)).body.sessionID;
}

describe('item 7: back-channel logout', () => {
  const store = new FlakyStore();
  /** The logout tokens Logto delivered to `withLogout`, and what the app answered. */
  const deliveries: Array<{ token: string; status?: number }> = [];
  let withLogout: RunningApp;
  let otherApp: RunningApp;

  before(async () => {
    withLogout = await app({
      backchannelLogout: true,
      store,
      routes: (expressApp) => {
        // Sees each delivery on its way to the handler (which reads the parsed body), to replay it as Logto's retry.
        expressApp.post('/backchannel-logout', express.urlencoded({ extended: false }), (req, res, next) => {
          const delivery: { token: string; status?: number } = { token: String((req.body as Record<string, unknown>).logout_token) };
          deliveries.push(delivery);
          res.on('finish', () => {
            delivery.status = res.statusCode;
          });
          next();
        });
      },
    });
    otherApp = await app();
  });

  function forge(claims: Record<string, unknown>): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const payload = { iss: provider.issuer, aud: withLogout.registered.appId, iat: now, exp: now + 120, jti: randomUUID(), events: logoutEvent, ...claims };
    // JSON drops the claims a case sets to undefined.
    return provider.sign(JSON.parse(JSON.stringify(payload)) as Record<string, unknown>, { typ: 'logout+jwt' });
  }

  test('a session store that fails gives 5xx, and Logto\'s retry with the same token ends the session', async () => {
    const browser = new TestBrowser();
    await signIn(browser, provider, withLogout);
    await signIn(browser, provider, otherApp); // single sign-on: one Logto session for both apps
    store.failOnce.add(await sessionIdOf(browser, withLogout));

    // Signing out in the other app ends the Logto session; Logto sends its logout token here.
    const deliveredBefore = deliveries.length;
    await endSessionAtProvider(browser, (await browser.get(`${otherApp.url}/sign-out`)).location ?? '');
    const delivered = deliveries.slice(deliveredBefore);
    assert.equal(delivered.length, 1, 'Logto delivered one logout token');
    const [delivery] = delivered as [{ token: string; status?: number }];
    assert.ok((delivery.status ?? 0) >= 500, `a failed session store answers 5xx, got ${delivery.status}`);
    assert.equal(store.failOnce.size, 0, 'the failing destroy was tried');
    // The sign-in's record ended before the destroy failed: the token store says ended, so the
    // session that could not be destroyed is signed out all the same (logto.session()).
    assert.equal((await home(browser, withLogout)).user, null, 'the sign-in ended although its session could not be destroyed');

    const retry = await postLogoutToken(withLogout, delivery.token);
    assert.equal(retry.status, 200, 'the same token is accepted again: its jti was not recorded');
    assert.equal((await home(browser, withLogout)).user, null, 'still signed out after the retry');
    assert.equal((await postLogoutToken(withLogout, delivery.token)).status, 400, 'once it worked, the token is used');
  });

  test('one failed destroy does not stop the other sessions of the user from ending', async () => {
    const browsers = [new TestBrowser(), new TestBrowser(), new TestBrowser()];
    for (const browser of browsers) await signIn(browser, provider, withLogout, '/sign-in', provider.users.alice);
    const [first, middle, last] = browsers as [TestBrowser, TestBrowser, TestBrowser];
    store.failOnce.add(await sessionIdOf(middle, withLogout));

    // Each browser has its own Logto session: a token naming only the user ends all three.
    const token = await forge({ sub: provider.users.alice.sub });
    const response = await postLogoutToken(withLogout, token);
    assert.ok(response.status >= 500, `got ${response.status}`);
    assert.equal((await home(first, withLogout)).user, null);
    assert.equal((await home(last, withLogout)).user, null);
    // Its record ended first, so even the session whose destroy failed is signed out.
    assert.equal((await home(middle, withLogout)).user, null, 'the sign-in whose session could not be destroyed ended too');

    assert.equal((await postLogoutToken(withLogout, token)).status, 200, 'Logto\'s retry is accepted');
    assert.equal((await home(middle, withLogout)).user, null);
  });

  test('a logout token without exp, or issued more than 10 minutes ago, is refused', async () => {
    const browser = new TestBrowser();
    await signIn(browser, provider, withLogout, '/sign-in', provider.users.alice);
    const now = Math.floor(Date.now() / 1000);
    const refused: Array<[string, Record<string, unknown>, RegExp]> = [
      ['no exp', { sub: provider.users.alice.sub, exp: undefined }, /exp/],
      ['iat 11 minutes ago', { sub: provider.users.alice.sub, iat: now - 11 * 60, exp: now + 120 }, /too long ago/],
    ];
    for (const [name, claims, message] of refused) {
      const response = await postLogoutToken(withLogout, await forge(claims));
      assert.equal(response.status, 400, name);
      assert.match(((await response.json()) as { error_description: string }).error_description, message, name);
      assert.notEqual((await home(browser, withLogout)).user, null, `${name}: nobody was signed out`);
    }
    // The same token with a recent iat and an exp works: only those claims made the difference.
    assert.equal((await postLogoutToken(withLogout, await forge({ sub: provider.users.alice.sub, iat: now - 60 }))).status, 200);
    assert.equal((await home(browser, withLogout)).user, null);
  });

  test('a replayed logout token is refused by another instance sharing the session store', async () => {
    const shared = new session.MemoryStore();
    const first = await app({ backchannelLogout: true, store: shared, cookieName: 'sid-replay' });
    const second = await app({ backchannelLogout: true, store: shared, cookieName: 'sid-replay', instanceOf: first.registered });
    const browser = new TestBrowser();
    await signIn(browser, provider, first);

    const now = Math.floor(Date.now() / 1000);
    const token = await provider.sign(
      { iss: provider.issuer, aud: first.registered.appId, iat: now, exp: now + 120, jti: randomUUID(), sub: provider.users.demo.sub, events: logoutEvent },
      { typ: 'logout+jwt' },
    );
    assert.equal((await postLogoutToken(first, token)).status, 200);
    assert.equal((await home(browser, first)).user, null);

    // Signed in again; an attacker (or a confused proxy) replays the token to the other instance.
    await signIn(browser, provider, first);
    const replay = await postLogoutToken(second, token);
    assert.equal(replay.status, 400);
    assert.match(((await replay.json()) as { error_description: string }).error_description, /already used/);
    assert.equal((await home(browser, second)).user?.id, provider.users.demo.sub, 'the new sign-in survives the replay');
  });
});
