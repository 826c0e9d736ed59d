/**
 * Issue 20: the back-channel logout index lives as long as the sign-ins it points to, has no cap,
 * and loses no entry when sign-ins land together. Days pass in a store whose clock the test moves.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Express } from 'express';
import { LogtoError, MemoryTokenStore, type LogtoStrategy, type TokenStore } from '../../lib/index.js';
import { startApp, type RunningApp, type StartAppOptions } from '../support/app.js';
import { getJson, signIn, type HomeBody } from '../support/flows.js';
import { TestBrowser } from '../support/http-client.js';
import { startProvider, type TestProvider } from '../support/provider/index.js';

const day = 24 * 60 * 60 * 1000;

/** A token store whose clock runs ahead of the real one by `skew`: days pass at once. */
class ClockStore implements TokenStore {
  skew = 0;
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();
  constructor(private readonly withSets: boolean) {}
  private now(): number {
    return Date.now() + this.skew;
  }
  private live(key: string): { value: string; expiresAt: number } | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt <= this.now()) this.entries.delete(key);
    return this.entries.get(key);
  }
  get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.live(key)?.value);
  }
  set(key: string, value: string, ttl: number): Promise<void> {
    this.entries.set(key, { value, expiresAt: this.now() + ttl });
    return Promise.resolve();
  }
  delete(key: string): Promise<void> {
    this.entries.delete(key);
    return Promise.resolve();
  }
  setIfAbsent(key: string, value: string, ttl: number): Promise<boolean> {
    if (this.live(key)) return Promise.resolve(false);
    return this.set(key, value, ttl).then(() => true);
  }
  deleteIfEquals(key: string, value: string): Promise<void> {
    if (this.live(key)?.value === value) this.entries.delete(key);
    return Promise.resolve();
  }
  /** Installed only when `withSets`: otherwise passport-logto takes turns under its lock. */
  addToSetNative(key: string, members: string[], ttl: number): Promise<void> {
    const entry = this.live(key);
    if (!entry && members.length === 0) return Promise.resolve();
    const all = new Set<string>(entry ? (JSON.parse(entry.value) as string[]) : []);
    for (const member of members) all.add(member);
    this.entries.set(key, { value: JSON.stringify([...all]), expiresAt: Math.max(entry?.expiresAt ?? 0, this.now() + ttl) });
    return Promise.resolve();
  }
  setMembersNative(key: string): Promise<string[]> {
    const entry = this.live(key);
    return Promise.resolve(entry ? (JSON.parse(entry.value) as string[]) : []);
  }
  asStore(): TokenStore {
    if (!this.withSets) return this;
    return Object.assign(this, { addToSet: this.addToSetNative.bind(this), setMembers: this.setMembersNative.bind(this) });
  }
}

let provider: TestProvider;
const apps: RunningApp[] = [];
before(async () => {
  provider = await startProvider();
});
after(async () => {
  await Promise.all(apps.map((running) => running.close()));
  await provider.close();
});

function refreshRoute(express: Express, logto: LogtoStrategy): void {
  express.get('/refresh-now', (req, res, next) => {
    logto
      .client(req)
      .load()
      .then((client) => client.refresh())
      .then(() => res.json({ refreshed: true }), (error: unknown) => (error instanceof LogtoError ? res.status(401).json({ error: error.code }) : next(error)));
  });
}

async function app(options: StartAppOptions): Promise<RunningApp> {
  const running = await startApp(provider, { backchannelLogout: true, routes: refreshRoute, ...options, strategy: { backchannelLogout: true, ...options.strategy } });
  apps.push(running);
  return running;
}

async function logOutAtLogto(running: RunningApp, sub: string): Promise<number> {
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

const signedIn = async (browser: TestBrowser, running: RunningApp): Promise<boolean> => (await getJson<HomeBody>(browser, `${running.url}/`)).body.user !== null;

for (const withSets of [true, false]) {
  describe(`the back-channel logout index, ${withSets ? 'on a store with atomic sets' : 'on a store without sets (turns under its lock)'}`, () => {
    test('a sign-in refreshed on day 10 is still logged out by Logto on day 15', async () => {
      const clock = new ClockStore(withSets);
      const running = await app({ strategy: { tokenStore: clock.asStore() } });
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      clock.skew = 10 * day;
      assert.equal((await browser.get(`${running.url}/refresh-now`)).status, 200);
      clock.skew = 15 * day;
      assert.equal(await signedIn(browser, running), true, 'the refreshed record is alive on day 15');
      assert.equal(await logOutAtLogto(running, provider.users.demo.sub), 200);
      assert.equal(await signedIn(browser, running), false, 'Logto\'s logout reached the sign-in');
      assert.equal((await browser.get(`${running.url}/api/profile`)).status, 401);
    });

    test('with tokenTtl of 30 days, the index lives 30 days too', async () => {
      const clock = new ClockStore(withSets);
      const running = await app({ strategy: { tokenStore: clock.asStore(), tokenTtl: 30 * 24 * 60 * 60 } });
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      clock.skew = 20 * day;
      assert.equal(await signedIn(browser, running), true);
      assert.equal(await logOutAtLogto(running, provider.users.demo.sub), 200);
      assert.equal(await signedIn(browser, running), false);
    });
  });
}

for (const where of ['MemoryTokenStore', 'the session store'] as const) describe(`the back-channel logout index has no cap and loses no entry, in ${where}`, () => {
  test('60 sign-ins of one user, 12 of them landing at once: Logto\'s logout ends every one', async () => {
    const running = await app(where === 'MemoryTokenStore' ? { strategy: { tokenStore: new MemoryTokenStore() } } : {});
    const browsers: TestBrowser[] = [];
    for (let index = 0; index < 48; index += 1) {
      const browser = new TestBrowser();
      await signIn(browser, provider, running, '/sign-in', provider.users.alice);
      browsers.push(browser);
    }
    // Twelve callbacks at the same moment: each adds its entry while the others do.
    const together = Array.from({ length: 12 }, () => new TestBrowser());
    const { callbackAfterSignIn } = await import('../support/flows.js');
    const callbacks = await Promise.all(together.map((browser) => callbackAfterSignIn(browser, provider, running, '/sign-in', provider.users.alice)));
    await Promise.all(together.map((browser, index) => browser.get(callbacks[index] ?? '')));
    browsers.push(...together);
    for (const browser of browsers) assert.equal(await signedIn(browser, running), true);
    assert.equal(await logOutAtLogto(running, provider.users.alice.sub), 200);
    const still = [];
    for (const [index, browser] of browsers.entries()) if (await signedIn(browser, running)) still.push(index);
    assert.deepEqual(still, [], 'every sign-in, the first included, was logged out');
  });
});
