/**
 * Issue 21, items 1 to 4, each as its attack: anonymous callbacks that would flush
 * MemoryTokenStore, a request stuffed with pending-sign-in cookies, sign-out by GET from a sibling
 * subdomain, and silent sign-in for clients that keep no cookies.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Express, NextFunction, Request, Response } from 'express';
import session from 'express-session';
import { LogtoError, MemoryTokenStore, type LogtoStrategy } from '../../lib/index.js';
import { hardeningSetup, type PassportLike, type RunningApp } from '../support/app.js';
import { getJson, signIn, startSignIn, tokensOf, type HomeBody } from '../support/flows.js';
import { signInAtProvider, TestBrowser, type TestResponse } from '../support/http-client.js';
import type { TestProvider } from '../support/provider/index.js';
import { captureWarnings, passportLogtoWarnings } from '../support/warnings.js';

let provider: TestProvider;
const { app } = hardeningSetup({
  started: (started) => {
    provider = started;
  },
});

/** passport-logto's warnings while `run` runs, kept out of the test output. */
async function warningsDuring(run: () => Promise<void>): Promise<Error[]> {
  const capture = captureWarnings(passportLogtoWarnings);
  try {
    await run();
  } finally {
    await capture.stop();
  }
  return capture.warnings;
}

const ours = (warning: Error): boolean => warning.name === 'PassportLogtoWarning';

// ---------------------------------------------------------------------------
// Item 1: anonymous callbacks must not evict the records of real sign-ins
// ---------------------------------------------------------------------------

describe('item 1: MemoryTokenStore under anonymous callbacks', () => {
  test('300 junk callbacks, each with a valid pending cookie, leave an idle user signed in, without a warning', async () => {
    const running = await app({ strategy: { tokenStore: new MemoryTokenStore({ maxEntries: 10 }) } });
    const user = new TestBrowser();
    await signIn(user, provider, running);
    const before = await tokensOf(user, running);
    assert.ok(before.refreshToken, 'the user holds a refresh token');

    const warnings = await warningsDuring(async () => {
      for (let i = 0; i < 300; i += 1) {
        const attacker = new TestBrowser();
        const authorization = await startSignIn(attacker, running);
        const junk = new URL(running.callbackURL);
        junk.search = new URLSearchParams({ code: `junk-${i}`, state: authorization.searchParams.get('state') ?? '', iss: provider.issuer }).toString();
        const response = await attacker.get(junk.href);
        assert.equal(response.location, `${running.url}/sign-in-failed`, 'the junk code is refused');
      }
    });
    assert.deepEqual(warnings.filter(ours), [], 'no sign-in was evicted');
    const after = await tokensOf(user, running);
    assert.equal(after.authenticated, true, 'still signed in');
    assert.equal(after.refreshToken, before.refreshToken, 'the record is intact');
  });

  test("a full store says so: a warning, then token_store_evicted on that sign-in's next request, then signed out", async () => {
    const tokenStore = new MemoryTokenStore({ maxEntries: 1 });
    const sessions = new session.MemoryStore();
    const first = await app({ strategy: { tokenStore }, store: sessions, cookieName: 'sid-evicted' });
    // A second instance has no copy of the record in memory, so it reads the store.
    const second = await app({ strategy: { tokenStore }, store: sessions, cookieName: 'sid-evicted', instanceOf: first.registered });
    const alice = new TestBrowser();
    await signIn(alice, provider, first);
    const warnings = await warningsDuring(async () => {
      await signIn(new TestBrowser(), provider, first, '/sign-in', provider.users.demo);
    });
    const ourWarnings = warnings.filter(ours);
    assert.equal(ourWarnings.length, 1, 'one warning');
    assert.match(ourWarnings[0]?.message ?? '', /maxEntries/);

    const evicted = await getJson<{ error: string; message: string }>(alice, `${second.url}/tokens`);
    assert.equal(evicted.body.error, 'token_store_evicted');
    assert.match(evicted.body.message, /Raise maxEntries or use a shared store/);
    const later = await tokensOf(alice, second);
    assert.deepEqual([later.authenticated, later.refreshToken], [false, null], 'signed out afterwards');
  });

  test('expired entries go before live ones, and a burst of evictions warns once', async () => {
    const store = new MemoryTokenStore({ maxEntries: 2 });
    const warnings = await warningsDuring(async () => {
      await store.set('tokens:expired', 'x', 1);
      await new Promise((resolve) => setTimeout(resolve, 10));
      await store.set('tokens:a', 'a', 60_000);
      await store.set('tokens:b', 'b', 60_000);
    });
    assert.deepEqual(warnings.filter(ours), [], 'the expired entry made room');
    assert.equal(await store.get('tokens:a'), 'a');

    const burst = await warningsDuring(async () => {
      // Distinct lifetimes: the one closest to expiry goes first.
      for (const [key, ttl] of [['c', 120_000], ['d', 130_000], ['e', 140_000]] as const) await store.set(`tokens:${key}`, key, ttl);
    });
    assert.equal(burst.filter(ours).length, 1, 'one warning for the burst');
    for (const key of ['a', 'b', 'c']) {
      await assert.rejects(store.get(`tokens:${key}`), (error: unknown) => error instanceof LogtoError && error.code === 'token_store_evicted', key);
      assert.equal(await store.get(`tokens:${key}`), undefined, 'the error comes once');
    }
    assert.equal(await store.get('tokens:e'), 'e');
  });

  test('callback claims live in their own bounded space', async () => {
    const store = new MemoryTokenStore({ maxEntries: 2, maxShortLivedEntries: 3 });
    await store.set('tokens:user', 'record', 60_000);
    for (let i = 0; i < 50; i += 1) assert.equal(await store.setIfAbsent(`callback:${i}`, 'pending', 60_000), true);
    assert.equal(await store.get('tokens:user'), 'record');
    assert.equal(await store.get('callback:49'), 'pending', 'the newest claim is kept');
    assert.equal(await store.get('callback:0'), undefined, 'the oldest claims made room');
    assert.throws(() => new MemoryTokenStore({ maxEntries: 0 }), (error: unknown) => error instanceof LogtoError && error.code === 'invalid_config');
  });
});

// ---------------------------------------------------------------------------
// Item 2: a request stuffed with pending-sign-in cookies
// ---------------------------------------------------------------------------

describe('item 2: 150 junk pending-sign-in cookies', () => {
  test('the sign-in start expires the extras by name unread, leaves the few it read, and the sign-in works', async () => {
    const running = await app();
    // Shaped like the real ones (a compact JWE), short enough for 150 to fit in Node's 16 KB of headers.
    const junk = Array.from({ length: 150 }, (_, i) => `logto.signin.j${String(i).padStart(3, '0')}=eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAAAAAAAAAAAAAAA.BBBB.CCCCCCCCCCCCCCCCCCCCCC`);
    const browser = new TestBrowser();
    const response = await browser.request(`${running.url}/sign-in`, { headers: { cookie: junk.join('; ') } });
    assert.equal(response.status, 302);
    const expired = response.headers
      .getSetCookie()
      .filter((cookie) => /Max-Age=0/i.test(cookie))
      .map((cookie) => cookie.slice(0, cookie.indexOf('=')));
    // maxPendingSignIns (5) plus 3 are looked at: the newest 8, which do not decrypt and stay.
    const expected = junk.slice(0, 142).map((cookie) => cookie.slice(0, cookie.indexOf('=')));
    assert.deepEqual(expired, expected, 'the 142 oldest are expired without being read');

    const callback = await signInAtProvider(browser, response.location ?? '', provider.users.demo, running.callbackURL);
    assert.equal((await browser.get(callback)).location, `${running.url}/`);
    assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.user?.id, provider.users.demo.sub);
  });
});

// ---------------------------------------------------------------------------
// Item 3: sign-out by GET only from the app's own pages
// ---------------------------------------------------------------------------

describe('item 3: sign-out by GET', () => {
  const signOutRoutes = (express: Express, logto: LogtoStrategy): void => {
    express.post('/sign-out', logto.signOut());
  };

  async function signedIn(running: RunningApp): Promise<TestBrowser> {
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    return browser;
  }

  test('an <img> on a sibling subdomain (Sec-Fetch-Site: same-site) gets 403 pointing to the POST form, and signs nobody out', async () => {
    const running = await app({ routes: signOutRoutes });
    const browser = await signedIn(running);
    for (const site of ['same-site', 'cross-site', 'something-new']) {
      const response = await browser.request(`${running.url}/sign-out`, { headers: { 'sec-fetch-site': site, 'sec-fetch-dest': 'image' } });
      assert.equal(response.status, 403, site);
      const body = JSON.parse(response.text) as { error: string; error_description: string };
      assert.equal(body.error, 'cross_site_sign_out');
      assert.match(body.error_description, /POST form/);
    }
    assert.equal((await tokensOf(browser, running)).authenticated, true, 'still signed in');
  });

  for (const site of ['same-origin', 'none', undefined]) {
    test(`a GET with ${site === undefined ? 'no Sec-Fetch-Site (older browsers)' : `Sec-Fetch-Site: ${site}`} signs out`, async () => {
      const running = await app({ routes: signOutRoutes });
      const browser = await signedIn(running);
      const response = await browser.request(`${running.url}/sign-out`, { headers: site === undefined ? {} : { 'sec-fetch-site': site } });
      assert.equal(response.status, 302, response.text);
      assert.equal((await tokensOf(browser, running)).authenticated, false);
    });
  }

  test('a POST from a sibling subdomain is refused by its Origin; the same-origin POST form signs out', async () => {
    const running = await app({ routes: signOutRoutes });
    const browser = await signedIn(running);
    const sibling = await browser.request(`${running.url}/sign-out`, {
      method: 'POST',
      form: {},
      headers: { 'sec-fetch-site': 'same-site', origin: 'http://evil.127.0.0.1.nip.io' },
    });
    assert.equal(sibling.status, 403);
    assert.equal((await tokensOf(browser, running)).authenticated, true);
    const own = await browser.request(`${running.url}/sign-out`, { method: 'POST', form: {}, headers: { 'sec-fetch-site': 'same-origin', origin: running.url } });
    assert.equal(own.status, 302);
    assert.equal((await tokensOf(browser, running)).authenticated, false);
  });
});

// ---------------------------------------------------------------------------
// Item 4: silent sign-in never loops, whatever the client keeps
// ---------------------------------------------------------------------------

describe('item 4: silent sign-in with the README layout', () => {
  const page = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

  /**
   * The README's layout: silent sign-in after the sign-in, callback and sign-out routes, before
   * every page, the failure page included. startApp adds its own routes after these, so the
   * middleware leaves those three routes alone itself.
   */
  const readmeLayout = (express: Express, logto: LogtoStrategy, _passport: PassportLike): void => {
    const silent = logto.silentSignIn({ retryAfter: 3600 });
    const routesBefore = new Set(['/sign-in', '/callback', '/sign-out']);
    express.use((req: Request, res: Response, next: NextFunction) => (routesBefore.has(req.path) ? next() : silent(req, res, next)));
    express.get('/page', (req, res) => res.json({ user: (req.user as { id?: string } | undefined)?.id ?? null }));
  };

  /** Follows redirects as a navigation; `keep` decides which cookies the client keeps. Stops after 30 hops. */
  async function navigate(url: string, keep: (name: string) => boolean, jar = new Map<string, string>()): Promise<{ last: TestResponse; hops: TestResponse[] }> {
    const hops: TestResponse[] = [];
    let next: string | undefined = url;
    while (next !== undefined && hops.length < 30) {
      const browser = new TestBrowser();
      const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
      const response = await browser.request(next, { headers: { ...page, ...(cookie ? { cookie } : {}) }, raw: true });
      for (const line of response.headers.getSetCookie()) {
        const [pair = ''] = line.split(';');
        const name = pair.slice(0, pair.indexOf('='));
        const value = pair.slice(pair.indexOf('=') + 1);
        if (!keep(name)) continue;
        if (/Max-Age=0/i.test(line)) jar.delete(name);
        else jar.set(name, value);
      }
      hops.push(response);
      next = response.status >= 300 && response.status < 400 ? response.location : undefined;
    }
    return { last: hops.at(-1)!, hops };
  }

  const silentTries = (): number => provider.countRequests('/oidc/auth', (request) => request.params.prompt === 'none');

  test('a client that keeps no cookies gets the page, never goes to Logto, never loops', async () => {
    const running = await app({ routes: readmeLayout });
    const before = silentTries();
    for (const path of ['/page', '/', '/sign-in-failed']) {
      const { last, hops } = await navigate(`${running.url}${path}`, () => false);
      assert.equal(hops.length, 1, `${path}: no redirect (${hops.map((hop) => hop.url).join(' -> ')})`);
      assert.ok(last.status === 200 || last.status === 401, `${path}: the page itself`);
    }
    assert.equal(silentTries() - before, 0, 'Logto saw no prompt=none request');
  });

  test('a browser that keeps cookies tries once, on its second page view, and comes back to the page', async () => {
    const running = await app({ routes: readmeLayout });
    const before = silentTries();
    const jar = new Map<string, string>();
    const first = await navigate(`${running.url}/page?x=1`, () => true, jar);
    assert.equal(first.hops.length, 1, 'the first view only sets the mark');
    const second = await navigate(`${running.url}/page?x=1`, () => true, jar);
    assert.equal(second.last.url, `${running.url}/page?x=1`, 'back on the same page');
    assert.equal((JSON.parse(second.last.text) as { user: string | null }).user, null);
    assert.ok(second.hops.length <= 4, `a short detour (${second.hops.length} hops)`);
    const third = await navigate(`${running.url}/page`, () => true, jar);
    assert.equal(third.hops.length, 1, 'not again within retryAfter');
    assert.equal(silentTries() - before, 1, 'one prompt=none request');
  });

  test("a silent attempt whose sign-in cookie did not come back ends signed out on a page, not on failureRedirect", async () => {
    const running = await app({ routes: readmeLayout });
    const before = silentTries();
    const jar = new Map<string, string>();
    assert.equal((await navigate(`${running.url}/page`, () => true, jar)).hops.length, 1, 'the first view only sets the mark');
    const { last, hops } = await navigate(`${running.url}/page`, (name) => !name.startsWith('logto.signin.'), jar);
    assert.ok(hops.length <= 4, `a short detour (${hops.map((hop) => hop.url).join(' -> ')})`);
    assert.ok(!hops.some((hop) => hop.url.includes('/sign-in-failed')), 'never on the failure page');
    assert.equal(last.status, 200);
    assert.equal(new URL(last.url).origin, running.url);
    assert.equal(silentTries() - before, 1, 'one prompt=none request');
  });
});
