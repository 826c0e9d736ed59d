/**
 * Several app processes behind one "load balancer" (one cookie, one callback URL), sharing a real
 * Redis, against the test provider with Logto's rules: a used refresh token works for 3 s, after
 * which Logto revokes the whole grant; a code exchanged twice revokes it too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { UserScope } from '../../lib/index.js';
import { assertNoLateReuse, getJson, refreshRequests } from '../support/flows.js';
import { signInAtProvider, TestBrowser } from '../support/http-client.js';
import type { TokenStoreKind } from '../support/instance-server.js';
import { startInstances, type Instance, type RunningInstances } from '../support/instances.js';
import { API_RESOURCE, startProvider, type TestProvider } from '../support/provider/index.js';
import { startRedis, type RunningRedis } from '../support/redis.js';

let redis: RunningRedis;
let provider: TestProvider;

before(async () => {
  redis = await startRedis();
  // Tokens that live 5 s: long enough to stay valid through a burst on a busy machine.
  provider = await startProvider({ accessTokenTtl: 5 });
});
after(async () => {
  await provider.close();
  await redis.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** Past the access tokens' life and Logto's 3-second grace for used refresh tokens. */
const expire = (): Promise<void> => sleep(5100);
const resource = encodeURIComponent(API_RESOURCE);

async function start(tokenStore: TokenStoreKind): Promise<RunningInstances> {
  return startInstances(provider, {
    count: 3,
    redisUrl: redis.url,
    tokenStore,
    scopes: [UserScope.Organizations, 'read:items', 'read:members'],
    resources: [API_RESOURCE],
  });
}

/** The callback URL that Logto sent the browser to, delivered to another instance. */
function via(callback: string, instance: Instance): string {
  const url = new URL(callback);
  return `${instance.url}${url.pathname}${url.search}`;
}

async function callbackFor(browser: TestBrowser, running: RunningInstances, startAt: Instance): Promise<string> {
  const started = await browser.get(`${startAt.url}/sign-in`);
  assert.equal(started.status, 302, started.text);
  return signInAtProvider(browser, started.location ?? '', provider.users.demo, running.callbackURL);
}

async function signIn(browser: TestBrowser, running: RunningInstances): Promise<void> {
  const [first, second] = running.instances as [Instance, Instance];
  const landed = await browser.get(via(await callbackFor(browser, running, first), second));
  assert.equal(landed.location, `${second.url}/`, landed.text);
}

async function token(browser: TestBrowser, instance: Instance, query: string): Promise<{ status: number; body: { token?: string; error?: string } }> {
  return getJson(browser, `${instance.url}/token?${query}`);
}

const suites: Array<[TokenStoreKind, string]> = [
  ['session-store', 'three app processes on connect-redis, no token store configured'],
  ['node-redis-5', 'three app processes on connect-redis, with RedisTokenStore on node-redis 5'],
  ['ioredis', 'three app processes on connect-redis, with RedisTokenStore on ioredis'],
];

for (const [kind, title] of suites) describe(title, () => {
  let running: RunningInstances;
  before(async () => {
    running = await start(kind);
  });
  after(() => running.stop());

  test('two tokens refreshed at once on two instances, then every instance restarts: the next refresh uses the newest refresh token', async () => {
    const [a, b, c] = running.instances as [Instance, Instance, Instance];
    const browser = new TestBrowser();
    await signIn(browser, running);
    await expire();
    const grants = provider.revokedGrants();
    provider.resetRequests();
    const [api, org] = await Promise.all([token(browser, b, `resource=${resource}`), token(browser, c, 'org=org-acme')]);
    assert.equal(api.status, 200, JSON.stringify(api.body));
    assert.equal(org.status, 200, JSON.stringify(org.body));

    await Promise.all(running.instances.map((instance) => instance.restart()));
    await expire();
    for (const instance of [a, b, c]) {
      const again = await token(browser, instance, `resource=${resource}&org=org-acme`);
      assert.equal(again.status, 200, JSON.stringify(again.body));
    }
    assertNoLateReuse(provider, grants);
  });

  test('a storm of 50 requests over 3 instances costs one refresh per token', async () => {
    const browser = new TestBrowser();
    await signIn(browser, running);
    await expire();
    const grants = provider.revokedGrants();
    provider.resetRequests();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => token(browser, running.instances[i % 3] as Instance, `resource=${resource}`)),
    );
    for (const result of results) assert.equal(result.status, 200, JSON.stringify(result.body));
    assert.equal(new Set(results.map((result) => result.body.token)).size, 1, 'every request got the same new token');
    assert.equal(refreshRequests(provider).length, 1, 'atomic commands on Redis: exactly one refresh across the instances');
    assertNoLateReuse(provider, grants);
  });

  test('the same callback twice, on two instances at once: one code exchange, and both end signed in', async () => {
    const [a, b, c] = running.instances as [Instance, Instance, Instance];
    const browser = new TestBrowser();
    const callback = await callbackFor(browser, running, a);
    const grants = provider.revokedGrants();
    provider.resetRequests();
    const [first, second] = await Promise.all([browser.get(via(callback, b)), browser.get(via(callback, c))]);
    assert.equal(first.location, `${b.url}/`, first.text);
    assert.equal(second.location, `${c.url}/`, second.text);
    assert.equal(provider.countRequests('/oidc/token', (r) => r.params.grant_type === 'authorization_code'), 1, 'the code was exchanged once');
    const home = (await getJson<{ authenticated: boolean }>(browser, `${a.url}/`)).body;
    assert.equal(home.authenticated, true);
    await expire();
    assert.equal((await token(browser, a, `resource=${resource}`)).status, 200, 'the grant is alive');
    assert.equal(provider.revokedGrants(), grants, 'Logto revoked no grant');
  });

  test('two tabs start a sign-in at the same moment on two instances: both finish signed in, with or without a session', async () => {
    const [a, b, c] = running.instances as [Instance, Instance, Instance];
    for (const signedInFirst of [false, true]) {
      const browser = new TestBrowser();
      if (signedInFirst) await signIn(browser, running);
      // Both sign-ins start at the same moment; the provider's pages are then passed one at a time.
      const [startOne, startTwo] = await Promise.all([browser.get(`${a.url}/sign-in`), browser.get(`${b.url}/sign-in`)]);
      const one = await signInAtProvider(browser, startOne.location ?? '', provider.users.demo, running.callbackURL);
      const two = await signInAtProvider(browser, startTwo.location ?? '', provider.users.demo, running.callbackURL);
      const [first, second] = await Promise.all([browser.get(via(one, c)), browser.get(via(two, a))]);
      assert.equal(first.location, `${c.url}/`, first.text);
      assert.equal(second.location, `${a.url}/`, second.text);
      assert.equal((await getJson<{ authenticated: boolean }>(browser, `${b.url}/`)).body.authenticated, true);
    }
  });

  test('a refresh whose answer is lost is retried within the grace; the refresh token is kept, and its late use ends only that sign-in', async () => {
    const [a, b] = running.instances as [Instance, Instance];
    const browser = new TestBrowser();
    await signIn(browser, running);
    await expire();
    const grants = provider.revokedGrants();
    provider.resetRequests();
    // Logto rotates the refresh token, but its answers arrive after the app stopped waiting.
    provider.setTokenResponseTamper(async (body, params) => {
      if (params.grant_type === 'refresh_token') await sleep(6000);
      return body;
    });
    try {
      const results = await Promise.all([token(browser, a, `resource=${resource}`), token(browser, a, 'org=org-acme'), token(browser, b, '')]);
      const errors = results.map((result) => result.body.error);
      assert.ok(errors.includes('provider_timeout'), `the refresh that got no answer says so: ${errors.join()}`);
      // The others waited for it, and then found no refresh token safe to send.
      for (const error of errors) assert.ok(error === 'provider_timeout' || error === 'not_authenticated', String(error));
    } finally {
      provider.setTokenResponseTamper(undefined);
    }
    await sleep(3200);
    // Logto did rotate the token: its late use is Logto's word that this sign-in is over.
    const later = await token(browser, b, `resource=${resource}`);
    assert.equal(later.status, 401, 'the sign-in cannot be refreshed any more: sign in again');
    assert.equal(later.body.error, 'not_authenticated');
    assert.ok(provider.revokedGrants() <= grants + 1, 'at most the grant of this one sign-in ended');
    await signIn(browser, running);
    assert.equal((await token(browser, a, `resource=${resource}`)).status, 200, 'signing in again works');
  });

  test('sign-out wins over a refresh in flight on another instance, and the old session stays signed out', async () => {
    const [a, b] = running.instances as [Instance, Instance];
    const browser = new TestBrowser();
    await signIn(browser, running);
    await expire();
    const cookieName = `shared-${new URL(running.callbackURL).port}`;
    const oldSession = `${cookieName}=${browser.cookie('127.0.0.1', cookieName) ?? ''}`;
    provider.setTokenResponseTamper(async (body, params) => {
      if (params.grant_type === 'refresh_token') await sleep(800);
      return body;
    });
    try {
      const refreshing = token(browser, a, `resource=${resource}`);
      await sleep(200);
      const signedOut = await browser.get(`${b.url}/sign-out`);
      assert.equal(signedOut.status, 302);
      const refreshed = await refreshing;
      assert.notEqual(refreshed.status, 200, 'the refresh finished after sign-out does not hand out tokens');
    } finally {
      provider.setTokenResponseTamper(undefined);
    }
    for (const instance of running.instances) {
      const home = (await getJson<{ user: unknown; authenticated: boolean }>(browser, `${instance.url}/`)).body;
      assert.equal(home.user, null);
      const old = await new TestBrowser().request(`${instance.url}/tokens`, { headers: { cookie: oldSession } });
      assert.equal(old.status, 401, 'the old session id is not revived');
    }
  });
});

for (const kind of ['node-redis-4', 'node-redis-5', 'ioredis'] as const) {
  describe(`three app processes with RedisTokenStore on ${kind}, three tokens at once`, () => {
    let running: RunningInstances;
    before(async () => {
      running = await start(kind);
    });
    after(() => running.stop());

    test('a storm of 50 requests over 3 instances for three tokens costs exactly three refreshes', async () => {
      const browser = new TestBrowser();
      await signIn(browser, running);
      await expire();
      const grants = provider.revokedGrants();
      provider.resetRequests();
      const queries = [`resource=${resource}`, 'org=org-acme', `resource=${resource}&org=org-acme`];
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => token(browser, running.instances[i % 3] as Instance, queries[i % 3] ?? '')),
      );
      for (const result of results) assert.equal(result.status, 200, JSON.stringify(result.body));
      assert.equal(refreshRequests(provider).length, 3, 'one refresh per token across every instance');
      assertNoLateReuse(provider, grants);
    });
  });
}
