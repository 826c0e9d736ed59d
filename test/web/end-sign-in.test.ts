/**
 * `logto.endSignIn(req)`: an app that logs out of Passport itself (`req.logout()`) ends the
 * sign-in's token record too, for every instance, without a trip to Logto's sign-out.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Express } from 'express';
import type session from 'express-session';
import { isLogtoError, MemoryTokenStore, type LogtoClient, type LogtoStrategy, type TokenStore } from '../../lib/index.js';
import { recordKey } from '../../lib/store/sign-in-records.js';
import { hardeningSetup, type RunningApp } from '../support/app.js';
import { getJson, refreshRequests, signIn, tokensOf, type HomeBody, type SessionBody } from '../support/flows.js';
import { TestBrowser } from '../support/http-client.js';
import type { TestProvider } from '../support/provider/index.js';

let provider: TestProvider;

/** What a route reads from a helper. */
function stateOf(client: LogtoClient): { authenticated: boolean; idToken: string | null; refreshToken: string | null } {
  return { authenticated: client.isAuthenticated(), idToken: client.getIdToken() ?? null, refreshToken: client.getRefreshToken() ?? null };
}

/** A LogtoError's code as JSON, or the error for the error handler. */
function codeOrThrow(error: unknown): { error: string } {
  if (isLogtoError(error)) return { error: error.code };
  throw error;
}

/** Gates Logto's next refresh: it waits, once it has reached the token endpoint, until released. */
function holdNextRefresh(): { reached: Promise<void>; release: () => void } {
  let reached!: () => void;
  let release!: () => void;
  const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  provider.setTokenResponseTamper(async (body, params) => {
    if (params.grant_type === 'refresh_token') {
      reached();
      await released;
    }
    return body;
  });
  return { reached: reachedPromise, release };
}

function routes(app: Express, logto: LogtoStrategy): void {
  // The README's log-out route.
  app.post('/log-out', (req, res, next) => {
    logto
      .endSignIn(req)
      .then(() => req.logout((error) => (error ? next(error) : res.json({ loggedOut: true }))))
      .catch(next);
  });
  // The same with the helper that does both, in that order.
  app.post('/log-out-helper', (req, res, next) => {
    logto.logOut(req).then(() => res.json({ loggedOut: true, user: req.user ?? null }), next);
  });
  // Two calls at once for one request, as two parts of an app may make.
  app.post('/end-twice', (req, res, next) => {
    Promise.all([logto.endSignIn(req), logto.endSignIn(req)]).then(() => res.json({ ended: true }), next);
  });
  app.get('/end-in-guard', logto.authenticated({}, async (req, res) => {
    const before = stateOf(req.logto);
    await logto.endSignIn(req);
    res.json({ before, after: stateOf(req.logto) });
  }));
  // A helper that loaded the record before the sign-in ended, and refreshes after.
  app.get('/end-then-refresh', (req, res, next) => {
    const client = logto.client(req);
    client
      .load()
      .then(async () => {
        await logto.endSignIn(req);
        return client.refresh().then(() => ({ error: 'none' }), codeOrThrow);
      })
      .then((body) => res.json(body), next);
  });
  // A helper held across the end: its cached access token and its getters.
  app.get('/end-then-cached', (req, res, next) => {
    const client = logto.client(req);
    client
      .load()
      .then(async () => {
        const before = await client.getAccessToken();
        await logto.endSignIn(req);
        const after = await client.getAccessToken().then(() => 'a token', codeOrThrow);
        res.json({ before: typeof before, after, authenticated: client.isAuthenticated(), idToken: client.getIdToken() ?? null });
      })
      .catch(next);
  });
  app.get('/refresh', (req, res, next) => {
    logto
      .client(req)
      .refresh()
      .then(() => ({ error: 'none' }), codeOrThrow)
      .then((body) => res.json(body), next);
  });
}

const setup = hardeningSetup({
  started: (started) => {
    provider = started;
  },
  appOptions: (options) => ({ ...options, routes }),
});

/** The sign-in's record as the token store holds it, read under its key. */
async function storedRecord(tokenStore: TokenStore, signInId: string): Promise<string | undefined> {
  return (await tokenStore.get(recordKey(signInId))) ?? undefined;
}

/** Everything an express-session store holds (sessions, and the tokens' records when they live there). */
function allOf(store: session.Store): Promise<string> {
  return new Promise((resolve, reject) => {
    if (!store.all) return reject(new Error('the store cannot list its sessions'));
    store.all((error, sessions) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(JSON.stringify(sessions))));
  });
}

/** Signs in and returns the sign-in's id (the session's reference) and its tokens. */
async function signedIn(app: RunningApp, browser = new TestBrowser()): Promise<{ browser: TestBrowser; signInId: string; refreshToken: string; idToken: string }> {
  await signIn(browser, provider, app);
  const { session: stored } = (await getJson<SessionBody>(browser, `${app.url}/session`)).body;
  const tokens = await tokensOf(browser, app);
  assert.equal(typeof stored.logto, 'string');
  assert.ok(tokens.refreshToken && tokens.idToken);
  // The reference is `<id>.<mark of Passport's user>`.
  return { browser, signInId: (stored.logto as string).split('.')[0] as string, refreshToken: tokens.refreshToken, idToken: tokens.idToken };
}

describe('endSignIn(req)', () => {
  test('before req.logout(): the tokens are gone from the session store (their default home) and the refresh token is revoked', async () => {
    const app = await setup.app();
    const { browser, refreshToken, idToken } = await signedIn(app);
    assert.ok((await allOf(app.store)).includes(refreshToken), 'the record is in the session store while signed in');
    const revocations = provider.countRequests('/oidc/token/revocation');

    const loggedOut = await browser.post(`${app.url}/log-out`, {});
    assert.equal(loggedOut.status, 200, loggedOut.text);
    assert.equal(loggedOut.location, undefined, 'no redirect to Logto');

    const contents = await allOf(app.store);
    assert.equal(contents.includes(refreshToken), false, 'no refresh token left in the store');
    assert.equal(contents.includes(idToken), false, 'no ID token left in the store');
    assert.equal(provider.countRequests('/oidc/token/revocation', (r) => r.params.token === refreshToken), 1);
    assert.equal(provider.countRequests('/oidc/token/revocation'), revocations + 1);
    const home = (await getJson<HomeBody>(browser, `${app.url}/`)).body;
    assert.deepEqual([home.user, home.authenticated], [null, false]);
    assert.deepEqual(await tokensOf(browser, app), { idToken: null, refreshToken: null, authenticated: false });
    assert.deepEqual(app.errors, []);
  });

  test('with a tokenStore (MemoryTokenStore): the record there holds no tokens any more', async () => {
    const tokenStore = new MemoryTokenStore();
    const app = await setup.app({ strategy: { tokenStore } });
    const { browser, signInId, refreshToken } = await signedIn(app);
    assert.ok((await storedRecord(tokenStore, signInId))?.includes(refreshToken));

    assert.equal((await browser.post(`${app.url}/log-out`, {})).status, 200);
    const stored = await storedRecord(tokenStore, signInId);
    // What stays under the key for a while is the mark that the sign-in ended, which no refresh overwrites.
    assert.deepEqual(Object.keys(JSON.parse(stored ?? '{}') as object), ['ended']);
    assert.equal((await getJson<HomeBody>(browser, `${app.url}/`)).body.authenticated, false);
  });

  test('on a guarded route, req.logto says signed out right after, and so does the next request\'s helper', async () => {
    const app = await setup.app();
    const { browser } = await signedIn(app);
    const { status, body } = await getJson<{ before: ReturnType<typeof stateOf>; after: ReturnType<typeof stateOf> }>(browser, `${app.url}/end-in-guard`);
    assert.equal(status, 200);
    assert.equal(body.before.authenticated, true);
    assert.equal(typeof body.before.refreshToken, 'string');
    assert.deepEqual(body.after, { authenticated: false, idToken: null, refreshToken: null });
    // Without req.logout(), Passport still has its user; the Logto sign-in is over all the same.
    const home = (await getJson<HomeBody>(browser, `${app.url}/`)).body;
    assert.notEqual(home.user, null);
    assert.equal(home.authenticated, false);
    assert.deepEqual(await tokensOf(browser, app), { idToken: null, refreshToken: null, authenticated: false });
    assert.equal((await browser.get(`${app.url}/api/profile`)).status, 401);
  });

  test('a helper that loaded the tokens before the end cannot refresh: Logto\'s token endpoint never hears of it', async () => {
    const app = await setup.app();
    const { browser } = await signedIn(app);
    const before = refreshRequests(provider).length;
    const { body } = await getJson<{ error: string }>(browser, `${app.url}/end-then-refresh`);
    assert.equal(body.error, 'not_authenticated');
    assert.equal((await getJson<{ error: string }>(browser, `${app.url}/refresh`)).body.error, 'not_authenticated');
    assert.equal(refreshRequests(provider).length, before, 'no refresh reached Logto');
  });

  test('a helper held across the end says signed out: no cached access token, no ID token', async () => {
    const app = await setup.app();
    const { browser } = await signedIn(app);
    const before = refreshRequests(provider).length;
    const { status, body } = await getJson<{ before: string; after: unknown; authenticated: boolean; idToken: string | null }>(browser, `${app.url}/end-then-cached`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body, { before: 'string', after: { error: 'not_authenticated' }, authenticated: false, idToken: null });
    assert.equal(refreshRequests(provider).length, before, 'no refresh reached Logto');
  });

  test('a refresh in flight when the sign-in ends does not bring the tokens back', async () => {
    const app = await setup.app();
    const { browser, signInId, refreshToken } = await signedIn(app);
    const gate = holdNextRefresh();
    try {
      // A second tab of the same session refreshes; Logto answers only after the log-out.
      const inFlight = getJson<{ error: string }>(browser, `${app.url}/refresh`);
      await gate.reached;
      assert.equal((await browser.post(`${app.url}/log-out`, {})).status, 200);
      gate.release();
      assert.equal((await inFlight).body.error, 'not_authenticated', 'the refresh that finished after the end hands out nothing');
    } finally {
      gate.release();
      provider.setTokenResponseTamper(undefined);
    }
    const contents = await allOf(app.store);
    assert.equal(contents.includes(refreshToken), false);
    const stored = await new Promise<unknown>((resolve, reject) =>
      app.store.get(`passport-logto:${recordKey(signInId)}`, (error, value) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(value))),
    );
    assert.match(JSON.stringify(stored), /\\"ended\\"/, 'the record is still the end mark');
    const before = refreshRequests(provider).length;
    assert.equal((await getJson<{ error: string }>(browser, `${app.url}/refresh`)).body.error, 'not_authenticated');
    assert.equal(refreshRequests(provider).length, before, 'a later refresh attempt never reaches Logto');
  });

  test('without a sign-in it does nothing, and signing in again afterwards works', async () => {
    const app = await setup.app();
    const browser = new TestBrowser();
    const revocations = provider.countRequests('/oidc/token/revocation');
    assert.equal((await browser.post(`${app.url}/log-out`, {})).status, 200);
    assert.equal(provider.countRequests('/oidc/token/revocation'), revocations);
    await signedIn(app, browser);
    assert.equal((await browser.post(`${app.url}/log-out`, {})).status, 200);
    await signedIn(app, browser);
    assert.equal((await getJson<HomeBody>(browser, `${app.url}/`)).body.authenticated, true);
  });

  test('logOut(req) ends the sign-in, then logs out of Passport: on Express 5 with Passport 0.7 and Express 4 with Passport 0.6', async () => {
    for (const [express, passport] of [['express5', 'passport07'], ['express4', 'passport06']] as const) {
      const app = await setup.app({ express, passport });
      const { browser, refreshToken, idToken } = await signedIn(app);
      const sessionBefore = (await getJson<SessionBody>(browser, `${app.url}/session`)).body.sessionID;

      const loggedOut = await browser.post(`${app.url}/log-out-helper`, {});
      assert.equal(loggedOut.status, 200, `${express}: ${loggedOut.text}`);
      assert.deepEqual(JSON.parse(loggedOut.text), { loggedOut: true, user: null }, express);
      const contents = await allOf(app.store);
      assert.equal(contents.includes(refreshToken), false, `${express}: no refresh token left in the store, not even in the session left behind`);
      assert.equal(contents.includes(idToken), false, express);
      assert.equal(provider.countRequests('/oidc/token/revocation', (r) => r.params.token === refreshToken), 1, express);
      const home = (await getJson<HomeBody>(browser, `${app.url}/`)).body;
      assert.deepEqual([home.user, home.authenticated], [null, false], express);
      assert.notEqual(home.sessionID, sessionBefore, `${express}: Passport gave the session a new id`);
      assert.deepEqual(app.errors, [], express);

      // Without a sign-in it still logs out of Passport, and revokes nothing.
      const revocations = provider.countRequests('/oidc/token/revocation');
      assert.equal((await browser.post(`${app.url}/log-out-helper`, {})).status, 200);
      assert.equal(provider.countRequests('/oidc/token/revocation'), revocations, express);
    }
  });

  test('two endSignIn(req) calls at once for one request end it once: one revocation', async () => {
    const app = await setup.app();
    const { browser, refreshToken } = await signedIn(app);
    const revocations = provider.countRequests('/oidc/token/revocation');
    const ended = await browser.post(`${app.url}/end-twice`, {});
    assert.equal(ended.status, 200, ended.text);
    assert.equal(provider.countRequests('/oidc/token/revocation'), revocations + 1);
    assert.equal(provider.countRequests('/oidc/token/revocation', (r) => r.params.token === refreshToken), 1);
    assert.deepEqual(await tokensOf(browser, app), { idToken: null, refreshToken: null, authenticated: false });
    assert.deepEqual(app.errors, []);
  });
});
