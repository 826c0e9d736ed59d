/**
 * Issue 20: a sign-in is alive or ended in one place, the token store. Every instance, every
 * getter and every session middleware agree; an outage of Logto ends no sign-in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import type { Express } from 'express';
import session from 'express-session';
import { LogtoError, LogtoTenants, MemoryTokenStore, RedisTokenStore, type LogtoStrategy, type TokenStore } from '../../lib/index.js';
import { startApp, type RunningApp, type StartAppOptions } from '../support/app.js';
import { getJson, refreshRequests, signIn, tokensOf, type HomeBody } from '../support/flows.js';
import { TestBrowser } from '../support/http-client.js';
import { startProvider, type TestProvider } from '../support/provider/index.js';
import { startRedis } from '../support/redis.js';

/** express-session's cookie signature, to replay a session by its id. */
const sign = (sid: string, secret: string): string => `${sid}.${createHmac('sha256', secret).update(sid).digest('base64').replace(/=+$/, '')}`;

let provider: TestProvider;
const apps: RunningApp[] = [];
before(async () => {
  provider = await startProvider();
});
after(async () => {
  await Promise.all(apps.map((running) => running.close()));
  await provider.close();
});

/** What the helper says without load(), as a handler outside the guard would see it. */
/** Lets the test hold a request open until it has ended the sign-in elsewhere. */
let releaseLong: () => void = () => undefined;
let longReleased: Promise<void> = Promise.resolve();

/** Lets the test hold a middleware in front of the guard (an upload, a rate limiter) until it releases it. */
let releaseMiddleware: () => void = () => undefined;
let middlewareReleased: Promise<void> = Promise.resolve();

function helperRoutes(express: Express, logto: LogtoStrategy): void {
  const slowMiddleware = (_req: unknown, _res: unknown, next: () => void): void => void middlewareReleased.then(() => next());
  express.get('/behind-slow-middleware', slowMiddleware, logto.authenticated(), (req, res) => res.json({ sub: req.logto?.getIdTokenClaims().sub }));
  // A middleware that takes most of the 2 s after logto.session() loaded, then a route that takes a moment before its getters.
  const almostTwoSeconds = (_req: unknown, _res: unknown, next: () => void): void => void setTimeout(next, 1800);
  express.get('/late-guard', almostTwoSeconds, logto.authenticated(), (req, res) => {
    setTimeout(() => {
      try {
        res.json({ sub: req.logto?.getIdTokenClaims().sub });
      } catch (error) {
        res.status(500).json({ error: error instanceof LogtoError ? error.code : 'other' });
      }
    }, 500);
  });
  // A long request (an export, a stream): its helper was loaded before the sign-in ended elsewhere.
  express.get('/long', (req, res, next) => {
    const answer = (read: () => unknown): unknown => {
      try {
        return read();
      } catch (error) {
        return error instanceof LogtoError ? `throws ${error.code}` : 'other error';
      }
    };
    logto
      .client(req)
      .load()
      .then(async (client) => {
        const before = client.isAuthenticated();
        await longReleased;
        const stale = answer(() => client.isAuthenticated());
        const claims = answer(() => client.getIdTokenClaims().sub);
        await client.load();
        res.json({ before, stale, claims, reloaded: client.isAuthenticated() });
      })
      .catch(next);
  });
  // Ends the sign-in and nothing else: the session keeps its user and its reference.
  express.get('/end-only', (req, res, next) => {
    logto.endSignIn(req).then(() => res.json({ ended: true }), next);
  });
  express.get('/refresh-now', (req, res) => {
    logto
      .client(req)
      .load()
      .then((client) => client.refresh())
      .then(
        () => res.json({ refreshed: true }),
        (error: unknown) => res.status(error instanceof LogtoError && error.code === 'not_authenticated' ? 401 : 503).json({ error: error instanceof LogtoError ? error.code : 'other' }),
      );
  });
  // Another way in (a local account, an admin's "log in as"), keeping the session's data as Passport allows.
  express.get('/local-login', (req, res, next) => {
    req.login({ id: 'local-bob' }, { session: true, keepSessionInfo: true }, (error?: unknown) => (error ? next(error) : res.json({ ok: true })));
  });
  // What the helper logto.session() loaded answers, at once in the handler.
  express.get('/as-loaded', (req, res, next) => {
    const client = logto.client(req);
    const answer = (read: () => unknown): unknown => {
      try {
        return read();
      } catch (error) {
        return error instanceof LogtoError ? `throws ${error.code}` : 'other error';
      }
    };
    const first = { isLoaded: client.isLoaded(), sub: answer(() => client.getIdTokenClaims().sub) };
    client.load().then(() => res.json({ ...first, reloaded: answer(() => client.getIdTokenClaims().sub) }), next);
  });
  express.get('/unloaded', (req, res) => {
    const client = logto.client(req);
    const answer = (read: () => unknown): unknown => {
      try {
        return read();
      } catch (error) {
        return error instanceof LogtoError ? `throws ${error.code}` : 'other error';
      }
    };
    res.json({
      isLoaded: client.isLoaded(),
      authenticated: answer(() => client.isAuthenticated()),
      sub: answer(() => client.getIdTokenClaims().sub),
    });
  });
}

async function app(options: StartAppOptions = {}): Promise<RunningApp> {
  const running = await startApp(provider, { routes: helperRoutes, ...options });
  apps.push(running);
  return running;
}

/** Polls until `check` holds; the bound is generous, since what is checked is that it happens at all. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (await check()) return;
    await sleep(100);
  }
  assert.fail(`never happened: ${what}`);
}

/**
 * A token store reached over a link whose replies to record reads can be held: the value is read
 * when asked, and the reply arrives when the test releases it, as from a slow store or network.
 */
class HeldReads implements TokenStore {
  held = false;
  private waiting: Array<() => void> = [];
  constructor(private readonly base: MemoryTokenStore = new MemoryTokenStore()) {}
  get(key: string): Promise<string | null | undefined> {
    const value = this.base.get(key);
    if (!this.held || !key.startsWith('tokens:')) return value;
    return new Promise<void>((resolve) => this.waiting.push(resolve)).then(() => value);
  }
  release(): void {
    this.held = false;
    for (const resume of this.waiting.splice(0)) resume();
  }
  set(key: string, value: string, ttl: number): Promise<void> {
    return this.base.set(key, value, ttl);
  }
  delete(key: string): Promise<void> {
    return this.base.delete(key);
  }
  setIfAbsent(key: string, value: string, ttl: number): Promise<boolean> {
    return this.base.setIfAbsent(key, value, ttl);
  }
  deleteIfEquals(key: string, value: string): Promise<void> {
    return this.base.deleteIfEquals(key, value);
  }
  setIfEquals(key: string, expected: string, value: string, ttl: number): Promise<boolean> {
    return this.base.setIfEquals(key, expected, value, ttl);
  }
  addToSet(key: string, members: string[], ttl: number): Promise<void> {
    return this.base.addToSet(key, members, ttl);
  }
  setMembers(key: string): Promise<string[]> {
    return this.base.setMembers(key);
  }
}

/** A browser holding a copy of another's cookies for the app's host, as a copied cookie would be. */
function copyOf(browser: TestBrowser, running: RunningApp, cookieNames: string[]): TestBrowser {
  const copy = new TestBrowser();
  const header = cookieNames
    .map((name) => [name, browser.cookie('127.0.0.1', name)] as const)
    .filter((entry): entry is readonly [string, string] => entry[1] !== undefined)
    .map(([name, value]) => `${name}=${value}`)
    .join('; ');
  const original = copy.request.bind(copy);
  copy.request = (url, init = {}) => original(url, { ...init, headers: { cookie: header, ...init.headers } });
  void running;
  return copy;
}

describe('one authority for alive or ended', () => {
  test('cookie-session: a copy of the cookie replayed after sign-out is signed out on every instance', async () => {
    const tokenStore = new MemoryTokenStore(); // shared by both instances, as a Redis would be
    const first = await app({ cookieSession: true, cookieName: 'cs', strategy: { tokenStore } });
    const second = await app({ cookieSession: true, cookieName: 'cs', instanceOf: first.registered, strategy: { tokenStore } });
    const browser = new TestBrowser();
    await signIn(browser, provider, first);
    const copy = copyOf(browser, first, ['cs', 'cs.sig']);
    // The other instance serves the copy first, so that it holds a copy of the record.
    assert.equal((await getJson<HomeBody>(copy, `${second.url}/`)).body.user?.id, provider.users.demo.sub);

    const signOut = await browser.get(`${first.url}/sign-out`);
    assert.equal(signOut.status, 302);

    await eventually(async () => (await getJson<HomeBody>(copy, `${second.url}/`)).body.user === null, 'the replayed cookie to be signed out on the other instance');
    const home = (await getJson<HomeBody>(copy, `${second.url}/`)).body;
    assert.equal(home.authenticated, false);
    assert.equal((await copy.get(`${second.url}/api/profile`)).status, 401, 'the guard refuses');
    assert.equal((await copy.get(`${first.url}/api/profile`)).status, 401, 'on the first instance too');
    assert.equal((await getJson<HomeBody>(copy, `${first.url}/`)).body.user, null);
  });

  test('cookie-session: signing in again ends the earlier sign-in, so a copy of the cookie from before is signed out too', async () => {
    const running = await app({ cookieSession: true, cookieName: 'again', strategy: { tokenStore: new MemoryTokenStore() } });
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    const before = copyOf(browser, running, ['again', 'again.sig']); // a tab (or a stolen copy) from the first sign-in
    assert.equal((await getJson<HomeBody>(before, `${running.url}/`)).body.authenticated, true);
    await signIn(browser, provider, running); // the user signs in again in the same browser
    const again = await tokensOf(browser, running);
    assert.ok(again.refreshToken, 'the new sign-in has its tokens');
    assert.equal((await browser.get(`${running.url}/sign-out`)).status, 302);
    await eventually(async () => (await getJson<HomeBody>(before, `${running.url}/`)).body.user === null, 'the copy from the first sign-in to be signed out');
    assert.equal((await before.get(`${running.url}/api/profile`)).status, 401, 'the guard refuses it');
  });

  test('signing in again keeps the new sign-in whole: it refreshes, while the earlier one is ended', async () => {
    const running = await app({ cookieSession: true, cookieName: 'again2', strategy: { tokenStore: new MemoryTokenStore() } });
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    const before = copyOf(browser, running, ['again2', 'again2.sig']);
    await signIn(browser, provider, running);
    await eventually(async () => (await getJson<HomeBody>(before, `${running.url}/`)).body.user === null, 'the earlier sign-in to be ended');
    assert.equal((await browser.get(`${running.url}/refresh-now`)).status, 200, 'the new sign-in refreshes: its grant is alive');
    assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.authenticated, true);
  });

  test('express-session: a sign-in ended on one instance (its grant dead) is ended on the other, whatever copy it held', async () => {
    const store = new session.MemoryStore();
    const first = await app({ store, cookieName: 'shared-a' });
    const second = await app({ store, cookieName: 'shared-a', instanceOf: first.registered });
    const browser = new TestBrowser();
    await signIn(browser, provider, first, '/sign-in', provider.users.alice);
    assert.equal((await getJson<HomeBody>(browser, `${second.url}/`)).body.authenticated, true);
    // Logto's word that the grant is dead reaches the first instance, and ends the sign-in there.
    provider.suspendUser(provider.users.alice.sub);
    assert.equal((await browser.get(`${first.url}/refresh-now`)).status, 401);
    await eventually(async () => (await browser.get(`${second.url}/api/profile`)).status === 401, 'the other instance to refuse');
    assert.equal((await getJson<HomeBody>(browser, `${second.url}/`)).body.user, null, 'req.user is gone');
  });

  test('without load(), the getters answer alike on every instance: not_loaded, or the claims with logto.session()', async () => {
    const store = new session.MemoryStore();
    const bare = await app({ store, cookieName: 'shared-b', sessionCheck: false });
    const bareOther = await app({ store, cookieName: 'shared-b', sessionCheck: false, instanceOf: bare.registered });
    const browser = new TestBrowser();
    await signIn(browser, provider, bare);
    for (const running of [bare, bareOther]) {
      const body = (await getJson<Record<string, unknown>>(browser, `${running.url}/unloaded`)).body;
      // isAuthenticated() answers from the session before load(); the getters of tokens refuse alike.
      assert.deepEqual(body, { isLoaded: false, authenticated: true, sub: 'throws not_loaded' }, running.url);
    }
    const checked = await app({ store, cookieName: 'shared-c' });
    const checkedOther = await app({ store, cookieName: 'shared-c', instanceOf: checked.registered });
    const other = new TestBrowser();
    await signIn(other, provider, checked);
    for (const running of [checked, checkedOther]) {
      const body = (await getJson<Record<string, unknown>>(other, `${running.url}/unloaded`)).body;
      assert.deepEqual(body, { isLoaded: true, authenticated: true, sub: provider.users.demo.sub }, running.url);
    }
    const stranger = (await getJson<Record<string, unknown>>(new TestBrowser(), `${bareOther.url}/unloaded`)).body;
    assert.deepEqual(stranger, { isLoaded: true, authenticated: false, sub: 'throws not_authenticated' });
  });

  test('a helper loaded more than 2 s ago never answers from its copy: not_loaded, and signed out once loaded again', async () => {
    const store = new session.MemoryStore();
    const first = await app({ store, cookieName: 'shared-long' });
    const second = await app({ store, cookieName: 'shared-long', instanceOf: first.registered });
    const browser = new TestBrowser();
    await signIn(browser, provider, first, '/sign-in', provider.users.demo);
    longReleased = new Promise((resolve) => (releaseLong = resolve));
    const long = getJson<Record<string, unknown>>(browser, `${second.url}/long`);
    await sleep(200);
    assert.equal((await browser.get(`${first.url}/end-only`)).status, 200, 'the sign-in ends on the other instance');
    await sleep(2100); // the long request's load is now more than 2 s old
    releaseLong();
    assert.deepEqual((await long).body, { before: true, stale: 'throws not_loaded', claims: 'throws not_loaded', reloaded: false });
  });

  test('a store read in flight when sign-out runs on the same instance does not bring the record back', async () => {
    const tokenStore = new HeldReads();
    // cookie-session, so that a copy of the cookie still refers to the sign-in after it ends; and
    // without logto.session(), so that the sign-out's own (fresh) read is not the held one.
    const running = await app({ strategy: { tokenStore }, cookieSession: true, cookieName: 'held', sessionCheck: false });
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    const copy = copyOf(browser, running, ['held', 'held.sig']);
    await sleep(2100); // the instance's copy of the record is now too old to answer
    tokenStore.held = true;
    const inFlight = getJson(browser, `${running.url}/tokens`);
    await sleep(200);
    tokenStore.held = false;
    assert.equal((await browser.get(`${running.url}/end-only`)).status, 200);
    tokenStore.release(); // the read that began before the end answers now, with the old record
    await inFlight;
    assert.equal((await copy.get(`${running.url}/api/profile`)).status, 401, 'the old record did not come back');
  });

  test('a copy taken late in its life answers no later than 2 s after the read that made it: never 2 s after an end elsewhere', async () => {
    const tokenStore = new MemoryTokenStore();
    const first = await app({ cookieSession: true, cookieName: 'late-copy', strategy: { tokenStore } });
    const second = await app({ cookieSession: true, cookieName: 'late-copy', instanceOf: first.registered, strategy: { tokenStore } });
    const browser = new TestBrowser();
    await signIn(browser, provider, first);
    const copy = copyOf(browser, first, ['late-copy', 'late-copy.sig']); // another tab: it keeps the reference after the end
    // The second instance reads the record now: its copy is as old as this read.
    assert.equal((await getJson<HomeBody>(copy, `${second.url}/`)).body.authenticated, true);
    await sleep(300);
    assert.equal((await browser.get(`${first.url}/end-only`)).status, 200, 'the sign-in ends on the first instance');
    const ended = performance.now();
    await sleep(1200); // the second instance's copy is now 1.5 s old, and the sign-in ended 1.2 s ago
    longReleased = new Promise((resolve) => (releaseLong = resolve));
    const long = getJson<Record<string, unknown>>(copy, `${second.url}/long`); // loads now, then waits
    await sleep(ended + 2100 - performance.now()); // until just over 2 s after the end
    releaseLong();
    const body = (await long).body;
    assert.notEqual(body.stale, true, 'isAuthenticated() does not say signed in 2 s after the end');
    assert.notEqual(body.claims, provider.users.demo.sub, 'nor do the getters answer');
    assert.equal(body.reloaded, false);
  });

  test('the guard leaves the route at least 1 s of its getters, however long the middlewares before it took', async () => {
    const running = await app();
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    const answered = await getJson<{ sub?: string; error?: string }>(browser, `${running.url}/late-guard`);
    assert.equal(answered.status, 200, `not ${answered.body.error ?? ''}`);
    assert.equal(answered.body.sub, provider.users.demo.sub);
  });

  test('the guard behind a middleware slower than 2 s loads again: the signed-in user gets the route', async () => {
    const running = await app();
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    middlewareReleased = new Promise((resolve) => (releaseMiddleware = resolve));
    const response = getJson<{ sub: string }>(browser, `${running.url}/behind-slow-middleware`);
    await sleep(2100); // what logto.session() loaded is now past its 2 s
    releaseMiddleware();
    const answered = await response;
    assert.equal(answered.status, 200, 'not a 500 not_loaded');
    assert.equal(answered.body.sub, provider.users.demo.sub, 'and the handler\'s getters answer');
  });

  test('a request more than 2 s after sign-out does not join a store read begun before it', async () => {
    const tokenStore = new MemoryTokenStore();
    const held = new HeldReads(tokenStore); // the second instance reaches the same store over a slow link
    const first = await app({ cookieSession: true, cookieName: 'sr', strategy: { tokenStore } });
    const second = await app({ cookieSession: true, cookieName: 'sr', instanceOf: first.registered, strategy: { tokenStore: held } });
    const browser = new TestBrowser();
    await signIn(browser, provider, first);
    const copy = copyOf(browser, first, ['sr', 'sr.sig']);
    assert.equal((await getJson<HomeBody>(copy, `${second.url}/`)).body.authenticated, true);
    await sleep(2100); // the second instance's copy is too old: its next request reads the store
    held.held = true;
    const early = getJson<HomeBody>(copy, `${second.url}/`); // its read, begun before the end, is held
    await sleep(100);
    assert.equal((await browser.get(`${first.url}/sign-out`)).status, 302);
    await sleep(2100); // more than 2 s after the end, and after the held read began
    const late = getJson<HomeBody>(copy, `${second.url}/`);
    const lateGuard = copy.get(`${second.url}/api/profile`);
    await sleep(200);
    held.release();
    const [, home, guard] = await Promise.all([early, late, lateGuard]);
    assert.equal(home.body.user, null, 'req.user is gone');
    assert.equal(home.body.authenticated, false);
    assert.equal(guard.status, 401, 'the guard refuses');
  });

  test('a load answers for 2 s from the start of its store read, not from its end', async () => {
    const tokenStore = new HeldReads();
    const running = await app({ cookieSession: true, cookieName: 'rs', strategy: { tokenStore } });
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    await sleep(2100); // the instance's copy is too old: logto.session() reads the store
    tokenStore.held = true;
    const answer = getJson<Record<string, unknown>>(browser, `${running.url}/as-loaded`);
    await sleep(2100); // the read's answer arrives more than 2 s after it began
    tokenStore.release();
    assert.deepEqual((await answer).body, { isLoaded: false, sub: 'throws not_loaded', reloaded: provider.users.demo.sub });
  });

  test('a helper past its 2 s answers alike on every instance, whatever other requests the instance served', async () => {
    const store = new session.MemoryStore();
    const first = await app({ store, cookieName: 'shared-traffic' });
    const second = await app({ store, cookieName: 'shared-traffic', instanceOf: first.registered });
    const browser = new TestBrowser();
    await signIn(browser, provider, first);
    longReleased = new Promise((resolve) => (releaseLong = resolve));
    const onFirst = getJson(browser, `${first.url}/long`);
    const onSecond = getJson(browser, `${second.url}/long`);
    await sleep(2100); // both long requests' loads are now past their 2 s
    // Another request of the user lands on the second instance meanwhile: that instance reads the store again.
    assert.equal((await getJson<HomeBody>(browser, `${second.url}/`)).body.authenticated, true);
    releaseLong();
    const expected = { before: true, stale: 'throws not_loaded', claims: 'throws not_loaded', reloaded: true };
    assert.deepEqual((await onFirst).body, expected, 'on the instance without other traffic');
    assert.deepEqual((await onSecond).body, expected, 'on the instance with other traffic');
  });

  test('a session store that gives keys back in another order: an ended sign-in still takes its Passport user', async () => {
    const sorted = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(sorted);
      if (value === null || typeof value !== 'object') return value;
      return Object.fromEntries(Object.keys(value).sort().map((key) => [key, sorted((value as Record<string, unknown>)[key])]));
    };
    // As a jsonb column would: the session comes back with its keys sorted, at every depth.
    class SortingStore extends session.MemoryStore {
      override get(sid: string, callback: (error: unknown, data?: session.SessionData | null) => void): void {
        super.get(sid, (error, data) => callback(error, data ? (sorted(data) as session.SessionData) : data));
      }
    }
    // Remembers the records' keys, so that the test can let them expire.
    class KeyedStore extends MemoryTokenStore {
      readonly records = new Set<string>();
      override set(key: string, value: string, ttl: number): Promise<void> {
        if (key.startsWith('tokens:')) this.records.add(key);
        return super.set(key, value, ttl);
      }
    }
    const tokenStore = new KeyedStore();
    const running = await app({ store: new SortingStore(), cookieName: 'sorted', strategy: { tokenStore } });
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    const user = (await getJson<HomeBody>(browser, `${running.url}/`)).body.user;
    assert.ok(user && Object.keys(user).length > 1, 'Passport keeps an object with several keys, so that order can differ');
    // The record expires (an ended sign-in, as a dead grant would be), while the session keeps its reference.
    for (const key of tokenStore.records) await tokenStore.delete(key);
    await sleep(2100); // past the instance's copy of the record
    const home = (await getJson<HomeBody>(browser, `${running.url}/`)).body;
    assert.equal(home.user, null, 'req.user is gone');
    assert.equal(home.authenticated, false);
  });

  test('a 0.1.0 session replayed after its sign-in ended stays signed out', async () => {
    const store = new session.MemoryStore();
    const running = await app({ store });
    const source = new TestBrowser();
    await signIn(source, provider, running);
    const tokens = await tokensOf(source, running);
    const user = (await getJson<HomeBody>(source, `${running.url}/`)).body.user;
    const sid = 'legacy-replayed';
    const legacy = {
      cookie: { originalMaxAge: null, expires: null, httpOnly: true, path: '/' },
      passport: { user },
      logto: { tokens: { signInId: 'legacy-sign-in-replayed', idToken: tokens.idToken, refreshToken: tokens.refreshToken } },
    };
    const plant = (): Promise<void> =>
      new Promise<void>((resolve, reject) => store.set(sid, legacy as unknown as session.SessionData, (error) => (error ? reject(error) : resolve())));
    await plant();
    const cookie = `sid-${new URL(running.url).port}=${encodeURIComponent(`s:${sign(sid, 'test-secret')}`)}`;
    const replay = new TestBrowser();
    const get = (path: string): Promise<{ status: number; text: string }> => replay.request(`${running.url}${path}`, { headers: { cookie } });
    assert.equal(JSON.parse((await get('/')).text).authenticated, true, 'the 0.1.0 session works');
    assert.equal((await get('/sign-out')).status, 302);
    await plant(); // the same session again, as a copy of a cookie-kept session would come back
    const home = JSON.parse((await get('/')).text) as HomeBody;
    assert.equal(home.user, null, 'the replay is signed out');
    assert.equal(home.authenticated, false);
    assert.equal((await get('/api/profile')).status, 401);
  });

  test('an outage of Logto ends no sign-in: errors while it lasts, a refresh once it is back', async () => {
    const running = await app({ strategy: { accessTokenExpiryMargin: 3600 * 24 } }); // every cached token counts as expired
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    const before = await tokensOf(browser, running);
    await provider.pause();
    try {
      const refused = await browser.get(`${running.url}/refresh-now`);
      assert.notEqual(refused.status, 200);
      assert.notEqual(refused.status, 401, 'not signed out');
    } finally {
      await provider.resume();
    }
    await sleep(3200); // past Logto's grace and the retry window
    const after = await tokensOf(browser, running);
    assert.equal(after.refreshToken, before.refreshToken, 'the refresh token was kept through the outage');
    assert.equal((await browser.get(`${running.url}/refresh-now`)).status, 200, 'the sign-in refreshes once Logto is back');
    assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.authenticated, true);
  });

  for (const middleware of ['express-session', 'cookie-session'] as const) {
    test(`${middleware}: a Logto sign-in ending signs out only its own user, not one another login put over it`, async () => {
      const running = await app({
        backchannelLogout: true,
        ...(middleware === 'cookie-session' ? { cookieSession: true, cookieName: 'ol', strategy: { tokenStore: new MemoryTokenStore(), backchannelLogout: true } } : { strategy: { backchannelLogout: true } }),
      });
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      assert.equal((await getJson(browser, `${running.url}/local-login`)).status, 200);
      assert.deepEqual((await getJson<HomeBody>(browser, `${running.url}/`)).body.user, { id: 'local-bob' });
      // Logto ends the user's sign-in (a sign-out elsewhere, an admin): its back-channel logout arrives.
      assert.equal(await postLogout(running, provider.users.demo.sub), 200);
      const home = (await getJson<HomeBody>(browser, `${running.url}/`)).body;
      assert.deepEqual(home.user, { id: 'local-bob' }, 'the local user stays signed in');
      assert.equal(home.authenticated, false, 'the helper says the Logto sign-in has ended');
      assert.equal((await browser.get(`${running.url}/api/profile`)).status, 401, 'the guard refuses');
      const unloaded = (await getJson<{ authenticated: unknown }>(browser, `${running.url}/unloaded`)).body;
      assert.notEqual(unloaded.authenticated, true, 'the helper never answers signed in');
      assert.deepEqual((await getJson<HomeBody>(browser, `${running.url}/`)).body.user, { id: 'local-bob' }, 'and the local user is still there on the next request');
    });
  }

  test('a session written before the mark (its id, and a 32-character note under logto/user) still tells its own user from another login', async () => {
    const canonical = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(canonical);
      if (value === null || typeof value !== 'object') return value;
      return Object.fromEntries(Object.keys(value).sort().map((key) => [key, canonical((value as Record<string, unknown>)[key])]));
    };
    // Gives every session back as the previous version wrote it: `logto` the id alone, and beside
    // it the digest of Passport's data that its sign-in's login wrote.
    class PreviousFormatStore extends session.MemoryStore {
      override get(sid: string, callback: (error: unknown, data?: session.SessionData | null) => void): void {
        super.get(sid, (error, data) => {
          const bag = data as Record<string, unknown> | null | undefined;
          const reference = bag?.logto;
          if (bag && typeof reference === 'string' && reference.includes('.')) {
            bag.logto = reference.slice(0, reference.indexOf('.'));
            bag['logto/user'] = createHash('sha256').update(JSON.stringify(canonical(bag.passport ?? null))).digest('base64url').slice(0, 32);
          }
          callback(error, data);
        });
      }
    }
    const running = await app({ store: new PreviousFormatStore(), cookieName: 'previous', backchannelLogout: true, strategy: { backchannelLogout: true } });
    const own = new TestBrowser();
    await signIn(own, provider, running);
    const other = new TestBrowser();
    await signIn(other, provider, running);
    assert.equal((await getJson(other, `${running.url}/local-login`)).status, 200);
    // Logto ends the user's sign-ins (both browsers signed in as the demo user): its back-channel logout arrives.
    assert.equal(await postLogout(running, provider.users.demo.sub), 200);
    assert.equal((await getJson<HomeBody>(own, `${running.url}/`)).body.user, null, "the sign-in's own user is signed out");
    assert.deepEqual((await getJson<HomeBody>(other, `${running.url}/`)).body.user, { id: 'local-bob' }, 'the user another login put over it stays');
  });

  test('the Logto sign-in\'s own user is still signed out when its sign-in ends by back-channel logout', async () => {
    const running = await app({ backchannelLogout: true, cookieSession: true, cookieName: 'own', strategy: { tokenStore: new MemoryTokenStore(), backchannelLogout: true } });
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    assert.equal(await postLogout(running, provider.users.demo.sub), 200);
    const home = (await getJson<HomeBody>(browser, `${running.url}/`)).body;
    assert.equal(home.user, null);
    assert.equal(home.authenticated, false);
  });
});

describe('sessions written by 0.1.0 (tokens inside the session)', () => {
  /** What 0.1.0 kept in a session at sign-in: Passport's user, and the tokens under the strategy's key. */
  let legacyBag: Record<string, unknown> = {};
  const legacyRoutes = (express: Express, logto: LogtoStrategy): void => {
    helperRoutes(express, logto);
    express.get('/plant-legacy', (req, res) => {
      Object.assign(req.session as object, legacyBag);
      res.json({ planted: true });
    });
  };

  /** A real sign-in's tokens (from another browser), in the shape 0.1.0 kept them under `signInId`. */
  async function legacyOf(running: RunningApp, signInId: string, withRefreshToken = true): Promise<{ bag: Record<string, unknown>; refreshToken: string; sub: string }> {
    const source = new TestBrowser();
    await signIn(source, provider, running);
    const tokens = await tokensOf(source, running);
    const user = (await getJson<HomeBody>(source, `${running.url}/`)).body.user;
    assert.ok(tokens.idToken && tokens.refreshToken && user && typeof user.id === 'string');
    const bag = {
      passport: { user },
      logto: { tokens: { signInId, idToken: tokens.idToken, ...(withRefreshToken ? { refreshToken: tokens.refreshToken } : {}) } },
    };
    return { bag, refreshToken: tokens.refreshToken, sub: user.id };
  }

  /** A cookie-session browser holding a 0.1.0 session, and a copy of its cookie as it was then. */
  async function plantedCookieSession(running: RunningApp, cookieName: string, bag: Record<string, unknown>): Promise<{ browser: TestBrowser; copy: TestBrowser }> {
    legacyBag = bag;
    const browser = new TestBrowser();
    assert.equal((await browser.get(`${running.url}/plant-legacy`)).status, 200);
    return { browser, copy: copyOf(browser, running, [cookieName, `${cookieName}.sig`]) };
  }

  async function signedOutEverywhere(browser: TestBrowser, running: RunningApp, what: string): Promise<void> {
    const home = (await getJson<HomeBody>(browser, `${running.url}/`)).body;
    assert.equal(home.user, null, `${what}: req.user is gone`);
    assert.equal(home.authenticated, false, `${what}: isAuthenticated() is false`);
    assert.equal((await browser.get(`${running.url}/api/profile`)).status, 401, `${what}: the guard refuses`);
  }

  test("Logto's back-channel logout reaches a 0.1.0 session through the index entries 0.1.0 wrote", async () => {
    const store = new session.MemoryStore();
    const running = await app({ store, backchannelLogout: true, strategy: { backchannelLogout: true } });
    const { bag, sub } = await legacyOf(running, 'legacy-indexed');
    const put = (id: string, value: object): Promise<void> =>
      new Promise((resolve, reject) => store.set(id, value as session.SessionData, (error) => (error ? reject(error) : resolve())));
    const sid = 'legacy-indexed-session';
    await put(sid, { cookie: { originalMaxAge: null, expires: null, httpOnly: true, path: '/' }, ...bag });
    // 0.1.0's entry: in the session store, under the session key and the raw `sub`.
    const lifetime = 14 * 24 * 3600 * 1000;
    await put(`logto:logout-index:sub:${sub}`, { cookie: { expires: new Date(Date.now() + lifetime).toISOString(), originalMaxAge: lifetime }, sessionIds: [sid] });

    assert.equal(await postLogout(running, sub), 200);
    const cookie = `sid-${new URL(running.url).port}=${encodeURIComponent(`s:${sign(sid, 'test-secret')}`)}`;
    const back = new TestBrowser();
    const original = back.request.bind(back);
    back.request = (url, init = {}) => original(url, { ...init, headers: { cookie, ...init.headers } });
    await signedOutEverywhere(back, running, 'the 0.1.0 session on its return');
    const left = await new Promise((resolve) => store.get(sid, (_error, data) => resolve(data ?? null)));
    assert.equal(left, null, 'its session was destroyed, as 0.1.0 did');
  });

  test('a 0.1.0 cookie-session cookie copied before its 0.1.0 sign-out stays signed out after the upgrade', async () => {
    const tokenStore = new MemoryTokenStore();
    const running = await app({ cookieSession: true, cookieName: 'l1a', strategy: { tokenStore }, routes: legacyRoutes });
    const { bag, refreshToken } = await legacyOf(running, 'legacy-signed-out');
    const { copy } = await plantedCookieSession(running, 'l1a', bag);
    // 0.1.0's sign-out revoked the refresh token at Logto and cleared its cookie; it marked nothing else.
    const basic = Buffer.from(`${running.registered.appId}:${running.registered.appSecret}`).toString('base64');
    const revoked = await fetch(`${provider.issuer}/token/revocation`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: refreshToken, token_type_hint: 'refresh_token' }),
    });
    assert.ok(revoked.ok);
    await signedOutEverywhere(copy, running, 'the replayed 0.1.0 cookie');
    await signedOutEverywhere(copy, running, 'the same cookie again');
  });

  test('a 0.1.0 session is adopted once: after its record expires, the original cookie stays signed out', async () => {
    const tokenStore = new MemoryTokenStore();
    const running = await app({ cookieSession: true, cookieName: 'l1b', strategy: { tokenStore }, routes: legacyRoutes });
    const { bag, refreshToken } = await legacyOf(running, 'legacy-expiring');
    const { browser, copy } = await plantedCookieSession(running, 'l1b', bag);
    const home = (await getJson<HomeBody>(browser, `${running.url}/`)).body;
    assert.equal(home.authenticated, true, 'the 0.1.0 session works after the upgrade');
    const adopted = await tokensOf(browser, running);
    assert.ok(adopted.refreshToken);
    assert.notEqual(adopted.refreshToken, refreshToken, 'adopting it asked Logto, whose new refresh token the record keeps');
    assert.equal((await getJson<HomeBody>(copy, `${running.url}/`)).body.authenticated, true, 'a copy of the 0.1.0 cookie is the same sign-in while it lives');
    // The record's life runs out (tokenTtl): what its expiry leaves in the store.
    await tokenStore.delete('tokens:legacy-expiring');
    // This instance's copy of the record may answer for 2 s more.
    await eventually(async () => (await getJson<HomeBody>(browser, `${running.url}/`)).body.user === null, 'the adopted session to be signed out once its record expired');
    await signedOutEverywhere(browser, running, 'the adopted session after its record expired');
    await signedOutEverywhere(copy, running, 'the original 0.1.0 cookie replayed after the expiry');
    assert.equal((await copy.get(`${running.url}/refresh-now`)).status, 401, 'no refresh for it either');
  });

  test('RedisTokenStore, two instances: one 0.1.0 cookie arriving everywhere at once is adopted by one refresh, and once', async () => {
    const redis = await startRedis();
    try {
      const tokenStore = new RedisTokenStore(await redis.client());
      const first = await app({ cookieSession: true, cookieName: 'l1r', strategy: { tokenStore }, routes: legacyRoutes });
      const second = await app({ cookieSession: true, cookieName: 'l1r', instanceOf: first.registered, strategy: { tokenStore }, routes: legacyRoutes });
      const { bag, refreshToken } = await legacyOf(first, 'legacy-redis');
      const { copy } = await plantedCookieSession(first, 'l1r', bag);
      const pages = await Promise.all([first, second, first, second].map((running) => copy.get(`${running.url}/api/profile`)));
      assert.deepEqual(pages.map((page) => page.status), [200, 200, 200, 200], 'signed in on both instances');
      assert.equal(refreshRequests(provider).filter((request) => request.refreshToken === refreshToken).length, 1, 'one refresh proved the grant for all');
      await tokenStore.delete('tokens:legacy-redis'); // the record's life ran out
      for (const running of [first, second]) {
        await eventually(async () => (await getJson<HomeBody>(copy, `${running.url}/`)).body.user === null, 'the copy to be signed out');
        await signedOutEverywhere(copy, running, 'the original 0.1.0 cookie after the record expired');
      }
    } finally {
      await redis.stop();
    }
  });

  test('a 0.1.0 session without a refresh token is signed out: nothing could prove its grant alive', async () => {
    const running = await app({ cookieSession: true, cookieName: 'l1c', strategy: { tokenStore: new MemoryTokenStore() }, routes: legacyRoutes });
    const { bag } = await legacyOf(running, 'legacy-no-refresh-token', false);
    const { browser } = await plantedCookieSession(running, 'l1c', bag);
    await signedOutEverywhere(browser, running, 'the 0.1.0 session');
  });

  test('while Logto is down, a 0.1.0 session is neither signed in nor ended; it is adopted once Logto is back', async () => {
    const running = await app({ cookieSession: true, cookieName: 'l1d', strategy: { tokenStore: new MemoryTokenStore() }, routes: legacyRoutes });
    const { bag } = await legacyOf(running, 'legacy-outage');
    const { browser } = await plantedCookieSession(running, 'l1d', bag);
    await provider.pause();
    try {
      const during = await browser.get(`${running.url}/api/profile`);
      assert.notEqual(during.status, 200, 'not signed in on doubt');
      assert.notEqual(during.status, 401, 'not signed out either');
    } finally {
      await provider.resume();
    }
    assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.authenticated, true, 'adopted once Logto answers');
    assert.equal((await browser.get(`${running.url}/api/profile`)).status, 200);
  });
});

/** Logto's back-channel logout of every sign-in of user `sub`, as its logout token is posted. */
async function postLogout(running: RunningApp, sub: string): Promise<number> {
  const now = Math.floor(Date.now() / 1000);
  const token = await provider.sign(
    { iss: provider.issuer, aud: running.registered.appId, iat: now, exp: now + 120, jti: randomUUID(), sub, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } },
    { typ: 'logout+jwt' },
  );
  const response = await fetch(`${running.url}/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
  });
  return response.status;
}
